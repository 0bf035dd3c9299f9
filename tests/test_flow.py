"""The gradient-flow ODE: every method against expm on linear flows, orders of convergence, scipy step by step."""

import json
import re
import zipfile

import numba
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from scipy.integrate._ivp import rk as scipy_rk

import gradflow as gf
from gradflow import _integrators, _kernels
from gradflow import flow as flow_module
from gradflow.flow import GradientFlow
from gradflow.trajectory import Trajectory

COMPILED = ["dopri5", "dop853", "exprb32", "bdf"]
SCIPY = ["RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA"]
EXACT = ["quadratic"]


@pytest.fixture(scope="module")
def quadratic():
    """Feature regression with weight decay: a linear flow w' = -(H w - b), solvable by expm."""
    data = gf.data.sine(n_train=9, n_test=20)
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(degree=6)), data, weight_decay=0.01)
    H = obj.hessian(np.zeros(obj.size))
    b = -obj.grad(np.zeros(obj.size))
    return obj, H, b


def _exact_linear(H, b, w0, times):
    w_star = np.linalg.solve(H, b)
    return np.array([w_star + scipy.linalg.expm(-H * t) @ (w0 - w_star) for t in times])


@pytest.fixture(scope="module")
def two_parameter():
    """L = 1/2 (w1 w2 - 1)^2: the paper's degenerate two-layer example, as a DeepLinear([1, 1, 1]) net on x = 1, y = 1."""
    return gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)))


def test_rhs_and_jacobian_are_minus_gradient_and_hessian(quadratic):
    obj = quadratic[0]
    flow = gf.GradientFlow(obj)
    w = obj.init(seed=0, scale=1.0)
    np.testing.assert_array_equal(flow.rhs(0.0, w), -obj.grad(w))
    np.testing.assert_array_equal(flow.jacobian(0.0, w), -obj.hessian(w))


def test_methods_lists_every_accepted_name():
    assert set(COMPILED + SCIPY + EXACT + ["auto"]) == set(gf.GradientFlow.METHODS)
    assert all(isinstance(text, str) and text for text in gf.GradientFlow.METHODS.values())


@pytest.mark.parametrize("method", COMPILED + SCIPY + EXACT)
def test_every_method_matches_expm_on_a_linear_flow(quadratic, method):
    obj, H, b = quadratic
    w0 = obj.init(seed=1, scale=1.0)
    times = np.linspace(0.0, 40.0, 9)
    traj = gf.GradientFlow(obj).solve(w0, (0.0, 40.0), t_eval=times, method=method, rtol=1e-10, atol=1e-12)
    assert traj.success, traj.message
    np.testing.assert_allclose(traj.t, times)
    np.testing.assert_allclose(traj.w, _exact_linear(H, b, w0, times), rtol=0, atol=1e-7)


def test_exprb32_is_exact_for_a_quadratic_loss_in_few_steps(quadratic):
    obj, H, b = quadratic
    w0 = obj.init(seed=2, scale=1.0)
    traj = gf.GradientFlow(obj).solve(w0, (0.0, 1e4), method="exprb32", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.final, _exact_linear(H, b, w0, [1e4])[0], rtol=0, atol=1e-11)
    assert traj.info["accepted_steps"] < 20          # steps grow geometrically: no stiffness or accuracy limit


def _augmented_expm_flow(H, b, w0, times):
    """w(t) of w' = b - H w from expm of the augmented generator [[-H, b], [0, 0]] acting on (w0, 1): exact for a
    singular H too, where w* = H^-1 b does not exist."""
    P = H.shape[0]
    generator = np.zeros((P + 1, P + 1))
    generator[:P, :P], generator[:P, P] = -H, b
    start = np.append(w0, 1.0)
    return np.array([(scipy.linalg.expm(generator * t) @ start)[:P] for t in times])


@pytest.fixture(scope="module")
def degenerate_quadratic():
    """Figure 4's kind of problem: more features (degree 14) than points (9), no weight decay: a singular Hessian,
    whose null space the flow leaves where it is."""
    data = gf.data.sine(n_train=9, n_test=20)
    return gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(degree=14, normalize=True)), data)


def test_auto_solves_a_quadratic_flow_exactly_also_with_a_singular_hessian(degenerate_quadratic):
    obj = degenerate_quadratic
    H, b = obj.hessian(np.zeros(obj.size)), -obj.grad(np.zeros(obj.size))
    w0 = obj.init(seed=3, scale=1.0)
    times = np.array([0.0, 0.5, 7.0, 300.0, 1e5])
    flow = gf.GradientFlow(obj)
    traj = flow.solve(w0, (0.0, 1e5), t_eval=times)
    assert traj.method == "quadratic" and traj.success and traj.nfev == 0
    assert traj.info["null_space_dim"] == obj.size - 9
    np.testing.assert_allclose(traj.w, _augmented_expm_flow(H, b, w0, times), rtol=0, atol=1e-10)
    # the null-space component of w0 does not move
    null = scipy.linalg.null_space(H, rcond=1e-10)
    np.testing.assert_allclose(null.T @ traj.final, null.T @ w0, atol=1e-12)
    np.testing.assert_allclose(traj.loss, [obj.value(w) for w in traj.w], rtol=1e-12, atol=1e-20)
    # without t_eval: DEFAULT_ENSEMBLE_POINTS evenly spaced times from t0 to tf
    default = flow.solve(w0, (2.0, 12.0))
    np.testing.assert_array_equal(default.t, np.linspace(2.0, 12.0, flow_module.DEFAULT_ENSEMBLE_POINTS))
    np.testing.assert_allclose(default.w, _augmented_expm_flow(H, b, w0, default.t - 2.0), rtol=0, atol=1e-10)
    # an ensemble: every row its own exact flow
    W0 = np.stack([w0, -2 * w0, obj.init(seed=4)])
    ensemble = flow.solve_ensemble(W0, (0.0, 1e5), t_eval=times)
    assert ensemble.method == "quadratic" and ensemble.success
    for i, row in enumerate(W0):
        np.testing.assert_allclose(ensemble.w[:, i], _augmented_expm_flow(H, b, row, times), rtol=0, atol=1e-10)


class _PenalizedRegression(gf.Objective):
    """Feature regression plus (c/4) ||w||_4^4: a subclass of Objective that is no longer quadratic."""

    c = 0.5

    def value(self, w):
        return super().value(w) + self.c / 4 * np.sum(np.asarray(w) ** 4, axis=-1)

    def grad(self, w):
        return super().grad(w) + self.c * np.asarray(w) ** 3

    def hessian(self, w):
        return super().hessian(w) + 3 * self.c * np.diag(np.asarray(w) ** 2)


