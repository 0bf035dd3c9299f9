r"""Compiled (numba) integrators for the gradient flow :math:`\dot w = f(w) = -\nabla L(w)`.

NumPy-only.  Each integrator takes the kernels of :mod:`gradflow._kernels`
(``rhs(t, w, out, args)``, ``jac(t, w, out, args)``) as arguments, so one
compiled integrator serves every objective with compiled kernels; numba
compiles it once per kernel family and caches it on disk.

``dopri5``
    The explicit Dormand–Prince 5(4) pair (Dormand & Prince 1980), with the
    error of the embedded 4th-order solution controlling the step; FSAL.
``dop853``
    The explicit Dormand–Prince 8(5,3) pair (Hairer, Nørsett & Wanner,
    Solving ODEs I, II.10): twelve stages of order 8, the error estimated by
    the embedded 5th- and 3rd-order solutions combined as in their DOP853;
    FSAL.  At tight tolerances it takes far fewer steps than ``dopri5``.
``exprb32``
    An exponential Rosenbrock method of order 3 with an embedded order-2
    solution (Hochbruck, Ostermann & Schweitzer 2009, "exprb32"):

    .. math::

        U = w_n + h\,\varphi_1(hJ_n)\,f(w_n), \qquad
        w_{n+1} = U + 2h\,\varphi_3(hJ_n)\,D_n(U),\qquad
        D_n(U) = f(U) - f(w_n) - J_n (U - w_n),

    with :math:`J_n = -\nabla^2 L(w_n)` the exact Jacobian.  Because
    :math:`J_n` is symmetric, the :math:`\varphi` functions are applied through
    its eigendecomposition.  The method is *exact* for quadratic losses (then
    :math:`D_n \equiv 0`), which is the paper's picture near a minimum: a linear
    gradient system (Section 4).  Stiffness costs it nothing, and near a
    degenerate minimum its steps grow geometrically.

``bdf``
    A variable-order (1 to 5), variable-step backward differentiation
    formula in backward-difference form (the quasi-constant step-size
    scheme of Shampine & Reichelt's ``ode15s``), solving its implicit
    equation by simplified Newton iterations with the exact Jacobian, which
    it reuses across steps until Newton slows down.  The flow's Jacobian
    :math:`-\nabla^2 L` is symmetric, so one eigendecomposition
    :math:`\nabla^2 L = Q\Lambda Q^\top` per Jacobian makes every Newton
    solve with :math:`I + c\nabla^2 L` an :math:`O(P^2)` product,
    :math:`Q (1 + c\Lambda)^{-1} Q^\top`, for any step size: a change of
    step never refactors a matrix.  Output at requested times comes from the
    interpolating polynomial of the backward differences.

The one-step integrators produce output at requested times by a sub-step of the
accepted step from its start, which has the accuracy of a step; ``dop853`` from
its 7th-order interpolant instead (three more derivatives per step with
output, however many times it holds).  With no requested times every accepted
step is returned.  Status codes:
0 success, 1 diverged (non-finite values), 2 failed (step size underflow),
3 too many steps.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.integrate

from ._kernels import FASTMATH, specialize

SUCCESS, DIVERGED, STEP_UNDERFLOW, TOO_MANY_STEPS, STIFF = 0, 1, 2, 3, 4
#: The status an ensemble's run starts with: a run still holding it ended in an exception inside a kernel, which
#: numba's parallel loop drops instead of passing on.
UNFINISHED = -1
#: Method codes; DOPRI5_DETECTING and DOP853_DETECTING are DOPRI5 and DOP853 that stop with status STIFF where the
#: flow turns stiff.
DOPRI5, EXPRB32, BDF, DOPRI5_DETECTING, DOP853, DOP853_DETECTING = 0, 1, 2, 3, 4, 5

#: Stiffness test of Hairer & Wanner's DOPRI5 (Solving ODEs II, IV.2): an accepted step whose
#: h * |lambda|, estimated from its last two stages, exceeds STIFF_H_LAMBDA (near DP5's stability
#: boundary, 3.3) counts as stiff; STIFF_STEPS of them before NONSTIFF_RESET non-stiff ones in a row
#: mean the step size is held by stability, not accuracy.  DOP853_STIFF_H_LAMBDA is the same test for DOP853
#: (its stability boundary is near 6; Hairer's dop853.f uses 6.1).
STIFF_H_LAMBDA = 3.25
DOP853_STIFF_H_LAMBDA = 6.1
STIFF_STEPS = 15
NONSTIFF_RESET = 6

#: Highest order of the BDF integrator.
BDF_MAX_ORDER = 5
#: Newton iterations per BDF step before the step is retried.
BDF_NEWTON_ITERATIONS = 4
#: A Newton correction below this times the weighted norm of the predicted w is at rounding level: converged.
NEWTON_ROUNDING = 100 * np.finfo(np.float64).eps

#: Largest P whose Hessians :func:`_symmetric_eigen` decomposes with gradflow's own compiled solver
#: (:func:`_small_symmetric_eigen`) rather than LAPACK.  Up to 64 it is as fast as LAPACK on one thread
#: (2 cores: 268 against 286 us at P = 64) and 1.4x slower at 128; unlike LAPACK it takes no lock, so the
#: runs of an ensemble decompose their Jacobians in parallel (a 16-core Xeon: LAPACK's ``dsyevd`` called
#: from 16 threads at once took 4.8 ms a call against 0.31 ms from one).
SMALL_EIGEN_LIMIT = 128
#: Implicit QR sweeps allowed per eigenvalue before :func:`_small_symmetric_eigen` gives up (LAPACK then
#: decomposes the matrix); a sweep or two each is typical.
EIGEN_SWEEPS_PER_VALUE = 30

#: Step growth and shrink limits of the step-size controller, and its safety factor.
MAX_GROWTH, MIN_SHRINK, SAFETY = 10.0, 0.2, 0.9
#: A step of at most this many spacings of the floating-point numbers at t cannot advance t: step-size underflow
#: (scipy's ``solve_ivp`` uses the same bound).
UNDERFLOW_SPACINGS = 10.0

# Dormand–Prince 5(4) tableau.
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = np.zeros((7, 6))
_A[1, :1] = [1 / 5]
_A[2, :2] = [3 / 40, 9 / 40]
_A[3, :3] = [44 / 45, -56 / 15, 32 / 9]
_A[4, :4] = [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]
_A[5, :5] = [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]
_A[6, :6] = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]    # the 5th-order weights (FSAL)
_E = np.array([71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])   # b - b_hat

# Dormand–Prince 8(5,3) tableau: the coefficients of Hairer's DOP853, as scipy.integrate.DOP853 holds them (12
# stages; E5 and E3 weigh the 13 derivatives, the last f(w_new), into the 5th- and 3rd-order error estimates).
_A8 = np.ascontiguousarray(scipy.integrate.DOP853.A[:12, :12], dtype=np.float64)
_B8 = np.ascontiguousarray(scipy.integrate.DOP853.B, dtype=np.float64)
_C8 = np.ascontiguousarray(scipy.integrate.DOP853.C[:12], dtype=np.float64)
_E5 = np.ascontiguousarray(scipy.integrate.DOP853.E5, dtype=np.float64)
_E3 = np.ascontiguousarray(scipy.integrate.DOP853.E3, dtype=np.float64)
# its 7th-order dense output: three more stages (rows 13-15 of K) and the interpolant's coefficients from all 16
_A8_EXTRA = np.ascontiguousarray(scipy.integrate.DOP853.A_EXTRA, dtype=np.float64)
_C8_EXTRA = np.ascontiguousarray(scipy.integrate.DOP853.C_EXTRA, dtype=np.float64)
_D8 = np.ascontiguousarray(scipy.integrate.DOP853.D, dtype=np.float64)


@numba.njit(cache=True, inline="always")
def _error_norm(error, w_old, w_new, rtol, atol):
    """RMS norm of ``error`` scaled by ``atol + rtol * max(|w_old|, |w_new|)``."""
    total = 0.0
    for p in range(error.shape[0]):
        scale = atol + rtol * max(abs(w_old[p]), abs(w_new[p]))
        total += (error[p] / scale) ** 2
    return np.sqrt(total / error.shape[0])


@numba.njit(cache=True, inline="always")
def _all_finite(x):
    for p in range(x.shape[0]):
        if not np.isfinite(x[p]):
            return False
    return True


@numba.njit(cache=True)
def finite_vector(x):
    """Whether every entry of the vector ``x`` is finite, from Python: a compiled loop takes a tenth of a
    microsecond on a short vector, NumPy's ``isfinite(x).all()`` a microsecond (and a dot product warns on overflow)."""
    return _all_finite(x)


