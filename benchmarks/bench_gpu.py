"""The CuPy path against NumPy on one machine: gradients, Hessian-vector products, Lanczos spectra, batched GD.

Problems: ReLU MLPs without biases, cross-entropy on the first ``N_TRAIN`` = 1,000 training images of
``gf.data.digits``, at ``obj.init(seed=0, scale=INIT_SCALE)``:

- ``P5``: ``[64, 300, 300, 10]``, P = 112,200 (issue 5's benchmark network);
- ``wide``: ``[64, 2048, 2048, 10]``, P = 4,345,856.

Each objective is built twice from the same arrays, once on NumPy (run on the host's cores) and once on
CuPy (the data moved to the GPU with ``cupy.asarray``); the same gradflow calls then run on each.
Measured in one process, the GPU synchronized before every clock reading:

1. one gradient (``obj.grad``) and one Hessian-vector product (``obj.hvp``): median of ``REPEATS``
   calls each; the GPU's vectors must equal NumPy's to ``MATCH_RTOL`` (relative to their norm);
2. the top ``K`` = 20 Hessian eigenvalues, ``gf.spectrum(..., method="lanczos", rtol=RTOL)``: ARPACK
   (``scipy.sparse.linalg.eigsh``) on the host against cupyx's ``eigsh`` on the GPU; the two spectra must
   agree to ``SPECTRUM_RTOL`` relative;
3. ``gf.gd`` on a batch of ``M`` = 30 repetitions (the paper's 30 repetitions), ``STEPS`` steps with
   ``lr = LR`` (P5 only: the host needs about a second a step for the wide net): NumPy's default method
   (the compiled kernels) against the CuPy iteration; the final weights must agree to ``MATCH_RTOL``.

The ratios printed are host time / GPU time.  Without CuPy or a CUDA device the script says so and
exits 0 (CI never has a GPU).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import gradflow as gf

N_TRAIN = 1000
INIT_SCALE = 0.1
PROBLEMS = {"P5": [64, 300, 300, 10], "wide": [64, 2048, 2048, 10]}
REPEATS = 7
K = 20
RTOL = 1e-6
SPECTRUM_RTOL = 1e-5
M = 30
STEPS = 50
LR = 0.1
MATCH_RTOL = 1e-9
SEED = 0


def device_or_none():
    """CuPy, when it imports and sees a CUDA device; else None."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # no CuPy, no driver, no device
        pass
    return None


def timed(fn, sync):
    """``fn()``'s value and its wall time, the GPU synchronized on both sides of the clock."""
    sync()
    start = time.perf_counter()
    value = fn()
    sync()
    return value, time.perf_counter() - start


def median_time(fn, sync, repeats=REPEATS):
    fn()
    return statistics.median(timed(fn, sync)[1] for _ in range(repeats))


