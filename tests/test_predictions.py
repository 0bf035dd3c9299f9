"""The paper's predictions as checks (gradflow/predictions.py): closed forms, failing cases and bad input.

Every check is run on a problem whose answer is known in closed form (the
pseudoinverse, the null space of the feature matrix, the hard-margin SVM of two
symmetric points, GD's spectral filter), and on a case where the claim must
fail, so that no check can pass by construction.  The Figure 4 / 15 / 16
setups (degree 30 / 4 Legendre features, 9 Chebyshev training points, 100 test
points, sin(2 pi 4 x)) run through the checks at reduced sizes.
"""

import numpy as np
import pytest
import scipy.optimize

import gradflow as gf
from gradflow import predictions as pr
from gradflow._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

LR = 0.2


# ----------------------------------------------------------------------------- problems
def figure_objective(degree, normalize=False):
    """Figures 4 / 15 (degree 30) and 16 (degree 4): Legendre features, 9 Chebyshev nodes, 100 test points."""
    model = gf.models.FeatureRegression(gf.features.Legendre(degree, normalize=normalize))
    return gf.Objective(model, gf.data.sine(n_train=9, n_test=100, frequency=4))


def pinv_solution(obj):
    return np.linalg.pinv(obj._inputs) @ obj.data.y


def null_projector(obj):
    """Projector on the null space of the feature matrix, from its SVD (independent of gf.linearize)."""
    Phi = obj._inputs
    _, s, vh = np.linalg.svd(Phi)
    rank = int(np.sum(s > s[0] * max(Phi.shape) * np.finfo(float).eps))
    N = vh[rank:].T
    return N @ N.T


@pytest.fixture(scope="module")
def fig4():
    return figure_objective(30)


@pytest.fixture(scope="module")
def fig16():
    return figure_objective(4)


def scalar_net():
    """L(w) = (w1 w2 - 1)^2 / 2: minima on the hyperbola w1 w2 = 1, a saddle at 0."""
    return gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)))


# ============================================================================= perturbation_response
def test_perturbation_response_figure4_keeps_null_part_exactly(fig4):
    w_star = pinv_solution(fig4)
    report = pr.perturbation_response(fig4, w_star, sigma=0.6, seed=1)
    P_null = null_projector(fig4)
    # quadratic loss: GD ends at w* + P_null delta + (I - lr H)^steps P_range delta, the last term ~ e^-80
    np.testing.assert_allclose(report.w_final, w_star + P_null @ report.delta, atol=1e-10)
    np.testing.assert_allclose(report.predicted, w_star + P_null @ report.delta, atol=1e-12)
    assert report.verdict == HOLDS
    assert report.nullity == 31 - 9 and report.n_unstable == 0
    assert report.deviation < 1e-10 and report.null_kept_error < 1e-10 and report.stable_remaining < 1e-10
    assert report.returned and report.loss_final < 1e-20 < report.loss_perturbed


def test_perturbation_response_deep_linear_small_delta_agrees_to_second_order():
    obj = scalar_net()
    report = pr.perturbation_response(obj, np.array([1.0, 1.0]), sigma=1e-3, seed=0)
    # H = [[1, 1], [1, 1]] at (1, 1): the null direction is (1, -1)/sqrt(2)
    u = np.array([1.0, -1.0]) / np.sqrt(2)
    np.testing.assert_allclose(report.predicted - 1.0, u * (u @ report.delta), atol=1e-15)
    assert report.verdict == HOLDS
    assert report.deviation < 2 * report.delta_norm       # O(|delta|^2) / |delta|
    assert abs(report.w_final[0] * report.w_final[1] - 1.0) < 1e-12   # back on the zero-loss hyperbola


def test_perturbation_response_too_large_perturbation_does_not_hold():
    obj = scalar_net()
    report = pr.perturbation_response(obj, np.array([1.0, 1.0]), sigma=1.0, seed=3)
    assert report.verdict == DOES_NOT_HOLD
    assert report.returned                                 # zero loss again, ...
    assert abs(report.w_final[0] * report.w_final[1] - 1.0) < 1e-12
    assert report.deviation > 0.1                          # ... but far from w* + P_c delta
    assert "too large" in report.message