@numba.njit(cache=True, inline="always")
def _below_resolution(h, t):
    """Whether a step h from t is too small to advance t: at most ``UNDERFLOW_SPACINGS`` float spacings at t
    (relative to t, so that a very stiff flow may take steps of 1e-16 near t = 0)."""
    return h <= UNDERFLOW_SPACINGS * (np.nextafter(abs(t), np.inf) - abs(t))


@numba.njit(cache=True)
def _scaled_rms(x, w0, rtol, atol):
    """RMS of ``x / (atol + rtol |w0|)``, without overflow where the squares would (a field of 1e170, say)."""
    largest = 0.0
    for p in range(x.shape[0]):
        largest = max(largest, abs(x[p]) / (atol + rtol * abs(w0[p])))
    if largest == 0.0 or not np.isfinite(largest):
        return largest
    total = 0.0
    for p in range(x.shape[0]):
        total += (x[p] / (atol + rtol * abs(w0[p])) / largest) ** 2
    return largest * np.sqrt(total / x.shape[0])


@numba.njit(cache=True)
def _initial_step(rhs, args, t0, w0, f0, order, rtol, atol, span):
    """A first step size from the scaled sizes of w0, f(w0) and of f's change (Hairer, Nørsett & Wanner, II.4).

    0 where the field is too large for any step (the driver then stops with ``STEP_UNDERFLOW``)."""
    size = w0.shape[0]
    d0, d1 = _scaled_rms(w0, w0, rtol, atol), _scaled_rms(f0, w0, rtol, atol)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, span)
    if not h0 > 0.0:
        return 0.0
    scratch = np.empty((2, size))
    w1, f1 = scratch[0], scratch[1]
    for p in range(size):
        w1[p] = w0[p] + h0 * f0[p]
    rhs(t0 + h0, w1, f1, args)
    for p in range(size):
        f1[p] -= f0[p]
    d2 = _scaled_rms(f1, w0, rtol, atol) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))        # 0 where d2 is infinite or NaN: no step
    if not h1 > 0.0:
        return 0.0
    return min(100 * h0, h1, span)


@numba.njit(cache=True)
def _start_output(t_eval, t0, w0):
    """Output buffers and the requested times at or before t0: ``(ts, ws, n_out, next_eval)``.

    With no requested times the buffers grow (see :func:`_append`) and hold
    every accepted step, starting with (t0, w0).
    """
    dense = t_eval.shape[0] > 0
    capacity = t_eval.shape[0] if dense else 1024
    ts = np.empty(capacity)
    ws = np.empty((capacity, w0.shape[0]))
    n_out, next_eval = 0, 0
    if dense:
        while next_eval < t_eval.shape[0] and t_eval[next_eval] <= t0:
            ts[n_out] = t_eval[next_eval]
            ws[n_out] = w0
            n_out += 1
            next_eval += 1
    else:
        ts[0] = t0
        ws[0] = w0
        n_out = 1
    return ts, ws, n_out, next_eval


@numba.njit(cache=True, inline="always")
def _append(ts, ws, n_out, t, w):
    """Append (t, w) to the growing output buffers; returns them (reallocated when full) and the new count."""
    if n_out == ts.shape[0]:
        ts_big = np.empty(2 * n_out)
        ws_big = np.empty((2 * n_out, ws.shape[1]))
        ts_big[:n_out] = ts[:n_out]
        ws_big[:n_out] = ws[:n_out]
        ts, ws = ts_big, ws_big
    ts[n_out] = t
    for p in range(w.shape[0]):
        ws[n_out, p] = w[p]
    return ts, ws, n_out + 1


# ------------------------------------------------------------------ Dormand–Prince
@numba.njit(cache=True, inline="always")
def _dopri_step(rhs, args, t, w, f0, h, K, w_new, error, w_stage):
    """One Dormand–Prince step from (t, w) with f0 = f(w); fills w_new, error and K[6] = f(w_new).

    The stages are formed in ``w_new``: the last one is the 5th-order solution (FSAL).  ``w_stage``
    receives the point of the sixth stage (at t + h, like ``w_new``), for the stiffness test.
    """
    size = w.shape[0]
    for p in range(size):
        K[0, p] = f0[p]
    for s in range(1, 7):
        for p in range(size):
            acc = 0.0
            for r in range(s):
                acc += _A[s, r] * K[r, p]
            w_new[p] = w[p] + h * acc
        if s == 5:
            for p in range(size):
                w_stage[p] = w_new[p]
        rhs(t + _C[s] * h, w_new, K[s], args)
    for p in range(size):
        acc = 0.0
        for r in range(7):
            acc += _E[r] * K[r, p]
        error[p] = h * acc


@numba.njit(cache=True, inline="always")
def _looks_stiff(K, last, w_new, w_stage, h, limit):
    """Hairer & Wanner's test: ``h |lambda| > limit``, with ``|lambda|`` estimated by
    ``|f(w_new) - f(w_stage)| / |w_new - w_stage|`` from the last two stages, ``K[last]`` and ``K[last - 1]``,
    both at t + h."""
    numerator = denominator = 0.0
    for p in range(w_new.shape[0]):
        df = K[last, p] - K[last - 1, p]
        dw = w_new[p] - w_stage[p]
        numerator += df * df
        denominator += dw * dw
    return denominator > 0.0 and h * h * numerator > limit * limit * denominator