def test_the_exact_method_is_only_for_objectives_known_to_be_quadratic(degenerate_quadratic):
    obj = degenerate_quadratic
    subclass = _PenalizedRegression(obj.model, obj.data)
    w0 = obj.init(seed=3, scale=1.0)
    traj = gf.GradientFlow(subclass).solve(w0, (0.0, 5.0), t_eval=[5.0], rtol=1e-10, atol=1e-12)
    assert traj.method != "quadratic"
    reference = gf.GradientFlow(subclass).solve(w0, (0.0, 5.0), t_eval=[5.0], method="DOP853", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(traj.final, reference.final, atol=1e-7)
    with pytest.raises(ValueError, match="`method` 'quadratic' needs a quadratic objective"):
        gf.GradientFlow(subclass).solve(w0, (0.0, 5.0), method="quadratic")
    with pytest.raises(ValueError, match="`events` need a scipy method; `method` 'quadratic'"):
        gf.GradientFlow(obj).solve(w0, (0.0, 5.0), method="quadratic", events=lambda t, w: w[0])
    assert gf.GradientFlow(obj).solve(w0, (0.0, 5.0), events=lambda t, w: w[0]).method == "LSODA"


def _fixed_step_error(step_function, obj, w0, T, steps):
    """Global error after `steps` equal steps of `step_function` on L = 1/2 (w1 w2 - 1)^2, against DOP853 at 1e-13."""
    k = _kernels.compiled_kernels(obj)
    size = w0.shape[0]
    w, f = w0.copy(), np.empty(size)
    h = T / steps
    for n in range(steps):
        k.rhs(n * h, w, f, k.args)
        w = step_function(k, n * h, w, f, h)
    reference = scipy.integrate.solve_ivp(lambda t, y: -obj.grad(y), (0, T), w0, method="DOP853", rtol=1e-13, atol=1e-15)
    return np.max(np.abs(w - reference.y[:, -1]))


def _dopri(k, t, w, f, h):
    size = w.shape[0]
    K, w_new, error = np.empty((7, size)), np.empty(size), np.empty(size)
    _integrators._dopri_step(k.rhs, k.args, t, w, f, h, K, w_new, error, np.empty(size))
    return w_new


def _dop853(k, t, w, f, h):
    size = w.shape[0]
    K, w_new = np.empty((13, size)), np.empty(size)
    _integrators._dop853_step(k.rhs, k.args, t, w, f, h, K, w_new, np.empty(size), 1e-6, 1e-9)
    return w_new


def _exprb(k, t, w, f, h):
    size = w.shape[0]
    J = np.empty((size, size))
    k.jac(t, w, J, k.args)
    eigenvalues, Q, Qt = _integrators._symmetric_eigen(J)
    w_new, error = np.empty(size), np.empty(size)
    _integrators._exprb_step(k.rhs, k.args, t, w, f, J, eigenvalues, Q, Qt, h, w_new, error)
    return w_new


@pytest.mark.parametrize("step_function, order, steps, slack", [(_dopri, 5, (16, 32, 64), 0.35),
                                                                (_dop853, 8, (8, 16, 32), 0.75),
                                                                (_exprb, 3, (16, 32, 64), 0.35)])
def test_observed_order_of_convergence(two_parameter, step_function, order, steps, slack):
    w0 = np.array([0.3, 1.4])
    errors = [_fixed_step_error(step_function, two_parameter, w0, 2.0, n) for n in steps]
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # at least the nominal order (a wrong coefficient drops it to 1 or 2); Dormand-Prince 5(4) often does better
    # here, and 8(5,3) reaches rounding (1e-15 at 32 steps) while still approaching its order (7.5-7.7)
    assert np.all(observed > order - slack), observed


def test_dopri5_order_against_expm_on_a_linear_flow(quadratic):
    obj, H, b = quadratic
    w0 = obj.init(seed=3, scale=1.0)
    k = _kernels.compiled_kernels(obj)
    exact = _exact_linear(H, b, w0, [5.0])[0]
    errors = []
    for steps in (20, 40):
        w, f, h = w0.copy(), np.empty(obj.size), 5.0 / steps
        for n in range(steps):
            k.rhs(0.0, w, f, k.args)
            w = _dopri(k, n * h, w, f, h)
        errors.append(np.max(np.abs(w - exact)))
    assert abs(np.log2(errors[0] / errors[1]) - 5) < 0.35


def test_one_dopri5_step_equals_scipy_rk45_step(two_parameter):
    k = _kernels.compiled_kernels(two_parameter)
    w, f, h = np.array([0.2, -0.7]), np.empty(2), 0.137
    k.rhs(0.0, w, f, k.args)
    K_ours, w_new, error = np.empty((7, 2)), np.empty(2), np.empty(2)
    _integrators._dopri_step(k.rhs, k.args, 0.0, w, f, h, K_ours, w_new, error, np.empty(2))
    K = np.empty((7, 2))
    y_new, f_new = scipy_rk.rk_step(lambda t, y: -two_parameter.grad(y), 0.0, w, f.copy(), h,
                                    scipy_rk.RK45.A, scipy_rk.RK45.B, scipy_rk.RK45.C, K)
    np.testing.assert_allclose(w_new, y_new, rtol=1e-15, atol=1e-16)
    # scipy's E is b_hat - b, ours b - b_hat: the same error estimate with the opposite sign
    np.testing.assert_allclose(error, -(K.T @ scipy_rk.RK45.E) * h, rtol=1e-12, atol=1e-17)
    np.testing.assert_allclose(K_ours[6], f_new, rtol=1e-15)


def test_one_dop853_step_equals_scipy_dop853_step(two_parameter):
    k = _kernels.compiled_kernels(two_parameter)
    w, f, h, rtol, atol = np.array([0.2, -0.7]), np.empty(2), 0.137, 1e-6, 1e-9
    k.rhs(0.0, w, f, k.args)
    K_ours, w_new = np.empty((13, 2)), np.empty(2)
    error = _integrators._dop853_step(k.rhs, k.args, 0.0, w, f, h, K_ours, w_new, np.empty(2), rtol, atol)
    fun = lambda t, y: -two_parameter.grad(y)                         # noqa: E731
    scipy_solver = scipy.integrate.DOP853(fun, 0.0, w, 1.0, rtol=rtol, atol=atol)
    K = np.empty((13, 2))
    D = scipy.integrate.DOP853
    y_new, f_new = scipy_rk.rk_step(fun, 0.0, w, f.copy(), h, D.A[:12, :12], D.B, D.C[:12], K)
    np.testing.assert_allclose(w_new, y_new, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(K_ours, K, rtol=1e-13, atol=1e-16)
    scale = atol + rtol * np.maximum(np.abs(w), np.abs(y_new))
    assert error == pytest.approx(scipy_solver._estimate_error_norm(K, h, scale), rel=1e-12)
    assert error > 0


def test_dop853_interpolant_equals_scipy_dense_output(two_parameter):
    k = _kernels.compiled_kernels(two_parameter)
    w = np.array([0.2, -0.7])
    fun = lambda t, y: -two_parameter.grad(y)                         # noqa: E731
    scipy_solver = scipy.integrate.DOP853(fun, 0.0, w, 10.0, rtol=1e-6, atol=1e-9, first_step=0.3)
    scipy_solver.step()
    h, dense = scipy_solver.t - scipy_solver.t_old, scipy_solver.dense_output()
    f, K, w_new, F = np.empty(2), np.empty((16, 2)), np.empty(2), np.empty((7, 2))
    k.rhs(0.0, w, f, k.args)
    _integrators._dop853_step(k.rhs, k.args, 0.0, w, f, h, K, w_new, np.empty(2), 1e-6, 1e-9)
    _integrators._dop853_interpolant(k.rhs, k.args, 0.0, w, w_new, h, K, F, np.empty(2))
    for x in (0.0, 0.1, 0.37, 0.8, 1.0):
        ours = np.empty(2)
        _integrators._dop853_interpolate(F, w, x, ours)
        np.testing.assert_allclose(ours, dense(x * h), rtol=1e-14, atol=1e-15)


def test_dop853_output_at_many_requested_times_costs_three_gradients_a_step(two_parameter):
    flow, w0 = gf.GradientFlow(two_parameter), np.array([0.1, 0.2])
    times = np.linspace(0.0, 10.0, 1001)
    steps = flow.solve(w0, (0, 10), method="dop853", rtol=1e-10, atol=1e-12)
    sampled = flow.solve(w0, (0, 10), t_eval=times, method="dop853", rtol=1e-10, atol=1e-12)
    assert sampled.info["accepted_steps"] == steps.info["accepted_steps"]
    assert sampled.nfev - steps.nfev <= 3 * steps.info["accepted_steps"]      # not 12 per requested time
    reference = flow.solve(w0, (0, 10), t_eval=times, method="DOP853", rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(sampled.w, reference.w, rtol=0, atol=1e-9)


def test_dop853_takes_far_fewer_steps_than_dopri5_at_tight_tolerances(two_parameter):
    flow, w0 = gf.GradientFlow(two_parameter), np.array([0.1, 0.2])
    reference = flow.solve(w0, (0, 10), t_eval=[10.0], method="DOP853", rtol=1e-13, atol=1e-15).final
    runs = {m: flow.solve(w0, (0, 10), method=m, rtol=1e-10, atol=1e-12) for m in ("dopri5", "dop853")}
    for traj in runs.values():
        np.testing.assert_allclose(traj.final, reference, rtol=0, atol=1e-9)
    assert runs["dop853"].info["accepted_steps"] < 0.4 * runs["dopri5"].info["accepted_steps"]
    assert runs["dop853"].nfev < runs["dopri5"].nfev


@pytest.mark.parametrize("method", COMPILED)
def test_compiled_methods_agree_with_dop853_on_the_figure_8_network(method):
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())
    flow = gf.GradientFlow(obj)
    w0 = obj.init(seed=0, scale=0.3)
    times = np.linspace(0, 50, 11)
    reference = flow.solve(w0, (0, 50), t_eval=times, method="DOP853", rtol=1e-12, atol=1e-14)
    traj = flow.solve(w0, (0, 50), t_eval=times, method=method, rtol=1e-8, atol=1e-10)
    assert traj.success
    np.testing.assert_allclose(traj.w, reference.w, rtol=0, atol=2e-6)
    assert np.all(np.diff(traj.loss) <= 0)                     # L decreases along the flow
    assert "warning" not in traj.message


def test_auto_integrates_a_non_stiff_flow_explicitly(two_parameter):
    # rho(H(w0)) ~ 1 over t in [0, 50]: about 15 explicit steps' worth of stiffness
    flow = gf.GradientFlow(two_parameter)
    traj = flow.solve(np.array([0.1, 0.2]), (0, 50), rtol=1e-8, atol=1e-10)
    assert traj.method == "dop853"                           # rtol <= HIGH_ORDER_RTOL: the 8th-order pair
    assert abs(traj.final[0] * traj.final[1] - 1) < 1e-6     # it lands on the hyperbola of minima w1 w2 = 1
    loose = flow.solve(np.array([0.1, 0.2]), (0, 50), rtol=1e-6, atol=1e-9)
    assert loose.method == "dopri5" and abs(loose.final[0] * loose.final[1] - 1) < 1e-4


def test_auto_uses_the_compiled_stiff_method_on_a_stiff_flow():
    # Figure 8's net: rho(H) ~ 5.6 over t in [0, 1000] is ~1,700 explicit steps of stability limit alone
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())
    traj = gf.GradientFlow(obj).solve(obj.init(seed=0, scale=0.3), (0, 1000), rtol=1e-8, atol=1e-10)
    assert traj.method == "bdf" and traj.success
    assert traj.info["accepted_steps"] < 600


@pytest.fixture(scope="module")
def sharpening_valley():
    """L = 1/2 (w1 - 1)^2 + 5000 w1^2 w2^2: rho(H) = 1.01 at (0, 1e-3), about 10^4 near the minimum (1, 0)."""
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    loss = sp.Rational(1, 2) * (w1 - 1) ** 2 + 5000 * w1 ** 2 * w2 ** 2
    return gf.GradientFlow(gf.symbolic.from_expr(loss, [w1, w2]).compile())


def test_auto_hands_over_to_bdf_where_an_explicitly_started_flow_turns_stiff(sharpening_valley):
    flow, w0, times = sharpening_valley, np.array([0.0, 1e-3]), np.linspace(0.0, 100.0, 11)
    assert flow._explicit_steps(w0, 100.0) < flow_module.EXPLICIT_STEP_LIMIT     # not stiff at w0
    traj = flow.solve(w0, (0, 100), rtol=1e-8, atol=1e-10)
    assert traj.method == "dop853+bdf" and traj.success, traj.message
    assert 0.0 < traj.info["switched_to_bdf_at"] < 5.0 and "turned stiff" in traj.message
    assert "the stability limit of 'dop853'" in traj.message
    assert traj.info["accepted_steps"] < 1000           # an explicit method alone: about 300,000 steps
    np.testing.assert_allclose(traj.final, [1.0, 0.0], atol=1e-7)
    assert np.all(np.diff(traj.t) > 0)
    sampled = flow.solve(w0, (0, 100), t_eval=times, rtol=1e-8, atol=1e-10)
    reference = flow.solve(w0, (0, 100), t_eval=times, method="bdf", rtol=1e-10, atol=1e-12)
    assert sampled.method == "dop853+bdf"
    np.testing.assert_array_equal(sampled.t, times)
    np.testing.assert_allclose(sampled.w, reference.w, atol=1e-6)
    # the stiffness test sees the steps, not the sub-steps to requested times: the same hand-over however dense
    dense = flow.solve(w0, (0, 100), t_eval=np.linspace(0.0, 100.0, 3001), rtol=1e-8, atol=1e-10)
    assert dense.info["switched_to_bdf_at"] == traj.info["switched_to_bdf_at"]


def test_an_ensemble_hands_over_run_by_run(sharpening_valley):
    flow, times = sharpening_valley, np.linspace(0.0, 100.0, 6)
    W0 = np.array([[0.0, 1e-3], [0.05, 2e-3], [0.1, -1e-3]])
    ours = flow.solve_ensemble(W0, (0, 100), t_eval=times, rtol=1e-8, atol=1e-10)
    reference = flow.solve_ensemble(W0, (0, 100), t_eval=times, method="bdf", rtol=1e-10, atol=1e-12)
    assert ours.method == "dop853+bdf" and ours.success, ours.message
    assert all(0.0 < t < 5.0 for t in ours.info["switched_to_bdf_at"])
    np.testing.assert_allclose(ours.w, reference.w, atol=1e-6)
    short = flow.solve_ensemble(W0, (0, 0.2), rtol=1e-8, atol=1e-10)      # over before it turns stiff
    assert short.method == "dop853" and "switched_to_bdf_at" not in short.info
    loose = flow.solve_ensemble(W0, (0, 100), t_eval=times, rtol=1e-6, atol=1e-9)
    assert loose.method == "dopri5+bdf" and loose.success, loose.message


def test_auto_picks_bdf_for_an_ensemble_only_when_every_sampled_row_starts_stiff(sharpening_valley):
    flow, times = sharpening_valley, np.linspace(0.0, 100.0, 6)
    stiff, mild = np.array([1.0, 0.1]), np.array([0.0, 1e-3])          # rho(H) about 10^4 and 1
    assert flow._explicit_steps(stiff, 100.0) >= flow_module.EXPLICIT_STEP_LIMIT
    mixed = flow.solve_ensemble(np.array([stiff, mild, mild]), (0, 100), t_eval=times, rtol=1e-8, atol=1e-10)
    assert mixed.method == "dop853+bdf" and mixed.success, mixed.message    # the stiff first row hands over
    assert mixed.info["switched_to_bdf_at"][0] < 1.0
    reference = flow.solve_ensemble(np.array([stiff, mild, mild]), (0, 100), t_eval=times, method="bdf", rtol=1e-10,
                                    atol=1e-12)
    np.testing.assert_allclose(mixed.w, reference.w, atol=1e-6)
    assert flow.solve_ensemble(np.array([stiff, 2 * stiff]), (0, 100), t_eval=times).method == "bdf"


def test_an_explicitly_requested_dopri5_is_never_switched(sharpening_valley):
    traj = sharpening_valley.solve(np.array([0.0, 1e-3]), (0, 5), method="dopri5", rtol=1e-6, atol=1e-9)
    assert traj.method == "dopri5" and "switched_to_bdf_at" not in traj.info and traj.success
    assert traj.info["accepted_steps"] > 3000           # held at the stability limit, but it goes on


def test_auto_keeps_to_dopri5_beyond_the_compiled_stiff_limit(sharpening_valley, monkeypatch):
    flow, stiff = sharpening_valley, np.array([[1.0, 0.1], [2.0, 0.2]])      # rho(H) about 10^4 and 4 10^4
    assert flow.solve(stiff[0], (0, 0.2)).method == "bdf"
    assert flow.solve_ensemble(stiff, (0, 0.2)).method == "bdf"
    monkeypatch.setattr(flow_module, "COMPILED_STIFF_LIMIT", 1)          # as if P = 2 were too large for dense Jacobians
    single = flow.solve(stiff[0], (0, 0.2), rtol=1e-6, atol=1e-9)
    assert single.method == "dopri5" and single.success and "switched_to_bdf_at" not in single.info
    ensemble = flow.solve_ensemble(stiff, (0, 0.2), rtol=1e-6, atol=1e-9)
    assert ensemble.method == "dopri5" and ensemble.success and "switched_to_bdf_at" not in ensemble.info
    np.testing.assert_allclose(ensemble.w[-1, 0], single.final, rtol=0, atol=1e-12)
    mild = flow.solve(np.array([0.0, 1e-3]), (0, 5), rtol=1e-6, atol=1e-9)     # turns stiff, but no hand-over
    assert mild.method == "dopri5" and "switched_to_bdf_at" not in mild.info and mild.success
    assert mild.info["accepted_steps"] > 3000


def test_auto_keeps_to_the_explicit_method_where_bdf_does_not_fit_in_memory(monkeypatch):
    import sympy as sp

    from gradflow import _validation

    w1, w2 = sp.symbols("w1 w2")
    flow = gf.GradientFlow(gf.symbolic.from_expr(500 * w1 ** 2 + sp.Rational(1, 2) * w2 ** 2, [w1, w2]).compile())
    w0 = np.array([1.0, 1.0])                      # rho(H) = 1000: stiff over (0, 50)
    assert flow.solve(w0, (0, 50)).method == "bdf"
    monkeypatch.setattr(_validation, "physical_memory", lambda: 300.0)      # bytes: not even bdf's 2 x 2 matrices
    single = flow.solve(w0, (0, 50), max_steps=200_000)
    assert single.method == "dopri5" and single.success, single.message
    ensemble = flow.solve_ensemble(np.array([w0, 2 * w0]), (0, 50), max_steps=200_000)
    assert ensemble.method == "dopri5" and ensemble.success, ensemble.message
    with pytest.raises(ValueError, match="`method` 'bdf' holds dense P x P matrices"):
        flow.solve(w0, (0, 50), method="bdf")
    # room for one run's bdf matrices (6 x 2 x 2 floats, within half of 500 bytes) but not for two at once
    monkeypatch.setattr(_validation, "physical_memory", lambda: 500.0)
    monkeypatch.setattr(flow_module.numba, "get_num_threads", lambda: 2)
    assert flow.solve(w0, (0, 50)).method == "bdf"
    assert flow.solve_ensemble(np.array([w0, 2 * w0]), (0, 50), max_steps=200_000).method == "dopri5"


@pytest.fixture(scope="module")
def wide_net():
    """An MLP with P = 404,400 parameters: one dense P x P float64 matrix would take 1.3 TB."""
    data = gf.data.digits(n_train=5, n_test=0)
    obj = gf.Objective(gf.models.MLP([64, 600, 600, 10], activation="tanh"), data, loss="cross_entropy")
    return obj, obj.init(seed=0, scale=0.1)


def test_a_net_too_large_for_dense_jacobians_flows_with_the_explicit_compiled_method(wide_net):
    obj, w0 = wide_net
    flow = gf.GradientFlow(obj)
    times = np.array([0.0, 0.25, 0.5])
    auto = flow.solve(w0, (0, 0.5), t_eval=times, rtol=1e-8, atol=1e-10)
    assert auto.method == "dop853" and auto.success, auto.message
    reference = flow.solve(w0, (0, 0.5), t_eval=times, method="DOP853", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(auto.w, reference.w, rtol=0, atol=1e-7)
    assert auto.loss[-1] < auto.loss[0]
    ensemble = flow.solve_ensemble(np.stack([w0, 0.5 * w0]), (0, 0.5), t_eval=times, rtol=1e-8, atol=1e-10)
    assert ensemble.method == "dop853" and ensemble.success, ensemble.message
    np.testing.assert_allclose(ensemble.w[:, 0], auto.w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["bdf", "exprb32", "BDF", "Radau", "LSODA"])
def test_a_stiff_method_whose_dense_matrices_cannot_fit_is_refused(wide_net, method):
    obj, w0 = wide_net
    flow = gf.GradientFlow(obj)
    with pytest.raises(ValueError, match=r"`method` '\w+' holds dense P x P matrices.*P = 404,400.*'dopri5'"):
        flow.solve(w0, (0, 1), method=method)
    with pytest.raises(ValueError, match="holds dense P x P matrices"):
        flow.solve_ensemble(np.stack([w0, w0]), (0, 1), method=method)


def test_the_stiffness_estimate_is_the_spectral_radius_of_the_hessian():
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())
    w = obj.init(seed=0, scale=0.3)
    flow = gf.GradientFlow(obj)
    steps = flow._explicit_steps(w, 1000.0)
    radius = np.max(np.abs(np.linalg.eigvalsh(obj.hessian(w))))
    # power iteration approaches rho from below; 30 iterations get within a few percent here
    assert 0.97 * radius <= steps * flow_module.DOPRI5_STABILITY / 1000.0 <= radius * (1 + 1e-12)


def test_the_stiffness_test_at_w0_decides_as_the_spectral_radius_does():
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    # H = [[3, 2], [2, -1]]: max |H_pq| = 3 < rho = 1 + sqrt(8) < ||H||_F = sqrt(18), so thresholds on either side of
    # rho inside (3, sqrt(18)) need the eigenvalues, and those outside it are decided by the two bounds
    quadratic = gf.symbolic.from_expr(sp.Rational(1, 2) * (3 * w1 ** 2 + 4 * w1 * w2 - w2 ** 2), [w1, w2]).compile()
    bound = _kernels.bind(quadratic.kernels)
    stiff_at = _integrators.compiled_stiffness_test(bound)
    w, rho = np.array([0.3, -0.7]), 1 + np.sqrt(8)
    for threshold in (1.0, 3.0, 3.5, rho * (1 - 1e-12), rho * (1 + 1e-12), 4.0, np.sqrt(18) * 1.001, 100.0):
        assert stiff_at(bound.jac, bound.hvp, bound.args, w, 0, threshold) == (rho >= threshold), threshold
    # power iterations estimate rho from below
    assert stiff_at(bound.jac, bound.hvp, bound.args, w, 50, rho * 0.999)
    assert not stiff_at(bound.jac, bound.hvp, bound.args, w, 50, rho * 1.001)
    # a Hessian that is not finite counts as stiff; a zero one as not
    pole = gf.symbolic.from_expr(1 / w1 + w2 ** 2, [w1, w2]).compile()
    bound = _kernels.bind(pole.kernels)
    stiff_at = _integrators.compiled_stiffness_test(bound)
    assert stiff_at(bound.jac, bound.hvp, bound.args, np.array([0.0, 1.0]), 0, 1e300)
    flat = gf.symbolic.from_expr(w1 + w2, [w1, w2]).compile()
    bound = _kernels.bind(flat.kernels)
    assert not _integrators.compiled_stiffness_test(bound)(bound.jac, bound.hvp, bound.args, np.zeros(2), 0, 1e-300)


@pytest.mark.parametrize("shape", [(1, 3), (7, 5), (64, 64)])
def test_the_newton_matrix_vector_product_equals_numpy(shape):
    rng = np.random.default_rng(0)
    M, x, out = rng.standard_normal(shape), rng.standard_normal(shape[1]), np.empty(shape[0])
    _integrators._matvec(M, x, out)
    np.testing.assert_allclose(out, M @ x, rtol=1e-13, atol=1e-13)



def _symmetric_test_matrices():
    rng = np.random.default_rng(3)
    matrices = {}
    for n in (1, 2, 3, 8, 31, 64, 128):
        M = rng.standard_normal((n, n))
        matrices[f"random {n}"] = M + M.T
    Q, _ = np.linalg.qr(rng.standard_normal((64, 64)))
    # a Hessian at a degenerate minimum: a 50-dimensional null space, a repeated eigenvalue and a stiff one
    matrices["degenerate, stiff"] = Q @ np.diag(np.r_[np.zeros(50), np.full(10, 2.0), 5.0, 7.0, 9.0, 1e6]) @ Q.T
    matrices["two clusters"] = Q @ np.diag(np.r_[-np.ones(30), np.ones(34)]) @ Q.T
    matrices["rank one"] = np.ones((6, 6))
    matrices["zero"] = np.zeros((4, 4))
    matrices["diagonal, unsorted"] = np.diag([3.0, -1.0, 2.0, 0.0])
    matrices["tridiagonal, zero diagonal"] = np.diag(np.ones(9), 1) + np.diag(np.ones(9), -1)
    matrices["widely scaled"] = np.diag([1e-300, 1.0, 1e300])
    return matrices


@pytest.mark.parametrize("name, S", list(_symmetric_test_matrices().items()))
def test_the_compiled_symmetric_eigensolver_matches_lapack(name, S):
    eigenvalues, Qt, converged = _integrators._small_symmetric_eigen(S)
    assert converged
    scale = max(np.abs(S).max(), np.finfo(float).tiny)
    np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(S), rtol=0, atol=1e-13 * scale)
    # the rows of Qt are orthonormal eigenvectors: S Q = Q diag(eigenvalues)
    np.testing.assert_allclose(Qt @ Qt.T, np.eye(S.shape[0]), rtol=0, atol=1e-13)
    np.testing.assert_allclose(S @ Qt.T, Qt.T * eigenvalues, rtol=0, atol=1e-13 * scale)


