r"""Hartman--Grobman, center manifolds and attraction to them: the checks of Section 4, with numbers and verdicts.

Section 4 of the paper studies the gradient flow :math:`\dot w = -\nabla L(w)`
(Equation 1) near an equilibrium :math:`w^*` through its linearization
:math:`\dot y = -Hy`, :math:`H = \nabla^2 L(w^*)` (Equations 2, 3), and makes
three dynamical claims, each turned into a check here:

* :func:`hartman_grobman` -- near a *hyperbolic* equilibrium (no zero
  eigenvalue of :math:`H`; "with weight decay the stable points will all be
  hyperbolic") the flow is topologically conjugate to its linearization
  (Section 4, the Hartman--Grobman theorem as stated there).  The check builds
  the conjugacy :math:`h` numerically on a sampled ball and measures what can
  fail (injectivity, :math:`|h - \mathrm{id}|` against the radius); at a
  non-hyperbolic point it reports that the theorem does not apply and
  measures whether the flows still agree along the center directions (the
  linearized flow is frozen there; the nonlinear one moves -- "does not
  hold" -- or not -- "inconclusive").
* :func:`center_manifold` -- at a degenerate equilibrium there is a center
  manifold :math:`w = w^* + E_c u + E_s h(u)` (the center manifold existence
  theorem, Section 4), computed here as a power series solving the
  invariance equation order by order with sympy, with the reduced vector
  field on it; for a manifold of equilibria (the flat valleys of zero-loss
  minima, Figure 2) the reduced field is identically zero.
* :func:`center_attraction` -- "all solutions from the neighborhood tend
  exponentially fast to a solution in the center manifold" (the emergence
  theorem, Section 4): the measured exponential rate of the distance to the
  center manifold (or to the set of equilibria), against the smallest
  nonzero eigenvalue of :math:`H`.

Every check returns a frozen dataclass with the measured numbers, a
``verdict`` (``"holds"``, ``"does not hold"``, ``"inconclusive"``, see
:mod:`gradflow._verdict`) and a readable ``message``; ``str(report)`` prints
a summary.  ``gf.checks`` re-exports the three functions.

**Arrays.**  The checks work in NumPy (they integrate with
:class:`gradflow.GradientFlow`, whose integrators are NumPy-only); bases and
points in the reports are NumPy arrays.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import sympy as sp

from . import _backend
from ._validation import check_int, check_real, check_seed, describe
from ._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, verdict_of
from .flow import GradientFlow
from .linearize import (DEFAULT_MAX_ITER, NotAnEquilibriumWarning, equilibrium_linearization, find_equilibrium,
                        linearize)
from .objective import Objective
from .symbolic import CompiledObjective, SymbolicObjective

__all__ = [
    "hartman_grobman", "HartmanGrobmanReport", "center_manifold", "CenterManifold", "center_attraction",
    "CenterAttractionReport",
    "DEFAULT_RADIUS", "DEFAULT_SAMPLES", "DEFAULT_SEED", "DEFAULT_N_RADII", "DEFAULT_ORDER",
    "DEFAULT_ATTRACTION_SAMPLES", "DEFAULT_RATE_RTOL",
]

# ----------------------------------------------------------------------------- defaults
#: Radius of the ball around :math:`w^*` that the checks sample.
DEFAULT_RADIUS = 1e-2
#: Number of sampled points of :func:`hartman_grobman`.
DEFAULT_SAMPLES = 64
#: Seed of the sampled points.
DEFAULT_SEED = 0
#: Number of radii of the error-versus-radius curve of :func:`hartman_grobman` (``radius``, ``radius/2``, ...).
DEFAULT_N_RADII = 4
#: Order of the center-manifold series of :func:`center_manifold`.
DEFAULT_ORDER = 4
#: Number of starting points of :func:`center_attraction`.
DEFAULT_ATTRACTION_SAMPLES = 8
#: :func:`center_attraction` holds when the fitted rate is within this relative distance of the predicted one.
DEFAULT_RATE_RTOL = 0.05

#: Integrator of the checks: LSODA with the exact Jacobian, robust over the long horizons near manifolds of
#: equilibria at the tight tolerances below (any key of ``GradientFlow.METHODS`` may be passed as ``method``;
#: the crossing searches need events, so they use LSODA whenever ``method`` is not a scipy one).
DEFAULT_METHOD = "LSODA"
#: Relative / absolute tolerances of the integrations of the checks (``atol`` is this times the radius).
CHECK_RTOL = 1e-11
CHECK_ATOL_PER_RADIUS = 1e-11
#: The sampled points of :func:`hartman_grobman` lie at distances in ``[SHELL_INNER * radius, radius]`` of
#: :math:`w^*` when the conjugacy flows *into* a small ball (sinks, sources); the small ball has radius
#: ``kappa * radius`` with :math:`\kappa = \exp(-\text{IN_BALL_SPREAD}\,|\mu|_{\min}/|\mu|_{\max})`` (see the notes of
#: :func:`hartman_grobman`), and ``SHELL_INNER = (1 + kappa) / 2``.
IN_BALL_SPREAD = 1.0
#: Saddles: the conjugacy flows each of the stable / unstable components *out* to this many radii.
OUT_SPHERE = 2.0
#: Horizon of the crossing searches, in units of :math:`\log(\text{ratio of the spheres}) / |\mu|_{\min}` (sinks,
#: sources) or :math:`1 / |\mu|_{\min}` (saddles, where points near a stable manifold take long to leave).
CROSSING_HORIZON_FACTOR = 20.0
#: The conjugacy equation is tested at :math:`s` = this fraction of the shortest crossing time.
CONJUGACY_TIME_FRACTION = 0.5
#: :func:`hartman_grobman`: largest accepted integration consistency :math:`\max\|h(\varphi_s x) - e^{-Hs}h(x)\| / r`
#: (zero by construction of :math:`h`; above this the integrations are too inaccurate to decide: "inconclusive").
CONJUGACY_TOL = 1e-5
#: :func:`hartman_grobman`: ``h`` counts as injective on the samples when
#: :math:`\min_{i\ne j}\|h(x_i) - h(x_j)\| / \|x_i - x_j\|` is at least this.
INJECTIVITY_TOL = 0.1
#: :func:`hartman_grobman`: the curve of :math:`\|h - \mathrm{id}\|/r` shows agreement when its log-log slope
#: against ``r`` is at least this (:math:`h - \mathrm{id} = O(r^2)` gives 1) ...
MIN_AGREEMENT_SLOPE = 0.5
#: ... or when it is below this everywhere (a linear flow, where ``h`` is the identity).
AGREEMENT_FLOOR = 1e-7
#: Non-hyperbolic points: the drift along :math:`E^c` is measured over
#: :math:`\max(\text{DRIFT_FAST}/|\mu|_{\min\neq0},\ \text{DRIFT_SLOW}/r^2)` (the time scale of a cubic center field).
DRIFT_FAST = 10.0
DRIFT_SLOW = 1.0
#: A center drift above this times the radius counts as "the nonlinear flow moves along the center directions".
DRIFT_RTOL = 1e-2

#: :func:`center_manifold`: coefficients below this times the largest coefficient of the vector field are rounding
#: noise of the floating-point eigenvectors and are set to exact zeros.
CHOP_RTOL = 1e-11
#: :func:`center_manifold`: the invariance residual is measured at these distances :math:`|u|` ...
RESIDUAL_SCALES = (0.1, 0.05, 0.025, 0.0125)
#: ... along this many random directions of :math:`E^c`.
RESIDUAL_DIRECTIONS = 8
#: :func:`center_manifold`: residuals below this (times the scale of the field) are rounding error.
RESIDUAL_FLOOR = 1e-13
#: :func:`center_manifold`: the residual must fall at least like :math:`|u|^{\text{order}+1-\text{this}}`.
RESIDUAL_ORDER_SLACK = 0.5
#: :func:`center_manifold`: directions on which the sign of the leading term of the reduced field is tested.
STABILITY_DIRECTIONS = 256

#: Longest series printed by :meth:`CenterManifold.summary`, in characters.
SUMMARY_CHARS = 300

#: :func:`center_attraction`: the fit window is :math:`[T/2, T]` with :math:`T` = this / predicted rate.
ATTRACTION_DECAY = 10.0
#: :func:`center_attraction`: with no nonzero eigenvalue, :math:`T` = this / :math:`r^2` (a cubic center field).
ATTRACTION_SLOW = 100.0
#: :func:`center_attraction`: the limit point of each solution is refined from :math:`\varphi_{3T}` by Newton
#: with this gradient tolerance.
LIMIT_GTOL = 1e-14
#: ... in at most this many iterations (``gf.find_equilibrium``'s default); a limit point not found makes the check
#: "inconclusive".
LIMIT_MAX_ITER = DEFAULT_MAX_ITER
#: :func:`center_attraction`: distances below this times :math:`\max(1, \|w^*\|)` are integration noise.
DISTANCE_FLOOR = 1e-9
#: :func:`center_attraction`: points of the fit window on the output grid.
FIT_POINTS = 41
#: :func:`center_attraction`: fewest points above the floor for a fit.
MIN_FIT_POINTS = 5
#: :func:`center_attraction`: the decay counts as exponential when the linear fit of :math:`\log d` against
#: :math:`t` has :math:`R^2` at least this.
MIN_R_SQUARED = 0.999

_STABLE, _CENTER, _UNSTABLE = "stable", "center", "unstable"
_EVENT_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
#: How to refine ``w_star`` into an equilibrium, in the ValueError of each check.
_FLOW_HINT = "gf.find_equilibrium(flow.obj, w_star)"
_SYMBOLIC_HINT = "gf.find_equilibrium(sym.compile(), w_star)"


# ============================================================================= reports
@dataclasses.dataclass(frozen=True, eq=False)
class HartmanGrobmanReport:
    r"""What :func:`hartman_grobman` measured near :math:`w^*`.

    Attributes
    ----------
    w_star : ndarray, shape (P,)
    kind : str
        ``"sink"``, ``"saddle"``, ``"source"`` or ``"non-hyperbolic"`` (see :func:`gradflow.linearize`).
    applies : bool
        Whether the theorem applies: the equilibrium is hyperbolic.
    dims : dict
        ``{"stable": k_s, "center": k_c, "unstable": k_u}``.
    eigenvalues : ndarray, shape (P,)
        Eigenvalues :math:`\mu_i` of the Jacobian :math:`-H`, ascending.
    radius : float
        Radius :math:`r` of the sampled ball.
    samples : int
    conjugacy_error : float or None
        Integration consistency, :math:`\max_i \|h(\varphi_s(x_i)) - e^{-Hs}h(x_i)\| / r` (hyperbolic points
        only).  :math:`h` is built from the flow, so this is zero by construction: it measures only the accuracy of
        the integrations (above ``CONJUGACY_TOL`` the verdict is "inconclusive"), not the theorem.  What can fail
        is ``injective`` and ``curve_slope``.
    conjugacy_time : float or None
        The time :math:`s` of that test.
    h_minus_id : float or None
        :math:`\max_i \|h(x_i) - (x_i - w^*)\| / r` at ``radius``.
    injective : bool or None
        Whether :math:`h` separates the samples: ``injectivity_ratio >= INJECTIVITY_TOL``.
    injectivity_ratio : float or None
        :math:`\min_{i\ne j}\|h(x_i) - h(x_j)\| / \|x_i - x_j\|`.
    radii : ndarray or None
        Radii of the error-versus-radius curve, ``radius * 2**-k``.
    h_minus_id_curve : ndarray or None
        :math:`\max_i\|h - \mathrm{id}\|/r` at each radius: it shrinks with the radius (like :math:`r`) as the
        nonlinear and linearized flows agree.
    curve_slope : float or None
        Log-log slope of that curve against the radius.
    inner_radius : float or None
        The ball (sinks, sources) or sphere (saddles) the conjugacy flows to, as a fraction of each radius.
    crossing_times : ndarray or None
        Time each sample took to reach it (signed: negative for the backward flow), shape ``(samples, n_components)``.
    uncrossed : int
        Samples that never reached it within the horizon (only saddles may have some: points on a stable
        or unstable manifold; their component is taken from the end of the search).
    drift_horizon : float or None
        Non-hyperbolic points: time :math:`T` over which the center drift was measured.
    center_drift : float or None
        Non-hyperbolic points: :math:`\max_i \|P_c(\varphi_T(x_i) - x_i)\| / r` for samples
        :math:`x_i = w^* + r\,E_c v_i` on the center subspace.  The linearized flow has drift 0 there.
    center_moves : bool or None
        ``center_drift > DRIFT_RTOL``: the nonlinear flow moves along the center directions, so it is not
        conjugate to the frozen linearized flow ("does not hold"); when False, :math:`w^*` lies on a manifold of
        equilibria, frozen in both flows ("inconclusive": the theorem does not apply, nothing contradicts it).
    verdict : str
    message : str
    """

    w_star: np.ndarray
    kind: str
    applies: bool
    dims: dict
    eigenvalues: np.ndarray
    radius: float
    samples: int
    conjugacy_error: float | None
    conjugacy_time: float | None
    h_minus_id: float | None
    injective: bool | None
    injectivity_ratio: float | None
    radii: np.ndarray | None
    h_minus_id_curve: np.ndarray | None
    curve_slope: float | None
    inner_radius: float | None
    crossing_times: np.ndarray | None
    uncrossed: int
    drift_horizon: float | None
    center_drift: float | None
    center_moves: bool | None
    verdict: str
    message: str

    def summary(self) -> str:
        """A few readable lines: the verdict, the type of the equilibrium and the measured numbers."""
        lines = [f"Hartman-Grobman at a {self.kind} equilibrium (dims {self.dims}): {self.verdict}"]
        if self.applies:
            curve = ", ".join(f"{v:.2e}" for v in self.h_minus_id_curve)
            radii = ", ".join(f"{r:.2e}" for r in self.radii)
            lines += [f"  h injective on the samples: {self.injective} (min |h(x_i) - h(x_j)| / |x_i - x_j| = "
                      f"{self.injectivity_ratio:.3f}, needs >= {INJECTIVITY_TOL:g})",
                      f"  |h - id| / r at radii {radii}: {curve} (log-log slope {self.curve_slope:.2f}, needs >= "
                      f"{MIN_AGREEMENT_SLOPE:g}, or every value <= {AGREEMENT_FLOOR:g})",
                      f"  integration consistency |h(phi_s x) - e^(-Hs) h(x)| / r = {self.conjugacy_error:.2e} "
                      f"(s = {self.conjugacy_time:.3g}; zero by construction of h, so it measures only the "
                      "accuracy of the integrations)"]
        elif self.center_drift is not None:
            lines.append(f"  center drift over t = {self.drift_horizon:.3g}: {self.center_drift:.3e} x radius "
                         "(linearized flow: 0)")
        lines.append("  " + self.message)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclasses.dataclass(frozen=True, eq=False)
class CenterManifold:
    r"""A local center manifold of the flow at :math:`w^*` as a power series (:func:`center_manifold`).

    In the coordinates :math:`w = w^* + E_c u + E_h z` (orthonormal
    eigenvectors of :math:`H`: center :math:`E_c`, hyperbolic
    :math:`E_h = [E_s\;E_u]`) the flow reads :math:`\dot u = N_c(u, z)`,
    :math:`\dot z = A_h z + N_h(u, z)` (:math:`A_h` the nonzero eigenvalues of
    :math:`-H`, :math:`N` the terms of degree :math:`\ge 2`), and the center
    manifold is the graph :math:`z = h(u)` solving the invariance equation

    .. math::

        Dh(u)\,N_c\big(u, h(u)\big) = A_h h(u) + N_h\big(u, h(u)\big),
        \qquad h(0) = 0,\ Dh(0) = 0,

    solved order by order: :math:`h_k = A_h^{-1}\,[Dh_{<k} N_c(u, h_{<k}) - N_h(u, h_{<k})]_k`.
    On it the flow is the reduced field :math:`\dot u = N_c(u, h(u))`.

    Attributes
    ----------
    w_star : ndarray, shape (P,)
    center, stable, unstable : ndarray, shape (P, k)
        Orthonormal bases of :math:`E_c`, :math:`E_s`, :math:`E_u` (each vector's largest entry positive).
    eigenvalues : ndarray, shape (P,)
        Eigenvalues of :math:`-H`, ascending.
    order : int
        :math:`h` is exact through degree ``order``; the reduced field through degree ``order + 1``.
    symbols : tuple of sympy.Symbol
        :math:`u_1, \dots, u_{k_c}`.
    graph_series : sympy.Matrix, shape (k_s + k_u, 1)
        :math:`h(u)`: coordinates along ``stable`` then ``unstable``.
    reduced_series : sympy.Matrix, shape (k_c, 1)
        The reduced field :math:`N_c(u, h(u))`.
    flat : bool
        The reduced field is identically zero: the center manifold is made of equilibria (a flat valley,
        Figure 2).
    stability : str
        Of the reduced flow at :math:`u = 0`, from its leading homogeneous term :math:`p_d`:
        ``"flat"`` (zero field), ``"attracting"`` (:math:`u\cdot p_d(u) < 0` on every sampled direction),
        ``"repelling"`` (:math:`> 0` on some direction) or ``"undecided"``; ``"none"`` without center directions.
    leading_degree : int or None
        :math:`d`.
    residual_scales : ndarray
        :math:`|u|` at which the invariance residual was measured.
    residual_norms : ndarray
        :math:`\max \|\text{residual}(u)\|` there (over random directions).
    residual_order : float or None
        Log-log slope of the residual against :math:`|u|` (``order + 1`` or more); None when every residual is
        rounding error.
    grad_norm : float
        :math:`\|\nabla L(w^*)\|`.
    verdict : str
        The paper's assumption "the center manifold is not unstable" (Section 4): holds when the series solves the
        invariance equation to its order and the reduced flow is flat or attracting; does not hold when it repels.
    message : str
    """

    w_star: np.ndarray
    center: np.ndarray
    stable: np.ndarray
    unstable: np.ndarray
    eigenvalues: np.ndarray
    order: int
    symbols: tuple
    graph_series: object
    reduced_series: object
    flat: bool
    stability: str
    leading_degree: int | None
    residual_scales: np.ndarray
    residual_norms: np.ndarray
    residual_order: float | None
    grad_norm: float
    verdict: str
    message: str
    _graph: object = dataclasses.field(repr=False)
    _jacobian: object = dataclasses.field(repr=False)
    _reduced: object = dataclasses.field(repr=False)
    _field: object = dataclasses.field(repr=False)

    @property
    def dim(self) -> int:
        """Dimension :math:`k_c` of the center manifold."""
        return int(self.center.shape[1])

    @property
    def hyperbolic(self) -> np.ndarray:
        """The basis :math:`E_h = [E_s\\;E_u]` of the coordinates of :meth:`graph`, shape ``(P, k_s + k_u)``."""
        return np.concatenate([self.stable, self.unstable], axis=1)

    def _u(self, u):
        u = np.asarray(u, dtype=np.float64)
        if u.ndim not in (1, 2) or u.shape[-1] != self.dim:
            raise ValueError(f"`u` must have shape ({self.dim},) or (m, {self.dim}), coordinates along `center`; "
                             f"got shape {u.shape}.")
        return u

    def graph(self, u) -> np.ndarray:
        r""":math:`h(u)`, coordinates along :attr:`hyperbolic`; ``u`` of shape ``(k_c,)`` or ``(m, k_c)``."""
        u = self._u(u)
        return _evaluate(self._graph, u, self.hyperbolic.shape[1])

    def lift(self, u) -> np.ndarray:
        r"""The point :math:`w^* + E_c u + E_h h(u)` of weight space, shape ``(P,)`` or ``(m, P)``."""
        u = self._u(u)
        return self.w_star + u @ self.center.T + self.graph(u) @ self.hyperbolic.T

    def reduced(self, u) -> np.ndarray:
        r"""The reduced vector field :math:`\dot u = N_c(u, h(u))` (the series), shape of ``u``."""
        u = self._u(u)
        return _evaluate(self._reduced, u, self.dim)

    def residual(self, u) -> np.ndarray:
        r"""The invariance residual :math:`Dh(u)\,\dot u - \dot z` of the *true* flow at :meth:`lift` (u).

        :math:`\dot u = E_c^\top(-\nabla L)`, :math:`\dot z = E_h^\top(-\nabla L)` at the lifted point; zero on an
        exact invariant manifold, :math:`O(|u|^{\text{order}+1})` for the series.  Shape ``(k_s + k_u,)`` or
        ``(m, k_s + k_u)``.
        """
        u = self._u(u)
        w = self.lift(u)
        F = -np.asarray(self._field(w), dtype=np.float64)
        du = F @ self.center
        dz = F @ self.hyperbolic
        J = _evaluate_jacobian(self._jacobian, u, self.hyperbolic.shape[1], self.dim)
        return np.einsum("...ij,...j->...i", J, du) - dz

    def summary(self) -> str:
        """A few readable lines: dimensions, the series, the reduced field and the verdict."""
        lines = [f"center manifold at w* (dim {self.dim} in P = {self.w_star.shape[0]}, order {self.order}): "
                 f"{self.verdict}",
                 f"  graph h(u) = {_short([sp.sstr(e, full_prec=False) for e in self.graph_series])}",
                 f"  reduced field du/dt = {_short([sp.sstr(e, full_prec=False) for e in self.reduced_series])} "
                 f"({self.stability})",
                 f"  invariance residual ~ |u|^{self.residual_order:.2f}" if self.residual_order is not None
                 else "  invariance residual at rounding level",
                 "  " + self.message]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclasses.dataclass(frozen=True, eq=False)
class CenterAttractionReport:
    r"""What :func:`center_attraction` measured: how fast solutions near :math:`w^*` approach the center manifold.

    Attributes
    ----------
    w_star : ndarray, shape (P,)
    target : str
        ``"equilibria"`` (distance of each solution to the equilibrium it converges to) or ``"manifold"``
        (distance :math:`\|z - h(u)\|` to the series of a :class:`CenterManifold`).
    predicted_rate : float or None
        The emergence theorem's rate: the smallest :math:`|\mu|` over the stable eigenvalues of :math:`-H`
        (None when there is none).
    rate : float or None
        Median over the samples of the fitted exponential rate :math:`-\,d\log d/dt` on the window.
    rates : ndarray, shape (samples,)
        Per sample (NaN for a sample without enough points above the floor: see ``fitted``).
    fitted : ndarray of bool, shape (samples,)
    r_squared : float or None
        Smallest :math:`R^2` of the linear fits of :math:`\log d` against :math:`t`.
    power : float or None
        Median log-log slope :math:`d\log d / d\log t` on the window (algebraic decay :math:`t^{-p}` gives
        :math:`-p`).
    limit_rates : ndarray or None
        ``"equilibria"``: the smallest stable :math:`|\mu|` at each solution's limit point (the exact asymptotic
        rate of that solution).
    times : ndarray, shape (n_t,)
    distances : ndarray, shape (n_t, samples)
    window : tuple of float
        The fit window :math:`[T/2, T]`.
    radius : float
    rate_rtol : float
    verdict : str
    message : str
    """

    w_star: np.ndarray
    target: str
    predicted_rate: float | None
    rate: float | None
    rates: np.ndarray
    fitted: np.ndarray
    r_squared: float | None
    power: float | None
    limit_rates: np.ndarray | None
    times: np.ndarray
    distances: np.ndarray
    window: tuple
    radius: float
    rate_rtol: float
    verdict: str
    message: str

    def summary(self) -> str:
        """A few readable lines: predicted and fitted rates, the fit quality and the verdict."""
        predicted = "none (no stable eigenvalue)" if self.predicted_rate is None else f"{self.predicted_rate:.6g}"
        fitted = ("none" if self.rate is None else
                  f"{self.rate:.6g} (R^2 >= {self.r_squared:.6f}, log-log slope {self.power:.3f})")
        return "\n".join([f"center attraction ({self.target}) near w*: {self.verdict}",
                          f"  predicted rate (smallest nonzero |eigenvalue|): {predicted}",
                          f"  fitted rate on t in [{self.window[0]:.3g}, {self.window[1]:.3g}]: {fitted}",
                          "  " + self.message])

    def __str__(self) -> str:
        return self.summary()


# ============================================================================= Hartman-Grobman
def hartman_grobman(flow, w_star, radius=DEFAULT_RADIUS, samples=DEFAULT_SAMPLES, seed=DEFAULT_SEED, *,
                    n_radii=DEFAULT_N_RADII, method=DEFAULT_METHOD, tol=None) -> HartmanGrobmanReport:
    r"""Check the Hartman--Grobman theorem at ``w_star``: a numerical conjugacy of the flow to its linearization.

    The theorem (Section 4, as stated in the paper): if :math:`w^*` is a
    hyperbolic equilibrium of :math:`\dot w = -\nabla L(w)` (no zero
    eigenvalue of :math:`H = \nabla^2 L(w^*)`), there is a homeomorphism
    :math:`h` of a neighbourhood with :math:`h(w^*) = 0` and
    :math:`h(\varphi_s(x)) = e^{-Hs}h(x)`.

    **Construction** (:math:`y = x - w^*`, :math:`r` = ``radius``).

    * *Sink*: :math:`h(x) = \lim_t e^{Ht}(\varphi_t(x) - w^*)`, computed by
      flowing :math:`x` into the small ball :math:`\|y\| = \kappa r` (first
      crossing time :math:`\tau(x)`) and mapping back with the linear flow,
      :math:`h(x) = e^{H\tau(x)}(\varphi_{\tau(x)}(x) - w^*)`.  As
      :math:`\tau(\varphi_s x) = \tau(x) - s`, :math:`h` conjugates the flows
      wherever the crossing is transversal (near :math:`w^*`).  The pull-back
      multiplies a fast component by up to
      :math:`\kappa^{-|\mu|_{\max}/|\mu|_{\min}}`; with
      :math:`\kappa = \exp(-\text{IN_BALL_SPREAD}\,|\mu|_{\min}/|\mu|_{\max})`
      that factor stays below :math:`e`, so :math:`h` stays close to the
      identity even for the wide spectra of real networks.  The samples lie
      in the shell :math:`[(1+\kappa)/2,\,1]\,r`.
    * *Source*: the same with the backward flow.
    * *Saddle*, through the stable and unstable fibres: the unstable part
      :math:`h_u(x) = e^{H\sigma_u}P_u(\varphi_{\sigma_u}(x) - w^*)`, with
      :math:`\sigma_u > 0` the first time :math:`\|P_u y\| = 2r` forward, and
      the stable part :math:`h_s` likewise with the first time
      :math:`\sigma_s < 0` at which :math:`\|P_s y\| = 2r` backward.

    **Measured.**  What can fail: whether :math:`h` is injective on the
    samples (a homeomorphism must be), and the curve of
    :math:`\|h - \mathrm{id}\|/r` at radii :math:`r, r/2, \dots`, which falls
    like :math:`r` (the nonlinear terms of the flow are :math:`O(r^2)`) as the
    nonlinear and linearized flows agree.  Besides, the *integration
    consistency* :math:`\max_i\|h(\varphi_s(x_i)) - e^{-Hs}h(x_i)\|/r` with
    :math:`h(\varphi_s(x_i))` from a separate integration (reported as
    ``conjugacy_error``): :math:`h` is built from the flow, so the conjugacy
    equation holds by construction and this number is zero in exact
    arithmetic; it measures only the accuracy of the integrations, and when
    it exceeds ``CONJUGACY_TOL`` the measurement cannot decide.

    **Not hyperbolic.**  The theorem does not apply (``applies`` is False);
    the report measures whether the flow is nevertheless conjugate to its
    linearization along the center directions: samples
    :math:`x_i = w^* + r E_c v_i` on the center subspace, where the linearized
    flow is frozen (every point of :math:`w^* + E^c` is an equilibrium of
    it), are moved by the nonlinear flow over the horizon
    :math:`T = \max(\text{DRIFT_FAST}/|\mu|_{\min\ne0},\ \text{DRIFT_SLOW}/r^2)`
    by ``center_drift`` (times :math:`r`) along :math:`E^c`.  When they move
    (``center_moves``, e.g. the degenerate minima of :math:`w^4/4` or
    :math:`\tfrac12 w_1^2 + w_2^4/4`) the two flows are *not* conjugate near
    :math:`w^*` (a conjugacy maps equilibria to equilibria): "does not hold".
    When both are frozen (a manifold of equilibria, e.g.
    :math:`\tfrac12(w_1w_2 - 1)^2` at :math:`(1, 1)`) they agree there, but
    no theorem gives the conjugacy: "inconclusive".

    Parameters
    ----------
    flow : GradientFlow
        Or an :class:`~gradflow.Objective` / compiled symbolic objective, which is wrapped in one.
    w_star : array, shape (P,)
        An equilibrium (see :func:`gradflow.find_equilibrium`).
    radius : float, default ``DEFAULT_RADIUS`` = 1e-2
        Radius of the sampled ball, > 0.
    samples : int, default ``DEFAULT_SAMPLES`` = 64
        Number of sampled points, >= 2.
    seed : int, default ``DEFAULT_SEED`` = 0
    n_radii : int, default ``DEFAULT_N_RADII`` = 4
        Radii of the error-versus-radius curve, >= 2.
    method : str, default ``DEFAULT_METHOD`` = "LSODA"
        Integrator of the forward flow (a key of ``GradientFlow.METHODS``).  The crossing searches (they need
        events) and the backward flow (the flow of :math:`-L`, which has no compiled kernels) use it when it is a
        scipy method and ``DEFAULT_METHOD`` when it is a compiled one ("bdf", "dopri5", "dop853", "exprb32") or "auto".
    tol : float, optional
        Zero threshold on the eigenvalues, as in :func:`gradflow.linearize`.

    Returns
    -------
    HartmanGrobmanReport
        ``verdict``: "holds" when the equilibrium is hyperbolic, ``h`` is injective on the samples and
        :math:`\|h-\mathrm{id}\|/r` shrinks with the radius; "does not hold" when one of these two fails, or at
        a non-hyperbolic point where the nonlinear flow moves along the center directions (``center_moves``);
        "inconclusive" at a non-hyperbolic point where both flows are frozen along them (the theorem does not
        apply and nothing contradicts the conjugacy), when an integration failed, when a sample never reached
        the small ball (make ``radius`` smaller), or when the integration consistency exceeds ``CONJUGACY_TOL``.

    Raises
    ------
    ValueError
        For a non-positive ``radius``, fewer than 2 ``samples``, or a ``w_star`` that is not an equilibrium
        (the message gives :math:`\|\nabla L(w^*)\|`).

    Examples
    --------
    >>> import numpy as np, gradflow as gf
    >>> obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)), weight_decay=0.3)
    >>> a = np.sqrt(0.7)
    >>> report = gf.checks.hartman_grobman(gf.GradientFlow(obj), [a, a], samples=8)   # doctest: +SKIP
    >>> report.kind, report.verdict                                                    # doctest: +SKIP
    ('sink', 'holds')
    """
    flow = _validate_flow(flow)
    w_star = _validate_w_star(flow.obj, w_star)
    radius = _validate_radius(radius)
    samples = _validate_samples(samples, minimum=2)
    seed = check_seed(seed)
    n_radii = _validate_n_radii(n_radii)
    method = _validate_method(method)
    tol = _validate_tol(tol)
    lin = equilibrium_linearization(flow.obj, w_star, tol=tol, hint=_FLOW_HINT)
    mu = np.asarray(lin.eigenvalues, dtype=np.float64)
    V = np.asarray(_backend.to_numpy(lin.eigenvectors), dtype=np.float64)
    rng = np.random.default_rng(seed)
    common = dict(w_star=w_star, kind=lin.kind, dims=dict(lin.dims), eigenvalues=mu, radius=radius, samples=samples)
    if not lin.is_hyperbolic:
        return _hg_not_hyperbolic(flow, lin, V, mu, rng, common, method)
    # the crossing searches need events, and the backward flow (of -L, no compiled kernels) a scipy method: both
    # use `method` when it is a scipy one, DEFAULT_METHOD when it is compiled (or "auto")
    event_method = method if method in _EVENT_METHODS else DEFAULT_METHOD
    run_methods = {+1: method, -1: event_method}

    n_s, n_u = lin.dims[_STABLE], lin.dims[_UNSTABLE]
    P = w_star.shape[0]
    stable_idx, unstable_idx = np.arange(n_s), np.arange(P - n_u, P)
    abs_mu = np.abs(mu)
    if n_u == 0 or n_s == 0:
        idx = stable_idx if n_u == 0 else unstable_idx
        kappa = math.exp(-IN_BALL_SPREAD * abs_mu[idx].min() / abs_mu[idx].max())
        blocks = [(idx, +1 if n_u == 0 else -1, True, kappa)]
        horizon = CROSSING_HORIZON_FACTOR * math.log(1.0 / kappa) / abs_mu[idx].min()
        shell = 0.5 * (1.0 + kappa)
        inner = kappa
    else:
        blocks = [(unstable_idx, +1, False, OUT_SPHERE), (stable_idx, -1, False, OUT_SPHERE)]
        horizon = CROSSING_HORIZON_FACTOR / abs_mu.min()
        shell = 0.0
        inner = OUT_SPHERE
    flows = {+1: flow, -1: GradientFlow(_TimeReversed(flow.obj))}
    directions = rng.standard_normal((samples, P))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    directions *= rng.uniform(shell, 1.0, size=(samples, 1))   # distances in [shell, 1] (times the radius)

    radii = radius * 0.5 ** np.arange(n_radii)
    curve = np.empty(n_radii)
    failures = []
    h0 = times0 = None
    n_missed = 0
    for k, r in enumerate(radii):
        Y = r * directions
        h, times, crossed, failed = _conjugacy(flows, w_star, V, mu, blocks, Y, r, horizon, event_method)
        failures += failed
        curve[k] = float(np.max(np.linalg.norm(h - Y, axis=1)) / r)
        if k == 0:
            h0, times0, n_missed = h, times, int(np.sum(~crossed.all(axis=1)))
    # the conjugacy equation at time s, h(phi_s x) from a separate integration
    Y = radius * directions
    forward = [j for j, b in enumerate(blocks) if b[1] == +1]
    if forward:
        s = CONJUGACY_TIME_FRACTION * float(np.min(times0[:, forward[0]]))
        direction = +1
    else:
        s = CONJUGACY_TIME_FRACTION * float(np.max(times0[:, 0]))       # negative: the backward flow
        direction = -1
    moved = flows[direction].solve_ensemble(w_star + Y, (0.0, abs(s)), t_eval=[0.0, abs(s)],
                                            method=run_methods[direction],
                                            rtol=CHECK_RTOL, atol=CHECK_ATOL_PER_RADIUS * radius)
    if not moved.success:
        failures.append(moved.message)
        conjugacy_error = math.inf
    else:
        Ys = moved.w[-1] - w_star
        hs, _, _, failed = _conjugacy(flows, w_star, V, mu, blocks, Ys, radius, horizon, event_method)
        failures += failed
        predicted = (h0 @ V) * np.exp(mu * s) @ V.T                       # e^{-Hs} h(x) = V e^{mu s} V^T h
        conjugacy_error = float(np.max(np.linalg.norm(hs - predicted, axis=1)) / radius)
    ratio = _injectivity_ratio(Y, h0)
    injective = ratio >= INJECTIVITY_TOL
    positive = curve > 0
    slope = float(np.polyfit(np.log(radii[positive]), np.log(curve[positive]), 1)[0]) if positive.sum() >= 2 else 0.0
    agrees = bool(np.all(curve <= AGREEMENT_FLOOR) or slope >= MIN_AGREEMENT_SLOPE)
    consistent = conjugacy_error <= CONJUGACY_TOL
    missed_ball = n_u == 0 or n_s == 0
    numbers = (f"injectivity ratio {ratio:.3f}, |h - id|/r at radii {radii[0]:.2e}..{radii[-1]:.2e}: "
               f"{curve[0]:.2e}..{curve[-1]:.2e} (log-log slope {slope:.2f}); integration consistency "
               f"|h(phi_s x) - e^(-Hs) h(x)|/r = {conjugacy_error:.2e} at s = {s:.3g} (zero by construction of h, "
               "it measures only the accuracy of the integrations)")
    if failures:
        verdict = INCONCLUSIVE
        message = (f"an integration failed ({failures[0]}); the conjugacy could not be computed everywhere. "
                   "Make `radius` smaller.")
    elif missed_ball and n_missed:
        verdict = INCONCLUSIVE
        message = (f"{n_missed} of {samples} samples did not reach the ball of radius {inner:.3g} x radius within "
                   f"t = {horizon:.3g}: the sampled ball is not inside the basin where the flow contracts. "
                   "Make `radius` smaller.")
    elif not consistent:
        verdict = INCONCLUSIVE
        message = (f"the integrations are too inaccurate to decide: the integration consistency is above "
                   f"{CONJUGACY_TOL:g} (h is built from the flow, so h(phi_s x) = e^(-Hs) h(x) exactly up to "
                   f"integration error): {numbers}. Use a more accurate `method` (e.g. 'LSODA' or 'DOP853').")
    else:
        verdict = verdict_of(injective and agrees)
        if verdict == HOLDS:
            message = (f"the equilibrium is a hyperbolic {lin.kind} and the flow is conjugate to its linearization on "
                       f"the sampled ball: h is injective and |h - id| shrinks with the radius: {numbers}.")
        else:
            broken = [text for ok, text in ((injective, f"h is not injective (ratio below {INJECTIVITY_TOL:g})"),
                                            (agrees, f"|h - id| does not shrink with the radius (slope below "
                                                     f"{MIN_AGREEMENT_SLOPE:g})")) if not ok]
            message = f"the numerical conjugacy fails: {'; '.join(broken)}: {numbers}."
    return HartmanGrobmanReport(
        **common, applies=True, conjugacy_error=conjugacy_error, conjugacy_time=s, h_minus_id=float(curve[0]),
        injective=bool(injective), injectivity_ratio=float(ratio), radii=radii, h_minus_id_curve=curve,
        curve_slope=slope, inner_radius=float(inner), crossing_times=times0, uncrossed=n_missed,
        drift_horizon=None, center_drift=None, center_moves=None, verdict=verdict, message=message)


def _hg_not_hyperbolic(flow, lin, V, mu, rng, common, method) -> HartmanGrobmanReport:
    """The report at a non-hyperbolic point: the drift along the center subspace, nonlinear flow against linear."""
    w_star, radius, samples = common["w_star"], common["radius"], common["samples"]
    n_s, n_c = lin.dims[_STABLE], lin.dims[_CENTER]
    C = V[:, n_s:n_s + n_c]
    nonzero = np.abs(np.concatenate([mu[:n_s], mu[n_s + n_c:]]))
    T = DRIFT_SLOW / radius**2
    if nonzero.size:
        T = max(T, DRIFT_FAST / float(nonzero.min()))
    v = rng.standard_normal((samples, n_c))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    X0 = w_star + radius * v @ C.T
    traj = flow.solve_ensemble(X0, (0.0, T), t_eval=[0.0, T], method=method, rtol=CHECK_RTOL,
                               atol=CHECK_ATOL_PER_RADIUS * radius)
    zero_max = float(np.max(np.abs(mu[n_s:n_s + n_c])))
    why = (f"the theorem does not apply: {n_c} eigenvalue(s) of -H are zero (|mu| <= {lin.tol:.2e}; largest "
           f"{zero_max:.2e}), so the equilibrium is not hyperbolic")
    if not traj.success or traj.n_points < 2:
        return HartmanGrobmanReport(
            **common, applies=False, conjugacy_error=None, conjugacy_time=None, h_minus_id=None, injective=None,
            injectivity_ratio=None, radii=None, h_minus_id_curve=None, curve_slope=None, inner_radius=None,
            crossing_times=None, uncrossed=0, drift_horizon=T, center_drift=None, center_moves=None,
            verdict=INCONCLUSIVE, message=f"{why}; measuring the drift along the center directions failed, so "
                                          f"whether the flow is conjugate to its linearization there is undecided: "
                                          f"{traj.message}")
    drift = float(np.max(np.linalg.norm((traj.w[-1] - X0) @ C, axis=1)) / radius)
    moves = drift > DRIFT_RTOL
    if moves:
        verdict = DOES_NOT_HOLD
        detail = (f"along the center directions the linearized flow is frozen, while the nonlinear flow moved points "
                  f"at distance r = {radius:g} by up to {drift:.3g} x r along E_c in time {T:.3g} (above "
                  f"{DRIFT_RTOL:g}): the two flows are not conjugate near w*")
    else:
        verdict = INCONCLUSIVE
        detail = (f"along the center directions the linearized flow is frozen, and the nonlinear flow moved points at "
                  f"distance r = {radius:g} by only {drift:.2e} x r along E_c in time {T:.3g} (at most "
                  f"{DRIFT_RTOL:g}): w* lies on a manifold of equilibria, frozen in both flows, so the flows agree "
                  "there, but no theorem gives the conjugacy")
    return HartmanGrobmanReport(
        **common, applies=False, conjugacy_error=None, conjugacy_time=None, h_minus_id=None, injective=None,
        injectivity_ratio=None, radii=None, h_minus_id_curve=None, curve_slope=None, inner_radius=None,
        crossing_times=None, uncrossed=0, drift_horizon=float(T), center_drift=drift, center_moves=bool(moves),
        verdict=verdict, message=f"{why}; {detail}.")


def _conjugacy(flows, w_star, V, mu, blocks, Y, r, horizon, event_method):
    """``h`` at the points ``w_star + Y``: for each block, flow to its sphere and pull back with the linear flow.

    Returns ``(h (m, P), signed crossing times (m, n_blocks), crossed (m, n_blocks), failure messages)``.
    """
    m = Y.shape[0]
    h = np.zeros_like(Y)
    times = np.zeros((m, len(blocks)))
    crossed = np.ones((m, len(blocks)), dtype=bool)
    failed = []
    for j, (idx, direction, inward, kappa) in enumerate(blocks):
        B = V[:, idx]
        rho = kappa * r
        for i in range(m):
            t, y, ok, status = _first_crossing(flows[direction], w_star, Y[i], B, rho, inward, horizon, r, event_method)
            if status is not None:
                failed.append(status)
            sigma = direction * t
            h[i] += B @ (np.exp(-mu[idx] * sigma) * (B.T @ y))          # e^{H sigma} = V e^{-mu sigma} V^T
            times[i, j], crossed[i, j] = sigma, ok
    return h, times, crossed, failed


def _first_crossing(flow, w_star, y0, B, rho, inward, horizon, r, method):
    r"""First time :math:`t > 0` at which :math:`\|B^\top(\varphi_t(w^* + y_0) - w^*)\|` crosses ``rho``.

    Inward (from above) or outward (from below); returns ``(t, y(t), crossed, failure message or None)``;
    when it never crosses within ``horizon``, the end of the run.
    """
    def event(t, w):
        return float(np.linalg.norm(B.T @ (np.asarray(w) - w_star)) - rho)
    event.terminal = True
    event.direction = -1.0 if inward else 1.0
    traj = flow.solve(w_star + y0, (0.0, horizon), method=method, rtol=CHECK_RTOL, atol=CHECK_ATOL_PER_RADIUS * r,
                      events=[event])
    if not traj.success or traj.n_points == 0:
        return 0.0, y0, False, traj.message
    if traj.status == "terminated":
        return float(traj.t_events[0][0]), traj.w[-1] - w_star, True, None
    return float(traj.t[-1]), traj.w[-1] - w_star, False, None


def _injectivity_ratio(Y, h) -> float:
    r""":math:`\min_{i \ne j}\|h_i - h_j\| / \|y_i - y_j\|`."""
    dy = np.linalg.norm(Y[:, None, :] - Y[None, :, :], axis=-1)
    dh = np.linalg.norm(h[:, None, :] - h[None, :, :], axis=-1)
    off = ~np.eye(Y.shape[0], dtype=bool)
    return float(np.min(dh[off] / dy[off]))


class _TimeReversed:
    r"""The objective :math:`-L`: its gradient flow is the flow of :math:`L` run backward in time."""

    def __init__(self, obj):
        self._obj = obj
        self.size = int(obj.size)

    def value(self, w):
        return -np.asarray(_backend.to_numpy(self._obj.value(w)))

    def grad(self, w):
        return -np.asarray(_backend.to_numpy(self._obj.grad(w)))

    def hvp(self, w, v):
        return -np.asarray(_backend.to_numpy(self._obj.hvp(w, v)))

    def hessian(self, w):
        return -np.asarray(_backend.to_numpy(self._obj.hessian(w)))


# ============================================================================= center manifold
def center_manifold(sym, w_star, order=DEFAULT_ORDER, *, tol=None) -> CenterManifold:
    r"""The local center manifold of the flow at ``w_star`` as a power series, solved order by order with sympy.

    The center manifold existence theorem (Section 4): at an equilibrium of a
    :math:`C^r` flow there is a :math:`C^{r-1}` invariant manifold tangent to
    the center subspace :math:`E^c` (the "slow manifold").  Writing
    :math:`w = w^* + E_c u + E_h z` in the eigenvectors of :math:`H`, it is the
    graph :math:`z = h(u) = \sum_{2 \le |\alpha| \le \text{order}} h_\alpha u^\alpha`
    solving the invariance equation (see :class:`CenterManifold`); the
    Taylor expansion of :math:`-\nabla L` about :math:`w^*` is computed
    exactly in sympy (polynomial losses: by substitution; others: by
    derivatives in a scaling parameter) with the floating-point eigenvectors,
    and each order is one linear solve with the diagonal :math:`A_h`.
    Coefficients below ``CHOP_RTOL`` times the largest coefficient of the
    field are rounding noise of the eigenvectors and become exact zeros, so
    the reduced field of a manifold of equilibria (e.g.
    :math:`\tfrac12(w_1w_2 - 1)^2`, deep linear networks) is identically zero.

    The verdict checks the paper's assumption that the center manifold "is
    not unstable" (Section 4), on measured numbers: the invariance residual of
    the *true* flow on the series falls like :math:`|u|^{\text{order}+1}`
    (measured at ``RESIDUAL_SCALES``), and the reduced flow is flat or its
    leading term attracts (:math:`u\cdot p_d(u) < 0`); it does not hold when
    the leading term repels somewhere (e.g. :math:`\dot u = -u^2` for
    :math:`L = \tfrac12 w_1^2 + w_2^3/3`).

    Parameters
    ----------
    sym : gradflow.symbolic.SymbolicObjective
        From :func:`gradflow.symbolic.from_expr` or :func:`gradflow.symbolic.network_loss` (with numeric data);
        not a numeric :class:`~gradflow.Objective` nor a compiled one.
    w_star : array, shape (P,)
        An equilibrium.
    order : int, default ``DEFAULT_ORDER`` = 4
        Highest degree of :math:`h`, >= 2 (the reduced field is then exact through degree ``order + 1``).
    tol : float, optional
        Zero threshold on the eigenvalues, as in :func:`gradflow.linearize`.

    Returns
    -------
    CenterManifold
        With ``center``, ``stable``, ``unstable``, ``graph(u)``, ``lift(u)``, ``reduced(u)``, ``residual(u)``.

    Raises
    ------
    ValueError
        For a numeric objective (use ``gf.symbolic.from_expr`` / ``network_loss``), symbolic data, an
        ``order`` below 2, or a ``w_star`` that is not an equilibrium.

    Examples
    --------
    >>> import sympy as sp, gradflow as gf
    >>> w1, w2 = sp.symbols("w1 w2")
    >>> cm = gf.checks.center_manifold(gf.symbolic.from_expr(w1**2 / 2 + w2**4 / 4, [w1, w2]), [0, 0])  # doctest: +SKIP
    >>> cm.reduced_series                                                                              # doctest: +SKIP
    Matrix([[-1.0*u1**3]])
    """
    sym = _validate_symbolic(sym)
    order = _validate_order(order)
    tol = _validate_tol(tol)
    numeric = _LambdifiedObjective(sym)
    w_star = _validate_w_star(numeric, w_star)
    lin = equilibrium_linearization(numeric, w_star, tol=tol, hint=_SYMBOLIC_HINT)
    mu = np.asarray(lin.eigenvalues, dtype=np.float64)
    V = _oriented(np.asarray(lin.eigenvectors, dtype=np.float64))
    n_s, n_c, n_u = lin.dims[_STABLE], lin.dims[_CENTER], lin.dims[_UNSTABLE]
    P = w_star.shape[0]
    center, stable, unstable = V[:, n_s:n_s + n_c], V[:, :n_s], V[:, n_s + n_c:]
    Q = np.concatenate([center, stable, unstable], axis=1)
    mu_h = np.concatenate([mu[:n_s], mu[n_s + n_c:]])
    z = sp.symbols(f"z1:{P + 1}")
    u = sp.symbols(f"u1:{n_c + 1}") if n_c else ()

    field = _taylor_field(sym, w_star, Q, z, order + 1)                  # -Q^T grad L(w* + Q z), degrees 1..order+1
    scale = max([abs(float(c)) for p in field for c in p.values()] + [1e-300])
    chop = CHOP_RTOL * scale
    nonlinear = [{m: c for m, c in p.items() if sum(m) >= 2 and abs(c) > chop} for p in field]
    N_c, N_h = nonlinear[:n_c], nonlinear[n_c:]
    h = [dict() for _ in range(P - n_c)]                                  # graph coefficients {exponents of u: value}
    for k in range(2, order + 1):
        lhs = _graph_equation(N_c, N_h, h, n_c, k)
        for i in range(P - n_c):
            terms = {m: c / mu_h[i] for m, c in lhs[i].items() if sum(m) == k and abs(c / mu_h[i]) > chop}
            h[i].update(terms)
    reduced = [_compose(p, h, n_c, order + 1) for p in N_c]
    reduced = [{m: c for m, c in p.items() if abs(c) > chop} for p in reduced]
    graph_series = sp.Matrix(P - n_c, 1, [_to_expr(p, u) for p in h])
    reduced_series = sp.Matrix(n_c, 1, [_to_expr(p, u) for p in reduced])
    flat = all(not p for p in reduced)

    graph_fn = [_lambdify(u, e) for e in graph_series]
    jac_fn = [[_lambdify(u, sp.diff(e, s)) for s in u] for e in graph_series]
    reduced_fn = [_lambdify(u, e) for e in reduced_series]
    cm = CenterManifold(
        w_star=w_star, center=center, stable=stable, unstable=unstable, eigenvalues=mu, order=order, symbols=tuple(u),
        graph_series=graph_series, reduced_series=reduced_series, flat=flat, stability="none", leading_degree=None,
        residual_scales=np.asarray(RESIDUAL_SCALES), residual_norms=np.zeros(0), residual_order=None,
        grad_norm=float(lin.grad_norm), verdict=INCONCLUSIVE, message="", _graph=graph_fn, _jacobian=jac_fn,
        _reduced=reduced_fn, _field=numeric.grad)
    if n_c == 0:
        return dataclasses.replace(cm, message=(
            "w* is hyperbolic: the center subspace is {0} and the center manifold is the point itself; "
            "use hartman_grobman for the flow near it."))

    rng = np.random.default_rng(DEFAULT_SEED)
    dirs = rng.standard_normal((RESIDUAL_DIRECTIONS, n_c))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    norms = np.array([float(np.max(np.linalg.norm(cm.residual(s * dirs), axis=1))) for s in RESIDUAL_SCALES])
    floor = RESIDUAL_FLOOR * max(1.0, scale)
    above = norms > floor
    if above.sum() >= 2:
        residual_order = float(np.polyfit(np.log(np.asarray(RESIDUAL_SCALES)[above]), np.log(norms[above]), 1)[0])
        residual_ok = residual_order >= order + 1 - RESIDUAL_ORDER_SLACK
    else:
        residual_order = None
        residual_ok = not above.any()
    stability, degree = _reduced_stability(reduced, n_c, rng, chop)
    if not residual_ok:
        verdict = INCONCLUSIVE
        message = (f"the series does not solve the invariance equation to order {order}: the residual falls like "
                   f"|u|^{residual_order:.2f}, not |u|^{order + 1}; the expansion may not converge at |u| ~ "
                   f"{RESIDUAL_SCALES[-1]} (a nearby singularity) or the equilibrium is inexact")
    elif stability in ("flat", "attracting"):
        verdict = HOLDS
        message = ("the reduced field is identically zero: the center manifold is a manifold of equilibria (a flat "
                   "valley), not unstable" if stability == "flat" else
                   f"the reduced flow attracts: its leading term of degree {degree} points inwards on every sampled "
                   "direction, so the center manifold is not unstable")
    elif stability == "repelling":
        verdict = DOES_NOT_HOLD
        message = (f"the center manifold is unstable: the leading term of degree {degree} of the reduced field "
                   "points outwards along some directions (u . p(u) > 0)")
    else:
        verdict = INCONCLUSIVE
        message = (f"the leading term of degree {degree} of the reduced field vanishes in some directions; its "
                   "stability is decided by higher orders: raise `order`")
    residual_text = (f"invariance residual ~ |u|^{residual_order:.2f}" if residual_order is not None
                     else "invariance residual at rounding level")
    return dataclasses.replace(cm, stability=stability, leading_degree=degree, residual_norms=norms,
                               residual_order=residual_order, verdict=verdict,
                               message=f"{message} ({residual_text}; dims: center {n_c}, stable {n_s}, "
                                       f"unstable {n_u}).")


def _short(items, limit=SUMMARY_CHARS) -> str:
    text = "[" + ", ".join(items) + "]"
    return text if len(text) <= limit else text[:limit - 5] + " ...]"


def _graph_equation(N_c, N_h, h, n_c, k):
    r""":math:`Dh\,N_c(u, h) - N_h(u, h)`, truncated at degree ``k``: ``A_h h_k`` must equal its degree-``k`` part."""
    uc = [_compose(p, h, n_c, k) for p in N_c]
    out = []
    for i, p in enumerate(N_h):
        total = {m: -c for m, c in _compose(p, h, n_c, k).items()}
        for j in range(n_c):
            dh = _derivative(h[i], j)
            for m, c in _multiply(dh, uc[j], k).items():
                total[m] = total.get(m, 0.0) + c
        out.append(total)
    return out


def _compose(poly, h, n_c, k):
    """``poly(u, h(u))`` truncated at total degree ``k`` (``poly`` in ``z = (u, z_h)``, ``h`` graphs in ``u``)."""
    zero = (0,) * n_c
    out = {}
    cache = {}
    for monomial, c in poly.items():
        term = {zero: c}
        for var, power in enumerate(monomial):
            if power == 0:
                continue
            key = (var, power)
            if key not in cache:
                base = {tuple(int(i == var) for i in range(n_c)): 1.0} if var < n_c else h[var - n_c]
                cache[key] = _power(base, power, k)
            term = _multiply(term, cache[key], k)
            if not term:
                break
        for m, v in term.items():
            out[m] = out.get(m, 0.0) + v
    return out


def _power(p, n, k):
    """``p ** n`` truncated at total degree ``k`` (``n >= 1``)."""
    out = p
    for _ in range(n - 1):
        out = _multiply(out, p, k)
    return out


def _multiply(a, b, k):
    """Product of two polynomials ``{exponents: coefficient}``, truncated at total degree ``k``."""
    out = {}
    for ma, ca in a.items():
        da = sum(ma)
        for mb, cb in b.items():
            if da + sum(mb) > k:
                continue
            m = tuple(x + y for x, y in zip(ma, mb))
            out[m] = out.get(m, 0.0) + ca * cb
    return out


def _derivative(p, j):
    out = {}
    for m, c in p.items():
        if m[j]:
            mm = list(m)
            mm[j] -= 1
            out[tuple(mm)] = out.get(tuple(mm), 0.0) + c * m[j]
    return out


def _to_expr(p, u):
    return sp.Add(*[sp.Float(c, 15) * sp.Mul(*[s**e for s, e in zip(u, m)]) for m, c in sorted(p.items())])


def _taylor_field(sym, w_star, Q, z, degree):
    r"""The Taylor polynomial of :math:`-Q^\top\nabla L(w^* + Qz)` to ``degree``, one ``{exponents: float}`` per row.

    Polynomial losses are expanded by substitution (exact up to the rounding of ``Q``); others by derivatives
    in :math:`\epsilon` of :math:`\nabla L(w^* + \epsilon Q z)` at :math:`\epsilon = 0`.
    """
    symbols = sym.symbols
    grad = list(sym.gradient())
    point = [sp.Float(float(v), 17) for v in w_star]
    lines = [sp.Add(*[sp.Float(float(Q[j, k]), 17) * z[k] for k in range(len(z))]) for j in range(len(symbols))]
    polynomial = all(sp.sympify(g).is_polynomial(*symbols) for g in grad)
    rows = []
    if polynomial:
        shift = dict(zip(symbols, [p + l for p, l in zip(point, lines)]))
        for g in grad:
            poly = sp.Poly(sp.expand(sp.sympify(g).xreplace(shift)), *z)
            rows.append({m: float(c) for m, c in poly.terms() if 0 < sum(m) <= degree})
    else:
        eps = sp.Symbol("_eps")
        shift = dict(zip(symbols, [p + eps * l for p, l in zip(point, lines)]))
        for g in grad:
            f = sp.sympify(g).xreplace(shift)
            row = {}
            for d in range(1, degree + 1):
                f = sp.diff(f, eps)
                coeff = sp.expand(f.subs(eps, 0) / math.factorial(d))
                if coeff == 0:
                    continue
                for m, c in sp.Poly(coeff, *z).terms():
                    row[m] = row.get(m, 0.0) + float(c)
            rows.append(row)
    field = []
    for i in range(len(z)):                                              # -Q^T grad, row i
        out = {}
        for j, row in enumerate(rows):
            q = -float(Q[j, i])
            if q == 0.0:
                continue
            for m, c in row.items():
                out[m] = out.get(m, 0.0) + q * c
        field.append(out)
    return field


def _reduced_stability(reduced, n_c, rng, chop):
    """``(stability, leading degree)`` of the reduced field from the sign of :math:`u \\cdot p_d(u)` on directions."""
    if all(not p for p in reduced):
        return "flat", None
    degree = min(sum(m) for p in reduced for m in p)
    lead = [{m: c for m, c in p.items() if sum(m) == degree} for p in reduced]
    dirs = rng.standard_normal((STABILITY_DIRECTIONS, n_c))
    dirs = np.concatenate([dirs, np.eye(n_c), -np.eye(n_c)])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    values = np.zeros(dirs.shape[0])
    for j, p in enumerate(lead):
        for m, c in p.items():
            values += dirs[:, j] * c * np.prod(dirs ** np.asarray(m), axis=1)
    size = max(abs(c) for p in lead for c in p.values())
    tiny = max(chop, 1e-9 * size)
    if np.any(values > tiny):
        return "repelling", degree
    if np.all(values < -tiny):
        return "attracting", degree
    return "undecided", degree


def _oriented(V):
    """Eigenvectors with their largest-magnitude entry positive (the first one among near-ties)."""
    V = V.copy()
    for k in range(V.shape[1]):
        col = np.abs(V[:, k])
        i = int(np.argmax(col >= col.max() * (1 - 1e-9)))
        if V[i, k] < 0:
            V[:, k] = -V[:, k]
    return V


def _lambdify(u, expr):
    return sp.lambdify([list(u)], expr, "numpy")


def _evaluate(functions, U, n):
    """Evaluate the lambdified scalar functions at the rows of ``U`` (or one ``U``), stacking ``n`` outputs."""
    single = U.ndim == 1
    rows = U[None, :] if single else U
    out = np.zeros((rows.shape[0], n))
    for i, f in enumerate(functions):
        out[:, i] = f(list(rows.T)) if rows.shape[1] else f([])
    return out[0] if single else out


def _evaluate_jacobian(functions, U, n_rows, n_cols):
    single = U.ndim == 1
    rows = U[None, :] if single else U
    out = np.zeros((rows.shape[0], n_rows, n_cols))
    for i in range(n_rows):
        for j in range(n_cols):
            out[:, i, j] = functions[i][j](list(rows.T))
    return out[0] if single else out


class _LambdifiedObjective:
    r"""A :class:`~gradflow.symbolic.SymbolicObjective` evaluated with NumPy (``sympy.lambdify``): value, gradient,
    Hessian-vector product and Hessian, for :func:`gradflow.linearize` and the invariance residual."""

    def __init__(self, sym: SymbolicObjective):
        self.size = sym.size
        args = [list(sym.symbols)]
        self._value = sp.lambdify(args, sym.expr, "numpy")
        self._grad = [sp.lambdify(args, g, "numpy") for g in sym.gradient()]
        self._hessian = sp.lambdify(args, sym.hessian(), "numpy")

    def value(self, w):
        w = np.asarray(w, dtype=np.float64)
        return np.broadcast_to(self._value(list(w.T)), w.shape[:-1]) * 1.0

    def grad(self, w):
        w = np.asarray(w, dtype=np.float64)
        return np.stack([np.broadcast_to(np.asarray(g(list(w.T)), dtype=np.float64), w.shape[:-1]) for g in self._grad],
                        axis=-1)

    def hessian(self, w):
        return np.asarray(self._hessian(list(np.asarray(w, dtype=np.float64))), dtype=np.float64)

    def hvp(self, w, v):
        return np.asarray(v, dtype=np.float64) @ self.hessian(w)


# ============================================================================= center attraction
def center_attraction(flow, w_star, radius=DEFAULT_RADIUS, samples=DEFAULT_ATTRACTION_SAMPLES, seed=DEFAULT_SEED, *,
                      manifold=None, horizon=None, rate_rtol=DEFAULT_RATE_RTOL, method=DEFAULT_METHOD,
                      tol=None) -> CenterAttractionReport:
    r"""Check the emergence theorem: solutions near ``w_star`` approach the center manifold exponentially fast.

    "There is a neighborhood of :math:`W^*` such that all solutions from the
    neighborhood tend exponentially fast to a solution in the center
    manifold" (Section 4).  The rate is that of the slowest stable direction,
    the smallest nonzero :math:`|\mu|` among the stable eigenvalues of
    :math:`-H`.  From ``samples`` points :math:`w^* + r v_i` (random unit
    :math:`v_i`) the flow is integrated over :math:`[0, 3T]` with
    :math:`T = \text{ATTRACTION_DECAY}/\mu_{\text{pred}}` (or
    :math:`\text{ATTRACTION_SLOW}/r^2` without a stable eigenvalue), and the
    distance :math:`d_i(t)` is

    * ``manifold=None``: the distance to the set of equilibria, measured as
      :math:`\|\varphi_t(x_i) - w_i^\infty\|` with :math:`w_i^\infty` the
      equilibrium the solution converges to (Newton, :func:`gradflow.find_equilibrium`,
      from :math:`\varphi_{3T}(x_i)`): the center manifold when it is made of
      equilibria (zero-loss valleys, Figure 2);
    * ``manifold=`` a :class:`CenterManifold` of the same point: the distance
      :math:`\|z - h(u)\|` to its series graph (any center manifold).

    The rate is fitted to :math:`\log d_i` on :math:`t \in [T/2, T]`; the
    check holds when the median rate is within ``rate_rtol`` of the
    prediction and every fit is exponential (:math:`R^2 \ge` ``MIN_R_SQUARED``).
    It does not hold when the decay is not exponential at that rate, e.g.
    for the distance to the equilibria when the center manifold is not made
    of them (:math:`L = \tfrac12 w_1^2 + w_2^4/4`: rate about
    :math:`7\cdot10^{-5}` against 1).

    It is inconclusive when the theorem's hypotheses are not met or the
    measurement cannot decide:

    * ``w_star`` has unstable directions (:math:`-H` has a positive
      eigenvalue, e.g. a saddle): solutions leave the neighbourhood along
      :math:`E^u`, the theorem says nothing about them; nothing is integrated;
    * there is no stable eigenvalue (e.g. :math:`L = w^4/4`): nothing to
      predict a rate from; the decay is still measured and reported
      (:math:`d \sim t^{-1/2}` for :math:`w^4/4`, log-log slope :math:`-1/2`);
    * ``manifold=None`` and :func:`gradflow.find_equilibrium` did not converge
      from some :math:`\varphi_{3T}(x_i)`: the distance to the set of
      equilibria is unknown;
    * an integration failed, or every distance fell below the floor before the
      fit window.

    Parameters
    ----------
    flow : GradientFlow
        Or an objective, which is wrapped in one.
    w_star : array, shape (P,)
        An equilibrium.
    radius : float, default ``DEFAULT_RADIUS`` = 1e-2
        Distance of the starting points, > 0.
    samples : int, default ``DEFAULT_ATTRACTION_SAMPLES`` = 8
        >= 1.
    seed : int, default ``DEFAULT_SEED`` = 0
    manifold : CenterManifold, optional
        Measure the distance to this series instead of to the equilibria.
    horizon : float, optional
        :math:`T` (the fit window is :math:`[T/2, T]`), > 0.
    rate_rtol : float, default ``DEFAULT_RATE_RTOL`` = 0.05
        The stated tolerance on the rate (the limit points lie :math:`O(r)` from :math:`w^*`, where the
        eigenvalues differ by :math:`O(r)`).
    method : str, default ``DEFAULT_METHOD`` = "LSODA"
        Integrator (a key of ``GradientFlow.METHODS``).
    tol : float, optional
        Zero threshold on the eigenvalues, as in :func:`gradflow.linearize`.

    Returns
    -------
    CenterAttractionReport
    """
    flow = _validate_flow(flow)
    w_star = _validate_w_star(flow.obj, w_star)
    radius = _validate_radius(radius)
    samples = _validate_samples(samples, minimum=1)
    seed = check_seed(seed)
    manifold = _validate_manifold(manifold, w_star)
    horizon = _validate_horizon(horizon)
    rate_rtol = _validate_rate_rtol(rate_rtol)
    method = _validate_method(method)
    tol = _validate_tol(tol)
    lin = equilibrium_linearization(flow.obj, w_star, tol=tol, hint=_FLOW_HINT)
    mu = np.asarray(lin.eigenvalues, dtype=np.float64)
    n_s, n_u = lin.dims[_STABLE], lin.dims[_UNSTABLE]
    predicted = float(np.abs(mu[:n_s]).min()) if n_s else None
    T = horizon if horizon is not None else (ATTRACTION_DECAY / predicted if predicted else ATTRACTION_SLOW / radius**2)
    P = w_star.shape[0]
    times = np.concatenate([np.linspace(0.0, T / 2, FIT_POINTS // 2, endpoint=False),
                            np.linspace(T / 2, T, FIT_POINTS)])
    target = "manifold" if manifold is not None else "equilibria"
    common = dict(w_star=w_star, target=target, predicted_rate=predicted, times=times, window=(T / 2, T),
                  radius=radius, rate_rtol=rate_rtol)
    no_fit = dict(rate=None, rates=np.full(samples, np.nan), fitted=np.zeros(samples, bool), r_squared=None,
                  power=None, limit_rates=None, distances=np.zeros((0, samples)), verdict=INCONCLUSIVE)
    if n_u:
        return CenterAttractionReport(
            **common, **no_fit,
            message=(f"the emergence theorem does not apply: w* has {n_u} unstable direction(s) (-H has the positive "
                     f"eigenvalue(s) {_listed(mu[P - n_u:])}; dims {dict(lin.dims)}), so solutions from a "
                     "neighbourhood leave it along E_u instead of approaching a center manifold; it is stated at "
                     "equilibria without unstable directions (minima)."))
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((samples, P))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    X0 = w_star + radius * v
    t_eval = np.concatenate([times, [3.0 * T]])
    traj = flow.solve_ensemble(X0, (0.0, 3.0 * T), t_eval=t_eval, method=method, rtol=CHECK_RTOL,
                               atol=CHECK_ATOL_PER_RADIUS * radius)
    if not traj.success:
        return CenterAttractionReport(
            **common, **no_fit,
            message=f"the integration failed: {traj.message}. Make `radius` or `horizon` smaller.")
    W = traj.w[:-1]                                                       # (n_t, m, P)
    limit_rates = None
    if manifold is None:
        limits = [find_equilibrium(flow.obj, traj.w[-1, i], gtol=LIMIT_GTOL, max_iter=LIMIT_MAX_ITER)
                  for i in range(samples)]
        unconverged = [i for i, e in enumerate(limits) if not e.converged]
        if unconverged:
            worst = max(limits[i].grad_norm for i in unconverged)
            return CenterAttractionReport(
                **common, **no_fit,
                message=(f"the limit point of {len(unconverged)} of {samples} solutions was not found: "
                         f"gf.find_equilibrium from phi_(3T)(x_i), T = {T:.3g}, stopped at |grad L| up to "
                         f"{worst:.3g} > {LIMIT_GTOL:g} ({limits[unconverged[0]].message}), so the distance to the "
                         "set of equilibria cannot be measured. Pass a longer `horizon`, or "
                         "manifold=center_manifold(sym, w_star)."))
        D = np.linalg.norm(W - np.stack([_backend.to_numpy(e.w) for e in limits])[None], axis=-1)
        limit_rates = np.array([_slowest_stable(flow.obj, e.w, tol) for e in limits])
    else:
        Y = W - w_star
        D = np.linalg.norm(Y @ manifold.hyperbolic - manifold.graph((Y @ manifold.center).reshape(-1, manifold.dim))
                           .reshape(Y.shape[0], samples, -1), axis=-1)
    floor = DISTANCE_FLOOR * max(1.0, float(np.linalg.norm(w_star)))
    window = times >= T / 2
    rates = np.full(samples, np.nan)
    r2 = np.full(samples, np.nan)
    powers = np.full(samples, np.nan)
    for i in range(samples):
        keep = window & (D[:, i] > floor)
        if keep.sum() < MIN_FIT_POINTS:
            continue
        t, logd = times[keep], np.log(D[keep, i])
        slope, intercept = np.polyfit(t, logd, 1)
        resid = logd - (slope * t + intercept)
        total = np.sum((logd - logd.mean()) ** 2)
        rates[i] = -slope
        r2[i] = 1.0 - np.sum(resid**2) / total if total > 0 else 1.0
        powers[i] = np.polyfit(np.log(t), logd, 1)[0]
    fitted = np.isfinite(rates)
    if not fitted.any():
        return CenterAttractionReport(
            **common, rate=None, rates=rates, fitted=fitted, r_squared=None, power=None, limit_rates=limit_rates,
            distances=D, verdict=INCONCLUSIVE,
            message=(f"every distance fell below the floor {floor:.2e} before the fit window [{T / 2:.3g}, {T:.3g}]: "
                     "nothing to fit. Pass a shorter `horizon` or a larger `radius`."))
    rate = float(np.median(rates[fitted]))
    r_squared = float(np.min(r2[fitted]))
    power = float(np.median(powers[fitted]))
    exponential = r_squared >= MIN_R_SQUARED
    measured = (f"fitted rate {rate:.6g} (median of {int(fitted.sum())} solutions; R^2 >= {r_squared:.6f}, "
                f"log-log slope {power:.3f}) on t in [{T / 2:.3g}, {T:.3g}]")
    if predicted is None:
        verdict = INCONCLUSIVE
        message = (f"no stable eigenvalue: -H has no negative eigenvalue at w*, so there is no rate to predict and "
                   f"the emergence theorem says nothing here; measured: the decay is "
                   f"{'exponential' if exponential else 'not exponential'} ({measured}); algebraic decay t^-p shows "
                   "a log-log slope -p")
    else:
        close = abs(rate - predicted) <= rate_rtol * predicted
        verdict = verdict_of(close and exponential)
        if verdict == HOLDS:
            message = (f"solutions approach the {'center manifold' if manifold is not None else 'set of equilibria'} "
                       f"exponentially at the rate of the smallest nonzero eigenvalue {predicted:.6g}: {measured}")
        else:
            why = []
            if not close:
                why.append(f"the rate differs from the smallest nonzero eigenvalue {predicted:.6g} by more than "
                           f"{rate_rtol:g} relative")
            if not exponential:
                why.append(f"the decay is not exponential (R^2 < {MIN_R_SQUARED})")
            hint = ("; the center manifold may not be made of equilibria: pass manifold=center_manifold(sym, w_star)"
                    if manifold is None else "")
            message = f"{' and '.join(why)}: {measured}{hint}"
    return CenterAttractionReport(**common, rate=rate, rates=rates, fitted=fitted, r_squared=r_squared, power=power,
                                  limit_rates=limit_rates, distances=D, verdict=verdict, message=message + ".")


def _listed(values) -> str:
    """At most a few values, for a message."""
    values = np.asarray(values, dtype=np.float64)
    text = ", ".join(f"{x:.3g}" for x in values[:4])
    return text + (f", ... ({values.size} in all)" if values.size > 4 else "")


def _slowest_stable(obj, w, tol) -> float:
    """The smallest :math:`|\\mu|` over the stable eigenvalues of the linearization at ``w`` (NaN when none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAnEquilibriumWarning)
        lin = linearize(obj, w, tol=tol)
    n_s = lin.dims[_STABLE]
    return float(np.abs(np.asarray(lin.eigenvalues)[:n_s]).min()) if n_s else float("nan")


