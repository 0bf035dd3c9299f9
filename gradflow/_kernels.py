r"""Compiled (numba) kernels of a numeric :class:`~gradflow.Objective`, for compiled integrators and loops.

NumPy-only: the kernels take C-contiguous ``float64`` NumPy arrays (the compiled
loops pass nothing else; a strided ``w`` does not type).  One generic set of
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
samples and units, which for the paper's small networks beats calls into BLAS;
a layer whose matrix product reaches ``BLAS_MIN_WORK`` multiply-adds calls BLAS
instead, so that large networks run at BLAS speed too.
"""

from __future__ import annotations

import collections

import numba
import numpy as np
from numba.core import cgutils
from numba.experimental.function_type import FunctionModel, _get_jit_address, _get_wrapper_address
from numba.extending import NativeValue, register_model, unbox

from . import _backend
from .activations import Linear, Polynomial, ReLU, Tanh
from .losses import CrossEntropy, Logistic, Square
from .models import MLP, DeepLinear, FeatureRegression
from .objective import Objective

__all__ = ["Kernels", "BoundKernels", "compiled_kernels", "calls_blas", "network_args", "kernel_types", "bind",
           "specialize"]

#: The kernels of one objective and the ``args`` to pass them.  Kernels must not raise: compiled loops call them
#: in parallel (``prange``), where an exception is lost, so they are compiled with ``error_model="numpy"`` (a
#: division by zero gives inf or NaN, which the loops report).
Kernels = collections.namedtuple("Kernels", "value grad hvp rhs jac args")

_LINEAR, _RELU, _TANH, _POLY = 0, 1, 2, 3
_SQUARE, _LOGISTIC, _CROSS_ENTROPY = 0, 1, 2
#: numba fast-math flags of gradflow's compiled code (these kernels, the generated symbolic ones, the
#: integrators' products): reassociation and fused multiply-add only, so NaN and inf still propagate, and
#: LLVM may vectorize sums.
FASTMATH = {"reassoc", "contract"}
#: The classes the network kernels implement, each with its code in ``layout``.
_NETWORK_CLASSES = (DeepLinear, MLP, FeatureRegression)
_ACTIVATION_CODES = {Linear: _LINEAR, ReLU: _RELU, Tanh: _TANH, Polynomial: _POLY}
_LOSS_CLASS_CODES = {Square: _SQUARE, Logistic: _LOGISTIC, CrossEntropy: _CROSS_ENTROPY}


def compiled_kernels(obj) -> Kernels | None:
    """The compiled kernels of ``obj``, or ``None`` when it has none.

    Numeric objectives on NumPy data get the generic network kernels of this
    module; a compiled symbolic objective brings its own (``obj.kernels``).
    Objectives on other array libraries (CuPy) have none.
    """
    own = getattr(obj, "kernels", None)
    if isinstance(own, Kernels):
        return own
    if not _has_network_kernels(obj) or not _backend.is_numpy(obj.xp):
        return None
    return Kernels(network_value, network_grad, network_hvp, network_rhs, network_jac, network_args(obj))


def _has_network_kernels(obj) -> bool:
    """Whether the network kernels compute ``obj``'s loss: a gradflow ``Objective`` of one of its networks, with
    one of its activations and losses, each of exactly the built-in class.  A subclass may change the maths (a
    user's regularizer, activation or loss), so it gets no compiled kernels and runs on the NumPy path."""
    model = getattr(obj, "model", None)
    return (type(obj) is Objective and type(model) in _NETWORK_CLASSES
            and type(model.activation) in _ACTIVATION_CODES and type(obj.loss) in _LOSS_CLASS_CODES)


def calls_blas(kernels: Kernels, n_samples: int | None = None) -> bool:
    """Whether ``kernels`` (the network kernels) call BLAS: some layer's product reaches :data:`BLAS_MIN_WORK`
    on their ``n`` samples, or on ``n_samples`` (a mini-batch).  Compiled loops that run rows on all cores then
    hold BLAS to one thread per row."""
    if kernels.grad is not network_grad:
        return False
    X, layout = kernels.args[0], kernels.args[4]
    n = X.shape[0] if n_samples is None else n_samples
    widths = [int(layout[_HEAD + l]) for l in range(int(layout[0]) + 1)]
    return any(_use_blas(widths[l], widths[l - 1], n) for l in range(1, len(widths)))


