"""Equilibria, linearization, degeneracy, Hessian spectra and invariants (issue 5), against exact answers."""

import warnings

import numpy as np
import scipy.sparse.linalg
import pytest
import sympy as sp

import gradflow as gf
from gradflow import symbolic
from gradflow.linearize import (
    DENSE_LIMIT, KINDS, METHODS, WHICH, Equilibrium, Linearization, NotAnEquilibriumWarning, degeneracy,
    find_equilibrium, hessian_trace, invariants, linearize, spectral_density, spectrum,
)

EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------- reference problems
class Quadratic:
    r"""L(w) = 1/2 wᵀ A w - bᵀ w with a chosen spectrum: the objective protocol, nothing else."""

    def __init__(self, eigenvalues, seed=0, b=None):
        eigenvalues = np.asarray(eigenvalues, dtype=float)
        self.size = eigenvalues.shape[0]
        rng = np.random.default_rng(seed)
        self.Q, _ = np.linalg.qr(rng.standard_normal((self.size, self.size)))
        self.eigenvalues = eigenvalues
        self.A = (self.Q * eigenvalues) @ self.Q.T
        self.A = 0.5 * (self.A + self.A.T)
        self.b = np.zeros(self.size) if b is None else np.asarray(b, dtype=float)

    def value(self, w):
        w = np.asarray(w, dtype=float)
        return 0.5 * np.sum((w @ self.A) * w, axis=-1) - w @ self.b

    def grad(self, w):
        return np.asarray(w, dtype=float) @ self.A - self.b

    def hvp(self, w, v):
        return np.asarray(v, dtype=float) @ self.A

    def hessian(self, w):
        return self.A.copy()


def _span_projector(B):
    return B @ B.T


@pytest.fixture(scope="module")
def hyperbola():
    """L = 1/2 (w1 w2 - 1)^2, as a DeepLinear([1, 1, 1]) net on x = 1, y = 1."""
    return gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)))


@pytest.fixture(scope="module")
def net300():
    """A tanh MLP with biases, P = 298, square loss on 20 random points, at a random point."""
    rng = np.random.default_rng(3)
    data = gf.Dataset(rng.uniform(-1, 1, (20, 8)), rng.standard_normal((20, 2)))
    obj = gf.Objective(gf.models.MLP([8, 16, 8, 2], activation="tanh", bias=True), data)
    w = obj.init(seed=1, scale=0.5)
    H = obj.hessian(w)
    return obj, w, 0.5 * (H + H.T)


def _zero_loss_deep_linear(widths, n, seed):
    """A DeepLinear net with integer weights and data whose targets it fits exactly (exact zero loss)."""
    rng = np.random.default_rng(seed)
    model = gf.models.DeepLinear(widths)
    X = rng.integers(-2, 3, size=(n, widths[0])).astype(float)
    w = rng.integers(-2, 3, size=model.size).astype(float)
    Y = np.asarray(model.forward(w, X))
    return model, gf.Dataset(X, Y if widths[-1] > 1 else Y[:, 0]), w


# ============================================================================= linearize
def test_linearize_recovers_a_known_degenerate_spectrum_and_its_subspaces():
    hess = np.array([3.0, 2.0, 0.0, 0.0, -1.0, 0.5])
    obj = Quadratic(hess, seed=1)
    lin = linearize(obj, np.zeros(obj.size))
    np.testing.assert_allclose(lin.eigenvalues, np.sort(-hess), atol=1e-14)
    assert lin.dims == {"stable": 3, "center": 2, "unstable": 1}
    assert lin.kind == "non-hyperbolic" and not lin.is_hyperbolic
    assert lin.morse_index == 1 and lin.nullity == 2
    V = lin.eigenvectors
    np.testing.assert_allclose(V.T @ V, np.eye(obj.size), atol=1e-13)
    np.testing.assert_allclose(-obj.A @ V, V * lin.eigenvalues, atol=1e-13)
    for basis, mask in ((lin.stable, hess > 0), (lin.center, hess == 0), (lin.unstable, hess < 0)):
        np.testing.assert_allclose(_span_projector(basis), _span_projector(obj.Q[:, mask]), atol=1e-12)
    np.testing.assert_allclose(lin.hessian_eigenvalues, np.sort(hess), atol=1e-14)


@pytest.mark.parametrize("hess, kind", [
    ([1.0, 2.0, 5.0], "sink"), ([-1.0, -3.0], "source"), ([4.0, -2.0, 1.0], "saddle"), ([1.0, 0.0], "non-hyperbolic"),
])
def test_kind_of_a_quadratic_follows_the_signs_of_its_eigenvalues(hess, kind):
    obj = Quadratic(hess)
    lin = linearize(obj, np.zeros(obj.size))
    assert lin.kind == kind and kind in KINDS
    assert lin.morse_index == sum(h < 0 for h in hess)


def test_default_tol_is_rank_revealing_lambda_max_times_p_times_eps():
    obj = Quadratic([2.0, 1e-5, 0.0], seed=2)
    lin = linearize(obj, np.zeros(3))
    assert lin.tol == pytest.approx(2.0 * 3 * EPS)
    assert lin.nullity == 1
    assert lin.nonzero_min == pytest.approx(1e-5) and lin.zero_max < lin.tol
    assert lin.gap > 1e9                                    # exact zero: a clean split