def test_perturbation_response_at_a_saddle_does_not_hold():
    obj = scalar_net()
    report = pr.perturbation_response(obj, np.zeros(2), sigma=1e-3)
    assert report.verdict == DOES_NOT_HOLD
    assert report.kind == "saddle" and report.n_unstable == 1
    assert report.loss_star == 0.5 and report.loss_final < 1e-20 and not report.returned
    assert report.deviation > 100
    assert "saddle" in report.message


def test_perturbation_response_given_delta_is_used():
    obj = scalar_net()
    delta = np.array([1e-3, -1e-3])                        # exactly along the null direction
    report = pr.perturbation_response(obj, np.array([1.0, 1.0]), delta=delta)
    np.testing.assert_array_equal(report.delta, delta)
    assert report.delta_stable_norm < 1e-15
    assert report.verdict == HOLDS


def test_perturbation_response_rejects_a_point_that_is_not_an_equilibrium(fig4):
    w = pinv_solution(fig4) + 0.1
    with pytest.raises(ValueError, match=r"`w_star` must be an equilibrium.*\|grad L\(w_star\)\| = .*times the threshold"):
        pr.perturbation_response(fig4, w)


def test_not_an_equilibrium_message_uses_linearizes_threshold_and_hint(fig16):
    w = pinv_solution(fig16) + 1e-3
    with pytest.warns(gf.NotAnEquilibriumWarning):
        lin = gf.linearize(fig16, w)                       # the threshold is linearize's own (Linearization.grad_tol)
    assert not lin.is_equilibrium and lin.grad_norm > lin.grad_tol > 0
    for check in (pr.perturbation_response, pr.perturbation_walk):
        with pytest.raises(ValueError) as info:
            check(fig16, w)
        text = str(info.value)
        assert f"{lin.grad_norm:.3g}, {lin.grad_norm / lin.grad_tol:.3g} times the threshold {lin.grad_tol:.3g}" in text
        assert "gf.find_equilibrium(obj, w_star), or run GD longer first" in text


def test_perturbation_response_rejects_other_losses():
    data = gf.data.separable(n=6, n_test=0)
    obj = gf.Objective(gf.models.DeepLinear([2, 1]), data, loss="logistic")
    with pytest.raises(ValueError, match=r"`obj` must use the 'square' loss.*max_margin"):
        pr.perturbation_response(obj, np.zeros(2))


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma": 0.0}, "`sigma` must be > 0"),
    ({"lr": -1.0}, "`lr` must be > 0"),
    ({"steps": 0}, "`steps` must be an integer >= 1"),
    ({"seed": -1}, "`seed` must be a non-negative integer"),
    ({"delta": np.zeros(2)}, "`delta` must be a nonzero perturbation"),
    ({"delta": np.zeros(3)}, r"`delta` must have shape \(2,\)"),
])
def test_perturbation_response_validates_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pr.perturbation_response(scalar_net(), np.array([1.0, 1.0]), **kwargs)


def test_checks_reject_a_non_objective():
    with pytest.raises(TypeError, match="`obj` must be a gradflow.Objective"):
        pr.perturbation_response("not an objective", np.zeros(2))


def test_checks_reject_a_non_numeric_point():
    with pytest.raises(TypeError, match="`w_star` must be an array of 2 real numbers"):
        pr.perturbation_response(scalar_net(), "ab")


# ============================================================================= perturbation_walk
def test_perturbation_walk_figure4_grows_like_sigma_squared_nullity(fig4):
    report = pr.perturbation_walk(fig4, pinv_solution(fig4), rounds=8, every=4000, sigma=0.6, repetitions=30)
    assert report.verdict == HOLDS
    assert report.nullity == 22
    assert report.predicted_slope == pytest.approx(0.36 * 22)
    assert abs(report.slope - report.predicted_slope) <= 4 * report.slope_stderr
    # the stable part of every kick is undone: all of the displacement lies in the null space
    np.testing.assert_allclose(report.null_sq, report.displacement_sq, rtol=1e-9)
    assert np.all(report.stable_sq < 1e-20)
    assert report.returned and report.max_excess_loss < 1e-20
    assert 0.35 < report.norm_exponent < 0.65            # sqrt(m)
    assert report.norm[-1] > 2 * report.norm[0]