#: The numba types of a kernel family: its ``args`` and each kernel as a first-class function.
KernelTypes = collections.namedtuple("KernelTypes", "args value grad hvp rhs jac")
#: Kernels bound for compiled loops: ``types``, each kernel as a function pointer, and ``args``.
BoundKernels = collections.namedtuple("BoundKernels", "types value grad hvp rhs jac args")
_KERNEL_NAMES = ("value", "grad", "hvp", "rhs", "jac")


def kernel_types(kernels: Kernels) -> KernelTypes:
    """The numba types of ``kernels``: ``args`` and each kernel as a :class:`KernelFunction` of its fixed signature."""
    f64, vector, matrix = numba.types.float64, numba.types.float64[::1], numba.types.float64[:, ::1]
    args = numba.typeof(kernels.args)
    signatures = {
        "value": f64(vector, args),
        "grad": numba.types.void(vector, vector, args),
        "hvp": numba.types.void(vector, vector, vector, args),
        "rhs": numba.types.void(f64, vector, vector, args),
        "jac": numba.types.void(f64, vector, matrix, args),
    }
    return KernelTypes(args=args, **{name: KernelFunction(sig) for name, sig in signatures.items()})


class KernelFunction(numba.types.FunctionType):
    """The numba type of a :class:`_FunctionPointer`: a first-class function of a fixed signature.

    It is numba's ``FunctionType`` with a faster unboxing.  Numba unboxes a
    ``FunctionType`` argument by importing a module, unpickling the signature
    and calling back into Python for two addresses, about 2.5 us per pointer
    and call; this type reads the two addresses the pointer holds as its
    tuple items (no attribute lookup: 0.05 us).  Calls go to the compiled
    function itself (numba's calling convention) rather than through its C
    wrapper.
    """


register_model(KernelFunction)(FunctionModel)


@unbox(KernelFunction)
def _unbox_kernel_function(typ, obj, c):
    function = cgutils.create_struct_proxy(typ)(c.context, c.builder)
    size = c.pyapi.tuple_size(obj)                            # -1 (and an error set) for what is not a tuple
    is_pair = c.builder.icmp_signed("==", size, size.type(2))
    with c.builder.if_else(is_pair, likely=True) as (pair, other):
        with pair:
            for member, index in (("c_addr", 0), ("jit_addr", 1)):
                address = c.pyapi.tuple_getitem(obj, index)   # borrowed: the pointer keeps it
                setattr(function, member, c.pyapi.long_as_voidptr(address))
        with other:
            c.pyapi.err_clear()
            c.pyapi.err_set_string("PyExc_TypeError", "a compiled kernel must be passed as the typed function "
                                                      "pointer of gradflow._kernels.bind (a pair of addresses)")
    function.py_addr = c.builder.ptrtoint(obj, c.context.get_value_type(numba.types.voidptr))
    return NativeValue(function._getvalue(), is_error=cgutils.is_not_null(c.builder, c.pyapi.err_occurred()))


