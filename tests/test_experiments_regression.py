"""The regression experiments (Figures 2, 4, 13, 15, 16): quick runs, their verdicts, and every check on a case
where it must not hold."""

import dataclasses
import json

import numpy as np
import pytest

import gradflow as gf
from gradflow._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from gradflow.experiments import regression as R
from gradflow.experiments._runner import jsonable


# ----------------------------------------------------------------------------- quick runs, once each
@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = {}
    for name in ("fig2", "fig4", "fig13", "fig15", "fig16"):
        folder = tmp_path_factory.mktemp(name)
        out[name] = (gf.experiments.REGISTRY[name].run("quick", 0, folder), folder)
    return out


def verdicts(result) -> dict:
    return {claim.source: claim.verdict for claim in result.claims}


def claim(result, source_start: str, statement_part: str = ""):
    found = [c for c in result.claims if c.source.startswith(source_start) and statement_part in c.statement]
    assert len(found) == 1, [c.source for c in result.claims]
    return found[0]


@pytest.mark.parametrize("name", ["fig2", "fig4", "fig13", "fig15", "fig16"])
def test_quick_run_returns_a_complete_serializable_result_and_its_figures(results, name):
    result, folder = results[name]
    assert isinstance(result, gf.experiments.ExperimentResult)
    assert (result.name, result.size, result.seed) == (name, "quick", 0)
    assert result.claims and all(c.verdict in (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE) for c in result.claims)
    assert all(c.evidence and c.statement and c.source for c in result.claims)
    assert result.figures and all((folder / f).stat().st_size > 1000 for f in result.figures)
    json.dumps(jsonable({"setup": result.setup, "measurements": result.measurements}), allow_nan=False)
    assert all(isinstance(v, np.ndarray) for v in result.arrays.values())


def test_registered_with_sources_and_titles():
    for name, source in [("fig2", "Figure 2"), ("fig4", "Figure 4"), ("fig13", "Figure 13"), ("fig15", "Figure 15"),
                         ("fig16", "Figure 16")]:
        experiment = gf.experiments.REGISTRY[name]
        assert experiment.source.startswith(source) and experiment.title


# ----------------------------------------------------------------------------- the robust verdicts
def test_fig2_valley_is_degenerate_descent_keeps_the_flat_component_and_weight_decay_makes_it_hyperbolic(results):
    result, _ = results["fig2"]
    assert all(c.verdict == HOLDS for c in result.claims), [c.evidence for c in result.claims]
    m = result.measurements
    # closed forms: H = diag(1, 0) + gamma I, minimum (1/(1 + gamma), 0)
    np.testing.assert_allclose(m["gamma=0"]["hessian_eigenvalues"], [0.0, 1.0], atol=1e-12)
    for gamma in R.VALLEY_WEIGHT_DECAYS:
        entry = m[f"gamma={gamma:g}"]
        np.testing.assert_allclose(entry["hessian_eigenvalues"], [gamma, 1.0 + gamma], rtol=1e-9)
        np.testing.assert_allclose(entry["w_star"], [1.0 / (1.0 + gamma), 0.0], atol=1e-12)
        assert entry["kind"] == "sink" and entry["nullity"] == 0
    assert m["gamma=0"]["kind"] == "non-hyperbolic" and m["gamma=0"]["nullity"] == 1


def test_fig2_gd_ends_on_the_line_with_each_start_keeping_its_slope(results):
    result, _ = results["fig2"]
    starts, final = result.arrays["starts"], result.arrays["final_flat"]
    np.testing.assert_allclose(final[:, 0], 1.0, atol=1e-12)          # w1 = 1: zero loss
    np.testing.assert_allclose(final[:, 1], starts[:, 1], atol=1e-12)  # the free slope w2 is untouched


def test_fig4_perturbation_protocol_train_loss_returns_and_norm_and_test_loss_grow(results):
    result, _ = results["fig4"]
    for source, part in [("Figure 4 caption", "degenerate"), ("Figure 4; Section 4.1, prediction 1", "zero"),
                         ("Section 4.1, prediction 2", "corrected"), ("Figure 4; Section 4.1, prediction 3", "norm"),
                         ("Figure 4; Section 4.1, prediction 3", "test error"), ("Section 4.1, prediction 3", "random walk")]:
        assert claim(result, source, part).verdict == HOLDS, claim(result, source, part).evidence
    m = result.measurements
    assert m["nullity"] == 31 - 9
    assert m["train_loss_phase_end_max"] <= R.ZERO_LOSS < m["train_loss_after_first_kick"]
    assert m["norm_ratio"] >= R.NORM_GROWTH_FACTOR and m["test_ratio"] >= R.TEST_GROWTH_FACTOR
    assert m["walk_slope_predicted"] == pytest.approx(0.6 ** 2 * 22)