@pytest.mark.parametrize("expr, stable, center", [
    ("(w1*w2)**2/2", 0, 2),        # the crossing of two lines of minima: H = 0 there
    ("w1**4 + w2**4", 0, 2),       # an isolated minimum with H = 0
    ("w1**2 + w2**4", 1, 1),       # stable along w1, degenerate along w2
    ("w1**3 + w2**2", 1, 1),       # a degenerate (cubic) critical point
])
def test_a_degenerate_equilibrium_found_by_newton_is_non_hyperbolic(expr, stable, center):
    """Newton converges only linearly to these: at its iterate (|w| ~ 1e-4) the Hessian's eigenvalues are ~1e-7,
    far above 10 |grad L|, and the default threshold must still call them zero (they are 0 at the equilibrium)."""
    w1, w2 = sp.symbols("w1 w2")
    obj = gf.symbolic.from_expr(sp.sympify(expr, locals={"w1": w1, "w2": w2}), [w1, w2]).compile()
    eq = gf.find_equilibrium(obj, [0.3, 0.2])
    assert eq.converged and 1e-6 < np.linalg.norm(eq.w) < 1e-2       # linear convergence stopped short of 0
    lin = linearize(obj, eq.w)
    assert np.max(np.abs(lin.eigenvalues[lin.eigenvalues > -1.0])) > 100 * lin.grad_norm
    assert lin.kind == "non-hyperbolic" and lin.dims == {"stable": stable, "center": center, "unstable": 0}
    assert linearize(obj, eq.w, tol=10 * lin.grad_norm).kind != "non-hyperbolic"     # the residual alone misses it

def test_default_tol_allows_for_the_residual_gradient_of_an_approximate_equilibrium(hyperbola):
    """A point 1e-9 off the hyperbola: its center eigenvalue is ~1e-9, far above P*eps*lambda_max, and still zero."""
    e = 1e-9
    w = np.array([1.0 + e, 1.0])                             # w1 w2 - 1 = e, |grad L| = e * sqrt(w1^2 + w2^2)
    lin = linearize(hyperbola, w)
    gn = e * np.hypot(*w)
    assert lin.is_equilibrium and lin.grad_norm == pytest.approx(gn, rel=1e-6)
    H = hyperbola.hessian(w)
    lam, V = np.linalg.eigh(H)
    newton_step = V @ np.where(np.abs(lam) > 2 * 2 * EPS, (V.T @ hyperbola.grad(w)) / lam, 0.0)
    drift = np.linalg.norm(hyperbola.hessian(w - newton_step) - H)     # the Hessian moves by ~e to the hyperbola
    assert drift < 10 * e
    assert lin.tol == pytest.approx(lin.nonzero_min * 2 * EPS + 10 * gn + 3 * drift, rel=1e-6)
    assert lin.kind == "non-hyperbolic" and lin.nullity == 1
    assert lin.zero_max == pytest.approx(e, rel=1e-3)        # det H / tr H = -2e / 2
    assert linearize(hyperbola, w, tol=2 * 2 * EPS).kind == "saddle"   # the rounding-only threshold splits it wrongly


def test_gap_shows_an_ambiguous_split_when_tol_is_set_by_hand():
    obj = Quadratic([2.0, 1e-5, 0.0], seed=2)
    lin = linearize(obj, np.zeros(3), tol=1e-4)
    assert lin.nullity == 2 and lin.tol == 1e-4
    assert lin.zero_max == pytest.approx(1e-5) and lin.nonzero_min == pytest.approx(2.0)
    assert lin.gap == pytest.approx(2e5)
    assert linearize(obj, np.zeros(3), tol=0.0).nullity <= 1


def test_origin_of_the_hyperbola_loss_is_a_saddle(hyperbola):
    lin = linearize(hyperbola, [0.0, 0.0])
    assert lin.kind == "saddle" and lin.morse_index == 1
    np.testing.assert_allclose(lin.eigenvalues, [-1.0, 1.0], atol=1e-15)


@pytest.mark.parametrize("w", [(1.0, 1.0), (2.0, 0.5), (-4.0, -0.25), (0.125, 8.0)])
def test_points_of_the_hyperbola_are_non_hyperbolic_with_nullity_one(hyperbola, w):
    lin = linearize(hyperbola, list(w))
    assert lin.kind == "non-hyperbolic" and lin.nullity == 1 and lin.is_equilibrium
    # the center direction is tangent to the curve w1 w2 = 1: along (w1, -w2)
    tangent = np.array([w[0], -w[1]]) / np.hypot(*w)
    assert abs(abs(lin.center[:, 0] @ tangent) - 1) < 1e-12
    assert lin.eigenvalues[0] == pytest.approx(-(w[0] ** 2 + w[1] ** 2))


@pytest.mark.parametrize("gamma", [0.05, 0.3])
def test_weight_decay_makes_the_minima_isolated_hyperbolic_sinks(gamma):
    obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)), weight_decay=gamma)
    eq = find_equilibrium(obj, [1.2, 0.9])
    a = np.sqrt(1 - gamma)
    assert eq.converged
    np.testing.assert_allclose(eq.w, [a, a], rtol=1e-9)            # |grad| <= 1e-10, smallest eigenvalue 2 gamma
    lin = linearize(obj, eq.w)
    assert lin.kind == "sink" and lin.is_hyperbolic and lin.nullity == 0
    np.testing.assert_allclose(lin.eigenvalues, [-(2 - 2 * gamma), -2 * gamma], rtol=1e-10)
    assert linearize(obj, [0.0, 0.0]).kind == "saddle"