# ------------------------------------------------------------------ Dormand–Prince 8(5,3)
@numba.njit(cache=True, inline="always")
def _dop853_step(rhs, args, t, w, f0, h, K, w_new, w_stage, rtol, atol):
    r"""One DOP853 step from (t, w) with f0 = f(w); fills w_new and K[12] = f(w_new), returns the scaled error.

    The error norm is DOP853's: with :math:`e_5, e_3` the two embedded errors scaled by
    ``atol + rtol * max(|w|, |w_new|)``, :math:`h\,\|e_5\|^2 / \sqrt{P(\|e_5\|^2 + 0.01\|e_3\|^2)}`.
    ``w_stage`` receives the point of the twelfth stage (at t + h), for the stiffness test.
    """
    size = w.shape[0]
    for p in range(size):
        K[0, p] = f0[p]
    for s in range(1, 12):
        for p in range(size):
            acc = 0.0
            for r in range(s):
                acc += _A8[s, r] * K[r, p]
            w_new[p] = w[p] + h * acc
        rhs(t + _C8[s] * h, w_new, K[s], args)
    for p in range(size):
        w_stage[p] = w_new[p]
        acc = 0.0
        for r in range(12):
            acc += _B8[r] * K[r, p]
        w_new[p] = w[p] + h * acc
    rhs(t + h, w_new, K[12], args)
    err5 = err3 = 0.0
    for p in range(size):
        e5 = e3 = 0.0
        for r in range(13):
            e5 += _E5[r] * K[r, p]
            e3 += _E3[r] * K[r, p]
        scale = atol + rtol * max(abs(w[p]), abs(w_new[p]))
        err5 += (e5 / scale) ** 2
        err3 += (e3 / scale) ** 2
    if err5 == 0.0:
        return 0.0
    return h * err5 / np.sqrt((err5 + 0.01 * err3) * size)


@numba.njit(cache=True, inline="always")
def _dop853_interpolant(rhs, args, t, w, w_new, h, K, F, w_stage):
    """The coefficients ``F`` (7, P) of DOP853's 7th-order interpolant over the accepted step (t, w) -> (t + h,
    w_new), whose 13 derivatives ``K[:13]`` the step left; three more stages fill ``K[13:16]``."""
    size = w.shape[0]
    for e in range(3):
        s = 13 + e
        for p in range(size):
            acc = 0.0
            for r in range(s):
                acc += _A8_EXTRA[e, r] * K[r, p]
            w_stage[p] = w[p] + h * acc
        rhs(t + _C8_EXTRA[e] * h, w_stage, K[s], args)
    for p in range(size):
        dw = w_new[p] - w[p]
        F[0, p] = dw
        F[1, p] = h * K[0, p] - dw
        F[2, p] = 2.0 * dw - h * (K[12, p] + K[0, p])
        for j in range(4):
            acc = 0.0
            for r in range(16):
                acc += _D8[j, r] * K[r, p]
            F[3 + j, p] = h * acc


@numba.njit(cache=True, inline="always")
def _dop853_interpolate(F, w, x, out):
    """``out`` = the interpolant of :func:`_dop853_interpolant` at the fraction ``x`` in [0, 1] of the step."""
    for p in range(w.shape[0]):
        y = 0.0
        for i in range(7):
            y += F[6 - i, p]
            y *= x if i % 2 == 0 else 1.0 - x
        out[p] = w[p] + y


# ------------------------------------------------------------ exponential Rosenbrock
@numba.njit(cache=True)
def _phi(k, z):
    r"""The function :math:`\varphi_k(z) = \sum_{j\ge0} z^j/(j+k)!` for real z (k = 1, 3)."""
    if abs(z) < 1.0:
        term, total, factorial = 1.0, 0.0, 1.0
        for q in range(1, k + 1):
            factorial *= q
        term = 1.0 / factorial
        for j in range(30):
            total += term
            term *= z / (j + k + 1)
        return total
    if k == 1:
        return np.expm1(z) / z
    return ((np.expm1(z) / z - 1.0) / z - 0.5) / z              # not / z^3, which overflows for |z| > 1e102


@numba.njit(cache=True)
def _apply_phi(k, h, eigenvalues, Q, Qt, vector, out):
    """``out = phi_k(h J) vector`` with J = Q diag(-eigenvalues) Q^T (eigenvalues of the Hessian)."""
    coefficients = Qt @ vector
    for i in range(eigenvalues.shape[0]):
        coefficients[i] *= _phi(k, -h * eigenvalues[i])
    out[:] = Q @ coefficients


@numba.njit(cache=True)
def _exprb_step(rhs, args, t, w, f0, J, eigenvalues, Q, Qt, h, w_new, error):
    """One exprb32 step; returns the number of rhs evaluations (1)."""
    size = w.shape[0]
    U = np.empty(size)
    _apply_phi(1, h, eigenvalues, Q, Qt, f0, U)
    for p in range(size):
        U[p] = w[p] + h * U[p]
    fU = np.empty(size)
    rhs(t + h, U, fU, args)
    D = fU - f0 - J @ (U - w)
    correction = np.empty(size)
    _apply_phi(3, h, eigenvalues, Q, Qt, D, correction)
    for p in range(size):
        error[p] = 2.0 * h * correction[p]
        w_new[p] = U[p] + error[p]


# --------------------------------------------------------------------- the driver
def compiled(kernels, ensemble_method=None):
    """The compiled entry point of :func:`integrate_recorded` for bound ``kernels`` (from ``_kernels.bind``),
    or with ``ensemble_method`` (a method code above) the parallel ensemble driver that runs it.

    ``entry(method, kernels.rhs, kernels.jac, kernels.hvp, kernels.value, kernels.args, w0, t0, tf, t_eval,
    rtol, atol, max_steps, stiff_radius, iterations, record, slack)``: with an empty ``t_eval`` the output rows
    are every accepted step, otherwise the solution at each time of ``t_eval`` (sorted, in [t0, tf]) reached
    before a failure.  The ensemble entry takes ``(method, rhs, jac, args, W0 (m, P), t0, tf, t_eval, rtol, atol,
    max_steps)`` and fills ``out, status, nfev, n_points, switched`` (see :func:`ensemble_one_step`), integrating
    the rows in parallel.
    """
    # specialize() closes a driver to new signatures, so every driver is compiled before the ones that call it
    single = _signature(kernels, ensemble=False)
    types, i64, f64 = kernels.types, numba.types.int64, numba.types.float64
    vector = numba.types.float64[::1]
    specialize(integrate_one_step, single)
    specialize(integrate_bdf, single)
    specialize(integrate_switching, single)
    if ensemble_method is not None:
        return specialize(ensemble_bdf if ensemble_method == BDF else ensemble_one_step,
                          _signature(kernels, ensemble=True))
    compiled_stiffness_test(kernels)
    specialize(largest_excess_rise, (numba.types.float64[:, ::1], f64, f64, f64))
    return specialize(integrate_recorded, (i64, types.rhs, types.jac, types.hvp, types.value, types.args, vector, f64,
                                           f64, vector, f64, f64, i64, f64, i64, numba.types.boolean, f64))