def test_perturbation_walk_nondegenerate_figure16_is_inconclusive(fig16):
    # nullity 0: nothing to random-walk (predicted slope sigma^2 N = 0), so the claim does not apply
    report = pr.perturbation_walk(fig16, pinv_solution(fig16), rounds=6, repetitions=10)
    assert report.verdict == INCONCLUSIVE
    assert report.nullity == 0 and report.predicted_slope == 0.0
    assert np.all(report.displacement_sq < 1e-20)        # every kick is undone
    assert abs(report.slope) < 1e-20                     # the measured slope is kept in the report
    np.testing.assert_allclose(report.norm, report.norm[0], rtol=1e-10)
    assert "nondegenerate" in report.message and "does not apply" in report.message
    assert f"slope {report.slope:.4g}" in report.message


def small_degenerate_fit():
    """Degree-8 Legendre features on 5 Chebyshev nodes: nullity 4, predicted slope 0.36 * 4 = 1.44."""
    return figure_objective_n(8, 5)


def figure_objective_n(degree, n_train):
    model = gf.models.FeatureRegression(gf.features.Legendre(degree))
    return gf.Objective(model, gf.data.sine(n_train=n_train, n_test=100, frequency=4))


def test_perturbation_walk_too_few_repetitions_is_inconclusive():
    obj = small_degenerate_fit()
    report = pr.perturbation_walk(obj, pinv_solution(obj), rounds=6, repetitions=6)
    assert report.nullity == 4 and report.predicted_slope == pytest.approx(1.44)
    # measured 1.93 +- 0.53: 4 standard errors (2.1) are more than half the predicted slope, any slope would pass
    assert pr.WALK_Z * report.slope_stderr > pr.WALK_MAX_RELATIVE_ERROR * report.predicted_slope
    assert report.returned
    assert report.verdict == INCONCLUSIVE
    assert "raise `repetitions`" in report.message


def test_perturbation_walk_enough_repetitions_decides():
    obj = small_degenerate_fit()
    report = pr.perturbation_walk(obj, pinv_solution(obj), rounds=6, repetitions=60)
    assert pr.WALK_Z * report.slope_stderr <= pr.WALK_MAX_RELATIVE_ERROR * report.predicted_slope
    assert report.verdict == HOLDS
    assert abs(report.slope - 1.44) <= pr.WALK_Z * report.slope_stderr


@pytest.mark.parametrize("rounds, repetitions", [(25, 10), (62, 30)], ids=["quick", "full"])
def test_perturbation_walk_figure4_sizes_of_the_experiments_decide(fig4, rounds, repetitions):
    # gradflow/experiments/regression.py: 100,000 (quick) / 250,000 (full) steps, kicks every 4000, 10 / 30 runs
    report = pr.perturbation_walk(fig4, pinv_solution(fig4), rounds=rounds, repetitions=repetitions)
    assert pr.WALK_Z * report.slope_stderr <= pr.WALK_MAX_RELATIVE_ERROR * report.predicted_slope
    assert report.verdict == HOLDS