def test_a_point_that_is_not_an_equilibrium_warns_with_its_gradient_norm(hyperbola):
    with pytest.warns(NotAnEquilibriumWarning, match=r"\|grad L\(w_star\)\| = 2\.24"):
        lin = linearize(hyperbola, [1.0, 2.0])
    assert not lin.is_equilibrium and lin.grad_norm == pytest.approx(np.sqrt(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert linearize(hyperbola, [1.0, 2.0], grad_tol=3.0).is_equilibrium


def test_a_gradient_flow_and_a_compiled_symbolic_objective_give_the_same_linearization(hyperbola, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(tmp_path))
    w1, w2 = sp.symbols("w1 w2")
    compiled = symbolic.from_expr((w1 * w2 - 1) ** 2 / 2, [w1, w2]).compile()
    reference = linearize(hyperbola, [2.0, 0.5])
    for source in (gf.GradientFlow(hyperbola), compiled):
        lin = linearize(source, [2.0, 0.5])
        assert isinstance(lin, Linearization) and lin.kind == "non-hyperbolic"
        np.testing.assert_allclose(lin.eigenvalues, reference.eigenvalues, atol=1e-14)


# ============================================================================= find_equilibrium
def test_newton_on_a_degenerate_quadratic_takes_the_minimum_norm_step_and_keeps_the_null_component():
    obj = Quadratic([3.0, 1.0, 0.0, 0.0], seed=4)
    obj.b = obj.A @ np.array([1.0, -2.0, 0.5, 3.0])          # b in the range of A: a flat valley of minima
    w0 = np.array([0.3, 0.1, -0.7, 0.2])
    eq = find_equilibrium(obj, w0)
    assert isinstance(eq, Equilibrium) and eq.converged and eq.iterations == 1
    null = obj.Q[:, 2:]
    expected = null @ (null.T @ w0) + np.linalg.pinv(obj.A) @ obj.b
    np.testing.assert_allclose(eq.w, expected, atol=1e-12)
    assert eq.grad_norm <= 1e-10 and eq.grad_norms[0] == pytest.approx(np.linalg.norm(obj.grad(w0)))


def test_newton_converges_onto_the_curve_of_degenerate_minima(hyperbola):
    eq = find_equilibrium(hyperbola, [1.2, 0.9])
    assert eq.converged and eq.loss < 1e-25
    assert eq.w[0] * eq.w[1] == pytest.approx(1.0, abs=1e-14)
    assert eq.iterations <= 8
    assert all(b < a for a, b in zip(eq.grad_norms, eq.grad_norms[1:]))


def test_newton_from_near_the_saddle_finds_the_saddle(hyperbola):
    eq = find_equilibrium(hyperbola, [0.05, -0.03])
    assert eq.converged
    np.testing.assert_allclose(eq.w, [0.0, 0.0], atol=1e-9)
    assert linearize(hyperbola, eq.w).kind == "saddle"


def test_find_equilibrium_starts_from_the_last_point_of_a_trajectory(hyperbola):
    traj = gf.gd(hyperbola, np.array([1.5, 0.2]), lr=0.1, steps=40, record_every=10)
    eq = find_equilibrium(hyperbola, traj)
    assert eq.grad_norms[0] == pytest.approx(np.linalg.norm(hyperbola.grad(traj.w[-1])))
    assert eq.converged and eq.w[0] * eq.w[1] == pytest.approx(1.0, abs=1e-10)
    flow = gf.GradientFlow(hyperbola)
    assert find_equilibrium(flow, flow.solve(np.array([1.5, 0.2]), (0.0, 3.0))).converged


def test_find_equilibrium_reports_when_it_runs_out_of_iterations(hyperbola):
    eq = find_equilibrium(hyperbola, [1.5, 0.2], max_iter=1)
    assert not eq.converged and eq.iterations == 1 and "max_iter" in eq.message


def test_find_equilibrium_does_not_claim_convergence_when_the_minimum_is_at_infinity():
    # logistic loss on separable data, a linear model: the gradient decays but never vanishes
    obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(degree=1)),
                       gf.Dataset(np.array([[-0.5], [0.5]]), np.array([-1.0, 1.0])), loss="logistic")
    eq = find_equilibrium(obj, [0.0, 1.0], gtol=1e-14, max_iter=20)
    assert not eq.converged and eq.grad_norm > 1e-14 and "max_iter" in eq.message
    assert abs(eq.w[1]) > 10 * abs(1.0)                       # the iterates run off along the valley


# ============================================================================= degeneracy
@pytest.mark.parametrize("widths, n, seed", [([3, 2, 1], 4, 0), ([2, 3, 2], 2, 1), ([2, 2, 2, 1], 3, 2)])
def test_deep_linear_nullity_at_zero_loss_is_p_minus_rank_of_jtj_and_matches_the_exact_symbolic_nullity(widths, n, seed):
    model, data, w = _zero_loss_deep_linear(widths, n, seed)
    obj = gf.Objective(model, data)
    assert obj.value(w) == 0.0
    deg = degeneracy(obj, w)
    J = obj.output_jacobian(w)
    assert deg.nullity == obj.size - np.linalg.matrix_rank(J.T @ J)
    assert deg.nullity == deg.manifold_dim == obj.size - deg.jacobian_rank
    exact = symbolic.network_loss(widths, data=(data.X, data.y)).hessian_at(w)
    assert exact.exact and deg.nullity == exact.nullity
    assert 0 < deg.nullity < obj.size
    assert deg.theorem3_applies and deg.nullity >= deg.nullity_bound


def test_figure_15_degree_30_features_have_22_nontrivial_zero_eigenvalues_and_figure_16_none():
    data = gf.data.sine()
    results = {}
    for degree in (30, 4):
        obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(degree, normalize=True)), data)
        eq = find_equilibrium(obj, obj.init(seed=0))
        results[degree] = degeneracy(obj, eq.w)
    deg30, deg4 = results[30], results[4]
    assert deg30.nullity == 22 and deg30.manifold_dim == 22
    assert deg30.n_nontrivial == 22 and deg30.n_trivial == 0     # every null direction changes the fit off the 9 points
    assert deg30.theorem3_holds and deg30.nullity_bound == 22 and deg30.layers[0].null_bound == 22
    assert deg4.nullity == 0 and deg4.manifold_dim == 0
    assert not deg4.theorem3_holds and deg4.nullity_bound == 0
    assert deg30.theorem3_applies


