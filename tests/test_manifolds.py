"""Hartman-Grobman, center manifolds and center attraction (issue 6): checks against closed forms, both verdicts."""

import numpy as np
import pytest
import sympy as sp

import gradflow as gf
from gradflow import manifolds
from gradflow._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from gradflow.manifolds import (CenterAttractionReport, CenterManifold, HartmanGrobmanReport, center_attraction,
                                center_manifold, hartman_grobman)

W1, W2, W = sp.symbols("w1 w2 w")
GAMMA = 0.3                                   # weight decay of the hyperbola's sink: eigenvalues 2 gamma, 2 - 2 gamma


# ----------------------------------------------------------------------------- reference problems
def _hyperbola_objective(weight_decay=0.0):
    """L = 1/2 (w1 w2 - 1)^2 (+ gamma/2 |w|^2), as a DeepLinear([1, 1, 1]) net on x = 1, y = 1."""
    return gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)),
                        weight_decay=weight_decay)


class _Quadratic:
    """L = 1/2 w^T A w: a linear flow, whose conjugacy to its linearization is the identity."""

    def __init__(self, eigenvalues, seed=0):
        rng = np.random.default_rng(seed)
        Q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
        self.A = (Q * np.asarray(eigenvalues)) @ Q.T
        self.A = 0.5 * (self.A + self.A.T)
        self.size = len(eigenvalues)

    def value(self, w):
        w = np.asarray(w, dtype=float)
        return 0.5 * np.sum((w @ self.A) * w, axis=-1)

    def grad(self, w):
        return np.asarray(w, dtype=float) @ self.A

    def hvp(self, w, v):
        return np.asarray(v, dtype=float) @ self.A

    def hessian(self, w):
        return self.A.copy()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Compiled symbolic objectives of the toy losses, with their kernels cached in a temporary folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADFLOW_CACHE_DIR", str(tmp_path_factory.mktemp("kernels")))
    losses = {
        "quartic": gf.symbolic.from_expr(W**4 / 4, [W]),
        "quadratic_quartic": gf.symbolic.from_expr(W1**2 / 2 + W2**4 / 4, [W1, W2]),
        # a source at 0: -H = diag(1, 3), with a cubic term so that h is not the identity
        "source": gf.symbolic.from_expr(-(W1**2 + 3 * W2**2) / 2 - W1**2 * W2 / 3, [W1, W2]),
    }
    yield {name: (sym, sym.compile()) for name, sym in losses.items()}
    mp.undo()


@pytest.fixture(scope="module")
def fig8_data():
    return gf.data.linear_teacher()


def _fig8_equilibrium(model, data, weight_decay):
    """A minimum of the Figure 8 set-up (n = 30, d = 31) with weight decay: flow, then Newton."""
    obj = gf.Objective(model, data, weight_decay=weight_decay)
    flow = gf.GradientFlow(obj)
    end = flow.solve(obj.init(seed=0, scale=0.5), (0.0, 3000.0), t_eval=[3000.0])
    eq = gf.find_equilibrium(obj, end.w[-1])
    assert eq.converged
    return flow, eq.w


# ============================================================================= Hartman-Grobman
def test_hartman_grobman_holds_at_the_weight_decay_sink_of_the_hyperbola():
    flow = gf.GradientFlow(_hyperbola_objective(GAMMA))
    a = np.sqrt(1 - GAMMA)
    report = hartman_grobman(flow, [a, a], radius=1e-2, samples=16)
    assert isinstance(report, HartmanGrobmanReport)
    assert report.verdict == HOLDS and report.applies and report.kind == "sink"
    assert report.dims == {"stable": 2, "center": 0, "unstable": 0}
    np.testing.assert_allclose(report.eigenvalues, [-(2 - 2 * GAMMA), -2 * GAMMA], rtol=1e-10)
    assert report.conjugacy_error < 1e-6                      # h(phi_s x) = e^{-Hs} h(x) to the integration accuracy
    assert report.injective and report.injectivity_ratio > 0.9
    # the nonlinear terms are O(r^2): |h - id| / r falls like r, halving with each halving of the radius
    assert report.curve_slope == pytest.approx(1.0, abs=0.15)
    np.testing.assert_allclose(report.h_minus_id_curve[:-1] / report.h_minus_id_curve[1:], 2.0, rtol=0.15)
    assert 1e-4 < report.h_minus_id < 1e-1
    assert "holds" in str(report) and report.message
    # the summary leads with what can fail; the conjugacy equation holds by construction of h, so its residual is
    # labelled as what it is, the accuracy of the integrations
    lines = str(report).splitlines()
    assert lines[1].startswith("  h injective on the samples: True")
    assert lines[2].startswith("  |h - id| / r at radii") and "log-log slope" in lines[2]
    assert lines[3].startswith("  integration consistency") and "zero by construction" in lines[3]
    assert "conjugacy error" not in str(report) and "integration consistency" in report.message