# ============================================================================= shared internals
def _validate_flow(flow) -> GradientFlow:
    if isinstance(flow, GradientFlow):
        return flow
    if isinstance(flow, SymbolicObjective):
        raise ValueError(
            "`flow` must be a numeric gradient flow; got a symbolic objective. Compile it first: "
            "gf.GradientFlow(sym.compile())."
        )
    if isinstance(flow, (Objective, CompiledObjective)):
        return GradientFlow(flow)
    raise TypeError(f"`flow` must be a gradflow.GradientFlow (or an Objective to wrap in one); got {describe(flow)}.")


def _validate_symbolic(sym) -> SymbolicObjective:
    if isinstance(sym, SymbolicObjective):
        if sym.expr.free_symbols - set(sym.symbols):
            raise ValueError(
                "`sym` must have numeric data; it still has the symbols "
                f"{sorted(map(str, sym.expr.free_symbols - set(sym.symbols)))[:5]}. Build it with "
                "gf.symbolic.network_loss(widths, data=...)."
            )
        return sym
    if isinstance(sym, CompiledObjective):
        raise ValueError(
            "`sym` must be a symbolic objective (gradflow.symbolic.SymbolicObjective); got a compiled one. Pass the "
            "SymbolicObjective itself (from gf.symbolic.from_expr or network_loss), not its .compile()."
        )
    if isinstance(sym, (Objective, GradientFlow)):
        raise ValueError(
            f"`sym` must be a symbolic objective; got the numeric {type(sym).__name__}. Build the same loss with "
            "gf.symbolic.network_loss(widths, data=data) (or gf.symbolic.from_expr(expr, symbols)) and pass that."
        )
    raise TypeError(f"`sym` must be a gradflow.symbolic.SymbolicObjective; got {describe(sym)}.")