class _FunctionPointer(tuple):
    """A compiled kernel as a typed function pointer, of numba type :class:`KernelFunction`: the tuple
    ``(c_address, jit_address)`` of its C wrapper and of the compiled function.

    Numba keys a dispatcher argument on its identity, which changes from
    process to process and would defeat the disk cache of every compiled loop
    that takes kernels as arguments; converting a dispatcher to a
    ``FunctionType`` on each call costs milliseconds.  A pointer typed by its
    signature avoids both: loops are compiled once per kernel family and
    cached, and calls pass the two addresses as they are.  Only the compiled
    entry points of :func:`specialize`, which know the argument types, take
    it (numba's ``typeof`` would see a tuple of two integers).
    """

    def __new__(cls, dispatcher, function_type):
        signature = function_type.signature
        dispatcher.compile(signature.args)
        self = super().__new__(cls, (_get_wrapper_address(dispatcher, signature),
                                     _get_jit_address(dispatcher, signature)))
        self._signature = signature
        self._dispatcher = dispatcher          # keeps the compiled code alive
        return self

    @property
    def c_address(self) -> int:
        return self[0]

    @property
    def jit_address(self) -> int:
        return self[1]

    def __wrapper_address__(self):
        return self[0]

    def __reduce__(self):                      # copies and pickles rebuild the pointer from its dispatcher
        return _FunctionPointer, (self._dispatcher, KernelFunction(self._signature))

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
    """The ``args`` tuple describing ``obj``'s network, data, loss and weight decay to the kernels.

    ``args = (X, XT, TT, params, layout)``: the training inputs ``X`` (n, d)
    and their transpose ``XT`` (d, n); the prepared targets transposed, ``TT``
    (k, n); ``params = [gamma, c_0, c_1, ...]``, the weight decay then the
    coefficients of a polynomial activation; and ``layout``, every integer the passes
    need in one array (see :func:`_width` and the accessors beside it).  Few
    arrays, because each array a compiled kernel receives costs a
    reference-count increment and decrement per call, which for the paper's
    small networks is a measurable part of a gradient.
    """
    model = obj.model
    act = model.activation
    code = _LINEAR if act.is_linear else _ACTIVATION_CODES[type(act)]
    coeffs = tuple(act.coeffs) if code == _POLY else ()
    widths = [int(width) for width in model.widths]
    n_layers = len(widths) - 1
    w_offsets, b_offsets, rows = [], [], [0]
    position = 0
    for l in range(1, n_layers + 1):
        w_offsets.append(position)
        position += widths[l - 1] * widths[l]
        b_offsets.append(position if model.bias else -1)
        position += widths[l] if model.bias else 0
    for l in range(1, n_layers + 1):
        rows.append(rows[-1] + (widths[l - 1] if l > 1 else 0))
    rows.append(rows[-1] + widths[n_layers])  # the units of all layers: the height of the work buffers
    layout = np.array([n_layers, code, _LOSS_CLASS_CODES[type(obj.loss)]] + widths + w_offsets + b_offsets + rows,
                      dtype=np.int64)
    inputs = np.ascontiguousarray(_backend.to_numpy(obj._inputs), dtype=np.float64)
    targets = np.ascontiguousarray(_backend.to_numpy(obj._targets).T, dtype=np.float64)
    params = np.array((obj.weight_decay,) + coeffs, dtype=np.float64)
    return (inputs, np.ascontiguousarray(inputs.T), targets, params, layout)


# -------------------------------------------------------------------- layout
# layout = [L, activation code, loss code, N_0 .. N_L, weight offsets of layers 1..L, bias offsets of
# layers 1..L (-1: no bias), buffer rows of layers 0..L (layer 0, the inputs, is not buffered: 0),
# total units].  The work buffers are (total units, n) arrays, one row per unit and one column per
# sample, so that the inner loops run over the samples; layer l's units start at row _row(layout, l).
_HEAD = 3
#: The input layer's loops run over the features of each sample (rows of ``X``) instead of over the samples
#: when there are at least this many times more features than samples: the inner loop is then the longer
#: one (Figure 4's 31 features of 9 samples; measured on it, 208 ns against 279 ns per gradient).  Read when
#: the kernels compile: numba freezes it into their machine code.
INPUT_ROWS_RATIO = 2
#: A layer's matrix product (``N_l N_{l-1} n`` multiply-adds) goes to BLAS (``np.dot``: scipy's BLAS, with its
#: threads) from this size on; smaller ones run as the loops below, which beat the call into BLAS on the
#: paper's small networks (measured per gradient, one thread: Figure 8's net, products of 1,860 and 60, 1.7 us
#: with loops against 2.3 us with BLAS; an MLP [8, 16, 16, 1] on 32 samples, products of 4,096 and 8,192,
#: 6.8 against 4.1 us).  Frozen into the kernels when they compile, like INPUT_ROWS_RATIO.
BLAS_MIN_WORK = 2 ** 12