def test_hartman_grobman_is_inconclusive_when_the_integrations_are_too_inaccurate(monkeypatch):
    """Loose tolerances spoil h itself (|h - id| no longer shrinks): the integration consistency catches it."""
    monkeypatch.setattr(manifolds, "CHECK_RTOL", 1e-3)
    monkeypatch.setattr(manifolds, "CHECK_ATOL_PER_RADIUS", 1e-3)
    a = np.sqrt(1 - GAMMA)
    report = hartman_grobman(gf.GradientFlow(_hyperbola_objective(GAMMA)), [a, a], radius=1e-2, samples=8)
    assert report.conjugacy_error > manifolds.CONJUGACY_TOL and report.curve_slope < manifolds.MIN_AGREEMENT_SLOPE
    assert report.verdict == INCONCLUSIVE and "too inaccurate to decide" in report.message


def test_hartman_grobman_is_inconclusive_when_the_ball_reaches_beyond_the_basin_of_the_sink():
    """Radius 2 around (a, a) takes in points of the other sink's basin (-a, -a): they never reach the small ball."""
    a = np.sqrt(1 - GAMMA)
    report = hartman_grobman(gf.GradientFlow(_hyperbola_objective(GAMMA)), [a, a], radius=2.0, samples=16)
    assert report.verdict == INCONCLUSIVE and report.uncrossed > 0
    assert "Make `radius` smaller" in report.message


def test_for_a_linear_flow_the_conjugacy_is_the_identity():
    obj = _Quadratic([0.5, 1.0, 3.0])
    report = hartman_grobman(gf.GradientFlow(obj), np.zeros(3), radius=1e-2, samples=8, n_radii=2)
    assert report.verdict == HOLDS and report.kind == "sink"
    assert np.all(report.h_minus_id_curve < 1e-7)             # h = id exactly, up to the integration error
    assert report.conjugacy_error < 1e-7


def test_hartman_grobman_holds_at_the_saddle_of_the_hyperbola_through_its_fibres():
    report = hartman_grobman(gf.GradientFlow(_hyperbola_objective()), [0.0, 0.0], radius=1e-2, samples=12)
    assert report.verdict == HOLDS and report.kind == "saddle"
    assert report.dims == {"stable": 1, "center": 0, "unstable": 1}
    np.testing.assert_allclose(report.eigenvalues, [-1.0, 1.0], atol=1e-14)
    assert report.conjugacy_error < 1e-6 and report.injective
    assert report.curve_slope > 0.8 and report.h_minus_id_curve[-1] < report.h_minus_id_curve[0]
    # the unstable part is found forward (positive times), the stable part backward (negative times)
    assert np.all(report.crossing_times[:, 0] > 0) and np.all(report.crossing_times[:, 1] < 0)


@pytest.mark.parametrize("method", ["bdf", "dopri5", "exprb32"])
def test_hartman_grobman_at_a_source_with_a_compiled_method_runs_the_backward_flow_with_scipy(compiled, method):
    """A source is conjugated through the backward flow (of -L, no compiled kernels): it must not get `method`."""
    _, source = compiled["source"]
    flow = gf.GradientFlow(source)
    report = hartman_grobman(flow, np.zeros(2), radius=1e-2, samples=6, n_radii=2, method=method)
    assert report.kind == "source" and report.verdict == HOLDS
    np.testing.assert_allclose(report.eigenvalues, [1.0, 3.0], atol=1e-14)
    reference = hartman_grobman(flow, np.zeros(2), radius=1e-2, samples=6, n_radii=2)
    np.testing.assert_allclose(report.h_minus_id_curve, reference.h_minus_id_curve, rtol=1e-9)
    assert report.curve_slope == pytest.approx(1.0, abs=0.05)


