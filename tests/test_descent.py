"""GD, SGD and the perturbation protocol (gradflow/descent.py) against closed forms and reference loops."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradflow as gf
from gradflow import _kernels
from gradflow.descent import METHODS, Perturbation, gd, sgd


# --------------------------------------------------------------------------- problems
def legendre_objective(degree=30, weight_decay=0.0):
    """The paper's Figures 4 / 15: 9 Chebyshev points of sin(2π·4x), Legendre features (P = degree + 1)."""
    model = gf.models.FeatureRegression(gf.features.Legendre(degree=degree, normalize=True))
    return gf.Objective(model, gf.data.sine(), loss="square", weight_decay=weight_decay)


def small_quadratic(weight_decay=0.0, n_outputs=1):
    """A full-rank quadratic: 8 random points, degree-3 Legendre features (P = 4 per output)."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (8, 1))
    y = rng.standard_normal(8) if n_outputs == 1 else rng.standard_normal((8, n_outputs))
    model = gf.models.FeatureRegression(gf.features.Legendre(degree=3), n_outputs=n_outputs)
    return gf.Objective(model, gf.Dataset(X, y, X[:3], y[:3]), weight_decay=weight_decay)


def mlp_objective():
    data = gf.data.linear_teacher()
    return gf.Objective(gf.models.MLP([data.d, 4, 1], activation="tanh", bias=True), data)


def numpy_gd(obj, w, lr, steps, perturbation=None):
    """Reference: plain iteration with obj.grad, noise after steps every, 2 every, ... < steps."""
    w = np.array(w, dtype=float)
    kicks = set(perturbation.steps(steps).tolist()) if perturbation else set()
    k = 0
    for s in range(1, steps + 1):
        w = w - lr * obj.grad(w)
        if s in kicks:
            k += 1
            w = w + perturbation.noise(k, w, obj.model.parameter_shapes)
    return w


def null_projector(obj):
    H = obj.hessian(np.zeros(obj.size))
    lam, V = np.linalg.eigh(H)
    N = V[:, lam < 1e-12 * lam.max()]
    return N @ N.T


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("method", ["iterate", "quadratic"])
def test_gd_on_a_quadratic_matches_the_closed_form(method):
    obj = small_quadratic()
    H = obj.hessian(np.zeros(obj.size))
    w_star = np.linalg.solve(H, -obj.grad(np.zeros(obj.size)))
    w0, lr = obj.init(seed=1, scale=1.0), 0.3
    traj = gd(obj, w0, lr=lr, steps=250, record_every=50, method=method)
    assert traj.method == ("gd" if method == "iterate" else "gd-quadratic")
    np.testing.assert_array_equal(traj.t, [0, 50, 100, 150, 200, 250])
    for t, w in zip(traj.t, traj.w):
        expected = w_star + np.linalg.matrix_power(np.eye(obj.size) - lr * H, int(t)) @ (w0 - w_star)
        np.testing.assert_allclose(w, expected, rtol=1e-11, atol=1e-12)


def test_gd_from_zero_converges_to_the_pseudoinverse_and_stays_in_the_row_space():
    obj = legendre_objective()
    Phi, y = np.asarray(obj._inputs), np.asarray(obj.data.y)
    w_pinv = np.linalg.pinv(Phi) @ y  # the paper's Corollary 1: the minimum-norm solution
    traj = gd(obj, np.zeros(obj.size), lr=0.2, steps=2_000_000, record_every=200_000)
    np.testing.assert_allclose(traj.final, w_pinv, rtol=0, atol=1e-9 * np.abs(w_pinv).max())
    assert traj.metrics["train_loss"][-1] < 1e-20
    leave_row_space = null_projector(obj)
    assert np.abs(traj.w @ leave_row_space).max() < 1e-12
    short = gd(obj, np.zeros(obj.size), lr=0.2, steps=3000, record_every=500, method="iterate")
    assert np.abs(short.w @ leave_row_space).max() < 1e-12
    assert np.all(np.diff(short.loss) < 0)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 6), degree=st.integers(6, 12), seed=st.integers(0, 2**16))
def test_gd_from_zero_stays_in_the_row_space_of_the_features(n, degree, seed):
    rng = np.random.default_rng(seed)
    data = gf.Dataset(rng.uniform(-1, 1, (n, 1)), rng.standard_normal(n))
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(degree=degree, normalize=True)), data)
    Phi = np.asarray(obj._inputs)
    traj = gd(obj, np.zeros(obj.size), lr=0.5, steps=200, record_every=50, method="iterate")
    row_space = np.linalg.pinv(Phi) @ Phi
    np.testing.assert_allclose(traj.w @ row_space, traj.w, atol=1e-12)


# --------------------------------------------------------------------------- quadratic path = iteration
@pytest.mark.parametrize(
    "case", ["plain", "perturbed", "relative", "weight_decay", "batch", "two_outputs"])
def test_the_quadratic_propagator_equals_iteration(case):
    obj = small_quadratic(n_outputs=2) if case == "two_outputs" else legendre_objective(
        weight_decay=0.01 if case == "weight_decay" else 0.0)
    pert = {"perturbed": Perturbation(700, 0.6, seed=4), "relative": Perturbation(650, 0.25, relative=True),
            "weight_decay": Perturbation(900, 0.3), "batch": Perturbation(1000, 0.6)}.get(case)
    w0 = np.stack([obj.init(seed=s, scale=1.0) for s in range(4)]) if case == "batch" else obj.init(seed=2, scale=1.0)
    kwargs = dict(lr=0.2, steps=3210, record_every=333, perturbation=pert)
    it = gd(obj, w0, method="iterate", **kwargs)
    quad = gd(obj, w0, method="quadratic", **kwargs)
    assert quad.method == "gd-quadratic" and it.method == "gd"
    # 9 points fix 9 of the 31 Legendre directions; weight decay (and the full-rank small problem) leave no null space
    assert quad.info["null_space_dim"] == (0 if case in ("weight_decay", "two_outputs") else obj.size - 9)
    np.testing.assert_array_equal(quad.t, it.t)
    assert quad.t[-1] == 3210 and quad.w.shape == it.w.shape
    scale = np.abs(it.w).max()
    np.testing.assert_allclose(quad.w, it.w, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(quad.loss, it.loss, rtol=1e-9, atol=1e-14)
    for name in it.metrics:
        np.testing.assert_allclose(quad.metrics[name], it.metrics[name], rtol=1e-9, atol=1e-14)



def test_the_quadratic_propagator_keeps_the_drift_of_unresolved_eigenvalues():
    """Monomial features of degree 25 on 40 points: H has eigenvalues below P eps lambda_max that are not a null
    space (b has coordinates ~1e-9 along them, far above rounding); dropping their drift lr s beta_j put the
    propagator 5e-5 away from iterating after 50,000 steps."""
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Monomial(degree=25)), gf.data.sine(n_train=40))
    w0 = obj.init(seed=0)
    lr = 1 / np.linalg.eigvalsh(obj.hessian(w0))[-1]
    quad = gd(obj, w0, lr=lr, steps=50_000, record_every=25_000, method="quadratic")
    it = gd(obj, w0, lr=lr, steps=50_000, record_every=25_000, method="iterate")
    assert quad.info["null_space_dim"] > 0
    np.testing.assert_allclose(quad.w, it.w, rtol=0, atol=1e-8 * np.abs(it.w).max())

def test_auto_picks_the_quadratic_path_only_for_quadratic_objectives():
    assert gd(legendre_objective(), np.zeros(31), steps=10).method == "gd-quadratic"
    obj = mlp_objective()
    assert gd(obj, obj.init(seed=0), steps=10).method == "gd"


class _PenalizedRegression(gf.Objective):
    """Feature regression plus (c/4) ||w||_4^4: a subclass of Objective with a FeatureRegression model and the square
    loss that is no longer quadratic."""

    c = 0.5

    def value(self, w):
        return super().value(w) + self.c / 4 * np.sum(np.asarray(w) ** 4, axis=-1)

    def grad(self, w):
        return super().grad(w) + self.c * np.asarray(w) ** 3


def test_a_subclass_of_objective_is_iterated_not_taken_for_a_quadratic():
    base = legendre_objective(degree=8)
    obj = _PenalizedRegression(base.model, base.data)
    w0 = np.ones(obj.size)
    traj = gd(obj, w0, lr=0.1, steps=2000, record_every=2000)
    assert traj.method == "gd" and traj.success
    np.testing.assert_allclose(traj.final, numpy_gd(obj, w0, 0.1, 2000), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(traj.loss[-1], obj.value(traj.final), rtol=1e-12)
    with pytest.raises(ValueError, match=r"`method` 'quadratic' needs a quadratic objective"):
        gd(obj, w0, steps=10, method="quadratic")


# --------------------------------------------------------------------------- engines and batches
def test_compiled_gd_matches_a_plain_numpy_loop():
    obj = mlp_objective()
    w0, pert = obj.init(seed=1, scale=0.5), Perturbation(40, 0.1, seed=2)
    traj = gd(obj, w0, lr=0.1, steps=130, record_every=50, perturbation=pert)
    assert traj.info["engine"] == "compiled" and traj.nfev == 130
    np.testing.assert_allclose(traj.final, numpy_gd(obj, w0, 0.1, 130, pert), rtol=1e-10, atol=1e-12)


def test_gd_on_a_compiled_symbolic_objective_matches_gd_on_the_numeric_one():
    """The same deep linear net and data, numeric and sympy-compiled: the same GD path, perturbations included."""
    data = gf.data.linear_teacher(n=6, n_test=4, d=2, seed=1)
    model = gf.models.DeepLinear([data.d, 2, 1])
    numeric = gf.Objective(model, data)
    compiled = gf.symbolic.network_loss([data.d, 2, 1], data=data).compile()
    assert compiled.parameter_shapes == numeric.parameter_shapes
    W0 = np.stack([numeric.init(seed=s, scale=0.5) for s in range(3)])
    pert = Perturbation(60, 0.2, relative=True, seed=4)
    a = gd(numeric, W0, lr=0.05, steps=200, record_every=50, perturbation=pert)
    b = gd(compiled, W0, lr=0.05, steps=200, record_every=50, perturbation=pert)
    assert b.status == "success" and b.info["engine"] == "compiled" and b.w.shape == a.w.shape
    np.testing.assert_allclose(b.w, a.w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-10, atol=1e-14)


def test_gd_on_a_compiled_objective_reports_divergence_with_the_stable_bound():
    import sympy as sp
    w1, w2 = sp.symbols("w1 w2")
    compiled = gf.symbolic.from_expr((w1 * w2 - 1) ** 2 / 2, [w1, w2]).compile()
    traj = gd(compiled, [3.0, 3.0], lr=1.0, steps=100)
    assert traj.status == "diverged" and "λ_max = 26" in traj.message
    with pytest.raises(TypeError, match=r"`obj` must be a gradflow.Objective for SGD .* Use gf.gd"):
        sgd(compiled, [1.0, 1.0])


def test_the_array_engine_matches_a_plain_numpy_loop(monkeypatch):
    monkeypatch.setattr(_kernels, "compiled_kernels", lambda obj: None)
    obj = mlp_objective()
    w0, pert = obj.init(seed=1, scale=0.5), Perturbation(40, 0.1, seed=2)
    traj = gd(obj, w0, lr=0.1, steps=130, record_every=50, perturbation=pert)
    assert traj.info["engine"] == "array"
    np.testing.assert_allclose(traj.final, numpy_gd(obj, w0, 0.1, 130, pert), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("engine", ["compiled", "array"])
def test_batched_gd_equals_per_repetition_gd(engine, monkeypatch):
    if engine == "array":
        monkeypatch.setattr(_kernels, "compiled_kernels", lambda obj: None)
    obj = mlp_objective()
    W0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(3)])
    batch = gd(obj, W0, lr=0.1, steps=120, record_every=40)
    assert batch.w.shape == (4, 3, obj.size) and batch.loss.shape == (4, 3)
    assert all(v.shape == (4, 3) for v in batch.metrics.values())
    for r in range(3):
        single = gd(obj, W0[r], lr=0.1, steps=120, record_every=40)
        np.testing.assert_allclose(batch.w[:, r], single.w, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(batch.loss[:, r], single.loss, rtol=1e-12)


def test_blocks_end_at_perturbations_and_at_their_work_and_memory_bounds(monkeypatch):
    from gradflow import descent

    boundaries = np.array([0, 10, 20, 30, 40, 50, 60])
    kicks = np.isin(boundaries, [20, 50])
    blocks = lambda: [boundaries[b].tolist() for b in descent._blocks(boundaries, kicks, weights_per_step=4)]
    assert blocks() == [[0, 10, 20], [30, 40, 50], [60]]
    monkeypatch.setattr(descent, "BLOCK_UPDATES", 4 * 25)                # at most 25 steps a block
    assert blocks() == [[0, 10, 20], [30, 40], [50], [60]]
    monkeypatch.setattr(descent, "BLOCK_UPDATES", 4 * 15)                # at most 15
    assert blocks() == [[0, 10], [20], [30], [40], [50], [60]]
    monkeypatch.setattr(descent, "BLOCK_STATES", 4 * 1)                  # one state a block
    assert blocks() == [[b] for b in boundaries.tolist()]


@pytest.mark.parametrize("engine", ["compiled", "array"])
def test_a_run_in_blocks_equals_the_reference_loop_and_stops_at_the_first_bad_record(engine, monkeypatch):
    from gradflow import descent

    if engine == "array":
        monkeypatch.setattr(_kernels, "compiled_kernels", lambda obj: None)
    obj = mlp_objective()
    W0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(3)])
    perturbation = Perturbation(50, 0.05, seed=2)
    whole = gd(obj, W0, lr=0.1, steps=230, record_every=20, perturbation=perturbation)
    one = gd(obj, W0[0], lr=0.1, steps=230, record_every=20, perturbation=perturbation)
    monkeypatch.setattr(descent, "BLOCK_STATES", 1)                      # one boundary a call
    np.testing.assert_array_equal(gd(obj, W0, lr=0.1, steps=230, record_every=20, perturbation=perturbation).w, whole.w)
    np.testing.assert_allclose(one.final, numpy_gd(obj, W0[0], 0.1, 230, perturbation), rtol=1e-12, atol=1e-14)
    # lr far past the stable bound: the blow-up is found at the first record past it, inside a block
    monkeypatch.setattr(descent, "BLOCK_STATES", 2**22)
    with np.errstate(all="ignore"):
        traj = gd(obj, W0, lr=1e3, steps=2000, record_every=5)
    assert traj.status == "diverged" and traj.info["steps_done"] == traj.t[-1] + 5
    assert np.isfinite(traj.w).all() and traj.n_points >= 1


@pytest.mark.parametrize("make", [legendre_objective, mlp_objective], ids=["feature_regression", "mlp"])
def test_recorded_loss_and_metrics_are_those_of_the_objective(make):
    obj = make()
    obj = gf.Objective(obj.model, obj.data, loss="square", weight_decay=0.05)
    W0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(2)])
    traj = gd(obj, W0, lr=0.1, steps=100, record_every=30, method="iterate")
    np.testing.assert_array_equal(traj.t, [0, 30, 60, 90, 100])
    for i, w in enumerate(traj.w):
        np.testing.assert_allclose(traj.loss[i], obj.value(w), rtol=1e-12)
        expected = obj.metrics(w)
        assert set(traj.metrics) == set(expected)
        for name, value in expected.items():
            np.testing.assert_allclose(traj.metrics[name][i], value, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make", [lambda: legendre_objective(weight_decay=0.01),
                                  lambda: small_quadratic(weight_decay=0.1, n_outputs=3),
                                  lambda: gf.Objective(legendre_objective().model, gf.data.sine(n_test=0))],
                         ids=["more_features_than_points", "three_outputs", "no_test_set"])
def test_the_path_metrics_of_a_quadratic_objective_are_its_metrics(make):
    # from the QR factors of the feature matrices, in chunks of rows, instead of from the predictions
    from gradflow import _quadratic
    from gradflow.trajectory import evaluate_path

    obj = make()
    rng = np.random.default_rng(5)
    W = rng.standard_normal((9001, obj.size)) * rng.choice([1e-3, 1.0, 30.0], size=(9001, 1))   # several chunks
    W[3, 0], W[4, -1], W[5] = np.inf, np.nan, 1e200                           # a path that blew up
    finite = np.isfinite(W).all(axis=1)
    assert _quadratic.is_quadratic(obj)
    with np.errstate(all="ignore"):
        expected, expected_loss = obj.metrics(W), obj.value(W)
        for loss, metrics in (_quadratic.path_metrics(obj, W), evaluate_path(obj, W)):
            assert list(metrics) == list(expected)
            assert not np.isfinite(loss[~finite]).any()           # inf or NaN, whichever the products make of it
            np.testing.assert_allclose(loss[finite], expected_loss[finite], rtol=1e-12)
            for name, value in expected.items():
                np.testing.assert_allclose(metrics[name][finite], value[finite], rtol=1e-12, err_msg=name)
    if obj.data.n < obj.size // obj.model.n_outputs:      # an interpolant exists: its training loss is 0 to rounding
        exact = np.linalg.lstsq(np.asarray(obj._inputs), np.asarray(obj._targets), rcond=None)[0].T.reshape(1, -1)
        assert 0.0 <= _quadratic.path_metrics(obj, exact)[1]["train_loss"][0] <= 1e-25


def test_the_qr_route_is_taken_only_where_it_saves_work():
    from gradflow import _quadratic

    figure_4 = legendre_objective()                   # 9 + 100 points, 31 features: 40 products a row instead of 109
    assert _quadratic.metrics_by_qr_pay(figure_4, 2 * 109) and not _quadratic.metrics_by_qr_pay(figure_4, 2 * 109 - 1)
    no_test = gf.Objective(figure_4.model, gf.data.sine(n_test=0))          # 9 points of 31 features: nothing saved
    assert not _quadratic.metrics_by_qr_pay(no_test, 10**6)


# --------------------------------------------------------------------------- health
@pytest.mark.parametrize("method", ["iterate", "quadratic"])
def test_a_step_above_two_over_lambda_max_diverges_with_a_helpful_message(method):
    obj = legendre_objective()
    lam_max = np.linalg.eigvalsh(obj.hessian(np.zeros(obj.size)))[-1]
    W0 = np.stack([obj.init(seed=s) for s in range(2)])
    traj = gd(obj, W0, lr=1.2 * 2 / lam_max, steps=20_000, record_every=100, method=method)
    assert traj.status == "diverged" and not traj.success
    assert "λ_max" in traj.message and f"{lam_max:.6g}" in traj.message and f"{2 / lam_max:.6g}" in traj.message
    assert "smaller lr" in traj.message
    assert 1 <= traj.n_points < 201
    assert np.isfinite(traj.w).all() and np.isfinite(traj.loss).all()
    assert all(np.isfinite(v).all() for v in traj.metrics.values())



@pytest.mark.parametrize("method", ["iterate", "quadratic"])
def test_a_short_run_past_the_stable_bound_of_a_quadratic_is_diverged_with_either_engine(method):
    """Ten steps at lr = 2.5 / lambda_max leave the weights finite, but the run is unstable: both engines say so."""
    obj = small_quadratic()
    lam_max = np.linalg.eigvalsh(obj.hessian(np.zeros(obj.size)))[-1]
    traj = gd(obj, obj.init(seed=0), lr=2.5 / lam_max, steps=10, record_every=5, method=method)
    assert traj.status == "diverged" and "lr * λ_max = 2.5 > 2" in traj.message
    assert np.isfinite(traj.w).all()
    assert gd(obj, obj.init(seed=0), lr=1.9 / lam_max, steps=10, record_every=5, method=method).status == "success"

def test_divergence_of_a_nonlinear_net_is_reported_not_returned_as_nan():
    obj = mlp_objective()
    traj = gd(obj, obj.init(seed=0, scale=1.0), lr=1e3, steps=5000, record_every=10)
    assert traj.status == "diverged" and "λ_max" in traj.message
    assert np.isfinite(traj.w).all() and np.isfinite(traj.loss).all()


@pytest.mark.parametrize("method", ["iterate", "quadratic"])
def test_a_divergence_after_huge_perturbations_blames_the_noise_not_the_step_size(method):
    obj = legendre_objective()
    W0 = np.stack([obj.init(seed=i) for i in range(3)])
    traj = gd(obj, W0, lr=0.2, steps=100, record_every=10, perturbation=Perturbation(20, 1e60), method=method)
    assert traj.status == "diverged" and traj.t[-1] == 20 and np.isfinite(traj.w).all()
    assert "which lr = 0.2 satisfies; 1 perturbation(s) came before" in traj.message
    assert traj.info["steps_done"] == 30                   # the first record after the kick, where it is found
    assert "Lower the perturbation's sigma" in traj.message and "curvature grew" not in traj.message


def test_a_loss_that_is_not_finite_at_w0_is_reported_as_such():
    data = gf.data.linear_teacher()
    obj = gf.Objective(gf.models.DeepLinear([31, 5, 1]), gf.Dataset(np.asarray(data.X) * 1e200, np.asarray(data.y)))
    with np.errstate(all="ignore"):
        traj = gd(obj, obj.init(seed=0), lr=0.1, steps=20, record_every=5)
    assert traj.status == "diverged" and traj.n_points == 0
    assert traj.message.startswith("the loss is not finite at w0") and "Rescale the data" in traj.message


def test_a_stable_run_succeeds():
    traj = gd(legendre_objective(), np.zeros(31), steps=1000, progress=False)
    assert traj.status == "success" and traj.success and "1000 steps" in traj.message


# --------------------------------------------------------------------------- perturbations
def test_perturbations_come_after_every_multiple_of_every_but_not_at_zero_or_after_the_last_step():
    np.testing.assert_array_equal(Perturbation(100, 0.5).steps(300), [100, 200])
    np.testing.assert_array_equal(Perturbation(100, 0.5).steps(301), [100, 200, 300])
    obj = small_quadratic()
    w0 = obj.init(seed=0)
    traj = gd(obj, w0, lr=0.1, steps=300, record_every=1, perturbation=Perturbation(100, 0.5), method="iterate")
    assert traj.info["perturbations_applied"] == 2
    np.testing.assert_allclose(traj.final, numpy_gd(obj, w0, 0.1, 300, Perturbation(100, 0.5)), rtol=1e-12)
    # the record at a perturbation step is taken before the noise; step 101 starts from the perturbed weights
    kicked = traj.w[100] + Perturbation(100, 0.5).noise(1, traj.w[100])
    np.testing.assert_allclose(kicked - 0.1 * obj.grad(kicked), traj.w[101], rtol=1e-12)
    np.testing.assert_allclose(traj.w[99] - 0.1 * obj.grad(traj.w[99]), traj.w[100], rtol=1e-12)


def test_relative_perturbation_has_the_per_layer_standard_deviation():
    model = gf.models.DeepLinear([400, 100, 3])
    rng = np.random.default_rng(0)
    layers = [[2.0 * rng.standard_normal((100, 400)), 0.1 * rng.standard_normal((3, 100))],
              [0.5 * rng.standard_normal((100, 400)), 3.0 * rng.standard_normal((3, 100))]]
    W = np.stack([model.flatten(arrays) for arrays in layers])
    noise = Perturbation(1, 0.25, relative=True, seed=7).noise(1, W, model.parameter_shapes)
    for r in range(2):
        for l, (a, b) in enumerate([(0, 40_000), (40_000, 40_300)]):
            expected = 0.25 * np.std(W[r, a:b])
            tol = 0.02 if b - a > 1000 else 0.2
            assert abs(np.std(noise[r, a:b]) / expected - 1) < tol, (r, l)
            assert abs(np.mean(noise[r, a:b])) < 4 * expected / np.sqrt(b - a)


def test_relative_perturbation_scales_a_bias_by_its_layers_weights():
    model = gf.models.MLP([50, 40, 1], activation="tanh", bias=True)
    rng = np.random.default_rng(1)
    arrays = [2.0 * rng.standard_normal((40, 50)), np.zeros(40), 0.5 * rng.standard_normal((1, 40)), np.zeros(1)]
    w = model.flatten(arrays)
    noise = model._split(Perturbation(1, 0.25, relative=True, seed=3).noise(1, w, model.parameter_shapes), np)
    z = model._split(np.random.default_rng([3, 1]).standard_normal(w.shape), np)
    for layer, bias in ((0, 1), (2, 3)):
        scale = 0.25 * np.std(arrays[layer])
        np.testing.assert_allclose(noise[layer], scale * z[layer], rtol=1e-12)
        np.testing.assert_allclose(noise[bias], scale * z[bias], rtol=1e-12)      # all-zero biases still move


def test_absolute_perturbation_is_seeded_and_independent_across_repetitions():
    W = np.zeros((2, 5000))
    a = Perturbation(10, 0.6, seed=1).noise(3, W)
    np.testing.assert_array_equal(a, Perturbation(10, 0.6, seed=1).noise(3, W))
    assert not np.allclose(a, Perturbation(10, 0.6, seed=2).noise(3, W))
    assert not np.allclose(a, Perturbation(10, 0.6, seed=1).noise(4, W))
    assert abs(np.std(a) / 0.6 - 1) < 0.03
    assert abs(np.corrcoef(a[0], a[1])[0, 1]) < 0.06


def test_gd_with_the_same_perturbation_seed_repeats_and_another_seed_differs():
    obj, w0 = legendre_objective(), np.zeros(31)
    run = lambda seed: gd(obj, w0, steps=5000, perturbation=Perturbation(1000, 0.6, seed=seed)).final
    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))


def test_perturbed_gd_returns_to_zero_loss_while_the_null_space_keeps_the_noise():
    """Section 4.1, predictions 1 and 2, on the degenerate Figure 4 problem."""
    obj = legendre_objective()
    Phi, y = np.asarray(obj._inputs), np.asarray(obj.data.y)
    w_pinv = np.linalg.pinv(Phi) @ y
    pert, every, steps = Perturbation(40_000, 0.6, seed=5), 40_000, 200_000
    traj = gd(obj, w_pinv, lr=0.2, steps=steps, record_every=every, perturbation=pert)
    assert traj.status == "success" and traj.info["perturbations_applied"] == 4
    assert np.all(traj.metrics["train_loss"] < 1e-18)  # recorded just before each perturbation, and at the end
    to_null = null_projector(obj)
    total_noise = sum(pert.noise(k, w_pinv) for k in range(1, 5))
    for i in range(1, traj.n_points):
        expected_null = sum(pert.noise(k, w_pinv) for k in range(1, i)) @ to_null if i > 1 else np.zeros(31)
        np.testing.assert_allclose(traj.w[i] @ to_null, expected_null, atol=1e-10)
    np.testing.assert_allclose(traj.final @ to_null, total_noise @ to_null, atol=1e-10)
    np.testing.assert_allclose(traj.final - traj.final @ to_null, w_pinv, atol=1e-8)  # the row space returns
    assert np.all(np.diff(traj.metrics["norm"][1:]) != 0) and traj.metrics["norm"][-1] > traj.metrics["norm"][0]


# --------------------------------------------------------------------------- SGD
def reference_sgd(obj, w0, lr, steps, batch_size, seed):
    """The documented sampling, written out: reshuffle each epoch, sorted consecutive batches, sub-Objectives."""
    rng = np.random.default_rng(seed)
    X, y = np.asarray(obj.data.X), np.asarray(obj.data.y)
    W = np.atleast_2d(np.array(w0, dtype=float))
    m, n = W.shape[0], X.shape[0]
    position, order = n, None
    for _ in range(steps):
        if position >= n:
            order, position = rng.permuted(np.tile(np.arange(n), (m, 1)), axis=1), 0
        idx = np.sort(order[:, position:position + batch_size], axis=1)
        position = min(position + batch_size, n)
        for r in range(m):
            sub = gf.Objective(obj.model, gf.Dataset(X[idx[r]], y[idx[r]]), loss=obj.loss, weight_decay=obj.weight_decay)
            W[r] = W[r] - lr * sub.grad(W[r])
    return W if np.ndim(w0) == 2 else W[0]


@pytest.mark.parametrize("batch", [False, True])
def test_sgd_follows_the_documented_minibatch_sampling(batch):
    obj = gf.Objective(mlp_objective().model, gf.data.linear_teacher(), weight_decay=0.01)
    w0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(2)]) if batch else obj.init(seed=0, scale=0.5)
    traj = sgd(obj, w0, lr=0.05, steps=23, batch_size=7, seed=3, record_every=10)
    np.testing.assert_array_equal(traj.t, [0, 10, 20, 23])
    np.testing.assert_allclose(traj.final, reference_sgd(obj, w0, 0.05, 23, 7, 3), rtol=1e-12, atol=1e-14)
    assert traj.method == "sgd" and traj.info["batch_size"] == 7


@pytest.mark.parametrize("batch", [False, True])
def test_compiled_sgd_equals_the_array_engine(monkeypatch, batch):
    rng = np.random.default_rng(0)
    data = gf.Dataset(rng.standard_normal((40, 5)), rng.integers(0, 3, 40))
    obj = gf.Objective(gf.models.MLP([5, 8, 3], activation="tanh", bias=True), data, loss="cross_entropy",
                       weight_decay=0.01)
    w0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(3)]) if batch else obj.init(seed=0, scale=0.5)
    pert = Perturbation(every=120, sigma=0.01, seed=2)
    compiled = sgd(obj, w0, lr=0.1, steps=400, batch_size=7, seed=3, record_every=50, perturbation=pert)
    monkeypatch.setattr(_kernels, "compiled_kernels", lambda obj: None)
    array = sgd(obj, w0, lr=0.1, steps=400, batch_size=7, seed=3, record_every=50, perturbation=pert)
    assert (compiled.info["engine"], array.info["engine"]) == ("compiled-minibatch", "minibatch")
    np.testing.assert_allclose(compiled.w, array.w, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_compiled_loops_on_layers_large_enough_for_blas_equal_the_array_engine(monkeypatch, method):
    # 40 x 20 weights on 60 samples (and on mini-batches of 16): the kernels call BLAS, one thread per repetition
    rng = np.random.default_rng(0)
    data = gf.Dataset(rng.standard_normal((60, 20)), rng.integers(0, 3, 60))
    obj = gf.Objective(gf.models.MLP([20, 40, 3], activation="relu", bias=True), data, loss="cross_entropy")
    assert _kernels.calls_blas(_kernels.compiled_kernels(obj), 16)
    W0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(3)])

    def run(w0):
        if method == "gd":
            return gd(obj, w0, lr=0.1, steps=60, record_every=20)
        return sgd(obj, w0, lr=0.1, steps=60, batch_size=16, seed=3, record_every=20)

    batch = run(W0)
    assert batch.info["engine"].startswith("compiled")
    if method == "gd":                                 # (SGD's repetitions in a batch draw their own mini-batches)
        np.testing.assert_allclose(batch.w[:, 1], run(W0[1]).w, rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(_kernels, "compiled_kernels", lambda obj: None)
    array = run(W0)
    assert not array.info["engine"].startswith("compiled")
    np.testing.assert_allclose(batch.w, array.w, rtol=1e-11, atol=1e-13)


def test_sgd_with_the_whole_data_set_as_batch_equals_gd():
    obj = mlp_objective()
    w0, pert = obj.init(seed=4, scale=0.5), Perturbation(30, 0.05)
    a = sgd(obj, w0, lr=0.1, steps=100, batch_size=obj.data.n, record_every=25, perturbation=pert)
    b = gd(obj, w0, lr=0.1, steps=100, record_every=25, perturbation=pert, method="iterate")
    np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(a.loss, b.loss)


def test_sgd_is_seeded():
    obj = mlp_objective()
    w0 = obj.init(seed=0, scale=0.5)
    run = lambda seed: sgd(obj, w0, lr=0.05, steps=60, batch_size=4, seed=seed).final
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.allclose(run(1), run(2))


def test_sgd_divergence_is_reported():
    obj = legendre_objective()
    traj = sgd(obj, obj.init(seed=0), lr=500.0, steps=2000, batch_size=3, record_every=10)
    assert traj.status == "diverged" and "λ_max" in traj.message and np.isfinite(traj.w).all()


# --------------------------------------------------------------------------- progress
def test_progress_bar_can_be_forced_on_and_off(capsys):
    obj = small_quadratic()
    gd(obj, np.zeros(4), steps=300, record_every=100, progress=True, method="iterate")
    assert "GD" in capsys.readouterr().err
    gd(obj, np.zeros(4), steps=300, record_every=100, progress=False, method="iterate")
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, error, match", [
    ({"w0": np.zeros(5)}, ValueError, r"`w0` must have shape \(4,\) or \(m, 4\).*got shape \(5,\)"),
    ({"w0": np.zeros((2, 3, 4))}, ValueError, r"`w0` must have shape"),
    ({"w0": np.array([0.0, np.nan, 0.0, 0.0])}, ValueError, r"`w0` must be finite"),
    ({"w0": "zeros"}, TypeError, r"`w0`"),
    ({"lr": 0.0}, ValueError, r"`lr` must be a positive step size.*got 0.0"),
    ({"lr": -0.1}, ValueError, r"`lr` must be a positive"),
    ({"lr": "big"}, TypeError, r"`lr` must be a real number"),
    ({"steps": 0}, ValueError, r"`steps` must be an integer >= 1.*got 0"),
    ({"steps": 2.5}, TypeError, r"`steps` must be an integer"),
    ({"record_every": 0}, ValueError, r"`record_every` must be an integer >= 1"),
    ({"method": "newton"}, ValueError, r"`method` must be one of 'auto', 'iterate', 'quadratic'; got 'newton'"),
    ({"perturbation": 0.6}, TypeError, r"`perturbation` must be None or a gradflow.Perturbation"),
    ({"progress": "yes"}, TypeError, r"`progress` must be True or False"),
    ({"w0": None}, TypeError, r"`w0` must be an array of 4 real initial weights; got None"),
    ({"w0": np.zeros(4) + 1j}, TypeError, r"`w0` must be an array of 4 real initial weights; got an array .*complex"),
    ({"perturbation": Perturbation(5, 0.25, relative=True)}, ValueError,
     r"`perturbation` is relative.*layer 1 has a single weight"),
])
def test_gd_validates_its_inputs(kwargs, error, match):
    obj = small_quadratic()
    if "perturbation" in kwargs:                      # the paper's w1 w2 net: one weight per layer
        obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)))
    args = {"obj": obj, "w0": np.zeros(obj.size), "steps": 10} | kwargs
    with pytest.raises(error, match=match):
        gd(**args)


def test_numpy_booleans_are_accepted_where_a_bool_is_asked_for():
    obj = small_quadratic()
    assert gd(obj, np.zeros(4), steps=3, progress=np.False_).success
    assert Perturbation(2, 0.25, relative=np.True_).relative is True


def test_gd_refuses_a_non_objective_and_the_quadratic_method_on_a_nonquadratic_loss():
    with pytest.raises(TypeError, match=r"`obj` must be a gradflow.Objective"):
        gd(lambda w: w, np.zeros(3))
    obj = mlp_objective()
    with pytest.raises(ValueError, match=r"`method` 'quadratic' needs a quadratic objective"):
        gd(obj, obj.init(), steps=10, method="quadratic")
    assert set(METHODS) == {"auto", "iterate", "quadratic"}


@pytest.mark.parametrize("batch_size, error, match", [
    (10, ValueError, r"`batch_size` must be between 1 and the number of training samples n = 8; got 10"),
    (0, ValueError, r"`batch_size` must be between 1"),
    (2.0, TypeError, r"`batch_size` must be an integer"),
])
def test_sgd_validates_batch_size(batch_size, error, match):
    with pytest.raises(error, match=match):
        sgd(small_quadratic(), np.zeros(4), steps=5, batch_size=batch_size)


def test_sgd_validates_its_seed_and_step_size():
    with pytest.raises(ValueError, match=r"`seed` must be a non-negative integer"):
        sgd(small_quadratic(), np.zeros(4), steps=5, seed=-1)
    with pytest.raises(ValueError, match=r"`lr` must be a positive"):
        sgd(small_quadratic(), np.zeros(4), lr=0, steps=5)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"every": 0, "sigma": 0.6}, ValueError, r"`every` must be an integer >= 1"),
    ({"every": 1.5, "sigma": 0.6}, TypeError, r"`every` must be an integer"),
    ({"every": 10, "sigma": -0.6}, ValueError, r"`sigma` must be a standard deviation >= 0"),
    ({"every": 10, "sigma": float("nan")}, ValueError, r"`sigma` must be finite"),
    ({"every": 10, "sigma": 0.6, "relative": 1}, TypeError, r"`relative` must be True or False"),
    ({"every": 10, "sigma": 0.6, "seed": -2}, ValueError, r"`seed` must be a non-negative integer"),
])
def test_perturbation_validates_its_fields(kwargs, error, match):
    with pytest.raises(error, match=match):
        Perturbation(**kwargs)


def test_perturbation_is_frozen_and_a_relative_one_needs_the_layer_shapes():
    p = Perturbation(10, 0.25, relative=True)
    with pytest.raises(AttributeError):
        p.sigma = 1.0
    with pytest.raises(ValueError, match=r"`parameter_shapes` is needed"):
        p.noise(1, np.ones(4))


def test_the_quadratic_path_is_chosen_only_where_its_dense_hessian_fits(monkeypatch):
    from gradflow import _validation

    obj = legendre_objective()
    w0 = obj.init(seed=0, scale=0.5)
    assert gd(obj, w0, lr=0.1, steps=20).info["engine"] == "spectral"
    monkeypatch.setattr(_validation, "physical_memory", lambda: 8 * obj.size ** 2)   # room for half a P x P matrix
    auto = gd(obj, w0, lr=0.1, steps=20)
    assert auto.info["engine"] == "compiled" and auto.success
    np.testing.assert_allclose(auto.final, numpy_gd(obj, w0, 0.1, 20, None), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"`method` 'quadratic' .*holds dense P x P matrices.*method='iterate'"):
        gd(obj, w0, lr=0.1, steps=20, method="quadratic")


def test_compiled_sgd_runs_long_stretches_between_records_in_bounded_calls(monkeypatch):
    from gradflow import descent

    rng = np.random.default_rng(1)
    data = gf.Dataset(rng.standard_normal((30, 4)), rng.standard_normal(30))
    obj = gf.Objective(gf.models.MLP([4, 6, 1], activation="tanh"), data)
    W0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(2)])
    whole = sgd(obj, W0, lr=0.05, steps=50, batch_size=4, seed=2, record_every=50)
    monkeypatch.setattr(descent, "SGD_STEPS_PER_CALL", 7)          # 50 steps in calls of 7: the same batches
    pieces = sgd(obj, W0, lr=0.05, steps=50, batch_size=4, seed=2, record_every=50)
    assert whole.info["engine"] == pieces.info["engine"] == "compiled-minibatch"
    np.testing.assert_array_equal(pieces.w, whole.w)


@pytest.mark.parametrize("run", [lambda obj, W0, every: gd(obj, W0, lr=0.1, steps=1000, record_every=every),
                                 lambda obj, W0, every: sgd(obj, W0, lr=0.1, steps=1000, batch_size=4, record_every=every)],
                         ids=["gd", "sgd"])
def test_a_path_too_large_to_record_is_refused_before_any_step(monkeypatch, run):
    from gradflow import _validation

    obj = mlp_objective()
    W0 = np.stack([obj.init(seed=s, scale=0.5) for s in range(3)])
    # 1,001 records of 3 x P weights, held twice: about 48 kB x P; the machine "has" 2 records' worth
    monkeypatch.setattr(_validation, "physical_memory", lambda: 2 * 2 * 8 * 11 * 3 * obj.size)
    with pytest.raises(ValueError, match=r"`record_every` = 1 records 1,001 points of 3 x \d+ weights.*Raise record_every"):
        run(obj, W0, 1)
    assert run(obj, W0, 100).success                                  # 11 records fit
