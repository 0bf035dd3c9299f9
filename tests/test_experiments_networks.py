"""Tests of the network experiments (gradflow/experiments/networks.py): Figures 1, 3, 8-11 and Theorem 3.

Every experiment's quick size runs once (module-scoped fixtures); the verdicts
that are robust are asserted (the perturbation protocol's training loss
returning and norm growing, the Theorem 3 counts, degenerate against
nondegenerate nullities, Figure 8's limits).  Each verdict function is also
fed numbers for which its claim must not hold.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.optimize

import gradflow as gf
from gradflow._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, VERDICTS
from gradflow.experiments import _core
from gradflow.experiments import networks as nw

EXPERIMENTS = ("fig1", "fig3", "fig8", "fig9", "fig10", "fig11", "theorem3")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Each experiment's quick run, computed once: name -> (ExperimentResult, out_dir)."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = (_core.REGISTRY[name].run("quick", 0, out), out)
        return cache[name]

    return get


# ----------------------------------------------------------------------------- every quick run: the contract
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_run_returns_a_complete_result(results, name):
    result, out = results(name)
    assert isinstance(result, _core.ExperimentResult)
    assert result.name == name and result.size == "quick" and result.seed == 0
    assert result.claims and all(isinstance(c, _core.Claim) and c.verdict in VERDICTS for c in result.claims)
    assert all(c.evidence and c.source for c in result.claims)
    json.dumps(result.setup)
    json.dumps(result.measurements)
    assert result.figures and all((out / f).stat().st_size > 1000 for f in result.figures)
    assert all(isinstance(v, np.ndarray) for v in result.arrays.values())
    assert result.verdict in VERDICTS


def test_registry_holds_the_network_experiments():
    for name in EXPERIMENTS:
        assert _core.REGISTRY[name].run is getattr(nw, name)
    assert "Theorem 3" in _core.REGISTRY["theorem3"].source
    assert "Figure 3" in _core.REGISTRY["fig3"].source


# ----------------------------------------------------------------------------- fig3: perturbations
def test_fig3_training_loss_returns_and_norm_grows(results):
    result, _ = results("fig3")
    returns, test_growth, norm = result.claims
    assert returns.verdict == HOLDS, returns.evidence
    assert norm.verdict == HOLDS, norm.evidence
    m = result.measurements
    assert m["phase1_train_error"] == 0.0
    assert all(e == 0.0 for e in m["end_train_error"])
    assert min(m["kicked_train_loss"]) > 2 * m["baseline_train_loss"]   # the kicks did raise the loss
    assert m["end_norm"][-1] > m["control_norm"] > 0


def test_perturbation_rounds_rebuilds_the_kicked_weights_exactly():
    # With a vanishing step size GD does not move, so the weights recorded one step after a kick are the kicked ones.
    data = nw.digits_subset(nw._digits_base(40, 20, 0), 40, False, 0)
    obj = nw._mlp_objective(data, (4,), "relu")
    W0 = nw.fan_in_init(obj, [[0], [1]])
    pert = gf.Perturbation(every=2, sigma=0.25, relative=True, seed=3)
    traj = gf.gd(obj, W0, lr=1e-300, steps=6, record_every=1, perturbation=pert)
    s = nw.perturbation_rounds(obj, traj, traj, pert)
    after = np.asarray(traj.metrics["train_loss"]).mean(axis=1)[[3, 5]]
    np.testing.assert_allclose(s.kicked_train_loss, after, rtol=1e-12)
    assert s.baseline_train_loss == pytest.approx(float(np.mean(traj.metrics["train_loss"][2])))


def test_perturbation_rounds_needs_every_kick_recorded():
    data = nw.digits_subset(nw._digits_base(40, 20, 0), 40, False, 0)
    obj = nw._mlp_objective(data, (4,), "relu")
    pert = gf.Perturbation(every=3, sigma=0.25, relative=True)
    traj = gf.gd(obj, nw.fan_in_init(obj, [[0]]), lr=0.1, steps=9, record_every=2, perturbation=pert)
    with pytest.raises(ValueError, match="record every perturbation step"):
        nw.perturbation_rounds(obj, traj, traj, pert)


def _rounds(**overrides):
    base = dict(baseline_train_loss=0.01, baseline_test_loss=0.5, baseline_norm=10.0,
                kicked_train_loss=np.array([0.2, 0.3]), end_train_loss=np.array([0.008, 0.006]),
                end_train_error=np.array([0.0, 0.0]), end_test_loss=np.array([0.6, 0.7]),
                end_norm=np.array([10.5, 11.0]), control_test_loss=0.52, control_norm=10.2)
    base.update(overrides)
    return nw.PerturbationRounds(**base)


def test_perturbation_verdicts_hold_on_a_textbook_run():
    s = _rounds()
    assert nw.returns_claim(s).verdict == HOLDS
    assert nw.growth_of_test_loss_claim(s).verdict == HOLDS
    assert nw.norm_growth_claim(s).verdict == HOLDS


def test_returns_claim_fails_when_the_loss_stays_up_or_errors_remain():
    assert nw.returns_claim(_rounds(end_train_loss=np.array([0.05, 0.06]))).verdict == DOES_NOT_HOLD
    assert nw.returns_claim(_rounds(end_train_error=np.array([0.0, 0.01]))).verdict == DOES_NOT_HOLD


def test_returns_claim_is_inconclusive_when_the_kicks_are_too_small():
    assert nw.returns_claim(_rounds(kicked_train_loss=np.array([0.011, 0.3]))).verdict == INCONCLUSIVE


def test_growth_claims_fail_without_growth_beyond_the_control():
    assert nw.growth_of_test_loss_claim(_rounds(end_test_loss=np.array([0.5, 0.51]))).verdict == DOES_NOT_HOLD
    assert nw.growth_of_test_loss_claim(_rounds(control_test_loss=0.8)).verdict == DOES_NOT_HOLD
    assert nw.norm_growth_claim(_rounds(end_norm=np.array([9.9, 9.8]))).verdict == DOES_NOT_HOLD
    assert nw.norm_growth_claim(_rounds(control_norm=12.0)).verdict == DOES_NOT_HOLD
    assert nw.norm_growth_claim(_rounds(end_norm=np.array([11.0, 10.9]))).verdict == DOES_NOT_HOLD  # fell in a round


# ----------------------------------------------------------------------------- theorem3
def _row(result, label):
    return next(r for r in result.measurements["table"] if r["label"] == label)


def test_theorem3_counts_match_the_rank_count(results):
    result, _ = results("theorem3")
    assert [c.verdict for c in result.claims] == [HOLDS, HOLDS, HOLDS], [c.evidence for c in result.claims]
    for r in result.measurements["table"]:
        assert r["zero_loss"] and r["loss"] < 1e-20
        assert r["nullity"] == r["manifold_dim"]
        if r["condition"]:
            assert r["nullity"] >= max(1, r["layer_bound"])
    # generic data, one output, n < P: J has full row rank n, so the nullity is exactly P - n
    for label in ("deep linear", "ReLU", "polynomial"):
        r = _row(result, label)
        assert r["nullity"] == r["count"] == r["size"] - r["n"]
        assert r["kind"] == "non-hyperbolic" and r["gap"] > 1e6


def test_theorem3_degenerate_against_nondegenerate_nullities(results):
    result, _ = results("theorem3")
    poly = _row(result, "polynomial, underparametrized")
    assert not poly["condition"] and poly["nullity"] == 0 and poly["kind"] == "sink"
    # the condition fails, but rescaling symmetries still give zero eigenvalues, all of them trivial:
    # w1 -> c w1, w2 -> w2 / c for the one hidden linear unit; one per hidden ReLU unit
    linear = _row(result, "deep linear, one hidden unit")
    assert not linear["condition"] and linear["nullity"] == linear["n_trivial"] == 1
    relu = _row(result, "ReLU, underparametrized")
    assert not relu["condition"] and relu["nullity"] == relu["n_trivial"] == 2
    # sigma(z) = z + z^2/2 + z^3/6: the network [3, 6, 1] computes a cubic polynomial without constant term, a space of
    # dimension 3 + 6 + 10 = 19, so P - 19 = 5 null directions leave the function unchanged and the other
    # 19 - n = 14 move it off the training points
    poly = _row(result, "polynomial")
    assert poly["n_trivial"] == poly["size"] - 19 == 5 and poly["nullity"] - poly["n_trivial"] == 19 - poly["n"]


def _t3(**overrides):
    base = dict(label="x", widths=(3, 4, 1), activation="linear", n=2, outputs=1, size=16, seed=0, attempts=1, loss=0.0,
                grad_norm=0.0, zero_loss=True, condition=True, layer_bound=4, count=14, nullity=14, manifold_dim=14,
                n_trivial=0, kind="non-hyperbolic", tol=1e-14, gap=1e12, nondegenerate=False, eigenvalues=())
    base.update(overrides)
    return nw.Theorem3Row(**base)


def test_theorem3_claims_fail_on_a_counterexample():
    c1, c2, c3 = nw.theorem3_claims([_t3(), _t3(nullity=0, manifold_dim=0)])
    assert c1.verdict == DOES_NOT_HOLD and c2.verdict == DOES_NOT_HOLD and c3.verdict == INCONCLUSIVE
    c1, c2, _ = nw.theorem3_claims([_t3(nullity=13, manifold_dim=14)])
    assert c1.verdict == HOLDS and c2.verdict == DOES_NOT_HOLD
    *_, c3 = nw.theorem3_claims([_t3(condition=False, nondegenerate=True, nullity=1, manifold_dim=1, count=-3)])
    assert c3.verdict == DOES_NOT_HOLD
    *_, c3 = nw.theorem3_claims([_t3(condition=False, nondegenerate=True, nullity=0, manifold_dim=0, kind="sink")])
    assert c3.verdict == HOLDS


def test_theorem3_claims_ignore_rows_not_at_zero_loss():
    claims = nw.theorem3_claims([_t3(zero_loss=False, loss=1e-3, nullity=0)])
    assert [c.verdict for c in claims] == [INCONCLUSIVE] * 3
    assert "not at zero loss" in claims[0].evidence


def test_zero_tolerance_measures_the_residual_part_of_the_hessian():
    # f = W2 W1 x: the residual part (1/n) sum r_i d2 f_i couples W1[a, b] and W2[0, a] with g_b = (X^T r / n)_b,
    # a block I_N (x) g whose spectral norm is ||g||.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
    obj = gf.Objective(gf.models.DeepLinear([3, 2, 1]), gf.Dataset(X, y), loss="square")
    w = rng.standard_normal(obj.size)
    W1, W2 = obj.unflatten(w)
    r = (X @ W1.T @ W2.T)[:, 0] - y
    tol, e_norm = nw.zero_tolerance(obj, w)
    assert e_norm == pytest.approx(np.linalg.norm(X.T @ r) / 5, rel=1e-10)
    assert tol == pytest.approx(nw.WEYL_SAFETY * e_norm)
    # at an exact interpolant the residual part vanishes and the default threshold remains
    W1 = rng.standard_normal((2, 3))
    W2 = rng.standard_normal((1, 2))
    exact = gf.Objective(obj.model, gf.Dataset(X, (X @ W1.T @ W2.T)[:, 0]), loss="square")
    tol, e_norm = nw.zero_tolerance(exact, np.concatenate([W1.ravel(), W2.ravel()]))
    assert e_norm < 1e-14 and tol < 1e-12


def test_theorem3_row_rejects_a_non_architecture():
    with pytest.raises(TypeError, match="`arch`"):
        nw.theorem3_row((3, 4, 1), 0)


# ----------------------------------------------------------------------------- fig8
def test_fig8_both_protocols_reach_the_minimum_norm_limit(results):
    result, _ = results("fig8")
    assert [c.verdict for c in result.claims] == [HOLDS] * 4, [c.evidence for c in result.claims]
    m = result.measurements
    assert m["max_relative_distance_to_closed_form"] < 1e-6
    np.testing.assert_allclose(m["regularized_test_error"], m["closed_form_test_error"], rtol=1e-6)
    assert abs(m["gd_test_error_final"] - m["min_norm_test_error"]) < 1e-2 * m["gd_test_error_initial"]
    matched = [t for t in m["matching_iterations"] if t >= 0]
    assert matched == sorted(matched) and len(matched) >= 3


def test_norm_penalized_solution_solves_the_convex_problem():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((8, 5)), rng.standard_normal(8)
    n = 8
    for fraction in (1e-3, 0.1, 0.5, 0.9):
        lam = fraction * np.linalg.norm(X.T @ y / n)   # below ||X^T y / n||, so that the minimizer is not 0
        beta = nw.norm_penalized_solution(X, y, lam)
        # stationarity of (1/2n)||X b - y||^2 + lam ||b||
        grad = X.T @ (X @ beta - y) / n + lam * beta / np.linalg.norm(beta)
        assert np.linalg.norm(grad) < 1e-10
        objective = lambda b: 0.5 * np.sum((X @ b - y) ** 2) / n + lam * np.linalg.norm(b)  # noqa: E731
        other = scipy.optimize.minimize(objective, np.zeros(5) + 0.1, method="Nelder-Mead",
                                        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 40_000}).x
        assert objective(beta) <= objective(other) + 1e-10


def test_norm_penalized_solution_limits():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((4, 6)), rng.standard_normal(4)
    b = X.T @ y / 4
    np.testing.assert_array_equal(nw.norm_penalized_solution(X, y, 1.01 * np.linalg.norm(b)), np.zeros(6))
    np.testing.assert_allclose(nw.norm_penalized_solution(X, y, 1e-9), np.linalg.pinv(X) @ y, atol=1e-6)


def test_norm_penalized_solution_validates():
    with pytest.raises(ValueError, match="`lam`"):
        nw.norm_penalized_solution(np.ones((3, 2)), np.ones(3), 0.0)
    with pytest.raises(ValueError, match="`X`"):
        nw.norm_penalized_solution(np.ones((3, 2)), np.ones(4), 0.1)


def test_weight_decay_minimum_of_the_deep_linear_net_is_the_norm_penalized_solution():
    data = gf.data.linear_teacher(n=10, n_test=0, d=6, seed=3)
    model = gf.models.DeepLinear([6, 2, 1])
    lam = 0.05
    obj = gf.Objective(model, data, loss="square", weight_decay=lam)
    start = gf.gd(obj, obj.init(seed=0, scale=0.3), lr=0.05, steps=4000, record_every=4000).w[-1]
    eq = gf.find_equilibrium(obj, start)
    W1, W2 = (np.asarray(a) for a in model.unflatten(eq.w))
    np.testing.assert_allclose((W2 @ W1)[0], nw.norm_penalized_solution(data.X, data.y, lam), rtol=1e-7, atol=1e-10)


def _fig8_summary(gd_test, reg_test):
    t = np.arange(len(gd_test)) * 100
    return nw.Fig8Summary(t=t, gd_test=np.asarray(gd_test, float), lambdas=np.array([1.0, 0.1, 0.01, 0.001]),
                          reg_test=np.asarray(reg_test, float), min_norm_test=0.001, zero_test=1.0)


def test_fig8_claims_hold_when_both_curves_reach_the_same_limit():
    s = _fig8_summary([1.0, 0.5, 0.2, 0.05, 0.01, 0.001], [0.6, 0.3, 0.04, 0.002])
    assert [c.verdict for c in nw.implicit_regularization_claims(s)] == [HOLDS] * 3


def test_fig8_claims_fail_when_gd_plateaus_or_regularization_does_not_help():
    plateau = _fig8_summary([1.0, 0.6, 0.5, 0.5, 0.5, 0.5], [0.6, 0.3, 0.04, 0.002])
    c1, c2, c3 = nw.implicit_regularization_claims(plateau)
    assert c1.verdict == DOES_NOT_HOLD and c2.verdict == HOLDS and c3.verdict == DOES_NOT_HOLD
    flat = _fig8_summary([1.0, 0.5, 0.2, 0.05, 0.01, 0.001], [0.6, 0.7, 0.8, 0.9])
    c1, c2, c3 = nw.implicit_regularization_claims(flat)
    assert c1.verdict == HOLDS and c2.verdict == DOES_NOT_HOLD and c3.verdict == DOES_NOT_HOLD


# ----------------------------------------------------------------------------- fig1, fig10: size sweeps
def test_fig1_test_error_falls_with_n_and_scrambled_labels_are_fitted(results):
    result, _ = results("fig1")
    left, right = result.claims
    assert left.verdict == HOLDS, left.evidence
    assert right.verdict == HOLDS, right.evidence
    m = result.measurements
    assert all(e == 0.0 for e in m["true_train"])
    assert all(e >= 0.75 for e in m["scrambled_test"]) and all(e < 0.3 for e in m["true_test"])


def test_fig10_polynomial_network_generalizes_like_figure_1(results):
    result, _ = results("fig10")
    left, right = result.claims
    assert left.verdict == HOLDS, left.evidence
    assert right.verdict != DOES_NOT_HOLD, right.evidence
    assert "polynomial" in result.notes and "[-2, 2]" in result.notes


def test_size_sweep_claims_decide_from_the_numbers():
    sizes = (50, 100, 200)
    ok = nw.size_sweep_claims(sizes, [0, 0, 0], [0.3, 0.2, 0.1], [0, 0, 0], [0.9, 0.88, 0.91], "Figure 1", "ReLU")
    assert [c.verdict for c in ok] == [HOLDS, HOLDS]
    rising = nw.size_sweep_claims(sizes, [0, 0, 0], [0.1, 0.2, 0.3], [0, 0, 0], [0.9] * 3, "Figure 1", "ReLU")
    assert rising[0].verdict == DOES_NOT_HOLD
    unfit = nw.size_sweep_claims(sizes, [0, 0.1, 0], [0.3, 0.2, 0.1], [0, 0.6, 0], [0.9] * 3, "Figure 1", "ReLU")
    assert unfit[0].verdict == INCONCLUSIVE and unfit[1].verdict == DOES_NOT_HOLD
    partly = nw.size_sweep_claims(sizes, [0, 0, 0], [0.3, 0.2, 0.1], [0, 0.2, 0], [0.9] * 3, "Figure 1", "ReLU")
    assert partly[1].verdict == INCONCLUSIVE
    leak = nw.size_sweep_claims(sizes, [0, 0, 0], [0.3, 0.2, 0.1], [0, 0, 0], [0.9, 0.3, 0.9], "Figure 1", "ReLU")
    assert leak[1].verdict == DOES_NOT_HOLD


def test_digits_subset_scrambles_a_permutation_and_shares_the_test_set():
    base = nw._digits_base(100, 50, 0)
    true = nw.digits_subset(base, 60, False, 0)
    scrambled = nw.digits_subset(base, 60, True, 0)
    np.testing.assert_array_equal(true.X, base.X[:60])
    np.testing.assert_array_equal(scrambled.X, true.X)
    np.testing.assert_array_equal(np.sort(scrambled.y), np.sort(true.y))
    assert np.mean(scrambled.y != true.y) > 0.5
    np.testing.assert_array_equal(scrambled.X_test, base.X_test)
    np.testing.assert_array_equal(scrambled.y_test, base.y_test)
    with pytest.raises(ValueError, match="`n`"):
        nw.digits_subset(base, 101, False, 0)


def test_fan_in_init_scales_each_layer_by_its_fan_in():
    data = nw._digits_base(30, 10, 0)
    obj = nw._mlp_objective(data, (200,), "relu")
    W = nw.fan_in_init(obj, [[0], [1]])
    assert W.shape == (2, obj.size)
    W1, b1, W2, b2 = obj.unflatten(W[0])
    assert np.std(W1) == pytest.approx(1 / 8, rel=0.05) and np.std(W2) == pytest.approx(1 / math.sqrt(200), rel=0.1)
    assert not np.any(b1) and not np.any(b2)
    np.testing.assert_array_equal(nw.fan_in_init(obj, [[0]])[0], W[0])
    assert not np.array_equal(W[0], W[1])
    with pytest.raises(TypeError, match="`obj`"):
        nw.fan_in_init("net", [0])
    with pytest.raises(ValueError, match="`seeds`"):
        nw.fan_in_init(obj, [])


def test_max_preactivation_matches_a_hand_forward_pass():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((7, 3)), rng.integers(0, 2, 7)
    Xt = rng.standard_normal((4, 3))
    act = nw.polynomial_activation()
    obj = gf.Objective(gf.models.MLP([3, 5, 4, 2], activation=act, bias=True),
                       gf.Dataset(X, y, Xt, rng.integers(0, 2, 4)), loss="cross_entropy")
    W = rng.standard_normal((2, obj.size))
    Z = np.concatenate([X, Xt])
    W1, b1, W2, b2, _, _ = obj.unflatten(W[1])
    A1 = Z @ W1.T + b1
    A2 = np.polynomial.polynomial.polyval(A1, act.coeffs) @ W2.T + b2
    np.testing.assert_allclose(nw.max_preactivation(obj, W)[1], [np.abs(A1).max(), np.abs(A2).max()], rtol=1e-12)
    np.testing.assert_allclose(nw.max_preactivation(obj, W[1]), nw.max_preactivation(obj, W)[1])


def test_polynomial_activation_is_a_degree_10_fit_of_relu():
    act = nw.polynomial_activation()
    assert act.degree == 10 and act.interval == nw.POLY_INTERVAL
    z = np.linspace(*nw.POLY_INTERVAL, 1001)
    assert np.max(np.abs(act(z) - np.maximum(z, 0))) == pytest.approx(act.max_error, rel=0.05)


# ----------------------------------------------------------------------------- fig9
def test_fig9_relu_and_polynomial_networks_are_close(results):
    result, _ = results("fig9")
    (claim,) = result.claims
    assert claim.verdict == HOLDS, claim.evidence
    m = result.measurements
    assert m["relu_train_error"] == 0.0 and m["polynomial_train_error"] == 0.0


def test_relu_vs_polynomial_claim_fails_when_errors_differ():
    assert nw.relu_vs_polynomial_claim(0.0, 0.07, 0.0, 0.08).verdict == HOLDS
    assert nw.relu_vs_polynomial_claim(0.0, 0.07, 0.0, 0.2).verdict == DOES_NOT_HOLD
    assert nw.relu_vs_polynomial_claim(0.0, 0.07, 0.1, 0.07).verdict == DOES_NOT_HOLD


# ----------------------------------------------------------------------------- fig11
def test_fig11_classification_error_does_not_overfit(results):
    result, _ = results("fig11")
    by_source = {c.source: c for c in result.claims}
    assert by_source["Figure 6; Section 4.2"].verdict == HOLDS
    assert len(result.claims) == 5
    m = result.measurements
    assert m["relu_params"] == sorted(m["relu_params"]) and m["relu_params"][0] < 200 < m["relu_params"][-1]
    assert all(p == h * h + 76 * h + 10 for p, h in zip(m["relu_params"], nw.WIDTH_SWEEP["quick"].widths))


def test_width_sweep_claims_decide_from_the_numbers():
    params = [100, 500, 2000, 8000]
    overfit = nw.width_sweep_claims(params, 300, [0.5, 0, 0, 0], [0.6, 0.2, 0.1, 0.1], [1.5, 0.5, 0.4, 0.6], "ReLU")
    assert [c.verdict for c in overfit] == [HOLDS, HOLDS]
    falling = nw.width_sweep_claims(params, 300, [0.5, 0, 0, 0], [0.6, 0.2, 0.1, 0.2], [1.5, 0.5, 0.4, 0.3], "ReLU")
    assert [c.verdict for c in falling] == [DOES_NOT_HOLD, DOES_NOT_HOLD]
    poly = nw.width_sweep_claims(params, 300, [0.5, 0.01, 0, 0], [0.6, 0.2, 0.1, 0.1], [1.5, 0.5, 0.4, 0.6],
                                 "polynomial")
    assert [c.verdict for c in poly] == [HOLDS, HOLDS, DOES_NOT_HOLD]
    below = nw.width_sweep_claims([10, 20], 300, [0.5, 0.4], [0.6, 0.5], [1.5, 1.4], "polynomial")
    assert below[1].verdict == INCONCLUSIVE and below[2].verdict == INCONCLUSIVE


# ----------------------------------------------------------------------------- validation at the entry points
@pytest.mark.parametrize("name", sorted(_core.REGISTRY))
def test_experiments_validate_their_inputs(name, tmp_path):
    run = _core.REGISTRY[name].run
    with pytest.raises(ValueError, match="`size`"):
        run("medium", 0, tmp_path)
    with pytest.raises(TypeError, match="`size`"):
        run(1, 0, tmp_path)
    with pytest.raises(ValueError, match="`seed`"):
        run("quick", -1, tmp_path)
    with pytest.raises(TypeError, match="`seed`"):
        run("quick", 0.5, tmp_path)
    with pytest.raises(TypeError, match="`out_dir`"):
        run("quick", 0, 3)


def test_global_minimum_claim_fails_at_a_saddle_or_above_the_minimum():
    ok = nw.global_minimum_claim([[1e-15, -1e-16]], [[0, 0]], [[1e-9, 1e-6]], [[True, True]])
    assert ok.verdict == HOLDS
    assert nw.global_minimum_claim([[1e-15, 1e-3]], [[0, 0]], [[1e-9, 1e-2]], [[True, True]]).verdict == DOES_NOT_HOLD
    assert nw.global_minimum_claim([[1e-15, 1e-16]], [[0, 1]], [[1e-9, 1e-6]], [[True, True]]).verdict == DOES_NOT_HOLD