def _signature(kernels, ensemble):
    f64, i64 = numba.types.float64, numba.types.int64
    vector, matrix = numba.types.float64[::1], numba.types.float64[:, ::1]
    types = kernels.types
    head = (i64, types.rhs, types.jac, types.args)
    if ensemble:
        counts = numba.types.int64[::1]
        return head + (matrix, f64, f64, vector, f64, f64, i64, numba.types.float64[:, :, ::1], counts, counts, counts,
                       vector)
    return head + (vector, f64, f64, vector, f64, f64, i64)


@numba.njit(cache=True)
def integrate_one_step(method, rhs, jac, args, w0, t0, tf, t_eval, rtol, atol, max_steps):
    """The driver of the one-step methods DOPRI5, DOP853 and EXPRB32 (see :func:`compiled`).

    With ``method = DOPRI5_DETECTING`` or ``DOP853_DETECTING`` it stops with status ``STIFF`` where the
    stiffness test (:data:`STIFF_H_LAMBDA`, :data:`DOP853_STIFF_H_LAMBDA`) fires, and then the last output row is
    the state it stopped at (``t < tf``), with requested times or without.
    """
    size = w0.shape[0]
    explicit = method != EXPRB32
    high = method == DOP853 or method == DOP853_DETECTING
    detecting = method == DOPRI5_DETECTING or method == DOP853_DETECTING
    last_stage = 12 if high else 6                    # K[last_stage] = f(w_new): the next step's f0 (FSAL)
    stiff_limit = DOP853_STIFF_H_LAMBDA if high else STIFF_H_LAMBDA
    dense = t_eval.shape[0] > 0
    ts, ws, n_out, next_eval = _start_output(t_eval, t0, w0)
    t = t0
    w = w0.copy()
    f0 = np.empty(size)
    rhs(t, w, f0, args)
    nfev, njev, accepted, rejected = 1, 0, 0, 0
    if not _all_finite(f0) or not _all_finite(w):
        return ts[:n_out], ws[:n_out], DIVERGED, nfev, njev, accepted, rejected, t0
    order = 8 if high else (5 if explicit else 3)
    h = _initial_step(rhs, args, t0, w, f0, order, rtol, atol, tf - t0)
    nfev += 1
    K = np.empty((16 if high else 7, size))           # DOP853's 13 derivatives and 3 more for its dense output
    n_jac = 0 if explicit else size                  # DOPRI5 never forms a Jacobian: no P x P matrix for large nets
    J = np.empty((n_jac, n_jac))
    eigenvalues = np.empty(n_jac)
    Q = np.empty((n_jac, n_jac))
    Qt = np.empty((n_jac, n_jac))
    w_new = np.empty(size)
    error = np.empty(size)
    w_stage = np.empty(size)
    K_sub = np.empty((0 if high else 7, size))
    # the other vectors of output at requested times in one allocation: DOP853's interpolant F, and the points
    # w_sub, err_sub and stage_sub of the other methods' sub-steps (their own: the stiffness test sees the step's)
    n_interpolant = 7 if high and dense else 0
    output_work = np.empty((n_interpolant + 3, size))
    F = output_work[:n_interpolant]
    w_sub, err_sub, stage_sub = output_work[n_interpolant], output_work[n_interpolant + 1], output_work[-1]
    stiff_steps, nonstiff_steps = 0, 0
    have_jacobian = False
    just_rejected = False
    status = SUCCESS
    while t < tf:
        if accepted + rejected >= max_steps:
            status = TOO_MANY_STEPS
            break
        last = h >= tf - t                            # this step ends at tf exactly (t + (tf - t) may round below)
        h = min(h, tf - t)
        if _below_resolution(h, t):
            status = STEP_UNDERFLOW
            break
        if high:
            err = _dop853_step(rhs, args, t, w, f0, h, K, w_new, w_stage, rtol, atol)
            nfev += 12
        elif explicit:
            _dopri_step(rhs, args, t, w, f0, h, K, w_new, error, w_stage)
            nfev += 6
            err = _error_norm(error, w, w_new, rtol, atol)
        else:
            if not have_jacobian:
                jac(t, w, J, args)
                njev += 1
                eigenvalues, Q, Qt = _symmetric_eigen(J)
                have_jacobian = True
            _exprb_step(rhs, args, t, w, f0, J, eigenvalues, Q, Qt, h, w_new, error)
            nfev += 1
            err = _error_norm(error, w, w_new, rtol, atol)
        finite = _all_finite(w_new) and np.isfinite(err)
        if not finite:
            if h < 1e-10 * max(abs(t), 1.0) or not _all_finite(w):
                status = DIVERGED
                break
            h *= MIN_SHRINK
            rejected += 1
            just_rejected = True
            continue
        if err > 1.0:
            h *= max(MIN_SHRINK, SAFETY * err ** (-1.0 / order))
            rejected += 1
            just_rejected = True
            continue
        t_new = tf if last else t + h
        # output: requested times inside (t, t_new], by a sub-step from the step's start or DOP853's interpolant
        if dense:
            interpolated = False
            while next_eval < t_eval.shape[0] and t_eval[next_eval] <= t_new:
                te = t_eval[next_eval]
                if te == t_new:
                    ws[n_out] = w_new
                elif high:
                    if not interpolated:
                        _dop853_interpolant(rhs, args, t, w, w_new, h, K, F, w_sub)
                        nfev += 3
                        interpolated = True
                    _dop853_interpolate(F, w, (te - t) / h, ws[n_out])
                elif explicit:
                    _dopri_step(rhs, args, t, w, f0, te - t, K_sub, w_sub, err_sub, stage_sub)
                    nfev += 6
                    ws[n_out] = w_sub
                else:
                    _exprb_step(rhs, args, t, w, f0, J, eigenvalues, Q, Qt, te - t, w_sub, err_sub)
                    nfev += 1
                    ws[n_out] = w_sub
                ts[n_out] = te
                n_out += 1
                next_eval += 1
        else:
            ts, ws, n_out = _append(ts, ws, n_out, t_new, w_new)
        t = t_new
        for p in range(size):
            w[p] = w_new[p]
        accepted += 1
        if explicit:
            for p in range(size):
                f0[p] = K[last_stage, p]
            if detecting and _looks_stiff(K, last_stage, w_new, w_stage, h, stiff_limit):
                nonstiff_steps = 0
                stiff_steps += 1
                if stiff_steps == STIFF_STEPS and t < tf:
                    status = STIFF
                    ts, ws, n_out = _append(ts, ws, n_out, t, w)
                    break
            else:
                nonstiff_steps += 1
                if nonstiff_steps == NONSTIFF_RESET:
                    stiff_steps = 0
        else:
            rhs(t, w, f0, args)
            nfev += 1
            have_jacobian = False
        if not _all_finite(f0):
            status = DIVERGED
            break
        factor = MAX_GROWTH if err == 0.0 else min(MAX_GROWTH, SAFETY * err ** (-1.0 / order))
        if just_rejected:                             # no growth right after a rejection (Hairer; scipy's RK45)
            factor = min(factor, 1.0)
            just_rejected = False
        h *= max(MIN_SHRINK, factor)
    return ts[:n_out], ws[:n_out], status, nfev, njev, accepted, rejected, t