def test_the_compiled_symmetric_eigensolver_gives_nan_for_a_non_finite_matrix():
    eigenvalues, Qt, converged = _integrators._small_symmetric_eigen(np.array([[1.0, np.inf], [np.inf, 0.0]]))
    assert converged and np.isnan(eigenvalues).all() and np.isnan(Qt).all()


@pytest.mark.parametrize("size", [5, _integrators.SMALL_EIGEN_LIMIT, _integrators.SMALL_EIGEN_LIMIT + 1])
def test_the_jacobian_eigendecomposition_reconstructs_the_hessian_on_both_sides_of_the_solver_limit(size):
    rng = np.random.default_rng(size)
    J = rng.standard_normal((size, size))            # the symmetric part is the Hessian's negative
    eigenvalues, Q, Qt = _integrators._symmetric_eigen(J)
    assert Q.flags.c_contiguous and Qt.flags.c_contiguous and np.all(np.diff(eigenvalues) >= 0)
    np.testing.assert_allclose(Q.T, Qt, rtol=0, atol=0)
    np.testing.assert_allclose(Q @ np.diag(eigenvalues) @ Qt, -0.5 * (J + J.T), rtol=0, atol=1e-12 * np.abs(J).max())

def test_bdf_settles_at_a_minimum_under_tolerances_near_the_rounding_level():
    """Near a minimum, Newton's corrections reach the rounding noise of the gradient; they must count as converged.

    Without that test BDF thrashed here (22,843 accepted and 25,381 rejected steps to t = 1e6; LSODA: 550 steps).
    """
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher(), weight_decay=0.1)
    flow = gf.GradientFlow(obj)
    settled = flow.solve(obj.init(seed=0, scale=0.5), (0, 2000), method="LSODA", rtol=1e-10, atol=1e-12).final
    w_star = gf.find_equilibrium(obj, settled).w
    x = w_star + 1e-3 * np.random.default_rng(0).standard_normal(obj.size)
    traj = flow.solve(x, (0, 1e6), t_eval=np.array([0.0, 1e6]), method="bdf", rtol=1e-11, atol=1e-14)
    reference = flow.solve(x, (0, 1e6), t_eval=np.array([0.0, 1e6]), method="LSODA", rtol=1e-11, atol=1e-14)
    assert traj.success and traj.info["accepted_steps"] + traj.info["rejected_steps"] < 2000
    np.testing.assert_allclose(traj.final, reference.final, rtol=0, atol=1e-8)


