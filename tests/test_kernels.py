"""The compiled network kernels (``gradflow._kernels``) against the objective's array code, case by case."""

import pickle

import numpy as np
import pytest

import gradflow as gf
from gradflow import _kernels

ACTIVATIONS = ["linear", "relu", "tanh", gf.activations.Polynomial([0.1, 1.0, 0.5, -0.2])]
LOSSES = {"square": 2, "logistic": 1, "cross_entropy": 3}


def _objective(activation, loss, bias, weight_decay, n=11, widths=(8, 5, 3)):
    rng = np.random.default_rng(7)
    n_outputs = LOSSES[loss]
    X = rng.standard_normal((n, widths[0]))
    if loss == "square":
        y = rng.standard_normal((n, n_outputs))
    elif loss == "logistic":
        y = np.where(rng.standard_normal(n) > 0, 1, -1)
    else:
        y = rng.integers(0, n_outputs, n)
    model = gf.models.MLP(list(widths) + [n_outputs], activation=activation, bias=bias)
    return gf.Objective(model, gf.Dataset(X, y), loss=loss, weight_decay=weight_decay)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: getattr(a, "name", a))
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("bias, weight_decay", [(False, 0.0), (True, 0.03)])
@pytest.mark.parametrize("n", [11, 3], ids=["loops-over-samples", "input-layer-by-rows"])
def test_value_gradient_hvp_and_jacobian_equal_the_objective(activation, loss, bias, weight_decay, n):
    # 8 features of 3 samples: the input layer loops over the rows of X (_kernels.INPUT_ROWS_RATIO)
    assert (8 >= _kernels.INPUT_ROWS_RATIO * n) == (n == 3)
    obj = _objective(activation, loss, bias, weight_decay, n=n)
    k = _kernels.compiled_kernels(obj)
    rng = np.random.default_rng(1)
    w, v = obj.init(seed=3, scale=0.7), rng.standard_normal(obj.size)
    grad, hvp, rhs, jac = np.empty(obj.size), np.empty(obj.size), np.empty(obj.size), np.empty((obj.size, obj.size))
    k.grad(w, grad, k.args)
    k.hvp(w, v, hvp, k.args)
    k.rhs(0.0, w, rhs, k.args)
    k.jac(0.0, w, jac, k.args)
    np.testing.assert_allclose(k.value(w, k.args), obj.value(w), rtol=1e-12)
    np.testing.assert_allclose(grad, obj.grad(w), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hvp, obj.hvp(w, v), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rhs, -grad, rtol=0, atol=0)
    np.testing.assert_allclose(jac, -obj.hessian(w), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: getattr(a, "name", a))
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("bias, weight_decay", [(False, 0.0), (True, 0.03)])
@pytest.mark.parametrize("n, widths", [(40, (40, 30)), (10, (200, 30)), (40, (20, 24, 22))],
                         ids=["blas", "blas-input-rows", "blas-hidden-to-hidden"])
def test_layers_large_enough_for_blas_give_the_objective_s_derivatives(activation, loss, bias, weight_decay, n, widths):
    # the hidden layers' products go to BLAS (also between two hidden layers, where the R-operator accumulates into
    # its buffers), the output layer's stay in the loops: both paths in one network
    products = [widths[l] * widths[l - 1] * n for l in range(1, len(widths))]
    assert min(products) >= _kernels.BLAS_MIN_WORK > 3 * widths[-1] * n
    obj = _objective(activation, loss, bias, weight_decay, n=n, widths=widths)
    k = _kernels.compiled_kernels(obj)
    rng = np.random.default_rng(1)
    w, v = obj.init(seed=3, scale=0.3), rng.standard_normal(obj.size)
    grad, hvp, jac = np.empty(obj.size), np.empty(obj.size), np.empty((obj.size, obj.size))
    k.grad(w, grad, k.args)
    k.hvp(w, v, hvp, k.args)
    k.jac(0.0, w, jac, k.args)
    np.testing.assert_allclose(k.value(w, k.args), obj.value(w), rtol=1e-12)
    np.testing.assert_allclose(grad, obj.grad(w), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hvp, obj.hvp(w, v), rtol=1e-9, atol=1e-12)
    columns = rng.choice(obj.size, 5, replace=False)
    units = np.eye(obj.size)[columns]
    np.testing.assert_allclose(jac[:, columns], -obj.hvp(w, units).T, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("n, widths", [(1, (4, 3)), (2, (4, 3)), (9, (4, 3)), (1, (3, 5, 2))])
def test_one_sample_and_one_layer_networks_with_biases(activation, n, widths):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((n, widths[0])), rng.standard_normal((n, widths[-1]))
    obj = gf.Objective(gf.models.MLP(list(widths), activation=activation, bias=True), gf.Dataset(X, y),
                       weight_decay=0.02)
    k = _kernels.compiled_kernels(obj)
    w, v = obj.init(seed=1, scale=0.8), rng.standard_normal(obj.size)
    grad, hvp = np.empty(obj.size), np.empty(obj.size)
    k.grad(w, grad, k.args)
    k.hvp(w, v, hvp, k.args)
    np.testing.assert_allclose(k.value(w, k.args), obj.value(w), rtol=1e-12)
    np.testing.assert_allclose(grad, obj.grad(w), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hvp, obj.hvp(w, v), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("widths", [(31, 1), (31, 2, 1), (3, 6, 6, 2, 1), (1, 1, 1)])
def test_kernels_follow_every_layer_of_deep_linear_and_feature_networks(widths):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((9, widths[0])), rng.standard_normal((9, widths[-1]))
    obj = gf.Objective(gf.models.DeepLinear(list(widths)), gf.Dataset(X, y))
    k = _kernels.compiled_kernels(obj)
    w, v = obj.init(seed=0, scale=0.5), rng.standard_normal(obj.size)
    grad, hvp = np.empty(obj.size), np.empty(obj.size)
    k.grad(w, grad, k.args)
    k.hvp(w, v, hvp, k.args)
    np.testing.assert_allclose(grad, obj.grad(w), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hvp, obj.hvp(w, v), rtol=1e-9, atol=1e-12)


def test_objectives_without_compiled_kernels_say_so():
    strict = pytest.importorskip("array_api_strict")
    data = gf.data.sine(n_train=9, n_test=0)
    data = gf.Dataset(strict.asarray(np.asarray(data.X)), strict.asarray(np.asarray(data.y)))
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(4)), data)
    assert _kernels.compiled_kernels(obj) is None