# ----------------------------------------------------------------------------- BDF
@numba.njit(cache=True)
def _rescale_differences(D, order, factor):
    """Change the step of the backward differences ``D[1:order+1]`` by ``factor`` (Shampine & Reichelt, eq. 2.6)."""
    k = order
    R = np.empty((k, k))
    U = np.empty((k, k))
    for j in range(1, k + 1):
        r_prod, u_prod = 1.0, 1.0
        for i in range(1, k + 1):
            r_prod *= (i - 1 - factor * j) / i
            u_prod *= (i - 1 - j) / i
            R[i - 1, j - 1] = r_prod
            U[i - 1, j - 1] = u_prod
    RU = np.zeros((k, k))
    for i in range(k):
        for m in range(k):
            r = R[i, m]
            for j in range(k):
                RU[i, j] += r * U[m, j]
    size = D.shape[1]
    column = np.empty(k)
    for p in range(size):
        for j in range(k):
            acc = 0.0
            for i in range(k):
                acc += RU[i, j] * D[i + 1, p]
            column[j] = acc
        for j in range(k):
            D[j + 1, p] = column[j]


@numba.njit(cache=True)
def _symmetric_eigen(J):
    """Eigenvalues (ascending) and C-contiguous eigenvectors ``Q`` and ``Q^T`` of the Hessian ``-(J + J^T) / 2``:
    by :func:`_small_symmetric_eigen` up to ``SMALL_EIGEN_LIMIT`` parameters, otherwise (or should it not
    converge) by LAPACK."""
    S = -0.5 * (J + J.T)
    if S.shape[0] <= SMALL_EIGEN_LIMIT:
        eigenvalues, Qt, converged = _small_symmetric_eigen(S)
        if converged:
            return eigenvalues, np.ascontiguousarray(Qt.T), Qt
    eigenvalues, vectors = np.linalg.eigh(S)
    return eigenvalues, np.ascontiguousarray(vectors), np.ascontiguousarray(vectors.T)


@numba.njit(cache=True, fastmath={"contract"})
def _small_symmetric_eigen(S):
    r"""``(eigenvalues, Qt, converged)`` of the symmetric ``S``: ascending eigenvalues, the orthonormal
    eigenvectors as the rows of ``Qt`` (:math:`S = Q \Lambda Q^\top`, ``Qt`` :math:`= Q^\top`), and whether the
    iteration converged within ``EIGEN_SWEEPS_PER_VALUE`` sweeps per eigenvalue.

    Householder reflections reduce ``S`` to a tridiagonal :math:`T = Q^\top S Q`, then implicit QR steps
    with Wilkinson's shift diagonalize ``T``, deflating off-diagonal entries below rounding (Golub & Van
    Loan, *Matrix Computations*, 8.3).  Every reflection and rotation is applied to the rows of
    :math:`Q^\top`, which are contiguous.  A non-finite ``S`` gives NaN eigenvalues and vectors.
    """
    n = S.shape[0]
    Qt = np.zeros((n, n))
    eigenvalues = np.empty(n)
    for i in range(n):
        for j in range(n):
            if not np.isfinite(S[i, j]):
                eigenvalues[:] = np.nan
                Qt[:, :] = np.nan
                return eigenvalues, Qt, True
        Qt[i, i] = 1.0
    A = S.copy()
    v = np.empty(n)
    p = np.empty(n)
    u = np.empty(n)
    # Householder: the reflection I - 2 v v^T (|v| = 1) of rows and columns k+1.. zeroes A[k, k+2:]
    for k in range(n - 2):
        m = n - k - 1
        tail = 0.0
        for i in range(1, m):
            tail += A[k, k + 1 + i] ** 2
        if tail == 0.0:
            continue
        x0 = A[k, k + 1]
        alpha = -math.sqrt(x0 * x0 + tail) if x0 >= 0.0 else math.sqrt(x0 * x0 + tail)
        v[0] = x0 - alpha
        for i in range(1, m):
            v[i] = A[k, k + 1 + i]
        v_norm = math.sqrt(v[0] * v[0] + tail)
        for i in range(m):
            v[i] /= v_norm
        # A22 <- (I - 2 v v^T) A22 (I - 2 v v^T) = A22 - v q^T - q v^T with p = 2 A22 v, q = p - (v.p) v
        vp = 0.0
        for i in range(m):
            acc = 0.0
            for j in range(m):
                acc += A[k + 1 + i, k + 1 + j] * v[j]
            p[i] = 2.0 * acc
            vp += v[i] * p[i]
        for i in range(m):
            p[i] -= vp * v[i]
        for i in range(m):
            vi, qi = v[i], p[i]
            for j in range(m):
                A[k + 1 + i, k + 1 + j] -= vi * p[j] + qi * v[j]
        A[k, k + 1] = A[k + 1, k] = alpha
        # Q^T <- (I - 2 v v^T) Q^T on rows k+1..
        u[:] = 0.0
        for i in range(m):
            for j in range(n):
                u[j] += v[i] * Qt[k + 1 + i, j]
        for i in range(m):
            for j in range(n):
                Qt[k + 1 + i, j] -= 2.0 * v[i] * u[j]
    d = np.empty(n)
    e = np.zeros(n)                                  # e[i] = T[i + 1, i]
    for i in range(n):
        d[i] = A[i, i]
    for i in range(n - 1):
        e[i] = A[i + 1, i]
    eps = np.finfo(np.float64).eps
    sweeps = 0
    end = n - 1
    while end > 0:
        for i in range(end):
            if abs(e[i]) <= eps * (abs(d[i]) + abs(d[i + 1])):
                e[i] = 0.0
        while end > 0 and e[end - 1] == 0.0:
            end -= 1
        if end == 0:
            break
        start = end - 1                              # T[start:end + 1] is unreduced
        while start > 0 and e[start - 1] != 0.0:
            start -= 1
        sweeps += 1
        if sweeps > EIGEN_SWEEPS_PER_VALUE * n:
            return d, Qt, False
        # Wilkinson's shift: the eigenvalue of the trailing 2 x 2 block nearer its last diagonal entry
        delta = 0.5 * (d[end - 1] - d[end])
        off = e[end - 1]
        shift = d[end] - off * off / (delta + math.copysign(math.hypot(delta, off), delta))
        # rotations R_k in the plane (k, k+1), T <- R T R^T, chase the bulge from T[k+2, k] down the band
        x, z = d[start] - shift, e[start]
        for k in range(start, end):
            r = math.hypot(x, z)
            c, s = (1.0, 0.0) if r == 0.0 else (x / r, z / r)
            if k > start:
                e[k - 1] = r
            a, b, f = d[k], d[k + 1], e[k]
            d[k] = c * c * a + 2.0 * c * s * f + s * s * b
            d[k + 1] = s * s * a - 2.0 * c * s * f + c * c * b
            e[k] = c * s * (b - a) + (c * c - s * s) * f
            if k + 1 < end:
                x, z = e[k], s * e[k + 1]
                e[k + 1] *= c
            for j in range(n):
                qk, ql = Qt[k, j], Qt[k + 1, j]
                Qt[k, j] = c * qk + s * ql
                Qt[k + 1, j] = c * ql - s * qk
    order = np.argsort(d)
    rows = np.empty((n, n))
    for i in range(n):
        eigenvalues[i] = d[order[i]]
        rows[i] = Qt[order[i]]
    return eigenvalues, rows, True