@numba.njit(cache=True, error_model="numpy", inline="always")
def _width(layout, l):
    """:math:`N_l`, the width of layer ``l`` (0 the inputs)."""
    return layout[_HEAD + l]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _weight_offset(layout, l):
    """Where :math:`W_l` (row-major, ``N_l x N_{l-1}``) starts in the flat weights, ``l >= 1``."""
    return layout[_HEAD + layout[0] + l]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bias_offset(layout, l):
    """Where :math:`b_l` starts in the flat weights, or -1 without biases, ``l >= 1``."""
    return layout[_HEAD + 2 * layout[0] + l]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _row(layout, l):
    """The first buffer row of layer ``l >= 1``; ``l = L + 1`` gives the buffers' height."""
    return layout[_HEAD + 3 * layout[0] + 1 + l]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _layer_output(A, Z, XT, layout, l):
    """Layer ``l``'s activations as ``(array, first row)``: the inputs for ``l = 0``; the pre-activations
    where the layer is linear (the output layer, every layer of a linear net), which has no Z of its own."""
    if l == 0:
        return XT, 0
    if l == layout[0] or layout[1] == _LINEAR:
        return A, _row(layout, l)
    return Z, _row(layout, l)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _use_blas(n_out, n_in, n):
    """Whether a layer's product of ``n_out x n_in`` weights with ``n`` samples goes to BLAS (see :data:`BLAS_MIN_WORK`)."""
    return n_out * n_in * n >= BLAS_MIN_WORK


@numba.njit(cache=True, error_model="numpy", inline="always")
def _by_input_rows(X):
    """Whether the input layer loops over features (see :data:`INPUT_ROWS_RATIO`)."""
    return X.shape[1] >= INPUT_ROWS_RATIO * X.shape[0]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _buffers(X, layout, count):
    """``count`` work buffers ``(total units, n)`` from one allocation (integer indexing: no reshape)."""
    return np.empty((count, _row(layout, layout[0] + 1), X.shape[0]))


# ---------------------------------------------------------------- activations
@numba.njit(cache=True, error_model="numpy", inline="always")
def _horner(coeffs, z, order):
    """The ``order``-th derivative of the polynomial with ascending ``coeffs`` at ``z``."""
    result = 0.0
    for j in range(coeffs.shape[0] - 1, order - 1, -1):
        factor = 1.0
        for q in range(order):
            factor *= j - q
        result = result * z + factor * coeffs[j]
    return result


@numba.njit(cache=True, error_model="numpy", inline="always")
def _activation(code, params, z, order):
    """The ``order``-th derivative (0, 1, 2) of the activation ``code`` at ``z``; ``params[1:]`` a polynomial's."""
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
    return _horner(params[1:], z, order)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _slope(code, params, a, z, order):
    """The ``order``-th derivative (1 or 2) of the activation at the pre-activation ``a`` whose activation ``z`` the
    forward pass stored: tanh's from ``z = tanh(a)`` (a second tanh would cost as much as the forward pass), the
    others' from ``a``."""
    if code == _TANH:
        s = 1.0 - z * z
        return s if order == 1 else -2.0 * z * s
    return _activation(code, params, a, order)