def _validate_w_star(obj, w_star) -> np.ndarray:
    P = int(obj.size)
    try:
        w = np.asarray(_backend.to_numpy(w_star) if _backend.is_array(w_star) else w_star, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`w_star` must be an array of {P} real numbers; got {describe(w_star)}.") from None
    if w.ndim != 1 or w.shape[0] != P:
        raise ValueError(f"`w_star` must be one parameter vector of shape ({P},); got shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise ValueError("`w_star` must be finite; it has NaN or inf entries.")
    return w


def _validate_radius(radius) -> float:
    return check_real("radius", radius, minimum=0.0, strict=True)


def _validate_samples(samples, minimum) -> int:
    return check_int("samples", samples, minimum=minimum)


def _validate_n_radii(n_radii) -> int:
    return check_int("n_radii", n_radii, minimum=2)


def _validate_horizon(horizon):
    return None if horizon is None else check_real("horizon", horizon, minimum=0.0, strict=True)


def _validate_rate_rtol(rate_rtol) -> float:
    return check_real("rate_rtol", rate_rtol, minimum=0.0, strict=True)


def _validate_order(order) -> int:
    return check_int("order", order, minimum=2)


def _validate_method(method) -> str:
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a string, a key of GradientFlow.METHODS; got {describe(method)}.")
    if method not in GradientFlow.METHODS:
        raise ValueError(f"`method` must be one of {', '.join(map(repr, GradientFlow.METHODS))}; got {method!r}.")
    return method


def _validate_tol(tol):
    return None if tol is None else check_real("tol", tol, minimum=0.0)


def _validate_manifold(manifold, w_star):
    if manifold is None:
        return None
    if not isinstance(manifold, CenterManifold):
        raise TypeError(
            f"`manifold` must be a CenterManifold from center_manifold(sym, w_star); got {describe(manifold)}.")
    if manifold.w_star.shape != w_star.shape:
        raise ValueError(f"`manifold` must be the center manifold of the same point; it has P = "
                         f"{manifold.w_star.shape[0]}, the flow P = {w_star.shape[0]}.")
    if not np.allclose(manifold.w_star, w_star, rtol=1e-12, atol=1e-12):
        raise ValueError(
            "`manifold` must be the center manifold of the same point; it was computed at a w_star at distance "
            f"{float(np.linalg.norm(manifold.w_star - w_star)):.3g} from this one. Call center_manifold(sym, w_star)."
        )
    if manifold.dim == 0:
        raise ValueError("`manifold` has no center directions (w_star is hyperbolic); leave `manifold` out.")
    return manifold
