"""Small shared checks used by the ``_validate_<name>()`` functions at public entry points.

Every message names the parameter in backticks, says what was expected and what
came in, and how to fix it (DESIGN.md, convention 4).  ``ValueError`` for bad
values, ``TypeError`` for bad types.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import os

__all__ = ["check_choice", "check_int", "check_real", "check_bool", "check_dense_fits", "check_fits", "dense_fits",
           "fits_in_memory", "physical_memory", "describe"]


def describe(value) -> str:
    """A short description of ``value`` for an error message: its repr for scalars, shape and type for arrays."""
    try:
        shape = getattr(value, "shape", None)
    except Exception:                                 # objects whose shape attribute raises (sympy's Indexed)
        shape = None
    if shape is not None and not isinstance(value, numbers.Number) and hasattr(shape, "__iter__"):
        return f"an array of shape {tuple(shape)} and dtype {getattr(value, 'dtype', '?')}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of the strings ``choices``; otherwise a ValueError listing them."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {_quoted(choices)}; got {describe(value)}.")
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {_quoted(choices)}; got {value!r}.")
    return value


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` (bools refused) within ``[minimum, maximum]``."""
    if type(value) is int:
        pass  # the common case, without the slower abstract-class checks
    elif isinstance(value, bool) or not isinstance(value, numbers.Integral):
        try:
            if isinstance(value, bool):
                raise TypeError
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"`{name}` must be an integer; got {describe(value)}.") from None
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be an integer <= {maximum}; got {value}.")
    return value


def check_real(name: str, value, minimum: float | None = None, *, strict: bool = False) -> float:
    """``value`` as a finite ``float``, at least ``minimum`` (greater than it when ``strict``)."""
    if type(value) is float or type(value) is int:
        pass  # the common case, without the slower abstract-class checks
    elif isinstance(value, (bool, str, bytes)):
        raise TypeError(f"`{name}` must be a real number; got {describe(value)}.")
    elif not isinstance(value, numbers.Real):
        try:
            value = float(value)  # 0-d arrays
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be a real number; got {describe(value)}.") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}.")
    if minimum is not None:
        if strict and not value > minimum:
            raise ValueError(f"`{name}` must be > {minimum}; got {value}.")
        if not strict and value < minimum:
            raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return value


def check_seed(value, name: str = "seed") -> int:
    """A random seed: an integer >= 0 (what ``numpy.random.default_rng`` takes)."""
    value = check_int(name, value)
    if value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, e.g. 0; got {value}.")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool (NumPy bools accepted)."""
    if isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")):
        return bool(value)
    raise TypeError(f"`{name}` must be True or False; got {describe(value)}.")


def fits_in_memory(nbytes: float) -> bool:
    """Whether ``nbytes`` take at most half of the memory this process may use (True where the platform does not
    say)."""
    memory = physical_memory()
    return memory is None or nbytes <= memory / 2


def dense_fits(size: int, matrices: float, copies: int = 1) -> bool:
    """Whether ``matrices`` dense ``size x size`` float64 matrices (times ``copies`` run at once) take at most half
    of the memory this process may use."""
    return fits_in_memory(matrices * copies * 8 * size ** 2)


def check_dense_fits(size: int, matrices: float, what: str, fix: str, copies: int = 1) -> None:
    """Refuse work that holds ``matrices`` dense ``size x size`` float64 matrices at its peak (times ``copies`` run
    at once) when they would take more than half of the memory this process may use: a clear ValueError before the
    work, instead of a MemoryError in the middle of it, or swapping.  ``what`` starts the message and ``fix`` ends
    it."""
    check_fits(matrices * copies * 8 * size ** 2,
               f"{what} holds dense P x P matrices (the Hessian and its factors or eigenvectors)", fix,
               detail=f" for P = {size:,}")


def check_fits(nbytes: float, head: str, fix: str, detail: str = "") -> None:
    """A ValueError ``"{head}: about N GiB{detail}, more than half of the M GiB this process may use. {fix}"``
    when ``nbytes`` would take more than half of the memory this process may use (:func:`physical_memory`)."""
    if not fits_in_memory(nbytes):
        raise ValueError(f"{head}: about {nbytes / 2**30:,.1f} GiB{detail}, more than half of the "
                         f"{physical_memory() / 2**30:,.1f} GiB this process may use. {fix}")


#: Files that hold the memory limit of this process's control group, where one is set (a container's limit):
#: cgroup v2, then v1.  ``max`` (v2) or a number beyond the machine's memory (v1) means no limit.
CGROUP_MEMORY_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


@functools.cache
def physical_memory():
    """The memory this process may use, in bytes: the machine's (``os.sysconf``), or less where its control
    group (:data:`CGROUP_MEMORY_LIMITS`) or ``RLIMIT_AS`` sets less; None where the platform says nothing.
    Read once per process."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):      # os.sysconf is POSIX only
        pass
    for path in CGROUP_MEMORY_LIMITS:
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            limits.append(int(text))
    try:
        import resource                                # POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) if limits else None


def _quoted(choices) -> str:
    return ", ".join(repr(c) for c in choices)
