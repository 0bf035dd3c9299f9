r"""Compiled (numba) kernels of a numeric :class:`~gradflow.Objective`, for compiled integrators and loops.

NumPy-only: the kernels take ``float64`` NumPy arrays.  One generic set of
kernels serves every network of :mod:`gradflow.models` — feature regression,
deep linear nets and MLPs with linear, ReLU, tanh or polynomial activations,
under the square, logistic and cross-entropy losses with weight decay — because
the network is described by *arrays* (widths, offsets, activation and loss
codes) passed in ``args``, never by closures: the kernels are compiled once per
machine (``cache=True``) and no objective recompiles them (DESIGN.md,
convention 6).

The calling convention, shared with the symbolic layer's compiled objectives
so that one compiled integrator serves both:

==============================  ==========================================
``value(w, args) -> float``     :math:`L(w)`
``grad(w, out, args)``          ``out[:] =`` :math:`\nabla L(w)`
``hvp(w, v, out, args)``        ``out[:] =`` :math:`\nabla^2 L(w)\,v`
``rhs(t, w, out, args)``        ``out[:] =`` :math:`-\nabla L(w)` (the flow's vector field)
``jac(t, w, out, args)``        ``out[:, :] =`` :math:`-\nabla^2 L(w)` (its Jacobian)
==============================  ==========================================

The mathematics is that of :mod:`gradflow.models` and :mod:`gradflow.losses`
(backpropagation and Pearlmutter's R-operator), written as loops over
samples and units, which for the paper's small networks beats calls into BLAS.
"""

from __future__ import annotations

import collections

import numba
import numpy as np
from numba.core.types.function_type import WrapperAddressProtocol
from numba.experimental.function_type import _get_wrapper_address

from . import _backend
from .activations import Linear, Polynomial, ReLU, Tanh
from .models import Network

__all__ = ["Kernels", "BoundKernels", "compiled_kernels", "network_args", "kernel_types", "bind", "specialize"]

#: The kernels of one objective and the ``args`` to pass them.
Kernels = collections.namedtuple("Kernels", "value grad hvp rhs jac args")

_LINEAR, _RELU, _TANH, _POLY = 0, 1, 2, 3
_SQUARE, _LOGISTIC, _CROSS_ENTROPY = 0, 1, 2
_LOSS_CODES = {"square": _SQUARE, "logistic": _LOGISTIC, "cross_entropy": _CROSS_ENTROPY}


def compiled_kernels(obj) -> Kernels | None:
    """The compiled kernels of ``obj``, or ``None`` when it has none.

    Numeric objectives on NumPy data get the generic network kernels of this
    module; a compiled symbolic objective brings its own (``obj.kernels``).
    Objectives on other array libraries (CuPy) have none.
    """
    own = getattr(obj, "kernels", None)
    if isinstance(own, Kernels):
        return own
    if not isinstance(getattr(obj, "model", None), Network) or not _backend.is_numpy(obj.xp):
        return None
    return Kernels(network_value, network_grad, network_hvp, network_rhs, network_jac, network_args(obj))


#: The numba types of a kernel family: its ``args`` and each kernel as a first-class function.
KernelTypes = collections.namedtuple("KernelTypes", "args value grad hvp rhs jac")
#: Kernels bound for compiled loops: ``types``, each kernel as a function pointer, and ``args``.
BoundKernels = collections.namedtuple("BoundKernels", "types value grad hvp rhs jac args")
_KERNEL_NAMES = ("value", "grad", "hvp", "rhs", "jac")


def kernel_types(kernels: Kernels) -> KernelTypes:
    """The numba types of ``kernels``: ``args`` and each kernel as a ``FunctionType`` of its fixed signature."""
    f64, vector, matrix = numba.types.float64, numba.types.float64[::1], numba.types.float64[:, ::1]
    args = numba.typeof(kernels.args)
    signatures = {
        "value": f64(vector, args),
        "grad": numba.types.void(vector, vector, args),
        "hvp": numba.types.void(vector, vector, vector, args),
        "rhs": numba.types.void(f64, vector, vector, args),
        "jac": numba.types.void(f64, vector, matrix, args),
    }
    return KernelTypes(args=args, **{name: numba.types.FunctionType(sig) for name, sig in signatures.items()})