@pytest.mark.parametrize("kwargs, match", [
    ({"rounds": 1}, "`rounds` must be an integer >= 2"),
    ({"every": 0}, "`every` must be an integer >= 1"),
    ({"repetitions": 1}, "`repetitions` must be an integer >= 2"),
    ({"sigma": -0.6}, "`sigma` must be > 0"),
    ({"rtol": 0}, "`rtol` must be > 0"),
])
def test_perturbation_walk_validates_input(fig16, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pr.perturbation_walk(fig16, pinv_solution(fig16), **kwargs)


def test_perturbation_walk_rejects_a_point_that_is_not_an_equilibrium(fig16):
    with pytest.raises(ValueError, match="`w_star` must be an equilibrium"):
        pr.perturbation_walk(fig16, np.zeros(fig16.size))


# ============================================================================= min_norm
@pytest.mark.parametrize("method", ["gd", "flow"])
def test_min_norm_feature_regression_from_zero_is_the_pseudoinverse(fig4, method):
    report = pr.min_norm(fig4, method=method, steps=5000)
    reference = np.linalg.lstsq(fig4._inputs, fig4.data.y, rcond=None)[0]   # minimum-norm least squares
    np.testing.assert_allclose(report.w_final, reference, atol=1e-9)
    assert report.verdict == HOLDS and report.converged
    assert report.distance < 1e-9 and report.null_component_final < 1e-9


def test_min_norm_feature_regression_null_start_does_not_hold(fig4):
    w0 = fig4.init(seed=1, scale=0.1)
    report = pr.min_norm(fig4, w0=w0, steps=5000)
    P_null = null_projector(fig4)
    w_dagger = pinv_solution(fig4)
    expected = np.linalg.norm(P_null @ w0) / np.linalg.norm(w_dagger)
    assert report.verdict == DOES_NOT_HOLD and report.converged
    assert report.distance == pytest.approx(expected, rel=1e-8)
    assert report.predicted_distance == pytest.approx(expected, rel=1e-8)
    np.testing.assert_allclose(report.w_final, w_dagger + P_null @ w0, atol=1e-9)   # Lemma 3


def teacher_net():
    data = gf.data.linear_teacher(n=10, d=20, n_test=0, seed=0)
    return gf.Objective(gf.models.DeepLinear([20, 3, 1]), data)


def test_min_norm_deep_linear_from_the_data_span_holds():
    obj = teacher_net()
    report = pr.min_norm(obj, lr=0.05, steps=20_000)
    A_ref = np.linalg.lstsq(obj.data.X, obj.data.y, rcond=None)[0]
    np.testing.assert_allclose(report.solution, A_ref, atol=1e-9)
    assert report.verdict == HOLDS and report.model == "deep_linear"
    assert report.null_component_final < 1e-10            # Lemma 4: no null-space part is ever added


def test_min_norm_deep_linear_flow_holds():
    report = pr.min_norm(teacher_net(), method="flow", t_end=1000.0)
    assert report.verdict == HOLDS and report.distance < 1e-9


def test_min_norm_deep_linear_null_start_does_not_hold():
    obj = teacher_net()
    report = pr.min_norm(obj, w0=obj.init(seed=0), lr=0.05, steps=20_000)
    assert report.verdict == DOES_NOT_HOLD and report.converged
    assert report.null_component_final == pytest.approx(report.null_component_start, rel=1e-10)
    assert report.distance == pytest.approx(report.predicted_distance, rel=1e-6)
    assert report.distance > 0.1


def test_min_norm_unconverged_run_is_inconclusive(fig4):
    report = pr.min_norm(fig4, steps=10)
    assert report.verdict == INCONCLUSIVE and not report.converged
    assert "raise `steps`" in report.message


@pytest.mark.parametrize("build, match", [
    (lambda: gf.Objective(gf.models.DeepLinear([2, 1]), gf.data.separable(n=6, n_test=0), loss="logistic"),
     "'square' loss without weight decay.*use max_margin"),
    (lambda: gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(5)), gf.data.sine(), weight_decay=0.1),
     "without weight decay"),
    (lambda: gf.Objective(gf.models.MLP([1, 4, 1]), gf.data.sine()), "FeatureRegression or a DeepLinear"),
])
def test_min_norm_rejects_wrong_objectives(build, match):
    with pytest.raises(ValueError, match=match):
        pr.min_norm(build())


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "ode"}, "`method` must be 'gd'"),
    ({"steps": -5}, "`steps` must be an integer >= 1"),
    ({"t_end": 0.0}, "`t_end` must be > 0"),
    ({"w0": np.zeros(3)}, r"`w0` must have shape \(31,\)"),
    ({"w0": np.full(31, np.nan)}, "`w0` must be finite"),
])
def test_min_norm_validates_input(fig4, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pr.min_norm(fig4, **kwargs)


# ============================================================================= max_margin
def logistic(X, y, widths=None):
    return gf.Objective(gf.models.DeepLinear(widths or [X.shape[1], 1]), gf.Dataset(X, y), loss="logistic")


def svm_by_slsqp(G):
    """min |w|^2 / 2 s.t. G w >= 1, by scipy's SLSQP: an independent reference for the NNLS solution."""
    res = scipy.optimize.minimize(lambda w: 0.5 * w @ w, np.ones(G.shape[1]), jac=lambda w: w, method="SLSQP",
                                  constraints=[{"type": "ineq", "fun": lambda w: G @ w - 1.0, "jac": lambda w: G}],
                                  options={"ftol": 1e-14, "maxiter": 500})
    assert res.success
    return res.x


def test_max_margin_two_symmetric_points_closed_form():
    a = np.array([1.0, 0.5])
    report = pr.max_margin(logistic(np.stack([a, -a]), np.array([1.0, -1.0])), steps=10_000)
    np.testing.assert_allclose(report.svm, a / (a @ a), atol=1e-12)       # w_hat = a / |a|^2
    assert report.verdict == HOLDS
    assert report.final_angle < 1e-12                                      # w(t) is parallel to a all along
    assert report.norm_slope == pytest.approx(1 / np.linalg.norm(a), rel=1e-3)


def test_max_margin_separable_data_converges_to_the_svm_direction():
    data = gf.data.separable(n=40, d=2, margin=0.1, seed=0)
    obj = logistic(data.X, data.y)
    report = pr.max_margin(obj, steps=100_000)
    np.testing.assert_allclose(report.svm, svm_by_slsqp(data.y[:, None] * data.X), rtol=1e-6)
    assert np.min(data.y * (data.X @ report.svm)) == pytest.approx(1.0, abs=1e-9)
    assert report.verdict == HOLDS and report.separable
    assert report.final_angle < report.angle[report.t == report.fit_from][0] < report.angle[1]
    assert report.angle_log_t_end < report.angle_log_t_start
    assert report.norm_slope == pytest.approx(report.svm_norm, rel=pr.MARGIN_NORM_RTOL)
    assert report.final_train_error == 0.0


def test_max_margin_cross_entropy_three_classes():
    rng = np.random.default_rng(0)
    centers = np.array([[3.0, 0.0], [-1.5, 2.6], [-1.5, -2.6]])
    labels = np.arange(30) % 3
    X = centers[labels] + 0.5 * rng.standard_normal((30, 2))
    obj = gf.Objective(gf.models.DeepLinear([2, 3]), gf.Dataset(X, labels), loss="cross_entropy")
    report = pr.max_margin(obj, steps=100_000)
    # multiclass hard margin: (w_y - w_c) . x_i >= 1 for c != y_i, W row-major (3, 2)
    G = []
    for x, y in zip(X, labels):
        for c in range(3):
            if c != y:
                row = np.zeros((3, 2))
                row[y], row[c] = x, -x
                G.append(row.ravel())
    np.testing.assert_allclose(report.svm, svm_by_slsqp(np.array(G)), rtol=1e-5, atol=1e-8)
    assert report.verdict == HOLDS
    assert report.final_angle < 0.05


def test_max_margin_non_separable_data_is_inconclusive():
    data = gf.data.separable(n=40, d=2, margin=0.1, seed=0)
    y = data.y.copy()
    y[:4] *= -1                                             # two points of each class cross over
    report = pr.max_margin(logistic(data.X, y), steps=100_000)
    # no max-margin direction exists: the claim does not apply; the numbers are still reported
    assert report.verdict == INCONCLUSIVE and not report.separable
    assert "does not apply" in report.message
    assert report.svm is None and np.isnan(report.final_angle)
    assert abs(report.norm_slope) < 1e-6                   # |w| converges to a finite minimizer
    assert report.final_train_error > 0
    assert "not linearly separable" in report.message


def test_max_margin_separable_data_with_weight_decay_does_not_hold():
    data = gf.data.separable(n=40, d=2, margin=0.1, seed=0)
    obj = gf.Objective(gf.models.DeepLinear([2, 1]), gf.Dataset(data.X, data.y), loss="logistic", weight_decay=1e-3)
    report = pr.max_margin(obj, steps=100_000)
    # w(t) converges to the finite minimizer of L + 1e-3/2 |w|^2 (found here by BFGS), not along w_svm log t
    res = scipy.optimize.minimize(lambda w: float(obj.value(w)), np.zeros(2), jac=lambda w: np.asarray(obj.grad(w)),
                                  method="BFGS", options={"gtol": 1e-12})
    np.testing.assert_allclose(report.final_norm, np.linalg.norm(res.x), rtol=1e-6)
    u = report.svm / report.svm_norm
    angle = np.arctan2(np.linalg.norm(res.x - (res.x @ u) * u), res.x @ u)
    assert report.separable and report.final_train_error == 0.0
    assert report.final_angle == pytest.approx(angle, rel=1e-4) and angle > 0.02   # the angle stalls
    assert abs(report.norm_slope) < 1e-6 * report.svm_norm                          # |w| stops growing
    assert report.angle_log_t_end > (1 + pr.MARGIN_ANGLE_SLACK) * report.angle_log_t_start
    assert report.verdict == DOES_NOT_HOLD
    assert "weight decay" in report.message


@pytest.mark.parametrize("build, match", [
    (lambda: gf.Objective(gf.models.DeepLinear([2, 1]), gf.data.separable(n=6, n_test=0)), "use min_norm"),
    (lambda: gf.Objective(gf.models.DeepLinear([2, 3, 1]), gf.data.separable(n=6, n_test=0), loss="logistic"),
     "one weight layer"),
])
def test_max_margin_rejects_wrong_objectives(build, match):
    with pytest.raises(ValueError, match=match):
        pr.max_margin(build())


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 50}, "`steps` must be an integer >= 100"),
    ({"lr": 0.0}, "`lr` must be > 0"),
    ({"norm_rtol": -1.0}, "`norm_rtol` must be > 0"),
])
def test_max_margin_validates_input(kwargs, match):
    obj = logistic(np.array([[1.0, 0.5], [-1.0, -0.5]]), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=match):
        pr.max_margin(obj, **kwargs)


