r"""The gradient flow :math:`\dot w = -\nabla L(w)` (Equation 1 of the paper) as an ODE.

:class:`GradientFlow` is the dynamical system of an objective: its vector field
``rhs`` and exact Jacobian ``jacobian`` (:math:`-\nabla^2 L`), and ``solve`` /
``solve_ensemble``, which integrate it with scipy's integrators or with
gradflow's compiled ones.  The objective may be a numeric
:class:`~gradflow.Objective` or a compiled symbolic objective; both give
compiled kernels (:mod:`gradflow._kernels`), which the compiled integrators
call from inside numba.

Gradient flows near degenerate minima are stiff: the Hessian has large
eigenvalues (fast, stable directions) next to zero or tiny ones (the center
manifold of minima, Section 4).  ``method="auto"`` therefore picks a stiff
integrator with the exact Jacobian where the flow is stiff and the dense
Jacobian affordable (up to ``COMPILED_STIFF_LIMIT`` parameters), and the
explicit one otherwise.  A quadratic objective (feature regression with the
square loss) has a linear flow, which "auto" solves exactly instead:
:math:`w(t) = e^{-Ht} w_0 + H^{+}(I - e^{-Ht})\,b` in the eigenbasis of the
constant Hessian (method ``"quadratic"``).

:math:`L` is a Lyapunov function of the flow, :math:`\dot L = -\|\nabla L\|^2 \le 0`;
a solution along which the loss rises says so in its message.
"""

from __future__ import annotations

import functools
import gc
import math
import numbers

import numba
import numpy as np
import scipy.integrate

from . import _backend, _integrators, _quadratic, _threads
from ._kernels import bind, compiled_kernels, network_hvp, specialize
from ._validation import check_dense_fits, check_int, check_real, dense_fits, describe
from .models import Network
from .objective import Objective
from .symbolic import CompiledObjective
from .trajectory import Trajectory, evaluate_path

__all__ = ["GradientFlow"]

#: Default tolerances of :meth:`GradientFlow.solve` (those of DESIGN.md).
DEFAULT_RTOL, DEFAULT_ATOL = 1e-6, 1e-9
#: Largest number of steps of a compiled integrator.
DEFAULT_MAX_STEPS = 1_000_000
#: Objectives with more parameters than this get an explicit method from "auto" when they have no compiled kernels
#: (a dense Jacobian costs P Hessian-vector products).
DENSE_JACOBIAN_LIMIT = 400
#: "auto" chooses an explicit method ('dopri5' or 'dop853') when it would need fewer than this many steps for
#: stability alone, :math:`\rho(\nabla^2 L(w_0))\,(t_f - t_0) / 3.3`, and the stiff 'bdf' otherwise.
EXPLICIT_STEP_LIMIT = 300
#: Up to this many parameters "auto" takes :math:`\rho(\nabla^2 L(w_0))` from the dense Hessian; above, from
#: power iterations (measured on network kernels: the two cost the same near P = 30).
DENSE_STIFFNESS_LIMIT = 32
#: Up to this many parameters "auto" may choose the compiled stiff 'bdf' (or hand over to it); beyond, it keeps to the
#: explicit method: each Jacobian of a stiff method is a dense P x P matrix, P Hessian-vector products and an
#: O(P^3) eigendecomposition (or LU).
COMPILED_STIFF_LIMIT = 2000
#: From this many parameters a scipy stiff solve is followed by a garbage collection: scipy's solver object is in a
#: reference cycle (its ``fun`` closes over it), which would keep its dense Jacobian and factors alive until Python's
#: collector runs, so that successive solves (an ensemble) piled them up past the memory check.
COLLECT_AFTER_DENSE_SIZE = 1000
#: Power iterations (Hessian-vector products) with which "auto" estimates :math:`\rho(\nabla^2 L(w_0))`.
STIFFNESS_POWER_ITERATIONS = 30
#: Rows of an ensemble's W0 at which "auto" judges stiffness (evenly spread; 'bdf' only when every one is stiff).
ENSEMBLE_STIFFNESS_SAMPLES = 8
#: Stability limit :math:`h\rho` of Dormand-Prince 5(4) on the negative real axis.  (Dormand-Prince 8(5,3)'s, near
#: 6, comes with twice the stages: the two need about as many gradients for stability alone.)
DOPRI5_STABILITY = 3.3
#: "auto"'s explicit method is 'dop853' at ``rtol`` up to this and 'dopri5' above: at tight tolerances the 8th-order
#: pair takes fewer gradients (measured at rtol 1e-8: 458 against 548 on L = 1/2 (w1 w2 - 1)^2 over [0, 50], 218
#: against 368 on a 2,220-parameter tanh MLP over [0, 5]; on stability-bound flows the two are within 5%).
HIGH_ORDER_RTOL = 1e-7
#: Number of output times, evenly spaced over ``t_span``, when ``t_eval`` is not given and there are no steps to
#: report: of :meth:`GradientFlow.solve_ensemble`, and of method "quadratic".
DEFAULT_ENSEMBLE_POINTS = 101
#: A rise of the loss larger than this many times ``rtol * |L|`` (plus ``atol * |grad L|``) is reported.
LYAPUNOV_SLACK = 100.0