def test_fig4_reports_that_the_walk_constant_grows_like_sqrt_n_not_sqrt_one_over_n(results):
    result, _ = results["fig4"]
    c = claim(result, "Section 4.1, prediction 3", "sqrt(1/N)")
    assert c.verdict == DOES_NOT_HOLD, c.evidence
    m = result.measurements
    assert m["walk_slope"] > m["comparison_walk_slope"]    # N = 22 walks faster than N = 12


def test_fig15_overfits_at_a_finite_step_and_converges_to_the_minimum_norm_solution_from_zero(results):
    result, _ = results["fig15"]
    assert all(c.verdict == HOLDS for c in result.claims), [c.evidence for c in result.claims]
    m = result.measurements
    assert 0 < m["t_min"] < R.RUNS["quick"]["steps"] and m["overfit_excess"] > R.OVERFIT_RTOL
    assert m["distance_to_min_norm_from_zero"] <= 1e-10
    assert m["distance_to_min_norm_from_random_starts"] > 0.1   # random starts keep their null-space part


def test_fig16_is_nondegenerate_and_perturbations_do_not_move_it(results):
    result, _ = results["fig16"]
    assert claim(result, "Figure 16 caption").verdict == HOLDS
    assert claim(result, "Figure 16 (right); Section 4.1").verdict == HOLDS
    assert claim(result, "Figure 16 (right)", "norm").verdict == HOLDS
    m = result.measurements
    assert m["nullity"] == 0
    assert m["perturbed_norm_ratio"] == pytest.approx(1.0, abs=1e-12)
    assert m["min_train_loss"] > 0.01          # 5 parameters cannot fit 9 points


def test_fig16_reports_the_small_overfitting_of_the_nondegenerate_case_honestly(results):
    result, _ = results["fig16"]
    c = claim(result, "Figure 16 (left)")
    assert c.verdict == DOES_NOT_HOLD, c.evidence
    m = result.measurements
    assert R.OVERFIT_RTOL < m["overfit_excess"] < m["degenerate_overfit_excess"]


def test_fig13_minimum_norm_solution_eventually_overfits_and_is_the_limit_of_gd(results):
    result, _ = results["fig13"]
    assert all(c.verdict == HOLDS for c in result.claims), [c.evidence for c in result.claims]
    m = result.measurements
    assert m["degree_at_min"] < m["max_degree"] == 300
    assert m["train_loss_max_overparametrized"] < 1e-20            # interpolation once P >= n = 76
    assert max(m["gd_vs_min_norm"].values()) <= 1e-10


# ----------------------------------------------------------------------------- references for the pieces
def test_regression_problem_null_space_and_minimum_norm_solution_match_the_pseudoinverse():
    problem = R.regression_problem(30)
    data = problem.objective.data
    Phi = gf.features.Legendre(30)(data.X)
    np.testing.assert_allclose(problem.w_min_norm, np.linalg.pinv(Phi) @ data.y, atol=1e-10)
    assert problem.nullity == 22 and problem.kind == "non-hyperbolic"
    N, S = problem.null_basis, problem.range_basis
    np.testing.assert_allclose(Phi @ N, 0.0, atol=1e-10)
    np.testing.assert_allclose(np.hstack([N, S]).T @ np.hstack([N, S]), np.eye(31), atol=1e-10)
    H = Phi.T @ Phi / data.n
    assert problem.lambda_max == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-10)
    assert problem.lambda_max * R.LR < 2.0          # the paper's step size is stable with these features


def test_degree_4_has_no_null_space_and_a_positive_least_squares_minimum():
    problem = R.regression_problem(4)
    data = problem.objective.data
    Phi = gf.features.Legendre(4)(data.X)
    w = np.linalg.lstsq(Phi, data.y, rcond=None)[0]
    assert problem.nullity == 0 and problem.kind == "sink"
    assert problem.min_train_loss == pytest.approx(0.5 * np.mean((Phi @ w - data.y) ** 2), rel=1e-10)