def test_hartman_grobman_does_not_apply_at_the_degenerate_minimum_of_w4_and_shows_the_center_drift(compiled):
    _, quartic = compiled["quartic"]
    radius = 1e-2
    report = hartman_grobman(gf.GradientFlow(quartic), [0.0], radius=radius, samples=4)
    assert report.verdict == DOES_NOT_HOLD and not report.applies and report.kind == "non-hyperbolic"
    assert report.conjugacy_error is None and report.h_minus_id_curve is None
    # w' = -w^3 from w = r: w(T) = r / sqrt(1 + 2 r^2 T), here T = 1/r^2, so the drift is 1 - 1/sqrt(3) radii
    assert report.drift_horizon == pytest.approx(1 / radius**2)
    assert report.center_drift == pytest.approx(1 - 1 / np.sqrt(3), rel=1e-5)
    assert report.center_moves and "does not apply" in report.message and "frozen" in report.message
    assert "not conjugate" in report.message


def test_hartman_grobman_does_not_hold_at_a_quartic_valley_whose_center_direction_drifts(compiled):
    """L = 1/2 w1^2 + w2^4/4: the linearized flow freezes the w2 axis, the nonlinear one moves along it."""
    _, obj = compiled["quadratic_quartic"]
    radius = 1e-2
    report = hartman_grobman(gf.GradientFlow(obj), [0.0, 0.0], radius=radius, samples=4, method="bdf")
    assert report.verdict == DOES_NOT_HOLD and not report.applies and report.center_moves
    assert report.dims == {"stable": 1, "center": 1, "unstable": 0}
    # w2' = -w2^3 over T = max(10 / 1, 1 / r^2) = 1e4: the same closed form as for w^4/4
    assert report.drift_horizon == pytest.approx(1 / radius**2)
    assert report.center_drift == pytest.approx(1 - 1 / np.sqrt(3), rel=1e-5)


def test_on_the_hyperbola_of_minima_the_theorem_does_not_apply_and_both_flows_are_frozen_so_inconclusive():
    report = hartman_grobman(gf.GradientFlow(_hyperbola_objective()), [1.0, 1.0], radius=1e-2, samples=8)
    assert report.verdict == INCONCLUSIVE and not report.applies
    assert report.dims == {"stable": 1, "center": 1, "unstable": 0}
    assert not report.center_moves and report.center_drift < 1e-3     # O(r): the points only settle onto w1 w2 = 1
    assert "does not apply" in report.message and "manifold of equilibria" in report.message
    assert f"{report.center_drift:.2e} x r" in report.message and f"{report.center_drift:.3e}" in str(report)


def test_hartman_grobman_holds_on_a_figure8_size_tanh_network_with_weight_decay(fig8_data):
    """P = 64: the Figure 8 widths [31, 2, 1] with tanh units and weight decay 0.1 have hyperbolic sinks."""
    flow, w_star = _fig8_equilibrium(gf.models.MLP([31, 2, 1], activation="tanh"), fig8_data, 0.1)
    report = hartman_grobman(flow, w_star, radius=1e-3, samples=4, n_radii=3)
    assert report.verdict == HOLDS and report.kind == "sink" and report.dims["stable"] == 64
    assert report.conjugacy_error < 1e-6 and report.injective
    assert report.curve_slope == pytest.approx(1.0, abs=0.2)


def test_the_figure8_deep_linear_net_with_weight_decay_is_not_hyperbolic_its_center_is_the_hidden_rotation(fig8_data):
    """Weight decay keeps the O(2) symmetry of the two hidden units: a circle of minima, one zero eigenvalue."""
    model = gf.models.DeepLinear([31, 2, 1])
    flow, w_star = _fig8_equilibrium(model, fig8_data, 0.1)
    report = hartman_grobman(flow, w_star, radius=1e-3, samples=2)
    assert report.verdict == INCONCLUSIVE and report.dims == {"stable": 63, "center": 1, "unstable": 0}
    assert not report.center_moves
    W1_, W2_ = model.unflatten(w_star)
    J = np.array([[0.0, -1.0], [1.0, 0.0]])                   # W1 -> exp(eJ) W1, W2 -> W2 exp(-eJ)
    rotation = np.asarray(model.flatten([J @ W1_, -W2_ @ J]))
    center = gf.linearize(flow, w_star).center[:, 0]
    assert abs(center @ rotation) / np.linalg.norm(rotation) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("radius", [0.0, -1e-3])