def test_overdetermined_deep_linear_degeneracy_is_all_trivial_and_underdetermined_has_d_minus_n_nontrivial():
    # n >= d: f is determined by the data, every null direction is trivial (SI 6.2.2)
    model, data, w = _zero_loss_deep_linear([3, 4, 1], 10, 5)
    deg = degeneracy(gf.Objective(model, data), w)
    assert deg.nullity == model.size - 3 and deg.n_trivial == deg.nullity and deg.n_nontrivial == 0
    # d > n: the d - n directions of W2 W1 in the null space of X are nontrivial
    model, data, w = _zero_loss_deep_linear([6, 4, 1], 3, 6)
    obj = gf.Objective(model, data)
    deg = degeneracy(obj, w)
    assert deg.nullity == model.size - 3
    assert deg.n_nontrivial == 3 and deg.n_trivial == model.size - 6
    # the split is clean, and the bases do what they claim
    change = deg.output_change
    assert change[deg.n_trivial - 1] < 1e-12 and change[deg.n_trivial] > 1e-4
    X_new = np.random.default_rng(9).standard_normal((50, 6))
    J_new = obj.output_jacobian(w, X_new)
    assert np.max(np.abs(J_new @ deg.trivial)) < 1e-10
    assert np.linalg.svd(J_new @ deg.nontrivial, compute_uv=False).min() > 1e-3
    np.testing.assert_allclose(deg.trivial.T @ deg.nontrivial, 0.0, atol=1e-12)
    np.testing.assert_allclose(obj.hessian(w) @ deg.nontrivial, 0.0, atol=1e-12)


def test_theorem_3_condition_is_checked_layer_by_layer_with_its_bound():
    model, data, w = _zero_loss_deep_linear([6, 4, 1], 3, 6)
    deg = degeneracy(gf.Objective(model, data), w)
    # layer 1: 4*6 = 24 > 3*min(4, 1) = 3;  layer 2: 1*4 = 4 > 3*1 = 3
    assert [(l.layer, l.n_params, l.rank_bound, l.holds, l.null_bound) for l in deg.layers] == [
        (1, 24, 3, True, 21), (2, 4, 3, True, 1)]
    assert deg.nullity_bound == max(21 + 1, model.size - 3 * 1) == 25
    assert deg.nullity >= deg.nullity_bound
    mlp = gf.models.MLP([2, 3, 1], activation="relu", bias=True)
    obj = gf.Objective(mlp, gf.Dataset(np.ones((5, 2)), np.ones(5)))
    assert [(l.n_params, l.rank_bound, l.holds) for l in degeneracy(obj, obj.init(seed=0)).layers] == [
        (9, 5, True), (4, 5, False)]


def test_theorem_3_does_not_apply_with_weight_decay_or_nonzero_loss():
    model, data, w = _zero_loss_deep_linear([3, 2, 1], 4, 0)
    assert not degeneracy(gf.Objective(model, data, weight_decay=0.1), w).theorem3_applies
    assert not degeneracy(gf.Objective(model, data), w + 0.1).theorem3_applies


# ============================================================================= spectra
def test_lanczos_top_k_equals_dense_eigh_on_a_300_parameter_network(net300):
    obj, w, H = net300
    assert 250 <= obj.size <= 350
    exact_values, exact_vectors = np.linalg.eigh(H)
    result = spectrum(obj, w, k=10, which="largest", method="lanczos")
    assert result.method == "lanczos" and result.converged and result.n_hvp > 0
    np.testing.assert_allclose(result.eigenvalues, exact_values[-10:], rtol=0, atol=1e-8 * abs(exact_values).max())
    overlaps = np.abs(np.sum(result.eigenvectors * exact_vectors[:, -10:], axis=0))
    np.testing.assert_allclose(overlaps, 1.0, atol=1e-6)
    dense = spectrum(obj, w, k=10)
    assert dense.method == "dense" and dense.n_hvp == obj.size and obj.size <= DENSE_LIMIT
    np.testing.assert_allclose(dense.eigenvalues, exact_values[-10:], atol=1e-12)