class _FunctionPointer(WrapperAddressProtocol):
    """A compiled kernel as a typed function pointer (numba's wrapper address protocol).

    Numba keys a dispatcher argument on its identity, which changes from
    process to process and would defeat the disk cache of every compiled loop
    that takes kernels as arguments; converting a dispatcher to a
    ``FunctionType`` on each call costs milliseconds.  A pointer typed by its
    signature avoids both: loops are compiled once per kernel family and
    cached, and calls pass the pointer as it is.
    """

    def __init__(self, dispatcher, function_type):
        dispatcher.compile(function_type.signature.args)
        self._signature = function_type.signature
        self._address = _get_wrapper_address(dispatcher, self._signature)
        self._dispatcher = dispatcher          # keeps the compiled code alive

    def __wrapper_address__(self):
        return self._address

    def signature(self):
        return self._signature


def bind(kernels: Kernels) -> BoundKernels:
    """``kernels`` as typed function pointers, ready to pass to compiled loops (see :func:`specialize`)."""
    types = kernel_types(kernels)
    pointers = {name: _FunctionPointer(getattr(kernels, name), getattr(types, name)) for name in _KERNEL_NAMES}
    return BoundKernels(types=types, args=kernels.args, **pointers)


_SPECIALIZED = {}


def specialize(dispatcher, argument_types: tuple):
    """The compiled entry point of ``dispatcher`` (a numba loop taking bound kernels) for ``argument_types``.

    Compiles the explicit signature, or loads it from numba's disk cache, then
    disables further compilation, which keeps numba from specializing on
    anything else.  The entry point is the compiled function itself: calling it
    skips the dispatcher's typing of the arguments (tens of microseconds per
    call), so callers that run many short integrations keep it.
    """
    key = (dispatcher, argument_types)
    entry = _SPECIALIZED.get(key)
    if entry is None:
        dispatcher.disable_compile(False)
        try:
            entry = dispatcher.compile(argument_types)
        finally:
            dispatcher.disable_compile(True)
        _SPECIALIZED[key] = entry
    return entry


def network_args(obj) -> tuple:
    """The ``args`` tuple describing ``obj``'s network, data, loss and weight decay to the kernels."""
    model = obj.model
    act = model.activation
    if isinstance(act, Linear) or act.is_linear:
        code, coeffs = _LINEAR, np.zeros(1)
    elif isinstance(act, ReLU):
        code, coeffs = _RELU, np.zeros(1)
    elif isinstance(act, Tanh):
        code, coeffs = _TANH, np.zeros(1)
    elif isinstance(act, Polynomial):
        code, coeffs = _POLY, np.asarray(act.coeffs, dtype=np.float64)
    else:
        raise TypeError(f"no compiled kernel for the activation {act!r}")
    widths = np.asarray(model.widths, dtype=np.int64)
    n_layers = len(widths) - 1
    w_offsets = np.empty(n_layers, dtype=np.int64)
    b_offsets = np.full(n_layers, -1, dtype=np.int64)
    position = 0
    for l in range(n_layers):
        w_offsets[l] = position
        position += widths[l] * widths[l + 1]
        if model.bias:
            b_offsets[l] = position
            position += widths[l + 1]
    inputs = np.ascontiguousarray(_backend.to_numpy(obj._inputs), dtype=np.float64)
    targets = np.ascontiguousarray(_backend.to_numpy(obj._targets), dtype=np.float64)
    unit_offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64) * inputs.shape[0]
    return (inputs, targets, widths, w_offsets, b_offsets, unit_offsets, np.int64(code), coeffs,
            np.int64(_LOSS_CODES[obj.loss.name]), np.float64(obj.weight_decay))


# ---------------------------------------------------------------- activations
@numba.njit(cache=True, inline="always")
def _horner(coeffs, z, order):
    """The ``order``-th derivative of the polynomial with ascending ``coeffs`` at ``z``."""
    result = 0.0
    for j in range(coeffs.shape[0] - 1, order - 1, -1):
        factor = 1.0
        for q in range(order):
            factor *= j - q
        result = result * z + factor * coeffs[j]
    return result