@pytest.fixture(scope="module")
def walks():
    """The perturbation protocol (quick) at degrees 30 and 4, summarized."""
    out = {}
    for degree in (30, 4):
        problem = R.regression_problem(degree)
        W0, traj, _ = R.descent_runs(problem, "quick", 0, perturbed=True)
        out[degree] = (problem, W0, traj, R.summarize_perturbation(problem, traj))
    return out


def test_summary_null_norm_at_the_first_phase_end_is_that_of_the_starts(walks):
    problem, W0, _, s = walks[30]
    Phi = gf.features.Legendre(30)(problem.objective.data.X)
    _, _, vt = np.linalg.svd(Phi)
    N = vt[9:].T                                   # null space of Phi, independently of linearize
    assert s.null_norm2[0] == pytest.approx(np.mean(np.sum((W0 @ N) ** 2, axis=1)), rel=1e-10)
    assert s.phase_end_t[0] == R.EVERY and s.phase_end_t[-1] == R.RUNS["quick"]["steps"]
    assert list(s.perturbations_before) == list(range(len(s.phase_end_t)))


def test_growth_and_walk_checks_do_not_hold_in_the_nondegenerate_case(walks):
    _, _, _, s4 = walks[4]
    assert R.norm_growth_claim(s4).verdict == DOES_NOT_HOLD
    assert R.test_growth_claim(s4).verdict == DOES_NOT_HOLD
    assert R.components_claim(s4, 0).verdict == DOES_NOT_HOLD
    assert R.random_walk_claim(s4).verdict == INCONCLUSIVE          # no null space to walk in
    assert R.train_returns_claim(s4, True, "x").verdict == DOES_NOT_HOLD  # its minimum is not zero


def test_flat_norm_and_train_return_checks_do_not_hold_when_they_must_not(walks):
    _, _, _, s30 = walks[30]
    assert R.norm_flat_claim(s30).verdict == DOES_NOT_HOLD
    kicked = dataclasses.replace(s30, train_loss=s30.train_loss + 1e-3, train_loss_excess=1e-3)
    assert R.train_returns_claim(kicked, True, "x").verdict == DOES_NOT_HOLD
    assert R.train_returns_claim(kicked, False, "x").verdict == DOES_NOT_HOLD


def test_random_walk_check_rejects_a_slope_off_sigma_squared_n(walks):
    _, _, _, s30 = walks[30]
    assert R.random_walk_claim(s30).verdict == HOLDS
    assert R.random_walk_claim(dataclasses.replace(s30, walk_slope=3 * s30.walk_slope_predicted)).verdict == DOES_NOT_HOLD
    assert R.random_walk_claim(dataclasses.replace(s30, walk_exponent=0.5)).verdict == DOES_NOT_HOLD


def test_walk_constant_check_holds_for_slopes_scaling_like_one_over_n(walks):
    _, _, _, s30 = walks[30]
    small = dataclasses.replace(s30, walk_slope=s30.walk_slope * 22 / 12)   # c^2 ~ 1/N
    assert R.walk_constant_claim(s30, 22, small, 12).verdict == HOLDS
    larger = dataclasses.replace(s30, walk_slope=s30.walk_slope * 12 / 22)  # c^2 ~ N, as measured
    assert R.walk_constant_claim(s30, 22, larger, 12).verdict == DOES_NOT_HOLD


def test_degeneracy_check_does_not_hold_for_the_wrong_case():
    assert R.degeneracy_claim(R.regression_problem(4), True, "x").verdict == DOES_NOT_HOLD
    assert R.degeneracy_claim(R.regression_problem(30), False, "x").verdict == DOES_NOT_HOLD
    assert R.degeneracy_claim(R.regression_problem(30), True, "x").verdict == HOLDS


def test_overfitting_is_absent_when_the_test_set_is_the_training_set():
    # GD on a quadratic with lr < 1/lambda_max decreases the training loss monotonically: no finite optimum.
    data = gf.data.sine()
    same = gf.Dataset(data.X, data.y, data.X, data.y)
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(30)), same)
    W0 = 0.1 * np.random.default_rng(0).standard_normal((3, obj.size))
    early = gf.gd(obj, W0, lr=R.LR, steps=R.EARLY_STEPS, record_every=R.EARLY_RECORD_EVERY)
    long = gf.gd(obj, W0, lr=R.LR, steps=20_000, record_every=1000)
    o = R.overfitting(long, early)
    assert not o.overfits and o.test_final < 1e-20    # at most rounding error above the minimum
    assert R.overfit_claim(o).verdict == DOES_NOT_HOLD
    assert R.no_overfit_claim(o).verdict == HOLDS