# ------------------------------------------------------------ the primitives
# Every function below is inlined into the public kernels (one reference count per array per call) and
# indexes rows through 1-D slices, whose indices numba knows to be non-negative, so that LLVM vectorizes
# the inner loops; views, reshapes and slice assignments would cost more than the arithmetic here.
@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _affine(w, X, layout, l, src, s0, dst, d0, with_bias, accumulate):
    """``dst[d0 + j, :] (+)= sum_q W_l[j, q] src[s0 + q, :] (+ b_l[j])``: layer ``l``'s affine map on every sample.

    ``w`` holds the weights (or a tangent direction ``v``); for ``l = 1``
    ``src`` is ``XT``, read through the rows of ``X`` instead when
    :func:`_by_input_rows`.
    """
    n, n_in, n_out = X.shape[0], _width(layout, l - 1), _width(layout, l)
    wo, bo = _weight_offset(layout, l), _bias_offset(layout, l)
    if _use_blas(n_out, n_in, n):
        W = w[wo: wo + n_out * n_in].reshape((n_out, n_in))
        block = dst[d0: d0 + n_out]
        if accumulate:
            block += np.dot(W, src[s0: s0 + n_in])
        else:
            np.dot(W, src[s0: s0 + n_in], block)
        if with_bias and bo >= 0:
            for j in range(n_out):
                out = block[j]
                for i in range(n):
                    out[i] += w[bo + j]
        return
    if l == 1 and _by_input_rows(X):
        for i in range(n):
            x = X[i]
            for j in range(n_out):
                row = w[wo + j * n_in: wo + (j + 1) * n_in]
                s = w[bo + j] if (with_bias and bo >= 0) else 0.0
                for q in range(n_in):
                    s += row[q] * x[q]
                dst[d0 + j, i] = dst[d0 + j, i] + s if accumulate else s
        return
    for j in range(n_out):
        out = dst[d0 + j]
        if not accumulate:
            b = w[bo + j] if (with_bias and bo >= 0) else 0.0
            for i in range(n):
                out[i] = b
        elif with_bias and bo >= 0:
            for i in range(n):
                out[i] += w[bo + j]
        for q in range(n_in):
            weight = w[wo + j * n_in + q]
            z = src[s0 + q]
            for i in range(n):
                out[i] += weight * z[i]


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _weight_gradient(X, layout, l, G, g0, src, s0, out, with_bias):
    """``out[W_l] += G^T src`` (and ``out[b_l] += sum_i G``): layer ``l``'s weight gradient from the sensitivities
    ``G[g0 + j, :]`` of its units and its inputs ``src[s0 + q, :]``."""
    n, n_in, n_out = X.shape[0], _width(layout, l - 1), _width(layout, l)
    wo, bo = _weight_offset(layout, l), _bias_offset(layout, l)
    if with_bias and bo >= 0:
        for j in range(n_out):
            g = G[g0 + j]
            s = 0.0
            for i in range(n):
                s += g[i]
            out[bo + j] += s
    if _use_blas(n_out, n_in, n):
        gradient = out[wo: wo + n_out * n_in].reshape((n_out, n_in))
        gradient += np.dot(G[g0: g0 + n_out], src[s0: s0 + n_in].T)
        return
    if l == 1 and _by_input_rows(X):
        for j in range(n_out):
            row = out[wo + j * n_in: wo + (j + 1) * n_in]
            for i in range(n):
                g = G[g0 + j, i]
                x = X[i]
                for q in range(n_in):
                    row[q] += g * x[q]
        return
    for j in range(n_out):
        g = G[g0 + j]
        for q in range(n_in):
            z = src[s0 + q]
            s = 0.0
            for i in range(n):
                s += g[i] * z[i]
            out[wo + j * n_in + q] += s


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _transpose_product(w, X, layout, l, G, g0, dst, d0, accumulate):
    """``dst[d0 + q, :] (+)= sum_j W_l[j, q] G[g0 + j, :]``: sensitivities carried back through layer ``l``'s weights."""
    n, n_in, n_out = X.shape[0], _width(layout, l - 1), _width(layout, l)
    wo = _weight_offset(layout, l)
    if _use_blas(n_out, n_in, n):
        W = w[wo: wo + n_out * n_in].reshape((n_out, n_in))
        block = dst[d0: d0 + n_in]
        if accumulate:
            block += np.dot(W.T, G[g0: g0 + n_out])
        else:
            np.dot(W.T, G[g0: g0 + n_out], block)
        return
    for q in range(n_in):
        out = dst[d0 + q]
        if not accumulate:
            for i in range(n):
                out[i] = 0.0
        for j in range(n_out):
            weight = w[wo + j * n_in + q]
            g = G[g0 + j]
            for i in range(n):
                out[i] += weight * g[i]