@numba.njit(cache=True, inline="always")
def _activation(code, coeffs, z, order):
    if code == _LINEAR:
        return z if order == 0 else (1.0 if order == 1 else 0.0)
    if code == _RELU:
        if order == 0:
            return z if z > 0.0 else 0.0
        return 1.0 if (order == 1 and z > 0.0) else 0.0
    if code == _TANH:
        t = np.tanh(z)
        if order == 0:
            return t
        if order == 1:
            return 1.0 - t * t
        return -2.0 * t * (1.0 - t * t)
    return _horner(coeffs, z, order)


# ----------------------------------------------------------------- the passes
# Flat buffers hold one (n, N_l) block per layer l at unit_offsets[l]; 2-D views of them (and of each
# layer's weights) keep the index arithmetic simple enough for LLVM to vectorize the inner loops.
@numba.njit(cache=True, inline="always")
def _block(buffer, args, l):
    X, widths, off = args[0], args[2], args[5]
    return buffer[off[l]: off[l + 1]].reshape((X.shape[0], widths[l]))


@numba.njit(cache=True, inline="always")
def _activations(Z, args, l):
    """The activations of layer ``l``: the inputs themselves for ``l = 0``, else their block of ``Z``."""
    return args[0] if l == 0 else _block(Z, args, l)


@numba.njit(cache=True, inline="always")
def _weights(w, args, l):
    """``W_l`` (layers counted from 1) as a 2-D view of the flat vector ``w``."""
    widths, w_off = args[2], args[3]
    start = w_off[l - 1]
    return w[start: start + widths[l] * widths[l - 1]].reshape((widths[l], widths[l - 1]))


@numba.njit(cache=True, fastmath=True)
def _forward(w, args, A, Z):
    """Fill pre-activations ``A`` and activations ``Z``."""
    X, widths, b_off, code, coeffs = args[0], args[2], args[4], args[6], args[7]
    n = X.shape[0]
    n_layers = widths.shape[0] - 1
    for l in range(1, n_layers + 1):
        W, Zp, Al, Zl = _weights(w, args, l), _activations(Z, args, l - 1), _block(A, args, l), _block(Z, args, l)
        bo = b_off[l - 1]
        for i in range(n):
            zi = Zp[i]
            for j in range(widths[l]):
                wj = W[j]
                s = w[bo + j] if bo >= 0 else 0.0
                for q in range(widths[l - 1]):
                    s += wj[q] * zi[q]
                Al[i, j] = s
                Zl[i, j] = s if l == n_layers else _activation(code, coeffs, s, 0)


@numba.njit(cache=True)
def _loss_and_output_gradient(args, A, G):
    """The data loss; fills ``G`` at the output layer with dL/dF."""
    X, T, widths, loss = args[0], args[1], args[2], args[8]
    n, last = X.shape[0], widths.shape[0] - 1
    k = widths[last]
    F, GF = _block(A, args, last), _block(G, args, last)
    value = 0.0
    for i in range(n):
        if loss == _SQUARE:
            for c in range(k):
                r = F[i, c] - T[i, c]
                value += 0.5 * r * r
                GF[i, c] = r / n
        elif loss == _LOGISTIC:
            m = T[i, 0] * F[i, 0]
            e = np.exp(-abs(m))
            value += np.log1p(e) + max(-m, 0.0)
            sigma_minus = e / (1.0 + e) if m >= 0.0 else 1.0 / (1.0 + e)
            GF[i, 0] = -T[i, 0] * sigma_minus / n
        else:
            lse = _logsumexp(F[i])
            for c in range(k):
                value += T[i, c] * (lse - F[i, c])
                GF[i, c] = (np.exp(F[i, c] - lse) - T[i, c]) / n
    return value / n


@numba.njit(cache=True, inline="always")
def _logsumexp(row):
    shift = row[0]
    for c in range(1, row.shape[0]):
        shift = max(shift, row[c])
    total = 0.0
    for c in range(row.shape[0]):
        total += np.exp(row[c] - shift)
    return shift + np.log(total)