_SCIPY_METHODS = {
    "RK45": "scipy: explicit Runge-Kutta 5(4), Dormand-Prince (non-stiff)",
    "RK23": "scipy: explicit Runge-Kutta 3(2), Bogacki-Shampine (non-stiff, low accuracy)",
    "DOP853": "scipy: explicit Runge-Kutta 8(5,3) (non-stiff, high accuracy)",
    "Radau": "scipy: implicit Runge-Kutta Radau IIA of order 5, exact Jacobian (stiff)",
    "BDF": "scipy: variable-order BDF / NDF, exact Jacobian (stiff)",
    "LSODA": "scipy: ODEPACK's Adams / BDF with automatic stiffness switching, exact Jacobian",
}
_COMPILED_METHODS = {
    "dopri5": "compiled (numba): explicit Dormand-Prince 5(4), adaptive steps (non-stiff)",
    "dop853": "compiled (numba): explicit Dormand-Prince 8(5,3), adaptive steps (non-stiff, tight tolerances)",
    "exprb32": "compiled (numba): exponential Rosenbrock 3(2) with the exact Hessian (stiff; exact for quadratic losses)",
    "bdf": "compiled (numba): variable-order BDF 1-5 with the exact Hessian, reused across steps (stiff)",
}
_COMPILED_CODES = {"dopri5": _integrators.DOPRI5, "exprb32": _integrators.EXPRB32, "bdf": _integrators.BDF,
                   "dopri5+bdf": _integrators.DOPRI5_DETECTING, "dop853": _integrators.DOP853,
                   "dop853+bdf": _integrators.DOP853_DETECTING}
#: An explicit compiled method, and the same handing over to 'bdf' where the flow turns stiff.
_HANDING_OVER = {"dopri5": "dopri5+bdf", "dop853": "dop853+bdf"}
_EXACT_METHODS = {
    "quadratic": "exact, no time steps, for a quadratic objective (FeatureRegression with the square loss): "
                 "w(t) = exp(-H t) w0 + H^+ (I - exp(-H t)) b in the eigenbasis of the constant Hessian H",
}
_STIFF_SCIPY = ("Radau", "BDF", "LSODA")
#: The methods that use the exact Jacobian against stiffness ('dopri5+bdf' and 'dop853+bdf' hand over to 'bdf' where
#: needed).
_STIFF_METHODS = _STIFF_SCIPY + ("bdf", "exprb32", "dopri5+bdf", "dop853+bdf", "quadratic")
#: The methods that hold dense P x P matrices, and how many float64 ones per run at their peak (measured at
#: P = 2,970: 'bdf' 5, 'exprb32' 7, scipy's 'BDF' 5.2; Radau's complex factors count twice), rounded up.
_DENSE_MATRICES = {"bdf": 6, "exprb32": 8, "BDF": 6, "LSODA": 6, "Radau": 8, "quadratic": _quadratic.DENSE_MATRICES}
#: Appended to the message of a failed run of a network whose activation is not smooth.
_KINK_NOTE = (". The network's units are not smooth (ReLU): -grad L jumps where a pre-activation crosses 0, and "
              "the flow can slide along such a kink (a Filippov sliding mode), where adaptive steps shrink without "
              "end. gf.gd with a small lr follows the same flow; or use a smooth activation such as 'tanh'")
_NO_TIMES = np.empty(0)
_SMALLEST_RTOL = 100 * np.finfo(np.float64).eps
_STATUS_NAMES = {
    _integrators.SUCCESS: "success",
    _integrators.DIVERGED: "diverged",
    _integrators.STEP_UNDERFLOW: "failed",
    _integrators.TOO_MANY_STEPS: "failed",
    _integrators.UNFINISHED: "failed",
}


