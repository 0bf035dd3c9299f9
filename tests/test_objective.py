"""Exact derivatives of every model x activation x loss x weight decay, against finite differences and closed forms."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradflow as gf
from conftest import ALL_CASES, make_objective

H_GRAD = 1e-6     # central differences of the value: error O(h^2) ~ 1e-12 relative to curvature, rounding ~ 1e-10
H_HVP = 1e-6
RTOL = 1e-6       # the bound, float64


def _point(obj, seed=1, scale=0.6):
    return obj.init(seed=seed, scale=scale)


def _relative(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


@pytest.mark.parametrize("model_name, loss, weight_decay", ALL_CASES)
def test_gradient_matches_central_differences(model_name, loss, weight_decay):
    obj = make_objective(model_name, loss, weight_decay)
    w = _point(obj)
    eye = np.eye(obj.size)
    fd = np.array([(obj.value(w + H_GRAD * e) - obj.value(w - H_GRAD * e)) / (2 * H_GRAD) for e in eye])
    assert _relative(obj.grad(w), fd) <= RTOL


@pytest.mark.parametrize("model_name, loss, weight_decay", ALL_CASES)
def test_hvp_matches_differences_of_the_gradient(model_name, loss, weight_decay):
    obj = make_objective(model_name, loss, weight_decay)
    w = _point(obj)
    v = np.random.default_rng(7).standard_normal(obj.size)
    fd = (obj.grad(w + H_HVP * v) - obj.grad(w - H_HVP * v)) / (2 * H_HVP)
    assert _relative(obj.hvp(w, v), fd) <= RTOL


@pytest.mark.parametrize("model_name, loss, weight_decay", ALL_CASES)
def test_hessian_is_symmetric_and_equals_stacked_hvps(model_name, loss, weight_decay):
    obj = make_objective(model_name, loss, weight_decay)
    w = _point(obj)
    H = obj.hessian(w)
    assert H.shape == (obj.size, obj.size)
    scale = np.max(np.abs(H))
    assert np.max(np.abs(H - H.T)) <= 1e-12 * scale
    stacked = np.column_stack([obj.hvp(w, e) for e in np.eye(obj.size)])
    np.testing.assert_allclose(H, stacked, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("model_name, loss, weight_decay", ALL_CASES)
def test_batched_weights_equal_one_at_a_time(model_name, loss, weight_decay):
    obj = make_objective(model_name, loss, weight_decay)
    W = np.stack([_point(obj, seed=s) for s in range(3)])
    V = np.random.default_rng(3).standard_normal(W.shape)
    values, grads, hvps = obj.value(W), obj.grad(W), obj.hvp(W, V)
    assert values.shape == (3,) and grads.shape == W.shape and hvps.shape == W.shape
    for i in range(3):
        np.testing.assert_allclose(values[i], obj.value(W[i]), rtol=1e-13)
        np.testing.assert_allclose(grads[i], obj.grad(W[i]), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hvps[i], obj.hvp(W[i], V[i]), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("model_name", ["deep_linear", "tanh_bias", "quadratic", "relu_bias"])
def test_hessian_at_a_zero_loss_point_is_jtj_over_n(model_name):
    # targets produced by the network itself at w_star: L(w_star) = 0, the residual term of the Hessian vanishes
    template = make_objective(model_name, "square", 0.0)
    w_star = _point(template, seed=4)
    X = template.data.X
    y = template.predict(w_star, X)
    obj = gf.Objective(template.model, gf.Dataset(X, y), loss="square")
    assert obj.value(w_star) < 1e-28
    J = obj.output_jacobian(w_star)
    np.testing.assert_allclose(obj.hessian(w_star), J.T @ J / X.shape[0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("model_name", ["deep_linear", "tanh_bias", "relu_bias", "feature_regression"])
def test_output_jacobian_matches_differences_of_the_outputs(model_name):
    obj = make_objective(model_name, "square", 0.0)
    w = _point(obj)
    X = obj.data.X
    fd = np.column_stack([
        (obj.predict(w + H_GRAD * e, X) - obj.predict(w - H_GRAD * e, X)).ravel() / (2 * H_GRAD)
        for e in np.eye(obj.size)
    ])
    J = obj.output_jacobian(w)
    assert J.shape == (X.shape[0] * obj.model.n_outputs, obj.size)
    assert _relative(J, fd) <= RTOL


def test_feature_regression_value_gradient_and_hessian_have_closed_forms():
    data = gf.data.sine(n_train=9, n_test=0)
    features = gf.features.Chebyshev(degree=12)
    obj = gf.Objective(gf.models.FeatureRegression(features), data, loss="square", weight_decay=0.05)
    Phi, y = features(data.X), data.y
    w = np.random.default_rng(0).standard_normal(obj.size)
    residual = Phi @ w - y
    np.testing.assert_allclose(obj.value(w), residual @ residual / 18 + 0.025 * w @ w, rtol=1e-13)
    np.testing.assert_allclose(obj.grad(w), Phi.T @ residual / 9 + 0.05 * w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(obj.hessian(w), Phi.T @ Phi / 9 + 0.05 * np.eye(13), rtol=1e-12, atol=1e-14)


def test_degree_30_regression_has_p_minus_n_zero_eigenvalues():
    # the paper's Figure 4: 31 parameters, 9 training points, a 22-dimensional valley of minima
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(degree=30, normalize=True)), gf.data.sine())
    eigenvalues = np.linalg.eigvalsh(obj.hessian(np.zeros(obj.size)))
    assert np.sum(eigenvalues < 1e-10 * eigenvalues.max()) == 31 - 9


def test_flat_order_is_the_papers_vec_of_transposed_layers():
    model = gf.models.DeepLinear([3, 2, 1])
    W1, W2 = np.arange(6.0).reshape(2, 3), np.array([[10.0, 20.0]])
    w = model.flatten([W1, W2])
    np.testing.assert_array_equal(w, np.concatenate([W1.T.ravel(order="F"), W2.T.ravel(order="F")]))
    back = model.unflatten(w)
    np.testing.assert_array_equal(back[0], W1)
    np.testing.assert_array_equal(back[1], W2)


def test_unflatten_orders_each_bias_after_its_weights():
    model = gf.models.MLP([2, 3, 1], activation="tanh", bias=True)
    assert model.parameter_shapes == ((3, 2), (3,), (1, 3), (1,))
    w = np.arange(model.size, dtype=float)
    W1, b1, W2, b2 = model.unflatten(w)
    np.testing.assert_array_equal(b1, [6.0, 7.0, 8.0])
    np.testing.assert_array_equal(b2, [12.0])
    np.testing.assert_array_equal(model.flatten([W1, b1, W2, b2]), w)


def test_forward_of_an_mlp_equals_the_formula():
    model = gf.models.MLP([2, 3, 2], activation="tanh", bias=True)
    rng = np.random.default_rng(0)
    W1, b1, W2, b2 = rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal((2, 3)), rng.standard_normal(2)
    X = rng.standard_normal((5, 2))
    expected = np.tanh(X @ W1.T + b1) @ W2.T + b2
    np.testing.assert_allclose(model.forward(model.flatten([W1, b1, W2, b2]), X), expected, rtol=1e-14)


def test_init_is_seeded_and_scaled():
    obj = make_objective("deep_linear", "square", 0.0)
    np.testing.assert_array_equal(obj.init(seed=3), obj.init(seed=3))
    assert not np.array_equal(obj.init(seed=3), obj.init(seed=4))
    big = np.concatenate([gf.Objective(gf.models.DeepLinear([3, 200, 2]), obj.data).init(seed=s, scale=0.5) for s in range(3)])
    assert abs(np.std(big) - 0.5) < 0.02
    np.testing.assert_array_equal(obj.init(scale=0.0), np.zeros(obj.size))


def test_init_in_data_span_puts_the_first_layer_in_the_row_space_of_the_data():
    data = gf.data.linear_teacher()           # d = 31 > n = 30: the row space is a proper subspace
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), data)
    W1, W2 = obj.unflatten(obj.init(seed=0, scale=1.0, in_data_span=True))
    null = np.eye(31) - np.linalg.pinv(data.X) @ data.X
    assert np.max(np.abs(W1 @ null)) < 1e-12
    assert np.max(np.abs(W1)) > 0.1
    W1_free, W2_free = obj.unflatten(obj.init(seed=0, scale=1.0))
    np.testing.assert_array_equal(W2, W2_free)
    assert np.max(np.abs(W1_free @ null)) > 0.1


def test_metrics_report_errors_norm_and_test_loss():
    obj = make_objective("tanh_bias", "cross_entropy", 0.2)
    w = _point(obj)
    m = obj.metrics(w)
    F = obj.predict(w, obj.data.X)
    assert m["train_error"] == pytest.approx(np.mean(np.argmax(F, axis=1) != obj.data.y))
    assert m["norm"] == pytest.approx(np.linalg.norm(w))
    assert m["train_loss"] == pytest.approx(obj.value(w) - 0.1 * w @ w)   # the data term, without weight decay
    F_test = obj.predict(w, obj.data.X_test)
    assert m["test_error"] == pytest.approx(np.mean(np.argmax(F_test, axis=1) != obj.data.y_test))


def test_metrics_of_the_square_loss_report_the_mean_squared_error_and_skip_a_missing_test_set():
    X, y = np.linspace(-1, 1, 5)[:, None], np.arange(5.0)
    obj = gf.Objective(gf.models.DeepLinear([1, 1]), gf.Dataset(X, y))
    m = obj.metrics(np.array([2.0]))
    assert set(m) == {"train_loss", "train_error", "norm"}
    assert m["train_error"] == pytest.approx(np.mean((2 * X[:, 0] - y) ** 2))


def test_metrics_take_the_error_of_a_square_loss_subclass_that_defines_its_own():
    class MeanAbsolute(gf.losses.Square):
        def error(self, F, targets, xp):
            return xp.mean(xp.abs(F - targets), axis=(-2, -1))

    rng = np.random.default_rng(0)
    data = gf.Dataset(rng.standard_normal((5, 2)), rng.standard_normal(5))
    obj = gf.Objective(gf.models.DeepLinear([2, 1]), data, loss=MeanAbsolute())
    w = obj.init(seed=0, scale=1.0)
    metrics = obj.metrics(w)
    residual = data.X @ w - data.y
    assert metrics["train_error"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-12)
    assert metrics["train_loss"] == pytest.approx(0.5 * np.mean(residual ** 2), rel=1e-12)


def test_metrics_of_a_batch_are_arrays():
    obj = make_objective("relu_bias", "logistic", 0.0)
    W = np.stack([_point(obj, seed=s) for s in range(4)])
    m = obj.metrics(W)
    assert all(np.shape(v) == (4,) for v in m.values())
    assert m["train_error"][2] == pytest.approx(obj.metrics(W[2])["train_error"])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), hidden=st.integers(1, 5), depth=st.integers(1, 3),
       activation=st.sampled_from(["tanh", "relu", "linear"]), bias=st.booleans())
def test_hvp_equals_hessian_times_vector_and_hessian_is_symmetric(seed, hidden, depth, activation, bias):
    rng = np.random.default_rng(seed)
    model = gf.models.MLP([2] + [hidden] * depth + [1], activation=activation, bias=bias)
    obj = gf.Objective(model, gf.Dataset(rng.standard_normal((5, 2)), rng.standard_normal(5)))
    w, v = obj.init(seed=seed, scale=0.8), rng.standard_normal(obj.size)
    H = obj.hessian(w)
    scale = max(np.max(np.abs(H)), 1e-300)
    assert np.max(np.abs(H - H.T)) <= 1e-12 * scale
    np.testing.assert_allclose(obj.hvp(w, v), H @ v, rtol=0, atol=1e-12 * scale * np.abs(v).sum())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), steps=st.integers(1, 30))
def test_gd_from_zero_stays_in_the_row_space_of_the_features(seed, steps):
    # Lemma 3: every gradient of a linear model's square loss is Phi^T e, so GD from 0 stays in the row space
    rng = np.random.default_rng(seed)
    features = gf.features.Legendre(degree=15, normalize=True)
    data = gf.Dataset(rng.uniform(-1, 1, (6, 1)), rng.standard_normal(6))
    obj = gf.Objective(gf.models.FeatureRegression(features), data)
    w = np.zeros(obj.size)
    for _ in range(steps):
        w = w - 0.5 * obj.grad(w)
    null_basis = np.linalg.svd(features(data.X))[2][6:]      # rows spanning the null space of Phi
    assert np.linalg.norm(null_basis @ w) <= 1e-10 * max(np.linalg.norm(w), 1.0)



def test_bad_weights_directions_and_inputs_name_the_parameter():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2))
    obj = gf.Objective(gf.models.MLP([2, 3, 1]), gf.Dataset(X, rng.standard_normal(6)))
    w = obj.init(seed=0)
    with pytest.raises(TypeError, match="`w` must hold real numbers; got dtype complex128"):
        obj.value(w + 1j)
    with pytest.raises(TypeError, match="`w` must hold real numbers; got dtype bool"):
        obj.grad(np.zeros(obj.size, dtype=bool))
    with pytest.raises(ValueError, match="with m >= 1"):
        obj.metrics(np.zeros((0, obj.size)))
    with pytest.raises(ValueError, match="`v` must have the shape of the batch `w`"):
        obj.hvp(np.stack([w, w]), np.stack([w, w, w]))
    np.testing.assert_allclose(obj.hvp(np.stack([w, 2 * w]), w), [obj.hvp(w, w), obj.hvp(2 * w, w)])
    with pytest.raises(ValueError, match=r"`X` must be raw inputs of shape \(n, d\).*reshape\(-1, 1\)"):
        obj.output_jacobian(w, X[:, 0])
    with pytest.raises(ValueError, match="`X` must give first-layer inputs"):
        obj.model.forward(w, [[1.0, 2.0, 3.0]])