@numba.njit(cache=True)
def hessian_spectral_radius(jac, hvp, args, w, iterations):
    r""":math:`\rho(\nabla^2 L(w))`, the stiffness of the flow at ``w``: exact from the dense Jacobian when
    ``iterations`` is 0, otherwise estimated by :func:`hessian_norm_estimate`; ``inf`` when the Jacobian
    has a non-finite entry."""
    if iterations > 0:
        return hessian_norm_estimate(hvp, args, w, iterations)
    size = w.shape[0]
    J = np.empty((size, size))
    jac(0.0, w, J, args)
    for p in range(size):
        for q in range(size):
            if not np.isfinite(J[p, q]):
                return np.inf
    return np.max(np.abs(np.linalg.eigvalsh(0.5 * (J + J.T))))


@numba.njit(cache=True)
def stiff_at(jac, hvp, args, w, iterations, stiff_radius):
    r"""Whether the flow is stiff at ``w``: :math:`\rho(\nabla^2 L(w)) \ge` ``stiff_radius``, or the Hessian is not
    finite.  With ``iterations > 0`` from :func:`hessian_norm_estimate`; otherwise exactly, where most matrices
    need no eigensolver: for the symmetric :math:`S = (H + H^\top)/2` (:math:`H` itself, to rounding),
    :math:`\max_{pq} |S_{pq}| \le \rho(S) \le \|S\|_F`, so eigenvalues are computed only when ``stiff_radius``
    lies between the two bounds."""
    if iterations > 0:
        return not hessian_norm_estimate(hvp, args, w, iterations) < stiff_radius
    size = w.shape[0]
    J = np.empty((size, size))
    jac(0.0, w, J, args)
    S = np.empty((size, size))
    largest = 0.0
    for p in range(size):
        for q in range(size):
            if not np.isfinite(J[p, q]):
                return True
            S[p, q] = 0.5 * J[p, q] + 0.5 * J[q, p]       # halves first: the sum of entries near 1e308 overflows
            largest = max(largest, abs(S[p, q]))
    if largest >= stiff_radius:
        return True
    if largest == 0.0:
        return False
    frobenius = 0.0
    for p in range(size):
        for q in range(size):
            frobenius += (S[p, q] / largest) ** 2       # scaled: the squares of entries past 1e154 overflow
    if largest * np.sqrt(frobenius) < stiff_radius:
        return False
    return not np.max(np.abs(np.linalg.eigvalsh(S))) < stiff_radius


@numba.njit(cache=True)
def hessian_norm_estimate(hvp, args, w, iterations):
    r"""An estimate of :math:`\rho(\nabla^2 L(w))` from below by ``iterations`` power iterations on ``hvp``.

    Costs ``iterations`` Hessian-vector products whatever P is (a dense
    Hessian costs P of them and an :math:`O(P^3)` eigensolver).  The start
    vector is a fixed, deterministic spread of every coordinate, so the
    estimate is reproducible.  The iterate's angle to the dominant eigenvector
    shrinks like :math:`|\lambda_2/\lambda_1|^k`; the estimate
    :math:`\|Hv_k\|` approaches :math:`\rho` from below, its relative error
    roughly the square of that angle.
    """
    size = w.shape[0]
    v = np.empty(size)
    u = np.empty(size)
    norm = 0.0
    for p in range(size):
        v[p] = np.cos(1.3 * p + 0.7) + 0.25
        norm += v[p] * v[p]
    norm = np.sqrt(norm)
    for p in range(size):
        v[p] /= norm
    estimate = 0.0
    for _ in range(iterations):
        hvp(w, v, u, args)
        estimate = 0.0
        for p in range(size):
            estimate += u[p] * u[p]
        estimate = np.sqrt(estimate)
        if not (estimate > 0.0 and np.isfinite(estimate)):
            return estimate
        for p in range(size):
            v[p] = u[p] / estimate
    return estimate


def compiled_spectral_radius(kernels):
    """The compiled entry point of :func:`hessian_spectral_radius` for bound ``kernels``."""
    i64, vector = numba.types.int64, numba.types.float64[::1]
    # specialize() closes a driver to new signatures, so the callee is compiled before its caller
    specialize(hessian_norm_estimate, (kernels.types.hvp, kernels.types.args, vector, i64))
    types = kernels.types
    return specialize(hessian_spectral_radius, (types.jac, types.hvp, types.args, vector, i64))


def compiled_stiffness_test(kernels):
    """The compiled entry point of :func:`stiff_at` for bound ``kernels``."""
    compiled_spectral_radius(kernels)                 # compiles hessian_norm_estimate, which stiff_at calls
    types, vector = kernels.types, numba.types.float64[::1]
    return specialize(stiff_at, (types.jac, types.hvp, types.args, vector, numba.types.int64, numba.types.float64))


@numba.njit(cache=True, fastmath=FASTMATH)
def _matvec(M, x, out):
    """``out = M x`` for a small dense ``M``, four rows at a time (one load of ``x`` per four products).

    For the Newton solves of :func:`integrate_bdf` on the paper's nets (P = 64) this takes 0.3 us where
    a call into BLAS's ``dgemv`` takes 0.43 us.
    """
    rows, columns = M.shape
    i = 0
    while i + 4 <= rows:
        r0, r1, r2, r3 = M[i], M[i + 1], M[i + 2], M[i + 3]
        s0 = s1 = s2 = s3 = 0.0
        for j in range(columns):
            xj = x[j]
            s0 += r0[j] * xj
            s1 += r1[j] * xj
            s2 += r2[j] * xj
            s3 += r3[j] * xj
        out[i], out[i + 1], out[i + 2], out[i + 3] = s0, s1, s2, s3
        i += 4
    while i < rows:
        row = M[i]
        s = 0.0
        for j in range(columns):
            s += row[j] * x[j]
        out[i] = s
        i += 1


