"""Large networks on the CPU: the compiled kernels (loops, and BLAS for large layers) against NumPy's array code.

Problems: MLPs without biases, cross-entropy on the first ``N_TRAIN`` = 1,000 training images of
``gf.data.digits``, from ``obj.init(seed, scale=INIT_SCALE)``:

1. **GD** on the ReLU net ``[64, 300, 300, 10]`` (P = 112,200, issue 5's benchmark net), ``STEPS`` steps with
   ``lr = LR``, one repetition and a batch of ``M`` = 30 (the paper's 30 repetitions): ``gf.gd`` (its
   compiled engine) against the plain NumPy loop ``W <- W - lr * obj.grad(W)`` on the batch, the
   library's array code (which is what ``gf.gd`` runs for objectives without compiled kernels);
2. **the gradient flow** on the tanh net ``[64, 100, 100, 10]`` (P = 17,400; smooth, so the flow has no
   kinks for the steps to grind on) over t in [0, ``T_END``], rtol 1e-8, atol 1e-10: the default method
   (compiled ``dopri5``) against ``scipy.integrate.solve_ivp(method="RK45")`` with ``-obj.grad`` as the
   right-hand side.  A tanh costs the kernels a scalar call per unit and sample where NumPy's is vectorized,
   so this side is about even.

Both sides must reach the same weights (GD to 1e-10 relative; the flow to 1e-6 relative of a DOP853
reference at rtol 1e-12) before the ratios (NumPy time / gradflow time) are printed.  ``--quick`` runs fewer
steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.integrate

import gradflow as gf

N_TRAIN = 1000
INIT_SCALE = 0.1
GD_WIDTHS = [64, 300, 300, 10]
FLOW_WIDTHS = [64, 100, 100, 10]
M = 30
STEPS, QUICK_STEPS = 20, 4
LR = 0.1
T_END = 2.0
RTOL, ATOL = 1e-8, 1e-10


def objective(widths, activation):
    data = gf.data.digits(n_train=N_TRAIN, n_test=0)
    return gf.Objective(gf.models.MLP(widths, activation=activation), data, loss="cross_entropy")


def best_of(fn, repeats=3):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def numpy_gd(obj, W, steps):
    for _ in range(steps):
        W = W - LR * obj.grad(W)
    return W


def compare_gd(steps):
    obj = objective(GD_WIDTHS, "relu")
    print(f"GD  MLP {GD_WIDTHS} relu, cross-entropy, n = {N_TRAIN}, P = {obj.size:,}: {steps} steps, lr = {LR}")
    for m in (1, M):
        W0 = np.stack([obj.init(seed=s, scale=INIT_SCALE) for s in range(m)])
        gf.gd(obj, W0, lr=LR, steps=1, record_every=1, progress=False)                    # compile
        ours_s, ours = best_of(lambda: gf.gd(obj, W0, lr=LR, steps=steps, record_every=steps, progress=False))
        base_s, base = best_of(lambda: numpy_gd(obj, W0, steps))
        error = np.abs(ours.w[-1] - base).max() / np.abs(base).max()
        assert ours.status == "success" and error < 1e-10, (ours.message, error)
        print(f"    m = {m:2d}: gf.gd ({ours.info['engine']} engine) {ours_s / steps * 1e3:8.1f} ms a step, NumPy loop "
              f"{base_s / steps * 1e3:8.1f} ms a step: {base_s / ours_s:.2f}x   (weights agree to {error:.0e})")


def compare_flow():
    obj = objective(FLOW_WIDTHS, "tanh")
    w0 = obj.init(seed=0, scale=INIT_SCALE)
    flow = gf.GradientFlow(obj)
    times = np.array([0.0, T_END])
    print(f"FLOW MLP {FLOW_WIDTHS} tanh, cross-entropy, n = {N_TRAIN}, P = {obj.size:,}: t in [0, {T_END}], rtol {RTOL:g}")
    flow.solve(w0, (0, 0.01), t_eval=[0, 0.01])                                          # compile
    ours_s, ours = best_of(lambda: flow.solve(w0, (0, T_END), t_eval=times, rtol=RTOL, atol=ATOL))

    def rhs(t, w):
        return -obj.grad(w)

    base_s, base = best_of(lambda: scipy.integrate.solve_ivp(rhs, (0, T_END), w0, method="RK45", t_eval=times,
                                                             rtol=RTOL, atol=ATOL))
    reference = scipy.integrate.solve_ivp(rhs, (0, T_END), w0, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
    scale = np.abs(reference).max()
    for name, final in (("gradflow", ours.final), ("RK45", base.y[:, -1])):
        error = np.abs(final - reference).max() / scale
        assert error < 1e-6, (name, error)
        print(f"    {name:8s} relative difference from DOP853 {error:.1e}  ok")
    print(f"    gradflow ({ours.method!r}, {ours.nfev} gradients) {ours_s * 1e3:.0f} ms, scipy RK45 ({base.nfev} "
          f"gradients) {base_s * 1e3:.0f} ms: {base_s / ours_s:.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} GD steps instead of {STEPS}")
    args = parser.parse_args(argv)
    compare_gd(QUICK_STEPS if args.quick else STEPS)
    compare_flow()


if __name__ == "__main__":
    main()