def test_hartman_grobman_refuses_a_non_positive_radius(radius):
    with pytest.raises(ValueError, match="`radius` must be > 0"):
        hartman_grobman(gf.GradientFlow(_hyperbola_objective()), [0.0, 0.0], radius=radius)


@pytest.mark.parametrize("samples", [0, 1])
def test_hartman_grobman_refuses_fewer_than_two_samples(samples):
    with pytest.raises(ValueError, match="`samples` must be an integer >= 2"):
        hartman_grobman(gf.GradientFlow(_hyperbola_objective()), [0.0, 0.0], samples=samples)


def test_every_check_refuses_a_point_that_is_not_an_equilibrium_and_says_by_how_much():
    flow = gf.GradientFlow(_hyperbola_objective())
    # the threshold is linearize's own (Linearization.grad_tol), not a copy of its formula
    with pytest.warns(gf.NotAnEquilibriumWarning):
        lin = gf.linearize(flow, [1.0, 2.0])
    assert lin.grad_norm == pytest.approx(np.sqrt(5), rel=1e-12)
    expected = (f"|grad L(w_star)| = 2.24, {lin.grad_norm / lin.grad_tol:.3g} times the threshold "
                f"{lin.grad_tol:.3g}. Refine it with gf.find_equilibrium(flow.obj, w_star)")
    for check in (hartman_grobman, center_attraction):
        with pytest.raises(ValueError, match=r"`w_star` must be an equilibrium") as error:
            check(flow, [1.0, 2.0])
        assert expected in str(error.value)
    symbolic_hint = r"`w_star` must be an equilibrium.*= 2\.24.*find_equilibrium\(sym\.compile\(\)"
    with pytest.raises(ValueError, match=symbolic_hint):
        center_manifold(gf.symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2]), [1.0, 2.0])


def test_the_flow_checks_ask_for_a_compiled_objective_when_given_a_symbolic_one():
    sym = gf.symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2])
    for check in (hartman_grobman, center_attraction):
        with pytest.raises(ValueError, match=r"`flow` must be a numeric gradient flow.*sym\.compile\(\)"):
            check(sym, [1.0, 1.0])
    with pytest.raises(TypeError, match="`flow` must be a gradflow.GradientFlow"):
        hartman_grobman("flow", [1.0, 1.0])


# ============================================================================= center manifold
@pytest.mark.parametrize("order", [4, 6])
def test_center_manifold_of_the_hyperbola_matches_the_expansion_of_w1_w2_equal_1(order):
    sym = gf.symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2])
    cm = center_manifold(sym, [1, 1], order=order)
    assert isinstance(cm, CenterManifold) and cm.verdict == HOLDS
    c, s = cm.center[:, 0], cm.stable[:, 0]
    np.testing.assert_allclose(np.abs(c), [2**-0.5] * 2, atol=1e-14)
    np.testing.assert_allclose(np.abs(s), [2**-0.5] * 2, atol=1e-14)
    assert cm.unstable.shape == (2, 0) and cm.dim == 1
    # the true manifold in the same coordinates: (1 + c1 u + s1 v)(1 + c2 u + s2 v) = 1, solved for v(u), v(0) = 0
    u, v = sp.symbols("u v")
    roots = sp.solve((1 + c[0] * u + s[0] * v) * (1 + c[1] * u + s[1] * v) - 1, v)
    root = [r for r in roots if abs(float(r.subs(u, 0))) < 1e-12][0]
    expected = sp.Poly(sp.series(root, u, 0, order + 1).removeO(), u)
    got = sp.Poly(cm.graph_series[0].subs(cm.symbols[0], u), u)
    for k in range(order + 1):
        assert float(got.coeff_monomial(u**k)) == pytest.approx(float(expected.coeff_monomial(u**k)), abs=1e-12)
    # a manifold of equilibria: the reduced field is identically zero, not just small
    assert cm.flat and cm.stability == "flat" and cm.reduced_series == sp.zeros(1, 1)
    assert np.all(cm.reduced(np.array([[0.1], [-0.3]])) == 0.0)
    # the lifted points lie on the hyperbola to O(u^(order+1)), and the invariance residual falls as fast
    for x in (0.1, 0.05):
        w = cm.lift([x])
        assert abs(w[0] * w[1] - 1) < 10 * x ** (order + 1)
    assert cm.residual_order >= order + 1 - 0.1