@numba.njit(cache=True)
def _output_curvature(args, A, RA, RG):
    """Fill ``RG`` at the output layer with (d²L/dF²)[R F]."""
    X, T, widths, loss = args[0], args[1], args[2], args[8]
    n, last = X.shape[0], widths.shape[0] - 1
    k = widths[last]
    F, RF, RGF = _block(A, args, last), _block(RA, args, last), _block(RG, args, last)
    for i in range(n):
        if loss == _SQUARE:
            for c in range(k):
                RGF[i, c] = RF[i, c] / n
        elif loss == _LOGISTIC:
            e = np.exp(-abs(T[i, 0] * F[i, 0]))
            RGF[i, 0] = e / ((1.0 + e) * (1.0 + e)) * RF[i, 0] / n
        else:
            lse = _logsumexp(F[i])
            pr = 0.0
            for c in range(k):
                pr += np.exp(F[i, c] - lse) * RF[i, c]
            for c in range(k):
                p = np.exp(F[i, c] - lse)
                RGF[i, c] = (p * RF[i, c] - p * pr) / n


@numba.njit(cache=True, fastmath=True)
def _backward(w, args, A, Z, G, out):
    """Backpropagate ``G`` (output layer filled) into the gradient ``out``; fills G at every layer."""
    X, widths, b_off, code, coeffs = args[0], args[2], args[4], args[6], args[7]
    n = X.shape[0]
    for l in range(widths.shape[0] - 1, 0, -1):
        n_in, n_out = widths[l - 1], widths[l]
        W, dW, Gl, Zp = _weights(w, args, l), _weights(out, args, l), _block(G, args, l), _activations(Z, args, l - 1)
        bo = b_off[l - 1]
        dW[:, :] = 0.0
        if bo >= 0:
            out[bo: bo + n_out] = 0.0
        for i in range(n):
            zi = Zp[i]
            for j in range(n_out):
                g = Gl[i, j]
                row = dW[j]
                for q in range(n_in):
                    row[q] += g * zi[q]
                if bo >= 0:
                    out[bo + j] += g
        if l > 1:
            Gp, Ap = _block(G, args, l - 1), _block(A, args, l - 1)
            for i in range(n):
                gp = Gp[i]
                gp[:] = 0.0
                for j in range(n_out):
                    g = Gl[i, j]
                    wj = W[j]
                    for q in range(n_in):
                        gp[q] += g * wj[q]
                for q in range(n_in):
                    gp[q] *= _activation(code, coeffs, Ap[i, q], 1)


@numba.njit(cache=True, fastmath=True)
def _hvp_given_forward(w, v, args, A, Z, G, RA, RZ, RG, out):
    """Hessian-vector product (R-operator) once the forward pass and ``G`` at every layer are known."""
    X, widths, b_off, code, coeffs, gamma = args[0], args[2], args[4], args[6], args[7], args[9]
    n = X.shape[0]
    n_layers = widths.shape[0] - 1
    # forward-mode pass: R{A_l}, R{Z_l}
    for l in range(1, n_layers + 1):
        n_in, n_out = widths[l - 1], widths[l]
        W, V = _weights(w, args, l), _weights(v, args, l)
        Zp, RZp, RAl, RZl, Al = _activations(Z, args, l - 1), _block(RZ, args, l - 1), _block(RA, args, l), _block(RZ, args, l), _block(A, args, l)
        bo = b_off[l - 1]
        for i in range(n):
            zi, rzi = Zp[i], RZp[i]
            for j in range(n_out):
                wj, vj = W[j], V[j]
                s = v[bo + j] if bo >= 0 else 0.0
                if l > 1:
                    for q in range(n_in):
                        s += vj[q] * zi[q] + wj[q] * rzi[q]
                else:
                    for q in range(n_in):
                        s += vj[q] * zi[q]
                RAl[i, j] = s
                if l < n_layers:
                    RZl[i, j] = _activation(code, coeffs, Al[i, j], 1) * s
    _output_curvature(args, A, RA, RG)
    # reverse pass of the R-operator
    for l in range(n_layers, 0, -1):
        n_in, n_out = widths[l - 1], widths[l]
        W, V, dW = _weights(w, args, l), _weights(v, args, l), _weights(out, args, l)
        Gl, RGl, Zp, RZp = _block(G, args, l), _block(RG, args, l), _activations(Z, args, l - 1), _block(RZ, args, l - 1)
        bo = b_off[l - 1]
        for j in range(n_out):
            for q in range(n_in):
                dW[j, q] = gamma * V[j, q]
        if bo >= 0:
            for j in range(n_out):
                out[bo + j] = gamma * v[bo + j]
        for i in range(n):
            zi, rzi = Zp[i], RZp[i]
            for j in range(n_out):
                rg, g = RGl[i, j], Gl[i, j]
                row = dW[j]
                if l > 1:
                    for q in range(n_in):
                        row[q] += rg * zi[q] + g * rzi[q]
                else:
                    for q in range(n_in):
                        row[q] += rg * zi[q]
                if bo >= 0:
                    out[bo + j] += rg
        if l > 1:
            RGp, Ap, RAp = _block(RG, args, l - 1), _block(A, args, l - 1), _block(RA, args, l - 1)
            back = np.empty(n_in)
            for i in range(n):
                rgp = RGp[i]
                back[:] = 0.0
                rgp[:] = 0.0
                for j in range(n_out):
                    g, rg = Gl[i, j], RGl[i, j]
                    wj, vj = W[j], V[j]
                    for q in range(n_in):
                        back[q] += g * wj[q]
                        rgp[q] += rg * wj[q] + g * vj[q]
                for q in range(n_in):
                    a = Ap[i, q]
                    rgp[q] = rgp[q] * _activation(code, coeffs, a, 1) + back[q] * _activation(code, coeffs, a, 2) * RAp[i, q]