def test_stiff_scipy_methods_get_the_exact_jacobian(quadratic):
    obj = quadratic[0]
    traj = gf.GradientFlow(obj).solve(obj.init(seed=0, scale=1.0), (0, 10), method="Radau")
    assert traj.info["njev"] >= 1


def test_ensemble_equals_one_run_at_a_time(two_parameter):
    flow = gf.GradientFlow(two_parameter)
    W0 = np.random.default_rng(0).uniform(-1.5, 1.5, size=(6, 2))
    times = np.linspace(0, 5, 6)
    for method in ("bdf", "dopri5", "RK45"):
        ensemble = flow.solve_ensemble(W0, (0, 5), t_eval=times, method=method, rtol=1e-9, atol=1e-11)
        assert ensemble.w.shape == (6, 6, 2) and ensemble.loss.shape == (6, 6)
        assert ensemble.metrics["norm"].shape == (6, 6)
        for i, w0 in enumerate(W0):
            single = flow.solve(w0, (0, 5), t_eval=times, method=method, rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(ensemble.w[:, i], single.w, rtol=1e-12, atol=1e-14)
            assert ensemble.info["nfev"][i] == single.nfev
        assert ensemble.nfev == sum(ensemble.info["nfev"])


# ---------------------------------------------------------------- failures reported, never silent NaN
@numba.njit(cache=True)
def _quartic_value(w, args):
    return -0.25 * w[0] ** 4


@numba.njit(cache=True)
def _quartic_grad(w, out, args):
    out[0] = -w[0] ** 3


@numba.njit(cache=True)
def _quartic_hvp(w, v, out, args):
    out[0] = -3 * w[0] ** 2 * v[0]


@numba.njit(cache=True)
def _quartic_rhs(t, w, out, args):
    out[0] = w[0] ** 3


@numba.njit(cache=True)
def _quartic_jac(t, w, out, args):
    out[0, 0] = 3 * w[0] ** 2


class _BlowUp:
    """L = -w^4 / 4, unbounded below: the flow w' = w^3 from w = 1 blows up at t = 1/2."""

    size = 1
    kernels = _kernels.Kernels(_quartic_value, _quartic_grad, _quartic_hvp, _quartic_rhs, _quartic_jac, (np.zeros(1),))

    def value(self, w):
        return -0.25 * np.asarray(w)[..., 0] ** 4

    def grad(self, w):
        return -np.asarray(w) ** 3

    def hessian(self, w):
        return np.array([[-3 * w[0] ** 2]])


@numba.njit(cache=True)
def _reciprocal_rhs(t, w, out, args):
    out[0] = -1.0 / w[0]                              # numba's Python error model: ZeroDivisionError at w = 0


@numba.njit(cache=True)
def _reciprocal_jac(t, w, out, args):
    out[0, 0] = 1.0 / w[0] ** 2


class _LogBarrier:
    """L = log w: the flow w' = -1/w reaches the singularity w = 0 at t = 1/2 from w = 1 (w = sqrt(1 - 2t)), where
    -grad L stays finite up to the last float before it."""

    size = 1

    def value(self, w):
        return np.log(np.asarray(w)[..., 0])

    def grad(self, w):
        return 1.0 / np.asarray(w)

    def hessian(self, w):
        return np.array([[-1.0 / w[0] ** 2]])


class _CompiledLogBarrier(_LogBarrier):
    kernels = _kernels.Kernels(_quartic_value, _quartic_grad, _quartic_hvp, _reciprocal_rhs, _reciprocal_jac,
                               (np.zeros(1),))


def test_an_ensemble_run_whose_kernel_raises_is_failed_not_success():
    """Numba's parallel loop drops an exception raised in a row; the row used to keep status 0 (success)."""
    flow = gf.GradientFlow(_CompiledLogBarrier())
    with pytest.raises(ZeroDivisionError):
        flow.solve(np.array([0.0]), (0, 0.1), method="dopri5")
    ensemble = flow.solve_ensemble(np.array([[1.0], [0.0]]), (0, 0.1), method="dopri5")
    assert ensemble.status == "failed" and ensemble.info["status"] == ["success", "failed"]
    assert "Run(s) 1 ended in an error inside the objective's compiled kernels" in ensemble.message


@pytest.mark.parametrize("method", COMPILED + ["auto"])
def test_a_field_too_large_for_any_step_is_a_status_not_an_exception(method):
    # w0 = 1e100: -grad L = w^3 = 1e300, whose square (in the norms of the first step) overflows
    with np.errstate(over="ignore"):                   # the loss -w^4 / 4 overflows at w0
        traj = gf.GradientFlow(_BlowUp()).solve(np.array([1e100]), (0, 1), method=method)
    assert traj.status in ("failed", "diverged") and "after t = 0" in traj.message


@pytest.mark.parametrize("method", SCIPY)
def test_a_scipy_run_that_stops_before_the_first_requested_time_has_no_points(method):
    flow = gf.GradientFlow(_BlowUp())                  # blows up at t = 1/2
    traj = flow.solve(np.array([1.0]), (0, 1), t_eval=[0.75], method=method)
    assert traj.status in ("failed", "diverged") and traj.w.shape == (0, 1) and traj.t.shape == (0,)
    ensemble = flow.solve_ensemble(np.array([[0.1], [1.0]]), (0, 1), t_eval=[0.75], method=method)
    assert ensemble.info["status"][0] == "success" and ensemble.info["status"][1] != "success"
    assert ensemble.w.shape == (0, 2, 1)


@pytest.mark.parametrize("method", ["LSODA", "auto with events"])
def test_lsoda_creeping_towards_a_singularity_stops_after_max_steps(method):
    """scipy's LSODA never stops on its own here: it takes ever smaller steps towards t = 1/2."""
    events = (lambda t, w: w[0] - 2.0) if method == "auto with events" else None
    traj = gf.GradientFlow(_LogBarrier()).solve(np.array([1.0]), (0, 1), method="auto" if events else method,
                                                events=events, max_steps=2000)
    assert traj.method == "LSODA" and traj.status == "failed" and "max_steps = 2000" in traj.message
    assert 0.49 < traj.t[-1] < 0.5 and np.isfinite(traj.loss).all()
    early = traj.t < 0.4                              # near the singularity the default tolerances lose digits
    np.testing.assert_allclose(traj.w[early, 0], np.sqrt(1 - 2 * traj.t[early]), rtol=1e-4)


@pytest.mark.parametrize("method", ["dopri5", "RK45", "DOP853"])
def test_points_past_the_domain_of_the_loss_are_cut_from_the_path(method):
    obj = _CompiledLogBarrier()
    with np.errstate(invalid="ignore"):                # log of the last accepted point, w < 0
        traj = gf.GradientFlow(obj).solve(np.array([1.0]), (0, 1), method=method)
    assert traj.status != "success" and np.isfinite(traj.loss).all() and (traj.w > 0).all()
    np.testing.assert_allclose(traj.loss, np.log(traj.w[:, 0]), rtol=1e-12)


def test_radau_whose_newton_matrix_overflows_reports_divergence():
    class Exponential:                                # L = exp(400 w): at w = 1 the Jacobian is near 1e179
        size = 1

        def value(self, w):
            return np.exp(400 * np.asarray(w)[..., 0])

        def grad(self, w):
            return 400 * np.exp(400 * np.asarray(w))

        def hessian(self, w):
            return np.array([[1.6e5 * np.exp(400 * w[0])]])

    with np.errstate(over="ignore"):
        traj = gf.GradientFlow(Exponential()).solve(np.array([1.0]), (0, 1), method="Radau")
    assert traj.status == "diverged" and "non-finite" in traj.message


def test_the_phi_functions_of_exprb32_do_not_overflow_for_huge_steps():
    for z in (-1e200, -1e120, -1e10):
        assert _integrators._phi(1, z) == pytest.approx(-1 / z, rel=1e-12)
        assert _integrators._phi(3, z) == pytest.approx((1 / z - 0.5) / z, rel=1e-12)      # -1/(2z) + 1/z^2


@pytest.mark.parametrize("method", COMPILED + SCIPY)
def test_a_flow_that_blows_up_reports_it(method):
    # scipy's LSODA never returns from a non-finite vector field: the field stops it
    traj = gf.GradientFlow(_BlowUp()).solve(np.array([1.0]), (0, 2), method=method)
    assert not traj.success and traj.status in ("diverged", "failed")
    assert np.all(np.isfinite(traj.w)) and 0.49 < traj.t[-1] < 0.5 + 1e-5      # the true blow-up time is 1/2
    assert "t =" in traj.message


@numba.njit(cache=True)
def _diagonal_value(w, args):
    return 0.5 * np.sum(args[0] * w * w)


@numba.njit(cache=True)
def _diagonal_grad(w, out, args):
    out[:] = args[0] * w


@numba.njit(cache=True)
def _diagonal_hvp(w, v, out, args):
    out[:] = args[0] * v


@numba.njit(cache=True)
def _diagonal_rhs(t, w, out, args):
    out[:] = -args[0] * w


@numba.njit(cache=True)
def _diagonal_jac(t, w, out, args):
    out[:] = 0.0
    for p in range(w.shape[0]):
        out[p, p] = -args[0][p]


class _StiffDiagonal:
    """L = (1e14 w1^2 + w2^2) / 2: w(t) = (w1 e^{-1e14 t}, w2 e^{-t}), stiff from t = 0 on."""

    size = 2
    curvatures = np.array([1e14, 1.0])
    kernels = _kernels.Kernels(_diagonal_value, _diagonal_grad, _diagonal_hvp, _diagonal_rhs, _diagonal_jac,
                               (curvatures,))

    def value(self, w):
        return 0.5 * np.sum(self.curvatures * np.asarray(w) ** 2, axis=-1)

    def grad(self, w):
        return self.curvatures * np.asarray(w)

    def hessian(self, w):
        return np.diag(self.curvatures)


@pytest.mark.parametrize("method", ["auto", "bdf", "exprb32", "Radau", "BDF"])
def test_a_stiff_method_takes_the_tiny_first_steps_of_an_extremely_stiff_flow_at_t0_0(method):
    """The first step of a flow with curvature 1e14 is near 1e-16: far below 1e-14, but thousands of float spacings
    at t = 0; the stiff methods used to stop there with "step size fell below the resolution of t"."""
    traj = gf.GradientFlow(_StiffDiagonal()).solve(np.array([1.0, 1.0]), (0, 5), t_eval=[0.0, 1e-15, 1.0, 5.0],
                                                  method=method, rtol=1e-8, atol=1e-12)
    assert traj.success, traj.message
    np.testing.assert_allclose(traj.w[:, 1], np.exp(-traj.t), rtol=1e-5)
    np.testing.assert_allclose(traj.w[1:, 0], np.exp(-1e14 * traj.t[1:]), atol=1e-8)


def test_failure_advice_names_a_stiff_method_only_after_an_explicit_one():
    flow = gf.GradientFlow(_StiffDiagonal())
    explicit = flow.solve(np.array([1.0, 1.0]), (0, 5), method="dopri5", max_steps=50)
    assert explicit.status == "failed" and "raise max_steps or use a stiff method ('bdf')" in explicit.message
    stiff = flow.solve(np.array([1.0, 1.0]), (0, 5), method="bdf", max_steps=3)
    assert stiff.status == "failed" and stiff.message.endswith("raise max_steps") and "'bdf'" not in stiff.message


class _SteepValley:
    """L = cosh(a w) / a^2: the flow w' = -sinh(a w) / a decays to 0, but a too long trial step overflows sinh."""

    size = 1
    a = 100.0

    def value(self, w):
        return np.cosh(self.a * np.asarray(w)[..., 0]) / self.a ** 2

    def grad(self, w):
        return np.sinh(self.a * np.asarray(w)) / self.a

    def hessian(self, w):
        return np.array([[np.cosh(self.a * w[0])]])


@pytest.mark.parametrize("method", ["RK45", "DOP853"])
def test_an_explicit_scipy_method_retries_a_step_whose_trial_point_overflows(method):
    with np.errstate(over="ignore"):
        traj = gf.GradientFlow(_SteepValley()).solve(np.array([1.0]), (0, 10), method=method)
    assert traj.status == "success" and abs(traj.final[0]) < 0.1


@pytest.mark.parametrize("method", ["RK45", "DOP853"])
def test_an_explicit_scipy_method_says_whether_the_field_or_the_step_size_stopped_it(method):
    # w0 = sqrt(max float): the field w^3 overflows at the start, so no step is possible: diverged
    with np.errstate(over="ignore"):
        start = gf.GradientFlow(_BlowUp()).solve(np.array([np.sqrt(np.finfo(float).max)]), (0, 1), method=method)
    assert start.status == "diverged" and "non-finite after t = 0" in start.message
    # the blow-up at t = 1/2: the field stays finite at the last accepted step, so the step size gave out
    late = gf.GradientFlow(_BlowUp()).solve(np.array([1.0]), (0, 2), t_eval=[0.25, 1.0], method=method)
    assert late.status == "failed" and "blows up" in late.message
    assert float(re.search(r"after t = ([0-9.e+-]+)", late.message).group(1)) == pytest.approx(0.5, abs=1e-3)
    np.testing.assert_array_equal(late.t, [0.25])



@pytest.mark.parametrize("method", ["dopri5", "bdf"])
def test_a_relu_flow_stuck_on_a_kink_says_where_it_stopped_and_why(method):
    """-grad L of a ReLU net jumps where a pre-activation crosses 0; here the flow slides along such a kink near
    t = 0.59, where adaptive steps shrink without end.  The message gives the time reached (not the last requested
    time, 0) and the cause."""
    rng = np.random.default_rng(4)
    obj = gf.Objective(gf.models.MLP([3, 5, 2], activation="relu"), gf.Dataset(rng.standard_normal((6, 3)),
                                                                                rng.standard_normal((6, 2))))
    traj = gf.GradientFlow(obj).solve(obj.init(seed=1, scale=0.5), (0, 5.0), t_eval=[0.0, 5.0], method=method,
                                      max_steps=3000)
    assert traj.status == "failed" and "Filippov" in traj.message and "gf.gd" in traj.message
    reached = float(re.search(r"t = ([0-9.e+-]+)", traj.message).group(1))
    assert 0.5 < reached < 5.0
    np.testing.assert_array_equal(traj.t, [0.0])
    smooth = gf.Objective(gf.models.MLP([3, 5, 2], activation="tanh"), obj.data)
    assert "Filippov" not in gf.GradientFlow(smooth).solve(smooth.init(seed=1), (0, 5.0), max_steps=3).message

def test_a_scipy_run_stopped_by_a_non_finite_field_keeps_its_times_and_events():
    flow = gf.GradientFlow(_BlowUp())
    times = np.linspace(0, 2, 9)

    def crossing(t, w):                  # w(t) = (1 - 2t)^(-1/2) crosses 2 at t = 3/8
        return w[0] - 2.0

    traj = flow.solve(np.array([1.0]), (0, 2), t_eval=times, method="LSODA", events=crossing, rtol=1e-10, atol=1e-12)
    assert traj.status == "diverged" and "non-finite after t = " in traj.message
    np.testing.assert_array_equal(traj.t, times[times < 0.5])
    np.testing.assert_allclose(traj.w[:, 0], (1 - 2 * traj.t) ** -0.5, rtol=1e-7)
    np.testing.assert_allclose(traj.t_events[0], [0.375], rtol=1e-7)
    late = flow.solve(np.array([1.0]), (0, 2), t_eval=[0.6, 1.0], method="LSODA")     # every time after the blow-up
    assert late.status == "diverged" and late.w.shape == (0, 1) and late.t.shape == (0,)
    assert "points=0" in repr(late) and "t: []" in repr(late)
    with pytest.raises(ValueError, match="no points"):
        late.final
    with np.errstate(over="ignore"):                                    # w^3 (and the loss, w^4) overflow at w0
        at_start = flow.solve(np.array([np.sqrt(np.finfo(float).max)]), (0, 1), method="LSODA")
    # the loss -w^4 / 4 overflows at w0 already, so not even w0 is kept
    assert at_start.status == "diverged" and at_start.n_points == 0 and "after t = 0" in at_start.message
    assert "the loss is not finite at t = 0" in at_start.message


class _UphillGradient:
    """A user objective with a sign bug: value 1/2 |w|^2 but 'gradient' -w, so the flow climbs."""

    size = 2

    def value(self, w):
        return 0.5 * np.sum(np.asarray(w) ** 2, axis=-1)

    def grad(self, w):
        return -np.asarray(w)

    def hessian(self, w):
        return -np.eye(2)


def test_a_loss_rising_along_the_computed_path_is_reported():
    traj = gf.GradientFlow(_UphillGradient()).solve(np.array([1.0, 0.5]), (0, 1), method="RK45", rtol=1e-8)
    assert traj.loss[-1] > traj.loss[0]
    assert "rose by" in traj.message and "Lyapunov" in traj.message


class _SameValue(gf.symbolic.CompiledObjective):
    """A compiled objective whose ``value`` is overridden (here by the same), so that flows compute its loss from
    ``value`` after the run rather than inside it."""

    def value(self, w):
        return super().value(w)


@pytest.mark.parametrize("rtol, atol, expected", [(1e-8, 1e-10, "the integration reached the end"),
                                                  (0.5, 1.0, "rose by"),
                                                  (0.99, 1.0, "the loss is not finite at t = ")])
def test_the_loss_recorded_inside_a_compiled_run_is_the_one_computed_after_it(rtol, atol, expected):
    """A compiled symbolic objective's run records the loss, the cut before a non-finite loss and the Lyapunov
    check in its compiled call: the same path, loss and message as from ``obj.value`` afterwards.  At loose
    tolerances dop853 outruns its stability limit on this stiff quadratic, so the loss rises, then overflows."""
    import copy

    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    compiled = gf.symbolic.from_expr(500 * w1 ** 2 + sp.Rational(1, 2) * w2 ** 2, [w1, w2]).compile()
    other = copy.copy(compiled)
    other.__class__ = _SameValue
    inside, after = gf.GradientFlow(compiled), gf.GradientFlow(other)
    assert inside._records_loss and not after._records_loss
    w0 = np.array([1.0, 1.0])
    ours = inside.solve(w0, (0, 10), method="dop853", rtol=rtol, atol=atol)
    theirs = after.solve(w0, (0, 10), method="dop853", rtol=rtol, atol=atol)
    assert expected in ours.message
    assert (ours.status, ours.message) == (theirs.status, theirs.message)
    np.testing.assert_array_equal(ours.t, theirs.t)
    np.testing.assert_array_equal(ours.w, theirs.w)
    np.testing.assert_allclose(ours.loss, theirs.loss, rtol=1e-14, atol=0)
    np.testing.assert_allclose(ours.loss, compiled.value(ours.w), rtol=1e-14, atol=0)


def test_auto_judges_the_stiffness_at_w0_inside_the_compiled_run():
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    flow = gf.GradientFlow(gf.symbolic.from_expr(500 * w1 ** 2 + sp.Rational(1, 2) * w2 ** 2, [w1, w2]).compile())
    w0 = np.array([1.0, 1.0])                      # rho(H) = 1000 everywhere: stiff from a span of 0.99 on
    assert flow._explicit_steps(w0, 0.95) < flow_module.EXPLICIT_STEP_LIMIT <= flow._explicit_steps(w0, 1.05)
    short, long = flow.solve(w0, (0, 0.95)), flow.solve(w0, (0, 1.05))
    assert short.method.startswith("dopri5") and long.method == "bdf" and short.success and long.success
    assert flow.solve_ensemble(np.array([w0, 2 * w0]), (0, 1.05)).method == "bdf"
    np.testing.assert_allclose(long.final, [np.exp(-1050.0), np.exp(-1.05)], rtol=1e-4, atol=1e-12)


def test_a_correct_flow_carries_no_lyapunov_warning(two_parameter):
    traj = gf.GradientFlow(two_parameter).solve(np.array([0.1, 0.2]), (0, 20), method="RK45", rtol=1e-8)
    assert np.all(np.diff(traj.loss) <= 1e-12) and "warning" not in traj.message


def test_a_terminal_event_stops_the_flow(two_parameter):
    def small_loss(t, w):
        return 0.5 * (w[0] * w[1] - 1) ** 2 - 1e-4
    small_loss.terminal = True
    traj = gf.GradientFlow(two_parameter).solve(np.array([0.1, 0.2]), (0, 50), events=small_loss)
    assert traj.status == "terminated" and traj.success
    assert traj.loss[-1] == pytest.approx(1e-4, rel=1e-3)
    assert len(traj.t_events[0]) == 1



@pytest.mark.parametrize("method", ["dopri5", "exprb32", "bdf", "auto"])
def test_the_last_step_lands_on_tf_even_where_t_plus_tf_minus_t_rounds_below_it(quadratic, method):
    """t0 + (tf - t0) < tf in floating point for this span: the last step used to stop one ulp short of tf and then
    fail with "step size fell below the resolution of t"."""
    obj = quadratic[0]
    t0, tf = -1.788313902605355, 0.014361488866398266
    flow = gf.GradientFlow(obj)
    w0 = obj.init(seed=1)
    traj = flow.solve(w0, (t0, tf), method=method)
    assert traj.success, traj.message
    assert traj.t[-1] == tf
    ensemble = flow.solve_ensemble(np.stack([w0, 2 * w0]), (t0, tf), method=method)
    assert ensemble.success and ensemble.t[-1] == tf and ensemble.n_points == flow_module.DEFAULT_ENSEMBLE_POINTS

# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, error, match", [
    ({"w0": np.zeros(3)}, ValueError, r"`w0` must have shape \(2,\)"),
    ({"w0": np.array([np.nan, 1.0])}, ValueError, "`w0` must be finite"),
    ({"t_span": (1.0, 0.0)}, ValueError, "`t_span` must be increasing"),
    ({"t_span": 5.0}, TypeError, "`t_span` must be a pair"),
    ({"t_eval": [0.0, 2.0, 1.0]}, ValueError, "`t_eval` must be sorted"),
    ({"t_eval": [0.0, 20.0]}, ValueError, "`t_eval` must lie within t_span"),
    ({"method": "euler"}, ValueError, r"`method` must be one of 'auto', 'dopri5'.*'LSODA'; got 'euler'"),
    ({"rtol": 0.0}, ValueError, "`rtol` must be > 0"),
    ({"events": 3}, TypeError, r"`events\[0\]` must be a callable"),
    ({"events": lambda t, w: w[0], "method": "bdf"}, ValueError, "`events` need a scipy method"),
    ({"t_eval": ["a"]}, TypeError, "`t_eval` must be an array of real numbers"),
    ({"t_eval": [0.0, None]}, TypeError, "`t_eval` must be an array of real numbers"),
    ({"t_eval": [True]}, TypeError, "`t_eval` must be an array of real numbers"),
    ({"t_eval": "0.5"}, TypeError, "`t_eval` must be an array of real numbers"),
    ({"w0": [True, False]}, TypeError, "`w0` must be an array of real numbers"),
    ({"w0": ["0.1", "0.2"]}, TypeError, "`w0` must be an array of real numbers"),
    ({"t_span": (-1e308, 1e308)}, ValueError, "`t_span` must have a length tf - t0 that is a finite float"),
    ({"w0": np.array([0.1 + 1j, 0.2])}, TypeError, "`w0` must be an array of real numbers"),
])
def test_solve_validates_its_input(two_parameter, kwargs, error, match):
    arguments = {"w0": np.array([0.1, 0.2]), "t_span": (0.0, 10.0)}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        gf.GradientFlow(two_parameter).solve(**arguments)