def test_limit_check_does_not_hold_when_gd_starts_outside_the_data_span():
    problem = R.regression_problem(30)
    W0 = 0.1 * np.random.default_rng(1).standard_normal((2, problem.size))
    traj = gf.gd(problem.objective, W0, lr=R.LR, steps=20_000, record_every=20_000)
    final = np.asarray(traj.w)[-1]
    assert R.limit_claim(problem, W0, final, final[0]).verdict == DOES_NOT_HOLD   # final[0] is not pinv(Phi) y
    zero = gf.gd(problem.objective, np.zeros(problem.size), lr=R.LR, steps=20_000, record_every=20_000)
    assert R.limit_claim(problem, W0, final, np.asarray(zero.w)[-1]).verdict == HOLDS


def test_min_norm_curve_matches_the_pseudoinverse_and_overfit_check_fails_before_interpolation():
    degrees = (5, 40, 120)
    train, test, norm = R.min_norm_curve(degrees)
    data = gf.data.sine(n_train=76, n_test=600)
    for k, p in enumerate(degrees):
        w = np.linalg.pinv(gf.features.Legendre(p)(data.X)) @ data.y
        assert norm[k] == pytest.approx(np.linalg.norm(w), rel=1e-8)
        assert test[k] == pytest.approx(0.5 * np.mean((gf.features.Legendre(p)(data.X_test) @ w - data.y_test) ** 2),
                                        rel=1e-6, abs=1e-28)
    low = tuple(range(1, 51))                                     # test loss still falling up to degree 50
    _, test_low, _ = R.min_norm_curve(low)
    zero_loss = 0.5 * np.mean(data.y_test ** 2)
    assert R.eventual_overfit_claim(low, test_low, zero_loss).verdict == DOES_NOT_HOLD
    # a hundredfold rise between rounding-level losses is not overfitting
    assert R.eventual_overfit_claim((60, 80), np.array([1e-31, 1e-29]), zero_loss).verdict == DOES_NOT_HOLD
    assert R.eventual_overfit_claim((60, 80), np.array([1e-31, 1e-2]), zero_loss).verdict == HOLDS


def test_min_norm_claim_does_not_hold_for_a_start_outside_the_data_span():
    obj = R.regression_problem(100, n_train=76, n_test=600).objective
    good = gf.checks.min_norm(obj, steps=R.MIN_NORM_GD_STEPS)
    off = gf.checks.min_norm(obj, w0=0.1 * np.random.default_rng(0).standard_normal(obj.size), steps=R.MIN_NORM_GD_STEPS)
    assert R.min_norm_gd_claim({100: good}).verdict == HOLDS
    claim = R.min_norm_gd_claim({100: good, 101: off})
    assert claim.verdict == DOES_NOT_HOLD and "degree 101" in claim.evidence


def test_valley_checks_do_not_hold_for_the_other_valley():
    flat, decayed = R.valley_run(0.0, "quick"), R.valley_run(0.1, "quick")
    assert R.valley_degenerate_claim(decayed).verdict == DOES_NOT_HOLD
    assert R.valley_descent_claim(decayed).verdict == DOES_NOT_HOLD
    assert R.hyperbolic_claim([flat]).verdict == DOES_NOT_HOLD
    assert R.hyperbolic_claim([decayed]).verdict == HOLDS


def test_summary_refuses_a_run_not_recorded_at_the_perturbation_steps():
    problem = R.regression_problem(30)
    W0 = np.zeros((2, problem.size))
    traj = gf.gd(problem.objective, W0, lr=R.LR, steps=3 * R.EVERY, record_every=3000,
                 perturbation=gf.Perturbation(R.EVERY, R.SIGMA))
    with pytest.raises(ValueError, match="`traj` must be recorded at every perturbation step"):
        R.summarize_perturbation(problem, traj)
    plain = gf.gd(problem.objective, W0, lr=R.LR, steps=R.EVERY, record_every=R.EVERY)
    with pytest.raises(ValueError, match="`traj` must be a batched GD run with a perturbation"):
        R.summarize_perturbation(problem, plain)