def relative_difference(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def build(widths, to_device):
    """The same objective on NumPy and on the device, and the starting point on each."""
    data = gf.data.digits(n_train=N_TRAIN, n_test=0)
    model = gf.models.MLP(widths, activation="relu")
    host = gf.Objective(model, data, loss="cross_entropy")
    device = gf.Objective(model, gf.Dataset(to_device(data.X), to_device(data.y)), loss="cross_entropy")
    w = host.init(seed=SEED, scale=INIT_SCALE)
    return host, device, w


def compare_derivatives(host, device, w, to_device, to_host, sync):
    v = np.random.default_rng(1).standard_normal(host.size)
    w_d, v_d = to_device(w), to_device(v)
    for name, on_host, on_device in (("gradient", lambda: host.grad(w), lambda: device.grad(w_d)),
                                     ("HVP", lambda: host.hvp(w, v), lambda: device.hvp(w_d, v_d))):
        error = relative_difference(to_host(on_device()), on_host())
        if not error <= MATCH_RTOL:
            raise SystemExit(f"{name}: the GPU's vector differs from NumPy's by {error:.1e} relative")
        t_host, t_device = median_time(on_host, sync), median_time(on_device, sync)
        print(f"    {name:8s} host {t_host * 1e3:9.2f} ms, GPU {t_device * 1e3:7.3f} ms: {t_host / t_device:6.1f}x "
              f"(median of {REPEATS}; vectors agree to {error:.0e})")


def compare_spectra(host, device, w, to_device, sync):
    on_host, t_host = timed(lambda: gf.spectrum(host, w, k=K, which="largest", method="lanczos", rtol=RTOL), sync)
    w_d = to_device(w)
    on_device, t_device = timed(lambda: gf.spectrum(device, w_d, k=K, which="largest", method="lanczos", rtol=RTOL),
                                sync)
    error = float(np.max(np.abs(np.asarray(on_device.eigenvalues) - on_host.eigenvalues) / np.abs(on_host.eigenvalues)))
    if not (on_host.converged and on_device.converged and error <= SPECTRUM_RTOL):
        raise SystemExit(f"top-{K} spectra: converged host {on_host.converged}, GPU {on_device.converged}; "
                         f"max relative difference {error:.1e} (allowed {SPECTRUM_RTOL:g})")
    print(f"    top-{K} Lanczos (rtol {RTOL:g}): host {t_host:.2f} s ({on_host.n_hvp} HVPs), GPU {t_device:.2f} s "
          f"({on_device.n_hvp} HVPs): {t_host / t_device:.1f}x; eigenvalues {on_host.eigenvalues[-1]:.5g} .. "
          f"{on_host.eigenvalues[0]:.5g} agree to {error:.0e}")
    print(f"      GPU solver: {on_device.message}")


def compare_gd(host, device, to_device, to_host, sync):
    W0 = np.stack([host.init(seed=s, scale=INIT_SCALE) for s in range(M)])
    W0_d = to_device(W0)
    gf.gd(host, W0, lr=LR, steps=1, record_every=1, progress=False)          # compile
    gf.gd(device, W0_d, lr=LR, steps=1, record_every=1, progress=False)      # warm the GPU kernels
    on_host, t_host = timed(lambda: gf.gd(host, W0, lr=LR, steps=STEPS, record_every=STEPS, progress=False), sync)
    on_device, t_device = timed(lambda: gf.gd(device, W0_d, lr=LR, steps=STEPS, record_every=STEPS, progress=False),
                                sync)
    error = relative_difference(to_host(on_device.w[-1]), on_host.w[-1])
    if not (on_host.status == on_device.status == "success" and error <= MATCH_RTOL):
        raise SystemExit(f"gd: status host {on_host.status!r}, GPU {on_device.status!r}; final weights differ by "
                         f"{error:.1e} relative")
    print(f"    gd, {M} repetitions x {STEPS} steps: host {t_host:.2f} s ({on_host.info['engine']} engine), "
          f"GPU {t_device:.2f} s ({on_device.info['engine']} engine): {t_host / t_device:.1f}x; final weights agree to "
          f"{error:.0e}, mean loss {float(np.mean(on_host.loss[-1])):.4g}")


def main():
    cupy = device_or_none()
    if cupy is None:
        print("CuPy or a CUDA device is missing: nothing to compare (pip install -e '.[gpu]' on a machine with a GPU).")
        return 0
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"GPU: {name}, CuPy {cupy.__version__}; host: NumPy {np.__version__}")

    def sync():
        cupy.cuda.Device().synchronize()

    for label, widths in PROBLEMS.items():
        host, device, w = build(widths, cupy.asarray)
        print(f"{label}: MLP {widths} relu, cross-entropy, n = {N_TRAIN}, P = {host.size:,}")
        compare_derivatives(host, device, w, cupy.asarray, cupy.asnumpy, sync)
        compare_spectra(host, device, w, cupy.asarray, sync)
        if label == "P5":
            compare_gd(host, device, cupy.asarray, cupy.asnumpy, sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