def test_compiled_methods_need_compiled_kernels():
    xps = pytest.importorskip("array_api_strict")
    data = gf.Dataset(xps.asarray([[1.0]]), xps.asarray([1.0]))
    obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), data)
    flow = gf.GradientFlow(obj)
    assert flow.kernels is None
    with pytest.raises(ValueError, match="`method` 'bdf' needs compiled kernels"):
        flow.solve(np.array([0.1, 0.2]), (0, 1), method="bdf")
    traj = flow.solve(np.array([0.1, 0.2]), (0, 1))         # auto falls back to scipy with the exact Jacobian
    assert traj.method == "LSODA" and traj.success


def test_solve_ensemble_validates_w0(two_parameter):
    with pytest.raises(ValueError, match=r"`W0` must have shape \(m, 2\)"):
        gf.GradientFlow(two_parameter).solve_ensemble(np.zeros(2), (0, 1))
    with pytest.raises(ValueError, match=r"`W0` must have shape \(m, 2\) with m >= 1"):
        gf.GradientFlow(two_parameter).solve_ensemble(np.empty((0, 2)), (0, 1))



def test_an_objective_like_object_whose_value_takes_one_vector_gets_its_loss_recorded():
    class Bowl:
        size = 2
        A = np.array([[2.0, 0.5], [0.5, 1.0]])

        def value(self, w):
            return 0.5 * w @ self.A @ w          # one vector only: a batch (N, 2) @ (2, 2) @ (N, 2) fails

        def grad(self, w):
            return self.A @ w

        def hessian(self, w):
            return self.A

    w0 = np.array([1.0, -1.0])
    traj = gf.GradientFlow(Bowl()).solve(w0, (0, 1), t_eval=[0.0, 0.5, 1.0])
    assert traj.success
    exact = [scipy.linalg.expm(-Bowl.A * t) @ w0 for t in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(traj.loss, [0.5 * w @ Bowl.A @ w for w in exact], rtol=1e-5)

def test_gradient_flow_refuses_a_non_objective():
    with pytest.raises(TypeError, match="`obj` must be a gradflow.Objective"):
        gf.GradientFlow("loss")


# ------------------------------------------------------------------------------ trajectories on disk
def test_trajectory_round_trips_through_disk(tmp_path, two_parameter):
    traj = gf.GradientFlow(two_parameter).solve(np.array([0.1, 0.2]), (0, 5), t_eval=np.linspace(0, 5, 7))
    path = traj.save(tmp_path / "run")
    assert path.name == "run.npz" and [p.name for p in tmp_path.iterdir()] == ["run.npz"]
    back = Trajectory.load(path)
    np.testing.assert_array_equal(back.w, traj.w)
    np.testing.assert_array_equal(back.t, traj.t)
    np.testing.assert_array_equal(back.metrics["norm"], traj.metrics["norm"])
    assert (back.status, back.message, back.method, back.nfev) == (traj.status, traj.message, traj.method, traj.nfev)


def test_saving_to_a_folder_and_loading_what_is_not_a_trajectory_say_so(tmp_path, two_parameter):
    traj = gf.GradientFlow(two_parameter).solve(np.array([0.1, 0.2]), (0, 1))
    with pytest.raises(ValueError, match="is a folder"):
        traj.save(tmp_path)
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / (tmp_path.name + ".npz")).exists()
    (tmp_path / "junk.npz").write_bytes(b"not an archive")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.ones(3))
    np.savez(tmp_path / "other.npz", x=np.ones(3))
    for name in ("junk.npz", "empty.npz", "array.npy", "other.npz"):
        with pytest.raises(ValueError, match="is not a gradflow trajectory"):
            Trajectory.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        Trajectory.load(tmp_path / "missing.npz")