class _NoBothEnds:
    """scipy.sparse.linalg as cupyx offers it: eigsh without ARPACK's "BE" (both ends)."""

    LinearOperator = staticmethod(scipy.sparse.linalg.LinearOperator)

    @staticmethod
    def eigsh(*args, which="LM", **kwargs):
        assert which in ("LM", "LA", "SA"), which
        return scipy.sparse.linalg.eigsh(*args, which=which, **kwargs)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_both_ends_are_two_calls_where_eigsh_has_no_be_and_agree_with_arpack(monkeypatch, k):
    from gradflow import _backend

    hess = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0, 7.0, -6.0, 3.0])
    obj = Quadratic(hess, seed=5)
    arpack = spectrum(obj, np.zeros(obj.size), k=k, which="both", method="lanczos")
    monkeypatch.setattr(_backend, "sparse_linalg", lambda xp: (_NoBothEnds, False))
    split = spectrum(obj, np.zeros(obj.size), k=k, which="both", method="lanczos")
    s = np.sort(hess)
    expected = np.concatenate([s[: k // 2], s[len(s) - (k - k // 2):]])
    np.testing.assert_allclose(arpack.eigenvalues, expected, atol=1e-10)
    np.testing.assert_allclose(split.eigenvalues, expected, atol=1e-10)
    np.testing.assert_allclose(obj.A @ split.eigenvectors, split.eigenvectors * split.eigenvalues, atol=1e-8)


class _SilentLanczos:
    """An eigsh that, like cupyx's, never raises on non-convergence: it returns SciPy's pairs, spoilt on demand."""

    LinearOperator = staticmethod(scipy.sparse.linalg.LinearOperator)
    spoil = 0.0
    tols = []

    @classmethod
    def eigsh(cls, *args, tol=0, **kwargs):
        cls.tols.append(tol)
        values, vectors = scipy.sparse.linalg.eigsh(*args, tol=0, **kwargs)
        return values, vectors + cls.spoil * np.random.default_rng(0).standard_normal(vectors.shape)


@pytest.mark.parametrize("spoil, converged", [(0.0, True), (1e-3, False)])
def test_lanczos_that_reports_nothing_is_judged_by_its_residuals(monkeypatch, spoil, converged):
    from gradflow import _backend

    hess = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0, 7.0, -6.0, 3.0])
    obj = Quadratic(hess, seed=5)
    monkeypatch.setattr(_SilentLanczos, "spoil", spoil)
    monkeypatch.setattr(_SilentLanczos, "tols", [])
    monkeypatch.setattr(_backend, "sparse_linalg", lambda xp: (_SilentLanczos, False))
    result = spectrum(obj, np.zeros(obj.size), k=3, which="largest", method="lanczos", rtol=1e-9)
    assert result.converged is converged
    assert ("converged" in result.message) is converged and ("residual" in result.message)
    # the residual tolerance handed to eigsh is rtol times ||H v0|| / ||v0||, a lower bound of |lambda|_max
    assert 0 < _SilentLanczos.tols[0] <= 1e-9 * 7.0


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_which_selects_the_documented_ends_of_a_known_spectrum(method):
    hess = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0, 7.0, -6.0, 3.0])
    obj = Quadratic(hess, seed=5)
    s = np.sort(hess)
    expected = {
        "largest": s[-3:], "smallest": s[:3], "both": np.concatenate([s[:1], s[-2:]]),
        "magnitude": np.sort(hess[np.argsort(-np.abs(hess))[:3]]),
    }
    assert set(expected) == set(WHICH)
    for which, values in expected.items():
        result = spectrum(obj, np.zeros(obj.size), k=3, which=which, method=method)
        np.testing.assert_allclose(result.eigenvalues, values, atol=1e-10, err_msg=which)
        np.testing.assert_allclose(obj.A @ result.eigenvectors, result.eigenvectors * result.eigenvalues, atol=1e-8)



@pytest.mark.parametrize("which", ["largest", "smallest", "both", "magnitude"])
def test_lanczos_on_a_zero_hessian_returns_zero_eigenvalues(which):
    """At w = 0 a deep linear net with two hidden layers has H = 0 (every term of L is cubic or more in w): ARPACK
    cannot start there ("starting vector is zero")."""
    rng = np.random.default_rng(0)
    obj = gf.Objective(gf.models.DeepLinear([3, 4, 4, 2]), gf.Dataset(rng.standard_normal((4, 3)),
                                                                      rng.standard_normal((4, 2))))
    np.testing.assert_array_equal(obj.hessian(np.zeros(obj.size)), 0.0)
    result = spectrum(obj, np.zeros(obj.size), k=3, which=which, method="lanczos")
    assert result.converged and "zero" in result.message
    np.testing.assert_array_equal(result.eigenvalues, 0.0)
    np.testing.assert_allclose(result.eigenvectors.T @ result.eigenvectors, np.eye(3), atol=1e-12)