def test_center_manifold_of_a_quartic_valley_has_the_reduced_field_minus_u_cubed():
    sym = gf.symbolic.from_expr(W1**2 / 2 + W2**4 / 4, [W1, W2])
    cm = center_manifold(sym, [0, 0], order=4)
    np.testing.assert_allclose(np.abs(cm.center[:, 0]), [0, 1], atol=1e-15)
    assert cm.graph_series == sp.zeros(1, 1)                   # w1 = 0 is invariant
    u = cm.symbols[0]
    assert sp.expand(cm.reduced_series[0] + u**3).equals(0)   # w2' = -w2^3 (odd, so the orientation of u is moot)
    assert not cm.flat and cm.stability == "attracting" and cm.leading_degree == 3 and cm.verdict == HOLDS
    np.testing.assert_allclose(cm.reduced([0.2]), [-0.008], rtol=1e-12)


def test_center_manifold_of_a_curved_valley_solves_the_invariance_equation_to_every_order():
    """L = 1/2 (w1 - w2^2)^2 + w2^4/4: by hand, h(u) = u^2 + 2 u^4 + 0 u^6 and du/dt = -u^3 + 4 u^5 + 0 u^7."""
    sym = gf.symbolic.from_expr((W1 - W2**2) ** 2 / 2 + W2**4 / 4, [W1, W2])
    cm = center_manifold(sym, [0, 0], order=6)
    u = cm.symbols[0]
    h = sp.Poly(cm.graph_series[0], u)
    f = sp.Poly(cm.reduced_series[0], u)
    np.testing.assert_allclose([float(h.coeff_monomial(u**k)) for k in range(7)], [0, 0, 1, 0, 2, 0, 0], atol=1e-12)
    np.testing.assert_allclose([float(f.coeff_monomial(u**k)) for k in range(8)], [0, 0, 0, -1, 0, 4, 0, 0],
                               atol=1e-12)
    assert cm.verdict == HOLDS and cm.stability == "attracting"
    # residual(u) of the true flow: about |u|^7 or faster, and its value agrees with a direct evaluation
    assert cm.residual_order >= 6.9
    x = 0.1
    hx = x**2 + 2 * x**4
    w1dot, w2dot = -(hx - x**2), 2 * x * (hx - x**2) - x**3
    np.testing.assert_allclose(cm.residual([x]), [(2 * x + 8 * x**3) * w2dot - w1dot], rtol=1e-9)
    np.testing.assert_allclose(cm.lift([x]), [hx, x], rtol=1e-12)


def test_center_manifold_of_a_deep_linear_network_is_flat_and_lies_in_the_zero_loss_set():
    X, y = np.eye(2), np.array([1.0, 2.0])
    sym = gf.symbolic.network_loss([2, 2, 1], data=(X, y))
    w_star = np.array([1.0, 0.0, 0.0, 2.0, 1.0, 1.0])       # W1 = [[1, 0], [0, 2]], W2 = [1, 1]: outputs (1, 2)
    cm = center_manifold(sym, w_star, order=4)
    assert cm.dim == 4 and cm.stable.shape == (6, 2)          # zero-loss manifold of dimension P - rank J = 6 - 2
    assert cm.flat and cm.reduced_series == sp.zeros(4, 1) and cm.verdict == HOLDS
    model = gf.models.DeepLinear([2, 2, 1])
    rng = np.random.default_rng(1)
    direction = rng.standard_normal(4)
    direction /= np.linalg.norm(direction)
    misfit = [float(np.max(np.abs(np.asarray(model.forward(cm.lift(s * direction), X))[:, 0] - y)))
              for s in (0.1, 0.05, 0.025)]
    slopes = np.diff(np.log(misfit)) / np.diff(np.log([0.1, 0.05, 0.025]))
    assert np.all(slopes > 4.5)                                # on the zero-loss set to O(|u|^5)
    assert cm.residual_order >= 4.9