# ----------------------------------------------------------------- the passes
@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _forward(w, X, XT, params, layout, A, Z):
    """Fill the pre-activations ``A`` and, for nonlinear hidden layers, the activations ``Z``."""
    n, n_layers, code = X.shape[0], layout[0], layout[1]
    for l in range(1, n_layers + 1):
        src, s0 = _layer_output(A, Z, XT, layout, l - 1)
        r = _row(layout, l)
        _affine(w, X, layout, l, src, s0, A, r, True, False)
        if l < n_layers and code != _LINEAR:
            for j in range(r, r + _width(layout, l)):
                for i in range(n):
                    Z[j, i] = _activation(code, params, A[j, i], 0)


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _logsumexp(A, r, k, i):
    """:math:`\\log\\sum_c e^{F_c}` of sample ``i``'s outputs ``A[r:r+k, i]``."""
    shift = A[r, i]
    for c in range(1, k):
        shift = max(shift, A[r + c, i])
    total = 0.0
    for c in range(k):
        total += np.exp(A[r + c, i] - shift)
    return shift + np.log(total)


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _loss_and_output_gradient(X, TT, layout, A, G):
    """The data loss; fills ``G`` at the output layer with dL/dF."""
    n, last, loss = X.shape[0], layout[0], layout[2]
    k, r = _width(layout, last), _row(layout, last)
    inv_n = 1.0 / n
    value = 0.0
    if loss == _SQUARE:
        for c in range(k):
            f, g, t = A[r + c], G[r + c], TT[c]
            for i in range(n):
                residual = f[i] - t[i]
                value += 0.5 * residual * residual
                g[i] = residual * inv_n
    elif loss == _LOGISTIC:
        f, g, t = A[r], G[r], TT[0]
        for i in range(n):
            m = t[i] * f[i]
            e = np.exp(-abs(m))
            value += np.log1p(e) + max(-m, 0.0)
            sigma_minus = e / (1.0 + e) if m >= 0.0 else 1.0 / (1.0 + e)
            g[i] = -t[i] * sigma_minus * inv_n
    else:
        for i in range(n):
            lse = _logsumexp(A, r, k, i)
            for c in range(k):
                value += TT[c, i] * (lse - A[r + c, i])
                G[r + c, i] = (np.exp(A[r + c, i] - lse) - TT[c, i]) * inv_n
    return value * inv_n


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _output_curvature(X, TT, layout, A, RA, RG):
    """Fill ``RG`` at the output layer with (d²L/dF²)[R F]."""
    n, last, loss = X.shape[0], layout[0], layout[2]
    k, r = _width(layout, last), _row(layout, last)
    inv_n = 1.0 / n
    if loss == _SQUARE:
        for c in range(k):
            rf, rg = RA[r + c], RG[r + c]
            for i in range(n):
                rg[i] = rf[i] * inv_n
    elif loss == _LOGISTIC:
        for i in range(n):
            e = np.exp(-abs(TT[0, i] * A[r, i]))
            RG[r, i] = e / ((1.0 + e) * (1.0 + e)) * RA[r, i] * inv_n
    else:
        for i in range(n):
            lse = _logsumexp(A, r, k, i)
            pr = 0.0
            for c in range(k):
                pr += np.exp(A[r + c, i] - lse) * RA[r + c, i]
            for c in range(k):
                p = np.exp(A[r + c, i] - lse)
                RG[r + c, i] = (p * RA[r + c, i] - p * pr) * inv_n


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _backward(w, X, XT, params, layout, A, Z, G, out):
    """Backpropagate ``G`` (output layer filled) into the data gradient ``out``; fills G at every layer."""
    n, code = X.shape[0], layout[1]
    for p in range(out.shape[0]):
        out[p] = 0.0
    for l in range(layout[0], 0, -1):
        src, s0 = _layer_output(A, Z, XT, layout, l - 1)
        r = _row(layout, l)
        _weight_gradient(X, layout, l, G, r, src, s0, out, True)
        if l > 1:
            # G_{l-1} = (W_l^T G_l) * sigma'(A_{l-1})
            rp = _row(layout, l - 1)
            _transpose_product(w, X, layout, l, G, r, G, rp, False)
            if code != _LINEAR:
                for q in range(rp, rp + _width(layout, l - 1)):
                    for i in range(n):
                        G[q, i] *= _slope(code, params, A[q, i], Z[q, i], 1)


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _hvp_given_forward(w, v, X, XT, TT, params, layout, A, Z, G, RA, RZ, RG, B, out):
    """Hessian-vector product (R-operator) once the forward pass and ``G`` at every layer are known; ``B`` scratch."""
    n, n_layers, code, gamma = X.shape[0], layout[0], layout[1], params[0]
    # forward-mode pass: R{A_l} = V_l Z_{l-1} + W_l R{Z_{l-1}} (+ R{b_l}), R{Z_l} = sigma'(A_l) R{A_l}
    for l in range(1, n_layers + 1):
        src, s0 = _layer_output(A, Z, XT, layout, l - 1)
        rsrc, rs0 = _layer_output(RA, RZ, XT, layout, l - 1)
        r = _row(layout, l)
        _affine(v, X, layout, l, src, s0, RA, r, True, False)
        if l > 1:
            _affine(w, X, layout, l, rsrc, rs0, RA, r, False, True)
        if l < n_layers and code != _LINEAR:
            for j in range(r, r + _width(layout, l)):
                for i in range(n):
                    RZ[j, i] = _slope(code, params, A[j, i], Z[j, i], 1) * RA[j, i]
    _output_curvature(X, TT, layout, A, RA, RG)
    # reverse pass: out = gamma v + sum_l (R{G_l}^T Z_{l-1} + G_l^T R{Z_{l-1}})
    for p in range(out.shape[0]):
        out[p] = gamma * v[p]
    for l in range(n_layers, 0, -1):
        src, s0 = _layer_output(A, Z, XT, layout, l - 1)
        rsrc, rs0 = _layer_output(RA, RZ, XT, layout, l - 1)
        r = _row(layout, l)
        _weight_gradient(X, layout, l, RG, r, src, s0, out, True)
        if l > 1:
            _weight_gradient(X, layout, l, G, r, rsrc, rs0, out, False)
            # R{G_{l-1}} = (W_l^T R{G_l} + V_l^T G_l) sigma'(A_{l-1}) + (W_l^T G_l) sigma''(A_{l-1}) R{A_{l-1}}
            rp = _row(layout, l - 1)
            _transpose_product(w, X, layout, l, RG, r, RG, rp, False)
            _transpose_product(v, X, layout, l, G, r, RG, rp, True)
            if code != _LINEAR:
                _transpose_product(w, X, layout, l, G, r, B, rp, False)
                for q in range(rp, rp + _width(layout, l - 1)):
                    for i in range(n):
                        a = A[q, i]
                        z = Z[q, i]
                        RG[q, i] = (RG[q, i] * _slope(code, params, a, z, 1)
                                    + B[q, i] * _slope(code, params, a, z, 2) * RA[q, i])


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _decay(w, gamma):
    if gamma == 0.0:                                  # not 0 * |w|^2, which is NaN where |w|^2 overflows
        return 0.0
    s = 0.0
    for p in range(w.shape[0]):
        s += w[p] * w[p]
    return 0.5 * gamma * s