def test_slq_with_p_steps_on_a_diagonal_hessian_is_exact():
    hess = np.linspace(-1.0, 3.0, 12)
    obj = Quadratic(hess)
    obj.Q, obj.A = np.eye(12), np.diag(hess)
    dens = spectral_density(obj, np.zeros(12), n_probes=3, steps=12, grid=np.linspace(-2, 4, 61), bandwidth=0.2)
    for i in range(3):                                       # Rademacher probes see every eigenvalue with weight 1/P
        order = np.argsort(dens.nodes[i])
        np.testing.assert_allclose(dens.nodes[i][order], hess, atol=1e-12)
        np.testing.assert_allclose(dens.weights[i], 1 / 12, atol=1e-12)
    exact = np.mean(np.exp(-0.5 * ((dens.grid[:, None] - hess) / 0.2) ** 2), axis=1) / (0.2 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(dens.density, exact, atol=1e-12)
    np.testing.assert_allclose(dens.stderr, 0.0, atol=1e-12)


def test_slq_stops_early_on_an_invariant_subspace():
    obj = Quadratic([2.0] * 6)
    dens = spectral_density(obj, np.zeros(6), n_probes=2, steps=5)
    np.testing.assert_allclose(dens.weights.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose(dens.nodes[dens.weights > 0], 2.0, atol=1e-12)
    assert dens.n_hvp == 2                                    # one product per probe, then breakdown


def test_slq_density_and_moments_agree_with_the_exact_spectrum_within_their_error(net300):
    obj, w, H = net300
    lam = np.linalg.eigvalsh(H)
    dens = spectral_density(obj, w, n_probes=30, steps=60, seed=1)
    s = dens.bandwidth
    exact = np.mean(np.exp(-0.5 * ((dens.grid[:, None] - lam) / s) ** 2), axis=1) / (s * np.sqrt(2 * np.pi))
    assert np.trapezoid(dens.density, dens.grid) == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.abs(dens.density - exact) <= 5 * dens.stderr + 0.02 * exact.max())
    for power in (1, 2):
        estimate, stderr = dens.expectation(lambda x: x ** power)
        assert abs(estimate - np.mean(lam ** power)) <= 4 * stderr


def test_hutchinson_trace_agrees_with_the_exact_trace_within_its_standard_error(net300):
    obj, w, H = net300
    result = hessian_trace(obj, w, n_probes=200, seed=2)
    assert result.n_probes == 200 and result.samples.shape == (200,)
    assert abs(result.estimate - np.trace(H)) <= 4 * result.stderr
    off = H - np.diag(np.diag(H))                             # the variance of one Rademacher sample
    assert result.stderr * np.sqrt(200) == pytest.approx(np.sqrt(2 * np.sum(off ** 2)), rel=0.3)
    diagonal = Quadratic([1.0, 2.0, 5.0])
    diagonal.A = np.diag([1.0, 2.0, 5.0])
    exact = hessian_trace(diagonal, np.zeros(3), n_probes=5)
    assert exact.estimate == 8.0 and exact.stderr == 0.0 and float(exact) == 8.0


# ============================================================================= invariants
def _flow_invariant_drift(obj, w0, T):
    traj = gf.GradientFlow(obj).solve(w0, (0.0, T), t_eval=np.linspace(0, T, 11), method="DOP853",
                                      rtol=1e-11, atol=1e-13)
    assert traj.success, traj.message
    values = invariants(obj.model, traj.w).vector
    return np.max(np.abs(values - values[0])), np.max(np.abs(traj.w[-1] - traj.w[0]))


def test_balancedness_of_a_deep_linear_net_is_conserved_along_the_flow_but_not_with_weight_decay():
    rng = np.random.default_rng(0)
    data = gf.Dataset(rng.standard_normal((8, 3)), rng.standard_normal((8, 2)))
    obj = gf.Objective(gf.models.DeepLinear([3, 4, 3, 2]), data)
    w0 = obj.init(seed=1, scale=0.5)
    drift, moved = _flow_invariant_drift(obj, w0, 5.0)
    assert moved > 0.2 and drift < 1e-8
    inv = invariants(obj.model, w0)
    assert [m.shape for m in inv.matrices] == [(4, 4), (3, 3)]
    np.testing.assert_allclose(inv.units[0], np.diag(inv.matrices[0]), atol=1e-15)
    decayed = gf.Objective(obj.model, data, weight_decay=0.1)
    assert _flow_invariant_drift(decayed, w0, 5.0)[0] > 1e-3


def test_per_unit_balance_of_a_relu_net_with_biases_is_conserved_along_the_flow():
    # until t = 0.5 no pre-activation reaches a kink (later the ReLU flow slides along one, which
    # explicit integrators cannot follow); the activation pattern changes nothing in the identity
    rng = np.random.default_rng(1)
    data = gf.Dataset(rng.standard_normal((12, 3)), np.arange(12) % 3)
    obj = gf.Objective(gf.models.MLP([3, 5, 4, 3], activation="relu", bias=True), data, loss="cross_entropy")
    w0 = obj.init(seed=2, scale=0.7)
    drift, moved = _flow_invariant_drift(obj, w0, 0.5)
    assert moved > 0.05 and drift < 1e-9
    inv = invariants(obj, w0)
    assert inv.matrices is None and [u.shape for u in inv.units] == [(5,), (4,)]
    W1, b1, W2 = obj.unflatten(w0)[:3]
    np.testing.assert_allclose(inv.units[0], np.sum(W2 ** 2, axis=0) - np.sum(W1 ** 2, axis=1) - b1 ** 2, atol=1e-15)


def test_one_gd_step_changes_the_relu_unit_balance_by_exactly_lr_squared_times_the_gradient_norms():
    rng = np.random.default_rng(4)
    obj = gf.Objective(gf.models.MLP([3, 6, 2], activation="relu", bias=True),
                       gf.Dataset(rng.standard_normal((10, 3)), rng.standard_normal((10, 2))))
    w, lr = obj.init(seed=1, scale=0.8), 0.1
    G1, c1, G2, _ = obj.unflatten(obj.grad(w))
    change = invariants(obj, w - lr * obj.grad(w)).units[0] - invariants(obj, w).units[0]
    expected = lr ** 2 * (np.sum(G2 ** 2, axis=0) - np.sum(G1 ** 2, axis=1) - c1 ** 2)
    assert np.max(np.abs(expected)) > 1e-6
    np.testing.assert_allclose(change, expected, atol=1e-14)


def test_one_gd_step_changes_balancedness_by_exactly_lr_squared_times_the_gradient_products():
    rng = np.random.default_rng(2)
    obj = gf.Objective(gf.models.DeepLinear([3, 4, 2], bias=True), gf.Dataset(rng.standard_normal((6, 3)), rng.standard_normal((6, 2))))
    w, lr = obj.init(seed=0, scale=0.8), 0.05
    G1, c1, G2, _ = obj.unflatten(obj.grad(w))
    G1t = np.concatenate([G1, c1[:, None]], axis=1)
    change = invariants(obj.model, w - lr * obj.grad(w)).matrices[0] - invariants(obj.model, w).matrices[0]
    np.testing.assert_allclose(change, lr ** 2 * (G2.T @ G2 - G1t @ G1t.T), atol=1e-14)


def test_gd_drift_of_balancedness_over_a_fixed_flow_time_is_proportional_to_lr():
    rng = np.random.default_rng(3)
    obj = gf.Objective(gf.models.DeepLinear([3, 4, 1]), gf.Dataset(rng.standard_normal((8, 3)), rng.standard_normal(8)))
    w0 = obj.init(seed=4, scale=0.5)
    start = invariants(obj.model, w0).vector
    drifts = []
    for lr in (0.02, 0.01):
        traj = gf.gd(obj, w0, lr=lr, steps=int(round(4.0 / lr)), record_every=10_000)
        drifts.append(np.max(np.abs(invariants(obj.model, traj.w[-1]).vector - start)))
    assert drifts[1] > 1e-6
    assert drifts[0] / drifts[1] == pytest.approx(2.0, rel=0.1)      # O(lr) at fixed time t = lr * steps


def test_invariants_of_a_batch_are_the_invariants_of_each_row():
    model = gf.models.DeepLinear([2, 3, 2])
    W = np.random.default_rng(5).standard_normal((4, model.size))
    batch = invariants(model, W)
    for i in range(4):
        np.testing.assert_allclose(batch.matrices[0][i], invariants(model, W[i]).matrices[0], atol=1e-15)
    assert batch.vector.shape == (4, 9)


# ============================================================================= array libraries
def test_array_api_strict_objectives_run_through_their_own_namespace_and_match_numpy():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    arrays = (rng.standard_normal((8, 3)), rng.standard_normal(8), rng.standard_normal((4, 3)), rng.standard_normal(4))
    results = {}
    for name, convert in (("numpy", np.asarray), ("strict", xps.asarray)):
        obj = gf.Objective(gf.models.DeepLinear([3, 4, 1], bias=True), gf.Dataset(*map(convert, arrays)))
        eq = find_equilibrium(obj, obj.init(seed=1, scale=0.5))
        lin = linearize(obj, eq.w)
        results[name] = (eq, lin, degeneracy(obj, eq.w), spectrum(obj, eq.w, k=3, method="lanczos"),
                         hessian_trace(obj, eq.w, n_probes=8), spectral_density(obj, eq.w, n_probes=2, steps=6),
                         invariants(obj, eq.w))
    (eq, lin, deg, top, trace, dens, inv), reference = results["strict"], results["numpy"]
    strict_type = type(xps.asarray(0.0))
    assert all(isinstance(a, strict_type) for a in (eq.w, lin.center, deg.trivial, top.eigenvectors, inv.matrices[0]))
    np.testing.assert_allclose(np.asarray(eq.w), reference[0].w, atol=1e-12)
    np.testing.assert_allclose(lin.eigenvalues, reference[1].eigenvalues, atol=1e-12)
    assert (deg.nullity, deg.n_trivial) == (reference[2].nullity, reference[2].n_trivial)
    np.testing.assert_allclose(top.eigenvalues, reference[3].eigenvalues, rtol=1e-9)
    assert trace.estimate == pytest.approx(reference[4].estimate, rel=1e-12)
    np.testing.assert_allclose(dens.density, reference[5].density, rtol=1e-9, atol=1e-12)


# ============================================================================= validation
def test_w_star_of_the_wrong_length_or_non_finite_is_refused(hyperbola):
    with pytest.raises(ValueError, match=r"`w_star` must be one parameter vector of shape \(2,\)"):
        linearize(hyperbola, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="`w_star` must be finite"):
        linearize(hyperbola, [np.nan, 1.0])
    with pytest.raises(ValueError, match="`w_star` must be finite"):
        degeneracy(hyperbola, [np.inf, 1.0])
    with pytest.raises(ValueError, match="`w` must be one parameter vector"):
        spectrum(hyperbola, np.ones((2, 2)), k=1)
    with pytest.raises(ValueError, match="`w_guess` must be one parameter vector"):
        find_equilibrium(hyperbola, [1.0])


def test_k_not_below_p_is_refused_for_lanczos(net300):
    obj, w, _ = net300
    with pytest.raises(ValueError, match=r"`k` must be < P = 298 for method='lanczos'.*method='dense'"):
        spectrum(obj, w, k=298, method="lanczos")
    with pytest.raises(ValueError, match="`k` must be at most P"):
        spectrum(obj, w, k=299, method="dense")
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        spectrum(obj, w, k=0)


def test_negative_tolerances_are_refused(hyperbola):
    with pytest.raises(ValueError, match="`tol` must be >= 0"):
        linearize(hyperbola, [1.0, 1.0], tol=-1e-3)
    with pytest.raises(ValueError, match="`tol` must be >= 0"):
        degeneracy(hyperbola, [1.0, 1.0], tol=-1.0)
    with pytest.raises(ValueError, match="`grad_tol` must be >= 0"):
        linearize(hyperbola, [1.0, 1.0], grad_tol=-1.0)
    with pytest.raises(ValueError, match="`gtol` must be >= 0"):
        find_equilibrium(hyperbola, [1.0, 1.0], gtol=-1.0)
    with pytest.raises(ValueError, match="`rtol` must be >= 0"):
        spectrum(hyperbola, [1.0, 1.0], k=1, rtol=-1.0)


def test_unknown_which_or_method_is_refused_listing_the_choices(hyperbola):
    with pytest.raises(ValueError, match="`which` must be one of 'largest', 'smallest', 'both', 'magnitude'; got 'top'"):
        spectrum(hyperbola, [1.0, 1.0], k=1, which="top")
    with pytest.raises(ValueError, match="`method` must be one of 'auto', 'dense', 'lanczos'; got 'arpack'"):
        spectrum(hyperbola, [1.0, 1.0], k=1, method="arpack")
    assert set(METHODS) == {"auto", "dense", "lanczos"}


def test_bad_probe_counts_grids_and_bandwidths_are_refused(hyperbola):
    with pytest.raises(ValueError, match="`n_probes` must be an integer >= 1"):
        hessian_trace(hyperbola, [1.0, 1.0], n_probes=0)
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1"):
        spectral_density(hyperbola, [1.0, 1.0], steps=0)
    with pytest.raises(ValueError, match="`bandwidth` must be > 0"):
        spectral_density(hyperbola, [1.0, 1.0], bandwidth=0.0)
    with pytest.raises(ValueError, match="`grid` must be a non-empty 1-D array"):
        spectral_density(hyperbola, [1.0, 1.0], grid=np.ones((2, 2)))
    with pytest.raises(ValueError, match="`probe_inputs` must be raw inputs of shape"):
        degeneracy(hyperbola, [1.0, 1.0], probe_inputs=np.ones((3, 2)))
    with pytest.raises(TypeError, match="`probe_inputs` must be an array of real numbers"):
        degeneracy(hyperbola, [1.0, 1.0], probe_inputs="abc")


def test_objects_without_the_objective_protocol_are_refused(hyperbola, tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="`obj_or_flow` must be a gradflow.Objective"):
        linearize(object(), [1.0])
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(tmp_path))
    w1, w2 = sp.symbols("w1 w2")
    compiled = symbolic.from_expr((w1 * w2 - 1) ** 2 / 2, [w1, w2]).compile()
    with pytest.raises(TypeError, match="`obj` must be a gradflow.Objective \\(degeneracy needs the network"):
        degeneracy(compiled, [1.0, 1.0])