def test_center_manifold_of_a_non_polynomial_loss_matches_w1_equal_exp_minus_w2():
    sym = gf.symbolic.from_expr((W1 * sp.exp(W2) - 1) ** 2 / 2, [W1, W2])
    cm = center_manifold(sym, [1, 0], order=4)
    assert cm.flat and cm.verdict == HOLDS
    for x in (0.1, -0.1, 0.05):
        w = cm.lift([x])
        assert abs(w[0] * np.exp(w[1]) - 1) < 10 * abs(x) ** 5


def test_center_manifold_at_a_saddle_is_a_graph_over_the_stable_and_unstable_directions():
    """L = a^2/2 - c^2/2 + b^4/4 + a b^2 + c b^2: by hand, a = -u^2 - 2u^4, c = u^2 - 2u^4, du/dt = -u^3 + 8u^5."""
    a, b, c = sp.symbols("a b c")
    cm = center_manifold(gf.symbolic.from_expr(a**2 / 2 - c**2 / 2 + b**4 / 4 + a * b**2 + c * b**2, [a, b, c]),
                         [0, 0, 0])
    np.testing.assert_allclose(cm.stable[:, 0], [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(cm.unstable[:, 0], [0, 0, 1], atol=1e-15)
    u = cm.symbols[0]
    coefficients = [[float(sp.Poly(e, u).coeff_monomial(u**k)) for k in range(6)]
                    for e in list(cm.graph_series) + list(cm.reduced_series)]
    np.testing.assert_allclose(coefficients, [[0, 0, -1, 0, -2, 0], [0, 0, 1, 0, -2, 0], [0, 0, 0, -1, 0, 8]],
                               atol=1e-12)
    assert cm.verdict == HOLDS and cm.residual_order >= 4.9


def test_center_manifold_verdict_does_not_hold_when_the_reduced_flow_repels():
    """L = 1/2 w1^2 + w2^3/3 at 0: du/dt = -u^2 pushes u < 0 away, an unstable center manifold."""
    cm = center_manifold(gf.symbolic.from_expr(W1**2 / 2 + W2**3 / 3, [W1, W2]), [0, 0])
    u = cm.symbols[0]
    assert sp.expand(cm.reduced_series[0] + u**2).equals(0)
    assert cm.stability == "repelling" and cm.leading_degree == 2
    assert cm.verdict == DOES_NOT_HOLD and "unstable" in cm.message


@pytest.mark.parametrize("order", [0, 1])
def test_center_manifold_refuses_an_order_below_2(order):
    with pytest.raises(ValueError, match="`order` must be an integer >= 2"):
        center_manifold(gf.symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2]), [1, 1], order=order)


def test_center_manifold_asks_for_a_symbolic_objective_and_says_which_to_use():
    with pytest.raises(ValueError, match=r"`sym` must be a symbolic objective.*network_loss"):
        center_manifold(_hyperbola_objective(), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"`sym` must be a symbolic objective.*not its \.compile\(\)"):
        center_manifold(gf.symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2]).compile(), [1.0, 1.0])
    with pytest.raises(ValueError, match="`sym` must have numeric data"):
        center_manifold(gf.symbolic.network_loss([1, 1, 1]), [1.0, 1.0])


# ============================================================================= center attraction
def test_solutions_near_the_hyperbola_approach_it_at_rate_2():
    report = center_attraction(gf.GradientFlow(_hyperbola_objective()), [1.0, 1.0], radius=1e-2, samples=8)
    assert isinstance(report, CenterAttractionReport)
    assert report.verdict == HOLDS and report.target == "equilibria"
    assert report.predicted_rate == pytest.approx(2.0, abs=1e-12)
    assert report.rate == pytest.approx(2.0, rel=1e-3)        # stated tolerance: the limit points are O(r) away
    assert report.r_squared > 0.99999
    # each solution decays at the nonzero eigenvalue w1^2 + w2^2 of its own limit point on the hyperbola
    np.testing.assert_allclose(report.rates, report.limit_rates, rtol=2e-4)