def _rewrite(path, target, change):
    """Copy the trajectory archive at ``path`` to ``target`` with ``change(arrays, meta)`` applied."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    change(arrays, meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(target, **arrays)
    return target


@pytest.mark.parametrize("damage, match", [
    ("flip", "is not a valid gradflow trajectory: it is damaged"),
    ("status", r"is not a valid gradflow trajectory.*`status` must be one of 'success'.*got 'weird'"),
    ("rows", r"is not a valid gradflow trajectory.*one row per point; got 6, 7 and 7 rows"),
    ("format", r"is not a valid gradflow trajectory.*format 99, where this gradflow reads 1"),
    ("metrics", r"is not a valid gradflow trajectory.*missing 'metrics'"),
    ("array", r"is not a valid gradflow trajectory.*missing"),
])
def test_loading_a_damaged_or_inconsistent_trajectory_is_a_value_error(tmp_path, two_parameter, damage, match):
    traj = gf.GradientFlow(two_parameter).solve(np.array([0.1, 0.2]), (0, 5), t_eval=np.linspace(0, 5, 7))
    path = traj.save(tmp_path / "run.npz")
    target = tmp_path / "damaged.npz"
    if damage == "flip":
        with zipfile.ZipFile(path) as archive:
            member = archive.getinfo("w.npy")
        raw = bytearray(path.read_bytes())
        start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)   # the member's data
        raw[start + member.compress_size // 2] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif damage == "status":
        _rewrite(path, target, lambda arrays, meta: meta.update(status="weird"))
    elif damage == "rows":
        _rewrite(path, target, lambda arrays, meta: arrays.update(t=arrays["t"][:-1]))
    elif damage == "format":
        _rewrite(path, target, lambda arrays, meta: meta.update(format=99))
    elif damage == "metrics":
        _rewrite(path, target, lambda arrays, meta: meta.pop("metrics"))
    else:
        _rewrite(path, target, lambda arrays, meta: arrays.pop("w"))
    with pytest.raises(ValueError, match=match):
        Trajectory.load(target)
    assert Trajectory.load(path).status == "success"


def test_an_interrupted_save_leaves_no_file(tmp_path, monkeypatch, two_parameter):
    traj = gf.GradientFlow(two_parameter).solve(np.array([0.1, 0.2]), (0, 1))
    traj.save(tmp_path / "run.npz")
    before = (tmp_path / "run.npz").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        traj.save(tmp_path / "run.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]          # no temporary file left behind
    assert (tmp_path / "run.npz").read_bytes() == before                # the old file is intact


def test_a_scipy_stiff_solve_leaves_no_dense_matrix_behind():
    # scipy's solver sits in a reference cycle with its Jacobian and factors; the flow collects it after the solve
    import tracemalloc

    rng = np.random.default_rng(0)
    data = gf.Dataset(rng.standard_normal((60, 20)), rng.integers(0, 3, 60))
    obj = gf.Objective(gf.models.MLP([20, 48, 3], activation="tanh"), data, loss="cross_entropy")
    assert obj.size >= flow_module.COLLECT_AFTER_DENSE_SIZE
    flow, w0, matrix = gf.GradientFlow(obj), obj.init(seed=0, scale=0.5), 8 * obj.size ** 2
    flow.solve(w0, (0, 0.01), method="Radau")
    tracemalloc.start()
    try:
        for method in ("Radau", "BDF", "Radau"):
            traj = flow.solve(w0, (0, 0.01), method=method)
            assert traj.success, traj.message
            assert tracemalloc.get_traced_memory()[0] < 0.5 * matrix, method
    finally:
        tracemalloc.stop()


def test_failure_messages_advise_only_methods_that_fit(wide_net):
    obj, w0 = wide_net
    traj = gf.GradientFlow(obj).solve(w0, (0, 50), max_steps=3)
    assert traj.status == "failed" and "max_steps = 3" in traj.message
    assert "gf.gd at a step below 2 / lambda_max" in traj.message and "'bdf'" not in traj.message
    small = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())
    traj = gf.GradientFlow(small).solve(small.init(seed=0, scale=0.3), (0, 1000), method="dopri5", max_steps=3)
    assert traj.status == "failed" and "raise max_steps or use a stiff method ('bdf')" in traj.message