# ============================================================================= early_stopping
def test_early_stopping_figure15_has_a_finite_optimum(fig4):
    report = pr.early_stopping(fig4, steps=20_000)
    # the exact test-loss curve, every step, by GD itself
    exact = gf.gd(fig4, np.zeros(fig4.size), lr=LR, steps=1000, record_every=1)
    assert report.best_t == int(np.argmin(exact.metrics["test_loss"])) == 20
    assert report.verdict == HOLDS and report.finite_optimum
    assert report.overfit == pytest.approx(0.0770, abs=1e-3)
    assert report.nullity == 22


def test_early_stopping_filters_are_gds_spectral_filter(fig4):
    report = pr.early_stopping(fig4, steps=2000)
    t = report.t[:, None].astype(float)
    lam = report.eigenvalues[None, :]
    np.testing.assert_allclose(report.filter_gd, 1 - (1 - LR * lam) ** t, atol=1e-9)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(report.filter_ridge[1:], lam / (lam + 1 / (LR * t[1:])), rtol=1e-12)
    # the continuous filters 1 - e^-x and x / (1 + x) differ by at most 0.2036
    assert 0.15 < report.filter_gap <= pr.EARLY_FILTER_TOL


def test_early_stopping_figure16_overfits_less_than_figure15(fig4, fig16):
    degenerate = pr.early_stopping(fig4, steps=20_000)
    nondegenerate = pr.early_stopping(fig16, steps=20_000)
    assert nondegenerate.nullity == 0
    # measured: on these 9 nodes the nondegenerate fit also has a (smaller) finite optimum
    assert nondegenerate.best_t == 16 and nondegenerate.overfit == pytest.approx(0.0252, abs=1e-3)
    assert nondegenerate.overfit < degenerate.overfit