class GradientFlow:
    r"""The gradient flow :math:`\dot w = -\nabla L(w)` of an objective.

    Parameters
    ----------
    obj : Objective or compiled symbolic objective
        Anything with ``size``, ``value``, ``grad`` and ``hessian`` (``value``
        of one vector, or of a batch ``(m, P)`` to record the loss in one call).

    Attributes
    ----------
    METHODS : dict
        Every accepted ``method`` name with a one-line description.
    kernels : Kernels or None
        The compiled kernels the compiled integrators use, when ``obj`` has them.
    """

    METHODS = {
        "auto": "the fastest suitable method: 'quadratic' for a quadratic objective (when its dense Hessian fits in "
                "memory); otherwise with compiled kernels 'bdf', or an explicit method when the flow is not stiff "
                "over t_span (rho(Hessian at w0) * (tf - t0) / 3.3 < EXPLICIT_STEP_LIMIT): 'dop853' at rtol <= "
                f"HIGH_ORDER_RTOL = {HIGH_ORDER_RTOL:g}, else 'dopri5', handing over to 'bdf' where the flow turns "
                "stiff (method 'dopri5+bdf' or 'dop853+bdf'; an ensemble gets 'bdf' only when the "
                f"ENSEMBLE_STIFFNESS_SAMPLES = {ENSEMBLE_STIFFNESS_SAMPLES} rows spread over W0 are all stiff), "
                f"and the explicit method alone beyond COMPILED_STIFF_LIMIT = {COMPILED_STIFF_LIMIT} parameters; "
                "without compiled kernels 'LSODA' with the exact Jacobian (or 'RK45' beyond a few hundred parameters)",
        **_COMPILED_METHODS,
        **_EXACT_METHODS,
        **_SCIPY_METHODS,
    }

    def __init__(self, obj):
        self.obj = _validate_objective(obj)
        self.kernels = compiled_kernels(obj)
        self.size = int(obj.size)
        self._bound = None
        self._entries = {}
        self._spectral_radius = None
        self._quadratic_spectrum = None
        # the loss along a compiled run comes from the value kernel inside the run, where it is obj.value
        self._records_loss = isinstance(obj, CompiledObjective) and type(obj).value is CompiledObjective.value

    def _compiled(self, ensemble_method=None):
        """The bound kernels and a compiled entry point (``_integrators.compiled``), made once per flow: of a
        single run, or of an ensemble of ``ensemble_method``."""
        key = ensemble_method and _COMPILED_CODES[ensemble_method] == _integrators.BDF
        entry = self._entries.get(key)
        if entry is None:
            code = None if ensemble_method is None else _COMPILED_CODES[ensemble_method]
            entry = self._entries[key] = _integrators.compiled(self._bound_kernels(), code)
        return self._bound, entry

    def _bound_kernels(self):
        """The kernels as typed function pointers (``_kernels.bind``), made once per flow."""
        if self._bound is None:
            self._bound = bind(self.kernels)
        return self._bound

    # -------------------------------------------------------------- the field
    def rhs(self, t, w):
        r"""The vector field :math:`-\nabla L(w)` (``t`` is ignored: the flow is autonomous)."""
        return -self.obj.grad(w)

    def jacobian(self, t, w):
        r"""Its Jacobian :math:`-\nabla^2 L(w)`, exact and dense."""
        return -self.obj.hessian(w)

    # ------------------------------------------------------------------ solve
    def solve(self, w0, t_span, t_eval=None, method="auto", rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL,
              events=None, max_steps=DEFAULT_MAX_STEPS) -> Trajectory:
        r"""Integrate the flow from ``w0`` over ``t_span``.

        Parameters
        ----------
        w0 : array, shape (P,)
        t_span : (t0, tf)
            With ``t0 < tf``.
        t_eval : array, optional
            Sorted times in ``t_span`` at which to return the solution; by
            default every accepted step.
        method : str, default "auto"
            A key of :attr:`METHODS`: a compiled integrator, or any
            ``scipy.integrate.solve_ivp`` method (the stiff ones get the exact
            Jacobian).
        rtol, atol : float
            Relative and absolute tolerances of the local error.
        events : callable or list of callables, optional
            ``solve_ivp`` events, ``event(t, w)``; they need a scipy method
            ("auto" then chooses one).
        max_steps : int
            Limit on the steps of the integrator, compiled or scipy's.

        Returns
        -------
        Trajectory
            With ``loss`` and, for an :class:`~gradflow.Objective`, ``metrics``
            at every output time; ``status`` / ``message`` say how it ended.
        """
        w0 = self._validate_w0(w0)
        t0, tf = _validate_t_span(t_span)
        t_eval = _validate_t_eval(t_eval, t0, tf)
        rtol, atol = _validate_tolerances(rtol, atol)
        events = _validate_events(events)
        max_steps = check_int("max_steps", max_steps, minimum=1)
        chosen, judge_stiffness = self._resolve_method(method, events is not None, rtol)
        self._check_dense_memory(chosen, 1)
        recorded = None
        if chosen == "quadratic":
            times, path, status, message, info = self._solve_quadratic(w0[None], t0, tf, t_eval)
            path, t_events = path[:, 0], None
        elif chosen in _COMPILED_METHODS:
            # "auto": the compiled run itself judges stiffness at w0 (rho * (tf - t0) / DOPRI5_STABILITY against
            # EXPLICIT_STEP_LIMIT, as _explicit_steps does) and runs 'bdf' when it is stiff
            run, stiff_radius = chosen, 0.0
            if judge_stiffness:
                run, stiff_radius = _HANDING_OVER[chosen], EXPLICIT_STEP_LIMIT * DOPRI5_STABILITY / (tf - t0)
            chosen, times, path, status, message, info, recorded = self._solve_compiled(
                run, w0, t0, tf, t_eval, rtol, atol, max_steps, stiff_radius)
            t_events = None
        else:
            times, path, status, message, info, t_events = self._solve_scipy(chosen, w0, t0, tf, t_eval, rtol, atol,
                                                                             events, max_steps)
            if chosen in _DENSE_MATRICES and self.size >= COLLECT_AFTER_DENSE_SIZE:
                gc.collect()                          # scipy's solver holds a reference cycle to its dense matrices
        if status == "failed" and _has_kinks(self.obj):
            message += _KINK_NOTE
        return self._trajectory(times, path, status, message, chosen, info, rtol, atol, t_events, recorded=recorded)

    def solve_ensemble(self, W0, t_span, t_eval=None, method="auto", rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL,
                       max_steps=DEFAULT_MAX_STEPS) -> Trajectory:
        r"""Integrate from every row of ``W0`` (shape ``(m, P)``) to the common times ``t_eval``.

        With compiled kernels the ``m`` runs are integrated in parallel on all
        cores (numba ``prange``), each with its own adaptive steps; otherwise
        one after the other.  With ``method="auto"`` the stiffness is judged at
        ``ENSEMBLE_STIFFNESS_SAMPLES`` rows spread over ``W0``: 'bdf' when all
        are stiff, otherwise the explicit method ('dop853' at rtol up to
        ``HIGH_ORDER_RTOL``, else 'dopri5') with each run handing over to 'bdf'
        where it turns stiff (the explicit method alone beyond
        ``COMPILED_STIFF_LIMIT`` parameters or where bdf's dense matrices do not
        fit in memory).  ``t_eval`` defaults to
        ``DEFAULT_ENSEMBLE_POINTS`` evenly spaced times.  The trajectory's ``w``
        has shape ``(n_points, m, P)``, its ``status`` is the worst of the
        runs (``info["status"]`` lists each) and its ``nfev`` the total
        (``info["nfev"]`` lists each run's).
        """
        W0 = self._validate_W0(W0)
        t0, tf = _validate_t_span(t_span)
        if t_eval is None:
            t_eval = np.linspace(t0, tf, DEFAULT_ENSEMBLE_POINTS)
        t_eval = _validate_t_eval(t_eval, t0, tf)
        rtol, atol = _validate_tolerances(rtol, atol)
        max_steps = check_int("max_steps", max_steps, minimum=1)
        # "auto" judges stiffness at up to ENSEMBLE_STIFFNESS_SAMPLES rows spread over W0: 'bdf' only when all are stiff,
        # since the rows of 'dopri5+bdf' that start stiff hand over within a few steps
        m = W0.shape[0]
        in_flight = min(m, numba.get_num_threads())  # compiled runs at once, each with its own dense matrices
        samples = W0[np.unique(np.linspace(0, m - 1, ENSEMBLE_STIFFNESS_SAMPLES).astype(int))]
        chosen, judge_stiffness = self._resolve_method(method, False, rtol, in_flight)
        if judge_stiffness and all(self._explicit_steps(w0, tf - t0) >= EXPLICIT_STEP_LIMIT for w0 in samples):
            chosen = "bdf"
        self._check_dense_memory(chosen, in_flight if chosen in _COMPILED_METHODS else 1)
        switched = np.full(m, np.nan)
        raised = []                                   # compiled runs that ended in an exception
        if chosen == "quadratic":
            _, out, exact_status, _, _ = self._solve_quadratic(W0, t0, tf, t_eval)
            reached = np.full(m, out.shape[0])
            statuses = [exact_status] * m
            run_nfev = [0] * m
        elif chosen in _COMPILED_METHODS:
            chosen = _HANDING_OVER[chosen] if judge_stiffness and chosen != "bdf" else chosen
            out = np.full((t_eval.shape[0], m, self.size), np.nan)
            codes = np.full(m, _integrators.UNFINISHED, dtype=np.int64)
            nfev = np.zeros(m, dtype=np.int64)
            reached = np.zeros(m, dtype=np.int64)
            k, entry = self._compiled(chosen)
            # every thread eigendecomposes its own Jacobians (LAPACK beyond SMALL_EIGEN_LIMIT parameters) and calls
            # BLAS for large layers; a multithreaded BLAS inside each would oversubscribe the cores (16 cores, 1,000
            # runs of the Figure 8 net, then through LAPACK: 3.7 s with its threads, 2.3 s without).  One run keeps
            # BLAS's threads.
            with _threads.single_threaded_blas(m > 1):
                entry(_COMPILED_CODES[chosen], k.rhs, k.jac, k.args, W0, t0, tf, t_eval, rtol, atol, max_steps, out,
                      codes, nfev, reached, switched)
            statuses = [_STATUS_NAMES[int(c)] for c in codes]
            run_nfev = nfev.tolist()
            raised = np.flatnonzero(codes == _integrators.UNFINISHED).tolist()
        else:
            runs = [self.solve(w, (t0, tf), t_eval=t_eval, method=chosen, rtol=rtol, atol=atol, max_steps=max_steps)
                    for w in W0]
            reached = np.array([r.n_points for r in runs])
            out = np.full((t_eval.shape[0], m, self.size), np.nan)
            for i, r in enumerate(runs):
                out[: r.n_points, i] = r.w
            statuses = [r.status for r in runs]
            run_nfev = [r.nfev for r in runs]
        # keep the times every run reached; a failed run is reported, never padded with NaN
        n_common = int(reached.min())
        failed = [i for i, s in enumerate(statuses) if s != "success"]
        status = "success" if not failed else ("diverged" if any(statuses[i] == "diverged" for i in failed) else "failed")
        message = "all runs reached the end of the time span" if not failed else (
            f"{len(failed)} of {m} runs did not finish (first: run {failed[0]}, {statuses[failed[0]]}); the trajectory "
            f"stops at t = {t_eval[n_common - 1] if n_common else t0:g}, the last time every run reached. "
            "Lower rtol/atol or shorten t_span for those initial conditions.")
        if raised:
            message += (f" Run(s) {', '.join(map(str, raised[:10]))} ended in an error inside the objective's compiled "
                         f"kernels, which a parallel loop cannot pass on: solve(W0[{raised[0]}]) alone raises it.")
        info = {"status": statuses, "points_reached": reached.tolist(), "nfev": run_nfev, "rtol": rtol, "atol": atol}
        if np.isfinite(switched).any():
            info["switched_to_bdf_at"] = [float(t) if np.isfinite(t) else None for t in switched]
        elif chosen.endswith("+bdf"):
            chosen = chosen[:-len("+bdf")]            # no run turned stiff
        return self._trajectory(t_eval[:n_common], out[:n_common], status, message, chosen, info, rtol, atol, None,
                                nfev=sum(run_nfev))

    # ------------------------------------------------------------- internals
    def _resolve_method(self, method, has_events, rtol, runs_at_once=1):
        """``(chosen, judge_stiffness)``: the method to run, and whether "auto" may still run 'bdf' (then ``chosen``
        is the explicit method, which 'bdf' replaces where the flow is stiff at the start, and which hands over to
        'bdf' where the flow turns stiff later: 'dopri5+bdf', 'dop853+bdf'); not beyond ``COMPILED_STIFF_LIMIT``
        parameters or where bdf's dense matrices (of ``runs_at_once`` runs) do not fit in memory."""
        if not isinstance(method, str) or method not in self.METHODS:
            raise (TypeError if not isinstance(method, str) else ValueError)(
                f"`method` must be one of {', '.join(repr(m) for m in self.METHODS)}; got {describe(method)}."
            )
        if method == "auto":
            if has_events:
                return ("LSODA" if self.size <= DENSE_JACOBIAN_LIMIT else "RK45"), False
            if _quadratic.is_quadratic(self.obj) and dense_fits(self.size, _quadratic.DENSE_MATRICES):
                return "quadratic", False
            if self.kernels is not None:
                return ("dop853" if rtol <= HIGH_ORDER_RTOL else "dopri5"), self._may_use_bdf(runs_at_once)
            return ("LSODA" if self.size <= DENSE_JACOBIAN_LIMIT else "RK45"), False
        if method == "quadratic":
            if not _quadratic.is_quadratic(self.obj):
                raise ValueError(
                    "`method` 'quadratic' needs a quadratic objective: a gf.Objective of a FeatureRegression model with "
                    f"the 'square' loss (not a subclass, which may change the loss); got {describe(self.obj)}. Use "
                    "method='auto'."
                )
            if has_events:
                raise ValueError("`events` need a scipy method; `method` 'quadratic' takes no time steps. Use 'LSODA'.")
        if method in _COMPILED_METHODS:
            if self.kernels is None:
                raise ValueError(
                    f"`method` {method!r} needs compiled kernels, which this objective does not have (it is not a "
                    "NumPy gradflow.Objective or a compiled symbolic objective); use a scipy method such as 'LSODA'."
                )
            if has_events:
                raise ValueError(f"`events` need a scipy method; `method` {method!r} is compiled. Use 'LSODA' or 'RK45'.")
        return method, False

    def _explicit_steps(self, w0, span) -> float:
        """Steps an explicit method needs over ``span`` for stability alone, from the Hessian's spectral radius at w0:
        estimated by ``STIFFNESS_POWER_ITERATIONS`` compiled power iterations on the network kernels' HVP beyond
        ``DENSE_STIFFNESS_LIMIT`` parameters, otherwise exact from the dense Hessian (which a generated symbolic
        HVP builds anyway).  A non-finite Hessian counts as stiff (the stiff method then reports the failure)."""
        k = self._bound_kernels()
        if self._spectral_radius is None:
            self._spectral_radius = _integrators.compiled_spectral_radius(k)
        radius = self._spectral_radius(k.jac, k.hvp, k.args, w0, self._stiffness_iterations())
        return (radius if math.isfinite(radius) else math.inf) * span / DOPRI5_STABILITY

    def _stiffness_iterations(self) -> int:
        """Power iterations of the stiffness estimate: none (the dense Hessian's exact spectral radius) up to
        ``DENSE_STIFFNESS_LIMIT`` parameters or with a symbolic HVP (which builds the dense Hessian anyway)."""
        dense = self.size <= DENSE_STIFFNESS_LIMIT or self.kernels.hvp is not network_hvp
        return 0 if dense else STIFFNESS_POWER_ITERATIONS

    def _may_use_bdf(self, runs_at_once) -> bool:
        """Whether "auto" may run 'bdf' (from the start or by a hand-over): up to ``COMPILED_STIFF_LIMIT`` parameters
        and where the dense matrices of ``runs_at_once`` runs fit in memory."""
        return self.size <= COMPILED_STIFF_LIMIT and dense_fits(self.size, _DENSE_MATRICES["bdf"], runs_at_once)

    def _stiff_advice(self, method) -> str:
        """How to get past stiffness after an explicit ``method``, as " or ..." (empty after a stiff one): a stiff
        method where its dense Jacobian fits in memory, else explicit steps."""
        if method in _STIFF_METHODS:
            return ""
        if dense_fits(self.size, _DENSE_MATRICES["bdf"]):
            return " or use a stiff method (" + ("'bdf'" if self.kernels is not None else "'LSODA'") + ")"
        return (f" or follow the flow with gf.gd at a step below 2 / lambda_max (the stiff methods' dense Jacobians do "
                f"not fit in memory at P = {self.size:,})")

    def _check_dense_memory(self, method, runs_at_once):
        """Refuse a stiff ``method`` whose dense P x P matrices (the Jacobian -H and its factors, per run in
        flight) cannot fit in half of the memory this process may use."""
        if method in _DENSE_MATRICES:
            runs = f" ({runs_at_once} runs at once)" if runs_at_once > 1 else ""
            check_dense_fits(self.size, _DENSE_MATRICES[method], f"`method` {method!r}{runs}",
                             "Use an explicit method: 'dopri5' or 'dop853' (compiled), 'RK45' or 'DOP853', or "
                             "method='auto', which chooses one at this size.", copies=runs_at_once)

    def _solve_quadratic(self, W0, t0, tf, t_eval):
        """The exact flow of a quadratic objective from every row of ``W0`` at ``t_eval`` (by default
        ``DEFAULT_ENSEMBLE_POINTS`` evenly spaced times): ``(times, path (T, m, P), status, message, info)``."""
        if self._quadratic_spectrum is None:
            self._quadratic_spectrum = _quadratic.spectrum(self.obj)
        spec = self._quadratic_spectrum
        times = np.linspace(t0, tf, DEFAULT_ENSEMBLE_POINTS) if t_eval is None else t_eval
        path = _quadratic.flow_path(spec, W0, times - t0)
        info = {"nfev": 0, "njev": 1, "lambda_max": spec.lambda_max, "null_space_dim": int(spec.null.sum())}
        finite = np.isfinite(path).all(axis=(1, 2))
        if finite.all():
            return times, path, "success", "the exact solution of the linear flow at the requested times", info
        first = int(np.argmin(finite))
        return (times[:first], path[:first], "diverged",
                f"the exact solution overflows after t = {times[first - 1] if first else t0:g}: the Hessian has a "
                f"negative eigenvalue ({spec.eigenvalues[0]:.3g}), so the flow grows exponentially", info)

    def _solve_compiled(self, method, w0, t0, tf, t_eval, rtol, atol, max_steps, stiff_radius):
        """One compiled run of ``method`` (:func:`_integrators.integrate_recorded`; 'bdf' instead where
        ``stiff_radius > 0`` and the flow is stiff at ``w0``): ``(method run, times, path, status, message, info,
        recorded)``, ``recorded`` the ``(loss, kept, k, rise)`` the run computed along its path, or None."""
        requested = _NO_TIMES if t_eval is None else t_eval
        k, entry = self._compiled()
        (ts, ws, code, nfev, njev, accepted, rejected, end, switched, bdf_from_start, loss, kept, rise_at,
         rise) = entry(_COMPILED_CODES[method], k.rhs, k.jac, k.hvp, k.value, k.args, w0, t0, tf, requested, rtol,
                       atol, max_steps, stiff_radius, self._stiffness_iterations(), self._records_loss,
                       LYAPUNOV_SLACK)
        handed_over = switched == switched            # not NaN
        explicit = method.split("+")[0]
        ran = "bdf" if bdf_from_start else (method if handed_over else explicit)
        status = _STATUS_NAMES[code]
        if code == _integrators.SUCCESS:
            message = "the integration reached the end of the time span"
        elif code == _integrators.DIVERGED:
            message = (f"the solution became non-finite after t = {end:g}: the weights diverge; "
                       "check the objective (scale of the data, weight decay) or the initial point")
        elif code == _integrators.STEP_UNDERFLOW:
            message = (f"the step size fell below the resolution of t after t = {end:g}: the solution may blow up in "
                       f"finite time there; otherwise loosen rtol/atol{self._stiff_advice(method)}")
        else:
            message = (f"stopped after max_steps = {max_steps} steps at t = {end:g}; raise "
                       f"max_steps{self._stiff_advice(method)}")
        info = {"nfev": nfev, "njev": njev, "accepted_steps": accepted, "rejected_steps": rejected}
        if handed_over:
            info["switched_to_bdf_at"] = switched
            message += (f"; explicit steps until t = {switched:g}, where the flow turned stiff (h |lambda| held at "
                        f"the stability limit of {explicit!r}), then 'bdf'")
        return ran, ts, ws, status, message, info, ((loss, kept, rise_at, rise) if self._records_loss else None)

    def _solve_scipy(self, method, w0, t0, tf, t_eval, rtol, atol, events, max_steps):
        """``solve_ivp`` with ``method``, the exact Jacobian for the stiff methods, and a stop where the field is not
        finite.  The explicit methods reject a step with a non-finite stage and retry a smaller one, but scipy's
        LSODA never returns from a non-finite field (it shrinks its step forever), and Radau and BDF cannot
        factor a non-finite Jacobian (nor scipy an overflowing Newton matrix): there the field (LSODA) or the
        Jacobian (all three, evaluated at accepted points) raises :class:`_NonFiniteField`, and the run is repeated
        up to the last step accepted before, which an event records.  That event also stops the run after
        ``max_steps`` steps (LSODA can creep towards a singularity where the field stays finite without end), which
        is then repeated the same way."""
        evaluations = {"fun": 0, "reached": t0, "state": w0, "steps": -1, "limit": max_steps}   # t0 counts as -1
        stop_on_non_finite = method == "LSODA"

        def fun(t, w):
            evaluations["fun"] += 1
            value = _backend.to_numpy(self.rhs(t, w))
            if stop_on_non_finite and not _all_finite(value):
                raise _NonFiniteField
            return value

        def record_step(t, w):
            evaluations["reached"], evaluations["state"] = t, np.array(w)      # solvers may reuse their array
            evaluations["steps"] += 1
            if evaluations["steps"] > evaluations["limit"]:
                raise _TooManySteps
            return 1.0

        options = {}
        if method in _STIFF_SCIPY:
            if self.kernels is not None:
                k = self.kernels

                def jacobian(t, w):
                    out = np.empty((self.size, self.size))
                    k.jac(t, np.ascontiguousarray(w, dtype=np.float64), out, k.args)
                    return out
            else:
                def jacobian(t, w):
                    return _backend.to_numpy(self.jacobian(t, w))

            def jac(t, w):
                out = jacobian(t, w)
                if not np.isfinite(out).all():
                    raise _NonFiniteField
                return out
            options["jac"] = jac

        def run(end, times, limit):
            evaluations["steps"], evaluations["limit"] = -1, limit
            with np.errstate(over="ignore", invalid="ignore"):
                try:
                    return scipy.integrate.solve_ivp(fun, (t0, end), w0, method=method, t_eval=times, rtol=rtol,
                                                     atol=atol, events=(events or []) + [record_step], **options)
                except ValueError as exc:             # scipy.linalg's check of a Newton matrix I - h J that overflowed
                    if "infs or NaNs" in str(exc):
                        raise _NonFiniteField from exc
                    raise

        stopped = None
        try:
            result = run(tf, t_eval, max_steps)
        except (_NonFiniteField, _TooManySteps) as exc:
            result, stopped = None, exc
        if result is None:
            # repeat the run, without a step limit, up to the last accepted step (whose stages were finite)
            reached = evaluations["reached"]
            requested = None if t_eval is None else t_eval[t_eval <= reached]
            try:
                rerun = reached > t0 and (requested is None or requested.shape[0] > 0)
                result = run(reached, requested, math.inf) if rerun else None
            except _NonFiniteField:
                result = None
            if result is None:                        # no re-run: w0 at most
                times = np.array([t0]) if t_eval is None else t_eval[t_eval == t0]
                path = np.repeat(w0[None, :], times.shape[0], axis=0)
                t_events = None if events is None else [np.empty(0) for _ in events]
            else:
                times, path = _result_path(result, self.size)
                t_events = result.t_events[:-1] if events is not None else None
            info = {"nfev": evaluations["fun"], "njev": 0 if result is None else int(result.njev),
                    "nlu": 0 if result is None else int(result.nlu)}
            if isinstance(stopped, _TooManySteps):
                return times, path, "failed", (
                    f"stopped after max_steps = {max_steps} steps at t = {reached:g}; raise max_steps"
                    f"{self._stiff_advice(method)}, or the flow may be creeping towards a singularity of L there"
                ), info, t_events
            message = (f"the vector field -grad L or its Jacobian became non-finite after t = {reached:g}, where scipy "
                       f"{method} stopped: the weights diverge; check the objective (scale of the data, weight decay) "
                       "or the initial point")
            return times, path, "diverged", message, info, t_events
        times, path = _result_path(result, self.size)
        finite = np.all(np.isfinite(path), axis=1)
        if result.status == -1 or not finite.all():
            last_good = int(np.argmin(finite)) if not finite.all() else path.shape[0]
            times, path = times[:last_good], path[:last_good]
            reached, state = evaluations["reached"], np.asarray(evaluations["state"], dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                field_finite = _all_finite(_backend.to_numpy(self.rhs(reached, state)))
            if not finite.all() or not field_finite:
                status = "diverged"
                message = (f"the vector field -grad L became non-finite after t = {reached:g}, where scipy {method} "
                           f"stopped ({result.message}): the weights diverge; check the objective (scale of the data, "
                           "weight decay) or the initial point")
            else:
                status = "failed"
                message = f"scipy {method} stopped after t = {reached:g}: {result.message}"
                if "step size" in result.message:
                    message += (f" The largest |w_i| there is {np.max(np.abs(state)):.3g}: if it is large, the "
                                f"solution blows up in finite time; otherwise loosen "
                                f"rtol/atol{self._stiff_advice(method)}.")
        else:
            status = "terminated" if result.status == 1 else "success"
            message = result.message
        info = {"nfev": int(result.nfev), "njev": int(result.njev), "nlu": int(result.nlu)}
        return times, path, status, message, info, (result.t_events[:-1] if events is not None else None)

    def _trajectory(self, times, path, status, message, method, info, rtol, atol, t_events, nfev=None, recorded=None):
        """The :class:`Trajectory` of a run: the loss (and metrics) along ``path``, cut before the first point where
        the loss is not finite, and a warning where the loss rises.  ``recorded`` is ``(loss, kept, k, rise)`` when
        the compiled run computed them (:func:`_integrators.integrate_recorded`)."""
        if recorded is None:
            loss, metrics = evaluate_path(self.obj, path.reshape(-1, self.size))
            loss = loss.reshape(path.shape[:-1])
            metrics = {k: v.reshape(path.shape[:-1]) for k, v in metrics.items()}
            finite = np.isfinite(loss).all(axis=tuple(range(1, loss.ndim)))      # per point, over the runs
            kept = loss.shape[0] if finite.all() else int(np.argmin(finite))
        else:
            (loss, kept, rise_at, rise), metrics = recorded, {}
        if kept < loss.shape[0]:                      # the last steps left the domain of L (log, sqrt) or overflow it
            note = (f"the loss is not finite at t = {times[kept]:g} (the weights left the domain where L is defined, "
                    "or L overflows there); the path stops before that time")
            status, message = (("diverged", note) if status in ("success", "terminated")
                                else (status, f"{message}; {note}"))
            times, path, loss = times[:kept], path[:kept], loss[:kept]
            metrics = {k: v[:kept] for k, v in metrics.items()}
        if path.shape[0] > 1 and status in ("success", "terminated"):
            if recorded is None:
                rise_at, rise = _integrators.largest_excess_rise(
                    np.ascontiguousarray(loss, dtype=np.float64).reshape(loss.shape[0], -1), rtol, atol, LYAPUNOV_SLACK)
            if rise_at >= 0:
                message += (f"; warning: the loss, a Lyapunov function of the flow, rose by {rise:.3g} between t = "
                            f"{times[rise_at]:g} and t = {times[rise_at + 1]:g}, more than the tolerances allow: the "
                            f"solution is inaccurate there; lower rtol/atol{self._stiff_advice(method)}")
        # positional: a third of a microsecond less than by keyword, which short compiled solves notice
        nfev = int(info.get("nfev", 0) if nfev is None else nfev)
        return Trajectory(times, path, loss, metrics, status, message, nfev, method, t_events, info)

    def _validate_w0(self, w0):
        w0 = _as_numpy_vector(w0, "w0")
        if w0.ndim != 1 or w0.shape[0] != self.size:
            raise ValueError(
                f"`w0` must have shape ({self.size},), one weight per parameter of the objective; got shape {w0.shape}. "
                "For many initial conditions use solve_ensemble(W0) with W0 of shape (m, P)."
            )
        w0 = np.ascontiguousarray(w0, dtype=np.float64)
        if not _finite_vector()(w0):
            raise ValueError("`w0` must be finite; it has NaN or inf entries.")
        return w0

    def _validate_W0(self, W0):
        W0 = _as_numpy_vector(W0, "W0")
        if W0.ndim != 2 or W0.shape[1] != self.size or W0.shape[0] == 0:
            raise ValueError(f"`W0` must have shape (m, {self.size}) with m >= 1, one initial condition per row; got "
                             f"shape {W0.shape}.")
        if not np.all(np.isfinite(W0)):
            raise ValueError("`W0` must be finite; it has NaN or inf entries.")
        return np.ascontiguousarray(W0, dtype=np.float64)

    def __repr__(self) -> str:
        compiled = "compiled kernels" if self.kernels is not None else "no compiled kernels"
        return f"GradientFlow({self.obj!r}; {compiled})"


def _result_path(result, size):
    """``(times, path (n, P))`` of a ``solve_ivp`` result, also where it has no points (scipy then leaves lists)."""
    times = np.asarray(result.t, dtype=np.float64)
    path = np.asarray(result.y, dtype=np.float64).T if times.size else np.empty((0, size))
    return times, path


def _as_numpy_vector(value, name):
    try:
        return _backend.to_real_numpy(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be an array of real numbers; got {describe(value)}.") from None


class _NonFiniteField(ArithmeticError):
    """The vector field (or its Jacobian) handed to scipy is not finite at the point asked for."""


class _TooManySteps(Exception):
    """A scipy run took more than ``max_steps`` steps."""


def _all_finite(w) -> bool:
    """Whether every entry of the array ``w`` is finite (:func:`_integrators.finite_vector`)."""
    return _finite_vector()(np.ascontiguousarray(w, dtype=np.float64).reshape(-1))


@functools.cache
def _finite_vector():
    return specialize(_integrators.finite_vector, (numba.types.float64[::1],))


def _has_kinks(obj) -> bool:
    """Whether ``obj`` is a network whose activation is not smooth (ReLU): its vector field jumps."""
    model = getattr(obj, "model", None)
    return isinstance(model, Network) and not model.activation.is_smooth


def _validate_objective(obj):
    if isinstance(obj, Objective):
        return obj
    required = ("size", "value", "grad", "hessian")
    missing = [name for name in required if not hasattr(obj, name)]
    if missing:
        raise TypeError(
            "`obj` must be a gradflow.Objective or a compiled symbolic objective (with size, value, grad, hessian); "
            f"got {describe(obj)}, which lacks {', '.join(missing)}."
        )
    return obj


def _validate_t_span(t_span):
    try:
        t0, tf = t_span
    except (TypeError, ValueError):
        raise TypeError(f"`t_span` must be a pair (t0, tf); got {describe(t_span)}.") from None
    t0, tf = check_real("t_span[0]", t0), check_real("t_span[1]", tf)
    if not tf > t0:
        raise ValueError(f"`t_span` must be increasing, (t0, tf) with t0 < tf; got ({t0}, {tf}).")
    if not math.isfinite(tf - t0):
        raise ValueError(f"`t_span` must have a length tf - t0 that is a finite float; got ({t0}, {tf}), whose length "
                         "overflows. Shift it, e.g. to (0, tf - t0) with a smaller tf.")
    return t0, tf


def _validate_t_eval(t_eval, t0, tf):
    if t_eval is None:
        return None
    t_eval = _as_numpy_vector(t_eval, "t_eval")
    if t_eval.ndim != 1 or t_eval.size == 0:
        raise ValueError(f"`t_eval` must be a non-empty 1-D array of times; got shape {t_eval.shape}.")
    if not np.all(np.isfinite(t_eval)):
        raise ValueError("`t_eval` must be finite.")
    if np.any(np.diff(t_eval) <= 0):
        raise ValueError("`t_eval` must be sorted in increasing order without repeats; sort it with np.unique(t_eval).")
    if t_eval[0] < t0 or t_eval[-1] > tf:
        raise ValueError(f"`t_eval` must lie within t_span = ({t0}, {tf}); got times from {t_eval[0]} to {t_eval[-1]}.")
    return np.ascontiguousarray(t_eval)


def _validate_tolerances(rtol, atol):
    rtol = check_real("rtol", rtol, minimum=0.0, strict=True)
    atol = check_real("atol", atol, minimum=0.0, strict=True)
    if rtol < _SMALLEST_RTOL:
        raise ValueError(f"`rtol` must be at least {_SMALLEST_RTOL:.1e} (100 machine epsilons); got {rtol}.")
    return rtol, atol


def _validate_events(events):
    if events is None:
        return None
    listed = list(events) if isinstance(events, (list, tuple)) else [events]
    for i, event in enumerate(listed):
        if not callable(event):
            raise TypeError(f"`events[{i}]` must be a callable event(t, w) -> float; got {describe(event)}.")
    return listed