@numba.njit(cache=True)
def _weighted_norm(x, scale):
    total = 0.0
    for p in range(x.shape[0]):
        total += (x[p] / scale[p]) ** 2
    return np.sqrt(total / x.shape[0])


@numba.njit(cache=True)
def _interpolate(D, order, theta, out):
    """The backward-difference interpolant at t_n + theta h: sum_j D[j] prod_{m<j} (theta + m) / (m + 1)."""
    out[:] = D[0]
    coefficient = 1.0
    for j in range(1, order + 1):
        coefficient *= (theta + j - 1) / j
        for p in range(out.shape[0]):
            out[p] += coefficient * D[j, p]


@numba.njit(cache=True)
def integrate_bdf(method, rhs, jac, args, w0, t0, tf, t_eval, rtol, atol, max_steps):
    """The driver of the BDF method (see :func:`integrator`; ``method`` is only there for the common signature)."""
    size = w0.shape[0]
    dense = t_eval.shape[0] > 0
    ts, ws, n_out, next_eval = _start_output(t_eval, t0, w0)
    # gamma_k = sum_{j<=k} 1/j ; the local error is d / (k + 1)
    gamma = np.zeros(BDF_MAX_ORDER + 2)
    for k in range(1, BDF_MAX_ORDER + 2):
        gamma[k] = gamma[k - 1] + 1.0 / k
    f = np.empty(size)
    rhs(t0, w0, f, args)
    nfev, njev, accepted, rejected = 1, 0, 0, 0
    if not (_all_finite(f) and _all_finite(w0)):
        return ts[:n_out], ws[:n_out], DIVERGED, nfev, njev, accepted, rejected, t0
    h = _initial_step(rhs, args, t0, w0, f, 1, rtol, atol, tf - t0)
    nfev += 1
    D = np.zeros((BDF_MAX_ORDER + 3, size))
    D[0] = w0
    D[1] = h * f
    order = 1
    equal_steps = 0
    t = t0
    J = np.empty((size, size))
    jac(t, w0, J, args)
    njev += 1
    eigenvalues, Q, Qt = _symmetric_eigen(J)
    jacobian_current = True
    newton_tol = max(10 * 2.220446049250313e-16 / rtol, min(0.03, rtol ** 0.5))
    predicted = np.empty(size)
    psi = np.empty(size)
    d = np.empty(size)
    w_new = np.empty(size)
    scale = np.empty(size)
    residual = np.empty(size)
    step = np.empty(size)
    coefficients = np.empty(size)
    out_w = np.empty(size)
    status = SUCCESS
    while t < tf:
        if accepted + rejected >= max_steps:
            status = TOO_MANY_STEPS
            break
        if _below_resolution(h, t):
            status = STEP_UNDERFLOW
            break
        last = t + h >= tf                            # this step ends at tf exactly (t + (tf - t) may round below)
        if t + h > tf:
            _rescale_differences(D, order, (tf - t) / h)
            h = tf - t
            equal_steps = 0
        t_new = tf if last else t + h
        for p in range(size):
            total, weighted = D[0, p], 0.0
            for j in range(1, order + 1):
                total += D[j, p]
                weighted += gamma[j] * D[j, p]
            predicted[p] = total
            psi[p] = weighted / gamma[order]
            scale[p] = atol + rtol * abs(total)
        rounding_floor = NEWTON_ROUNDING * _weighted_norm(predicted, scale)
        c = h / gamma[order]
        # simplified Newton on  d - c f(predicted + d) + psi = 0  with  (I + c H)^-1 = Q (1 + c Lambda)^-1 Q^T
        singular = False
        for i in range(size):
            if abs(1.0 + c * eigenvalues[i]) < 1e-10:
                singular = True
        converged = False
        if not singular:
            d[:] = 0.0
            previous_norm = 0.0
            rate = 0.0
            for iteration in range(BDF_NEWTON_ITERATIONS):
                for p in range(size):
                    w_new[p] = predicted[p] + d[p]
                rhs(t_new, w_new, f, args)
                nfev += 1
                if not _all_finite(f):
                    break
                for p in range(size):
                    residual[p] = c * f[p] - psi[p] - d[p]
                _matvec(Qt, residual, coefficients)
                for i in range(size):
                    coefficients[i] /= 1.0 + c * eigenvalues[i]
                _matvec(Q, coefficients, step)
                step_norm = _weighted_norm(step, scale)
                if step_norm <= rounding_floor:
                    # a correction at the rounding level of w itself: no iteration can do better (LSODE's test)
                    for p in range(size):
                        d[p] += step[p]
                    converged = True
                    break
                if iteration > 0:
                    rate = step_norm / previous_norm
                    if rate >= 1.0 or rate ** (BDF_NEWTON_ITERATIONS - iteration) / (1.0 - rate) * step_norm > newton_tol:
                        break
                for p in range(size):
                    d[p] += step[p]
                if step_norm == 0.0 or (iteration > 0 and rate / (1.0 - rate) * step_norm < newton_tol):
                    converged = True
                    break
                previous_norm = step_norm
        if not converged:
            if not jacobian_current:
                jac(t, D[0], J, args)
                njev += 1
                eigenvalues, Q, Qt = _symmetric_eigen(J)
                jacobian_current = True
                continue
            factor = 0.5
            _rescale_differences(D, order, factor)
            h *= factor
            equal_steps = 0
            rejected += 1
            continue
        for p in range(size):
            w_new[p] = predicted[p] + d[p]
            scale[p] = atol + rtol * abs(w_new[p])
        error_norm = _weighted_norm(d, scale) / (order + 1)
        if error_norm > 1.0:
            factor = max(MIN_SHRINK, SAFETY * error_norm ** (-1.0 / (order + 1)))
            _rescale_differences(D, order, factor)
            h *= factor
            equal_steps = 0
            rejected += 1
            continue
        # accepted: update the differences to t_new
        accepted += 1
        equal_steps += 1
        t = t_new
        jacobian_current = False
        for p in range(size):
            D[order + 2, p] = d[p] - D[order + 1, p]
            D[order + 1, p] = d[p]
            for j in range(order, -1, -1):
                D[j, p] += D[j + 1, p]
        if dense:
            while next_eval < t_eval.shape[0] and t_eval[next_eval] <= t:
                _interpolate(D, order, (t_eval[next_eval] - t) / h, out_w)
                ts[n_out] = t_eval[next_eval]
                ws[n_out] = out_w
                n_out += 1
                next_eval += 1
        else:
            ts, ws, n_out = _append(ts, ws, n_out, t, D[0])
        if equal_steps < order + 1:
            continue
        # choose the order (k - 1, k, k + 1) that allows the largest next step
        error_low = _weighted_norm(D[order], scale) / order if order > 1 else np.inf
        error_high = _weighted_norm(D[order + 2], scale) / (order + 2) if order < BDF_MAX_ORDER else np.inf
        best_factor = error_norm ** (-1.0 / (order + 1)) if error_norm > 0 else np.inf
        new_order = order
        if error_low < np.inf:
            low_factor = error_low ** (-1.0 / order) if error_low > 0 else np.inf
            if low_factor > best_factor:
                best_factor, new_order = low_factor, order - 1
        if error_high < np.inf:
            high_factor = error_high ** (-1.0 / (order + 2)) if error_high > 0 else np.inf
            if high_factor > best_factor:
                best_factor, new_order = high_factor, order + 1
        order = new_order
        factor = min(MAX_GROWTH, SAFETY * best_factor)
        _rescale_differences(D, order, factor)
        h *= factor
        equal_steps = 0
    if status == SUCCESS and not _all_finite(D[0]):
        status = DIVERGED
    return ts[:n_out], ws[:n_out], status, nfev, njev, accepted, rejected, t


