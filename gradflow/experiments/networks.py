r"""The paper's network experiments: Figures 1, 3, 5, 6, 8, 9, 10, 11 and Theorem 3.

Each experiment is registered with :func:`~gradflow.experiments._core.register`
and is a function ``run(size, seed, out_dir) -> ExperimentResult``:

============  ==========================================================================================
``fig8``      deep linear network :math:`W_2 W_1 x` (d = 31 with the bias, 2 hidden units, teacher with
              1 hidden unit, n = 30, 32 test points): test error against GD iterations and against
              :math:`1/\lambda` of explicitly regularized solutions (Figure 8, SI 6.2.2)
``fig1``      ReLU network on digits: classification error against the training-set size, true and
              scrambled labels (Figure 1, Section 3)
``fig10``     the same with the degree-10 polynomial activation (Figure 10, SI 6.4)
``fig9``      ReLU network against the same network with the degree-10 polynomial activation: training
              and test error along GD (Figure 9, SI 6.4)
``fig11``     width sweep at fixed n, parameters from below to far above n: test cross-entropy and
              classification error, ReLU (Figures 5, 6) and polynomial (Figure 11)
``fig3``      the perturbation protocol on a deep network: train to zero training error, then add noise
              of 1/4 of each layer's weight standard deviation every ``k`` steps with GD in between
              (Figure 3, Section 4.1), against an unperturbed control (Figure 14)
``theorem3``  zero eigenvalues of the Hessian at zero-loss minima of several architectures, against
              Theorem 3's condition and the :math:`P - n d'` count (SI 6.2.4, Lemma 1)
============  ==========================================================================================

**What replaced CIFAR.**  CIFAR-10 is not available here.  Figures 1, 3, 5, 6,
9, 10 and 11 are rebuilt on scikit-learn's bundled 8x8 digits
(:func:`gradflow.data.digits`, 1797 images, 10 classes, pixels scaled to
[0, 1]) with fully connected networks (:class:`gradflow.models.MLP`) in place
of the paper's all-convolutional networks, trained with full-batch gradient
descent (:func:`gradflow.gd`) on the cross-entropy loss, without data
augmentation or regularization, as in the paper.  Every result says so in its
``notes``.

**The polynomial activation.**  The paper replaces each ReLU by a degree-10
polynomial approximation "good near 0" (Figure 9).  With
:func:`gradflow.activations.relu_polynomial`'s default interval [-2, 2] the
digits networks diverge within a few hundred GD steps: the pre-activations
leave the interval, where :math:`0.0064\,z^{10}` takes over (measured: the
largest pre-activation passed 2.5 after about 110 steps at ``lr = 0.05`` and
the loss became non-finite 10 steps later).  On [-8, 8] some runs still
diverged after reaching zero training error (second-layer pre-activations
reached 12.8 before the loss blew up).  The experiments therefore use the
degree-10 least-squares Chebyshev fit of ReLU on :data:`POLY_INTERVAL` =
[-12, 12] (largest error 0.35, at the kink; none of 16 test runs diverged);
it is still a polynomial network of degree 10 per layer, and each result
reports the largest pre-activation its networks reached, so a reader can see
whether they stayed where the polynomial is close to ReLU.

**Initialization.**  The paper does not give it.  The digits networks start
from :func:`fan_in_init`: weights :math:`\mathcal N(0, 1/N_{l-1})` (LeCun),
biases 0.  The deep linear network of Figure 8 starts from
:math:`\mathcal N(0, 10^{-6})` (``Objective.init(scale=1e-3)``): from a small
start, GD on :math:`W_2 W_1` converges close to the minimum-norm interpolant,
the limit of the regularized solutions as :math:`\lambda \to 0`.

Verdicts come from measured numbers against the thresholds defined below as
module constants; each claim's evidence states the numbers and the threshold.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import scipy.optimize
import scipy.stats

from .. import activations as _activations
from .. import data as _data
from .._validation import check_bool, check_int, check_seed, describe
from .._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, verdict_of
from ..data import Dataset
from ..descent import Perturbation, gd
from ..linearize import NotAnEquilibriumWarning, degeneracy, find_equilibrium, linearize
from ..models import MLP, DeepLinear
from ..objective import Objective
from ._core import Claim, ExperimentResult, register, save_figure

__all__ = [
    "fig1", "fig3", "fig8", "fig9", "fig10", "fig11", "theorem3",
    "fan_in_init", "digits_subset", "polynomial_activation", "norm_penalized_solution", "max_preactivation",
    "size_sweep_claims", "relu_vs_polynomial_claim", "width_sweep_claims", "PerturbationRounds",
    "perturbation_rounds", "returns_claim", "growth_of_test_loss_claim", "norm_growth_claim", "Fig8Summary",
    "implicit_regularization_claims", "global_minimum_claim", "Architecture", "Theorem3Row", "theorem3_row", "theorem3_claims",
    "zero_tolerance",
]

# ==================================================================== the digits set-up (Figures 1, 3, 5, 6, 9-11)
#: Step size of full-batch GD on the digits networks (stable for ReLU and the polynomial activation, measured).
DIGITS_LR = 0.1
#: Gain of :func:`fan_in_init`: weights :math:`\mathcal N(0, \text{gain}^2 / N_{l-1})`.
DIGITS_INIT_GAIN = 1.0
#: Degree of the polynomial approximation of ReLU (the paper's Figure 9).
POLY_DEGREE = 10
#: Interval of that approximation (see the module notes: the default [-2, 2] diverges on these networks).
POLY_INTERVAL = (-12.0, 12.0)
#: Chance level of the 10-class digits problem.
CHANCE_ERROR = 0.9

# ============================================================================ thresholds of the verdicts
#: A classification error at most this counts as zero training error.
ZERO_ERROR = 0.0
#: Figure 1: the test error at the largest n must be below (1 - this) times the test error at the smallest n ...
SIZE_MIN_DROP = 0.25
#: ... and the Spearman correlation of test error with n at most this (a falling curve).
SIZE_MAX_SPEARMAN = -0.8
#: Figure 1 (right): scrambled labels count as fitted when the training error is at most this ...
FIT_ERROR = 0.01
#: ... and as not fitted (the claim does not hold) when it is at least this.
NOT_FITTED_ERROR = 0.5
#: Figure 1 (right): with scrambled labels the test error must stay at least this (chance is 0.9).
CHANCE_FLOOR = 0.75
#: Figure 9: ReLU and polynomial networks are "close" when their training and test errors differ by at most this.
CLOSE_ERROR = 0.03
#: Figure 5: the test cross-entropy "overfits" when its value at the widest network exceeds its minimum over
#: the sweep by this fraction.
LOSS_OVERFIT = 0.10
#: Figures 6, 11: the test error "does not overfit" when its value at the widest network is within this of its
#: minimum over the networks with P >= n.
ERROR_OVERFIT_TOL = 0.02
#: Figure 3: the training loss has "returned" when it is at most this factor times its value before the first kick.
RETURN_FACTOR = 2.0
#: Figure 3: the kicks must raise the training loss at least this factor above its level before the first kick,
#: or the protocol tested nothing.
KICK_MIN_FACTOR = 2.0
#: Figure 3: the test loss "grows" when its final value exceeds the value before the first kick by this fraction
#: (and the unperturbed control's final value).
TEST_GROWTH = 0.10
#: Figure 3: the weight norm "grows" when its final value exceeds the value before the first kick by this fraction
#: (and the control's) ...
NORM_GROWTH = 0.02
#: ... and it rose over at least this fraction of the rounds.
NORM_RISE_FRACTION = 0.8
#: Figure 8: two test errors "agree" when they differ by at most this fraction of the initial test error
#: (the scale of the paper's plot).
FIG8_AGREE = 0.01
#: Figure 8: the curves "fall" when their last value is at most this fraction of their first.
FIG8_DROP = 0.05
#: Figure 8: a regularized solution is the global minimum when its loss exceeds the closed-form minimum value by at
#: most this fraction.
GLOBAL_MIN_RTOL = 1e-8
#: Figure 8: Newton iterations allowed per regularized minimum (at lambda = 1e-6 the damped iteration needs about 130:
#: the valley is flat to order lambda).
FIG8_NEWTON_MAX_ITER = 500
#: Theorem 3: Weyl margin. At a numerical minimum with residual r, ``H = J^T J / n + E``; eigenvalues of H within
#: this factor times ``||E||_2`` of zero count as zero (see :func:`zero_tolerance`).
WEYL_SAFETY = 10.0
#: Theorem 3: a data loss at most this counts as a zero-loss minimum.  Far below ``gradflow.degeneracy``'s 1e-10:
#: the residuals (about sqrt(2 n L)) set the Weyl threshold of :func:`zero_tolerance`, which must stay far below
#: the smallest nonzero eigenvalue; Newton reaches 1e-26 to 1e-34 where it converges.
ZERO_LOSS = 1e-20


# ============================================================================ shared helpers
def polynomial_activation() -> _activations.Polynomial:
    """The degree-:data:`POLY_DEGREE` Chebyshev fit of ReLU on :data:`POLY_INTERVAL` (Figure 9's activation)."""
    return _activations.relu_polynomial(POLY_DEGREE, interval=POLY_INTERVAL)


def _activation(name: str):
    return "relu" if name == "relu" else polynomial_activation()


def fan_in_init(obj: Objective, seeds, gain: float = DIGITS_INIT_GAIN) -> np.ndarray:
    r"""Initial weights for a batch of runs: :math:`W_l \sim \mathcal N(0, \text{gain}^2/N_{l-1})`, biases 0.

    Parameters
    ----------
    obj : Objective
        Its model's ``parameter_shapes`` give the layers (2-D: a weight matrix
        :math:`(N_l, N_{l-1})`; 1-D: a bias).
    seeds : sequence of int or of sequences of int
        One ``numpy.random.default_rng(seed)`` per run.
    gain : float, default ``DIGITS_INIT_GAIN`` = 1.0

    Returns
    -------
    ndarray, shape (len(seeds), P)
    """
    if not isinstance(obj, Objective):
        raise TypeError(f"`obj` must be a gradflow.Objective; got {describe(obj)}.")
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        arrays = [gain * rng.standard_normal(shape) / math.sqrt(shape[1]) if len(shape) == 2 else np.zeros(shape)
                  for shape in obj.model.parameter_shapes]
        rows.append(np.asarray(obj.flatten(arrays), dtype=np.float64))
    if not rows:
        raise ValueError("`seeds` must hold at least one seed; got an empty sequence.")
    return np.stack(rows)


def digits_subset(base: Dataset, n: int, scrambled: bool, seed: int) -> Dataset:
    """The first ``n`` training rows of ``base`` with its whole test set; ``scrambled`` permutes their labels.

    All the sizes of a sweep share one test set.  The scrambled labels are a
    seeded permutation of the true ones (same class counts, no relation to the
    images), as in Figure 1 (right); the test labels stay true.
    """
    if not isinstance(base, Dataset) or not base.has_test:
        raise TypeError("`base` must be a gradflow.Dataset with a test set, e.g. gf.data.digits(); "
                        f"got {describe(base)}.")
    n = check_int("n", n, minimum=1, maximum=base.n)
    scrambled = check_bool("scrambled", scrambled)
    seed = check_seed(seed)
    X, y = np.asarray(base.X)[:n], np.asarray(base.y)[:n]
    if scrambled:
        y = np.random.default_rng([seed, n, 1]).permutation(y)
    return Dataset(X, y, base.X_test, base.y_test, info={"n": n, "scrambled": bool(scrambled)})


def _digits_base(n_train: int, n_test: int, seed: int) -> Dataset:
    return _data.digits(n_train=n_train, n_test=n_test, seed=seed)


def _mlp_objective(data: Dataset, hidden, activation) -> Objective:
    widths = [data.d, *hidden, 10]
    return Objective(MLP(widths, activation=activation, bias=True), data, loss="cross_entropy")


def _run_seeds(seed: int, repetitions: int, stream: int = 0):
    return [[seed, stream, r] for r in range(repetitions)]


def _last(traj, name: str) -> np.ndarray:
    """The metric at the last recorded step, one value per run, shape (m,)."""
    values = np.asarray(traj.metrics[name] if name != "loss" else traj.loss, dtype=np.float64)
    return np.atleast_1d(values[-1]) if values.size else np.full(1, np.nan)


def _first_zero_step(traj) -> list:
    """Per run, the first recorded step with zero training error (None when never reached)."""
    errors = np.asarray(traj.metrics["train_error"])
    errors = errors.reshape(errors.shape[0], -1)
    out = []
    for r in range(errors.shape[1]):
        hit = np.flatnonzero(errors[:, r] <= ZERO_ERROR)
        out.append(int(traj.t[hit[0]]) if hit.size else None)
    return out


def _status(traj) -> str:
    return traj.status if traj.success else f"{traj.status}: {traj.message}"


def _spearman(x, y) -> float:
    if len(x) < 2 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


def _curves(names, *values) -> list:
    """The per-size (or per-width) numbers of a verdict function as float arrays of one common length."""
    arrays = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
    for name, a in zip(names, arrays):
        if a.size != arrays[0].size or a.size == 0:
            raise ValueError(f"`{name}` must hold one number per entry of `{names[0]}` ({arrays[0].size}); "
                             f"got {a.size}.")
    return arrays


def _fmt(values, digits: int = 3) -> str:
    return "[" + ", ".join(f"{float(v):.{digits}g}" for v in np.atleast_1d(values)) + "]"


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _null_formatter():
    import matplotlib.ticker

    return matplotlib.ticker.NullFormatter()


def _plot():
    from .. import plot

    return plot


# ============================================================================ fig8: deep linear network
@dataclasses.dataclass(frozen=True)
class Fig8Setup:
    """Sizes of the Figure 8 experiment (``"full"`` is the caption's set-up)."""

    n: int = 30
    n_test: int = 32
    d: int = 31
    hidden: int = 2
    teacher_hidden: int = 1
    repetitions: int = 10
    lr: float = 0.1
    steps: int = 50_000
    record_every: int = 50
    init_scale: float = 1e-3
    reg_gd_steps: int = 2000
    lambdas: tuple = tuple(float(v) for v in np.logspace(1, -6, 15))


#: Figure 8 set-ups by size.
FIG8 = {
    "quick": Fig8Setup(repetitions=3, steps=12_000, record_every=50,
                       lambdas=tuple(float(v) for v in np.logspace(0, -5, 6))),
    "full": Fig8Setup(),
}


def norm_penalized_solution(X, y, lam: float) -> np.ndarray:
    r"""The minimizer of :math:`\frac{1}{2n}\|X\beta - y\|^2 + \lambda\|\beta\|_2`, in closed form up to a scalar root.

    For a deep linear network :math:`f(x) = W_2 W_1 x` with one output,
    :math:`\min\{\tfrac12(\|W_1\|_F^2 + \|W_2\|_F^2) : W_2 W_1 = \beta^\top\} = \|\beta\|_2`
    (the nuclear norm of a row vector), so the weight-decayed loss
    :math:`L + \frac{\lambda}{2}\|w\|^2` has the same minimum value and product as
    the paper's :math:`L + \lambda\|W_2 W_1\|` (Figure 8).  Stationarity gives
    :math:`\beta = (A + \mu I)^{-1} b` with :math:`A = X^\top X/n`,
    :math:`b = X^\top y/n` and :math:`\mu = \lambda/\|\beta\|`, so
    :math:`s = \|\beta\|` solves :math:`\|(A + \tfrac{\lambda}{s} I)^{-1} b\| = s`
    (one root, found by Brent's method); :math:`\beta = 0` when
    :math:`\|b\| \le \lambda`.

    Parameters
    ----------
    X : array, shape (n, d)
    y : array, shape (n,)
    lam : float, > 0

    Returns
    -------
    ndarray, shape (d,)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"`X` must be (n, d) and `y` (n,); got shapes {X.shape} and {y.shape}.")
    if not (isinstance(lam, (int, float)) and lam > 0 and math.isfinite(lam)):
        raise ValueError(f"`lam` must be a positive finite number; got {lam!r}.")
    n = X.shape[0]
    a, V = np.linalg.eigh(X.T @ X / n)
    a = np.maximum(a, 0.0)
    c = V.T @ (X.T @ y / n)
    if np.linalg.norm(c) <= lam:
        return np.zeros(X.shape[1])

    norm_c = float(np.linalg.norm(c))

    def excess(mu):
        # mu ||(A + mu I)^{-1} b|| - lam: increasing in mu, from about -lam at mu = 0 to ||b|| - lam > 0.
        return float(np.linalg.norm(c * (mu / (a + mu)))) - lam

    upper = 2.0 * lam * max(float(a.max()), 1.0) / (norm_c - lam) + lam
    mu = scipy.optimize.brentq(excess, 1e-300, upper, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000)
    return V @ (c / (a + mu))


@dataclasses.dataclass(frozen=True)
class Fig8Summary:
    """The numbers the Figure 8 verdicts are decided from.

    Attributes
    ----------
    t : ndarray, shape (T,)
        GD iterations recorded.
    gd_test : ndarray, shape (T,)
        Mean test error of GD over the repetitions.
    lambdas : ndarray, shape (L,)
        Regularization parameters, any order.
    reg_test : ndarray, shape (L,)
        Mean test error of the regularized solutions.
    min_norm_test : float
        Test error of the minimum-norm interpolant (``pinv(X) y``), the limit of both protocols.
    zero_test : float
        Test error of the zero predictor (the regularized solution for large :math:`\\lambda`).
    """

    t: np.ndarray
    gd_test: np.ndarray
    lambdas: np.ndarray
    reg_test: np.ndarray
    min_norm_test: float
    zero_test: float

    def matching_iterations(self) -> np.ndarray:
        """For each :math:`\\lambda` (sorted by increasing :math:`1/\\lambda`), the first GD iteration whose test error
        is at most the regularized one (-1 when GD never gets there)."""
        order = np.argsort(1.0 / self.lambdas)
        out = []
        for e in self.reg_test[order]:
            hit = np.flatnonzero(self.gd_test <= e)
            out.append(int(self.t[hit[0]]) if hit.size else -1)
        return np.asarray(out)


def implicit_regularization_claims(s: Fig8Summary) -> tuple:
    r"""The three claims of Figure 8, decided from a :class:`Fig8Summary`.

    * GD: the test error falls with the iterations (last value at most
      :data:`FIG8_DROP` times the first) to the minimum-norm limit (within
      :data:`FIG8_AGREE` times the initial test error).
    * Regularization: the test error falls as :math:`1/\lambda` grows
      (Spearman correlation with :math:`1/\lambda` at most :data:`SIZE_MAX_SPEARMAN`,
      last at most :data:`FIG8_DROP` times the first) to the same limit.
    * Iterations play the role of :math:`1/\lambda`: both protocols start
      from the same level (the zero predictor, within :data:`FIG8_AGREE`
      relative), end at the same limit, and the GD iteration matching each
      regularized solution's test error grows with :math:`1/\lambda`.
    """
    e0 = float(s.gd_test[0])
    scale = max(e0, float(s.zero_test))
    agree = FIG8_AGREE * scale
    gd_end = float(s.gd_test[-1])
    order = np.argsort(1.0 / s.lambdas)
    reg = s.reg_test[order]
    inv = 1.0 / s.lambdas[order]
    gd_falls = gd_end <= FIG8_DROP * e0
    gd_limit = abs(gd_end - s.min_norm_test) <= agree
    c1 = Claim(
        "Figure 8 (left); SI 6.2.2",
        "With lambda = 0, the test error of the deep linear network W2 W1 x falls with the number of iterations and "
        "converges (implicit regularization of gradient descent).",
        verdict_of(gd_falls and gd_limit),
        f"mean test error {e0:.4g} at iteration 0 and {gd_end:.4g} at iteration {int(s.t[-1])} "
        f"(ratio {gd_end / e0:.3g}; falls if <= {FIG8_DROP}); minimum-norm interpolant {s.min_norm_test:.4g} "
        f"(|difference| {abs(gd_end - s.min_norm_test):.3g}; agrees if <= {FIG8_AGREE} x {scale:.4g} = {agree:.3g}).")
    rho = _spearman(inv, reg)
    reg_falls = bool(rho <= SIZE_MAX_SPEARMAN) and reg[-1] <= FIG8_DROP * reg[0]
    reg_limit = abs(float(reg[-1]) - s.min_norm_test) <= agree
    c2 = Claim(
        "Figure 8 (right); SI 6.2.2",
        "The solutions of (1/n) sum V + lambda ||W2 W1||, optimized to convergence, have a test error that falls as "
        "1/lambda grows.",
        verdict_of(reg_falls and reg_limit),
        f"test error {_fmt(reg, 4)} at 1/lambda = {_fmt(inv, 3)}; Spearman(1/lambda, error) = {rho:.3f} "
        f"(falls if <= {SIZE_MAX_SPEARMAN} and last/first <= {FIG8_DROP}: ratio {float(reg[-1]) / float(reg[0]):.3g}); "
        f"last vs minimum-norm {s.min_norm_test:.4g}: |difference| {abs(float(reg[-1]) - s.min_norm_test):.3g} "
        f"(agrees if <= {agree:.3g}).")
    matched = s.matching_iterations()
    # the correspondence is read on the descending part of the curves: regularized errors within `agree` of the
    # common limit are equal on the plot's scale, and their order there is noise
    descending = (reg - min(float(reg[-1]), gd_end) > agree) & (matched >= 0)
    found = matched[descending]
    monotone = bool(found.size >= 2 and np.all(np.diff(found) >= 0))
    start_same = abs(e0 - float(s.zero_test)) <= agree
    end_same = abs(gd_end - float(reg[-1])) <= agree
    c3 = Claim(
        "Figure 8; Section 4.1",
        "Iterations of gradient descent play the role of 1/lambda: both protocols go from the same starting test error "
        "to the same limit, and more iterations correspond to smaller lambda.",
        verdict_of(start_same and end_same and monotone),
        f"start: GD {e0:.4g} against the zero predictor {s.zero_test:.4g}, the regularized solution for every "
        f"lambda >= ||X^T y / n|| (agree if within {agree:.3g}; strongest lambda run: {float(reg[0]):.4g}); "
        f"end: GD {gd_end:.4g}, weakest regularization {float(reg[-1]):.4g} (agree if within {agree:.3g}); "
        f"GD iteration first matching each regularized test error, by increasing 1/lambda: {matched.tolist()} "
        f"(-1: never; must be nondecreasing over the {int(descending.sum())} lambdas whose error is more than "
        f"{agree:.3g} above the limit); iteration x lambda = "
        f"{_fmt(np.where(matched >= 0, matched, np.nan) / inv, 3)} (x lr for the flow time).")
    return c1, c2, c3


def global_minimum_claim(excess, unstable, distance, converged) -> Claim:
    """Figure 8 (right): the regularized solutions are global minima of :math:`L + \\frac{\\lambda}{2}\\|w\\|^2`.

    Holds when every computed point's loss exceeds the closed-form minimum
    value (:func:`norm_penalized_solution`) by at most :data:`GLOBAL_MIN_RTOL`
    (relative) and no Hessian there has an eigenvalue below -1e-8 (a saddle).
    ``distance`` (relative distance of :math:`W_2 W_1` from the closed-form
    minimizer) and ``converged`` (Newton reached its tolerance) are reported.
    """
    excess, unstable, distance, converged = (np.asarray(v) for v in (excess, unstable, distance, converged))
    at_global = bool(np.all(excess <= GLOBAL_MIN_RTOL))
    return Claim(
        "Figure 8 (right); SI 6.2.2",
        "The regularized solutions are minima of the regularized loss (optimization run to convergence).",
        verdict_of(at_global and int(unstable.max()) == 0),
        f"largest relative excess of L + (lambda/2)||w||^2 at the computed points over the global minimum value "
        f"(closed form: min of (1/2n)||X b - y||^2 + lambda ||b||): {float(excess.max()):.2e} (global minimum "
        f"if <= {GLOBAL_MIN_RTOL:g}); Hessian eigenvalues below -1e-8: {int(unstable.max())} at most (must be 0); "
        f"largest relative distance of W2 W1 from the closed-form minimizer {float(distance.max()):.2e} (the valley "
        f"is flat to order lambda as lambda -> 0); Newton reached |grad| <= 1e-10 in {int(converged.sum())} of "
        f"{converged.size} cases.")


def _fig8_figure(out_dir, traj, cfg, lambdas, reg_test, exact_test, min_norm_test) -> str:
    plt = _plt()
    plot = _plot()
    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(6.8, 2.8), layout="constrained")
        plot.curves(traj, metrics=("test_error",), axes=[axes[0]], logy=True)
        axes[0].axhline(min_norm_test, color="0.4", ls="--", lw=0.8, label="minimum-norm interpolant")
        axes[0].set_xscale("symlog", linthresh=cfg.record_every)
        axes[0].set_xlim(left=0)
        axes[0].set_title("GD, $\\lambda = 0$")
        axes[0].legend(loc="best")
        axes[1].loglog(1.0 / lambdas, reg_test, "o-", color=plot.PALETTE[0],
                       label="Newton on $L + \\frac{\\lambda}{2}\\|w\\|^2$")
        axes[1].loglog(1.0 / lambdas, exact_test, "k.", ms=3, label="closed form")
        axes[1].axhline(min_norm_test, color="0.4", ls="--", lw=0.8)
        axes[1].set_xlabel("$1/\\lambda$")
        axes[1].set_ylabel("test error")
        axes[1].set_title("regularized minima")
        axes[1].legend(loc="best")
    return save_figure(fig, out_dir, "fig8.png")


@register("fig8", "Deep linear network: iterations against explicit regularization", "Figure 8; SI 6.2.2")
def fig8(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 8: test error of GD on :math:`W_2 W_1 x` against iterations, and of regularized minima against 1/lambda.

    The data are :func:`gradflow.data.linear_teacher` (``n = 30``, ``d = 31``
    with the bias column, a teacher with one hidden unit, 32 noiseless test
    points); the student is ``DeepLinear([31, 2, 1])`` (64 parameters) with the
    square loss :math:`\\frac{1}{2n}\\sum_i (f(x_i) - y_i)^2` (the "error" is the
    mean squared error).  Left: GD with :math:`\\lambda = 0` from
    :math:`\\mathcal N(0, 10^{-6})`, a batch of repetitions.  Right: for each
    :math:`\\lambda`, the minimum of :math:`L + \\frac{\\lambda}{2}\\|w\\|^2`
    (``Objective(weight_decay=lam)``): a few GD steps from the GD limit, then
    damped Newton (:func:`gradflow.find_equilibrium`), checked against the closed form
    :func:`norm_penalized_solution` (the same minimizer as the paper's
    :math:`\\lambda\\|W_2 W_1\\|`).
    """
    cfg = FIG8[size]
    data = _data.linear_teacher(n=cfg.n, n_test=cfg.n_test, d=cfg.d, hidden=cfg.teacher_hidden, seed=seed)
    model = DeepLinear([cfg.d, cfg.hidden, 1])
    obj = Objective(model, data, loss="square")
    W0 = np.stack([np.asarray(obj.init(seed=seed * 1000 + r, scale=cfg.init_scale)) for r in range(cfg.repetitions)])
    traj = gd(obj, W0, lr=cfg.lr, steps=cfg.steps, record_every=cfg.record_every)

    X, y = np.asarray(data.X), np.asarray(data.y)
    Xt, yt = np.asarray(data.X_test), np.asarray(data.y_test)
    min_norm = np.linalg.pinv(X) @ y
    min_norm_test = float(np.mean((Xt @ min_norm - yt) ** 2))
    zero_test = float(np.mean(yt ** 2))

    lambdas = np.asarray(sorted(cfg.lambdas, reverse=True))
    reg_test = np.empty((cfg.repetitions, lambdas.size))
    reg_gap = np.empty_like(reg_test)
    reg_excess = np.empty_like(reg_test)
    converged = np.ones_like(reg_test, dtype=bool)
    unstable = np.zeros_like(reg_test, dtype=int)
    gd_limit = np.asarray(traj.w[-1])
    for j, lam in enumerate(lambdas):
        reg_obj = Objective(model, data, loss="square", weight_decay=float(lam))
        start = gd(reg_obj, gd_limit, lr=cfg.lr, steps=cfg.reg_gd_steps, record_every=cfg.reg_gd_steps).w[-1]
        exact = norm_penalized_solution(X, y, float(lam))
        exact_value = 0.5 * float(np.mean((X @ exact - y) ** 2)) + float(lam) * float(np.linalg.norm(exact))
        for r in range(cfg.repetitions):
            eq = find_equilibrium(reg_obj, np.asarray(start[r]), max_iter=FIG8_NEWTON_MAX_ITER)
            w = np.asarray(eq.w)
            converged[r, j] = eq.converged
            reg_test[r, j] = obj.metrics(w)["test_error"]
            W1, W2 = (np.asarray(a) for a in model.unflatten(w))
            reg_gap[r, j] = float(np.linalg.norm((W2 @ W1)[0] - exact) / max(np.linalg.norm(exact), 1e-300))
            reg_excess[r, j] = (float(reg_obj.value(w)) - exact_value) / exact_value
            unstable[r, j] = int(np.sum(np.linalg.eigvalsh(np.asarray(reg_obj.hessian(w))) < -1e-8 * max(1.0, lam)))
    exact_test = np.array([float(np.mean((Xt @ norm_penalized_solution(X, y, float(lam)) - yt) ** 2)) for lam in lambdas])

    gd_test = np.asarray(traj.metrics["test_error"]).mean(axis=1)
    summary = Fig8Summary(t=np.asarray(traj.t), gd_test=gd_test, lambdas=lambdas, reg_test=reg_test.mean(axis=0),
                          min_norm_test=min_norm_test, zero_test=zero_test)
    claims = list(implicit_regularization_claims(summary))
    claims.append(global_minimum_claim(reg_excess, unstable, reg_gap, converged))

    figures = (_fig8_figure(out_dir, traj, cfg, lambdas, reg_test.mean(axis=0), exact_test, min_norm_test),)

    setup = dataclasses.asdict(cfg) | {
        "seed": seed, "data": "gradflow.data.linear_teacher (noiseless; bias column included in d)",
        "model": f"DeepLinear([{cfg.d}, {cfg.hidden}, 1]), P = {obj.size}", "loss": "square, (1/2n) sum (f - y)^2",
        "optimizer_left": f"full-batch GD, lr = {cfg.lr}, {cfg.steps} steps, {cfg.repetitions} repetitions",
        "optimizer_right": f"for each lambda, {cfg.reg_gd_steps} GD steps on L + (lambda/2)||w||^2 from the GD limit, "
                           "then gradflow.find_equilibrium (damped Newton) to |grad| <= 1e-10, at most "
                           f"{FIG8_NEWTON_MAX_ITER} iterations",
        "init": f"N(0, {cfg.init_scale}^2) i.i.d. (Objective.init)",
    }
    measurements = {
        "gd_test_error_initial": float(gd_test[0]), "gd_test_error_final": float(gd_test[-1]),
        "gd_test_error_final_per_run": _last(traj, "test_error").tolist(),
        "gd_train_error_final": float(np.mean(_last(traj, "train_error"))),
        "lambdas": lambdas.tolist(), "regularized_test_error": reg_test.mean(axis=0).tolist(),
        "closed_form_test_error": exact_test.tolist(), "max_relative_distance_to_closed_form": float(reg_gap.max()),
        "max_relative_excess_over_global_minimum": float(reg_excess.max()),
        "newton_converged": int(converged.sum()),
        "min_norm_test_error": min_norm_test, "zero_predictor_test_error": zero_test,
        "matching_iterations": summary.matching_iterations().tolist(), "gd_status": _status(traj),
    }
    arrays = {"t": np.asarray(traj.t), "gd_test_error": np.asarray(traj.metrics["test_error"]),
              "gd_train_error": np.asarray(traj.metrics["train_error"]), "lambdas": lambdas,
              "regularized_test_error": reg_test, "closed_form_test_error": exact_test}
    notes = ("The paper optimizes with SGD; this run uses full-batch GD (left) and damped Newton to convergence (right). "
             "The paper's penalty is lambda ||W2 W1||; for one output min (||W1||^2 + ||W2||^2)/2 over factorizations of "
             "a product b is ||b||, so weight decay (lambda/2)||w||^2 has the same minimizing product, which is checked "
             "against the closed form. The error is the mean squared error (square loss without the 1/2). Small "
             "initialization (scale 1e-3) makes the GD limit close to the minimum-norm interpolant; with a larger one "
             "(0.1) GD stops at a different interpolant (test error 0.0007-0.0085 against 7e-5 for seed 0).")
    return ExperimentResult(name="fig8", title="Deep linear network: iterations against explicit regularization",
                            size=size, seed=seed, setup=setup, measurements=measurements, claims=tuple(claims),
                            figures=figures, arrays=arrays, notes=notes)


# ==================================================================== theorem3: zero eigenvalues at zero-loss minima
@dataclasses.dataclass(frozen=True)
class Architecture:
    r"""One network of the Theorem 3 table.

    Attributes
    ----------
    label : str
    widths : tuple of int
        ``(d, N_1, ..., N_H, d')``, input first.
    activation : str
        ``"linear"`` (a :class:`~gradflow.models.DeepLinear` network), ``"relu"`` or ``"polynomial"``
        (:data:`THEOREM3_POLYNOMIAL`, :math:`\sigma(z) = z + z^2`).
    n : int
        Training points.
    start : str
        ``"random"`` (:func:`fan_in_init`) or ``"teacher"`` (the teacher's weights plus
        ``N(0, 0.1^2)`` noise, for networks too small to interpolate from anywhere).
    nondegenerate : bool
        Whether the minimum is expected to be nondegenerate: Theorem 3's condition fails,
        :math:`P \\le n d'`, the network has no continuous symmetry (a polynomial activation
        has no rescaling symmetry, unlike ReLU and linear units) and no redundant parameter (the
        functions it computes form a family of dimension :math:`P`).
    """

    label: str
    widths: tuple
    activation: str
    n: int
    start: str = "random"
    nondegenerate: bool = False


#: The architectures of the Theorem 3 table, by size (full adds larger and deeper ones).
THEOREM3_ARCHITECTURES = {
    "quick": (
        Architecture("deep linear", (5, 4, 1), "linear", 3),
        Architecture("deep linear, one hidden unit", (3, 1, 1), "linear", 10),
        Architecture("ReLU", (4, 8, 1), "relu", 6),
        Architecture("polynomial", (3, 6, 1), "polynomial", 5),
        Architecture("ReLU, underparametrized", (2, 2, 1), "relu", 20, start="teacher"),
        Architecture("polynomial, underparametrized", (2, 2, 1), "polynomial", 20, start="teacher", nondegenerate=True),
    ),
}
THEOREM3_ARCHITECTURES["full"] = THEOREM3_ARCHITECTURES["quick"] + (
    Architecture("deep linear, Figure 8", (31, 2, 1), "linear", 30),
    Architecture("ReLU, two hidden layers", (3, 8, 8, 1), "relu", 6),
    Architecture("ReLU, two outputs", (4, 8, 2), "relu", 5),
    Architecture("polynomial, two hidden layers", (3, 5, 5, 1), "polynomial", 6),
    Architecture("polynomial, two outputs, underparametrized", (2, 3, 2), "polynomial", 15, start="teacher",
                 nondegenerate=True),
)
#: Coefficients of the polynomial activation of the Theorem 3 table, :math:`\sigma(z) = z + z^2` (ascending).  The
#: degree-10 fits of ReLU are ill-suited here: on [-2, 2] GD diverges on these networks (standard Gaussian inputs
#: reach the steep z^10 tail) and on [-12, 12] the fit is nearly flat at their pre-activations, and Newton stalls at
#: losses of 1e-8 (measured).
THEOREM3_POLYNOMIAL = (0.0, 1.0, 0.5, 1.0 / 6.0)
#: Seeds per architecture, by size.
THEOREM3_SEEDS = {"quick": 1, "full": 3}
#: GD before Newton: step size and steps.
THEOREM3_LR, THEOREM3_GD_STEPS = 0.02, 20_000
#: Starts tried per row (fresh initial weights) until GD and Newton reach zero loss.
THEOREM3_ATTEMPTS = 3
#: Newton's stopping tolerance on the gradient norm, and its iteration cap.
THEOREM3_GTOL, THEOREM3_MAX_ITER = 1e-13, 200


@dataclasses.dataclass(frozen=True)
class Theorem3Row:
    """One row of the Theorem 3 table: a network at a minimum reached by GD and Newton.

    Attributes
    ----------
    label, activation : str
    widths : tuple of int
    n, outputs, size : int
        Training points, outputs :math:`d'` and parameters :math:`P`.
    seed, attempts : int
        The data seed, and how many starts it took to reach zero loss (at most :data:`THEOREM3_ATTEMPTS`).
    loss, grad_norm : float
        Data loss and :math:`\\|\\nabla L\\|` at the point.
    zero_loss : bool
        ``loss <= ZERO_LOSS``: Theorem 3's hypothesis :math:`L(w^*) = 0`.
    condition : bool
        Theorem 3's condition: some layer has :math:`N_k N_{k-1} > n\\min(N_k, \\dots, N_{H+1})`.
    layer_bound : int
        :math:`\\sum_k \\max(0, N_k N_{k-1} - n\\min(N_k, \\dots, N_{H+1}))`, the zero eigenvalues the proof forces.
    count : int
        :math:`P - n d'` (``J`` has :math:`n d'` rows, so :math:`H = J^\\top J/n` has at least this many zeros).
    nullity, manifold_dim, n_trivial : int
        Zero eigenvalues of :math:`H`, :math:`P - \\operatorname{rank} J`, and how many of the null directions leave
        the network function unchanged (SI 6.2.2).
    kind : str
        The equilibrium's type (:func:`gradflow.linearize`).
    tol, gap : float
        The zero threshold (:func:`zero_tolerance`) and the ratio of the smallest nonzero eigenvalue to it
        (or to the largest "zero" one).
    nondegenerate : bool
        Expected nondegenerate (see :class:`Architecture`).
    eigenvalues : tuple of float
        The Hessian's eigenvalues, ascending.
    """

    label: str
    widths: tuple
    activation: str
    n: int
    outputs: int
    size: int
    seed: int
    attempts: int
    loss: float
    grad_norm: float
    zero_loss: bool
    condition: bool
    layer_bound: int
    count: int
    nullity: int
    manifold_dim: int
    n_trivial: int
    kind: str
    tol: float
    gap: float
    nondegenerate: bool
    eigenvalues: tuple

    def as_dict(self) -> dict:
        """The row without its eigenvalues, JSON-serializable."""
        out = dataclasses.asdict(self)
        out.pop("eigenvalues")
        out["widths"] = list(self.widths)
        return out


def zero_tolerance(obj: Objective, w) -> tuple:
    r"""The threshold below which an eigenvalue of :math:`H = \nabla^2 L(w)` is zero, at a numerical zero-loss point.

    For the square loss :math:`L = \frac{1}{2n}\|f(X) - Y\|^2`,
    :math:`H = J^\top J/n + E` with :math:`E = \frac1n\sum_i r_i \nabla^2 f_i` and
    :math:`r` the residuals.  At an exact zero-loss point :math:`E = 0` and
    :math:`H = J^\top J/n`; at the computed point (residuals of order
    :math:`10^{-12}` or below) Weyl's inequality puts every eigenvalue of
    :math:`H` within :math:`\|E\|_2` of one of :math:`J^\top J/n`, so the exact
    zeros of :math:`J^\top J/n` may come out as large as :math:`\|E\|_2`.  The
    threshold is ``max(|λ|_max P eps, WEYL_SAFETY ||E||_2)``, the first term
    being :func:`gradflow.linearize`'s default.

    Returns
    -------
    (tol, E_norm) : (float, float)
    """
    H = np.asarray(obj.hessian(w))
    H = 0.5 * (H + H.T)
    J = np.asarray(obj.output_jacobian(w))
    n = int(obj.data.n)
    E = H - J.T @ J / n
    e_norm = float(np.linalg.norm(E, 2))
    lam_max = float(np.max(np.abs(np.linalg.eigvalsh(H))))
    return max(lam_max * H.shape[0] * np.finfo(np.float64).eps, WEYL_SAFETY * e_norm), e_norm


def _teacher_problem(arch: Architecture, seed: int):
    """Data labelled by a teacher of the same architecture (the Figure 8 teacher for the Figure 8 network)."""
    rng = np.random.default_rng([seed, 7])
    if arch.activation == "linear" and arch.widths == (31, 2, 1):
        data = _data.linear_teacher(n=arch.n, n_test=0, seed=seed)
        model = DeepLinear(list(arch.widths))
        return data, model, None
    if arch.activation == "linear":
        model = DeepLinear(list(arch.widths))
    else:
        activation = _activations.Polynomial(THEOREM3_POLYNOMIAL) if arch.activation == "polynomial" else "relu"
        model = MLP(list(arch.widths), activation=activation)
    X = rng.standard_normal((arch.n, arch.widths[0]))
    teacher = np.concatenate([rng.standard_normal(math.prod(shape)) / math.sqrt(shape[1])
                              for shape in model.parameter_shapes])
    Y = np.asarray(model.forward(teacher, X))
    y = Y[:, 0] if Y.shape[1] == 1 else Y
    return Dataset(X, y), model, teacher


def theorem3_row(arch: Architecture, seed: int) -> Theorem3Row:
    """Train ``arch`` on teacher data by GD, refine with Newton, and measure the degeneracy of the minimum.

    GD (``THEOREM3_LR``, ``THEOREM3_GD_STEPS``) on the square loss, then
    :func:`gradflow.find_equilibrium` to ``THEOREM3_GTOL``; then
    :func:`gradflow.degeneracy` and :func:`gradflow.linearize` with the
    threshold of :func:`zero_tolerance`.
    """
    if not isinstance(arch, Architecture):
        raise TypeError(f"`arch` must be an Architecture; got {describe(arch)}.")
    seed = check_seed(seed)
    data, model, teacher = _teacher_problem(arch, seed)
    obj = Objective(model, data, loss="square")
    for attempt in range(1, THEOREM3_ATTEMPTS + 1):
        if arch.start == "teacher":
            w0 = teacher + 0.1 * np.random.default_rng([seed, 11, attempt]).standard_normal(obj.size)
        else:
            w0 = fan_in_init(obj, [[seed, 13, attempt]])[0]
        traj = gd(obj, w0, lr=THEOREM3_LR, steps=THEOREM3_GD_STEPS, record_every=THEOREM3_GD_STEPS)
        start = np.asarray(traj.w[-1]) if traj.n_points else w0
        eq = find_equilibrium(obj, start, gtol=THEOREM3_GTOL, max_iter=THEOREM3_MAX_ITER)
        w = np.asarray(eq.w)
        if float(obj.metrics(w)["train_loss"]) <= ZERO_LOSS:
            break
    tol, _ = zero_tolerance(obj, w)
    deg = degeneracy(obj, w, tol=tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAnEquilibriumWarning)
        lin = linearize(obj, w, tol=tol)
    outputs = int(arch.widths[-1])
    return Theorem3Row(
        label=arch.label, widths=tuple(arch.widths), activation=arch.activation, n=arch.n, outputs=outputs,
        size=obj.size, seed=seed, attempts=attempt, loss=deg.loss, grad_norm=float(eq.grad_norm),
        zero_loss=bool(deg.loss <= ZERO_LOSS),
        condition=bool(deg.theorem3_holds), layer_bound=int(sum(layer.null_bound for layer in deg.layers)),
        count=int(obj.size - arch.n * outputs), nullity=int(deg.nullity), manifold_dim=int(deg.manifold_dim),
        n_trivial=int(deg.n_trivial), kind=lin.kind, tol=float(tol), gap=float(lin.gap),
        nondegenerate=arch.nondegenerate, eigenvalues=tuple(float(v) for v in deg.eigenvalues))


def _row_text(r: Theorem3Row) -> str:
    return (f"{r.label} {list(r.widths)} n={r.n}: P={r.size}, loss {r.loss:.1e}, condition {r.condition}, "
            f"layer bound {r.layer_bound}, P-nd' {r.count}, nullity {r.nullity}, P-rank J {r.manifold_dim}, "
            f"kind {r.kind}, gap {r.gap:.1e}")


def theorem3_claims(rows) -> tuple:
    """The three Theorem 3 claims decided from the table's rows (only rows at zero loss count).

    * Theorem 3: every zero-loss row whose condition holds has at least one zero eigenvalue, indeed at least
      the ``layer_bound`` the proof gives.
    * Counting: at every zero-loss row the nullity equals :math:`P - \\operatorname{rank} J` and is at least
      :math:`P - n d'`.
    * Nondegenerate counterpart: every row expected nondegenerate has nullity 0 and is a hyperbolic sink.
    """
    rows = tuple(rows)
    at_zero = [r for r in rows if r.zero_loss]
    missed = [r for r in rows if not r.zero_loss]
    miss_text = ("" if not missed else
                 f" Rows not at zero loss (left out): {'; '.join(f'{r.label} (loss {r.loss:.1e})' for r in missed)}.")
    applicable = [r for r in at_zero if r.condition]
    bad = [r for r in applicable if r.nullity < max(1, r.layer_bound)]
    if not applicable:
        verdict = INCONCLUSIVE
    else:
        verdict = verdict_of(not bad)
    c1 = Claim(
        "Theorem 3 (SI 6.2.4); Lemma 1",
        "At a zero-loss point of the square loss, if some layer has N_k N_{k-1} > n min(N_k, ..., N_{H+1}), the "
        "Hessian has a zero eigenvalue (at least N_k N_{k-1} - n min(...) of them per such layer).",
        verdict,
        f"{len(applicable)} zero-loss rows satisfy the condition; nullity >= max(1, layer bound) in "
        f"{len(applicable) - len(bad)} of them"
        + (f"; violated by: {'; '.join(_row_text(r) for r in bad)}" if bad else "")
        + ". Rows: " + "; ".join(f"{r.label}: nullity {r.nullity} >= bound {r.layer_bound}" for r in applicable)
        + "." + miss_text)
    bad_count = [r for r in at_zero if r.nullity != r.manifold_dim or r.nullity < max(0, r.count)]
    c2 = Claim(
        "SI 6.2.4 (proof of Theorem 3); Section 4",
        "At a zero-loss minimum H = J^T J / n (J the output Jacobian on the n training points, n d' rows), so the "
        "number of zero eigenvalues is P - rank J >= P - n d'.",
        INCONCLUSIVE if not at_zero else verdict_of(not bad_count),
        "; ".join(f"{r.label}: nullity {r.nullity}, P - rank J {r.manifold_dim}, P - n d' {r.count}" for r in at_zero)
        + (f". Violated by: {'; '.join(_row_text(r) for r in bad_count)}" if bad_count else "") + "." + miss_text)
    expected = [r for r in at_zero if r.nondegenerate]
    bad_nd = [r for r in expected if r.nullity != 0 or r.kind != "sink"]
    c3 = Claim(
        "Section 4 (hyperbolic minima, Hartman-Grobman); Figure 16",
        "Without overparametrization (condition false, P <= n d'), continuous symmetries or redundant parameters, "
        "the zero-loss minimum is nondegenerate: no zero eigenvalue, a hyperbolic sink.",
        INCONCLUSIVE if not expected else verdict_of(not bad_nd),
        "; ".join(f"{r.label}: condition {r.condition}, P {r.size} vs n d' {r.n * r.outputs}, nullity {r.nullity}, "
                  f"kind {r.kind}, gap {r.gap:.1e}" for r in expected)
        + (f". Violated by: {'; '.join(_row_text(r) for r in bad_nd)}" if bad_nd else "") + "." + miss_text)
    return c1, c2, c3


def _theorem3_figure(out_dir, rows) -> str:
    plt = _plt()
    plot = _plot()
    cols = 3
    nrows = math.ceil(len(rows) / cols)
    with plot.style():
        fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.6 * nrows), layout="constrained", squeeze=False)
    for ax, r in zip(axes.flat, rows):
        plot.spectrum(np.asarray(r.eigenvalues), ax=ax, tol=r.tol)
        ax.set_title(f"{r.label}, seed {r.seed}\n{list(r.widths)}, n={r.n}, loss {r.loss:.0e}: nullity {r.nullity}, "
                     f"P-nd'={r.count}", fontsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    return save_figure(fig, out_dir, "theorem3.png")


@register("theorem3", "Zero eigenvalues of the Hessian at zero-loss minima", "Theorem 3 (SI 6.2.4); Lemma 1")
def theorem3(size: str, seed: int, out_dir) -> ExperimentResult:
    """Theorem 3: a table of zero-eigenvalue counts at converged minima of several architectures.

    Each network is trained by GD on the square loss on data labelled by a
    teacher of the same architecture (so zero loss is reachable), the end
    point refined by damped Newton, and the Hessian's nullity measured
    (:func:`gradflow.degeneracy`, threshold :func:`zero_tolerance`) against
    Theorem 3's condition, the layer bound of its proof, :math:`P - n d'` and
    :math:`P - \\operatorname{rank} J`.
    """
    archs = THEOREM3_ARCHITECTURES[size]
    rows = tuple(theorem3_row(a, seed + k) for a in archs for k in range(THEOREM3_SEEDS[size]))
    claims = theorem3_claims(rows)
    figures = (_theorem3_figure(out_dir, rows),)
    setup = {
        "architectures": [dataclasses.asdict(a) for a in archs], "seeds_per_architecture": THEOREM3_SEEDS[size],
        "seed": seed, "loss": "square, (1/2n) ||f(X) - Y||^2, no weight decay, no bias",
        "data": "inputs N(0, I); targets from a teacher of the same architecture with N(0, 1/fan_in) weights "
                "(Figure 8's linear_teacher for the Figure 8 network)",
        "optimizer": f"GD lr {THEOREM3_LR}, {THEOREM3_GD_STEPS} steps, then gradflow.find_equilibrium "
                     f"(gtol {THEOREM3_GTOL}, max_iter {THEOREM3_MAX_ITER})",
        "zero_threshold": f"max(|lambda|_max P eps, {WEYL_SAFETY} ||H - J^T J/n||_2) (Weyl)",
        "polynomial_activation": "z + z^2/2 + z^3/6 (THEOREM3_POLYNOMIAL)",
    }
    measurements = {"table": [r.as_dict() for r in rows]}
    arrays = {f"eigenvalues_{i}": np.asarray(r.eigenvalues) for i, r in enumerate(rows)}
    notes = ("Networks have no biases, as in Theorem 3. The nullity is counted with a threshold set by Weyl's "
             "inequality from the residual part of the Hessian (see zero_tolerance): gradflow.degeneracy's default "
             "threshold |lambda|_max P eps is below the size at which the exact zeros of J^T J / n come out when the "
             "loss is 1e-21 rather than exactly 0. Rows count only at losses <= 1e-20 (Newton reaches 1e-26 to 1e-34 "
             f"where it converges); each row tries up to {THEOREM3_ATTEMPTS} starts. Linear and ReLU units have "
             "continuous rescaling symmetries, so their minima are degenerate even when the condition fails (the "
             "'one hidden unit' and 'underparametrized ReLU' rows): Theorem 3's condition is sufficient, not "
             "necessary. The polynomial rows use sigma(z) = z + z^2/2 + z^3/6 instead of the degree-10 fit of ReLU "
             "(see THEOREM3_POLYNOMIAL); with z + z^2 the underparametrized [2, 2, 1] network computes a quadratic "
             "form of dimension 5 < P = 6 and is degenerate too (measured: nullity 1, trivial).")
    return ExperimentResult(name="theorem3", title="Zero eigenvalues of the Hessian at zero-loss minima", size=size,
                            seed=seed, setup=setup, measurements=measurements, claims=claims, figures=figures,
                            arrays=arrays, notes=notes)


# ============================================================================ fig1, fig10: training-set size sweeps
@dataclasses.dataclass(frozen=True)
class SizeSweepSetup:
    """Sizes of the training-set size sweeps of Figures 1 and 10 (MLP ``[64, *hidden, 10]`` with biases)."""

    sizes: tuple = (50, 100, 200, 400, 800, 1200)
    n_test: int = 597
    hidden: tuple = (64, 64)
    repetitions: int = 3
    steps: int = 10_000
    record_every: int = 250
    lr: float = DIGITS_LR


#: Figures 1 and 10 set-ups by size.  ``full``: two hidden layers of 64 units, P = 8,970, close to the paper's
#: W ~ 10,000; the test set is the 597 digits left after the largest training set.
SIZE_SWEEP = {
    "quick": SizeSweepSetup(sizes=(50, 100, 200), n_test=500, hidden=(32, 32), repetitions=1, steps=2500,
                            record_every=250),
    "full": SizeSweepSetup(),
}


def size_sweep_claims(sizes, true_train, true_test, scrambled_train, scrambled_test, figure: str,
                      activation: str) -> tuple:
    """The two claims of Figures 1 and 10, from the final mean errors at each training-set size.

    * Left: with true labels the training error is zero at every size
      (else inconclusive: the premise "at zero training error" is not met) and
      the test error falls with ``n``: Spearman correlation at most
      :data:`SIZE_MAX_SPEARMAN` and the largest size's error below
      ``1 - SIZE_MIN_DROP`` times the smallest size's.
    * Right: with scrambled labels the network fits the training set
      (error at most :data:`FIT_ERROR` at every size; does not hold when some
      size stays at :data:`NOT_FITTED_ERROR` or more) while the test error
      stays near chance (at least :data:`CHANCE_FLOOR`).
    """
    sizes, true_train, true_test, scrambled_train, scrambled_test = _curves(
        ("sizes", "true_train", "true_test", "scrambled_train", "scrambled_test"),
        sizes, true_train, true_test, scrambled_train, scrambled_test)
    sizes = sizes.astype(int)
    rho = _spearman(sizes, true_test)
    falls = bool(rho <= SIZE_MAX_SPEARMAN) and true_test[-1] <= (1 - SIZE_MIN_DROP) * true_test[0]
    interpolates = bool(np.all(true_train <= ZERO_ERROR))
    left = Claim(
        f"{figure} (left); Section 3",
        f"The {activation} network's test classification error falls as the training set grows, even though the "
        "training error is zero at every size.",
        verdict_of(falls) if interpolates else INCONCLUSIVE,
        f"n = {sizes.tolist()}: training error {_fmt(true_train)}, test error {_fmt(true_test)}; "
        f"Spearman(n, test error) = {rho:.3f} (falls if <= {SIZE_MAX_SPEARMAN} and last <= {1 - SIZE_MIN_DROP} x first: "
        f"ratio {true_test[-1] / max(true_test[0], 1e-300):.3g})"
        + ("" if interpolates else "; not at zero training error at every size, so the claim's premise is not met")
        + ".")
    worst = float(np.max(scrambled_train))
    chance = bool(np.all(scrambled_test >= CHANCE_FLOOR))
    if worst <= FIT_ERROR and chance:
        verdict = HOLDS
    elif worst >= NOT_FITTED_ERROR or not chance:
        verdict = DOES_NOT_HOLD
    else:
        verdict = INCONCLUSIVE
    right = Claim(
        f"{figure} (right); Section 3",
        f"The same {activation} network fits scrambled labels (zero training error: large capacity), with test error "
        "at chance.",
        verdict,
        f"scrambled labels, n = {sizes.tolist()}: training error {_fmt(scrambled_train)} (fitted if all <= {FIT_ERROR}; "
        f"not fitted if some >= {NOT_FITTED_ERROR}; in between: still fitting at the end of the budget), test error "
        f"{_fmt(scrambled_test)} (chance {CHANCE_ERROR}; must be >= {CHANCE_FLOOR}).")
    return left, right


def _size_sweep(name: str, activation_name: str, figure: str, size: str, seed: int, out_dir) -> ExperimentResult:
    cfg = SIZE_SWEEP[size]
    base = _digits_base(max(cfg.sizes), cfg.n_test, seed)
    activation = _activation(activation_name)
    label = "ReLU" if activation_name == "relu" else f"degree-{POLY_DEGREE} polynomial"
    finals = {kind: {"train": [], "test": [], "train_loss": [], "test_loss": [], "zero_at": [], "status": [],
                     "max_preactivation": []}
              for kind in ("true", "scrambled")}
    curves = {}
    size_p = None
    for n in cfg.sizes:
        for kind in ("true", "scrambled"):
            data = digits_subset(base, n, kind == "scrambled", seed)
            obj = _mlp_objective(data, cfg.hidden, activation)
            size_p = obj.size
            W0 = fan_in_init(obj, _run_seeds(seed, cfg.repetitions, n))
            traj = gd(obj, W0, lr=cfg.lr, steps=cfg.steps, record_every=cfg.record_every)
            f = finals[kind]
            f["train"].append(float(np.mean(_last(traj, "train_error"))))
            f["test"].append(float(np.mean(_last(traj, "test_error"))))
            f["train_loss"].append(float(np.mean(_last(traj, "train_loss"))))
            f["test_loss"].append(float(np.mean(_last(traj, "test_loss"))))
            f["zero_at"].append(_first_zero_step(traj))
            f["status"].append(_status(traj))
            f["max_preactivation"].append(float(np.max(max_preactivation(obj, traj.w[-1]))))
            curves[f"{kind}_n{n}_train_error"] = np.asarray(traj.metrics["train_error"])
            curves[f"{kind}_n{n}_test_error"] = np.asarray(traj.metrics["test_error"])
            curves[f"{kind}_n{n}_t"] = np.asarray(traj.t)
    claims = size_sweep_claims(cfg.sizes, finals["true"]["train"], finals["true"]["test"], finals["scrambled"]["train"],
                               finals["scrambled"]["test"], figure, label)
    note = _divergence_note(finals["true"]["status"] + finals["scrambled"]["status"])
    claims = tuple(dataclasses.replace(c, evidence=c.evidence + note) for c in claims)
    figures = (_size_sweep_figure(out_dir, f"{name}.png", cfg.sizes, finals, label),)
    setup = dataclasses.asdict(cfg) | {
        "seed": seed, "data": f"gradflow.data.digits (8x8, pixels / 16), first n of {max(cfg.sizes)} shuffled training "
                              f"rows, one test set of {cfg.n_test}",
        "model": f"MLP([64, {', '.join(map(str, cfg.hidden))}, 10], {label}, biases), P = {size_p}",
        "loss": "cross-entropy", "optimizer": f"full-batch GD, lr {cfg.lr}, {cfg.steps} steps",
        "init": "fan_in_init: N(0, 1/fan_in) weights, zero biases",
    }
    measurements = {f"{kind}_{key}": value for kind, f in finals.items() for key, value in f.items()}
    measurements["parameters"] = size_p
    notes = (f"CIFAR-10 is not available: the paper's 5-layer all-convolutional network (16 channels, W ~ 10,000) is "
             f"replaced by a fully connected network with {len(cfg.hidden)} hidden layers on the 8x8 digits, trained by "
             f"full-batch GD (not SGD) on the cross-entropy, without augmentation or regularization.")
    if activation_name != "relu":
        notes += (f" The polynomial is the degree-{POLY_DEGREE} Chebyshev fit of ReLU on {POLY_INTERVAL}, not on "
                  "[-2, 2], on which these networks diverge (see the module notes).")
    return ExperimentResult(name=name, title=f"Training-set size sweep, {label} network, true and scrambled labels",
                            size=size, seed=seed, setup=setup, measurements=measurements, claims=claims,
                            figures=figures, arrays=curves, notes=notes)


def _size_sweep_figure(out_dir, filename, sizes, finals, label) -> str:
    plt = _plt()
    plot = _plot()
    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(6.8, 2.8), layout="constrained", sharey=True)
        for ax, kind, title in zip(axes, ("true", "scrambled"), ("true labels", "scrambled labels")):
            ax.plot(sizes, finals[kind]["train"], "o-", color=plot.PALETTE[0], label="training error")
            ax.plot(sizes, finals[kind]["test"], "s-", color=plot.PALETTE[1], label="test error")
            ax.axhline(CHANCE_ERROR, color="0.6", ls=":", lw=0.8, label="chance")
            ax.set_xscale("log")
            ax.set_xticks(list(sizes), [str(n) for n in sizes])
            ax.xaxis.set_minor_formatter(_null_formatter())
            ax.set_xlabel("training examples $n$")
            ax.set_title(f"{label}, {title}")
        axes[0].set_ylabel("classification error")
        axes[0].legend(loc="best")
    return save_figure(fig, out_dir, filename)