def test_early_stopping_realizable_nondegenerate_problem_has_no_finite_optimum():
    x = np.cos((2 * np.arange(1, 10) - 1) * np.pi / 18)[:, None]
    x_test = np.linspace(-1, 1, 100)[:, None]
    target = lambda x: 1.5 * x[:, 0] ** 3 - 0.5 * x[:, 0]               # P_3, in the span of the features
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(4)),
                       gf.Dataset(x, target(x), x_test, target(x_test)))
    report = pr.early_stopping(obj, steps=20_000)
    assert report.verdict == DOES_NOT_HOLD and not report.finite_optimum
    assert report.final_test_loss < 1e-20 * report.test_loss[0]
    assert "no finite optimum" in report.message


def test_early_stopping_from_a_far_start_is_not_ridge(fig4):
    report = pr.early_stopping(fig4, w0=np.full(fig4.size, 3.0), steps=2000)
    assert report.filter_gap > 1.0 and report.start_filter_gap > 1.0
    assert report.expected_filter_gap <= pr.EARLY_FILTER_TOL       # lr 0.2 alone would pass
    assert report.verdict == DOES_NOT_HOLD
    assert "start w0 is far from zero" in report.message and "step size is too large" not in report.message


def test_early_stopping_large_step_size_is_blamed_not_the_start(fig4):
    lr = 1.2                                                # lr * lambda_max = 1.54 < 2: GD converges
    report = pr.early_stopping(fig4, lr=lr, steps=2000)
    lam_all = np.linalg.eigvalsh(fig4._inputs.T @ fig4._inputs / fig4._inputs.shape[0])
    assert report.lr_lambda_max == pytest.approx(lr * lam_all.max(), rel=1e-10) and report.lr_lambda_max < 2
    # the discrete-time gap of the filters for these lr * lambda_j, in closed form, over the recorded t > 0
    a = lr * report.eigenvalues[None, :]
    t = report.t[1:, None].astype(float)
    gap = np.max(np.abs(1 - (1 - a) ** t - a * t / (1 + a * t)))
    assert report.expected_filter_gap == pytest.approx(gap, rel=1e-12)
    assert report.filter_gap == pytest.approx(gap, rel=1e-9)         # from w0 = 0 the whole gap is the step size's
    assert report.start_filter_gap < 1e-9
    assert gap > 0.5 > pr.EARLY_FILTER_TOL
    assert report.verdict == DOES_NOT_HOLD
    assert "step size is too large" in report.message
    assert f"lr * lambda_max = {report.lr_lambda_max:.3g}" in report.message
    assert f"differ by up to {gap:.3g}" in report.message
    assert "start" not in report.message.split("nullity of H")[-1]


