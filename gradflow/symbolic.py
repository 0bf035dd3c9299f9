r"""Exact algebra of small losses with sympy, compiled to numba vector fields.

The loss of a linear or polynomial-activation network is a *polynomial* in the
weights (the paper's Section 4, point 1), so its critical points are the
solutions of a polynomial system (Bezout's theorem bounds the isolated ones),
its Hessian at a zero-loss minimum is exactly degenerate (Section 6.2,
Lemma 1 and Theorem 3), and the gradient flow :math:`\dot w = -\nabla L(w)`
near such a minimum can be studied through exact Taylor expansions.  This
module builds those losses as sympy expressions,

.. math::

    L(w) = \frac1n \sum_{i=1}^n \ell(w; x_i, y_i) + \frac{\gamma}{2}\|w\|_2^2,

with exactly the normalizations of :mod:`gradflow.losses` and the flat
parameter order of :mod:`gradflow.models` (per layer :math:`W_l` row-major,
then :math:`b_l`), so that the same vector ``w`` means the same network in
:class:`gradflow.Objective` and here.

* :func:`network_loss` and :func:`from_expr` give a :class:`SymbolicObjective`
  (``expr``, ``symbols``, ``gradient()``, ``hessian()``).
* :meth:`SymbolicObjective.hessian_at` evaluates the Hessian exactly (rational
  at rational points) with its exact rank and nullity.
* :meth:`SymbolicObjective.critical_points` solves :math:`\nabla L = 0` for
  small polynomial systems under a time budget.
* :meth:`SymbolicObjective.compile` generates numba kernels from the per-sample
  loss (with :func:`sympy.cse`), cached on disk (``GRADFLOW_CACHE_DIR``), and
  returns a :class:`CompiledObjective` with the ``Objective`` protocol and the
  raw kernels ``rhs`` / ``jac`` for compiled integrators.

Numbers are exact: every float of the data, of a polynomial activation's
coefficients, of the weight decay and of a point given to :meth:`hessian_at`
is read as the rational number of its shortest decimal representation
(``0.1`` becomes ``1/10``), which differs from the float by less than half a
unit in the last place.
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import math
import multiprocessing
import numbers
import time

import numpy as np
import sympy as sp

from . import _backend, _codegen, activations as _activations, losses as _losses
from ._validation import check_choice, check_int, check_real, describe
from .data import Dataset
from ._kernels import Kernels
from .models import Network

__all__ = [
    "network_loss", "from_expr", "SymbolicObjective", "CompiledObjective", "CriticalPoints", "HessianAt",
    "DEFAULT_ACTIVATION", "DEFAULT_LOSS", "DEFAULT_WEIGHT_DECAY", "DEFAULT_BIAS", "DEFAULT_N_SAMPLES",
    "DEFAULT_TIMEOUT", "LOSSES",
]

#: Activation of the hidden layers of :func:`network_loss` (a deep linear network).
DEFAULT_ACTIVATION = "linear"
#: Loss of :func:`network_loss`.
DEFAULT_LOSS = "square"
#: Weight decay :math:`\gamma` of :func:`network_loss`.
DEFAULT_WEIGHT_DECAY = 0.0
#: Whether the layers of :func:`network_loss` have biases.
DEFAULT_BIAS = False
#: Number of symbolic samples of :func:`network_loss` when ``data=None``.
DEFAULT_N_SAMPLES = 1
#: Time budget, in seconds, of :meth:`SymbolicObjective.critical_points`.
DEFAULT_TIMEOUT = 10.0
#: The losses :func:`network_loss` builds (the normalizations of :mod:`gradflow.losses`).
LOSSES = ("square", "logistic", "cross_entropy")


# =========================================================================== results
@dataclasses.dataclass(frozen=True)
class HessianAt:
    r"""The exact Hessian :math:`\nabla^2 L(w)` at one point, with its exact rank.

    Attributes
    ----------
    point : tuple of sympy numbers
        The point, exactly as used.
    matrix : sympy.Matrix
        :math:`\nabla^2 L(w)`, shape ``(P, P)``; rational when ``w``, the data
        and the coefficients are rational (polynomial losses).
    rank, nullity : int
        ``rank + nullity == P``.  A zero-loss minimum of an overparametrized
        network has ``nullity > 0`` (Section 6.2, Theorem 3).
    exact : bool
        True when the rank was computed over the rationals (or an algebraic
        field), False when the entries are transcendental (logistic and
        cross-entropy losses): then the singular values are computed to
        ``RANK_DIGITS`` (50) digits and those below :math:`10^{-40}` times the
        largest count as zero.
    """

    point: tuple
    matrix: object
    rank: int
    nullity: int
    exact: bool


@dataclasses.dataclass(frozen=True)
class CriticalPoints:
    r"""The solutions of :math:`\nabla L(w) = 0` found by :meth:`SymbolicObjective.critical_points`.

    Attributes
    ----------
    symbols : tuple of sympy.Symbol
        The unknowns, in the order of the coordinates of ``points``.
    points : tuple of tuple
        Isolated critical points (complex ones included), exact sympy numbers
        where sympy could solve the system, floats otherwise (see ``exact``).
    components : tuple of tuple of sympy.Expr
        Positive-dimensional components of the critical set, each as the
        equations ``e = 0`` that define it, e.g. ``((w1*w2 - 1,),)`` for
        :math:`L = \tfrac12(w_1 w_2 - 1)^2`.
    n_isolated : int or None
        Number of isolated complex solutions (``len(points)``); None when the
        computation did not get that far.
    bezout_bound : int or None
        :math:`\prod_i \deg \partial L/\partial w_i` over the nonzero
        partial derivatives: Bezout's bound on the isolated solutions
        (Section 4, point 1).  None when the budget ran out before it was known.
    degrees : tuple of int
        Degrees of the nonzero partial derivatives.
    groebner_basis : tuple of sympy.Expr or None
        A (grevlex) Groebner basis of the gradient ideal, when computed.
    exact : bool
        Whether every point is exact.
    complete : bool
        False when the time budget ran out or sympy could not finish; then
        ``message`` says what is missing and what to do.
    message : str
    elapsed : float
        Seconds spent.
    """

    symbols: tuple
    points: tuple
    components: tuple
    n_isolated: int | None
    bezout_bound: int | None
    degrees: tuple
    groebner_basis: tuple | None
    exact: bool
    complete: bool
    message: str
    elapsed: float

    @property
    def real_points(self) -> np.ndarray:
        """The real isolated points as floats, shape ``(m, P)``."""
        rows = []
        for point in self.points:
            values = [complex(sp.N(v, 30)) for v in point]
            if all(abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) for v in values):
                rows.append([v.real for v in values])
        return np.array(rows, dtype=float).reshape(len(rows), len(self.symbols))

    def equations(self) -> list:
        """The components as readable strings, e.g. ``['w1*w2 - 1 = 0']``."""
        return [", ".join(f"{sp.sstr(e)} = 0" for e in component) or "every point" for component in self.components]


# =========================================================================== the symbolic objective
class SymbolicObjective:
    r"""A loss as a sympy expression in the weights, with exact derivatives and a numba compiler.

    Build one with :func:`network_loss` or :func:`from_expr`, not directly.

    Attributes
    ----------
    expr : sympy.Expr
        :math:`L(w) = \frac1n\sum_i \ell(w; x_i, y_i) + \frac\gamma2\|w\|^2`
        (built on first access for network losses, kept unexpanded).
    symbols : tuple of sympy.Symbol
        The weights, in the flat order of :class:`gradflow.Objective` for
        network losses: ``W{l}_{i}_{j}`` is entry ``(i, j)`` (1-based) of
        layer ``l``'s :math:`W_l` and ``b{l}_{i}`` its bias.
    size : int
        ``P = len(symbols)``.
    loss : str or None
        The loss name of a network loss; None for :func:`from_expr`.
    weight_decay : float
        :math:`\gamma` (0 for :func:`from_expr`).
    model : gradflow.models.Network or None
        The numeric twin of a network loss.
    data_symbols : tuple of sympy.Matrix or None
        ``(X, Y)`` symbols of a network loss built with ``data=None``:
        ``x{i}_{j}`` (n, d) and ``y{i}_{c}`` (n, k_t): the targets for the
        square loss, the label :math:`\pm1` for the logistic loss, the one-hot
        vector (class probabilities) for cross-entropy.
    """

    def __init__(self, symbols, sample, data, weight_decay, *, expr=None, loss=None, model=None, data_symbols=None):
        self.symbols = tuple(symbols)
        self.size = len(self.symbols)
        self.loss = loss
        self.weight_decay = float(weight_decay)
        self.model = model
        self.data_symbols = data_symbols
        self._sample = sample          # _codegen.SampleLoss, the per-sample loss
        self._data = data              # (X, T) float arrays, or None for symbolic data
        self._expr = expr
        self._module = None

    # ------------------------------------------------------------- expressions
    @property
    def expr(self):
        """The loss :math:`L(w)` as one sympy expression (unexpanded; see the class docstring)."""
        if self._expr is None:
            self._expr = self._build_expr()
        return self._expr

    def _build_expr(self):
        s = self._sample
        terms = [s.expr.xreplace(dict(zip(s.inputs + s.targets, x + t))) for x, t in self._rows()]
        total = sp.Add(*terms) / len(terms)
        if self.weight_decay:
            total = total + _exact_number(self.weight_decay) / 2 * sp.Add(*[w**2 for w in self.symbols])
        return total

    @functools.cached_property
    def _real_derivatives(self):
        """The gradient and Hessian of a ``from_expr`` loss, differentiated in real copies of the symbols (the
        weights are real: with complex ones, ``Abs``, ``sign`` or ``re`` differentiate to unevaluated
        ``Derivative(re(w), w)``), then written back in the given symbols."""
        real = [sp.Symbol(w.name, real=True) if not w.is_real else w for w in self.symbols]
        back = {r: w for r, w in zip(real, self.symbols)}
        expr = self.expr.xreplace(dict(zip(self.symbols, real)))
        gradient = sp.Matrix([sp.diff(expr, w) for w in real])
        return gradient.xreplace(back), _hessian_of(gradient, real).xreplace(back)

    @functools.cached_property
    def _gradient(self):
        if self.model is None:
            return self._real_derivatives[0]
        s = self._sample
        per_sample = sp.Matrix([sp.diff(s.expr, w) for w in s.weights])
        total = self._average_over_rows(per_sample)
        if self.weight_decay:
            total += _exact_number(self.weight_decay) * sp.Matrix(self.symbols)
        return total

    def gradient(self):
        r""":math:`\nabla L` as a ``(P, 1)`` sympy Matrix (computed once, then cached).

        For a network loss it is assembled as
        :math:`\frac1n\sum_i \nabla\ell(w; x_i, y_i) + \gamma w` from the
        derivative of the per-sample loss, which is much cheaper than
        differentiating the whole sum.
        """
        return self._gradient

    @functools.cached_property
    def _hessian(self):
        if self.model is None:
            return self._real_derivatives[1]
        total = self._average_over_rows(self._sample_hessian)
        if self.weight_decay:
            total += _exact_number(self.weight_decay) * sp.eye(self.size)
        return total

    def hessian(self):
        r""":math:`\nabla^2 L` as a ``(P, P)`` sympy Matrix (computed once, then cached; assembled per sample as :meth:`gradient`)."""
        return self._hessian

    @functools.cached_property
    def _sample_hessian(self):
        s = self._sample
        grad = [sp.diff(s.expr, w) for w in s.weights]
        return _hessian_of(sp.Matrix(grad), s.weights)

    def _rows(self):
        """Per-sample data ``(x_i, t_i)`` as lists of exact numbers, or of the data symbols."""
        if self._data is None:
            X, Y = self.data_symbols
            return [(list(X.row(i)), list(Y.row(i))) for i in range(X.rows)]
        return self._exact_rows()

    def _average_over_rows(self, matrix):
        s = self._sample
        rows = self._rows()
        total = sp.zeros(*matrix.shape)
        for x, t in rows:
            total += matrix.xreplace(dict(zip(s.inputs + s.targets, x + t)))
        return total / len(rows)

    def _exact_rows(self):
        X, T = self._data
        return [([_exact_number(v) for v in X[i]], [_exact_number(v) for v in T[i]]) for i in range(X.shape[0])]

    # ------------------------------------------------------------- exact Hessian
    def hessian_at(self, w) -> HessianAt:
        r"""The exact Hessian :math:`\nabla^2 L(w)` and its exact rank and nullity.

        Parameters
        ----------
        w : sequence of length P
            Integers, fractions, sympy numbers or floats (a float is read as
            the rational of its shortest decimal representation).

        Returns
        -------
        HessianAt
            For a polynomial loss and rational ``w`` the matrix is rational
            and the rank exact: the ground truth for the numeric degeneracy
            analysis (Section 6.2: at a zero-loss point of the square loss
            :math:`\nabla^2 L = J^\top J / n`, so the nullity is ``P - rank J``).
        """
        point = _validate_point(w, self.size)
        values = dict(zip(self.symbols, point))
        if self.model is None or self._data is None:
            H = self.hessian().xreplace(values)
            extra = H.free_symbols
            if extra:
                raise ValueError(
                    "`w` fixes the weights, but this loss still has the symbols "
                    f"{sorted(map(str, extra))[:5]} (symbolic data); build it with numeric `data` to evaluate it."
                )
        else:
            H = self._average_over_rows(self._sample_hessian.xreplace(values))
            if self.weight_decay:
                H += _exact_number(self.weight_decay) * sp.eye(self.size)
        rank, exact = _exact_rank(H)
        return HessianAt(point=point, matrix=H, rank=rank, nullity=self.size - rank, exact=exact)

    # ------------------------------------------------------------- critical points
    def critical_points(self, timeout=DEFAULT_TIMEOUT) -> CriticalPoints:
        r"""Solve :math:`\nabla L(w) = 0` for a small polynomial loss, within ``timeout`` seconds.

        The gradient ideal's Groebner basis is computed and the system solved
        with :func:`sympy.solve` in a separate process that is stopped when
        the budget runs out, so the call always returns.  Isolated points are
        exact where sympy finds them in closed form (numeric otherwise);
        positive-dimensional components (the manifolds of degenerate minima
        of Section 4) come back as defining equations, e.g. ``w1*w2 - 1 = 0``.
        Beside the number of isolated complex solutions the result gives
        Bezout's bound :math:`\prod_i \deg\,\partial_i L` (Section 4, point 1).

        Parameters
        ----------
        timeout : float, default ``DEFAULT_TIMEOUT`` = 10.0
            Seconds, > 0.

        Returns
        -------
        CriticalPoints
            ``complete=False`` and an explanatory ``message`` (with whatever
            was known: degrees, Bezout bound, Groebner basis) when the budget
            ran out.

        Raises
        ------
        ValueError
            If the loss is not a polynomial in ``symbols`` with numeric
            coefficients (logistic / cross-entropy losses, symbolic data).
        """
        timeout = _validate_timeout(timeout)
        expr = _validate_polynomial_loss(self.expr, self.symbols)
        return _solve_with_budget(expr, self.symbols, timeout)

    # ------------------------------------------------------------- compilation
    def compile(self, data=None, weight_decay=None) -> "CompiledObjective":
        r"""Numba kernels for :math:`L`, :math:`\nabla L`, :math:`\nabla^2 L` and the flow :math:`-\nabla L`.

        The kernels are generated from the per-sample loss
        :math:`\ell(w; x, y)` with symbolic data (one loop over the data rows),
        so their size does not grow with ``n`` and new data or a new
        :math:`\gamma` reuses them.  The generated source and numba's machine
        code are cached on disk under ``$GRADFLOW_CACHE_DIR`` (default
        ``~/.cache/gradflow``), keyed by a hash of the expression: a later
        process compiling the same loss loads them instead.

        Parameters
        ----------
        data : Dataset or (X, Y), optional
            Data to bind instead of the objective's own; required when the
            objective was built with ``data=None``.
        weight_decay : float, optional
            :math:`\gamma` to bind instead of the objective's own.

        Returns
        -------
        CompiledObjective
        """
        if data is None:
            if self._data is None:
                raise ValueError(
                    "`data` is needed: this loss was built with data=None (symbolic data); "
                    "pass compile(data=gf.Dataset(X, y)) or (X, Y)."
                )
            X, T = self._data
        else:
            X, T = self._validate_bound_data(data)
        gamma = self.weight_decay if weight_decay is None else _validate_weight_decay(weight_decay)
        return CompiledObjective(self, self._kernels(), X, T, gamma)

    def _validate_bound_data(self, data):
        if self.model is None:
            raise ValueError(
                "`data` cannot be given to a loss built with from_expr, which has no data; "
                "put the data into the expression instead."
            )
        return _validate_data(data, self.model, self.loss)

    def _kernels(self):
        if self._module is None:
            sample, key = _codegen.canonical(self._sample)
            self._module = _codegen.load_kernels(sample, key)
        return self._module

    def __repr__(self) -> str:
        if self.model is not None:
            data = "symbolic data" if self._data is None else f"n={self._data[0].shape[0]}"
            decay = f", weight_decay={self.weight_decay}" if self.weight_decay else ""
            return f"SymbolicObjective({self.model!r}, loss={self.loss!r}, {data}{decay}; P={self.size})"
        return f"SymbolicObjective({sp.sstr(self.expr)[:60]}; P={self.size})"


# =========================================================================== compiled objective
class CompiledObjective:
    r"""A symbolic loss compiled to numba: the ``Objective`` protocol plus raw kernels.

    NumPy only (float64).  ``value``, ``grad``, ``hvp`` accept one vector
    ``(P,)`` or a batch ``(m, P)`` like :class:`gradflow.Objective`;
    ``hessian`` takes one vector.

    Attributes
    ----------
    size : int
    symbols : tuple of sympy.Symbol
    weight_decay : float
    xp : module
        ``numpy``: compiled objectives are NumPy only.
    parameter_shapes : tuple of tuple
        The network's per-layer shapes for :func:`network_loss`, ``((P,),)``
        (one block) for :func:`from_expr`.
    rhs, jac : numba dispatchers
        ``rhs(t, w, out, args)`` writes :math:`-\nabla L(w)` into ``out`` (P,);
        ``jac(t, w, out, args)`` writes :math:`-\nabla^2 L(w)` into ``out`` (P, P).
    args : tuple
        ``(data, gamma)``: the data ``[X | T]`` (float64, C-contiguous, one
        sample per row: its inputs, then its prepared targets: columns of the
        square loss, the :math:`\pm1` label, or one-hot classes) and the weight
        decay :math:`\gamma`.
    kernels : gradflow._kernels.Kernels
        ``(value, grad, hvp, rhs, jac, args)`` in the calling convention of
        the numeric objectives' compiled kernels, which is what
        :class:`gradflow.GradientFlow`'s compiled integrators take.
    module : module
        The generated module (also ``hess(w, out, args)``).
    source_path : str
        The generated source file in the cache directory.

    Notes
    -----
    **Calling the kernels from numba.**  The kernels close over nothing; the
    data travel as the last argument ``args``, as in
    :func:`scipy.integrate.solve_ivp`'s ``args``::

        @numba.njit
        def euler(rhs, w0, dt, steps, args):
            w, k = w0.copy(), np.empty_like(w0)
            for _ in range(steps):
                rhs(0.0, w, k, args)
                w += dt * k
            return w

        c = sym.compile()
        euler(c.rhs, w0, 1e-2, 1000, c.args)

    The kernels trust their arguments' shapes (no checks inside numba).
    :meth:`with_data` and :meth:`with_weight_decay` bind new arrays to the
    same machine code: nothing is recompiled.
    """

    xp = np

    def __init__(self, symbolic: SymbolicObjective, module, X, T, weight_decay):
        self._symbolic = symbolic
        self.parameter_shapes = ((symbolic.size,),) if symbolic.model is None else symbolic.model.parameter_shapes
        self.module = module
        self.size = symbolic.size
        self.symbols = symbolic.symbols
        self.weight_decay = float(weight_decay)
        X = np.asarray(X, dtype=np.float64)
        self._n_inputs = X.shape[1]
        self._data = np.concatenate([X, np.asarray(T, dtype=np.float64)], axis=1)     # a new C-contiguous [X | T]
        self.rhs = module.rhs
        self.jac = module.jac
        self.kernels = Kernels(module.value, module.grad, module.hvp, module.rhs, module.jac, self.args)
        self.source_path = module.__file__

    @property
    def args(self) -> tuple:
        """``(data, gamma)``: the trailing arguments of every kernel."""
        return (self._data, self.weight_decay)

    def with_data(self, data) -> "CompiledObjective":
        """The same kernels bound to other data (a Dataset or ``(X, Y)`` matching the network's widths)."""
        X, T = self._symbolic._validate_bound_data(data)
        return CompiledObjective(self._symbolic, self.module, X, T, self.weight_decay)

    def with_weight_decay(self, weight_decay) -> "CompiledObjective":
        r"""The same kernels with another :math:`\gamma \ge 0`."""
        X, T = self._data[:, :self._n_inputs], self._data[:, self._n_inputs:]
        return CompiledObjective(self._symbolic, self.module, X, T, _validate_weight_decay(weight_decay))

    # ------------------------------------------------------------- protocol
    def value(self, w):
        r""":math:`L(w)`: a float for ``(P,)``, shape ``(m,)`` for ``(m, P)``."""
        w = _validate_weights(w, self.size)
        if w.ndim == 1:
            return self.module.value(w, self.args)
        out = np.empty(w.shape[0])
        self.module.values(np.ascontiguousarray(w), out, self.args)
        return out

    def grad(self, w):
        r""":math:`\nabla L(w)`, the shape of ``w``."""
        w = _validate_weights(w, self.size)
        out = np.empty_like(w)
        grad, args = self.module.grad, self.args
        if w.ndim == 1:
            grad(w, out, args)
        else:
            for row, dest in zip(w, out):
                grad(row, dest, args)
        return out

    def value_and_grad(self, w):
        """``(value(w), grad(w))``."""
        return self.value(w), self.grad(w)

    def hessian(self, w):
        r""":math:`\nabla^2 L(w)`, shape ``(P, P)``, for one ``w`` of shape ``(P,)``."""
        w = _validate_weights(w, self.size)
        if w.ndim != 1:
            raise ValueError(f"`w` must be one parameter vector of shape ({self.size},) here; got shape {w.shape}.")
        out = np.empty((self.size, self.size))
        self.module.hess(w, out, self.args)
        return out

    def hvp(self, w, v):
        r""":math:`\nabla^2 L(w)\,v` (from the compiled Hessian); ``v`` ``(P,)`` or ``(m, P)``, pairwise with a batch ``w``."""
        w = _validate_weights(w, self.size)
        v = _validate_weights(v, self.size, "v")
        if w.ndim == 1:
            H = self.hessian(w)
            return v @ H.T
        if v.ndim == 1 or v.shape[0] != w.shape[0]:
            raise ValueError(f"`v` must have the shape of the batch `w` {w.shape}; got {v.shape}.")
        return np.stack([self.hessian(wi) @ vi for wi, vi in zip(w, v)])

    def __repr__(self) -> str:
        return (f"CompiledObjective(P={self.size}, n={self._data.shape[0]}, weight_decay={self.weight_decay}; "
                f"{self.source_path})")


# =========================================================================== constructors
def network_loss(widths, activation=DEFAULT_ACTIVATION, data=None, loss=DEFAULT_LOSS,
                 weight_decay=DEFAULT_WEIGHT_DECAY, bias=DEFAULT_BIAS, n_samples=DEFAULT_N_SAMPLES) -> SymbolicObjective:
    r"""The loss of a linear or polynomial-activation network as a sympy expression.

    .. math::

        L(w) = \frac1n \sum_{i=1}^n V\big(f_w(x_i), y_i\big) + \frac{\gamma}{2}\|w\|^2,
        \qquad f_w(x) = W_{H+1}\,\sigma(\cdots\sigma(W_1 x + b_1)\cdots) + b_{H+1},

    with :math:`V` the square, logistic or cross-entropy loss normalized as in
    :mod:`gradflow.losses`.  With a polynomial :math:`\sigma` the loss is a
    polynomial in the weights (Section 4, point 1; Section 6.4).

    Parameters
    ----------
    widths : sequence of int
        ``[d, N_1, ..., k]``, input first (``[31, 2, 1]`` for Figure 8).
    activation : "linear" or gradflow.activations.Polynomial, default ``DEFAULT_ACTIVATION`` = "linear"
        Non-polynomial activations (ReLU, tanh) are refused: use
        ``gf.Objective(gf.models.MLP(...), data)`` for those.
    data : Dataset, (X, Y) or None, default None
        Numeric data (``X`` of shape ``(n, d)``), or None to keep ``n_samples``
        symbolic samples (see :attr:`SymbolicObjective.data_symbols`).
    loss : {"square", "logistic", "cross_entropy"}, default ``DEFAULT_LOSS`` = "square"
        Labels are checked as by :class:`gradflow.Objective`.
    weight_decay : float, default ``DEFAULT_WEIGHT_DECAY`` = 0.0
    bias : bool, default ``DEFAULT_BIAS`` = False
    n_samples : int, default ``DEFAULT_N_SAMPLES`` = 1
        Symbolic samples when ``data`` is None (ignored otherwise).

    Returns
    -------
    SymbolicObjective
        Its ``symbols`` follow the flat order of ``gf.Objective(gf.models.MLP(widths, activation, bias), ...)``.

    Examples
    --------
    >>> import gradflow as gf
    >>> sym = gf.symbolic.network_loss([1, 1, 1], data=([[1.0]], [1.0]))
    >>> sym.expr
    (W1_1_1*W2_1_1 - 1)**2/2
    """
    activation = _validate_activation(activation)
    loss = _validate_loss(loss)
    weight_decay = _validate_weight_decay(weight_decay)
    model = Network(widths, activation=activation, bias=bias)
    arrays = _validate_data(data, model, loss)
    n_samples = _validate_n_samples(n_samples)

    weights, layers = _weight_symbols(model)
    inputs = tuple(sp.Symbol(f"_x{j}") for j in range(1, model.n_inputs + 1))
    n_targets = 1 if loss == "logistic" else model.n_outputs
    targets = tuple(sp.Symbol(f"_t{c}") for c in range(1, n_targets + 1))
    outputs = _network_outputs(layers, inputs, activation)
    u = tuple(sp.Symbol(f"_u{c}") for c in range(1, model.n_outputs + 1))
    V = _output_loss(loss, u, targets)
    expr = V.xreplace(dict(zip(u, outputs)))
    sample = _codegen.SampleLoss(expr=expr, weights=weights, inputs=inputs, targets=targets,
                                 outputs=tuple(outputs), output_symbols=u, output_loss=V)
    data_symbols = None
    if arrays is None:
        X = sp.Matrix(n_samples, model.n_inputs, lambda i, j: sp.Symbol(f"x{i + 1}_{j + 1}"))
        Y = sp.Matrix(n_samples, n_targets, lambda i, c: sp.Symbol(f"y{i + 1}_{c + 1}"))
        data_symbols = (X, Y)
    return SymbolicObjective(weights, sample, arrays, weight_decay, loss=loss, model=model, data_symbols=data_symbols)


def from_expr(expr, symbols) -> SymbolicObjective:
    r"""A :class:`SymbolicObjective` for any scalar sympy loss :math:`L(w)`.

    Parameters
    ----------
    expr : sympy.Expr
        A scalar expression whose free symbols are all in ``symbols``.
    symbols : sequence of sympy.Symbol
        The weights, in the order of the flat vector ``w``.  A symbol that
        does not occur in ``expr`` is a flat direction of the loss.

    Returns
    -------
    SymbolicObjective

    Examples
    --------
    The degenerate minimum of the paper's Figure 2 and the hyperbola of minima
    of :math:`\tfrac12(w_1 w_2 - 1)^2`:

    >>> import sympy as sp
    >>> w1, w2 = sp.symbols("w1 w2")
    >>> fig2 = from_expr(w1**2 / 2, [w1, w2])
    >>> fig2.hessian_at([0, 5]).nullity
    1
    >>> from_expr((w1 * w2 - 1)**2 / 2, [w1, w2]).critical_points().equations()
    ['w1*w2 - 1 = 0']
    """
    expr = _validate_expr(expr)
    symbols = _validate_symbols(symbols, expr)
    sample = _codegen.SampleLoss(expr=expr, weights=symbols)
    return SymbolicObjective(symbols, sample, (np.zeros((1, 0)), np.zeros((1, 0))), 0.0, expr=expr)


# =========================================================================== network construction
def _weight_symbols(model: Network):
    """Flat tuple of weight symbols in the model's order, and the per-layer ``(W, b)`` matrices."""
    flat, layers = [], []
    l = 0
    shapes = list(model.parameter_shapes)
    step = 2 if model.bias else 1
    for index in range(0, len(shapes), step):
        l += 1
        rows, cols = shapes[index]
        W = sp.Matrix(rows, cols, lambda i, j, l=l: sp.Symbol(f"W{l}_{i + 1}_{j + 1}"))
        flat.extend(W)  # row-major
        b = None
        if model.bias:
            b = sp.Matrix(rows, 1, lambda i, _, l=l: sp.Symbol(f"b{l}_{i + 1}"))
            flat.extend(b)
        layers.append((W, b))
    return tuple(flat), layers


def _network_outputs(layers, inputs, activation) -> list:
    """The outputs :math:`f_c(w; x)` (hidden layers through ``activation``, output layer linear)."""
    coeffs = None if activation.is_linear else [_exact_number(c) for c in activation.coeffs]
    z = sp.Matrix(inputs)
    for index, (W, b) in enumerate(layers):
        a = W * z
        if b is not None:
            a = a + b
        if index < len(layers) - 1 and coeffs is not None:
            a = a.applyfunc(lambda v: _horner(coeffs, v))
        z = a
    return list(z)


def _horner(coeffs, v):
    result = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        result = result * v + c
    return result


def _output_loss(loss: str, u, t):
    """:math:`V(u, t)` of one sample, the normalizations of :mod:`gradflow.losses` (before the 1/n)."""
    if loss == "square":
        return sp.Rational(1, 2) * sp.Add(*[(uc - tc) ** 2 for uc, tc in zip(u, t)])
    if loss == "logistic":
        return sp.log(1 + sp.exp(-t[0] * u[0]))
    return sp.log(sp.Add(*[sp.exp(uc) for uc in u])) - sp.Add(*[tc * uc for uc, tc in zip(u, t)])


# =========================================================================== exact numbers and ranks
def _exact_number(value):
    """An exact sympy number: integers stay integers, a float becomes the rational of its shortest repr."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, fractions.Fraction):
        return sp.Rational(value.numerator, value.denominator)
    value = float(value)
    if value.is_integer() and abs(value) < 2**53:
        return sp.Integer(int(value))
    f = fractions.Fraction(repr(value))
    return sp.Rational(f.numerator, f.denominator)


def _hessian_of(gradient, symbols):
    P = len(symbols)
    H = sp.zeros(P, P)
    for p in range(P):
        for q in range(p, P):
            H[p, q] = H[q, p] = sp.diff(gradient[p], symbols[q])
    return H


#: Digits to which :meth:`SymbolicObjective.hessian_at` evaluates a Hessian with transcendental entries for its
#: rank (singular values below 10^(10 - RANK_DIGITS) of the largest count as zero).
RANK_DIGITS = 50


def _exact_rank(H) -> tuple[int, bool]:
    from sympy.polys.matrices import DomainMatrix

    if H.rows == 0:
        return 0, True
    if not (H.atoms(sp.Function) or H.atoms(sp.NumberSymbol)):   # sympy's domains would stall on exp, log, pi
        dm = DomainMatrix.from_Matrix(H)
        if dm.domain.is_ZZ:
            dm = dm.convert_to(sp.QQ)
        if dm.domain.is_QQ or dm.domain.is_AlgebraicField:
            return int(dm.rank()), True
    # transcendental entries (logistic, cross-entropy): sympy's simplifying rank can run for minutes on a 2 x 2;
    # the singular values to RANK_DIGITS digits count every rank a float64 analysis could resolve
    import mpmath

    with mpmath.workdps(RANK_DIGITS):
        M = mpmath.matrix([[sp.N(entry, RANK_DIGITS) for entry in row] for row in H.tolist()])
        singular = mpmath.svd_r(M, compute_uv=False)
        largest = max(singular, default=mpmath.mpf(0))
        return int(sum(1 for value in singular if value > largest * mpmath.mpf(10) ** (10 - RANK_DIGITS))), False


# =========================================================================== critical points
def _solve_with_budget(expr, symbols, timeout) -> CriticalPoints:
    start = time.perf_counter()
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:  # platforms without fork
        ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_critical_worker, args=(expr, symbols, sender), daemon=True)
    proc.start()
    sender.close()
    found, stage, error = {}, "differentiating", None
    try:
        while True:
            remaining = timeout - (time.perf_counter() - start)
            if remaining <= 0 or not receiver.poll(remaining):
                break
            try:
                kind, payload = receiver.recv()
            except EOFError:
                error = "the solver process ended without an answer"
                break
            if kind == "error":
                error = payload
                break
            found[kind] = payload
            stage = {"degrees": "computing the Groebner basis", "groebner": "solving the system"}.get(kind, stage)
            if kind == "done":
                break
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        receiver.close()
    return _critical_result(found, symbols, timeout, stage, error, time.perf_counter() - start)


def _critical_result(found, symbols, timeout, stage, error, elapsed) -> CriticalPoints:
    degrees, bezout = found.get("degrees", ((), None))
    basis = found["groebner"][0] if "groebner" in found else None
    fields = dict(symbols=tuple(symbols), degrees=tuple(degrees), bezout_bound=bezout, groebner_basis=basis, elapsed=elapsed)
    if "done" in found:
        points, components, exact, note = found["done"]
        message = f"{len(points)} isolated complex critical point(s) (Bezout bound {bezout})"
        if components:
            message += f" and {len(components)} positive-dimensional component(s)"
        message += "." + (f" {note}" if note else "")
        return CriticalPoints(points=points, components=components, n_isolated=len(points), exact=exact,
                              complete=not note, message=message, **fields)
    known = f"; the gradient has {len(symbols)} polynomial equations of degrees {list(degrees)} (Bezout bound {bezout})" \
        if bezout is not None else ""
    if error is not None:
        message = f"critical_points could not finish: {error}{known}."
    else:
        message = (
            f"critical_points stopped after the time budget `timeout` = {timeout:g} s while {stage}{known}. "
            "Pass a larger `timeout`, fix some weights (expr.subs) to shrink the system, "
            "or look for equilibria numerically with gf.find_equilibrium."
        )
    return CriticalPoints(points=(), components=(), n_isolated=None, exact=False, complete=False, message=message, **fields)


def _critical_worker(expr, symbols, conn) -> None:
    """Runs in a child process: sends ("degrees", ...), ("groebner", ...), ("done", ...) or ("error", text)."""
    try:
        # solved in symbols without assumptions: sympy drops the solutions a user's positive=True (or real=True)
        # symbol excludes, and the critical points of the loss are every complex solution
        given = list(symbols)
        symbols = [sp.Symbol(f"_gradflow_w{i}") for i in range(len(given))]
        back = dict(zip(symbols, given))
        expr = expr.xreplace(dict(zip(given, symbols)))
        grads = [sp.expand(sp.diff(expr, w)) for w in symbols]
        nonzero = [g for g in grads if g != 0]
        degrees = tuple(sp.Poly(g, *symbols).total_degree() for g in nonzero)
        conn.send(("degrees", (degrees, math.prod(degrees))))
        if not nonzero:
            conn.send(("done", ((), ((),), True, "")))
            return
        G = sp.groebner(nonzero, *symbols, order="grevlex")
        conn.send(("groebner", (tuple(e.xreplace(back) for e in G.exprs), bool(G.is_zero_dimensional))))
        if list(G.exprs) == [1]:
            conn.send(("done", ((), (), True, "")))
            return
        points, components, exact, note = _solve_ideal(G, symbols)
        components = tuple(tuple(e.xreplace(back) for e in component) for component in components)
        conn.send(("done", (points, components, exact, note)))
    except Exception as exc:  # reported to the parent as a message, never raised there
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _solve_ideal(G, symbols):
    """``(points, components, exact, note)`` of the zero set of the Groebner basis ``G``."""
    try:
        solutions = sp.solve(list(G.exprs), symbols, dict=True)
    except NotImplementedError:
        solutions = None
    if solutions is None:
        if G.is_zero_dimensional:
            return tuple(_numeric_points(G, symbols)), (), False, ""
        return (), (tuple(G.exprs),), True, "sympy could not decompose the critical set; it is the zero set of the Groebner basis."
    points, components = [], []
    for sol in solutions:
        if all(s in sol and not sol[s].free_symbols for s in symbols):
            points.append(tuple(sp.nsimplify(sol[s]) if sol[s].is_Float else sol[s] for s in symbols))
        else:
            eqs = tuple(sp.expand(sp.numer(sp.together(s - v))) for s, v in sol.items())
            components.append(eqs)
    components = _maximal_components(components, symbols)
    isolated = []
    for point in points:
        values = dict(zip(symbols, point))
        on_component = any(all(sp.simplify(e.xreplace(values)) == 0 for e in comp) for comp in components)
        if not on_component and point not in isolated:
            isolated.append(point)
    exact = all(not any(v.has(sp.Float) for v in point) for point in isolated)
    return tuple(isolated), tuple(components), exact, ""


def _maximal_components(components, symbols) -> list:
    """``components`` without those whose zero set lies in another's (sympy's solve lists, e.g., the branch
    w2 = 0, w3 w4 = 1 of w1 w2 + w3 w4 = 1 besides the whole of it), each kept once."""
    kept = []
    for i, inner in enumerate(components):
        inside = False
        for j, outer in enumerate(components):
            if i == j or not _vanishes_on(outer, inner, symbols):
                continue
            # equal zero sets: only the first is kept
            inside = not _vanishes_on(inner, outer, symbols) or j < i
            if inside:
                break
        if not inside:
            kept.append(inner)
    return kept


def _vanishes_on(equations, component, symbols) -> bool:
    """Whether every polynomial of ``equations`` lies in the ideal of ``component`` (so vanishes on its zero set);
    False when that cannot be decided (a non-polynomial equation)."""
    try:
        G = sp.groebner(list(component), *symbols, order="grevlex")
        return all(G.reduce(sp.expand(e))[1] == 0 for e in equations)
    except (sp.PolynomialError, sp.polys.polyerrors.PolificationFailed, sp.polys.polyerrors.CoercionFailed):
        return False


def _numeric_points(G, symbols):
    """Isolated points of a zero-dimensional ideal by back-substitution in a lex basis (floats)."""
    lex = sp.groebner(list(G.exprs), *symbols, order="lex")
    partial = [{}]
    for s in reversed(symbols):
        extended = []
        for assign in partial:
            polys = []
            for g in lex.exprs:
                h = sp.N(g.xreplace(assign), 30)
                if h.free_symbols == {s}:
                    polys.append(sp.Poly(h, s))
            if not polys:
                continue
            base = min(polys, key=lambda p: p.degree())
            for r in base.nroots(n=30):
                if all(abs(complex(p.eval(r))) <= 1e-8 * max(1.0, float(sum(abs(complex(c)) for c in p.all_coeffs())))
                       for p in polys):
                    extended.append({**assign, s: r})
        partial = extended
    points = []
    for assign in partial:
        point = tuple(sp.Float(complex(assign[s]).real, 15) + sp.I * sp.Float(complex(assign[s]).imag, 15)
                      if abs(complex(assign[s]).imag) > 1e-12 else sp.Float(complex(assign[s]).real, 15)
                      for s in symbols)
        if point not in points:
            points.append(point)
    return points


# =========================================================================== validators
def _validate_activation(activation):
    act = _activations.get(activation)
    if not act.is_polynomial:
        raise ValueError(
            f"`activation` must be polynomial ('linear' or gradflow.activations.Polynomial(coeffs)) for a symbolic "
            f"loss; got {act.name!r}. For ReLU or tanh networks use the numeric "
            "gf.Objective(gf.models.MLP(widths, activation=...), data), or gf.activations.relu_polynomial() here."
        )
    return act


def _validate_loss(loss) -> str:
    return check_choice("loss", loss, LOSSES)


def _validate_weight_decay(weight_decay) -> float:
    return check_real("weight_decay", weight_decay, minimum=0.0)


def _validate_n_samples(n_samples) -> int:
    return check_int("n_samples", n_samples, minimum=1)


def _validate_timeout(timeout) -> float:
    return check_real("timeout", timeout, minimum=0.0, strict=True)


def _validate_data(data, model: Network, loss: str):
    """``None`` or ``(X, T)``: float64 inputs (n, d) and targets prepared for ``loss`` as in gradflow.losses."""
    if data is None:
        return None
    if isinstance(data, Dataset):
        X, y = _backend.to_numpy(data.X), _backend.to_numpy(data.y)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = (_backend.to_numpy(a) if _backend.is_array(a) else np.asarray(a) for a in data)
        if not (np.issubdtype(X.dtype, np.number) and np.issubdtype(y.dtype, np.number)) or np.iscomplexobj(X):
            raise TypeError(f"`data` must hold real arrays (X, Y); got dtypes {X.dtype} and {y.dtype}.")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("`data` must be finite; got a NaN or an infinity in (X, Y).")
    else:
        raise TypeError(f"`data` must be a gradflow.Dataset, a pair (X, Y) or None (symbolic data); got {describe(data)}.")
    d = model.n_inputs
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] < 1:
        raise ValueError(
            f"`data` inputs X must have shape (n, {d}) to match widths[0] = {d}; got shape {X.shape}. "
            f"Make widths[0] equal to the data's dimension, or pass X with one sample per row."
        )
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"`data` targets Y must have one row per sample of X, shape ({X.shape[0]},) or ({X.shape[0]}, k); "
            f"got shape {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.float64)
    xp = _backend.namespace(np.empty(0))
    T = _losses.get(loss).prepare(y, model.n_outputs, xp, "data.y")
    return np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(np.asarray(T), dtype=np.float64)


def _validate_expr(expr):
    if isinstance(expr, np.ndarray) and expr.ndim == 0:
        expr = expr.item()                                       # a NumPy scalar array: its number
    if isinstance(expr, (sp.MatrixBase, sp.NDimArray)) or isinstance(expr, (list, tuple, np.ndarray)):
        shape = getattr(expr, "shape", (len(expr),) if hasattr(expr, "__len__") else ())
        raise ValueError(
            f"`expr` must be a scalar sympy expression (the loss); got a non-scalar of shape {tuple(shape)}. "
            "Pass one entry, or a scalar such as the sum of squares of its entries."
        )
    if isinstance(expr, (str, bytes)) or not isinstance(expr, (sp.Basic, numbers.Real)):
        raise TypeError(f"`expr` must be a sympy expression, e.g. (w1*w2 - 1)**2/2; got {describe(expr)}.")
    expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.MatrixExpr):
        raise ValueError(f"`expr` must be a scalar sympy expression (the loss); got {type(expr).__name__}.")
    if expr.has(sp.I):
        raise ValueError(f"`expr` must be a real loss; it has the imaginary unit I: {sp.sstr(expr)[:80]}.")
    return expr


def _validate_symbols(symbols, expr) -> tuple:
    if isinstance(symbols, sp.MatrixBase):
        symbols = list(symbols)                                  # a column or row of symbols, in order
    if isinstance(symbols, (set, frozenset, dict)):
        raise TypeError("`symbols` must be an ordered sequence of sympy Symbols (the order of the weights in w), "
                        f"e.g. [w1, w2]; got a {type(symbols).__name__}, whose order is arbitrary.")
    if isinstance(symbols, (str, bytes, sp.Basic)) or not hasattr(symbols, "__iter__"):
        raise TypeError(
            f"`symbols` must be a sequence of sympy Symbols, the weights in order, e.g. [w1, w2]; got {describe(symbols)}."
        )
    symbols = tuple(symbols)
    for i, s in enumerate(symbols):
        if not isinstance(s, sp.Symbol):
            raise TypeError(f"`symbols[{i}]` must be a sympy Symbol; got {describe(s)}.")
    if not symbols:
        raise ValueError("`symbols` must name at least one weight; got an empty sequence.")
    if len(set(symbols)) != len(symbols):
        repeated = sorted({str(s) for s in symbols if symbols.count(s) > 1})
        raise ValueError(f"`symbols` must be distinct; got {repeated} more than once.")
    missing = expr.free_symbols - set(symbols)
    if missing:
        names = sorted(map(str, missing))
        raise ValueError(
            f"`symbols` must include every free symbol of `expr`; expected also {names}, got {[str(s) for s in symbols]}. "
            "Add them to `symbols`, or substitute numbers for them with expr.subs(...)."
        )
    return symbols


def _validate_point(w, size: int) -> tuple:
    if isinstance(w, (str, bytes)) or not hasattr(w, "__iter__"):
        raise TypeError(f"`w` must be a sequence of {size} numbers (ints, Fractions, sympy numbers or floats); got {describe(w)}.")
    values = list(np.asarray(w, dtype=object).ravel()) if isinstance(w, np.ndarray) else list(w)
    if len(values) != size:
        raise ValueError(f"`w` must have length P = {size}; got {len(values)} entries.")
    point = []
    for i, v in enumerate(values):
        if isinstance(v, sp.Basic):
            if not (v.is_number and v.is_finite):
                raise ValueError(f"`w[{i}]` must be a finite number; got {v}.")
            point.append(v)
        elif isinstance(v, (numbers.Real, fractions.Fraction)) and not isinstance(v, bool):
            if not math.isfinite(float(v)):
                raise ValueError(f"`w[{i}]` must be finite; got {v}.")
            point.append(_exact_number(v))
        else:
            raise TypeError(f"`w[{i}]` must be a real number; got {describe(v)}.")
    return tuple(point)


def _validate_polynomial_loss(expr, symbols):
    extra = expr.free_symbols - set(symbols)
    if extra:
        raise ValueError(
            f"critical_points needs numeric data; the loss still has the symbols {sorted(map(str, extra))[:5]}. "
            "Build it with `data` or substitute numbers with expr.subs(...)."
        )
    if not expr.is_polynomial(*symbols):
        raise ValueError(
            "critical_points needs a loss that is a polynomial in the weights (square loss with a linear or "
            "polynomial activation); this one is not (logistic and cross-entropy losses are transcendental). "
            "Use gf.find_equilibrium for a numeric search."
        )
    if expr.has(sp.Float):
        expr = sp.nsimplify(expr, rational=True)
    return expr


def _validate_weights(w, size: int, name: str = "w") -> np.ndarray:
    if isinstance(w, np.ndarray) and w.dtype == np.float64 and w.flags.c_contiguous:
        arr = w
    else:
        try:
            arr = np.ascontiguousarray(_backend.to_real_numpy(w))
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be a real array of shape ({size},) or (m, {size}); got {describe(w)}.") from None
    if arr.ndim not in (1, 2) or arr.shape[-1] != size:
        raise ValueError(f"`{name}` must have shape ({size},) or (m, {size}) for P = {size} parameters; got shape {arr.shape}.")
    return arr
