r"""The paper's linear-regression experiments: Figures 2, 4, 13, 15 and 16.

A linear model in feature space, :math:`f(x) = w^\top \varphi(x)`, trained with
the square loss :math:`L(w) = \frac{1}{2n}\|\Phi w - y\|^2` is the paper's model of
a degenerate minimum: its Hessian :math:`H = \Phi^\top\Phi / n` is constant and
has :math:`P - \operatorname{rank}\Phi` zero eigenvalues when there are more
features than training points.  Five experiments rerun its evidence:

=========  ==================================================================================
``fig2``   the degenerate quadratic valley in :math:`(w_1, w_2)` (Figure 2, Proposition 1), and
           the same valley with weight decay, which makes the minimum hyperbolic (Section 4.2)
``fig4``   the perturbation protocol of Section 4.1 on degree-30 polynomial regression:
           Gaussian noise (:math:`\sigma = 0.6`) every 4,000 GD steps (Figure 4)
``fig15``  the same regression without perturbations: overfitting of the test loss, a finite
           early-stopping time (Figure 15), and the limit of GD (the minimum-norm solution)
``fig16``  the nondegenerate counterpart, degree 4 (Figure 16): no zero eigenvalue, and
           perturbations that do not move the weights
``fig13``  minimum-norm solutions for polynomial degrees 1 ... 300 on 76 Chebyshev nodes:
           test loss against the number of parameters (Figure 13)
=========  ==================================================================================

**Feature scaling.**  The paper's step size 0.2 is stable only when
:math:`\lambda_{\max}(H) < 2/0.2 = 10`, and "GD converges to zero training error
between perturbations" needs the smallest nonzero eigenvalue not to be tiny.
The features here are the Legendre polynomials :math:`P_0, \dots, P_p`
(``gradflow.features.Legendre(p)``, unnormalized, :math:`|P_j| \le 1` on
:math:`[-1, 1]`): the same model class as monomials (all polynomials of degree
:math:`\le p`), but well conditioned at Chebyshev nodes.  For the degree-30
problem :math:`\lambda_{\max} = 1.29` and the smallest nonzero eigenvalue is
0.10, so each 4,000-step phase contracts the non-degenerate components by
:math:`(1 - 0.2 \cdot 0.10)^{4000} \approx e^{-82}`.  Monomials would give a
smallest nonzero eigenvalue of :math:`5\cdot 10^{-5}` (millions of steps to
converge), and the normalized Legendre features (divided by :math:`\sqrt{p+1}`)
0.003 (about 40,000 steps): neither returns to zero training loss within a
phase.  Every run reports the eigenvalues it measured.

All GD runs use :func:`gradflow.gd` with ``method="auto"``, which takes the
exact spectral propagator for these quadratic objectives, so the paper's
250,000 steps cost no more than a few hundred.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, combine, verdict_of
from ..data import Dataset, sine
from ..descent import Perturbation, gd
from ..features import Legendre, Monomial
from ..linearize import degeneracy, find_equilibrium, linearize
from ..models import FeatureRegression
from ..objective import Objective
from ..predictions import early_stopping, min_norm
from ..trajectory import Trajectory
from ._core import Claim, ExperimentResult, new_figure, register, save_figure

__all__ = ["fig2", "fig4", "fig13", "fig15", "fig16", "regression_problem", "RegressionProblem",
           "descent_runs", "PerturbationSummary", "summarize_perturbation", "overfitting"]

# ----------------------------------------------------------------------------- the paper's set-up
#: GD step size of Figures 4, 15, 16 (also used for Figure 2 and the checks of Figure 13).
LR = 0.2
#: Frequency of the target :math:`\sin(2\pi f x)` (Figures 4, 13, 15, 16).
FREQUENCY = 4
#: Training and test points of Figures 4, 15, 16.
N_TRAIN, N_TEST = 9, 100
#: Where the training inputs lie (``gradflow.data.sine``'s default; the captions of Figures 4, 15, 16 do not say).
NODES = "chebyshev"
#: Polynomial degree of the degenerate problem (Figures 4, 15) and of the nondegenerate one (Figure 16).
DEGENERATE_DEGREE, NONDEGENERATE_DEGREE = 30, 4
#: A second degenerate degree, with a smaller null space, for the dependence of the random walk on its dimension N.
WALK_COMPARISON_DEGREE = 20
#: The perturbation protocol of Figures 4 and 16: Gaussian noise of this standard deviation every this many steps.
SIGMA, EVERY = 0.6, 4000
#: Standard deviation of the Gaussian initial weights (``Objective.init``'s default; the paper does not say).
INIT_SCALE = 0.1
#: Steps, repetitions and record spacing of Figures 4, 15, 16 by size ("full" is the paper's captions).
RUNS = {
    "quick": {"steps": 100_000, "repetitions": 10, "record_every": 200},
    "full": {"steps": 250_000, "repetitions": 30, "record_every": 100},
}
#: The first steps of the unperturbed runs are recorded finely to locate the minimum of the test loss.
EARLY_STEPS, EARLY_RECORD_EVERY = 2000, 2

#: Figure 2: the valley :math:`L(w) = \frac12 (w_1 + w_2 x - y)^2 = \frac12 (w_1 - 1)^2`: a line fitted to one point (x, y).
VALLEY_X, VALLEY_Y = 0.0, 1.0
#: Figure 2: weight decays :math:`\gamma` of :math:`L + \frac{\gamma}{2}\|w\|^2` tried ("arbitrarily small", Section 4.2).
VALLEY_WEIGHT_DECAYS = (1e-1, 1e-2, 1e-3)
#: Figure 2: GD starts on a square grid of this many points per side, centred on the minimum nearest 0.
VALLEY_GRID = {"quick": 3, "full": 7}
#: Figure 2: half-width of that grid.
VALLEY_EXTENT = 1.5
#: Figure 2: GD runs for ``VALLEY_HORIZON / (lr * lambda_min)`` steps, so the slowest component shrinks by e^-60.
VALLEY_HORIZON = 60.0

#: Figure 13: training points (Chebyshev nodes), test points, and the degrees by size.
MIN_NORM_N_TRAIN, MIN_NORM_N_TEST = 76, 600
MIN_NORM_DEGREES = {"quick": tuple(range(1, 301, 3)) + (300,), "full": tuple(range(1, 301))}
#: Figure 13: degrees at which the minimum-norm solution is compared with the limit of GD from zero.
MIN_NORM_GD_DEGREES = (10, 75, 150, 300)
#: Figure 13: GD from zero runs this many steps (the exact propagator makes the count free).
MIN_NORM_GD_STEPS = 10_000_000

# ----------------------------------------------------------------------------- thresholds of the verdicts
#: A training loss at most this counts as zero (the paper's "zero training error").
ZERO_LOSS = 1e-10
#: Relative distance at most this counts as "the same point" (minima reached, components kept, limits).
SAME_POINT_RTOL = 1e-8
#: Figure 4: the weight norm "grows" when its final mean exceeds the mean at the first perturbation by this factor.
NORM_GROWTH_FACTOR = 2.0
#: Figure 4: the test loss "grows" when its final mean exceeds the mean at the first perturbation by this factor.
TEST_GROWTH_FACTOR = 2.0
#: Figure 16: the norm "does not grow" when the final mean is within this relative distance of the first one.
NORM_FLAT_RTOL = 1e-3
#: Section 4.1: the random walk holds when the slope of mean ||P_N w||^2 per perturbation is within this range of
#: sigma^2 N, and its growth exponent in m within EXPONENT_RANGE.
WALK_SLOPE_RANGE = (0.7, 1.4)
WALK_EXPONENT_RANGE = (0.8, 1.2)
#: Figures 15, 16: the test loss "overfits" when its final mean exceeds its minimum along the path by this fraction.
OVERFIT_RTOL = 1e-3
#: Figures 15, 16: differences of mean test losses below this fraction of the largest one are rounding error.
ROUNDING_RTOL = 1e-12
#: Figure 13: the minimum-norm solution "eventually overfits" when its test loss at the largest degree is at least
#: this many times its minimum over the degrees.
EVENTUAL_OVERFIT_FACTOR = 10.0
#: ... and at least this fraction of the test loss of the zero predictor (a rise between rounding-level losses,
#: say from 1e-31 to 1e-29, is not overfitting).
EVENTUAL_OVERFIT_FLOOR = 1e-2


# ============================================================================= shared pieces
@dataclasses.dataclass(frozen=True, eq=False)
class RegressionProblem:
    r"""A polynomial regression of the sine target and what is known about its Hessian.

    Attributes
    ----------
    degree : int
        Polynomial degree ``p``; ``P = p + 1`` parameters.
    objective : Objective
        :math:`L(w) = \frac{1}{2n}\|\Phi w - y\|^2` on Legendre features.
    w_min_norm : ndarray, shape (P,)
        The minimum-norm least-squares solution :math:`\Phi^+ y` (``numpy.linalg.lstsq``).
    null_basis, range_basis : ndarray, shape (P, N), (P, P - N)
        Orthonormal bases of the center subspace (null space of :math:`H`) and
        the stable subspace, from :func:`gradflow.linearize` at ``w_min_norm``.
    nullity : int
        ``N``, the number of zero eigenvalues of :math:`H` (``linearize``'s count).
    kind : str
        ``linearize``'s type of the equilibrium: ``"non-hyperbolic"`` or ``"sink"``.
    lambda_max, lambda_min_nonzero : float
        Largest and smallest nonzero eigenvalue of :math:`H`.
    min_train_loss : float
        :math:`L(\Phi^+ y)`, zero (to rounding) when :math:`\Phi` has full row rank.
    """

    degree: int
    objective: Objective
    w_min_norm: np.ndarray
    null_basis: np.ndarray
    range_basis: np.ndarray
    nullity: int
    kind: str
    lambda_max: float
    lambda_min_nonzero: float
    min_train_loss: float

    @property
    def size(self) -> int:
        return self.objective.size

    def setup(self) -> dict:
        """The problem's description for a report (JSON-serializable)."""
        contraction = (1.0 - LR * self.lambda_min_nonzero) ** EVERY
        return {
            "degree": self.degree, "parameters": self.size, "n_train": self.objective.data.n,
            "n_test": self.objective.data.n_test, "features": f"Legendre P_0..P_{self.degree}, unnormalized",
            "hessian_lambda_max": self.lambda_max, "hessian_lambda_min_nonzero": self.lambda_min_nonzero,
            "lr_times_lambda_max": LR * self.lambda_max, "stable_lr_bound": 2.0 / self.lambda_max,
            "contraction_per_4000_steps": contraction, "hessian_nullity": self.nullity,
        }


def regression_problem(degree: int, n_train: int = N_TRAIN, n_test: int = N_TEST) -> RegressionProblem:
    r"""The sine regression with Legendre features of ``degree`` and its Hessian's subspaces.

    The data is ``gradflow.data.sine(n_train, n_test, frequency=4, nodes="chebyshev")``
    and the model ``FeatureRegression(Legendre(degree))`` with the square loss.
    """
    data = sine(n_train=n_train, n_test=n_test, frequency=FREQUENCY, nodes=NODES)
    features = Legendre(degree)
    obj = Objective(FeatureRegression(features), data, loss="square")
    Phi = np.asarray(features(data.X))
    w_min_norm = np.linalg.lstsq(Phi, np.asarray(data.y), rcond=None)[0]
    lin = linearize(obj, w_min_norm)
    lam = lin.hessian_eigenvalues
    nonzero = np.abs(lam) > lin.tol
    return RegressionProblem(
        degree=degree, objective=obj, w_min_norm=w_min_norm, null_basis=np.asarray(lin.center),
        range_basis=np.asarray(lin.stable), nullity=int(lin.nullity), kind=lin.kind,
        lambda_max=float(lam[-1]), lambda_min_nonzero=float(np.abs(lam[nonzero]).min()),
        min_train_loss=float(obj.metrics(w_min_norm)["train_loss"]),
    )


def _initial_weights(problem: RegressionProblem, repetitions: int, seed: int) -> np.ndarray:
    """``repetitions`` Gaussian starts of standard deviation ``INIT_SCALE``, from ``default_rng(seed)``."""
    return INIT_SCALE * np.random.default_rng(seed).standard_normal((repetitions, problem.size))


def descent_runs(problem: RegressionProblem, size: str, seed: int, perturbed: bool):
    """GD from ``repetitions`` random starts: the long run (with or without perturbations) and, unperturbed, its
    first ``EARLY_STEPS`` steps recorded every ``EARLY_RECORD_EVERY`` steps.

    Returns ``(W0, long, early)`` (``early`` is None for a perturbed run).
    """
    sizes = RUNS[size]
    W0 = _initial_weights(problem, sizes["repetitions"], seed)
    perturbation = Perturbation(every=EVERY, sigma=SIGMA, seed=seed) if perturbed else None
    long = gd(problem.objective, W0, lr=LR, steps=sizes["steps"], record_every=sizes["record_every"],
              perturbation=perturbation, method="auto")
    early = None
    if not perturbed:
        early = gd(problem.objective, W0, lr=LR, steps=EARLY_STEPS, record_every=EARLY_RECORD_EVERY, method="auto")
    return W0, long, early


def _run_setup(size: str, seed: int, perturbed: bool) -> dict:
    sizes = RUNS[size]
    setup = {"lr": LR, "steps": sizes["steps"], "repetitions": sizes["repetitions"],
             "record_every": sizes["record_every"], "seed": seed, "init": f"w0 ~ N(0, {INIT_SCALE}^2) i.i.d.",
             "target": f"sin(2 pi {FREQUENCY} x) on [-1, 1], training inputs at {NODES} nodes",
             "method": "gradflow.gd, method='auto' (the exact spectral propagator of GD on a quadratic loss)"}
    if perturbed:
        setup["perturbation"] = f"N(0, {SIGMA}^2) added to every weight every {EVERY} steps (Perturbation seed {seed})"
    else:
        setup["early_window"] = f"steps 0..{EARLY_STEPS} also recorded every {EARLY_RECORD_EVERY} steps"
    return setup


def _mean_curves(traj, prefix: str = "") -> dict:
    """Mean and standard deviation over the repetitions of the train/test loss and the norm, as arrays."""
    out = {f"{prefix}t": np.asarray(traj.t)}
    for name in ("train_loss", "test_loss", "norm"):
        values = np.asarray(traj.metrics[name])
        out[f"{prefix}{name}_mean"] = values.mean(axis=1)
        out[f"{prefix}{name}_std"] = values.std(axis=1)
    return out


def _unfinished(traj) -> str | None:
    """The run's message when it did not finish (divergence), else None."""
    return None if traj.success else f"GD did not finish: {traj.message}"


def _inconclusive(source: str, statement: str, why: str) -> Claim:
    return Claim(source, statement, INCONCLUSIVE, why)


# ----------------------------------------------------------------------------- the degeneracy claim
DEGENERATE_STATEMENT = ("The Hessian at the minimum is degenerate, of the type of Figure 2: with more parameters than "
                        "training points it has P - n zero eigenvalues.")
NONDEGENERATE_STATEMENT = "The nondegenerate quadratic convex case: the Hessian at the minimum has no zero eigenvalue."


def degeneracy_claim(problem: RegressionProblem, expect_degenerate: bool, source: str) -> Claim:
    """Whether the Hessian's nullity is ``P - n > 0`` (degenerate) or ``0`` (nondegenerate), as the paper says."""
    n = problem.objective.data.n
    expected = max(problem.size - n, 0)
    if expect_degenerate:
        ok = expected > 0 and problem.nullity == expected and problem.kind == "non-hyperbolic"
        statement = DEGENERATE_STATEMENT
    else:
        ok = problem.nullity == 0 and problem.kind == "sink"
        statement = NONDEGENERATE_STATEMENT
    evidence = (f"degree {problem.degree}: P = {problem.size} parameters, n = {n} training points; gradflow.linearize "
                f"at the minimum-norm solution finds {problem.nullity} zero eigenvalue(s) of H (P - n = {expected}), "
                f"kind '{problem.kind}', lambda_max = {problem.lambda_max:.4g}, smallest nonzero eigenvalue "
                f"{problem.lambda_min_nonzero:.4g}.")
    return Claim(source, statement, verdict_of(ok), evidence)


# ============================================================================= Figure 4 and 16 (right)
@dataclasses.dataclass(frozen=True)
class PerturbationSummary:
    """What the perturbation protocol measured, from the weights at the end of every GD phase.

    Attributes
    ----------
    phase_end_t : ndarray, shape (K,)
        The steps ending the phases (each recorded before the noise), then the last step.
    perturbations_before : ndarray, shape (K,)
        Perturbations applied before each phase end (0, 1, ..., K - 1).
    train_loss, test_loss, norm : ndarray, shape (K,)
        Means over the repetitions at the phase ends.
    train_loss_after_kick : float
        Mean training loss right after the first perturbation's noise (how far the noise kicked it).
    null_norm2 : ndarray, shape (K,)
        Mean of :math:`\\|P_N w\\|^2` over the repetitions.
    walk_slope : float
        Least-squares slope of ``null_norm2`` against the number of perturbations.
    walk_slope_predicted : float
        :math:`\\sigma^2 N`: each perturbation adds :math:`\\sigma^2` per null direction on average.
    walk_exponent : float
        Slope of :math:`\\log(\\text{null\\_norm2}(m) - \\text{null\\_norm2}(0))` against :math:`\\log m`
        (1 for a random walk, i.e. :math:`\\|P_N w\\| \\propto \\sqrt m`).
    range_deviation : float
        Largest :math:`\\|P_R w_{\\text{end}} - \\Phi^+ y\\| / \\|\\Phi^+ y\\|` over phase ends after the first
        perturbation and repetitions: how far GD left the non-degenerate components from their minimum.
    null_deviation : float
        Largest :math:`\\|P_N(w_{k+1}) - P_N(w_k + \\varepsilon_k)\\| / \\|P_N \\varepsilon_k\\|` (with the
        noise regenerated by ``Perturbation.noise``): how much GD moved the degenerate components (0 when
        there is no null space).
    train_loss_excess : float
        Largest relative excess of the phase-end training loss over the minimum :math:`L(\\Phi^+ y)`
        (absolute when that minimum is zero).
    """

    phase_end_t: np.ndarray
    perturbations_before: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    norm: np.ndarray
    train_loss_after_kick: float
    null_norm2: np.ndarray
    walk_slope: float
    walk_slope_predicted: float
    walk_exponent: float
    range_deviation: float
    null_deviation: float
    train_loss_excess: float

    @property
    def norm_ratio(self) -> float:
        """Final mean norm over the mean norm at the first perturbation."""
        return float(self.norm[-1] / self.norm[0])

    @property
    def test_ratio(self) -> float:
        """Final mean test loss over the mean test loss at the first perturbation."""
        return float(self.test_loss[-1] / self.test_loss[0])


def summarize_perturbation(problem: RegressionProblem, traj) -> PerturbationSummary:
    """Measure the perturbation protocol of Section 4.1 on a batched GD trajectory (``gd`` with a ``Perturbation``).

    The noise of every perturbation is regenerated from the ``Perturbation`` recorded in ``traj.info``.
    """
    settings = traj.info.get("perturbation")
    if settings is None or np.asarray(traj.w).ndim != 3:
        raise ValueError("`traj` must be a batched GD run with a perturbation (gd(obj, W0 of shape (m, P), ..., "
                         "perturbation=Perturbation(...))).")
    perturbation = Perturbation(**settings)
    every = perturbation.every
    t = np.asarray(traj.t)
    steps = int(t[-1])
    ends = np.flatnonzero(((t % every) == 0) & (t > 0) | (t == steps))
    missing = np.setdiff1d(np.arange(every, steps, every), t)
    if missing.size:
        raise ValueError(f"`traj` must be recorded at every perturbation step (record_every dividing {every}); "
                         f"steps {missing[:3].tolist()} are not recorded.")
    W = np.asarray(traj.w)[ends]                                    # (K, m, P)
    train = np.asarray(traj.metrics["train_loss"])
    N, R = problem.null_basis, problem.range_basis
    nullity = N.shape[1]
    null_norm2 = np.einsum("kmp,pj->kmj", W, N) if nullity else np.zeros(W.shape[:2] + (0,))
    null_norm2 = (null_norm2 ** 2).sum(axis=-1).mean(axis=1)
    m = np.arange(len(ends), dtype=float)
    slope = float(np.polyfit(m, null_norm2, 1)[0]) if len(ends) > 1 else math.nan
    increase = null_norm2[1:] - null_norm2[0]
    if len(ends) > 2 and np.all(increase > 0):
        exponent = float(np.polyfit(np.log(m[1:]), np.log(increase), 1)[0])
    else:
        exponent = math.nan
    # Prediction 2: after each phase the range components are back at the minimum, the null ones kept the noise.
    reference = problem.w_min_norm @ R @ R.T if R.shape[1] else np.zeros(problem.size)
    scale = max(float(np.linalg.norm(problem.w_min_norm)), 1e-300)
    range_dev = float(np.max(np.linalg.norm(W[1:] @ R @ R.T - reference, axis=-1)) / scale) if len(ends) > 1 else math.nan
    kick, shapes = math.nan, problem.objective.model.parameter_shapes
    if len(ends) > 1:   # the training loss right after the first noise (the recorded weights are before it)
        kick = float(np.mean(problem.objective.metrics(W[0] + perturbation.noise(1, W[0], shapes))["train_loss"]))
    null_dev = 0.0
    for k in range(1, len(ends)):
        noise = perturbation.noise(k, W[k - 1], shapes)
        if nullity:
            moved = (W[k] - W[k - 1] - noise) @ N
            null_dev = max(null_dev, float(np.max(np.linalg.norm(moved, axis=-1) / np.linalg.norm(noise @ N, axis=-1))))
    train_ends = train[ends].mean(axis=1)
    floor = problem.min_train_loss
    excess = float(np.max(np.abs(train_ends - floor)) / (floor if floor > ZERO_LOSS else 1.0))
    return PerturbationSummary(
        phase_end_t=t[ends], perturbations_before=m.astype(int), train_loss=train_ends,
        test_loss=np.asarray(traj.metrics["test_loss"])[ends].mean(axis=1),
        norm=np.asarray(traj.metrics["norm"])[ends].mean(axis=1),
        train_loss_after_kick=kick,
        null_norm2=null_norm2, walk_slope=slope, walk_slope_predicted=perturbation.sigma ** 2 * nullity, walk_exponent=exponent,
        range_deviation=range_dev, null_deviation=null_dev, train_loss_excess=excess,
    )


def train_returns_claim(s: PerturbationSummary, to_zero: bool, source: str) -> Claim:
    """Prediction 1 of Section 4.1: the training loss returns (to zero, or to its least-squares minimum) after each phase."""
    if to_zero:
        statement = "The training error will go back to zero after each sequence of GD."
        ok = bool(np.max(s.train_loss) <= ZERO_LOSS)
        evidence = (f"mean training loss at the {len(s.train_loss)} phase ends at most {np.max(s.train_loss):.3g} "
                    f"(zero means <= {ZERO_LOSS:g}); right after the first perturbation it was "
                    f"{s.train_loss_after_kick:.3g}.")
    else:
        statement = ("After each perturbation GD brings the training loss back to where it was (the caption says 'to "
                     "zero training error'; with 5 parameters and 9 points the minimum is not zero).")
        ok = bool(s.train_loss_excess <= SAME_POINT_RTOL)
        evidence = (f"phase-end mean training loss {s.train_loss[0]:.6g} .. {np.max(s.train_loss):.6g}, largest relative "
                    f"excess over the least-squares minimum {s.train_loss_excess:.3g} (threshold {SAME_POINT_RTOL:g}); "
                    f"right after the first perturbation it was {s.train_loss_after_kick:.3g}.")
    return Claim(source, statement, verdict_of(ok), evidence)


def components_claim(s: PerturbationSummary, nullity: int) -> Claim:
    """Prediction 2 of Section 4.1: non-degenerate components pushed back, degenerate ones keep the noise."""
    statement = ("Any small perturbation of the optimum is corrected by GD, which pushes the non-degenerate weight "
                 "directions back to their values, while the components in the degenerate directions are not changed.")
    ok = s.range_deviation <= SAME_POINT_RTOL and s.null_deviation <= SAME_POINT_RTOL and nullity > 0
    evidence = (f"after every phase, the largest relative distance of the non-degenerate components from those of "
                f"the minimum is {s.range_deviation:.2g}; GD moved the components in the {nullity}-dimensional null "
                f"space by at most {s.null_deviation:.2g} of the noise they received (threshold {SAME_POINT_RTOL:g} for both).")
    return Claim("Section 4.1, prediction 2", statement, verdict_of(ok), evidence)


def norm_growth_claim(s: PerturbationSummary) -> Claim:
    """Figure 4: the weight norm grows under repeated perturbation."""
    statement = ("Repeated perturbations, each followed by GD to convergence, change the parameters and increase the "
                 "L2 norm of the weights.")
    ok = s.norm_ratio >= NORM_GROWTH_FACTOR
    evidence = (f"mean weight norm {s.norm[0]:.4g} at the first perturbation (step {s.phase_end_t[0]}), "
                f"{s.norm[-1]:.4g} after {s.perturbations_before[-1]} perturbations: ratio {s.norm_ratio:.3g} "
                f"(grows means >= {NORM_GROWTH_FACTOR:g}).")
    return Claim("Figure 4; Section 4.1, prediction 3", statement, verdict_of(ok), evidence)


def test_growth_claim(s: PerturbationSummary) -> Claim:
    """Figure 4: the test loss grows under repeated perturbation while the training loss stays at zero."""
    statement = "Repeated perturbations do not increase the training error but increase the associated test error."
    ok = s.test_ratio >= TEST_GROWTH_FACTOR
    evidence = (f"mean test loss {s.test_loss[0]:.4g} at the first perturbation, {s.test_loss[-1]:.4g} at the end: "
                f"ratio {s.test_ratio:.3g} (grows means >= {TEST_GROWTH_FACTOR:g}).")
    return Claim("Figure 4; Section 4.1, prediction 3", statement, verdict_of(ok), evidence)


def random_walk_claim(s: PerturbationSummary) -> Claim:
    """Section 4.1: the null-space norm random-walks, growing like sqrt(m)."""
    statement = ("In the linear case the L2 norm of the projection of the weights on the null space undergoes a "
                 "random walk: it grows proportionally to about sqrt(m) after m perturbations.")
    lo, hi = WALK_SLOPE_RANGE
    elo, ehi = WALK_EXPONENT_RANGE
    ratio = s.walk_slope / s.walk_slope_predicted if s.walk_slope_predicted > 0 else math.nan
    if not np.isfinite(ratio) or not np.isfinite(s.walk_exponent):
        return _inconclusive("Section 4.1, prediction 3", statement,
                             f"no null space or too few perturbations to fit (slope {s.walk_slope:.3g}, "
                             f"exponent {s.walk_exponent:.3g}).")
    ok = lo <= ratio <= hi and elo <= s.walk_exponent <= ehi
    evidence = (f"mean ||P_N w||^2 grows by {s.walk_slope:.4g} per perturbation (sigma^2 N = {s.walk_slope_predicted:.4g}; "
                f"ratio {ratio:.3g}, accepted {lo:g}..{hi:g}); its increase grows like m^{s.walk_exponent:.3f} "
                f"(1 for a random walk, i.e. ||P_N w|| ~ sqrt(m); accepted {elo:g}..{ehi:g}).")
    return Claim("Section 4.1, prediction 3", statement, verdict_of(ok), evidence)


def walk_constant_claim(s_large: PerturbationSummary, n_large: int, s_small: PerturbationSummary, n_small: int) -> Claim:
    """Section 4.1: the constant of the sqrt(m) law 'depends on about sqrt(1/N)': compared between two null dimensions."""
    statement = ("The constant of proportionality of the sqrt(m) growth depends on about sqrt(1/N), N the dimension "
                 "of the null space.")
    c_large, c_small = math.sqrt(max(s_large.walk_slope, 0.0)), math.sqrt(max(s_small.walk_slope, 0.0))
    if not (c_large > 0 and c_small > 0 and n_large != n_small):
        return _inconclusive("Section 4.1, prediction 3", statement, "the constants could not be measured.")
    measured = math.log(c_large / c_small)
    paper = -0.5 * math.log(n_large / n_small)     # c ~ sqrt(1/N)
    opposite = -paper                              # c ~ sqrt(N): sigma^2 per null direction per perturbation
    ok = abs(measured - paper) < abs(measured - opposite)
    evidence = (f"constant c = sqrt(slope of mean ||P_N w||^2 per perturbation): {c_large:.4g} for N = {n_large}, "
                f"{c_small:.4g} for N = {n_small}; ratio {c_large / c_small:.3g}, against {math.exp(paper):.3g} if "
                f"c ~ sqrt(1/N) and {math.exp(opposite):.3g} if c ~ sqrt(N). Gaussian noise of standard deviation "
                f"sigma per weight puts sigma^2 N into the null space on average, so c = sigma sqrt(N) "
                f"(= {SIGMA * math.sqrt(n_large):.3g} and {SIGMA * math.sqrt(n_small):.3g}); a unit-norm perturbation "
                f"would give sqrt(N/P), also growing with N.")
    return Claim("Section 4.1, prediction 3", statement, verdict_of(ok), evidence)


def norm_flat_claim(s: PerturbationSummary) -> Claim:
    """Figure 16 (right): perturbations do not grow the norm in the nondegenerate case."""
    statement = "In the nondegenerate case, perturbations followed by GD do not increase the norm of the weights."
    ok = abs(s.norm_ratio - 1.0) <= NORM_FLAT_RTOL
    evidence = (f"mean weight norm {s.norm[0]:.6g} at the first perturbation and {s.norm[-1]:.6g} after "
                f"{s.perturbations_before[-1]} perturbations: ratio {s.norm_ratio:.6g} (flat means within "
                f"{NORM_FLAT_RTOL:g} of 1).")
    return Claim("Figure 16 (right)", statement, verdict_of(ok), evidence)


# ============================================================================= Figures 15, 16 (left): overfitting
@dataclasses.dataclass(frozen=True)
class Overfitting:
    """Where the mean test loss of unperturbed GD is smallest, and how much the end is above it."""

    t_min: int
    test_min: float
    test_final: float
    test_initial: float
    test_max: float
    steps: int

    @property
    def excess(self) -> float:
        """``test_final / test_min - 1``."""
        return self.test_final / self.test_min - 1.0

    @property
    def overfits(self) -> bool:
        """The minimum is at a finite step ``0 < t_min < steps`` and the end is above it by more than ``OVERFIT_RTOL``
        (relative) and more than rounding (``ROUNDING_RTOL`` times the largest mean test loss)."""
        above = self.test_final - self.test_min
        return 0 < self.t_min < self.steps and self.excess > OVERFIT_RTOL and above > ROUNDING_RTOL * self.test_max


def overfitting(long, early) -> Overfitting:
    """The minimum of the mean test loss over both recordings of an unperturbed run (fine early, coarse after)."""
    t = np.concatenate([np.asarray(early.t), np.asarray(long.t)])
    test = np.concatenate([np.asarray(early.metrics["test_loss"]).mean(axis=1),
                           np.asarray(long.metrics["test_loss"]).mean(axis=1)])
    i = int(np.argmin(test))
    return Overfitting(t_min=int(t[i]), test_min=float(test[i]), test_final=float(test[-1]),
                       test_initial=float(test[0]), test_max=float(np.max(test)), steps=int(long.t[-1]))


def _overfit_evidence(o: Overfitting) -> str:
    return (f"mean test loss {o.test_initial:.5g} at step 0, smallest {o.test_min:.5g} at step {o.t_min}, "
            f"{o.test_final:.5g} at step {o.steps}: the end is {100 * o.excess:.3g}% above the minimum "
            f"(overfitting means a minimum at 0 < t < {o.steps} and more than {100 * OVERFIT_RTOL:g}% above it).")


def overfit_claim(o: Overfitting) -> Claim:
    """Figure 15: the degenerate case overfits the test loss; a finite early-stopping time is best."""
    statement = ("There is overfitting in the test error: the minimum of the test loss occurs at a finite number of "
                 "iterations, so early stopping is better than no stopping.")
    return Claim("Figure 15; Section 4.1", statement, verdict_of(o.overfits), _overfit_evidence(o))


def no_overfit_claim(o: Overfitting, degenerate: Overfitting | None = None, from_zero=None) -> Claim:
    """Figure 16 (left, inset): no overfitting in the nondegenerate case.

    ``degenerate`` (the degree-30 runs) and ``from_zero`` (``gf.checks.early_stopping`` from w0 = 0) only add
    to the evidence; the verdict is that of ``o``.
    """
    statement = ("In the nondegenerate case there is no overfitting of the test loss (the inset), unlike the "
                 "degenerate case of Figure 15.")
    evidence = _overfit_evidence(o)
    if degenerate is not None:
        evidence += (f" For comparison the degenerate case (degree {DEGENERATE_DEGREE}) ends "
                     f"{100 * degenerate.excess:.3g}% above its minimum.")
    if from_zero is not None:
        evidence += (f" From w0 = 0 (gradflow.checks.early_stopping) the test loss is smallest at step "
                     f"{from_zero.best_t} and ends {100 * from_zero.overfit:.3g}% above it.")
    return Claim("Figure 16 (left); Section 4.1", statement, verdict_of(not o.overfits), evidence)


def ridge_claim(report) -> Claim:
    """Section 4.1 / 3.1: the finite early-stopping time corresponds to an optimal nonzero ridge parameter."""
    statement = ("The minimum of the test loss at a finite number of iterations corresponds to an equivalent optimum "
                 "non-zero regularization parameter lambda: GD after t steps acts like Tikhonov regularization with "
                 "lambda ~ 1/t.")
    return Claim("Sections 3.1, 4.1; Figure 15", statement, report.verdict,
                 f"gradflow.checks.early_stopping from w0 = 0: {report.message}")


def limit_claim(problem: RegressionProblem, W0: np.ndarray, final: np.ndarray, from_zero_final: np.ndarray) -> Claim:
    """Section 3 / Figure 15: GD converges to the zero-loss minimum nearest its start; from zero, the minimum-norm one."""
    statement = ("For the square loss gradient descent converges to the minimum-norm solution (the pseudoinverse) "
                 "when started at zero; the degenerate components of a random start are kept.")
    scale = float(np.linalg.norm(problem.w_min_norm))
    N = problem.null_basis
    expected = problem.w_min_norm + (W0 @ N @ N.T if N.shape[1] else 0.0)
    nearest = float(np.max(np.linalg.norm(final - expected, axis=-1)) / scale)
    from_zero = float(np.linalg.norm(from_zero_final - problem.w_min_norm) / scale)
    to_min_norm = float(np.max(np.linalg.norm(final - problem.w_min_norm, axis=-1)) / scale)
    ok = from_zero <= SAME_POINT_RTOL and nearest <= SAME_POINT_RTOL
    evidence = (f"GD from w0 = 0 ends at relative distance {from_zero:.2g} from pinv(Phi) y; from the random starts it "
                f"ends at relative distance {nearest:.2g} (at most) from pinv(Phi) y + P_N w0, which is "
                f"{to_min_norm:.3g} away from the minimum-norm solution (threshold {SAME_POINT_RTOL:g}).")
    return Claim("Section 3; Figure 15", statement, verdict_of(ok), evidence)


def min_norm_distance(problem: RegressionProblem, final: np.ndarray) -> float:
    """Largest relative distance of final weights (m, P) or (P,) from the minimum-norm solution."""
    scale = float(np.linalg.norm(problem.w_min_norm))
    return float(np.max(np.linalg.norm(np.atleast_2d(final) - problem.w_min_norm, axis=-1)) / scale)


# ============================================================================= figures
def _merge(early, long) -> Trajectory:
    """One trajectory from the finely recorded first steps and the coarsely recorded whole run (same path)."""
    keep = np.asarray(long.t) > np.asarray(early.t)[-1]
    return Trajectory(t=np.concatenate([early.t, np.asarray(long.t)[keep]]),
                      w=np.concatenate([early.w, np.asarray(long.w)[keep]]),
                      loss=np.concatenate([early.loss, np.asarray(long.loss)[keep]]),
                      metrics={k: np.concatenate([early.metrics[k], np.asarray(long.metrics[k])[keep]])
                               for k in early.metrics},
                      status=long.status, message=long.message, nfev=long.nfev, method=long.method, info=long.info)


def _curves(axes, runs, log_x: bool = False):
    """``gf.plot.curves`` (train loss, test loss, norm; mean +- std over the repetitions) into ``axes``."""
    from .. import plot

    plot.curves(runs, metrics=("train_loss", "test_loss", "norm"), axes=list(axes), spread="std",
                logy=(True, None, None))
    if log_x:
        for ax in axes:
            ax.set_xscale("symlog", linthresh=EARLY_RECORD_EVERY * 10)
            ax.set_xlim(left=0)


# ============================================================================= Figure 2
FIG2_TITLE = "The degenerate quadratic valley, and with weight decay"


def valley_objective(weight_decay: float = 0.0) -> Objective:
    r"""Figure 2's valley: a line :math:`w_1 + w_2 x` fitted to the one point :math:`(x, y) = (0, 1)`.

    :math:`L(w) = \frac12 (w_1 + w_2 x - y)^2 + \frac{\gamma}{2}\|w\|^2 = \frac12 (w_1 - 1)^2 + \frac{\gamma}{2}\|w\|^2`
    (``Monomial(1)`` features, square loss): the point fixes the intercept :math:`w_1` and leaves the slope
    :math:`w_2` free.  With :math:`\gamma = 0` the Hessian is :math:`\operatorname{diag}(1, 0)` and the zero-loss
    minima form the line :math:`w_1 = 1`; with :math:`\gamma > 0` it is :math:`\operatorname{diag}(1 + \gamma, \gamma)`
    and the unique minimum is :math:`(1/(1 + \gamma), 0)`.
    """
    data = Dataset(np.array([[VALLEY_X]]), np.array([VALLEY_Y]))
    return Objective(FeatureRegression(Monomial(1)), data, loss="square", weight_decay=weight_decay)


def _valley_starts(size: str, center: np.ndarray) -> np.ndarray:
    k = VALLEY_GRID[size]
    axis = np.linspace(-VALLEY_EXTENT, VALLEY_EXTENT, k)
    g1, g2 = np.meshgrid(axis, axis, indexing="ij")
    return center + np.stack([g1.ravel(), g2.ravel()], axis=1)


@dataclasses.dataclass(frozen=True, eq=False)
class ValleyRun:
    """One valley (with or without weight decay): its minimum, linearization, degeneracy and GD from a grid of starts."""

    weight_decay: float
    objective: Objective
    w_star: np.ndarray
    linearization: object
    degeneracy: object
    trajectory: Trajectory
    starts: np.ndarray


def valley_run(weight_decay: float, size: str) -> ValleyRun:
    """Find the minimum nearest 0 (``find_equilibrium``), linearize there, and run GD from a grid of starts.

    GD runs ``VALLEY_HORIZON / (lr * smallest positive eigenvalue)`` steps, so that even the slowest
    contracting component shrinks by :math:`e^{-60}`.
    """
    obj = valley_objective(weight_decay)
    eq = find_equilibrium(obj, np.zeros(obj.size))
    w_star = np.asarray(eq.w)
    lin = linearize(obj, w_star)
    deg = degeneracy(obj, w_star)
    lam = lin.hessian_eigenvalues
    lam_min = float(lam[lam > lin.tol].min())
    steps = int(math.ceil(round(VALLEY_HORIZON / (LR * lam_min), 6)))
    starts = _valley_starts(size, w_star)
    traj = gd(obj, starts, lr=LR, steps=steps, record_every=max(1, steps // 200), method="auto")
    return ValleyRun(weight_decay, obj, w_star, lin, deg, traj, starts)


def valley_degenerate_claim(run: ValleyRun) -> Claim:
    """Figure 2: the minimum's Hessian has one zero eigenvalue and the minima form a line (a flat valley)."""
    statement = ("A quadratic loss in two parameters w1, w2 whose minimum has a degenerate Hessian with a zero "
                 "eigenvalue: the zero-loss minima form a flat valley.")
    lin, deg = run.linearization, run.degeneracy
    loss = float(run.objective.metrics(run.w_star)["train_loss"])
    ok = lin.nullity == 1 and deg.manifold_dim == 1 and deg.nullity == 1 and loss <= ZERO_LOSS
    evidence = (f"weight decay {run.weight_decay:g}: Hessian eigenvalues "
                f"{np.array2string(lin.hessian_eigenvalues, precision=4)} at the minimum "
                f"{np.array2string(run.w_star, precision=4)} found by gradflow.find_equilibrium (data loss {loss:.2g}); "
                f"gradflow.linearize: {lin.nullity} zero eigenvalue(s), kind '{lin.kind}'; gradflow.degeneracy: "
                f"nullity {deg.nullity}, the weights with the same outputs form a set of dimension {deg.manifold_dim}.")
    return Claim("Figure 2; Lemma 1", statement, verdict_of(ok), evidence)


def valley_descent_claim(run: ValleyRun) -> Claim:
    """Section 4.1 / Proposition 1: GD corrects the non-degenerate direction and keeps the degenerate one."""
    statement = ("Near a degenerate minimum GD pushes the non-degenerate weight direction back to the minimum, while "
                 "the component along the degenerate direction is not changed: from different starts GD ends at "
                 "different minima along the valley.")
    source = "Section 4.1; Proposition 1"
    lin, traj = run.linearization, run.trajectory
    if not traj.success:
        return _inconclusive(source, statement, _unfinished(traj))
    final = np.asarray(traj.w)[-1]
    loss = float(np.max(np.asarray(traj.metrics["train_loss"])[-1]))
    if lin.nullity == 0:
        spread = float(np.max(np.linalg.norm(final - run.w_star, axis=-1)))
        evidence = (f"weight decay {run.weight_decay:g}: the Hessian has no zero eigenvalue; GD from {len(run.starts)} "
                    f"starts ends within {spread:.2g} of one minimum: no degenerate component is kept.")
        return Claim(source, statement, DOES_NOT_HOLD, evidence)
    U = np.asarray(lin.center)
    before, after = run.starts @ U, final @ U
    moved = float(np.max(np.abs(after - before)) / max(1.0, float(np.max(np.abs(before)))))
    spread, initial_spread = float(np.ptp(after[:, 0])), float(np.ptp(before[:, 0]))
    ok = loss <= ZERO_LOSS and moved <= SAME_POINT_RTOL and spread >= 0.5 * initial_spread
    evidence = (f"GD (lr {LR}, {int(traj.t[-1])} steps) from {len(run.starts)} starts: largest final loss {loss:.2g} "
                f"(zero means <= {ZERO_LOSS:g}); the components along the zero-eigenvalue direction moved by at most "
                f"{moved:.2g} (relative; threshold {SAME_POINT_RTOL:g}), so the minima reached spread over "
                f"{spread:.3g} along the valley (the starts over {initial_spread:.3g}).")
    return Claim(source, statement, verdict_of(ok), evidence)


def hyperbolic_claim(runs) -> Claim:
    """Section 4.2: any small weight decay makes the minimum hyperbolic and isolated."""
    statement = ("The degeneracy is eliminated by an arbitrarily small weight decay, which turns the flat valley into "
                 "a convex bowl: the equilibrium becomes hyperbolic (all eigenvalues of -H negative) and isolated, "
                 "so the Hartman-Grobman theorem applies.")
    parts, oks = [], []
    for run in runs:
        lin, traj = run.linearization, run.trajectory
        if not traj.success:
            return _inconclusive("Section 4.2", statement, _unfinished(traj))
        final = np.asarray(traj.w)[-1]
        spread = float(np.max(np.linalg.norm(final - run.w_star, axis=-1)) / max(float(np.linalg.norm(run.w_star)), 1e-300))
        lam_min = float(lin.hessian_eigenvalues[0])
        oks.append(lin.kind == "sink" and lin.is_hyperbolic and spread <= SAME_POINT_RTOL)
        parts.append(f"gamma = {run.weight_decay:g}: kind '{lin.kind}', smallest Hessian eigenvalue {lam_min:.4g}, "
                     f"GD from {len(run.starts)} starts ends within {spread:.2g} (relative) of the minimum")
    evidence = "; ".join(parts) + f" (threshold {SAME_POINT_RTOL:g})."
    return Claim("Section 4.2", statement, verdict_of(all(oks)), evidence)


def _valley_figure(out_dir, runs) -> str:
    """Top: the loss surfaces (``gf.plot.landscape``); bottom: phase portraits with the GD paths (``gf.plot.phase_portrait``)."""
    from .. import plot

    cols = len(runs)
    fig, axes = new_figure(2, cols, 3.8 * cols, 7.4, {(0, c): {"projection": "3d"} for c in range(cols)})
    for c, run in enumerate(runs):
        extent = (run.w_star[0] - 2.0, run.w_star[0] + 2.0, -2.0, 2.0)
        plot.landscape(run.objective, w_center=run.w_star, extent=extent, kind="surface", ax=axes[0, c], colorbar=False)
        axes[0, c].set_title("no weight decay: a flat valley" if run.weight_decay == 0
                             else f"weight decay {run.weight_decay:g}: a bowl")
        plot.phase_portrait(run.objective, w_center=run.w_star, extent=extent, ax=axes[1, c],
                            trajectories=run.trajectory, colorbar=False)
    return save_figure(fig, out_dir, "fig2.png")


@register("fig2", FIG2_TITLE, "Figure 2; Sections 4.1, 4.2")
def fig2(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 2: a two-parameter quadratic loss with a degenerate minimum, and the same loss with weight decay.

    :math:`L(w) = \\frac12 (w_1 - 1)^2` (a line through one point, :func:`valley_objective`): GD from a grid of
    starts, linearization and degeneracy at the minimum nearest 0; then :math:`L + \\frac{\\gamma}{2}\\|w\\|^2` for
    each of ``VALLEY_WEIGHT_DECAYS``.  Deterministic: ``seed`` is recorded but unused.
    """
    flat = valley_run(0.0, size)
    decayed = [valley_run(gamma, size) for gamma in VALLEY_WEIGHT_DECAYS]
    claims = (valley_degenerate_claim(flat), valley_descent_claim(flat), hyperbolic_claim(decayed))
    figure = _valley_figure(out_dir, [flat, decayed[0]])
    runs = [flat] + decayed
    setup = {
        "loss": f"L(w) = (1/2)(w1 + w2 x - y)^2 + (gamma/2)||w||^2 at the one point (x, y) = ({VALLEY_X:g}, "
                f"{VALLEY_Y:g}), i.e. (1/2)(w1 - 1)^2 + (gamma/2)||w||^2: FeatureRegression(Monomial(1)), square loss",
        "weight_decays": [0.0] + list(VALLEY_WEIGHT_DECAYS), "lr": LR,
        "starts": f"{len(flat.starts)} points on a {VALLEY_GRID[size]}x{VALLEY_GRID[size]} grid of half-width "
                  f"{VALLEY_EXTENT} around the minimum",
        "steps": {f"gamma={r.weight_decay:g}": int(r.trajectory.t[-1]) for r in runs},
        "seed": f"{seed} (unused: the experiment is deterministic)",
        "weight_decay_convention": "the paper writes L + gamma ||W||^2; gradflow's weight decay is L + (gamma/2)||w||^2",
    }
    measurements = {
        f"gamma={r.weight_decay:g}": {
            "w_star": r.w_star.tolist(), "hessian_eigenvalues": r.linearization.hessian_eigenvalues.tolist(),
            "kind": r.linearization.kind, "nullity": int(r.linearization.nullity),
            "final_data_loss_max": float(np.max(np.asarray(r.trajectory.metrics["train_loss"])[-1])),
            "final_distance_to_w_star_max": float(np.max(np.linalg.norm(np.asarray(r.trajectory.w)[-1] - r.w_star,
                                                                          axis=-1))),
        } for r in runs
    }
    arrays = {"starts": flat.starts, "final_flat": np.asarray(flat.trajectory.w)[-1],
              **{f"final_gamma_{r.weight_decay:g}": np.asarray(r.trajectory.w)[-1] for r in decayed}}
    notes = ("The valley is the simplest degenerate minimum: one data point fixes the intercept of a line and leaves "
             "its slope free. With weight decay gamma the minimum is (1/(1 + gamma), 0) and the Hessian's eigenvalues "
             "are 1 + gamma and gamma: the smallest is gamma itself, arbitrarily small but positive. Deterministic "
             "(no random numbers).")
    return ExperimentResult("fig2", FIG2_TITLE, size, seed, setup, measurements, claims, (figure,), arrays, notes)


# ============================================================================= Figure 4
FIG4_TITLE = "Perturbation protocol, degenerate polynomial regression (degree 30)"
SCALING_NOTE = ("Feature scaling: Legendre polynomials P_0..P_p (unnormalized, |P_j| <= 1 on [-1, 1]) instead of "
                "monomials; same model class (all polynomials of degree <= p), but at the Chebyshev nodes the Hessian "
                "Phi^T Phi / n is well conditioned: lambda_max (in 'What was run') is far below 2/0.2 = 10, so the "
                "paper's step size 0.2 is stable, and the smallest nonzero eigenvalue is large enough for GD to return "
                "to zero training loss within each 4,000-step phase (with monomials it is 5e-5 and GD would need "
                "millions of steps; with Legendre divided by sqrt(p + 1), 3e-3 and about 40,000 steps). The "
                "minimum-norm solution is the one of the Legendre coefficients. Training inputs at Chebyshev nodes "
                "(9 uniform points would all be zeros of sin(8 pi x)); initial weights N(0, 0.1^2), which the paper "
                "does not state.")


def _perturbation_figure(out_dir, filename: str, traj, summary: PerturbationSummary, title: str) -> str:
    fig, axes = new_figure(1, 4, 11.5, 2.9)
    _curves(axes[0, :3], traj)
    from .. import plot

    with plot.style():
        ax = axes[0, 3]
        m = summary.perturbations_before
        ax.plot(m, summary.null_norm2, "o", ms=3, label=r"mean $\|P_N w\|^2$")
        ax.plot(m, summary.null_norm2[0] + summary.walk_slope_predicted * m, "k--", lw=1,
                label=r"random walk $+\sigma^2 N m$")
        ax.set_xlabel("perturbations $m$")
        ax.set_ylabel("null-space norm squared")
        ax.legend(loc="upper left")
        fig.suptitle(title)
    return save_figure(fig, out_dir, filename)


@register("fig4", FIG4_TITLE, "Figure 4; Section 4.1")
def fig4(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 4: GD on the degree-30 sine regression with Gaussian perturbations (sigma 0.6) every 4,000 steps.

    Also runs degree ``WALK_COMPARISON_DEGREE`` (a smaller null space) with the same protocol, to compare the
    constant of the random walk of the null-space norm between two null-space dimensions.
    """
    problem = regression_problem(DEGENERATE_DEGREE)
    _, traj, _ = descent_runs(problem, size, seed, perturbed=True)
    setup = {**_run_setup(size, seed, perturbed=True), **problem.setup(),
             "comparison": f"the same protocol at degree {WALK_COMPARISON_DEGREE} (a smaller null space)"}
    curves = _mean_curves(traj)
    if not traj.success:
        claim = _inconclusive("Figure 4", "the perturbation protocol", _unfinished(traj))
        return ExperimentResult("fig4", FIG4_TITLE, size, seed, setup, {}, (claim,), (), curves, SCALING_NOTE)
    s = summarize_perturbation(problem, traj)
    other = regression_problem(WALK_COMPARISON_DEGREE)
    _, other_traj, _ = descent_runs(other, size, seed, perturbed=True)
    s_other = summarize_perturbation(other, other_traj) if other_traj.success else None
    if s_other is not None:
        constant = walk_constant_claim(s, problem.nullity, s_other, other.nullity)
    else:
        constant = _inconclusive("Section 4.1, prediction 3", "the constant of the sqrt(m) law",
                                 _unfinished(other_traj))
    claims = (degeneracy_claim(problem, True, "Figure 4 caption; Lemma 1"),
              train_returns_claim(s, True, "Figure 4; Section 4.1, prediction 1"),
              components_claim(s, problem.nullity), norm_growth_claim(s), test_growth_claim(s),
              random_walk_claim(s), constant)
    measurements = {
        "nullity": problem.nullity, "phase_ends": int(len(s.phase_end_t)),
        "perturbations": int(s.perturbations_before[-1]),
        "train_loss_phase_end_max": float(np.max(s.train_loss)), "train_loss_after_first_kick": s.train_loss_after_kick,
        "norm_first": float(s.norm[0]), "norm_final": float(s.norm[-1]), "norm_ratio": s.norm_ratio,
        "test_loss_first": float(s.test_loss[0]), "test_loss_final": float(s.test_loss[-1]), "test_ratio": s.test_ratio,
        "walk_slope": s.walk_slope, "walk_slope_predicted": s.walk_slope_predicted, "walk_exponent": s.walk_exponent,
        "range_deviation": s.range_deviation, "null_deviation": s.null_deviation,
        "comparison_nullity": other.nullity,
        "comparison_walk_slope": None if s_other is None else s_other.walk_slope,
        "comparison_walk_slope_predicted": None if s_other is None else s_other.walk_slope_predicted,
    }
    figure = _perturbation_figure(out_dir, "fig4.png", traj, s,
                                  f"Figure 4: degree {DEGENERATE_DEGREE}, noise N(0, {SIGMA}^2) every {EVERY} steps, "
                                  f"{RUNS[size]['repetitions']} repetitions")
    arrays = {**curves, "phase_end_t": s.phase_end_t, "phase_end_null_norm2": s.null_norm2,
              "phase_end_norm": s.norm, "phase_end_test_loss": s.test_loss, "phase_end_train_loss": s.train_loss}
    return ExperimentResult("fig4", FIG4_TITLE, size, seed, setup, measurements, claims, (figure,), arrays,
                            SCALING_NOTE)


# ============================================================================= Figure 15
FIG15_TITLE = "Degenerate polynomial regression without perturbations (degree 30): overfitting, early stopping"


@register("fig15", FIG15_TITLE, "Figure 15; Section 4.1")
def fig15(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 15: GD on the degree-30 sine regression without perturbations; where the test loss is smallest; the limit."""
    problem = regression_problem(DEGENERATE_DEGREE)
    W0, long, early = descent_runs(problem, size, seed, perturbed=False)
    setup = {**_run_setup(size, seed, perturbed=False), **problem.setup(),
             "from_zero": "one more run from w0 = 0, for the minimum-norm limit"}
    curves = {**_mean_curves(long), **_mean_curves(early, "early_")}
    failed = _unfinished(long) or _unfinished(early)
    if failed:
        claim = _inconclusive("Figure 15", "overfitting of the test loss", failed)
        return ExperimentResult("fig15", FIG15_TITLE, size, seed, setup, {}, (claim,), (), curves, SCALING_NOTE)
    o = overfitting(long, early)
    from_zero = gd(problem.objective, np.zeros(problem.size), lr=LR, steps=RUNS[size]["steps"],
                   record_every=RUNS[size]["steps"], method="auto")
    final = np.asarray(long.w)[-1]
    ridge = early_stopping(problem.objective, steps=RUNS[size]["steps"])
    claims = (degeneracy_claim(problem, True, "Figure 15 caption; Lemma 1"), overfit_claim(o),
              ridge_claim(ridge), limit_claim(problem, W0, final, np.asarray(from_zero.w)[-1]))
    measurements = {
        "nullity": problem.nullity, "test_loss_initial": o.test_initial, "test_loss_min": o.test_min,
        "t_min": o.t_min, "test_loss_final": o.test_final, "overfit_excess": o.excess,
        "train_loss_final": float(np.asarray(long.metrics["train_loss"])[-1].mean()),
        "norm_final": float(np.asarray(long.metrics["norm"])[-1].mean()),
        "min_norm_solution_norm": float(np.linalg.norm(problem.w_min_norm)),
        "distance_to_min_norm_from_random_starts": min_norm_distance(problem, final),
        "distance_to_min_norm_from_zero": min_norm_distance(problem, np.asarray(from_zero.w)[-1]),
        "from_zero_best_t": ridge.best_t, "from_zero_overfit": ridge.overfit,
        "ridge_filter_gap": ridge.filter_gap, "ridge_best_lambda": ridge.ridge_best_lambda,
    }
    fig, axes = new_figure(1, 3, 8.4, 2.9)
    _curves(axes[0], _merge(early, long), log_x=True)
    axes[0, 1].axvline(o.t_min, color="0.5", lw=0.8, ls=":")
    fig.suptitle(f"Figure 15: degree {DEGENERATE_DEGREE}, no perturbation, {RUNS[size]['repetitions']} repetitions "
                 f"(test minimum at step {o.t_min})")
    figure = save_figure(fig, out_dir, "fig15.png")
    return ExperimentResult("fig15", FIG15_TITLE, size, seed, setup, measurements, claims, (figure,), curves,
                            SCALING_NOTE)


# ============================================================================= Figure 16
FIG16_TITLE = "Nondegenerate polynomial regression (degree 4), without and with perturbations"


@register("fig16", FIG16_TITLE, "Figure 16; Section 4.1")
def fig16(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 16: degree 4 (5 parameters, 9 points): no zero eigenvalue; the test loss without perturbations (left,
    compared with degree 30) and the perturbation protocol (right)."""
    problem = regression_problem(NONDEGENERATE_DEGREE)
    _, long, early = descent_runs(problem, size, seed, perturbed=False)
    _, kicked, _ = descent_runs(problem, size, seed, perturbed=True)
    setup = {**_run_setup(size, seed, perturbed=False), **problem.setup(),
             "perturbation_right": f"N(0, {SIGMA}^2) added to every weight every {EVERY} steps (Perturbation seed {seed})",
             "comparison": f"the unperturbed runs at degree {DEGENERATE_DEGREE} (Figure 15), same starts' seed"}
    curves = {**_mean_curves(long), **_mean_curves(early, "early_"), **_mean_curves(kicked, "perturbed_")}
    failed = _unfinished(long) or _unfinished(early) or _unfinished(kicked)
    if failed:
        claim = _inconclusive("Figure 16", "the nondegenerate case", failed)
        return ExperimentResult("fig16", FIG16_TITLE, size, seed, setup, {}, (claim,), (), curves, SCALING_NOTE)
    o = overfitting(long, early)
    degenerate = regression_problem(DEGENERATE_DEGREE)
    _, d_long, d_early = descent_runs(degenerate, size, seed, perturbed=False)
    o_degenerate = overfitting(d_long, d_early) if d_long.success and d_early.success else None
    s = summarize_perturbation(problem, kicked)
    from_zero = early_stopping(problem.objective, steps=RUNS[size]["steps"])
    claims = (degeneracy_claim(problem, False, "Figure 16 caption"), no_overfit_claim(o, o_degenerate, from_zero),
              train_returns_claim(s, False, "Figure 16 (right); Section 4.1, prediction 1"), norm_flat_claim(s))
    measurements = {
        "nullity": problem.nullity, "min_train_loss": problem.min_train_loss,
        "test_loss_initial": o.test_initial, "test_loss_min": o.test_min, "t_min": o.t_min,
        "test_loss_final": o.test_final, "overfit_excess": o.excess,
        "degenerate_overfit_excess": None if o_degenerate is None else o_degenerate.excess,
        "from_zero_best_t": from_zero.best_t, "from_zero_overfit": from_zero.overfit,
        "perturbed_norm_first": float(s.norm[0]), "perturbed_norm_final": float(s.norm[-1]),
        "perturbed_norm_ratio": s.norm_ratio, "perturbed_train_loss_excess": s.train_loss_excess,
        "perturbed_train_loss_after_first_kick": s.train_loss_after_kick,
    }
    fig, axes = new_figure(2, 3, 8.4, 5.6)
    runs = {f"degree {NONDEGENERATE_DEGREE}": _merge(early, long)}
    if o_degenerate is not None:
        runs[f"degree {DEGENERATE_DEGREE}"] = _merge(d_early, d_long)
    _curves(axes[0], runs, log_x=True)
    _curves(axes[1], {f"degree {NONDEGENERATE_DEGREE}, perturbed every {EVERY}": kicked})
    fig.suptitle(f"Figure 16: degree {NONDEGENERATE_DEGREE}; top: no perturbation (degree {DEGENERATE_DEGREE} for "
                 f"comparison), bottom: perturbations; {RUNS[size]['repetitions']} repetitions")
    figure = save_figure(fig, out_dir, "fig16.png")
    notes = (SCALING_NOTE + " With 5 parameters and 9 training points the least-squares minimum has training loss "
             f"{problem.min_train_loss:.4g}, not zero: the caption's 'converge to zero training error' is read as "
             "'return to the minimum'. Weights are recorded before each perturbation, so the kicks do not show in the "
             "bottom curves: GD undoes them within a few hundred steps.")
    return ExperimentResult("fig16", FIG16_TITLE, size, seed, setup, measurements, claims, (figure,), curves, notes)


# ============================================================================= Figure 13
FIG13_TITLE = "Minimum-norm solutions against the number of parameters (degrees 1..300)"


def min_norm_curve(degrees, n_train: int = MIN_NORM_N_TRAIN, n_test: int = MIN_NORM_N_TEST):
    """Train and test loss of the minimum-norm least-squares solution :math:`\\Phi^+ y` for each degree.

    Legendre features at ``n_train`` Chebyshev nodes, ``n_test`` uniform test points; the solution is
    ``numpy.linalg.lstsq`` (SVD: the minimum-norm solution of the underdetermined systems). Returns
    ``(train, test, norm)``, arrays of shape ``(len(degrees),)``; losses are :math:`\\frac{1}{2n}\\|\\Phi w - y\\|^2`.
    """
    data = sine(n_train=n_train, n_test=n_test, frequency=FREQUENCY, nodes=NODES)
    X, y, Xt, yt = (np.asarray(a) for a in (data.X, data.y, data.X_test, data.y_test))
    p_max = max(degrees)
    Phi_all, Phit_all = Legendre(p_max)(X), Legendre(p_max)(Xt)   # column j is P_j, whatever the degree
    train, test, norm = [], [], []
    for p in degrees:
        Phi, Phit = Phi_all[:, :p + 1], Phit_all[:, :p + 1]
        w = np.linalg.lstsq(Phi, y, rcond=None)[0]
        train.append(0.5 * np.mean((Phi @ w - y) ** 2))
        test.append(0.5 * np.mean((Phit @ w - yt) ** 2))
        norm.append(np.linalg.norm(w))
    return np.array(train), np.array(test), np.array(norm)


def eventual_overfit_claim(degrees, test, zero_loss: float) -> Claim:
    """Figure 13: the minimum-norm solution eventually overfits; ``zero_loss`` is the zero predictor's test loss."""
    statement = ("The minimum-norm solution eventually overfits: its test loss rises again as the number of "
                 "parameters grows.")
    degrees, test = np.asarray(degrees), np.asarray(test)
    i = int(np.argmin(test))
    factor = float(test[-1] / test[i]) if test[i] > 0 else math.inf
    relative = float(test[-1] / zero_loss)
    ok = i < len(test) - 1 and factor >= EVENTUAL_OVERFIT_FACTOR and relative >= EVENTUAL_OVERFIT_FLOOR
    evidence = (f"smallest test loss {test[i]:.3g} at degree {degrees[i]} ({degrees[i] + 1} parameters); at degree "
                f"{degrees[-1]} ({degrees[-1] + 1} parameters) it is {test[-1]:.3g}, {100 * relative:.3g}% of the "
                f"zero predictor's test loss {zero_loss:.3g} (overfits means >= {EVENTUAL_OVERFIT_FACTOR:g} times the "
                f"minimum and >= {100 * EVENTUAL_OVERFIT_FLOOR:g}% of the zero predictor's loss).")
    return Claim("Figure 13", statement, verdict_of(ok), evidence)


def min_norm_gd_claim(reports: dict) -> Claim:
    """Figure 13 / Section 3: the minimum-norm solution is what GD from zero converges to.

    ``reports`` maps degrees to :func:`gradflow.checks.min_norm` reports; the verdict combines theirs.
    """
    statement = ("The solution of the overparametrized system is the minimum-norm solution, the limit of gradient "
                 "descent from zero under the square loss.")
    verdict = combine(r.verdict for r in reports.values())
    evidence = ("gradflow.checks.min_norm, GD from w0 = 0 against the pseudoinverse solution, relative distance: "
                + ", ".join(f"degree {p}: {r.distance:.2g} ({r.verdict})" for p, r in reports.items()) + ". "
                + " ".join(f"Degree {p}: {r.message}" for p, r in reports.items() if r.verdict != HOLDS))
    return Claim("Figure 13; Section 3", statement, verdict, evidence.strip())


@register("fig13", FIG13_TITLE, "Figure 13")
def fig13(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 13: test loss of the minimum-norm solution for polynomial degrees up to 300 on 76 Chebyshev nodes.

    Deterministic: ``seed`` is recorded but unused.
    """
    degrees = MIN_NORM_DEGREES[size]
    train, test, norm = min_norm_curve(degrees)
    reports = {p: min_norm(regression_problem(p, n_train=MIN_NORM_N_TRAIN, n_test=MIN_NORM_N_TEST).objective,
                           lr=LR, steps=MIN_NORM_GD_STEPS) for p in MIN_NORM_GD_DEGREES}
    zero_loss = 0.5 * float(np.mean(np.asarray(sine(n_train=MIN_NORM_N_TRAIN, n_test=MIN_NORM_N_TEST,
                                                    frequency=FREQUENCY, nodes=NODES).y_test) ** 2))
    claims = (eventual_overfit_claim(degrees, test, zero_loss), min_norm_gd_claim(reports))
    params = np.asarray(degrees) + 1
    over = params >= MIN_NORM_N_TRAIN
    from .. import plot

    fig, axes = new_figure(1, 1, 5.2, 3.4)
    with plot.style():
        ax = axes[0, 0]
        floor = 1e-33
        ax.semilogy(params, np.maximum(test, floor), color=plot.PALETTE[0], label="test loss")
        ax.semilogy(params, np.maximum(train, floor), color=plot.PALETTE[1], label="train loss", alpha=0.8)
        ax.axvline(MIN_NORM_N_TRAIN, color="0.5", ls="--", lw=1, label=f"n = {MIN_NORM_N_TRAIN} training points")
        ax.set_xlabel("number of parameters (degree + 1)")
        ax.set_ylabel(f"square loss (floored at {floor:g})")
        ax.set_title("Figure 13: the minimum-norm solution")
        ax.legend(loc="center right")
    figure = save_figure(fig, out_dir, "fig13.png")
    i = int(np.argmin(test))
    setup = {"degrees": f"{degrees[0]}..{degrees[-1]} ({len(degrees)} degrees)", "n_train": MIN_NORM_N_TRAIN,
             "n_test": MIN_NORM_N_TEST, "target": f"sin(2 pi {FREQUENCY} x) on [-1, 1]",
             "nodes": "Chebyshev (training), uniform (test)", "features": "Legendre P_0..P_p, unnormalized",
             "solver": "numpy.linalg.lstsq (the minimum-norm least-squares solution)",
             "gd_check": {"degrees": list(MIN_NORM_GD_DEGREES), "lr": LR, "steps": MIN_NORM_GD_STEPS, "w0": 0},
             "seed": f"{seed} (unused: the experiment is deterministic)"}
    measurements = {"test_loss_min": float(test[i]), "degree_at_min": int(degrees[i]),
                    "test_loss_at_max_degree": float(test[-1]), "max_degree": int(degrees[-1]),
                    "train_loss_max_overparametrized": float(np.max(train[over])) if over.any() else None,
                    "gd_vs_min_norm": {str(p): r.distance for p, r in reports.items()}}
    arrays = {"degrees": np.asarray(degrees), "train_loss": train, "test_loss": test, "norm": norm}
    notes = ("The noiseless target is fitted to rounding error by degrees near 60; the minimum-norm interpolant of "
             "higher degree then drifts away from it between the nodes. The minimum norm is that of the Legendre "
             "coefficients (another basis gives another minimum-norm solution). Deterministic (no random numbers).")
    return ExperimentResult("fig13", FIG13_TITLE, size, seed, setup, measurements, claims, (figure,), arrays, notes)