@pytest.mark.parametrize("build, match", [
    (lambda: gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher()), "FeatureRegression model"),
    (lambda: gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(5)), gf.data.sine(n_test=0)),
     "must have a test set"),
])
def test_early_stopping_rejects_wrong_objectives(build, match):
    with pytest.raises(ValueError, match=match):
        pr.early_stopping(build())


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 5}, "`steps` must be an integer >= 10"),
    ({"filter_tol": 0.0}, "`filter_tol` must be > 0"),
    ({"overfit_rtol": -1.0}, "`overfit_rtol` must be > 0"),
])
def test_early_stopping_validates_input(fig16, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pr.early_stopping(fig16, **kwargs)


# ============================================================================= reports
def test_reports_are_frozen_and_print_their_numbers(fig16):
    report = pr.early_stopping(fig16, steps=1000)
    text = str(report)
    assert text.startswith("early stopping") and report.verdict in text and "best t" in text
    with pytest.raises(AttributeError):
        report.verdict = HOLDS


# ============================================================================= numerical failure, other models
@pytest.mark.parametrize("run", [
    lambda obj, w: pr.perturbation_response(obj, w, lr=10.0),
    lambda obj, w: pr.perturbation_walk(obj, w, rounds=2, repetitions=2, every=100, lr=10.0),
    lambda obj, w: pr.min_norm(obj, lr=10.0, steps=1000),
    lambda obj, w: pr.early_stopping(obj, lr=10.0, steps=1000),
], ids=["response", "walk", "min_norm", "early_stopping"])
def test_divergent_gd_is_inconclusive_with_a_message(fig4, run):
    report = run(fig4, pinv_solution(fig4))                # lr * lambda_max = 12.9 > 2
    assert report.verdict == INCONCLUSIVE and report.status == "diverged"
    assert "diverged" in report.message and "λ_max" in report.message


def test_perturbation_walk_deep_linear_one_null_direction():
    # one null direction: the per-repetition slope scatters by ~120%, so it takes ~300 repetitions to decide
    report = pr.perturbation_walk(scalar_net(), [1.0, 1.0], rounds=20, every=200, sigma=0.01, repetitions=300)
    assert report.nullity == 1 and report.predicted_slope == pytest.approx(1e-4)
    assert pr.WALK_Z * report.slope_stderr <= pr.WALK_MAX_RELATIVE_ERROR * report.predicted_slope
    assert report.verdict == HOLDS
    assert report.returned


def test_perturbation_walk_deep_linear_large_kicks_slope_does_not_hold():
    # sigma = 0.5 on the hyperbola w1 w2 = 1: GD returns to zero loss after every kick, but the kicks are too large
    # for the linear picture (the null direction turns along the hyperbola): the decided slope is far below sigma^2
    report = pr.perturbation_walk(scalar_net(), [1.0, 1.0], rounds=20, every=400, sigma=0.5, repetitions=100)
    assert report.returned and report.max_excess_loss < 1e-15
    assert pr.WALK_Z * report.slope_stderr <= pr.WALK_MAX_RELATIVE_ERROR * report.predicted_slope
    assert report.slope < 0.5 * report.predicted_slope
    assert report.verdict == DOES_NOT_HOLD
    assert "slope differs from sigma^2 N" in report.message