def test_attraction_is_inconclusive_without_a_stable_eigenvalue_and_reports_the_algebraic_decay_of_w4(compiled):
    """L = w^4/4: no rate to predict, so the theorem says nothing; the measured decay is still reported."""
    _, quartic = compiled["quartic"]
    report = center_attraction(gf.GradientFlow(quartic), [0.0], radius=1e-2, samples=4)
    assert report.verdict == INCONCLUSIVE and report.predicted_rate is None
    # w(t) = r / sqrt(1 + 2 r^2 t): log-log slope -1/2 on the window, far from exponential
    assert report.power == pytest.approx(-0.5, abs=0.02)
    assert report.r_squared < 0.999 and "no stable eigenvalue" in report.message
    assert f"{report.rate:.6g}" in report.message and "not exponential" in report.message


def test_attraction_is_inconclusive_at_a_saddle_whose_solutions_leave_the_neighbourhood():
    """The saddle of 1/2 (w1 w2 - 1)^2 at 0 (eigenvalues of -H: -1, 1): the theorem is stated without E_u."""
    report = center_attraction(gf.GradientFlow(_hyperbola_objective()), [0.0, 0.0], radius=1e-2, samples=4)
    assert report.verdict == INCONCLUSIVE and report.rate is None and report.predicted_rate == pytest.approx(1.0)
    assert "1 unstable direction" in report.message and "manifold=center_manifold" not in report.message


def test_attraction_is_inconclusive_when_a_limit_point_is_not_found(compiled, monkeypatch):
    """L = 1/2 w1^2 + w2^4/4: Newton converges only linearly (factor 2/3) onto w2 = 0; 5 iterations are too few."""
    _, obj = compiled["quadratic_quartic"]
    monkeypatch.setattr(manifolds, "LIMIT_MAX_ITER", 5)
    report = center_attraction(gf.GradientFlow(obj), [0.0, 0.0], radius=1e-2, samples=2)
    assert report.verdict == INCONCLUSIVE and report.rate is None
    assert "limit point of 2 of 2 solutions was not found" in report.message


def test_attraction_to_a_center_manifold_that_is_not_made_of_equilibria(compiled):
    """L = 1/2 w1^2 + w2^4/4: w1 falls like e^-t onto the center manifold w1 = 0, but w2 -> 0 only algebraically."""
    sym, flow_obj = compiled["quadratic_quartic"]
    flow = gf.GradientFlow(flow_obj)
    to_equilibria = center_attraction(flow, [0.0, 0.0], radius=1e-2, samples=4)
    assert to_equilibria.verdict == DOES_NOT_HOLD and to_equilibria.predicted_rate == pytest.approx(1.0)
    assert to_equilibria.rate < 0.01 and "manifold=center_manifold" in to_equilibria.message
    # d ~ |w2|, w2' = -w2^3: the rate -d log|w2|/dt = w2^2 <= r^2 = 1e-4, against the predicted 1
    assert 0 < to_equilibria.rate < 1e-2**2 and to_equilibria.r_squared < manifolds.MIN_R_SQUARED
    cm = center_manifold(sym, [0, 0])
    to_manifold = center_attraction(flow, [0.0, 0.0], radius=1e-2, samples=4, manifold=cm)
    assert to_manifold.verdict == HOLDS and to_manifold.target == "manifold"
    assert to_manifold.rate == pytest.approx(1.0, rel=1e-4)


def test_attraction_rate_on_a_figure8_size_network_matches_its_smallest_eigenvalue(fig8_data):
    flow, w_star = _fig8_equilibrium(gf.models.MLP([31, 2, 1], activation="tanh"), fig8_data, 0.1)
    report = center_attraction(flow, w_star, radius=1e-3, samples=2)
    assert report.verdict == HOLDS
    assert report.rate == pytest.approx(report.predicted_rate, rel=0.02)


def test_center_attraction_validates_its_inputs():
    flow = gf.GradientFlow(_hyperbola_objective())
    with pytest.raises(ValueError, match="`radius` must be > 0"):
        center_attraction(flow, [1.0, 1.0], radius=0.0)
    with pytest.raises(ValueError, match="`samples` must be an integer >= 1"):
        center_attraction(flow, [1.0, 1.0], samples=0)
    cm = center_manifold(gf.symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2]), [1, 1])
    with pytest.raises(ValueError, match="`manifold` must be the center manifold of the same point"):
        center_attraction(flow, [2.0, 0.5], manifold=cm)
    with pytest.raises(TypeError, match="`manifold` must be a CenterManifold"):
        center_attraction(flow, [1.0, 1.0], manifold="cm")
