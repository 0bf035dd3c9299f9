"""BLAS thread pools (threadpoolctl): where gradflow's work is many small products, one thread is faster.

On a machine with few cores and other work running, a multithreaded BLAS
spreads small matrix products over busy cores and its idle threads spin; the
products then run many times slower than on one thread.  gradflow limits the
pools only around work it knows is made of small products, never globally.
"""

from __future__ import annotations

import contextlib
import os

import scipy
import threadpoolctl

__all__ = ["single_threaded_blas", "scipy_blas_single_threaded"]

_CONTROLLER = None
_SCIPY_BLAS = None


def _controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = threadpoolctl.ThreadpoolController()
    return _CONTROLLER


def single_threaded_blas(limit: bool = True):
    """A context holding every BLAS thread pool to one thread (for batches of small products, e.g. a recorded path,
    or BLAS called inside loops that already run on all cores, where nested threads would oversubscribe them);
    with ``limit`` False, a context that does nothing (entering the limit costs tens of microseconds)."""
    return _controller().limit(limits=1, user_api="blas") if limit else contextlib.nullcontext()


def scipy_blas_single_threaded():
    """A context holding the BLAS that ships inside scipy (ARPACK's) to one thread; NumPy's BLAS keeps its threads.

    With wheels, NumPy and scipy each bundle an OpenBLAS with its own thread
    pool.  ARPACK's vector operations are small, but its idle BLAS threads
    spin and take cores from the Hessian-vector products between its calls
    (twice as slow per product on two cores).  When both use one shared BLAS
    nothing is limited.
    """
    global _SCIPY_BLAS
    if _SCIPY_BLAS is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))
        inside = (os.path.join(root, "scipy") + os.sep, os.path.join(root, "scipy.libs") + os.sep)
        controller = _controller()
        paths = [lib.filepath for lib in controller.lib_controllers
                 if lib.user_api == "blas" and lib.filepath.startswith(inside)]
        _SCIPY_BLAS = controller.select(filepath=paths) if paths else False
    return _SCIPY_BLAS.limit(limits=1) if _SCIPY_BLAS else contextlib.nullcontext()
