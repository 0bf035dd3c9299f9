r"""The paper's predictions about training, each as a check with measured numbers and a verdict.

*Theory of Deep Learning III* predicts what gradient descent does near and on
the way to the degenerate minima of an overparametrized network.  Each
function here runs the dynamics (:func:`gradflow.gd`,
:class:`gradflow.GradientFlow`) on an :class:`~gradflow.Objective`, measures
the quantity the paper talks about, computes what the paper predicts for it,
and decides ``"holds"``, ``"does not hold"`` or ``"inconclusive"``
(:mod:`gradflow._verdict`):

* :func:`perturbation_response` (Section 4.1, Equation 6): after a small
  perturbation :math:`\delta` of a minimum :math:`w^*` and GD back to zero
  loss, the weights end at :math:`w^* + P_c\delta`: the component of
  :math:`\delta` in the null space (center subspace) of the Hessian is kept,
  the stable component is undone.
* :func:`perturbation_walk` (Section 4.1, Figures 4 and 16): ``m`` rounds of
  perturb-then-converge make the null-space component random-walk,
  :math:`\mathbb E\|P_c(w_m - w^*)\|^2 = m\,\sigma^2 N` (``N`` the nullity),
  so the norm grows like :math:`\sqrt m`.
* :func:`min_norm` (SI 6.2.1 Lemmas 2--3, Corollary 1; SI 6.2.2 Theorem 2):
  GD and the flow from zero (feature regression) or from a first layer in the
  row space of the data (deep linear nets) converge to the pseudoinverse
  solution.
* :func:`max_margin` (Section 3.2): on separable data the logistic and
  cross-entropy losses drive :math:`w(t)/\|w(t)\|` to the hard-margin SVM
  direction at rate :math:`1/\log t` while :math:`\|w(t)\|` grows like
  :math:`\|\hat w\|\log t`.
* :func:`early_stopping` (Sections 3.1, 6.1; Figures 8, 15, 16): GD after
  ``t`` steps acts like ridge regression with :math:`\lambda = 1/(\eta t)`,
  direction by direction, and in the degenerate case the test loss has its
  minimum at a finite ``t``.

Every report is a frozen dataclass with the measured and predicted numbers,
a ``verdict``, a readable ``message`` and ``summary()`` (also its ``str``).
Bad input raises ``ValueError`` / ``TypeError`` naming the parameter.

NumPy only: the checks convert the objective's arrays to NumPy at their
boundary (their results are small).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.optimize

from . import _backend
from ._validation import check_int, check_real, check_seed, describe
from ._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, combine, verdict_of
from .descent import Perturbation, gd
from .flow import GradientFlow
from .linearize import equilibrium_linearization
from .models import DeepLinear, FeatureRegression
from .objective import Objective

__all__ = [
    "perturbation_response", "perturbation_walk", "min_norm", "max_margin", "early_stopping",
    "PerturbationResponseReport", "PerturbationWalkReport", "MinNormReport", "MaxMarginReport", "EarlyStoppingReport",
]

# ----------------------------------------------------------------------------- defaults
#: Step size of GD in every check (the paper's Figures 4, 15, 16).
DEFAULT_LR = 0.2
#: Seed of every random draw (perturbations).
DEFAULT_SEED = 0

#: :func:`perturbation_response`: standard deviation of each entry of the perturbation :math:`\delta`.
RESPONSE_SIGMA = 1e-2
#: :func:`perturbation_response`: GD steps after the perturbation (one round of the paper's Figure 4).
RESPONSE_STEPS = 4000
#: :func:`perturbation_response`: largest :math:`\|\Delta - P_c\delta\|/\|\delta\|` for the linear picture to hold.
RESPONSE_RTOL = 0.05
#: Training loss "returns" when its excess over :math:`L(w^*)` falls below this fraction of the excess the
#: perturbation caused (plus :data:`LOSS_ATOL`).
RETURN_RTOL = 1e-6
#: Absolute slack on losses compared to zero (rounding of a sum of squares near 0).
LOSS_ATOL = 1e-14

#: :func:`perturbation_walk`: GD steps between perturbations (Figure 4).
WALK_EVERY = 4000
#: :func:`perturbation_walk`: standard deviation of the perturbations (Figure 4).
WALK_SIGMA = 0.6
#: :func:`perturbation_walk`: number of perturb-then-converge rounds (Figure 4: 250,000 / 4,000).
WALK_ROUNDS = 62
#: :func:`perturbation_walk`: independent repetitions (Figure 4).
WALK_REPETITIONS = 30
#: :func:`perturbation_walk`: relative tolerance on the slope of the squared displacement against :math:`\sigma^2 N`.
WALK_RTOL = 0.1
#: :func:`perturbation_walk`: the slope may also differ from the prediction by this many standard errors.
WALK_Z = 4.0
#: :func:`perturbation_walk`: the walk is undecided ("inconclusive") when ``WALK_Z`` standard errors of the slope
#: exceed this fraction of the predicted slope :math:`\sigma^2 N` (too few repetitions or rounds to tell).
WALK_MAX_RELATIVE_ERROR = 0.5

#: :func:`min_norm`: GD steps (and flow time ``lr * steps``).
MIN_NORM_STEPS = 50_000
#: :func:`min_norm`: largest relative distance to the pseudoinverse solution for "holds".
MIN_NORM_RTOL = 1e-3
#: :func:`min_norm`: GD has converged when the excess training loss is below this fraction of the initial one.
CONVERGED_RTOL = 1e-8
#: :func:`min_norm`: standard deviation of the default random start of a deep linear net (rows of ``W1`` in the
#: data's row space).
MIN_NORM_INIT_SCALE = 0.1
#: :func:`min_norm`: tolerances of the gradient-flow integration (``method="flow"``).
FLOW_RTOL, FLOW_ATOL = 1e-10, 1e-12

#: :func:`max_margin`: GD step size.
MARGIN_LR = 1.0
#: :func:`max_margin`: GD steps (a long run on a tiny problem is cheap).
MARGIN_STEPS = 1_000_000
#: :func:`max_margin`: the fits use the times in the last this-many decades of the run.
MARGIN_FIT_DECADES = 1.0
#: :func:`max_margin`: relative tolerance of the slope of :math:`\|w\|` against :math:`\log t` versus :math:`\|\hat w\|`.
MARGIN_NORM_RTOL = 0.2
#: :func:`max_margin`: :math:`\theta\log t` may grow by at most this factor over the fit window.
MARGIN_ANGLE_SLACK = 0.05
#: :func:`max_margin`: an angle (radians) this small counts as already aligned with the SVM direction.
MARGIN_ANGLE_ATOL = 1e-10
#: :func:`max_margin`: the hard-margin problem counts as feasible when every margin is at least ``1 - this``.
MARGIN_FEASIBILITY_TOL = 1e-6

#: :func:`early_stopping`: GD steps (Figure 15).
EARLY_STEPS = 250_000
#: :func:`early_stopping`: largest gap between the GD and ridge filter factors, direction by direction.  The
#: continuous-time filters :math:`1 - e^{-x}` and :math:`x/(1 + x)` (:math:`x = \eta\lambda_j t`) differ by at most
#: 0.2036 (at :math:`x \approx 2.51`).  GD's :math:`1 - (1 - \eta\lambda_j)^t` departs further as
#: :math:`\eta\lambda_j` grows: the largest gap over integer ``t`` is 0.214 at :math:`\eta\lambda = 0.1`, 0.234 at
#: 0.258 (Figure 15's :math:`\eta\lambda_{\max}`), 0.275 at 0.5, 0.5 at 1 and 0.9 at 1.5 (all at ``t = 1`` from
#: :math:`\eta\lambda \approx 0.8` on), so this tolerance accepts :math:`\eta\lambda_{\max} \lesssim 0.35`.
EARLY_FILTER_TOL = 0.25
#: :func:`early_stopping`: the test loss overfits when its final value exceeds its minimum by this fraction.
EARLY_OVERFIT_RTOL = 1e-3
#: :func:`early_stopping`: differences of test losses below this fraction of the largest one are rounding error.
EARLY_ROUNDING_RTOL = 1e-12
#: Recorded points per decade of iterations in the log-spaced runs of :func:`early_stopping` and :func:`max_margin`.
POINTS_PER_DECADE = 100

_EPS = float(np.finfo(np.float64).eps)
#: How :func:`perturbation_response` and :func:`perturbation_walk` tell the caller to refine a ``w_star`` that is
#: not an equilibrium (the ValueError of :func:`gradflow.linearize.equilibrium_linearization`).
EQUILIBRIUM_HINT = "gf.find_equilibrium(obj, w_star), or run GD longer first"


# ============================================================================= reports
class _Report:
    """Shared printing of the reports: ``summary()`` lists the numbers, the verdict and the message."""

    _title = ""

    def _rows(self) -> list:
        return []

    def summary(self) -> str:
        """A printable multi-line summary: the claim, the measured and predicted numbers, the verdict."""
        lines = [f"{self._title}: {self.verdict}"]
        width = max((len(name) for name, _ in self._rows()), default=0)
        for name, value in self._rows():
            lines.append(f"  {name:<{width}}  {_fmt(value)}")
        lines.append(f"  {self.message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


@dataclasses.dataclass(frozen=True, eq=False)
class PerturbationResponseReport(_Report):
    r"""What :func:`perturbation_response` measured (Section 4.1, Equation 6).

    The linear picture predicts the end point :math:`w^* + P_c\delta` (plus
    :math:`e^{\dots}`-small stable remainders), with :math:`P_c` the orthogonal
    projector on the center subspace (null space of :math:`H = \nabla^2 L(w^*)`).

    Attributes
    ----------
    w_star, delta, w_final : ndarray, shape (P,)
        The minimum, the perturbation and the end of GD from ``w_star + delta``.
    predicted : ndarray, shape (P,)
        :math:`w^* + P_c\delta`.
    kind : str
        The type of ``w_star`` (:func:`gradflow.linearize`): ``"sink"``, ``"non-hyperbolic"``, ``"saddle"``, ...
    nullity, n_unstable : int
        Dimensions of the center and unstable subspaces at ``w_star``.
    delta_norm, delta_null_norm, delta_stable_norm : float
        :math:`\|\delta\|`, :math:`\|P_c\delta\|`, :math:`\|P_s\delta\|`.
    loss_star, loss_perturbed, loss_final : float
        Training loss at ``w_star``, after the perturbation, after GD.
    returned : bool
        :math:`|L_{\text{final}} - L^*| \le` ``RETURN_RTOL`` :math:`|L_{\text{perturbed}} - L^*|` + ``LOSS_ATOL``.
    null_kept_error : float
        :math:`\|P_c(\Delta - \delta)\| / \|P_c\delta\|` with :math:`\Delta = w_{\text{final}} - w^*` (0 when
        the null-space part is kept exactly; ``nan`` when there is no null space).
    stable_remaining : float
        :math:`\|P_s\Delta\| / \|P_s\delta\|`: the fraction of the stable part not undone.
    deviation : float
        :math:`\|\Delta - P_c\delta\| / \|\delta\|`, the error of the linear prediction.
    rtol : float
        Largest ``deviation`` for "holds".
    steps, lr : int, float
    status : str
        The GD run's status.
    verdict, message : str
    """

    w_star: np.ndarray
    delta: np.ndarray
    w_final: np.ndarray
    predicted: np.ndarray
    kind: str
    nullity: int
    n_unstable: int
    delta_norm: float
    delta_null_norm: float
    delta_stable_norm: float
    loss_star: float
    loss_perturbed: float
    loss_final: float
    returned: bool
    null_kept_error: float
    stable_remaining: float
    deviation: float
    rtol: float
    steps: int
    lr: float
    status: str
    verdict: str
    message: str

    _title = "perturbation response (Section 4.1)"

    def _rows(self):
        return [("kind of w*", self.kind), ("nullity", self.nullity), ("unstable dims", self.n_unstable),
                ("|delta|", self.delta_norm), ("|P_c delta|", self.delta_null_norm),
                ("|P_s delta|", self.delta_stable_norm), ("loss at w*", self.loss_star),
                ("loss perturbed", self.loss_perturbed), ("loss after GD", self.loss_final),
                ("training loss returned", self.returned), ("null part kept, rel. error", self.null_kept_error),
                ("stable part remaining", self.stable_remaining), ("deviation from w*+P_c delta", self.deviation),
                ("tolerance", self.rtol)]


@dataclasses.dataclass(frozen=True, eq=False)
class PerturbationWalkReport(_Report):
    r"""What :func:`perturbation_walk` measured (Section 4.1, Figures 4 and 16).

    Attributes
    ----------
    rounds : ndarray, shape (M,)
        ``1, ..., M``.
    displacement_sq : ndarray, shape (M,)
        :math:`\overline{\|w_m - w^*\|^2}`, the mean over repetitions after round ``m``.
    null_sq : ndarray, shape (M,)
        :math:`\overline{\|P_c(w_m - w^*)\|^2}`.
    stable_sq : ndarray, shape (M,)
        :math:`\overline{\|P_s(w_m - w^*)\|^2}`: what GD failed to undo.
    norm : ndarray, shape (M + 1,)
        Mean weight norm :math:`\overline{\|w_m\|}`, ``m = 0, ..., M``.
    train_loss, test_loss : ndarray, shape (M + 1,)
        Mean training / test loss after each round (``nan`` test loss without a test set).
    nullity : int
        ``N``, the dimension of the null space of the Hessian at ``w_star``.
    sigma : float
    predicted_slope : float
        :math:`\sigma^2 N`.
    slope, slope_stderr : float
        Least-squares slope through the origin of :math:`\|w_m - w^*\|^2` against ``m``, averaged over the
        repetitions, and its standard error over them.
    null_slope : float
        The same slope for the null-space component only.
    norm_exponent : float
        Log-log slope of :math:`\sqrt{\overline{\|w_m - w^*\|^2}}` against ``m`` (:math:`\frac12` for a random walk).
    returned : bool
        Whether the training loss went back to :math:`L(w^*)` after every round (see :data:`RETURN_RTOL`;
        the perturbation's expected excess is :math:`\frac12\sigma^2\operatorname{tr}H`).
    max_excess_loss : float
        Largest mean excess training loss at the end of a round.
    repetitions, every, steps : int
    lr, rtol : float
    status : str
    verdict, message : str
    """

    rounds: np.ndarray
    displacement_sq: np.ndarray
    null_sq: np.ndarray
    stable_sq: np.ndarray
    norm: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    nullity: int
    sigma: float
    predicted_slope: float
    slope: float
    slope_stderr: float
    null_slope: float
    norm_exponent: float
    returned: bool
    max_excess_loss: float
    repetitions: int
    every: int
    steps: int
    lr: float
    rtol: float
    status: str
    verdict: str
    message: str

    _title = "perturbation random walk (Section 4.1)"

    def _rows(self):
        return [("rounds", int(self.rounds[-1]) if self.rounds.size else 0), ("repetitions", self.repetitions),
                ("sigma", self.sigma), ("nullity N", self.nullity), ("predicted slope sigma^2 N", self.predicted_slope),
                ("measured slope of |w_m - w*|^2", self.slope), ("its standard error", self.slope_stderr),
                ("null-space slope", self.null_slope), ("norm exponent (1/2 predicted)", self.norm_exponent),
                ("training loss returned", self.returned), ("largest excess loss", self.max_excess_loss),
                ("norm before / after", f"{self.norm[0]:.6g} / {self.norm[-1]:.6g}")]


@dataclasses.dataclass(frozen=True, eq=False)
class MinNormReport(_Report):
    r"""What :func:`min_norm` measured (SI 6.2.1 Lemmas 2--3, Corollary 1; SI 6.2.2 Lemma 4, Theorem 2).

    For feature regression the compared vector is ``w`` itself; for a deep
    linear net the end-to-end matrix :math:`A = W_{H+1}\cdots W_1` (flattened).

    Attributes
    ----------
    model : str
        ``"feature_regression"`` or ``"deep_linear"``.
    method : str
        ``"gd"`` or ``"flow"``.
    w_final : ndarray, shape (P,)
    solution, pseudoinverse : ndarray
        The end point's linear map (``w`` or :math:`A`, flat) and the minimum-norm one,
        :math:`w^\dagger = \Phi^+ y` or :math:`A^\dagger = (X^+ Y)^\top`.
    distance : float
        :math:`\|\text{solution} - \text{pseudoinverse}\| / \|\text{pseudoinverse}\|`.
    predicted_distance : float
        What the theory predicts for this start: for feature regression the relative norm of the start's
        null-space component (kept by GD, Lemma 3); for a deep linear net
        :math:`\|W_{H+1}\cdots W_2\,W_1 P_{\text{null}}\|/\|A^\dagger\|` at the end point, with :math:`P_{\text{null}}`
        the projector on :math:`\operatorname{Null}(X)` (Lemma 4: GD never changes :math:`W_1 P_{\text{null}}`).
    null_component_start, null_component_final : float
        :math:`\|P_{\text{null}}w\|` (feature regression) or :math:`\|W_1 P_{\text{null}}\|_F` (deep linear) at
        the start and the end.
    loss_initial, loss_final, loss_pseudoinverse : float
        Training losses at the start, the end and of the pseudoinverse solution.
    converged : bool
        ``loss_final - loss_pseudoinverse <= CONVERGED_RTOL * (loss_initial - loss_pseudoinverse)``.
    rtol : float
    status : str
    verdict, message : str
    """

    model: str
    method: str
    w_final: np.ndarray
    solution: np.ndarray
    pseudoinverse: np.ndarray
    distance: float
    predicted_distance: float
    null_component_start: float
    null_component_final: float
    loss_initial: float
    loss_final: float
    loss_pseudoinverse: float
    converged: bool
    rtol: float
    status: str
    verdict: str
    message: str

    _title = "minimum-norm solution (Lemmas 2-3, Corollary 1, Theorem 2)"

    def _rows(self):
        return [("model", self.model), ("dynamics", self.method), ("loss start / end", f"{self.loss_initial:.6g} / "
                f"{self.loss_final:.6g}"), ("loss of pseudoinverse", self.loss_pseudoinverse),
                ("converged", self.converged), ("distance to pseudoinverse", self.distance),
                ("predicted distance", self.predicted_distance), ("null component start", self.null_component_start),
                ("null component end", self.null_component_final), ("tolerance", self.rtol)]


@dataclasses.dataclass(frozen=True, eq=False)
class MaxMarginReport(_Report):
    r"""What :func:`max_margin` measured (Section 3.2).

    Attributes
    ----------
    separable : bool
        Whether the hard-margin problem :math:`\min\|w\|^2` s.t. all margins :math:`\ge 1` is feasible.
    svm : ndarray, shape (P,) or None
        Its solution :math:`\hat w` (in the model's flat parameter layout), None when infeasible.
    svm_norm : float
        :math:`\|\hat w\|` (``nan`` when infeasible); the predicted slope of :math:`\|w(t)\|` against :math:`\log t`.
    t : ndarray
        Recorded iterations (log-spaced).
    angle : ndarray
        Angle in radians between :math:`w(t)` and :math:`\hat w` (``nan`` when infeasible).
    norm : ndarray
        :math:`\|w(t)\|`.
    train_error : ndarray
        Training misclassification rate.
    fit_from : int
        First iteration of the fit window.
    norm_slope, norm_intercept : float
        Least-squares fit :math:`\|w(t)\| \approx a\log t + b` over the window.
    angle_exponent : float
        Least-squares slope of :math:`\log\theta` against :math:`\log\log t` over the window
        (``-1`` for a :math:`1/\log t` decay; steeper before the asymptotic regime).
    angle_log_t_start, angle_log_t_end : float
        :math:`\theta\log t` at the ends of the window: a decay at least like :math:`1/\log t` keeps it from growing.
    final_angle, final_norm, final_train_error, final_loss : float
    norm_rtol : float
    status : str
    verdict, message : str
    """

    separable: bool
    svm: np.ndarray | None
    svm_norm: float
    t: np.ndarray
    angle: np.ndarray
    norm: np.ndarray
    train_error: np.ndarray
    fit_from: int
    norm_slope: float
    norm_intercept: float
    angle_exponent: float
    angle_log_t_start: float
    angle_log_t_end: float
    final_angle: float
    final_norm: float
    final_train_error: float
    final_loss: float
    norm_rtol: float
    status: str
    verdict: str
    message: str

    _title = "max-margin direction (Section 3.2)"

    def _rows(self):
        return [("separable", self.separable), ("|w_svm|", self.svm_norm), ("steps", int(self.t[-1]) if self.t.size else 0),
                ("final angle (rad)", self.final_angle), ("angle * log t, window start / end",
                 f"{self.angle_log_t_start:.6g} / {self.angle_log_t_end:.6g}"),
                ("p in angle ~ (log t)^-p", self.angle_exponent), ("final |w|", self.final_norm),
                ("slope of |w| vs log t", self.norm_slope), ("final train error", self.final_train_error),
                ("final loss", self.final_loss)]


@dataclasses.dataclass(frozen=True, eq=False)
class EarlyStoppingReport(_Report):
    r"""What :func:`early_stopping` measured (Sections 3.1, 6.1; Figures 8, 15, 16).

    Attributes
    ----------
    t : ndarray, shape (T,)
        Recorded iterations (log-spaced, 0 first).
    test_loss, train_loss : ndarray, shape (T,)
        Along GD.
    ridge_test_loss : ndarray, shape (T,)
        Of ridge regression with :math:`\lambda = 1/(\eta t)` (``nan`` at ``t = 0``).
    eigenvalues : ndarray
        The nonzero eigenvalues :math:`\lambda_j` of :math:`H` whose directions are compared.
    filter_gd, filter_ridge : ndarray, shape (T, n_directions)
        Per direction: GD's coefficient divided by the pseudoinverse solution's,
        :math:`c_j(t)/c_j^\dagger` (``1 - (1 - \eta\lambda_j)^t`` from zero), and ridge's
        :math:`\lambda_j/(\lambda_j + 1/(\eta t))`.
    filter_gap : float
        :math:`\max_{t, j}|f^{GD}_j(t) - f^{ridge}_j(t)|`.
    relative_distance : float
        :math:`\max_t \|P_{\text{range}}(w_{GD}(t) - w_\lambda)\| / \|w^\dagger\|`.
    best_t : int
        Iteration with the smallest test loss.
    best_test_loss, final_test_loss : float
    overfit : float
        ``final_test_loss / best_test_loss - 1``.
    finite_optimum : bool
        ``0 < best_t < t[-1]`` and ``final - best >= overfit_rtol * best`` plus a rounding floor
        (``EARLY_ROUNDING_RTOL`` times the largest test loss).
    ridge_best_lambda : float
        The :math:`\lambda` on the grid with the smallest ridge test loss; :math:`1/(\eta\,t^*)` predicts it.
    nullity : int
        Dimension of the null space of :math:`H` (0: the nondegenerate case).
    lr_lambda_max : float
        :math:`\eta\lambda_{\max}(H)`: how far GD is from the continuous-time limit.
    expected_filter_gap : float
        The largest gap that the step size alone causes: :math:`\max_{t, j}|1 - (1 - \eta\lambda_j)^t -
        \eta\lambda_j t/(1 + \eta\lambda_j t)|` over the recorded ``t > 0`` and compared :math:`\lambda_j`
        (what ``filter_gap`` is from ``w0 = 0``; 0.2036 as :math:`\eta\lambda_j \to 0`).
    start_filter_gap : float
        The largest part of GD's filter due to the start:
        :math:`\max_{t, j}|f^{GD}_j(t) - (1 - (1 - \eta\lambda_j)^t)| = \max|(1 - \eta\lambda_j)^t c_j(0)/c_j^\dagger|`
        (0 from ``w0 = 0``).
    filter_tol, overfit_rtol, lr : float
    status : str
    verdict, message : str
    """

    t: np.ndarray
    test_loss: np.ndarray
    train_loss: np.ndarray
    ridge_test_loss: np.ndarray
    eigenvalues: np.ndarray
    filter_gd: np.ndarray
    filter_ridge: np.ndarray
    filter_gap: float
    relative_distance: float
    best_t: int
    best_test_loss: float
    final_test_loss: float
    overfit: float
    finite_optimum: bool
    ridge_best_lambda: float
    nullity: int
    lr_lambda_max: float
    expected_filter_gap: float
    start_filter_gap: float
    filter_tol: float
    overfit_rtol: float
    lr: float
    status: str
    verdict: str
    message: str

    _title = "early stopping (Sections 3.1, 6.1; Figures 8, 15)"

    def _rows(self):
        return [("nullity of H", self.nullity), ("steps", int(self.t[-1]) if self.t.size else 0),
                ("GD vs ridge filter gap", self.filter_gap), ("tolerance", self.filter_tol),
                ("lr * lambda_max", self.lr_lambda_max), ("gap due to the step size", self.expected_filter_gap),
                ("gap due to the start", self.start_filter_gap),
                ("relative distance GD vs ridge", self.relative_distance), ("best t", self.best_t),
                ("test loss best / final", f"{self.best_test_loss:.6g} / {self.final_test_loss:.6g}"),
                ("overfit", self.overfit), ("finite optimum", self.finite_optimum),
                ("ridge best lambda", self.ridge_best_lambda),
                ("1/(lr t*)", 1.0 / (self.lr * self.best_t) if self.best_t > 0 else math.inf)]


# ============================================================================= perturbation response
def perturbation_response(obj, w_star, sigma=RESPONSE_SIGMA, lr=DEFAULT_LR, steps=RESPONSE_STEPS, seed=DEFAULT_SEED,
                          delta=None, rtol=RESPONSE_RTOL) -> PerturbationResponseReport:
    r"""Perturb a minimum, run GD back to zero loss, and compare the end point with :math:`w^* + P_c\delta`.

    Section 4.1 linearizes the flow at a minimum, :math:`\delta\dot W = -H\,\delta W`
    (Equation 6, :math:`H = \nabla^2 L(W^*)`).  The stable components of a
    perturbation :math:`\delta` decay, the components in the null space of
    :math:`H` (the degenerate directions of Figure 2) do not move, so GD from
    :math:`w^* + \delta` ends at

    .. math::

        w_\infty \approx w^* + P_c\,\delta, \qquad L(w_\infty) = L(w^*),

    with :math:`P_c` the projector on the center subspace.  This is exact for
    a quadratic loss (feature regression) and holds to :math:`O(\|\delta\|^2)`
    for a nonlinear one; it fails at a point that is not a minimum (the
    unstable part grows) or for a perturbation too large for the linear picture.

    Parameters
    ----------
    obj : Objective
        A square-loss objective (other losses have no minima at finite weights).
    w_star : array, shape (P,)
        An equilibrium, :math:`\nabla L(w^*) \approx 0` (ValueError otherwise, with the gradient norm).
    sigma : float, default ``RESPONSE_SIGMA`` = 1e-2
        Standard deviation of each entry of :math:`\delta`, > 0 (ignored when ``delta`` is given).
    lr : float, default ``DEFAULT_LR`` = 0.2
    steps : int, default ``RESPONSE_STEPS`` = 4000
        GD steps after the perturbation (one round of the paper's Figure 4).
    seed : int, default ``DEFAULT_SEED`` = 0
        :math:`\delta` is ``Perturbation(1, sigma, seed=seed).noise(1, w_star)``.
    delta : array, shape (P,), optional
        The perturbation itself.
    rtol : float, default ``RESPONSE_RTOL`` = 0.05
        Largest :math:`\|w_{\text{final}} - w^* - P_c\delta\| / \|\delta\|` for "holds".

    Returns
    -------
    PerturbationResponseReport
        ``verdict`` "holds" when the training loss returned, ``w_star`` has no
        unstable direction and the deviation from :math:`w^* + P_c\delta` is
        within ``rtol``; "inconclusive" when GD diverged.
    """
    obj = _validate_objective(obj)
    _require_square_loss(obj, "perturbation_response")
    w_star = _validate_point(obj, w_star, "w_star")
    sigma = check_real("sigma", sigma, minimum=0.0, strict=True)
    lr = check_real("lr", lr, minimum=0.0, strict=True)
    steps = check_int("steps", steps, minimum=1)
    seed = check_seed(seed)
    rtol = check_real("rtol", rtol, minimum=0.0, strict=True)
    lin = equilibrium_linearization(obj, w_star, hint=EQUILIBRIUM_HINT)
    if delta is None:
        delta = Perturbation(every=1, sigma=sigma, seed=seed).noise(1, w_star)
    else:
        delta = _validate_point(obj, delta, "delta")
        if not np.any(delta):
            raise ValueError("`delta` must be a nonzero perturbation; got the zero vector. Pass delta=None to draw one.")

    center = _np(lin.center)
    stable = _np(lin.stable)
    d_null = center @ (center.T @ delta)
    d_stable = stable @ (stable.T @ delta)
    predicted = w_star + d_null
    traj = gd(obj, w_star + delta, lr=lr, steps=steps, record_every=steps, progress=False)
    loss_star = _loss(obj, w_star)
    loss_perturbed = _loss(obj, w_star + delta)
    if not traj.success:
        message = f"GD after the perturbation did not finish ({traj.status}): {traj.message}"
        nan = math.nan
        return PerturbationResponseReport(
            w_star=w_star, delta=delta, w_final=np.asarray(traj.w[-1]) if traj.n_points else w_star + delta,
            predicted=predicted, kind=lin.kind, nullity=lin.nullity, n_unstable=lin.dims["unstable"],
            delta_norm=_n(delta), delta_null_norm=_n(d_null), delta_stable_norm=_n(d_stable), loss_star=loss_star,
            loss_perturbed=loss_perturbed, loss_final=nan, returned=False, null_kept_error=nan, stable_remaining=nan,
            deviation=nan, rtol=rtol, steps=steps, lr=lr, status=traj.status, verdict=INCONCLUSIVE, message=message)
    w_final = np.asarray(traj.w[-1], dtype=np.float64)
    loss_final = _loss(obj, w_final)
    shift = w_final - w_star
    returned = abs(loss_final - loss_star) <= RETURN_RTOL * abs(loss_perturbed - loss_star) + LOSS_ATOL
    null_kept = _n(center.T @ (shift - delta)) / _n(d_null) if _n(d_null) > 0 else math.nan
    stable_left = _n(stable.T @ shift) / _n(d_stable) if _n(d_stable) > 0 else 0.0
    deviation = _n(shift - d_null) / _n(delta)
    n_unstable = lin.dims["unstable"]
    ok = returned and n_unstable == 0 and deviation <= rtol
    verdict = verdict_of(ok)
    facts = (f"after {steps} GD steps from w* + delta (|delta| = {_n(delta):.3g}, null part {_n(d_null):.3g}) the "
             f"training loss is {loss_final:.3g} (at w*: {loss_star:.3g}, perturbed: {loss_perturbed:.3g}); the end "
             f"point is {deviation:.3g} |delta| from the prediction w* + P_c delta")
    if ok:
        message = f"Holds: {facts} (tolerance {rtol:g}): the null-space part was kept, the stable part undone."
    else:
        reasons = []
        if n_unstable:
            reasons.append(f"w* is a {lin.kind} with {n_unstable} unstable direction(s), not a minimum")
        if not returned:
            reasons.append("the training loss did not return to its value at w* (raise `steps`, or w* is not a minimum)")
        if deviation > rtol:
            reasons.append(f"the deviation {deviation:.3g} exceeds {rtol:g} (the perturbation is too large for the "
                           "linear picture, or GD left the neighbourhood of w*)")
        message = f"Does not hold: {facts}; " + "; ".join(reasons) + "."
    return PerturbationResponseReport(
        w_star=w_star, delta=delta, w_final=w_final, predicted=predicted, kind=lin.kind, nullity=lin.nullity,
        n_unstable=n_unstable, delta_norm=_n(delta), delta_null_norm=_n(d_null), delta_stable_norm=_n(d_stable),
        loss_star=loss_star, loss_perturbed=loss_perturbed, loss_final=loss_final, returned=bool(returned),
        null_kept_error=null_kept, stable_remaining=stable_left, deviation=deviation, rtol=rtol, steps=steps, lr=lr,
        status=traj.status, verdict=verdict, message=message)


# ============================================================================= perturbation walk
def perturbation_walk(obj, w_star, rounds=WALK_ROUNDS, every=WALK_EVERY, sigma=WALK_SIGMA,
                      repetitions=WALK_REPETITIONS, lr=DEFAULT_LR, seed=DEFAULT_SEED,
                      rtol=WALK_RTOL) -> PerturbationWalkReport:
    r"""``rounds`` rounds of perturb-then-converge from a minimum: does :math:`\|w_m - w^*\|^2` grow like :math:`m\sigma^2 N`?

    The protocol of Figure 4: Gaussian noise :math:`\varepsilon_k \sim \mathcal N(0, \sigma^2 I_P)`
    every ``every`` GD steps (:class:`gradflow.Perturbation`).  GD undoes the
    stable part of each kick and keeps its null-space part (Section 4.1), so
    after ``m`` rounds :math:`w_m - w^* \approx P_c\sum_{k\le m}\varepsilon_k`, a
    random walk in the ``N``-dimensional null space:

    .. math::

        \mathbb E\,\|w_m - w^*\|^2 = m\,\sigma^2 N, \qquad
        \|w_m - w^*\| \approx \sigma\sqrt{N m}

    (the paper's "norm of the degenerate components :math:`\propto\sqrt m`";
    for unit-norm kicks, :math:`\sigma^2 = 1/P`, the constant is
    :math:`\sqrt{N/P}`).  With ``N = 0`` (a nondegenerate minimum, Figure 16)
    there is no null space to random-walk in: the predicted slope is
    :math:`\sigma^2 N = 0`, the claim does not apply, and the check reports
    "inconclusive" with the measured slope.

    Parameters
    ----------
    obj : Objective
        A square-loss objective.
    w_star : array, shape (P,)
        An equilibrium (ValueError otherwise).
    rounds : int, default ``WALK_ROUNDS`` = 62
        Number of perturbations ``M`` (Figure 4: 250,000 / 4,000), >= 2.
    every : int, default ``WALK_EVERY`` = 4000
        GD steps after each perturbation.
    sigma : float, default ``WALK_SIGMA`` = 0.6
    repetitions : int, default ``WALK_REPETITIONS`` = 30
        Independent runs (batched in one :func:`gradflow.gd` call), >= 2.
    lr : float, default ``DEFAULT_LR`` = 0.2
    seed : int, default ``DEFAULT_SEED`` = 0
    rtol : float, default ``WALK_RTOL`` = 0.1
        The measured slope must be within ``max(rtol * sigma^2 N, WALK_Z * stderr)`` of :math:`\sigma^2 N`.

    Returns
    -------
    PerturbationWalkReport
        "holds" when ``N > 0``, the training loss returned after every round
        and the slope matches :math:`\sigma^2 N`; "does not hold" when the
        training loss did not return after a round (too few steps between
        kicks) or the slope differs from :math:`\sigma^2 N` by more than the
        tolerance; "inconclusive" when GD diverged, when ``N = 0`` (nothing
        to random-walk: the claim does not apply), or when the slope's
        statistical error is too large to decide, ``WALK_Z * stderr >
        WALK_MAX_RELATIVE_ERROR * sigma^2 N`` (raise ``repetitions`` or
        ``rounds``).

    Notes
    -----
    The slope is the least-squares slope through the origin of
    :math:`\|w_m - w^*\|^2` against ``m`` per repetition, averaged; its
    standard error is the spread over repetitions divided by
    :math:`\sqrt{R}`.  One :func:`gradflow.gd` run of ``(rounds + 1) * every``
    steps does it all (noise after steps ``every, ..., rounds * every``, records
    just before each kick and at the end).
    """
    obj = _validate_objective(obj)
    _require_square_loss(obj, "perturbation_walk")
    w_star = _validate_point(obj, w_star, "w_star")
    rounds = check_int("rounds", rounds, minimum=2)
    every = check_int("every", every, minimum=1)
    sigma = check_real("sigma", sigma, minimum=0.0, strict=True)
    repetitions = check_int("repetitions", repetitions, minimum=2)
    lr = check_real("lr", lr, minimum=0.0, strict=True)
    seed = check_seed(seed)
    rtol = check_real("rtol", rtol, minimum=0.0, strict=True)
    lin = equilibrium_linearization(obj, w_star, hint=EQUILIBRIUM_HINT)
    center, stable = _np(lin.center), _np(lin.stable)
    N = lin.nullity
    predicted = sigma * sigma * N

    steps = (rounds + 1) * every
    W0 = np.tile(w_star, (repetitions, 1))
    traj = gd(obj, W0, lr=lr, steps=steps, record_every=every, perturbation=Perturbation(every, sigma, seed=seed),
              progress=False)
    m = np.arange(1, rounds + 1, dtype=np.float64)
    empty = np.full(rounds, np.nan)
    if not traj.success or traj.n_points < rounds + 2:
        return PerturbationWalkReport(
            rounds=m, displacement_sq=empty, null_sq=empty, stable_sq=empty, norm=np.full(rounds + 1, np.nan),
            train_loss=np.full(rounds + 1, np.nan), test_loss=np.full(rounds + 1, np.nan), nullity=N, sigma=sigma,
            predicted_slope=predicted, slope=math.nan, slope_stderr=math.nan, null_slope=math.nan,
            norm_exponent=math.nan, returned=False, max_excess_loss=math.nan, repetitions=repetitions, every=every,
            steps=steps, lr=lr, rtol=rtol, status=traj.status, verdict=INCONCLUSIVE,
            message=f"GD did not finish ({traj.status}): {traj.message}")
    # record k is step k * every: record 1 is w* after GD alone, record m + 1 the end of round m
    after = np.asarray(traj.w[1:], dtype=np.float64)                    # (M + 1, R, P): rounds 0..M
    shift = after - w_star
    disp = np.einsum("mrp,mrp->mr", shift, shift)                       # (M + 1, R)
    null = np.einsum("mrk,mrk->mr", shift @ center, shift @ center)
    stab = np.einsum("mrk,mrk->mr", shift @ stable, shift @ stable)
    per_rep = (m @ disp[1:]) / (m @ m)                                  # slope through the origin, per repetition
    slope = float(per_rep.mean())
    stderr = float(per_rep.std(ddof=1) / math.sqrt(repetitions))
    null_slope = float(((m @ null[1:]) / (m @ m)).mean())
    mean_disp = disp[1:].mean(axis=1)
    norm_exponent = _loglog_slope(m, np.sqrt(mean_disp))
    train = np.asarray(traj.loss[1:], dtype=np.float64)                 # (M + 1, R), with any weight decay
    test = (np.asarray(traj.metrics["test_loss"][1:], dtype=np.float64).mean(axis=1)
            if "test_loss" in traj.metrics else np.full(rounds + 1, np.nan))
    loss_star = _loss(obj, w_star)
    hessian_trace = float(np.sum(lin.hessian_eigenvalues))
    kick_excess = 0.5 * sigma * sigma * max(hessian_trace, 0.0)
    max_excess = float(np.max(np.abs(train.mean(axis=1) - loss_star)))
    returned = bool(max_excess <= RETURN_RTOL * kick_excess + LOSS_ATOL)
    tolerance = max(rtol * predicted, WALK_Z * stderr)
    decidable = WALK_Z * stderr <= WALK_MAX_RELATIVE_ERROR * predicted
    slope_ok = N > 0 and abs(slope - predicted) <= tolerance
    norms = np.sqrt(np.einsum("mrp,mrp->mr", after, after)).mean(axis=1)
    facts = (f"{rounds} rounds x {repetitions} repetitions, sigma = {sigma:g}: the mean squared displacement "
             f"|w_m - w*|^2 grows with slope {slope:.4g} +- {stderr:.2g} per round (predicted sigma^2 N = "
             f"{predicted:.4g}, nullity N = {N}); mean norm {norms[0]:.4g} -> {norms[-1]:.4g}; norm exponent "
             f"{norm_exponent:.3f} (1/2 for a random walk)")
    return_facts = (f"the training loss did not return after every round (largest mean excess {max_excess:.3g} "
                    f"vs {kick_excess:.3g} right after a kick): raise `every` so GD converges between kicks")
    if N == 0:
        verdict = INCONCLUSIVE
        message = (f"Inconclusive: {facts}; the minimum is nondegenerate (nullity 0): there is no null space to "
                   "random-walk in (predicted slope sigma^2 N = 0), so the claim does not apply"
                   + (f"; also, {return_facts}" if not returned else
                      f"; the training loss returned after every round (largest excess {max_excess:.3g})") + ".")
    elif not returned:
        verdict = DOES_NOT_HOLD
        message = f"Does not hold: {facts}; {return_facts}."
    elif not decidable:
        verdict = INCONCLUSIVE
        message = (f"Inconclusive: {facts}; the slope's statistical error is too large to decide: {WALK_Z:g} standard "
                   f"errors = {WALK_Z * stderr:.3g} > {WALK_MAX_RELATIVE_ERROR:g} sigma^2 N = "
                   f"{WALK_MAX_RELATIVE_ERROR * predicted:.3g}; raise `repetitions` (the error falls like "
                   "1/sqrt(repetitions)) or `rounds`.")
    elif slope_ok:
        verdict = HOLDS
        message = f"Holds: {facts}; the training loss returned after every round (largest excess {max_excess:.3g})."
    else:
        verdict = DOES_NOT_HOLD
        message = (f"Does not hold: {facts}; the slope differs from sigma^2 N by {abs(slope - predicted):.3g} > "
                   f"{tolerance:.3g}.")
    return PerturbationWalkReport(
        rounds=m, displacement_sq=mean_disp, null_sq=null[1:].mean(axis=1), stable_sq=stab[1:].mean(axis=1),
        norm=norms, train_loss=train.mean(axis=1), test_loss=test, nullity=N, sigma=sigma, predicted_slope=predicted,
        slope=slope, slope_stderr=stderr, null_slope=null_slope, norm_exponent=norm_exponent, returned=returned,
        max_excess_loss=max_excess, repetitions=repetitions, every=every, steps=steps, lr=lr, rtol=rtol,
        status=traj.status, verdict=verdict, message=message)


# ============================================================================= minimum norm
def min_norm(obj, w0=None, method="gd", lr=DEFAULT_LR, steps=MIN_NORM_STEPS, t_end=None, rtol=MIN_NORM_RTOL,
             seed=DEFAULT_SEED) -> MinNormReport:
    r"""Does GD (or the flow) converge to the pseudoinverse, minimum-norm solution?

    **Feature regression** (SI 6.2.1): :math:`L(w) = \frac{1}{2n}\|\Phi w - y\|^2`.
    The gradient :math:`\frac1n\Phi^\top(\Phi w - y)` lies in the row space of
    :math:`\Phi`, so GD never changes the null-space component of ``w``
    (Lemma 3); from :math:`w_0 = 0` it converges to
    :math:`w^\dagger = \Phi^+ y = \Phi^\top(\Phi\Phi^\top)^{-1}y`, the
    minimum-norm solution (Lemma 2, Corollary 1).  From any :math:`w_0` the
    limit is :math:`w^\dagger + P_{\text{null}}w_0`, at distance
    :math:`\|P_{\text{null}}w_0\|` from it.

    **Deep linear nets** (SI 6.2.2): for :math:`f(x) = W_{H+1}\cdots W_1 x`
    the gradient with respect to :math:`W_1` is :math:`(\dots)^\top E X`, whose
    rows lie in the row space of ``X`` (Lemma 4); if the rows of :math:`W_1`
    start there and the other layers are nonzero, GD converges to the
    end-to-end map :math:`A^\dagger = (X^+ Y)^\top` (Theorem 2).

    Parameters
    ----------
    obj : Objective
        Square loss, no weight decay, a ``FeatureRegression`` or ``DeepLinear`` model.
    w0 : array, shape (P,), optional
        Start.  Default: zeros for feature regression; for a deep linear net
        ``obj.init(seed, MIN_NORM_INIT_SCALE, in_data_span=True)`` (zero is a saddle there).
    method : {"gd", "flow"}, default "gd"
        :func:`gradflow.gd` for ``steps`` steps, or :meth:`gradflow.GradientFlow.solve` up to ``t_end``.
    lr : float, default ``DEFAULT_LR`` = 0.2
    steps : int, default ``MIN_NORM_STEPS`` = 50_000
    t_end : float, optional
        Flow time; default ``lr * steps``.
    rtol : float, default ``MIN_NORM_RTOL`` = 1e-3
        Largest relative distance to the pseudoinverse solution for "holds".
    seed : int, default ``DEFAULT_SEED`` = 0
        Seed of the default deep-linear start.

    Returns
    -------
    MinNormReport
        "holds" when the run converged (excess loss below ``CONVERGED_RTOL``
        of the initial one) within ``rtol`` of the pseudoinverse solution;
        "does not hold" when it converged elsewhere (the distance is
        reported with the predicted one); "inconclusive" when it did not converge.
    """
    obj = _validate_objective(obj)
    kind = _min_norm_kind(obj)
    method = _validate_method(method)
    lr = check_real("lr", lr, minimum=0.0, strict=True)
    steps = check_int("steps", steps, minimum=1)
    t_end = lr * steps if t_end is None else check_real("t_end", t_end, minimum=0.0, strict=True)
    rtol = check_real("rtol", rtol, minimum=0.0, strict=True)
    seed = check_seed(seed)
    if w0 is None:
        w0 = np.zeros(obj.size) if kind == "feature_regression" else _np(
            obj.init(seed=seed, scale=MIN_NORM_INIT_SCALE, in_data_span=True))
    w0 = _validate_point(obj, w0, "w0")

    inputs = _np(obj._inputs)
    targets = _np(obj._targets)                                         # (n, k)
    pinv = np.linalg.pinv(inputs)
    A_dagger = (pinv @ targets).T                                       # (k, d)
    null_proj = np.eye(inputs.shape[1]) - pinv @ inputs                 # projector on Null(inputs)
    loss_dagger = float(np.sum((inputs @ A_dagger.T - targets) ** 2) / (2 * inputs.shape[0]))

    if method == "gd":
        traj = gd(obj, w0, lr=lr, steps=steps, record_every=steps, progress=False)
    else:
        traj = GradientFlow(obj).solve(w0, (0.0, t_end), t_eval=np.array([0.0, t_end]), rtol=FLOW_RTOL, atol=FLOW_ATOL)
    loss_initial = _loss(obj, w0)
    w_final = np.asarray(traj.w[-1], dtype=np.float64) if traj.n_points else w0
    A_final = _end_to_end(obj, w_final)
    scale = max(_n(A_dagger), np.finfo(float).tiny)
    distance = _n(A_final - A_dagger) / scale
    if kind == "feature_regression":
        null_start = _n(w0.reshape(A_dagger.shape) @ null_proj)
        null_final = _n(w_final.reshape(A_dagger.shape) @ null_proj)
        predicted = null_start / scale
    else:
        null_start = _n(obj.unflatten(w0)[0] @ null_proj)
        null_final = _n(obj.unflatten(w_final)[0] @ null_proj)
        W1_null = obj.unflatten(w_final)[0] @ null_proj
        predicted = _n(_end_to_end(obj, w_final, first=W1_null)) / scale
    loss_final = _loss(obj, w_final) if traj.n_points else math.nan
    excess0 = max(loss_initial - loss_dagger, np.finfo(float).tiny)
    converged = bool(traj.success and loss_final - loss_dagger <= CONVERGED_RTOL * excess0 + LOSS_ATOL)
    what = "w" if kind == "feature_regression" else "the end-to-end map W_L...W_1"
    run = f"GD ({steps} steps of lr {lr:g})" if method == "gd" else f"the gradient flow (t = {t_end:g})"
    facts = (f"{run} ends with training loss {loss_final:.3g} (start {loss_initial:.3g}, pseudoinverse "
             f"{loss_dagger:.3g}); {what} is {distance:.3g} (relative) from the pseudoinverse solution; the null-space "
             f"component went {null_start:.3g} -> {null_final:.3g} (predicted distance {predicted:.3g})")
    if not traj.success:
        verdict, message = INCONCLUSIVE, f"Inconclusive: the run did not finish ({traj.status}): {traj.message}"
    elif not converged:
        verdict = INCONCLUSIVE
        message = f"Inconclusive: {facts}; the run has not converged: raise `steps` (or `t_end`) or `lr`."
    elif distance <= rtol:
        verdict, message = HOLDS, f"Holds: {facts}."
    else:
        verdict = DOES_NOT_HOLD
        cause = ("the start has a component in the null space of the data, which GD never removes"
                 if null_start > rtol * scale else "although the start has no null-space component")
        message = (f"Does not hold: {facts}; it converged to a minimizer that is not the minimum-norm one ({cause}).")
    return MinNormReport(
        model=kind, method=method, w_final=w_final, solution=A_final.ravel(), pseudoinverse=A_dagger.ravel(),
        distance=distance, predicted_distance=predicted, null_component_start=null_start,
        null_component_final=null_final, loss_initial=loss_initial, loss_final=loss_final,
        loss_pseudoinverse=loss_dagger, converged=converged, rtol=rtol, status=traj.status, verdict=verdict,
        message=message)


def _end_to_end(obj, w, first=None) -> np.ndarray:
    """The linear map of a feature-regression or deep linear model: ``W`` or :math:`W_{H+1}\\cdots W_1`, shape (k, d)."""
    layers = [np.asarray(_np(a), dtype=np.float64) for a in obj.unflatten(w)]
    if first is not None:
        layers[0] = first
    A = layers[0]
    for W in layers[1:]:
        A = W @ A
    return A


# ============================================================================= max margin
def max_margin(obj, w0=None, lr=MARGIN_LR, steps=MARGIN_STEPS, norm_rtol=MARGIN_NORM_RTOL,
               fit_decades=MARGIN_FIT_DECADES) -> MaxMarginReport:
    r"""Logistic / cross-entropy GD on separable data: does :math:`w(t)/\|w(t)\|` approach the hard-margin SVM?

    Section 3.2, after Soudry et al.: for a model linear in its weights,
    :math:`f(x) = w^\top\phi(x)` (``k`` outputs for cross-entropy), trained
    with GD on separable data,

    .. math::

        w(t) = \hat w\,\log t + \rho(t), \qquad \rho(t)\ \text{bounded},

    with :math:`\hat w = \arg\min\{\|w\|^2 : y_i\,w^\top\phi(x_i) \ge 1\}` (binary)
    or :math:`\arg\min\{\|W\|_F^2 : (w_{y_i} - w_c)^\top\phi(x_i) \ge 1,\ c \ne y_i\}`
    (multiclass).  Hence the angle to :math:`\hat w` decays like
    :math:`1/\log t` (or faster) and :math:`\|w(t)\|` grows like
    :math:`\|\hat w\|\log t`.

    :math:`\hat w` is computed exactly as a least-distance problem,
    :math:`\min\|w\|` s.t. :math:`Gw \ge 1`, by nonnegative least squares
    (Lawson and Hanson, ch. 23; :func:`scipy.optimize.nnls`); the rows of
    ``G`` come from the model's output Jacobian (so feature regression,
    one-layer nets and biases are all handled in the flat parameter layout).
    When the problem is infeasible the data are not separable and there is
    no max-margin direction.

    Parameters
    ----------
    obj : Objective
        Loss ``"logistic"`` or ``"cross_entropy"``; a model linear in its
        weights (``FeatureRegression`` or a network with one weight layer, e.g.
        ``DeepLinear([d, k])``).  The prediction is for the unregularized
        loss; with weight decay :math:`\mu > 0` the check still runs and
        measures how the prediction fails (:math:`w(t)` converges to the
        finite minimizer of :math:`L + \frac\mu2\|w\|^2`).
    w0 : array, shape (P,), optional
        Start; default zeros.
    lr : float, default ``MARGIN_LR`` = 1.0
    steps : int, default ``MARGIN_STEPS`` = 1_000_000
        At least 100 (the fits need a range of :math:`\log t`).
    norm_rtol : float, default ``MARGIN_NORM_RTOL`` = 0.2
        Tolerance on the fitted slope of :math:`\|w\|` against :math:`\log t` relative to :math:`\|\hat w\|`.
    fit_decades : float, default ``MARGIN_FIT_DECADES`` = 1
        The fits use :math:`t \in [\text{steps}/10^{\text{fit\_decades}}, \text{steps}]`.

    Returns
    -------
    MaxMarginReport
        "holds" when the data are separable, the training error reached 0,
        the angle decreased over the window with :math:`\theta\log t` not
        growing (by more than ``MARGIN_ANGLE_SLACK``), and the norm slope is
        within ``norm_rtol`` of :math:`\|\hat w\|`; "does not hold" when the
        data are separable but one of these fails (e.g. with weight decay,
        where :math:`\|w(t)\|` converges instead of growing like
        :math:`\|\hat w\|\log t` and the angle to :math:`\hat w` stalls at
        a positive value); "inconclusive" when the data are not separable
        (there is no max-margin direction, so the claim does not apply; the
        norm's behaviour is still reported) or GD diverged.

    Notes
    -----
    How the fits are judged: the recorded times are log-spaced
    (``POINTS_PER_DECADE`` per decade); over the last ``fit_decades`` decades,
    :math:`\|w\|` is fitted by least squares as :math:`a\log t + b` and
    compared with :math:`\|\hat w\|`; the angle's decay is judged by
    :math:`\theta\log t` at both ends of the window (a :math:`1/\log t` law
    keeps it constant, a faster pre-asymptotic decay lowers it), and the
    exponent of :math:`\theta \propto (\log t)^{-p}` is reported.
    """
    obj = _validate_objective(obj)
    _require_margin_objective(obj)
    lr = check_real("lr", lr, minimum=0.0, strict=True)
    steps = check_int("steps", steps, minimum=100)
    norm_rtol = check_real("norm_rtol", norm_rtol, minimum=0.0, strict=True)
    fit_decades = check_real("fit_decades", fit_decades, minimum=0.0, strict=True)
    w0 = np.zeros(obj.size) if w0 is None else _validate_point(obj, w0, "w0")

    svm, separable = _hard_margin(obj)
    t, W, status, message_gd = _gd_log_records(obj, w0, lr, steps)
    norm = np.linalg.norm(W, axis=1)
    metrics = obj.metrics(W) if W.shape[0] else {"train_error": np.zeros(0), "train_loss": np.zeros(0)}
    train_error = np.asarray(_np(metrics["train_error"]), dtype=np.float64)
    loss = np.asarray(_np(metrics["train_loss"]), dtype=np.float64)
    if separable:
        u = svm / _n(svm)
        along = W @ u
        across = np.linalg.norm(W - along[:, None] * u[None, :], axis=1)
        angle = np.where(norm > 0, np.arctan2(across, along), np.nan)   # accurate near 0, unlike arccos
    else:
        angle = np.full(t.shape, np.nan)
    fit_from = max(2, int(round(steps / 10 ** fit_decades)))
    window = t >= fit_from
    nan = math.nan
    if status != "success" or window.sum() < 3:
        return MaxMarginReport(
            separable=separable, svm=svm if separable else None, svm_norm=_n(svm) if separable else nan, t=t,
            angle=angle, norm=norm, train_error=train_error, fit_from=fit_from, norm_slope=nan, norm_intercept=nan,
            angle_exponent=nan, angle_log_t_start=nan, angle_log_t_end=nan,
            final_angle=float(angle[-1]) if angle.size else nan, final_norm=float(norm[-1]) if norm.size else nan,
            final_train_error=float(train_error[-1]) if train_error.size else nan,
            final_loss=float(loss[-1]) if loss.size else nan, norm_rtol=norm_rtol, status=status, verdict=INCONCLUSIVE,
            message=(f"Inconclusive: GD did not finish ({status}): {message_gd}" if status != "success" else
                     f"Inconclusive: the fit window t >= {fit_from} holds fewer than 3 records; raise `fit_decades`."))
    log_t = np.log(t[window])
    slope, intercept = np.polyfit(log_t, norm[window], 1)
    final_error = float(train_error[-1])
    if separable:
        svm_norm = _n(svm)
        a_start, a_end = float(angle[window][0]), float(angle[-1])
        theta_log_start, theta_log_end = a_start * log_t[0], a_end * log_t[-1]
        exponent = -_loglog_slope(log_t, angle[window]) if np.all(angle[window] > MARGIN_ANGLE_ATOL) else math.nan
        angle_ok = a_end <= MARGIN_ANGLE_ATOL or (
            a_end < a_start and theta_log_end <= (1.0 + MARGIN_ANGLE_SLACK) * theta_log_start)
        norm_ok = abs(slope / svm_norm - 1.0) <= norm_rtol
        ok = angle_ok and norm_ok and final_error == 0.0
        facts = (f"over t in [{fit_from}, {steps}] the angle to the hard-margin SVM direction fell "
                 f"{a_start:.3g} -> {a_end:.3g} rad (theta log t: {theta_log_start:.3g} -> {theta_log_end:.3g}; "
                 f"theta ~ (log t)^-{exponent:.2f}); |w| grew with slope {slope:.4g} per unit log t against "
                 f"|w_svm| = {svm_norm:.4g} (ratio {slope / svm_norm:.3f}); final training error {final_error:.3g}")
        if ok:
            message = f"Holds: {facts}."
        else:
            reasons = []
            if obj.weight_decay:
                reasons.append(f"with weight decay {obj.weight_decay:g}, w(t) converges to the finite minimizer of "
                               "L + (weight decay / 2)|w|^2 instead of growing like |w_svm| log t")
            if not angle_ok:
                reasons.append("the angle does not decay at least like 1/log t")
            if not norm_ok:
                reasons.append(f"the norm's slope is not within {norm_rtol:g} of |w_svm|"
                               + ("" if obj.weight_decay else " (run longer: the slope approaches |w_svm| as the o(1) "
                                                              "terms die out)"))
            if final_error != 0.0:
                reasons.append("the training error did not reach 0")
            message = f"Does not hold: {facts}; " + "; ".join(reasons) + "."
    else:
        svm_norm = theta_log_start = theta_log_end = exponent = nan
        message = (f"Inconclusive: the data are not linearly separable by this model (the hard-margin problem "
                   f"min |w| s.t. all margins >= 1 is infeasible), so there is no max-margin direction and the claim "
                   f"does not apply; measured: |w| changes with slope {slope:.3g} per unit log t over t in "
                   f"[{fit_from}, {steps}] (final |w| {norm[-1]:.4g}) and the "
                   f"final training error is {final_error:.3g}.")
        ok = None
    return MaxMarginReport(
        separable=separable, svm=svm if separable else None, svm_norm=svm_norm, t=t, angle=angle, norm=norm,
        train_error=train_error, fit_from=fit_from, norm_slope=float(slope), norm_intercept=float(intercept),
        angle_exponent=float(exponent), angle_log_t_start=float(theta_log_start), angle_log_t_end=float(theta_log_end),
        final_angle=float(angle[-1]), final_norm=float(norm[-1]), final_train_error=final_error,
        final_loss=float(loss[-1]), norm_rtol=norm_rtol, status=status, verdict=verdict_of(ok), message=message)


def _hard_margin(obj):
    r"""The hard-margin SVM :math:`\min\|w\|` s.t. :math:`Gw \ge 1` in the flat parameter layout, and feasibility.

    Least-distance programming by NNLS (Lawson & Hanson, *Solving Least
    Squares Problems*, ch. 23): with :math:`E = [G^\top; \mathbf 1^\top]`,
    :math:`f = (0, \dots, 0, 1)`, solve :math:`\min_{u\ge0}\|Eu - f\|`; if the
    residual :math:`r = Eu - f` is nonzero, :math:`w = -r_{1:P}/r_{P+1}`, else
    the constraints are infeasible.  The rows of ``G`` are
    :math:`y_i J_i` (logistic) or :math:`J_{i y_i} - J_{ic}` (cross-entropy),
    ``J`` the output Jacobian, which for a model linear in ``w`` gives
    :math:`f(x_i) = J_i w` exactly.
    """
    J = np.asarray(_np(obj.output_jacobian(np.zeros(obj.size))), dtype=np.float64)
    k = obj.model.n_outputs
    n = J.shape[0] // k
    targets = np.asarray(_np(obj._targets), dtype=np.float64)
    if obj.loss.name == "logistic":
        G = targets[:, :1] * J
    else:
        labels = np.argmax(targets, axis=1)
        Jr = J.reshape(n, k, -1)
        rows = [Jr[i, labels[i]] - Jr[i, c] for i in range(n) for c in range(k) if c != labels[i]]
        G = np.asarray(rows)
    P = G.shape[1]
    E = np.vstack([G.T, np.ones((1, G.shape[0]))])
    f = np.zeros(P + 1)
    f[-1] = 1.0
    u, _ = scipy.optimize.nnls(E, f, maxiter=50 * E.shape[1])
    r = E @ u - f
    if abs(r[-1]) <= 1e-12:
        return np.zeros(P), False
    w = -r[:P] / r[-1]
    feasible = bool(np.all(np.isfinite(w)) and np.all(G @ w >= 1.0 - MARGIN_FEASIBILITY_TOL))
    return w, feasible


# ============================================================================= early stopping
def early_stopping(obj, w0=None, lr=DEFAULT_LR, steps=EARLY_STEPS, filter_tol=EARLY_FILTER_TOL,
                   overfit_rtol=EARLY_OVERFIT_RTOL) -> EarlyStoppingReport:
    r"""GD after ``t`` steps against ridge regression with :math:`\lambda = 1/(\eta t)`, and the early-stopping optimum.

    Sections 3.1 and 6.1: GD's iterations regularize like Tikhonov with
    :math:`\lambda \propto 1/t`.  For the quadratic loss
    :math:`L(w) = \frac12 w^\top H w - b^\top w + c` (feature regression,
    :math:`H = \Phi^\top\Phi/n = \sum_j\lambda_j v_jv_j^\top`) GD from zero gives,
    direction by direction,

    .. math::

        v_j^\top w_t = \big(1 - (1 - \eta\lambda_j)^t\big)\,v_j^\top w^\dagger,
        \qquad
        v_j^\top w_\lambda = \frac{\lambda_j}{\lambda_j + \lambda}\,v_j^\top w^\dagger ,

    two filters that agree at both ends and, for :math:`\lambda = 1/(\eta t)`
    and small :math:`\eta\lambda_j`, differ by at most 0.2036 in between
    (the continuous-time filters :math:`1 - e^{-x}` and :math:`x/(1+x)`).  The
    discrete-time correspondence degrades as :math:`\eta\lambda_j` grows
    (gap 0.5 at :math:`\eta\lambda_j = 1`, 0.9 at 1.5; see
    :data:`EARLY_FILTER_TOL`), so a large step size fails the comparison
    honestly, and the message says so.  The check measures GD's filter from
    the trajectory (``c_j(t) / c_j^†``) and compares.  Second, in the degenerate case (Figure 15) the test loss is
    smallest at a finite ``t``: early stopping beats running to convergence
    (the minimum-norm solution).

    Figure 8 makes the same point for a deep linear net trained by SGD; this
    check needs the quadratic loss of feature regression, where the ridge
    solution is exact and the comparison is direction by direction.

    Parameters
    ----------
    obj : Objective
        ``FeatureRegression`` with the square loss, no weight decay, and a test set.
    w0 : array, shape (P,), optional
        Start; default zeros (the setting of Lemma 3).  A start far from zero
        spoils the GD/ridge comparison at early times, and the check says so.
    lr : float, default ``DEFAULT_LR`` = 0.2
        With :math:`\eta\lambda_{\max} \gtrsim 0.35` GD's filter is too far from
        ridge's for the default ``filter_tol``, and the check says the step size is to blame.
    steps : int, default ``EARLY_STEPS`` = 250_000
        At least 10.
    filter_tol : float, default ``EARLY_FILTER_TOL`` = 0.25
    overfit_rtol : float, default ``EARLY_OVERFIT_RTOL`` = 1e-3
        The test loss must end at least this fraction above its minimum for a finite optimum.

    Returns
    -------
    EarlyStoppingReport
        "holds" when the filters agree within ``filter_tol`` and the test loss
        has a finite optimum; "does not hold" when either fails (e.g. a
        realizable nondegenerate problem, whose test loss falls to its
        minimum at the end of the run; a step size with large
        :math:`\eta\lambda_{\max}`; a start far from zero); "inconclusive"
        when GD diverged.  A filter failure is blamed on the step size when
        ``expected_filter_gap > filter_tol`` and on the start when the start's
        part ``start_filter_gap`` exceeds ``filter_tol`` or the step size alone
        stays within it.

    Notes
    -----
    The records are log-spaced (``POINTS_PER_DECADE`` per decade, every step
    for the first ones), from consecutive :func:`gradflow.gd` runs, so an
    optimum after a few dozen steps is resolved as well as one after
    :math:`10^5`.  Ridge uses :math:`w_\lambda = (H + \lambda I)^{-1} b`.
    """
    obj = _validate_objective(obj)
    _require_quadratic(obj)
    lr = check_real("lr", lr, minimum=0.0, strict=True)
    steps = check_int("steps", steps, minimum=10)
    filter_tol = check_real("filter_tol", filter_tol, minimum=0.0, strict=True)
    overfit_rtol = check_real("overfit_rtol", overfit_rtol, minimum=0.0, strict=True)
    w0 = np.zeros(obj.size) if w0 is None else _validate_point(obj, w0, "w0")

    zero = np.zeros(obj.size)
    H = np.asarray(_np(obj.hessian(zero)), dtype=np.float64)
    b = -np.asarray(_np(obj.grad(zero)), dtype=np.float64)
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    tol = max(float(np.abs(lam).max(initial=0.0)), np.finfo(float).tiny) * obj.size * _EPS
    positive = lam > tol
    nullity = int(np.sum(~positive))
    beta = V.T @ b
    c_dagger = np.where(positive, beta / np.where(positive, lam, 1.0), 0.0)
    compared = positive & (np.abs(c_dagger) > 1e-8 * max(np.abs(c_dagger).max(initial=0.0), np.finfo(float).tiny))

    t, W, status, message_gd = _gd_log_records(obj, w0, lr, steps)
    metrics = obj.metrics(W)
    test = np.asarray(_np(metrics["test_loss"]), dtype=np.float64)
    train = np.asarray(_np(metrics["train_loss"]), dtype=np.float64)
    with np.errstate(divide="ignore"):
        ridge_lambda = np.where(t > 0, 1.0 / (lr * np.maximum(t, 1)), np.inf)
    ridge_coef = np.where(positive[None, :], beta[None, :] / (lam[None, :] + ridge_lambda[:, None]), 0.0)
    ridge_coef[t == 0] = 0.0
    W_ridge = ridge_coef @ V.T
    ridge_test = np.asarray(_np(obj.metrics(W_ridge)["test_loss"]), dtype=np.float64)
    ridge_test[t == 0] = np.nan
    coef = W @ V
    filter_gd = coef[:, compared] / c_dagger[compared]
    filter_ridge = lam[compared][None, :] / (lam[compared][None, :] + ridge_lambda[:, None])
    later = t > 0
    filter_gap = float(np.max(np.abs(filter_gd[later] - filter_ridge[later]))) if compared.any() else math.nan
    lr_lam = lr * lam[compared][None, :]
    lr_lambda_max = lr * float(np.max(lam, initial=0.0))
    with np.errstate(over="ignore", invalid="ignore"):
        filter_zero = 1.0 - (1.0 - lr_lam) ** t[:, None]               # GD's filter from w0 = 0
    if compared.any():
        expected_gap = float(np.max(np.abs(filter_zero[later] - filter_ridge[later])))
        start_gap = float(np.max(np.abs(filter_gd[later] - filter_zero[later])))
    else:
        expected_gap = start_gap = math.nan
    range_proj = V[:, positive]
    diff = (W - W_ridge) @ range_proj
    scale = max(_n(c_dagger), np.finfo(float).tiny)
    relative_distance = float(np.max(np.linalg.norm(diff[later], axis=1)) / scale)
    best = int(np.argmin(test))
    best_t, best_loss, final_loss = int(t[best]), float(test[best]), float(test[-1])
    overfit = final_loss / best_loss - 1.0 if best_loss > 0 else (math.inf if final_loss > 0 else 0.0)
    floor = EARLY_ROUNDING_RTOL * float(np.max(test))        # rounding floor of a sum of squares
    finite = bool(0 < best_t < int(t[-1]) and final_loss - best_loss >= overfit_rtol * best_loss + floor)
    ridge_best = float(ridge_lambda[later][np.nanargmin(ridge_test[later])])
    if status != "success":
        verdict, message = INCONCLUSIVE, f"Inconclusive: GD did not finish ({status}): {message_gd}"
    else:
        filters_ok = bool(compared.any() and filter_gap <= filter_tol)
        verdict = combine([verdict_of(filters_ok), verdict_of(finite)])
        facts = (f"GD vs ridge with lambda = 1/(lr t): largest filter gap {filter_gap:.3g} over {int(compared.sum())} "
                 f"directions (tolerance {filter_tol:g}; {expected_gap:.3g} from the step size alone, lr * "
                 f"lambda_max = {lr_lambda_max:.3g}), largest distance {relative_distance:.3g} |w_dagger|; "
                 f"test loss {float(test[0]):.4g} at t = 0, smallest {best_loss:.4g} at t = {best_t}, "
                 f"{final_loss:.4g} at t = {int(t[-1])} (overfit {overfit:.3g}); ridge's best lambda "
                 f"{ridge_best:.3g} vs 1/(lr t*) = {(1.0 / (lr * best_t)) if best_t else math.inf:.3g}; "
                 f"nullity of H {nullity}")
        if verdict == HOLDS:
            message = f"Holds: {facts}: a finite early-stopping time is best."
        else:
            reasons = []
            if not compared.any():
                reasons.append("there is no direction to compare GD's and ridge's filter factors in")
            elif not filters_ok:
                if expected_gap > filter_tol:
                    reasons.append(
                        "the step size is too large for GD to behave like ridge with lambda = 1/(lr t): "
                        f"lr * lambda_max = {lr_lambda_max:.3g}, and for the compared lr * lambda_j (largest "
                        f"{float(lr_lam.max()):.3g}) the filters 1 - (1 - lr lambda)^t and lr lambda t / "
                        f"(1 + lr lambda t) differ by up to {expected_gap:.3g} > {filter_tol:g} even from w0 = 0 "
                        "(0.2036 as lr lambda -> 0); lower `lr`")
                if start_gap > filter_tol or expected_gap <= filter_tol:
                    reasons.append(
                        f"the start w0 is far from zero: its part (1 - lr lambda_j)^t c_j(0) / c_j^dagger moves GD's "
                        f"filter factors by up to {start_gap:.3g} from those of GD from w0 = 0; start from w0 = 0 "
                        "(the setting of Lemma 3)")
            if not finite and best_t == 0:
                reasons.append("the test loss is smallest at t = 0: any training makes it worse")
            elif not finite:
                reasons.append(f"the test loss has no finite optimum: it ends within {overfit_rtol:g} of its minimum "
                               "or within rounding of it (it keeps falling, or is flat at the end)")
            message = f"Does not hold: {facts}; " + "; ".join(reasons) + "."
    return EarlyStoppingReport(
        t=t, test_loss=test, train_loss=train, ridge_test_loss=ridge_test, eigenvalues=lam[compared],
        filter_gd=filter_gd, filter_ridge=filter_ridge, filter_gap=filter_gap, relative_distance=relative_distance,
        best_t=best_t, best_test_loss=best_loss, final_test_loss=final_loss, overfit=float(overfit),
        finite_optimum=finite, ridge_best_lambda=ridge_best, nullity=nullity, lr_lambda_max=lr_lambda_max,
        expected_filter_gap=expected_gap, start_filter_gap=start_gap, filter_tol=filter_tol,
        overfit_rtol=overfit_rtol, lr=lr, status=status, verdict=verdict, message=message)


# ============================================================================= helpers
def _gd_log_records(obj, w0, lr, steps):
    """GD from ``w0`` recorded at log-spaced iterations: consecutive :func:`gradflow.gd` runs, one per decade.

    Decade ``[10^j, 10^{j+1}]`` is recorded every ``max(1, 10^{j+1} / POINTS_PER_DECADE)`` steps.  Returns
    ``(t, W (T, P), status, message)``; on a failure the records stop where the run stopped.
    """
    times, path = [0], [np.asarray(w0, dtype=np.float64)]
    w, start, status, message = np.asarray(w0, dtype=np.float64), 0, "success", ""
    while start < steps:
        stop = min(steps, max(10, 10 * start))
        every = max(1, (stop - start) // POINTS_PER_DECADE) if start else 1
        traj = gd(obj, w, lr=lr, steps=stop - start, record_every=every, progress=False)
        times.extend((start + traj.t[1:]).tolist())
        path.extend(np.asarray(traj.w[1:], dtype=np.float64))
        if not traj.success:
            status, message = traj.status, traj.message
            break
        w, start = np.asarray(traj.w[-1], dtype=np.float64), stop
    return np.asarray(times, dtype=np.int64), np.stack(path), status, message


def _loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (``nan`` when undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def _loss(obj, w) -> float:
    return float(_np(obj.value(np.asarray(w, dtype=np.float64))))


def _np(a) -> np.ndarray:
    return np.asarray(_backend.to_numpy(a), dtype=np.float64)


def _n(a) -> float:
    return float(np.linalg.norm(a))


# ----------------------------------------------------------------------------- validators
def _validate_objective(obj) -> Objective:
    if not isinstance(obj, Objective):
        raise TypeError(
            f"`obj` must be a gradflow.Objective, e.g. gf.Objective(model, data, loss='square'); got {describe(obj)}.")
    return obj


def _require_square_loss(obj: Objective, check: str) -> None:
    if obj.loss.name != "square":
        raise ValueError(
            f"`obj` must use the 'square' loss for {check}: it perturbs a minimum at finite weights, and the "
            f"{obj.loss.name!r} loss has none (its minima lie at infinity, Section 4.1); got loss={obj.loss.name!r}. "
            "Build gf.Objective(model, data, loss='square'); for the logistic / cross-entropy losses use max_margin.")


def _min_norm_kind(obj: Objective) -> str:
    if obj.loss.name != "square" or obj.weight_decay != 0.0:
        raise ValueError(
            "`obj` must use the 'square' loss without weight decay for min_norm (the pseudoinverse solution is the "
            f"minimum-norm minimizer of the square loss); got loss={obj.loss.name!r}, weight_decay={obj.weight_decay}. "
            "For the logistic / cross-entropy losses use max_margin.")
    if isinstance(obj.model, FeatureRegression):
        return "feature_regression"
    if isinstance(obj.model, DeepLinear) and not obj.model.bias:
        return "deep_linear"
    raise ValueError(
        f"`obj` must have a FeatureRegression or a DeepLinear (bias=False) model for min_norm (Lemmas 2-3, Theorem 2); "
        f"got {obj.model!r}. Use gf.models.FeatureRegression(...) or gf.models.DeepLinear([d, N, k]).")


def _require_margin_objective(obj: Objective) -> None:
    if obj.loss.name not in ("logistic", "cross_entropy"):
        raise ValueError(
            f"`obj` must use the 'logistic' or 'cross_entropy' loss for max_margin (Section 3.2); got "
            f"loss={obj.loss.name!r}. With the square loss use min_norm.")
    if obj.model.n_layers != 1:
        raise ValueError(
            f"`obj` must have a model linear in its weights (one weight layer) for max_margin; got {obj.model!r} with "
            f"{obj.model.n_layers} layers. Use gf.models.FeatureRegression(...) or gf.models.DeepLinear([d, k]).")


def _require_quadratic(obj: Objective) -> None:
    if not isinstance(obj.model, FeatureRegression) or obj.loss.name != "square" or obj.weight_decay != 0.0:
        raise ValueError(
            "`obj` must be a FeatureRegression model with the 'square' loss and no weight decay for early_stopping "
            f"(GD is compared with ridge regression on the same quadratic loss); got {obj!r}. Build "
            "gf.Objective(gf.models.FeatureRegression(features), data, loss='square').")
    if not obj.data.has_test:
        raise ValueError("`obj` must have a test set for early_stopping (the optimum is that of the test loss); its data "
                         "has none. Use e.g. gf.data.sine(n_test=100).")


def _validate_point(obj: Objective, w, name: str) -> np.ndarray:
    try:
        w = np.asarray(_backend.to_numpy(w), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be an array of {obj.size} real numbers; got {describe(w)}.") from None
    if w.shape != (obj.size,):
        raise ValueError(f"`{name}` must have shape ({obj.size},), one entry per parameter of the objective; "
                         f"got shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"`{name}` must be finite; it has NaN or inf entries.")
    return w


def _validate_method(method) -> str:
    if not isinstance(method, str):
        raise TypeError(f"`method` must be 'gd' or 'flow'; got {describe(method)}.")
    if method not in ("gd", "flow"):
        raise ValueError(f"`method` must be 'gd' (gradient descent) or 'flow' (the gradient flow ODE); got {method!r}.")
    return method