class _Softplus(gf.activations.Activation):
    name = "softplus"

    def value(self, z, xp):
        return xp.logaddexp(xp.zeros_like(z), z)

    def derivative(self, z, xp):
        return 1 / (1 + xp.exp(-z))

    def second_derivative(self, z, xp):
        s = 1 / (1 + xp.exp(-z))
        return s * (1 - s)


class _DoubledSquare(gf.losses.Square):
    """A user's loss that keeps the built-in's name but not its maths."""

    def value(self, F, T, xp):
        return 2 * super().value(F, T, xp)

    def gradient(self, F, T, xp):
        return 2 * super().gradient(F, T, xp)

    def hessian_product(self, F, T, RF, xp):
        return 2 * super().hessian_product(F, T, RF, xp)


def test_user_activations_and_losses_run_on_the_numpy_path_not_on_the_built_in_kernels():
    rng = np.random.default_rng(0)
    data = gf.Dataset(rng.standard_normal((6, 2)), rng.standard_normal(6))
    custom = [gf.Objective(gf.models.MLP([2, 3, 1], activation=_Softplus()), data),
              gf.Objective(gf.models.MLP([2, 3, 1], activation="tanh"), data, loss=_DoubledSquare())]
    for obj in custom:
        assert _kernels.compiled_kernels(obj) is None
        w0 = obj.init(seed=1)
        flow = gf.GradientFlow(obj).solve(w0, (0, 2), rtol=1e-10, atol=1e-12)
        reference = gf.GradientFlow(obj).solve(w0, (0, 2), method="RK45", rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(flow.final, reference.final, atol=1e-7)
        np.testing.assert_allclose(gf.gd(obj, w0, lr=0.1, steps=20, record_every=20).final,
                                   _numpy_gd(obj, w0, 0.1, 20), rtol=1e-12)


def _numpy_gd(obj, w, lr, steps):
    for _ in range(steps):
        w = w - lr * obj.grad(w)
    return w


def test_the_value_kernel_without_weight_decay_is_not_nan_where_the_weights_square_overflows():
    rng = np.random.default_rng(0)
    obj = gf.Objective(gf.models.DeepLinear([2, 1]), gf.Dataset(rng.standard_normal((4, 2)), np.sign(
        rng.standard_normal(4))), loss="logistic")
    kernels = _kernels.compiled_kernels(obj)
    w = np.array([1.0, 0.5]) * 1e160
    assert kernels.value(w, kernels.args) == pytest.approx(obj.value(w), rel=1e-12)

def test_bound_kernels_reach_compiled_loops_and_a_wrong_argument_raises():
    # hessian_spectral_radius takes the kernels as typed pointers (_kernels.KernelFunction): exact through the
    # Jacobian pointer, from below by power iteration through the HVP pointer
    from gradflow import _integrators

    obj = _objective("tanh", "square", True, 0.0)
    w = obj.init(seed=4, scale=0.8)
    bound = _kernels.bind(_kernels.compiled_kernels(obj))
    radius = _integrators.compiled_spectral_radius(bound)
    exact = np.max(np.abs(np.linalg.eigvalsh(obj.hessian(w))))
    assert radius(bound.jac, bound.hvp, bound.args, w, 0) == pytest.approx(exact, rel=1e-10)
    estimate = radius(bound.jac, bound.hvp, bound.args, w, 200)
    assert estimate <= exact * (1 + 1e-12) and estimate == pytest.approx(exact, rel=1e-4)
    for wrong in (object(), obj, (bound.jac[0],), ()):          # not a pair of addresses: an error, not a crash
        with pytest.raises(TypeError, match="typed function pointer of gradflow._kernels.bind"):
            radius(wrong, bound.hvp, bound.args, w, 0)
    with pytest.raises(TypeError):
        radius(("0x10", 0), bound.hvp, bound.args, w, 0)
    copied = pickle.loads(pickle.dumps(bound.jac))               # rebuilt from its dispatcher: the same addresses
    assert tuple(copied) == tuple(bound.jac) and radius(copied, bound.hvp, bound.args, w, 0) == radius(
        bound.jac, bound.hvp, bound.args, w, 0)


def test_calls_blas_says_which_network_kernels_reach_blas():
    fig8 = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())        # products 1,860 and 60
    assert not _kernels.calls_blas(_kernels.compiled_kernels(fig8))
    wide = _kernels.compiled_kernels(_objective("tanh", "square", False, 0.0, n=40, widths=(40, 30)))
    assert _kernels.calls_blas(wide)
    assert not _kernels.calls_blas(wide, n_samples=3)                                 # a mini-batch of 3 samples
    import sympy as sp

    a, b = sp.symbols("a b")
    symbolic = gf.symbolic.from_expr((a * b - 1) ** 2 / 2, [a, b]).compile()
    assert not _kernels.calls_blas(symbolic.kernels)