def test_a_batched_trajectory_must_be_narrowed_to_one_run(hyperbola):
    traj = gf.gd(hyperbola, np.array([[1.5, 0.2], [0.3, 2.0]]), lr=0.1, steps=5, record_every=5)
    with pytest.raises(ValueError, match=r"`w_guess` is a batched trajectory.*traj\.w\[-1, i\]"):
        find_equilibrium(hyperbola, traj)


def test_invariants_refuse_non_homogeneous_units_and_wrong_shapes():
    with pytest.raises(ValueError, match="`model` must have linear or ReLU hidden units.*'tanh'"):
        invariants(gf.models.MLP([2, 3, 1], activation="tanh"), np.zeros(9))
    with pytest.raises(ValueError, match=r"`w` must have shape \(9,\) or \(m, 9\)"):
        invariants(gf.models.DeepLinear([2, 3, 1]), np.zeros(8))
    with pytest.raises(TypeError, match="`model` must be a gradflow network"):
        invariants("relu", np.zeros(9))
    with pytest.raises(ValueError, match="`w` must be finite"):
        invariants(gf.models.DeepLinear([2, 3, 1]), np.r_[np.nan, np.zeros(8)])


def test_an_analysis_where_the_hessian_overflows_says_so_instead_of_returning_nan():
    obj = gf.Objective(gf.models.MLP([2, 5, 1], activation="tanh"), gf.Dataset(np.ones((3, 2)), np.ones(3)))
    huge = np.full(obj.size, 1e160)                   # finite weights; the Hessian's products overflow
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.all(np.isfinite(obj.hessian(huge)))
        for analysis, name in [(lambda: gf.linearize(obj, huge), "w_star"), (lambda: gf.degeneracy(obj, huge), "w_star"),
                               (lambda: gf.spectrum(obj, huge, k=2), "w"),
                               (lambda: gf.spectrum(obj, huge, k=2, method="lanczos"), "w"),
                               (lambda: gf.spectral_density(obj, huge, n_probes=2, steps=3), "w"),
                               (lambda: gf.hessian_trace(obj, huge, n_probes=4), "w")]:
            with pytest.raises(ValueError, match=rf"at `{name}` has non-finite entries"):
                analysis()
        # at a finite point the same calls work
        assert gf.spectrum(obj, np.full(obj.size, 0.3), k=2, method="lanczos").converged


