"""Choosing the array namespace ``xp`` once, at the public entry point.

gradflow's problem layer is written against the Python array API standard, so
the same code runs on NumPy (the default), on CuPy (for large nets on a GPU) and
on ``array_api_strict`` (which the test-suite uses to keep the CuPy path honest
on machines without a GPU).  The namespace is read off the arrays that come in,
with :func:`array_api_compat.array_namespace`; anything that is not already an
array of a known library (lists, tuples, scalars) becomes a NumPy array.
Nothing else in gradflow asks which library it is running on.
"""

from __future__ import annotations

import numpy as np
import array_api_compat

__all__ = ["namespace", "as_array", "to_numpy", "to_real_numpy", "is_numpy", "is_array", "sparse_linalg"]


def is_array(x) -> bool:
    """Whether ``x`` is an array of a supported library (not a list, a tuple or a Python scalar)."""
    return array_api_compat.is_array_api_obj(x) and not isinstance(x, (bool, int, float, complex))


def namespace(*arrays):
    """The array namespace shared by ``arrays`` (NumPy when none is an array).

    Raises
    ------
    TypeError
        If the arrays come from different libraries (say NumPy and CuPy).
    """
    known = [a for a in arrays if a is not None and is_array(a)]
    if not known:
        return array_api_compat.array_namespace(np.empty(0))
    try:
        return array_api_compat.array_namespace(*known)
    except TypeError as exc:
        libraries = sorted({type(a).__module__.split(".")[0] for a in known})
        raise TypeError(
            "arrays from different libraries were mixed (" + ", ".join(libraries) + "); "
            "move them to one library first, e.g. all NumPy or all CuPy."
        ) from exc


def as_array(x, xp, dtype=None):
    """``x`` as an array of namespace ``xp`` (float64 unless ``dtype`` is given)."""
    if dtype is None:
        dtype = xp.float64
    return xp.asarray(x, dtype=dtype)


def is_numpy(xp) -> bool:
    """Whether ``xp`` is (the array-api-compat wrapper of) NumPy."""
    return array_api_compat.is_numpy_namespace(xp)


def to_numpy(x) -> np.ndarray:
    """A NumPy copy (or view) of any supported array; NumPy-only code calls this at its boundary."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    # the buffer protocol / __array__ (array_api_strict, NumPy scalars, lists)
    return np.asarray(x)


def to_real_numpy(x) -> np.ndarray:
    """``x`` as a float64 NumPy array; a bare ``TypeError`` (the caller names the parameter) for what NumPy would
    convert wrongly or silently, complex numbers (it drops the imaginary part), ``None`` (it makes NaN), booleans
    and strings ("0.25"), and a ``TypeError`` or ``ValueError`` for what it cannot convert."""
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x
    array = to_numpy(x)
    if array.dtype.kind in "bcUS" or (array.dtype == object and any(item is None or isinstance(item, (bool, str))
                                                                     for item in array.flat)):
        raise TypeError
    return np.asarray(array, dtype=np.float64)



def sparse_linalg(xp):
    """The ``scipy.sparse.linalg`` that serves arrays of ``xp``, and whether its vectors are ``xp``'s own arrays.

    CuPy arrays get :mod:`cupyx.scipy.sparse.linalg` (``LinearOperator``,
    ``eigsh`` by thick-restart Lanczos), so Lanczos runs on the GPU with the
    objective's arrays; every other library gets :mod:`scipy.sparse.linalg`
    (ARPACK), which works on NumPy copies.
    """
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx.scipy.sparse.linalg

        return cupyx.scipy.sparse.linalg, True
    import scipy.sparse.linalg

    return scipy.sparse.linalg, False