# ------------------------------------------------------------ public kernels
@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def network_value(w, args):
    """:math:`L(w)`."""
    X, XT, TT, params, layout = args
    work = _buffers(X, layout, 3)
    _forward(w, X, XT, params, layout, work[0], work[1])
    return _loss_and_output_gradient(X, TT, layout, work[0], work[2]) + _decay(w, params[0])


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")  # inlined into network_rhs: no second call
def network_grad(w, out, args):
    """``out[:] =`` :math:`\\nabla L(w)`."""
    X, XT, TT, params, layout = args
    work = _buffers(X, layout, 3)
    A, Z, G = work[0], work[1], work[2]
    _forward(w, X, XT, params, layout, A, Z)
    _loss_and_output_gradient(X, TT, layout, A, G)
    _backward(w, X, XT, params, layout, A, Z, G, out)
    gamma = params[0]
    if gamma != 0.0:
        for p in range(w.shape[0]):
            out[p] += gamma * w[p]


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def network_hvp(w, v, out, args):
    """``out[:] =`` :math:`\\nabla^2 L(w)\\,v`."""
    X, XT, TT, params, layout = args
    work = _buffers(X, layout, 7)
    A, Z, G = work[0], work[1], work[2]
    scratch = np.empty_like(w)
    _forward(w, X, XT, params, layout, A, Z)
    _loss_and_output_gradient(X, TT, layout, A, G)
    _backward(w, X, XT, params, layout, A, Z, G, scratch)
    _hvp_given_forward(w, v, X, XT, TT, params, layout, A, Z, G, work[3], work[4], work[5], work[6], out)


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def network_rhs(t, w, out, args):
    """The flow's vector field, ``out[:] =`` :math:`-\\nabla L(w)`."""
    network_grad(w, out, args)
    for p in range(w.shape[0]):
        out[p] = -out[p]


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def network_jac(t, w, out, args):
    """The flow's Jacobian, ``out[:, :] =`` :math:`-\\nabla^2 L(w)`, one R-operator pass per column."""
    X, XT, TT, params, layout = args
    work = _buffers(X, layout, 7)
    A, Z, G = work[0], work[1], work[2]
    size = w.shape[0]
    scratch = np.empty(size)
    column = np.empty(size)
    unit = np.zeros(size)
    _forward(w, X, XT, params, layout, A, Z)
    _loss_and_output_gradient(X, TT, layout, A, G)
    _backward(w, X, XT, params, layout, A, Z, G, scratch)
    for p in range(size):
        unit[p] = 1.0
        _hvp_given_forward(w, unit, X, XT, TT, params, layout, A, Z, G, work[3], work[4], work[5], work[6], column)
        unit[p] = 0.0
        for q in range(size):
            out[q, p] = -column[q]