@numba.njit(cache=True)
def _buffer(args):
    return np.empty(args[5][args[5].shape[0] - 1])


@numba.njit(cache=True)
def _decay(w, gamma):
    s = 0.0
    for p in range(w.shape[0]):
        s += w[p] * w[p]
    return 0.5 * gamma * s


# ------------------------------------------------------------ public kernels
@numba.njit(cache=True, inline="always")
def _buffers3(args):
    """Three activation-sized work buffers from one allocation."""
    size = args[5][args[5].shape[0] - 1]
    work = np.empty(3 * size)
    return work[:size], work[size: 2 * size], work[2 * size:]


@numba.njit(cache=True)
def network_value(w, args):
    """:math:`L(w)`."""
    A, Z, G = _buffers3(args)
    _forward(w, args, A, Z)
    return _loss_and_output_gradient(args, A, G) + _decay(w, args[9])


@numba.njit(cache=True)
def network_grad(w, out, args):
    """``out[:] =`` :math:`\\nabla L(w)`."""
    A, Z, G = _buffers3(args)
    _forward(w, args, A, Z)
    _loss_and_output_gradient(args, A, G)
    _backward(w, args, A, Z, G, out)
    gamma = args[9]
    if gamma != 0.0:
        for p in range(w.shape[0]):
            out[p] += gamma * w[p]


@numba.njit(cache=True)
def network_hvp(w, v, out, args):
    """``out[:] =`` :math:`\\nabla^2 L(w)\\,v`."""
    A, Z, G, RA, RZ, RG = _buffer(args), _buffer(args), _buffer(args), _buffer(args), _buffer(args), _buffer(args)
    scratch = np.empty_like(w)
    _forward(w, args, A, Z)
    _loss_and_output_gradient(args, A, G)
    _backward(w, args, A, Z, G, scratch)
    _hvp_given_forward(w, v, args, A, Z, G, RA, RZ, RG, out)


@numba.njit(cache=True)
def network_rhs(t, w, out, args):
    """The flow's vector field, ``out[:] =`` :math:`-\\nabla L(w)`."""
    network_grad(w, out, args)
    for p in range(w.shape[0]):
        out[p] = -out[p]


@numba.njit(cache=True)
def network_jac(t, w, out, args):
    """The flow's Jacobian, ``out[:, :] =`` :math:`-\\nabla^2 L(w)`, one R-operator pass per column."""
    A, Z, G, RA, RZ, RG = _buffer(args), _buffer(args), _buffer(args), _buffer(args), _buffer(args), _buffer(args)
    size = w.shape[0]
    scratch = np.empty(size)
    column = np.empty(size)
    unit = np.zeros(size)
    _forward(w, args, A, Z)
    _loss_and_output_gradient(args, A, G)
    _backward(w, args, A, Z, G, scratch)
    for p in range(size):
        unit[p] = 1.0
        _hvp_given_forward(w, unit, args, A, Z, G, RA, RZ, RG, column)
        unit[p] = 0.0
        for q in range(size):
            out[q, p] = -column[q]