@numba.njit(cache=True)
def integrate_switching(method, rhs, jac, args, w0, t0, tf, t_eval, rtol, atol, max_steps):
    """:func:`integrate_one_step`, and with a DETECTING ``method`` BDF from where it stopped as stiff.

    Returns :func:`integrate_one_step`'s tuple plus the time of the hand-over (NaN when there was none); the
    output rows of the two integrators are joined, each time once.
    """
    ts, ws, status, nfev, njev, accepted, rejected, reached = integrate_one_step(method, rhs, jac, args, w0, t0, tf,
                                                                                 t_eval, rtol, atol, max_steps)
    if status != STIFF:
        return ts, ws, status, nfev, njev, accepted, rejected, reached, np.nan
    n = ts.shape[0] - 1                               # the last row is the state the explicit steps stopped at
    t_switch = ts[n]
    dense = t_eval.shape[0] > 0
    later = t_eval[np.searchsorted(t_eval, t_switch, side="right"):].copy() if dense else t_eval
    ts_b, ws_b, status, nfev_b, njev_b, accepted_b, rejected_b, reached = integrate_bdf(
        BDF, rhs, jac, args, ws[n].copy(), t_switch, tf, later, rtol, atol, max(max_steps - accepted - rejected, 1))
    skip = 0 if dense else 1                          # without requested times BDF starts with the hand-over point
    total = n + ts_b.shape[0] - skip
    ts_all = np.empty(total)
    ws_all = np.empty((total, w0.shape[0]))
    ts_all[:n] = ts[:n]
    ws_all[:n] = ws[:n]
    ts_all[n:] = ts_b[skip:]
    ws_all[n:] = ws_b[skip:]
    return (ts_all, ws_all, status, nfev + nfev_b, njev + njev_b, accepted + accepted_b, rejected + rejected_b,
            reached, t_switch)


@numba.njit(cache=True)
def integrate_recorded(method, rhs, jac, hvp, value, args, w0, t0, tf, t_eval, rtol, atol, max_steps, stiff_radius,
                       iterations, record, slack):
    r"""One run from start to finish in a single compiled call: the choice of method, the integration, the loss.

    When ``stiff_radius > 0`` ("auto"), BDF runs instead of ``method`` where the flow is stiff at ``w0``
    (:func:`stiff_at` with ``iterations``).  With ``record``, ``value`` gives the loss at every output row up to the
    first where it is not finite, and :func:`largest_excess_rise` its largest rise beyond the tolerances.

    Returns :func:`integrate_switching`'s tuple, then ``bdf_from_start``, ``loss`` (empty without ``record``),
    ``kept`` (the rows before the first non-finite loss; all rows without ``record``) and the rise's
    ``(k, rise)``.
    """
    bdf_from_start = stiff_radius > 0.0 and stiff_at(jac, hvp, args, w0, iterations, stiff_radius)
    if bdf_from_start or method == BDF:
        ts, ws, status, nfev, njev, accepted, rejected, reached = integrate_bdf(BDF, rhs, jac, args, w0, t0, tf,
                                                                                t_eval, rtol, atol, max_steps)
        switched = np.nan
    else:
        ts, ws, status, nfev, njev, accepted, rejected, reached, switched = integrate_switching(
            method, rhs, jac, args, w0, t0, tf, t_eval, rtol, atol, max_steps)
    n = ts.shape[0]
    loss = np.empty(n if record else 0)
    kept = n
    k, rise = -1, 0.0
    if record:
        for i in range(n):
            loss[i] = value(ws[i], args)
            if not np.isfinite(loss[i]):
                kept = i
                break
        k, rise = largest_excess_rise(loss[:kept].reshape((kept, 1)), rtol, atol, slack)
    return (ts, ws, status, nfev, njev, accepted, rejected, reached, switched, bdf_from_start, loss, kept, k, rise)


@numba.njit(cache=True)
def largest_excess_rise(loss, rtol, atol, slack):
    """``(k, rise)`` of the largest rise ``loss[k + 1, run] - loss[k, run]`` (over the runs, the columns of
    ``loss``) beyond ``slack (rtol |loss[k, run]| + atol) + 1e-14``, or ``(-1, 0)`` when there is none: where
    the loss, a Lyapunov function of the flow, rose more than the tolerances explain."""
    best_k, best_excess, best_rise = -1, 0.0, 0.0
    for k in range(loss.shape[0] - 1):
        for run in range(loss.shape[1]):
            rise = loss[k + 1, run] - loss[k, run]
            excess = rise - (slack * (rtol * abs(loss[k, run]) + atol) + 1e-14)
            if excess > best_excess:
                best_k, best_excess, best_rise = k, excess, rise
    return best_k, best_rise


@numba.njit(cache=True, parallel=True)
def ensemble_one_step(method, rhs, jac, args, W0, t0, tf, t_eval, rtol, atol, max_steps, out, status, nfev, n_points,
                      switched):
    """:func:`integrate_switching` from every row of ``W0`` in parallel; ``switched[i]`` the hand-over time."""
    for i in numba.prange(W0.shape[0]):
        ts, ws, st, nf, _, _, _, _, t_switch = integrate_switching(method, rhs, jac, args, W0[i].copy(), t0, tf,
                                                                   t_eval, rtol, atol, max_steps)
        for r in range(ts.shape[0]):
            out[r, i, :] = ws[r]
        status[i] = st
        nfev[i] = nf
        n_points[i] = ts.shape[0]
        switched[i] = t_switch


@numba.njit(cache=True, parallel=True)
def ensemble_bdf(method, rhs, jac, args, W0, t0, tf, t_eval, rtol, atol, max_steps, out, status, nfev, n_points,
                 switched):
    """:func:`integrate_bdf` from every row of ``W0`` in parallel (``switched`` is left as it is)."""
    for i in numba.prange(W0.shape[0]):
        ts, ws, st, nf, _, _, _, _ = integrate_bdf(method, rhs, jac, args, W0[i].copy(), t0, tf, t_eval, rtol,
                                                   atol, max_steps)
        for r in range(ts.shape[0]):
            out[r, i, :] = ws[r]
        status[i] = st
        nfev[i] = nf
        n_points[i] = ts.shape[0]
