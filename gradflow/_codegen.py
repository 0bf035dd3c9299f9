r"""Code generation: a per-sample sympy loss :math:`\ell(w; x, t)` turned into numba kernels cached on disk.

The symbolic layer (:mod:`gradflow.symbolic`) hands this module one scalar
expression :math:`\ell(w; x, t)` in the ``P`` weights ``w``, the ``d`` inputs
``x`` of one sample and its ``k_t`` targets ``t``.  The training loss is

.. math::

    L(w) = \frac1n \sum_{i=1}^n \ell(w; x_i, t_i) + \frac{\gamma}{2}\|w\|^2 ,

so the kernels loop over the rows of the data ``[X | T]``, the inputs ``X``
(n, d) and the targets ``T`` (n, k_t) side by side in one array, and sum; the
data and :math:`\gamma` are arguments, never constants of the generated code,
so new data or a new weight decay reuses the same machine code.  The per-sample gradient and the upper triangle
of the per-sample Hessian are differentiated symbolically and shared
subexpressions are factored out with :func:`sympy.cse`.

The generated Python source is written to the cache directory (environment
variable ``GRADFLOW_CACHE_DIR``, default ``~/.cache/gradflow``) as
``gradflow_kernels_<key>.py``, where ``key`` hashes the expression, atomically
(a temporary file then :func:`os.replace`), and imported with :mod:`importlib`.
Its functions are decorated ``@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)`` (IEEE
arithmetic: a division by zero gives inf, never an exception; ``value`` and ``grad`` also
``inline="always"``, so that ``values`` and ``rhs`` hold their code), so numba keeps the
machine code in ``__pycache__`` beside the source, and a later process that
builds the same expression neither regenerates nor recompiles anything.

Kernels of a generated module, in the calling convention of
:mod:`gradflow._kernels` with ``args = (data, gamma)``: ``data = [X | T]``, (n, d + k_t) float64, C-contiguous
(NumPy-only, shapes trusted: the caller checks them), and the weight decay ``gamma``, a float.  Two arguments, not
three arrays: each array in ``args`` is nine machine words that every call of a kernel passes on (a float is one), and
an integrator calls ``rhs`` for every stage (measured: 1.6 us less per solve of the 458 gradients of issue 4's P1):

``value(w, args) -> float``
``values(W, out, args)``                 writes :math:`L` of every row of ``W`` (m, P) into ``out`` (m,)
``grad(w, out, args)``                   writes :math:`\nabla L(w)` into ``out`` (P,)
``hess(w, out, args)``                   writes :math:`\nabla^2 L(w)` into ``out`` (P, P)
``hvp(w, v, out, args)``                 writes :math:`\nabla^2 L(w)\,v` (through the Hessian: O(P^2))
``rhs(t, w, out, args)``                 writes :math:`-\nabla L(w)` (the gradient-flow vector field)
``jac(t, w, out, args)``                 writes :math:`-\nabla^2 L(w)` (its Jacobian)
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.pycode import PythonCodePrinter

from ._files import atomic_write
from ._kernels import FASTMATH

__all__ = ["CACHE_DIR_ENV", "DEFAULT_CACHE_DIR", "CODEGEN_VERSION", "SampleLoss", "cache_dir", "canonical", "load_kernels"]

#: Environment variable naming the directory of generated kernels.
CACHE_DIR_ENV = "GRADFLOW_CACHE_DIR"
#: Directory of generated kernels when ``GRADFLOW_CACHE_DIR`` is unset.
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "gradflow")
#: Bumped whenever the generated code changes, so that old cache files are never reused.
CODEGEN_VERSION = "10"
#: File (and module) name prefix of generated kernels.
MODULE_PREFIX = "gradflow_kernels_"
#: Characters of the hexadecimal SHA-256 digest kept in the key.
KEY_LENGTH = 32

# error_model="numpy": a division by zero or a log of 0 in the user's loss gives inf or NaN, which the integrators
# report as a diverged run, instead of an exception raised from inside a compiled loop
_DECORATOR = (f"@numba.njit(cache=True, error_model=\"numpy\", "
              f"fastmath={{{', '.join(repr(f) for f in sorted(FASTMATH))}}})")
# value and grad are also inlined into values and rhs: a call between compiled functions re-counts the
# references of every array it passes, which doubles the cost of a small vector field (28 ns against 13 ns
# per call of L = 1/2 (w1 w2 - 1)^2's).  The Hessian, whose cost dwarfs a call, is not inlined.
_INLINED_DECORATOR = _DECORATOR[:-1] + ', inline="always")'
_LOADED: dict = {}
_LOCK = threading.Lock()
_INDENT = "    "


class _Printer(PythonCodePrinter):
    """Python printer whose numbers are float literals (numba-safe; ``p/q`` could overflow int64)."""

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Integer(self, expr):
        return repr(int(expr)) if abs(int(expr)) < 2**53 else repr(float(expr))

    def _print_LogSumExp(self, expr):
        # pairwise, each pair max + log1p(exp(-|a - b|)): no exp of a large argument
        printed = [self._print(a) for a in expr.args]
        result = printed[-1]
        for a in reversed(printed[:-1]):
            result = f"_logaddexp({a}, {result})"
        return result

    def _print_DiracDelta(self, expr):
        # only in derivatives (a DiracDelta in the loss itself is refused): the second derivative of a kink (Max,
        # Abs, Heaviside) is 0 on either side of it, the convention of the numeric ReLU models
        return "0.0"


class LogSumExp(sp.Function):
    r""":math:`\log\sum_i e^{a_i}`, which the generated code evaluates without overflow (the logistic loss
    :math:`\log(1 + e^{-t u})` and the cross-entropy's :math:`\log\sum_c e^{u_c}`, written naively, overflow
    to inf at logits of a few hundred).  Its derivatives :math:`e^{a_i - \mathrm{LSE}(a)}` lie in [0, 1]."""

    def fdiff(self, argindex=1):
        return sp.exp(self.args[argindex - 1] - self)


def _stable_log_sums(expr):
    """``expr`` with every ``log(e^a + e^b + ...)`` (a term 1 is ``e^0``) written as :class:`LogSumExp`."""
    def is_log_of_exps(e):
        return (isinstance(e, sp.log) and isinstance(e.args[0], sp.Add)
                and all(isinstance(t, sp.exp) or t == 1 for t in e.args[0].args))

    return expr.replace(is_log_of_exps, lambda e: LogSumExp(*[t.args[0] if isinstance(t, sp.exp) else sp.S.Zero
                                                              for t in e.args[0].args]))


def _derivative(expr, symbol):
    """``d expr / d symbol``, with a kink's derivative taken from the left at the kink: sympy differentiates
    ``Max(0, u)`` to ``Heaviside(u)``, whose default value at 0 is 1/2, where the numeric ReLU models use 0.
    Every ``Heaviside`` with that default becomes ``Heaviside(u, 0)``; one given another value keeps it."""
    derivative = sp.diff(expr, symbol)
    return derivative.replace(lambda e: isinstance(e, sp.Heaviside) and e.args[1:] == (sp.S.Half,),
                              lambda e: sp.Heaviside(e.args[0], 0))


def _real(name: str):
    """A canonical symbol: real, so that sympy differentiates Abs, Max and sign as functions of a real variable."""
    return sp.Symbol(name, real=True)


def cache_dir() -> Path:
    """The directory of generated kernels (``$GRADFLOW_CACHE_DIR`` or ``~/.cache/gradflow``), created if needed."""
    path = Path(os.path.expanduser(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclasses.dataclass(frozen=True)
class SampleLoss:
    r"""A per-sample loss :math:`\ell(w; x, t)`, optionally with its network structure.

    Parameters
    ----------
    expr : sympy.Expr
        :math:`\ell` in ``weights``, ``inputs`` and ``targets``.
    weights, inputs, targets : tuple of sympy.Symbol
    outputs : tuple of sympy.Expr, optional
        The network outputs :math:`f_c(w; x)` when :math:`\ell = V(f(w; x), t)`.
    output_symbols : tuple of sympy.Symbol, optional
        Symbols :math:`u_c` standing for the outputs in ``output_loss``.
    output_loss : sympy.Expr, optional
        :math:`V(u, t)`.  With the structure, the Hessian kernel uses
        :math:`\nabla^2\ell = J^\top (\nabla_u^2 V) J + \sum_c \partial_{u_c} V\,\nabla^2 f_c`
        (``J`` the output Jacobian) instead of unrolling all :math:`P(P+1)/2` entries.
    """

    expr: object
    weights: tuple
    inputs: tuple = ()
    targets: tuple = ()
    outputs: tuple | None = None
    output_symbols: tuple | None = None
    output_loss: object = None


def canonical(sample: SampleLoss):
    """``(renamed SampleLoss, key)``: symbols renamed ``w0.., x0.., t0.., u0..`` and the hash naming its kernels.

    The key depends on the expressions' structure only (not on the user's
    symbol names), on the numbers of weights, inputs and targets and on
    :data:`CODEGEN_VERSION`.
    """
    rename = {s: _real(f"w{p}") for p, s in enumerate(sample.weights)}
    rename.update({s: _real(f"x{j}") for j, s in enumerate(sample.inputs)})
    rename.update({s: _real(f"t{c}") for c, s in enumerate(sample.targets)})
    out_rename = {}
    if sample.outputs is not None:
        out_rename = {s: _real(f"u{c}") for c, s in enumerate(sample.output_symbols)}
        out_rename.update({s: _real(f"t{c}") for c, s in enumerate(sample.targets)})
    renamed = SampleLoss(
        expr=_stable_log_sums(sp.sympify(sample.expr).xreplace(rename)),
        weights=tuple(_real(f"w{p}") for p in range(len(sample.weights))),
        inputs=tuple(_real(f"x{j}") for j in range(len(sample.inputs))),
        targets=tuple(_real(f"t{c}") for c in range(len(sample.targets))),
        outputs=None if sample.outputs is None else tuple(f.xreplace(rename) for f in sample.outputs),
        output_symbols=None if sample.outputs is None else tuple(_real(f"u{c}") for c in range(len(sample.outputs))),
        output_loss=None if sample.outputs is None else _stable_log_sums(sp.sympify(sample.output_loss).xreplace(
            out_rename)),
    )
    parts = [CODEGEN_VERSION, str(len(renamed.weights)), str(len(renamed.inputs)), str(len(renamed.targets)),
             sp.srepr(renamed.expr)]
    if renamed.outputs is not None:
        parts += [sp.srepr(f) for f in renamed.outputs] + [sp.srepr(renamed.output_loss)]
    return renamed, hashlib.sha256("|".join(parts).encode()).hexdigest()[:KEY_LENGTH]


def load_kernels(sample: SampleLoss, key: str):
    """The module of compiled kernels of the canonical ``sample`` (see :func:`canonical`), generating it if needed.

    Loaded modules are remembered for the life of the process, per cache
    directory (a changed ``GRADFLOW_CACHE_DIR`` is honoured); on disk the
    source is written once, atomically, and never rewritten.
    """
    with _LOCK:
        name = MODULE_PREFIX + key
        path = cache_dir() / f"{name}.py"
        if path in _LOADED:
            return _LOADED[path]
        if not path.exists():
            if sample.expr.has(sp.DiracDelta):
                raise _not_compilable("DiracDelta in the loss itself has no numeric value")
            try:
                source = _source(sample, key)
            except PrintMethodNotImplementedError as exc:      # sympy's printer met a function it cannot write
                raise _not_compilable(str(exc)) from None
            atomic_write(path, lambda handle: handle.write(source), mode="w")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _LOADED[path] = module
        return module


def _not_compilable(reason: str) -> ValueError:
    return ValueError(
        f"the loss cannot be compiled: {reason}. compile() writes L, its gradient and its Hessian as numba code: "
        "elementary functions (powers, exp, log, trigonometric and hyperbolic functions), Abs, Max, Min, sign, "
        "Heaviside and Piecewise, whose derivatives sympy can also write; rewrite the loss with those, or use the "
        "symbolic objective uncompiled."
    )


# --------------------------------------------------------------------------- source
def _source(sample: SampleLoss, key: str) -> str:
    """The Python source of the kernels of the canonical ``sample``."""
    printer = _Printer({"fully_qualified_modules": True})
    weights, n_weights = sample.weights, len(sample.weights)
    expr = sample.expr
    gradient = [_derivative(expr, w) for w in weights]
    grad_entries = [(p, g) for p, g in enumerate(gradient) if g != 0]

    lines = [
        f'"""gradflow kernels {key}: generated by gradflow._codegen (version {CODEGEN_VERSION}); do not edit."""',
        "import math",
        "",
        "import numba",
        "import numpy as np",
        "",
        f"P = {n_weights}",
        "",
        "",
        _INLINED_DECORATOR,
        "def _logaddexp(a, b):",
        f"{_INDENT}high = max(a, b)",
        f"{_INDENT}return high + math.log1p(math.exp(min(a, b) - high))",
        "",
    ]
    unpack_w = [f"{_INDENT}w{p} = w[{p}]" for p in range(n_weights)]
    n_inputs = len(sample.inputs)
    unpack_row = [f"{_INDENT * 2}x{j} = data[i, {j}]" for j in range(n_inputs)]
    unpack_row += [f"{_INDENT * 2}t{c} = data[i, {n_inputs + c}]" for c in range(len(sample.targets))]

    # value
    assigns, (value_expr,) = _cse_block(printer, [expr], "s")
    lines += ["", _INLINED_DECORATOR, "def value(w, args):", f"{_INDENT}data, gamma = args", *unpack_w,
              f"{_INDENT}n = data.shape[0]", f"{_INDENT}acc = 0.0", f"{_INDENT}for i in range(n):", *unpack_row, *assigns,
              f"{_INDENT * 2}acc += {value_expr}",
              f"{_INDENT}acc = acc / n",
              f"{_INDENT}if gamma != 0.0:",
              f"{_INDENT * 2}sq = 0.0",
              f"{_INDENT * 2}for p in range(P):",
              f"{_INDENT * 3}sq += w[p] * w[p]",
              f"{_INDENT * 2}acc += 0.5 * gamma * sq",
              f"{_INDENT}return acc", ""]

    # gradient
    assigns, outs = _cse_block(printer, [g for _, g in grad_entries], "s")
    lines += ["", _INLINED_DECORATOR, "def grad(w, out, args):", f"{_INDENT}data, gamma = args", *unpack_w,
              *[f"{_INDENT}g{p} = 0.0" for p, _ in grad_entries],
              f"{_INDENT}n = data.shape[0]", f"{_INDENT}for i in range(n):", *unpack_row, *assigns]
    lines += [f"{_INDENT * 2}g{p} += {text}" for (p, _), text in zip(grad_entries, outs)]
    if not grad_entries and not unpack_row:
        lines.append(f"{_INDENT * 2}pass")
    lines += [f"{_INDENT}inv = 1.0 / n",
              f"{_INDENT}for p in range(P):", f"{_INDENT * 2}out[p] = gamma * w[p]"]
    lines += [f"{_INDENT}out[{p}] += g{p} * inv" for p, _ in grad_entries]
    lines.append("")

    # Hessian: accumulate the upper triangle, then scale, add gamma and mirror
    lines += ["", _DECORATOR, "def hess(w, out, args):", f"{_INDENT}data, gamma = args", *unpack_w,
              f"{_INDENT}for p in range(P):", f"{_INDENT * 2}for q in range(P):", f"{_INDENT * 3}out[p, q] = 0.0",
              f"{_INDENT}n = data.shape[0]"]
    if sample.outputs is None:
        lines += _direct_hessian_lines(printer, grad_entries, weights, unpack_row)
    else:
        lines += _structured_hessian_lines(printer, sample, unpack_row)
    lines += [f"{_INDENT}inv = 1.0 / n",
              f"{_INDENT}for p in range(P):",
              f"{_INDENT * 2}out[p, p] = out[p, p] * inv + gamma",
              f"{_INDENT * 2}for q in range(p + 1, P):",
              f"{_INDENT * 3}h = out[p, q] * inv",
              f"{_INDENT * 3}out[p, q] = h",
              f"{_INDENT * 3}out[q, p] = h", ""]

    # the loss of many parameter vectors, the Hessian-vector product, the vector field and its Jacobian
    lines += ["", _DECORATOR, "def values(W, out, args):",
              f"{_INDENT}for r in range(W.shape[0]):", f"{_INDENT * 2}out[r] = value(W[r], args)", ""]
    lines += ["", _DECORATOR, "def hvp(w, v, out, args):",
              f"{_INDENT}H = np.empty((P, P))", f"{_INDENT}hess(w, H, args)",
              f"{_INDENT}for p in range(P):", f"{_INDENT * 2}acc = 0.0",
              f"{_INDENT * 2}for q in range(P):", f"{_INDENT * 3}acc += H[p, q] * v[q]", f"{_INDENT * 2}out[p] = acc", ""]
    lines += ["", _DECORATOR, "def rhs(t, w, out, args):",
              f"{_INDENT}grad(w, out, args)",
              f"{_INDENT}for p in range(P):", f"{_INDENT * 2}out[p] = -out[p]", ""]
    lines += ["", _DECORATOR, "def jac(t, w, out, args):",
              f"{_INDENT}hess(w, out, args)",
              f"{_INDENT}for p in range(P):", f"{_INDENT * 2}for q in range(P):", f"{_INDENT * 3}out[p, q] = -out[p, q]", ""]
    return "\n".join(lines) + "\n"


def _direct_hessian_lines(printer, grad_entries, weights, unpack_row) -> list:
    """Loop body with every nonzero upper-triangle entry of the per-sample Hessian unrolled (small ``P``)."""
    entries = []
    for p, g in grad_entries:
        for q in range(p, len(weights)):
            h = _derivative(g, weights[q])
            if h != 0:
                entries.append(((p, q), h))
    assigns, outs = _cse_block(printer, [h for _, h in entries], "s")
    lines = [f"{_INDENT}for i in range(n):", *unpack_row, *assigns]
    lines += [f"{_INDENT * 2}out[{p}, {q}] += {text}" for ((p, q), _), text in zip(entries, outs)]
    if not entries and not unpack_row:
        lines.append(f"{_INDENT * 2}pass")
    return lines


def _structured_hessian_lines(printer, sample: SampleLoss, unpack_row) -> list:
    r"""Loop body of :math:`\nabla^2\ell = J^\top (\nabla_u^2 V) J + \sum_c \partial_{u_c}V\,\nabla^2 f_c`.

    ``J`` (K, P) is written into a scratch array (only its nonzero entries,
    the zeros stay), the Gauss-Newton part is a loop, and only the nonzero
    upper-triangle entries of :math:`\sum_c g_c \nabla^2 f_c` are unrolled.
    """
    weights, outputs, u = sample.weights, sample.outputs, sample.output_symbols
    K, P = len(outputs), len(weights)
    jac_entries = []
    second = {}
    for c, f in enumerate(outputs):
        for p, w in enumerate(weights):
            d = _derivative(f, w)
            if d == 0:
                continue
            jac_entries.append(((c, p), d))
            for q in range(p, P):
                h = _derivative(d, weights[q])
                if h != 0:
                    second.setdefault((p, q), []).append((c, h))
    g_syms = [_real(f"g{c}") for c in range(K)]
    second_exprs = [sp.Add(*[g_syms[c] * h for c, h in terms]) for terms in second.values()]
    assigns, outs = _cse_block(printer, list(outputs) + [d for _, d in jac_entries], "s")
    f_texts, jac_texts = outs[:K], outs[K:]
    second_assigns, second_texts = _cse_block(printer, second_exprs, "h")
    V = sample.output_loss
    gV = [_derivative(V, uc) for uc in u]
    HV = [_derivative(gV[c], u[e]) for c in range(K) for e in range(K)]
    v_assigns, v_outs = _cse_block(printer, gV + HV, "r")

    lines = [f"{_INDENT}J = np.zeros(({K}, P))", f"{_INDENT}M = np.empty(({K}, P))", f"{_INDENT}HV = np.empty(({K}, {K}))",
             f"{_INDENT}for i in range(n):", *unpack_row, *assigns]
    lines += [f"{_INDENT * 2}u{c} = {text}" for c, text in enumerate(f_texts)]
    lines += [f"{_INDENT * 2}J[{c}, {p}] = {text}" for ((c, p), _), text in zip(jac_entries, jac_texts)]
    lines += v_assigns
    lines += [f"{_INDENT * 2}g{c} = {v_outs[c]}" for c in range(K)]
    lines += [f"{_INDENT * 2}HV[{c}, {e}] = {v_outs[K + c * K + e]}" for c in range(K) for e in range(K)]
    lines += second_assigns
    lines += [f"{_INDENT * 2}out[{p}, {q}] += {text}" for (p, q), text in zip(second, second_texts)]
    lines += [
        f"{_INDENT * 2}for c in range({K}):",
        f"{_INDENT * 3}for q in range(P):",
        f"{_INDENT * 4}acc = 0.0",
        f"{_INDENT * 4}for e in range({K}):",
        f"{_INDENT * 5}acc += HV[c, e] * J[e, q]",
        f"{_INDENT * 4}M[c, q] = acc",
        f"{_INDENT * 2}for p in range(P):",
        f"{_INDENT * 3}for q in range(p, P):",
        f"{_INDENT * 4}acc = 0.0",
        f"{_INDENT * 4}for c in range({K}):",
        f"{_INDENT * 5}acc += J[c, p] * M[c, q]",
        f"{_INDENT * 4}out[p, q] += acc",
    ]
    return lines


def _cse_block(printer, exprs, prefix):
    """``(assignment lines, printed outputs)`` of ``exprs`` after common-subexpression elimination."""
    if not exprs:
        return [], []
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(prefix), order="none")
    assigns = [f"{_INDENT * 2}{printer.doprint(sym)} = {printer.doprint(value)}" for sym, value in replacements]
    return assigns, [printer.doprint(e) for e in reduced]