def test_find_equilibrium_stops_where_the_hessian_is_not_finite():
    # L = w1^(3/2) + (w2 - 2)^2 / 2: at w1 = 0 the gradient is finite but d2L/dw1^2 = (3/4) w1^(-1/2) is not
    w1, w2 = sp.symbols("w1 w2")
    compiled = symbolic.from_expr(w1 ** sp.Rational(3, 2) + (w2 - 2) ** 2 / 2, [w1, w2]).compile()
    eq = gf.find_equilibrium(compiled, [0.0, 1.0])
    assert not eq.converged and eq.iterations == 0 and "Hessian is not finite" in eq.message
    regular = gf.find_equilibrium(compiled, [1.0, 1.0])           # from a regular point Newton makes progress
    assert regular.iterations > 0 and regular.grad_norm < regular.grad_norms[0]


@pytest.mark.parametrize("call, fix", [
    (lambda obj, w: gf.linearize(obj, w), "lanczos"),
    (lambda obj, w: gf.degeneracy(obj, w), "lanczos"),
    (lambda obj, w: gf.find_equilibrium(obj, w), "lanczos"),
    (lambda obj, w: gf.spectrum(obj, w, k=3, method="dense"), r"method='lanczos'"),
])
def test_dense_analyses_of_a_net_too_large_for_a_dense_hessian_are_refused_before_they_start(call, fix):
    # P = 404,400: one dense Hessian alone would take 1.3 TB
    obj = gf.Objective(gf.models.MLP([64, 600, 600, 10], activation="tanh"), gf.data.digits(n_train=5, n_test=0),
                       loss="cross_entropy")
    with pytest.raises(ValueError, match=rf"holds dense P x P matrices.*P = 404,400.*{fix}"):
        call(obj, obj.init(seed=0, scale=0.1))
    assert gf.spectrum(obj, obj.init(seed=0, scale=0.1), k=3).method == "lanczos"     # the matrix-free way works


def test_find_equilibrium_builds_no_hessian_and_refuses_nothing_when_it_takes_no_newton_step():
    obj = gf.Objective(gf.models.MLP([64, 600, 600, 10], activation="tanh"), gf.data.digits(n_train=5, n_test=0),
                       loss="cross_entropy")
    result = gf.find_equilibrium(obj, obj.init(seed=0, scale=0.1), max_iter=0)
    assert not result.converged and result.iterations == 0 and "max_iter = 0" in result.message