@register("fig1", "Training-set size sweep, ReLU network, true and scrambled labels", "Figure 1; Section 3")
def fig1(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 1 on digits: classification error against n for a ReLU MLP, with true and scrambled labels."""
    return _size_sweep("fig1", "relu", "Figure 1", size, seed, out_dir)


@register("fig10", "Training-set size sweep, polynomial network, true and scrambled labels", "Figure 10; SI 6.4")
def fig10(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 10 on digits: Figure 1 for the same MLP with the degree-10 polynomial activation."""
    return _size_sweep("fig10", "polynomial", "Figure 10", size, seed, out_dir)


def max_preactivation(obj: Objective, W) -> np.ndarray:
    """The largest :math:`|a|` of each hidden layer's pre-activations over the training and test inputs.

    Returns an array ``(m, H)`` for weights ``W`` of shape ``(m, P)`` (``(H,)``
    for one vector): where the polynomial networks operate, to compare with
    :data:`POLY_INTERVAL`.
    """
    if not isinstance(obj, Objective):
        raise TypeError(f"`obj` must be a gradflow.Objective; got {describe(obj)}.")
    W = np.asarray(W, dtype=np.float64)
    single = W.ndim == 1
    W = np.atleast_2d(W)
    model = obj.model
    arrays = [np.asarray(a) for a in obj.unflatten(W)]
    step = 2 if model.bias else 1
    inputs = [np.asarray(obj.data.X)] + ([np.asarray(obj.data.X_test)] if obj.data.has_test else [])
    Z = np.broadcast_to(np.concatenate(inputs), (W.shape[0],) + np.concatenate(inputs).shape)
    out = []
    for layer in range(model.n_layers - 1):
        A = Z @ np.swapaxes(arrays[step * layer], 1, 2)
        if model.bias:
            A = A + arrays[step * layer + 1][:, None, :]
        out.append(np.abs(A).max(axis=(1, 2)))
        Z = model.activation.value(A, np)
    result = np.stack(out, axis=1)
    return result[0] if single else result


def _divergence_note(statuses) -> str:
    bad = [s for s in statuses if s != "success"]
    if not bad:
        return ""
    return (f" {len(bad)} of {len(statuses)} runs did not end successfully ({bad[0][:160]}); their numbers are from "
            "their last finite record.")


# ============================================================================ fig9: ReLU against polynomial
@dataclasses.dataclass(frozen=True)
class CompareSetup:
    """Sizes of the Figure 9 comparison (MLP ``[64, *hidden, 10]`` with biases, both activations)."""

    n: int = 1000
    n_test: int = 797
    hidden: tuple = (64, 64)
    repetitions: int = 5
    steps: int = 6000
    record_every: int = 100
    lr: float = DIGITS_LR


#: Figure 9 set-ups by size.
FIG9 = {
    "quick": CompareSetup(n=300, n_test=500, hidden=(32, 32), repetitions=2, steps=1000, record_every=50),
    "full": CompareSetup(),
}


def relu_vs_polynomial_claim(relu_train, relu_test, poly_train, poly_test, note: str = "") -> Claim:
    """Figure 9: the two networks' final training and test errors (means over runs) differ by at most
    :data:`CLOSE_ERROR` each."""
    d_train, d_test = abs(float(relu_train) - float(poly_train)), abs(float(relu_test) - float(poly_test))
    return Claim(
        "Figure 9; SI 6.4",
        "A network whose ReLUs are replaced by a degree-10 polynomial approximation performs quantitatively "
        "similarly: training and test errors of the two networks are close.",
        verdict_of(d_train <= CLOSE_ERROR and d_test <= CLOSE_ERROR),
        f"final training error ReLU {float(relu_train):.4g} vs polynomial {float(poly_train):.4g} (|difference| "
        f"{d_train:.3g}); test error ReLU {float(relu_test):.4g} vs polynomial {float(poly_test):.4g} (|difference| "
        f"{d_test:.3g}); close if both <= {CLOSE_ERROR}." + note)


@register("fig9", "ReLU network against the same network with a degree-10 polynomial activation", "Figure 9; SI 6.4")
def fig9(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 9 on digits: training and test error along GD of a ReLU MLP and of the same MLP with the polynomial."""
    cfg = FIG9[size]
    data = _digits_base(cfg.n, cfg.n_test, seed)
    runs, finals, statuses, preacts = {}, {}, [], {}
    for name in ("relu", "polynomial"):
        obj = _mlp_objective(data, cfg.hidden, _activation(name))
        W0 = fan_in_init(obj, _run_seeds(seed, cfg.repetitions))  # the same initial weights for both
        traj = gd(obj, W0, lr=cfg.lr, steps=cfg.steps, record_every=cfg.record_every)
        runs[name] = traj
        statuses.append(_status(traj))
        finals[name] = {k: float(np.mean(_last(traj, k))) for k in ("train_error", "test_error", "train_loss",
                                                                     "test_loss", "norm")}
        finals[name]["zero_at"] = _first_zero_step(traj)
        preacts[name] = float(np.max(max_preactivation(obj, traj.w[-1])))
    claim = relu_vs_polynomial_claim(finals["relu"]["train_error"], finals["relu"]["test_error"],
                                     finals["polynomial"]["train_error"], finals["polynomial"]["test_error"],
                                     _divergence_note(statuses))
    diff = np.abs(np.asarray(runs["relu"].metrics["test_error"]).mean(axis=1)[:len(runs["polynomial"].t)]
                  - np.asarray(runs["polynomial"].metrics["test_error"]).mean(axis=1)[:len(runs["relu"].t)])
    plot = _plot()
    axes = plot.curves({"ReLU": runs["relu"], f"polynomial (degree {POLY_DEGREE})": runs["polynomial"]},
                       metrics=("train_error", "test_error", "test_loss"), logy=False)
    figures = (save_figure(axes[0].figure, out_dir, "fig9.png"),)
    setup = dataclasses.asdict(cfg) | {
        "seed": seed, "data": f"gradflow.data.digits: {cfg.n} training and {cfg.n_test} test digits",
        "model": f"MLP([64, {', '.join(map(str, cfg.hidden))}, 10], biases), ReLU and degree-{POLY_DEGREE} polynomial "
                 f"(Chebyshev fit of ReLU on {POLY_INTERVAL}, largest error {polynomial_activation().max_error:.3g})",
        "loss": "cross-entropy", "optimizer": f"full-batch GD, lr {cfg.lr}, {cfg.steps} steps, same initial weights",
    }
    measurements = {f"{name}_{k}": v for name, f in finals.items() for k, v in f.items()}
    measurements |= {"max_test_error_gap_along_path": float(np.max(diff)) if diff.size else float("nan"),
                     "statuses": statuses, "relu_max_preactivation": preacts["relu"],
                     "polynomial_max_preactivation": preacts["polynomial"]}
    arrays = {"t": np.asarray(runs["relu"].t)}
    arrays |= {f"{name}_{k}": np.asarray(traj.metrics[k]) for name, traj in runs.items()
               for k in ("train_error", "test_error", "train_loss", "test_loss")}
    notes = ("CIFAR-10 is not available: the paper's convolutional network is replaced by a fully connected network on "
             "the 8x8 digits (full-batch GD, cross-entropy, no augmentation or regularization). The polynomial is fitted "
             f"on {POLY_INTERVAL} rather than [-2, 2], on which these networks diverge (module notes).")
    return ExperimentResult(name="fig9", title="ReLU network against the same network with a degree-10 polynomial "
                            "activation", size=size, seed=seed, setup=setup, measurements=measurements,
                            claims=(claim,), figures=figures, arrays=arrays, notes=notes)


# ============================================================================ fig11 (with Figures 5, 6): width sweep
@dataclasses.dataclass(frozen=True)
class WidthSweepSetup:
    """Sizes of the width sweep of Figures 5, 6 and 11: MLP ``[64, H, H, 10]`` with biases for each ``H``."""

    n: int = 1000
    n_test: int = 797
    widths: tuple = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
    repetitions: int = 2
    steps: int = 5000
    record_every: int = 500
    lr: float = DIGITS_LR


#: Figure 5, 6, 11 set-ups by size (P runs from 87 at H = 1 to 26,122 at H = 128).
WIDTH_SWEEP = {
    "quick": WidthSweepSetup(n=200, n_test=500, widths=(2, 8, 24, 48), repetitions=1, steps=1200,
                             record_every=400),
    "full": WidthSweepSetup(),
}


def width_sweep_claims(params, n: int, train_error, test_error, test_loss, activation: str) -> tuple:
    """The width-sweep claims, from final mean numbers at each network size ``params`` (ascending).

    * Figure 5 (ReLU) / with Figure 11 (polynomial): the test cross-entropy
      overfits: at the widest network it exceeds its minimum over the sweep by
      more than :data:`LOSS_OVERFIT` (relative), the minimum being at a
      narrower network.
    * Figure 6 / Figure 11: the test classification error does not overfit:
      at the widest network it is within :data:`ERROR_OVERFIT_TOL` of its
      minimum over the networks with :math:`P \\ge n` (inconclusive when no
      network has :math:`P \\ge n`).
    * Figure 11 (polynomial only): zero training error for every network with
      :math:`P \\ge n`.
    """
    params, train_error, test_error, test_loss = _curves(("params", "train_error", "test_error", "test_loss"),
                                                         params, train_error, test_error, test_loss)
    params = params.astype(int)
    poly = activation != "ReLU"
    loss_min = float(np.min(test_loss))
    at_min = int(np.argmin(test_loss))
    overfits = test_loss[-1] > (1 + LOSS_OVERFIT) * loss_min and at_min < len(params) - 1
    c_loss = Claim(
        "Figure 11 with Figure 5; Section 4.2" if poly else "Figure 5; Section 4.2",
        f"With n fixed, the {activation} network's test cross-entropy overfits as the number of parameters W grows "
        "past n.",
        verdict_of(overfits),
        f"n = {n}; P = {params.tolist()}; test cross-entropy {_fmt(test_loss)}; minimum {loss_min:.4g} at P = "
        f"{int(params[at_min])}; widest {float(test_loss[-1]):.4g} (overfits if > (1 + {LOSS_OVERFIT}) x minimum = "
        f"{(1 + LOSS_OVERFIT) * loss_min:.4g}, minimum not at the widest).")
    over = params >= n
    if not over.any():
        c_err = Claim("Figure 11" if poly else "Figure 6", "", INCONCLUSIVE, "no network with P >= n")
    else:
        best = float(np.min(test_error[over]))
        c_err = Claim(
            "Figure 11; SI 6.4" if poly else "Figure 6; Section 4.2",
            f"The {activation} network's test classification error does not overfit for W > n, despite the "
            "overfitting of the cross-entropy.",
            verdict_of(test_error[-1] <= best + ERROR_OVERFIT_TOL),
            f"n = {n}; P = {params.tolist()}; test error {_fmt(test_error)}; widest {float(test_error[-1]):.4g} vs best "
            f"over P >= n {best:.4g} (does not overfit if widest <= best + {ERROR_OVERFIT_TOL}).")
    claims = [c_loss, c_err]
    if poly:
        zero = bool(np.all(train_error[over] <= ZERO_ERROR)) if over.any() else None
        claims.append(Claim(
            "Figure 11; SI 6.4",
            "There is zero training error for W >= n (polynomial network).",
            verdict_of(zero),
            f"training error at P >= n = {n}: {_fmt(train_error[over])} for P = {params[over].tolist()} (zero: "
            f"<= {ZERO_ERROR}); below n: {_fmt(train_error[~over])}."))
    return tuple(claims)


@register("fig11", "Width sweep at fixed n: cross-entropy and classification error, ReLU and polynomial",
          "Figures 5, 6, 11; Section 4.2; SI 6.4")
def fig11(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figures 5, 6 and 11 on digits: test cross-entropy and classification error against the number of parameters.

    For each hidden width ``H`` the MLP ``[64, H, H, 10]`` (biases; :math:`P = H^2 + 76H + 10`) is trained by
    full-batch GD for a fixed number of steps (the paper: SGD, 70 epochs per point) on a fixed training set,
    with the ReLU (Figures 5, 6) and the polynomial activation (Figure 11).
    """
    cfg = WIDTH_SWEEP[size]
    data = _digits_base(cfg.n, cfg.n_test, seed)
    results, claims, statuses = {}, [], []
    for name, label in (("relu", "ReLU"), ("polynomial", f"degree-{POLY_DEGREE} polynomial")):
        rows = {k: [] for k in ("params", "train_error", "test_error", "train_loss", "test_loss", "norm",
                                "max_preactivation", "status")}
        for width in cfg.widths:
            obj = _mlp_objective(data, (width, width), _activation(name))
            W0 = fan_in_init(obj, _run_seeds(seed, cfg.repetitions, width))
            traj = gd(obj, W0, lr=cfg.lr, steps=cfg.steps, record_every=cfg.record_every)
            rows["params"].append(obj.size)
            for k in ("train_error", "test_error", "train_loss", "test_loss", "norm"):
                rows[k].append(float(np.mean(_last(traj, k))))
            rows["max_preactivation"].append(float(np.max(max_preactivation(obj, traj.w[-1]))))
            rows["status"].append(_status(traj))
        results[name] = rows
        note = _divergence_note(rows["status"])
        claims.extend(dataclasses.replace(c, evidence=c.evidence + note) for c in
                      width_sweep_claims(rows["params"], cfg.n, rows["train_error"], rows["test_error"],
                                         rows["test_loss"], label))
    figures = (_width_figure(out_dir, results, cfg.n),)
    setup = dataclasses.asdict(cfg) | {
        "seed": seed, "data": f"gradflow.data.digits: {cfg.n} training and {cfg.n_test} test digits",
        "model": "MLP([64, H, H, 10], biases), P = H^2 + 76 H + 10, ReLU and the degree-10 polynomial "
                 f"(Chebyshev fit of ReLU on {POLY_INTERVAL})",
        "loss": "cross-entropy", "optimizer": f"full-batch GD, lr {cfg.lr}, {cfg.steps} steps per network",
    }
    measurements = {f"{name}_{k}": v for name, rows in results.items() for k, v in rows.items()}
    notes = ("CIFAR-10 is not available: the paper's 5-layer all-convolutional networks with n = 50,000 are replaced by "
             f"fully connected networks with two hidden layers of H units on {cfg.n} digits, trained by full-batch GD "
             f"for {cfg.steps} steps (the paper: SGD, batch 100, 70 epochs per point), no augmentation or "
             "regularization. The x axis is the number of parameters P (the paper's W).")
    return ExperimentResult(name="fig11", title="Width sweep at fixed n: cross-entropy and classification error",
                            size=size, seed=seed, setup=setup, measurements=measurements, claims=tuple(claims),
                            figures=figures, notes=notes,
                            arrays={f"{name}_{k}": np.asarray(v) for name, rows in results.items()
                                    for k, v in rows.items() if k != "status"})


def _width_figure(out_dir, results, n) -> str:
    plt = _plt()
    plot = _plot()
    with plot.style():
        fig, axes = plt.subplots(1, 3, figsize=(9.0, 2.8), layout="constrained")
        for j, (name, rows) in enumerate(results.items()):
            color = plot.PALETTE[j]
            label = "ReLU" if name == "relu" else "polynomial"
            axes[0].plot(rows["params"], rows["test_loss"], "o-", color=color, label=f"{label}, test")
            axes[0].plot(rows["params"], rows["train_loss"], "o:", color=color, ms=3, label=f"{label}, train")
            axes[1].plot(rows["params"], rows["test_error"], "o-", color=color, label=f"{label}, test")
            axes[1].plot(rows["params"], rows["train_error"], "o:", color=color, ms=3, label=f"{label}, train")
            axes[2].plot(rows["params"], rows["norm"], "o-", color=color, label=label)
        for ax, ylabel in zip(axes, ("cross-entropy", "classification error", r"$\|W\|_2$")):
            ax.axvline(n, color="0.6", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(_null_formatter())
            ax.set_xlabel("parameters $P$ ($n$ dashed)")
            ax.set_ylabel(ylabel)
        axes[0].set_yscale("log")
        axes[0].legend(loc="best")
        axes[1].legend(loc="best")
    return save_figure(fig, out_dir, "fig11.png")


# ============================================================================ fig3: perturbations of a deep network
@dataclasses.dataclass(frozen=True)
class Fig3Setup:
    """Sizes of the Figure 3 protocol (ReLU MLP ``[64, *hidden, 10]`` with biases, cross-entropy, GD)."""

    n: int = 1000
    n_test: int = 797
    hidden: tuple = (16, 32, 64, 128)
    repetitions: int = 3
    train_steps: int = 2000
    every: int = 1000
    rounds: int = 10
    record_every: int = 100
    sigma: float = 0.25
    lr: float = DIGITS_LR


#: Figure 3 set-ups by size.  ``full``: four hidden layers of 16, 32, 64, 128 units (the caption's channels), GD to
#: zero training error (2,000 steps; the paper: about 1,800 epochs), then a perturbation every 1,000 steps (the paper:
#: 100 epochs).  With 200 steps between kicks this deeper network did not get back: measured round-end training losses
#: 0.003 to 0.08 against 0.002 before the first kick, and training errors up to 2% (a kick of 1/4 of each layer's
#: standard deviation raised the training loss to 0.24-0.55).  With 1,000 steps it still did not fully (0.0026 to
#: 0.061 against 0.0011, seed 0): the full-size verdict on "the training loss returns" is "does not hold".
FIG3 = {
    "quick": Fig3Setup(n=200, n_test=400, hidden=(16, 32), repetitions=2, train_steps=800, every=200, rounds=4,
                       record_every=20),
    "full": Fig3Setup(),
}


@dataclasses.dataclass(frozen=True)
class PerturbationRounds:
    """What the Figure 3 verdicts are decided from (means over the runs).

    Attributes
    ----------
    baseline_train_loss, baseline_test_loss, baseline_norm : float
        Before the first perturbation (at zero training error).
    kicked_train_loss : ndarray, shape (R,)
        Training loss right after each perturbation.
    end_train_loss, end_train_error, end_test_loss, end_norm : ndarray, shape (R,)
        At the end of each round of GD (just before the next perturbation, or at the last step).
    control_test_loss, control_norm : float
        At the last step of the unperturbed control run (Figure 14).
    """

    baseline_train_loss: float
    baseline_test_loss: float
    baseline_norm: float
    kicked_train_loss: np.ndarray
    end_train_loss: np.ndarray
    end_train_error: np.ndarray
    end_test_loss: np.ndarray
    end_norm: np.ndarray
    control_test_loss: float
    control_norm: float


def perturbation_rounds(obj: Objective, traj, control, perturbation: Perturbation) -> PerturbationRounds:
    """Summarize a perturbed GD run (and its unperturbed control) round by round.

    ``traj`` must record the steps at which noise is added (``record_every``
    dividing ``perturbation.every``): the recorded weights there are before
    the noise, and the noise itself is rebuilt exactly from the
    perturbation's seed (:meth:`gradflow.Perturbation.noise`), so the
    training loss right after each kick is measured, not estimated.
    """
    t = np.asarray(traj.t)
    kicks = perturbation.steps(int(t[-1]))
    W = np.asarray(traj.w)
    train_loss = np.asarray(traj.metrics["train_loss"]).mean(axis=1)
    train_err = np.asarray(traj.metrics["train_error"]).mean(axis=1)
    test_loss = np.asarray(traj.metrics["test_loss"]).mean(axis=1)
    norm = np.asarray(traj.metrics["norm"]).mean(axis=1)
    index = np.searchsorted(t, kicks)
    if not np.array_equal(t[index], kicks):
        raise ValueError("`traj` must record every perturbation step: choose record_every dividing perturbation.every.")
    ends = np.append(index[1:], len(t) - 1)
    kicked = []
    for k, i in enumerate(index, start=1):
        before = W[i]
        after = before + perturbation.noise(k, before, obj.model.parameter_shapes)
        kicked.append(float(np.mean(np.asarray(obj.metrics(after)["train_loss"]))))
    return PerturbationRounds(
        baseline_train_loss=float(train_loss[index[0]]), baseline_test_loss=float(test_loss[index[0]]),
        baseline_norm=float(norm[index[0]]), kicked_train_loss=np.asarray(kicked),
        end_train_loss=train_loss[ends], end_train_error=train_err[ends], end_test_loss=test_loss[ends],
        end_norm=norm[ends], control_test_loss=float(np.mean(_last(control, "test_loss"))),
        control_norm=float(np.mean(_last(control, "norm"))))


def returns_claim(s: PerturbationRounds) -> Claim:
    """Figure 3: after every perturbation GD brings the training loss back: each round ends at zero training error
    with a training loss at most :data:`RETURN_FACTOR` times its level before the first kick.  Inconclusive when
    the kicks did not raise the loss by :data:`KICK_MIN_FACTOR` (nothing to return from)."""
    returned = bool(np.all(s.end_train_error <= ZERO_ERROR)) and bool(
        np.all(s.end_train_loss <= RETURN_FACTOR * s.baseline_train_loss))
    kicked = float(np.min(s.kicked_train_loss)) >= KICK_MIN_FACTOR * s.baseline_train_loss
    return Claim(
        "Figure 3; Section 4.1",
        "After each perturbation, gradient descent brings the training loss back to its original level (and the "
        "training error back to zero).",
        verdict_of(returned) if kicked else INCONCLUSIVE,
        f"training loss before the first kick {s.baseline_train_loss:.3g}; right after the kicks "
        f"{_fmt(s.kicked_train_loss)} "
        f"(must exceed {KICK_MIN_FACTOR} x baseline for the test to mean anything); at the end of each round "
        f"{_fmt(s.end_train_loss)} (returned if <= {RETURN_FACTOR} x baseline = "
        f"{RETURN_FACTOR * s.baseline_train_loss:.3g}) "
        f"with training error {_fmt(s.end_train_error)} (must be 0).")


def growth_of_test_loss_claim(s: PerturbationRounds) -> Claim:
    """Figure 3: the test loss grows: its final value exceeds the value before the first kick by
    :data:`TEST_GROWTH` (relative) and the unperturbed control's final value."""
    final = float(s.end_test_loss[-1])
    grows = final >= (1 + TEST_GROWTH) * s.baseline_test_loss and final > s.control_test_loss
    return Claim(
        "Figure 3; Section 4.1",
        "Under repeated perturbations followed by GD the test loss grows increasingly higher.",
        verdict_of(grows),
        f"test loss before the first kick {s.baseline_test_loss:.4g}, at the end of each round "
        f"{_fmt(s.end_test_loss, 4)}; "
        f"unperturbed control at the same step {s.control_test_loss:.4g} (grows if final >= (1 + {TEST_GROWTH}) x "
        f"{s.baseline_test_loss:.4g} = {(1 + TEST_GROWTH) * s.baseline_test_loss:.4g} and > control).")


def norm_growth_claim(s: PerturbationRounds) -> Claim:
    """Figure 3: the weight norm grows: final norm at least ``1 + NORM_GROWTH`` times the norm before the first kick
    and above the control's, and rising over at least :data:`NORM_RISE_FRACTION` of the rounds."""
    norms = np.concatenate([[s.baseline_norm], s.end_norm])
    rises = float(np.mean(np.diff(norms) > 0))
    final = float(norms[-1])
    grows = final >= (1 + NORM_GROWTH) * s.baseline_norm and final > s.control_norm and rises >= NORM_RISE_FRACTION
    return Claim(
        "Figure 3; Section 4.1",
        "The L2 norm of the weights increases after each step of perturbation followed by gradient descent.",
        verdict_of(grows),
        f"norm before the first kick {s.baseline_norm:.4g}, at the end of each round {_fmt(s.end_norm, 4)}; rose in "
        f"{rises:.0%} of the rounds (need >= {NORM_RISE_FRACTION:.0%}); control {s.control_norm:.4g}; final/baseline "
        f"{final / s.baseline_norm:.4g} (need >= {1 + NORM_GROWTH} and final > control).")


@register("fig3", "Perturbations of a deep network at zero training error", "Figure 3 (with Figure 14); Section 4.1")
def fig3(size: str, seed: int, out_dir) -> ExperimentResult:
    """Figure 3 on digits: GD to zero training error, then noise of 1/4 of each layer's std every ``every`` steps.

    Phase 1: full-batch GD on the cross-entropy for ``train_steps`` steps
    (zero training error is checked).  Phase 2, from the same point: GD for
    ``(rounds + 1) * every`` steps with
    ``Perturbation(every, 0.25, relative=True)``, which adds to every weight
    Gaussian noise of standard deviation a quarter of its layer's current
    standard deviation after steps ``every, 2 every, ...``; and, as control,
    the same number of steps without noise (the paper's Figure 14).
    """
    cfg = FIG3[size]
    data = _digits_base(cfg.n, cfg.n_test, seed)
    obj = _mlp_objective(data, cfg.hidden, "relu")
    W0 = fan_in_init(obj, _run_seeds(seed, cfg.repetitions))
    phase1 = gd(obj, W0, lr=cfg.lr, steps=cfg.train_steps, record_every=cfg.record_every)
    start = np.asarray(phase1.w[-1])
    trained = float(np.max(_last(phase1, "train_error")))
    perturbation = Perturbation(every=cfg.every, sigma=cfg.sigma, relative=True, seed=seed)
    steps = (cfg.rounds + 1) * cfg.every
    perturbed = gd(obj, start, lr=cfg.lr, steps=steps, record_every=cfg.record_every, perturbation=perturbation)
    control = gd(obj, start, lr=cfg.lr, steps=steps, record_every=cfg.record_every)
    s = perturbation_rounds(obj, perturbed, control, perturbation)
    claims = [returns_claim(s), growth_of_test_loss_claim(s), norm_growth_claim(s)]
    note = _divergence_note([_status(phase1), _status(perturbed), _status(control)])
    if trained > ZERO_ERROR:
        note += (f" Phase 1 ended at training error {trained:.3g}, not zero: the protocol's starting point is not "
                 "a zero-error minimum.")
        claims = [dataclasses.replace(c, verdict=INCONCLUSIVE) for c in claims]
    claims = tuple(dataclasses.replace(c, evidence=c.evidence + note) for c in claims)

    plot = _plot()
    plt = _plt()
    with plot.style():
        fig, axes = plt.subplots(1, 4, figsize=(10.4, 2.8), layout="constrained")
    shifted = {name: dataclasses.replace(traj, t=np.asarray(traj.t) + cfg.train_steps)
               for name, traj in (("perturbed", perturbed), ("control (no noise)", control))}
    plot.curves({"phase 1": phase1, **shifted}, metrics=("train_loss", "test_loss", "norm", "test_error"), axes=axes,
                logy=[True, False, False, False])
    for ax in axes:
        for k in perturbation.steps(steps):
            ax.axvline(cfg.train_steps + k, color="0.85", lw=0.6, zorder=0)
    figures = (save_figure(fig, out_dir, "fig3.png"),)
    setup = dataclasses.asdict(cfg) | {
        "seed": seed, "data": f"gradflow.data.digits: {cfg.n} training and {cfg.n_test} test digits",
        "model": f"MLP([64, {', '.join(map(str, cfg.hidden))}, 10], ReLU, biases), P = {obj.size}",
        "loss": "cross-entropy", "optimizer": f"full-batch GD, lr {cfg.lr}",
        "perturbation": f"Perturbation(every={cfg.every}, sigma={cfg.sigma}, relative=True, seed={seed}): N(0, "
                        f"({cfg.sigma} std(W_l))^2) added to every weight of layer l (biases are layers too)",
    }
    measurements = {
        "phase1_train_error": trained, "phase1_zero_at": _first_zero_step(phase1),
        "baseline_train_loss": s.baseline_train_loss, "baseline_test_loss": s.baseline_test_loss,
        "baseline_norm": s.baseline_norm, "kicked_train_loss": s.kicked_train_loss.tolist(),
        "end_train_loss": s.end_train_loss.tolist(), "end_train_error": s.end_train_error.tolist(),
        "end_test_loss": s.end_test_loss.tolist(), "end_norm": s.end_norm.tolist(),
        "control_test_loss": s.control_test_loss, "control_norm": s.control_norm,
        "perturbed_test_error_final": float(np.mean(_last(perturbed, "test_error"))),
        "control_test_error_final": float(np.mean(_last(control, "test_error"))),
        "statuses": [_status(phase1), _status(perturbed), _status(control)],
    }
    arrays = {"t_phase1": np.asarray(phase1.t), "t_phase2": np.asarray(perturbed.t) + cfg.train_steps}
    for name, traj in (("phase1", phase1), ("perturbed", perturbed), ("control", control)):
        arrays |= {f"{name}_{k}": np.asarray(traj.metrics[k]) for k in ("train_loss", "test_loss", "norm", "test_error")}
    notes = ("CIFAR-10 is not available: the paper's 5-layer CNN (4 convolutional layers of 16, 32, 64, 128 channels and "
             "a fully connected layer) is replaced by a fully connected ReLU network with hidden widths "
             f"{list(cfg.hidden)} on the 8x8 digits; GD steps stand for the paper's epochs (full-batch GD, so one step "
             "is one epoch). Biases are perturbed like weight layers, each with its own standard deviation. The full "
             "size waits 1,000 steps between kicks, not the paper's 100 epochs, to give GD time to return: with 200 "
             "steps the four-hidden-layer network did not get back (measured, seed 0: round-end training losses "
             "0.003-0.08 against 0.002 before the first kick, training errors up to 2%, after kicks that raised the "
             "loss to 0.24-0.55); with 1,000 steps it did not fully either (seed 0: 0.0026-0.061 against 0.0011, "
             "training errors up to 2%), while the two-hidden-layer network of the quick size does.")
    return ExperimentResult(name="fig3", title="Perturbations of a deep network at zero training error", size=size,
                            seed=seed, setup=setup, measurements=measurements, claims=claims, figures=figures,
                            arrays=arrays, notes=notes)
