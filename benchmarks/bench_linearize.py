"""P5 (issue 5): Hessian spectra of a large network, matrix-free.

Problem: an MLP ``[64, 300, 300, 10]`` (ReLU, no biases, P = 112,200 parameters) on the first
``N_TRAIN`` = 1,000 training images of ``gf.data.digits``, cross-entropy loss, at the point
``obj.init(seed=0, scale=INIT_SCALE)``.

Measured, in one process:

1. the cost of one exact Hessian-vector product (``obj.hvp``, Pearlmutter's R-operator) against one
   gradient (``obj.grad``): median of ``REPEATS`` calls each; issue 5's target is <= 4x;
2. the top ``K`` = 20 Hessian eigenvalues by Lanczos (``gf.spectrum(..., method="lanczos")``,
   ARPACK through ``scipy.sparse.linalg.eigsh`` with ``tol = RTOL`` = 1e-6) against the baseline,
   power iteration with deflation (the algorithm of PyHessian), written below on the same
   ``obj.hvp``: for ``i = 1..K`` iterate ``v <- (H - sum_j lam_j u_j u_j^T) v / ||.||``, at most
   ``POWER_MAX_ITER`` iterations per eigenvalue and ``POWER_BUDGET_S`` seconds in all (so the
   benchmark ends in a few minutes); a baseline cut short by either limit makes the printed
   ratios lower bounds, marked ">=".  Both count Hessian-vector products; issue 5's
   target is >= 5x fewer products and >= 3x less time for Lanczos.

**Same accuracy.**  A reference spectrum is computed first (Lanczos with ``rtol = 1e-12``,
untimed).  PyHessian's own stopping rule (Rayleigh quotient changes by less than ``RTOL``
relative) stops power iteration well short of ``RTOL`` accuracy when consecutive eigenvalues are
close, so the baseline is stopped instead the first time its Rayleigh quotient is within
``RTOL`` (relative) of the reference eigenvalue: an oracle rule, the fewest products power
iteration could possibly need, which favours the baseline.  Both results are then checked
against the reference (max relative error <= ``RTOL``) before the ratios are printed.
``--quick`` uses K = 8.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import gradflow as gf
from gradflow.linearize import spectrum

N_TRAIN = 1000
WIDTHS = [64, 300, 300, 10]
INIT_SCALE = 0.1
K = 20
QUICK_K = 8
RTOL = 1e-6
REPEATS = 7
POWER_MAX_ITER = 1000
POWER_BUDGET_S = 300.0
SEED = 0


def problem():
    data = gf.data.digits(n_train=N_TRAIN, n_test=0)
    obj = gf.Objective(gf.models.MLP(WIDTHS, activation="relu"), data, loss="cross_entropy")
    return obj, obj.init(seed=SEED, scale=INIT_SCALE)


def median_time(f, repeats=REPEATS):
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def power_iteration_deflation(obj, w, k, reference, rtol, max_iter, budget_s, seed=SEED):
    """PyHessian's top-k eigenvalues: power iteration on H deflated by the pairs found so far.

    Eigenvalue ``i`` (largest first) stops when its Rayleigh quotient is within ``rtol`` of
    ``reference[i]`` (the oracle rule of the module docstring) or after ``max_iter`` products;
    the whole run stops after ``budget_s`` seconds.  Returns the values and vectors found (largest
    first), the products per eigenvalue, and whether every eigenvalue was reached.
    """
    rng = np.random.default_rng(seed)
    values, vectors, per_value, reached = [], [], [], True
    start = time.perf_counter()
    for target in reference[::-1]:
        if time.perf_counter() - start > budget_s:
            reached = False
            break
        v = rng.standard_normal(obj.size)
        v /= np.linalg.norm(v)
        n_hvp = 0
        for _ in range(max_iter):
            Hv = obj.hvp(w, v)
            n_hvp += 1
            for value, u in zip(values, vectors):
                Hv -= value * (u @ v) * u
            lam = float(v @ Hv)
            v = Hv / np.linalg.norm(Hv)
            if abs(lam - target) <= rtol * abs(target):
                break
        else:
            reached = False
        values.append(lam)
        vectors.append(v)
        per_value.append(n_hvp)
    return np.array(values), np.array(vectors).T, per_value, reached


def relative_residuals(obj, w, values, vectors):
    HU = obj.hvp(w, vectors.T).T
    return np.linalg.norm(HU - vectors * values, axis=0) / np.abs(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"top {QUICK_K} instead of top {K}")
    args = parser.parse_args(argv)
    k = QUICK_K if args.quick else K
    obj, w = problem()
    print(f"problem: MLP {WIDTHS} relu, cross-entropy, n = {N_TRAIN}, P = {obj.size:,}; top-{k} eigenvalues, rtol {RTOL:g}")

    v = np.random.default_rng(1).standard_normal(obj.size)
    t_grad = median_time(lambda: obj.grad(w))
    t_hvp = median_time(lambda: obj.hvp(w, v))
    print(f"[1] gradient {t_grad * 1e3:.1f} ms, HVP {t_hvp * 1e3:.1f} ms (median of {REPEATS}): "
          f"HVP / gradient = {t_hvp / t_grad:.2f}x (target <= 4x)")

    reference = spectrum(obj, w, k=k, which="largest", method="lanczos", rtol=1e-12)
    print(f"    reference (Lanczos, rtol 1e-12, untimed): {reference.n_hvp} HVPs, "
          f"eigenvalues {reference.eigenvalues[-1]:.6g} .. {reference.eigenvalues[0]:.6g}")

    start = time.perf_counter()
    lanczos = spectrum(obj, w, k=k, which="largest", method="lanczos", rtol=RTOL)
    t_lanczos = time.perf_counter() - start
    print(f"[2] Lanczos: {lanczos.n_hvp} HVPs, {t_lanczos:.1f} s, converged {lanczos.converged}")

    start = time.perf_counter()
    power_values, power_vectors, per_value, reached = power_iteration_deflation(
        obj, w, k, reference.eigenvalues, RTOL, POWER_MAX_ITER, POWER_BUDGET_S)
    t_power = time.perf_counter() - start
    power_hvp = sum(per_value)
    print(f"    power iteration with deflation: {power_hvp} HVPs, {t_power:.1f} s; {len(per_value)} of {k} eigenvalues "
          f"attempted, all within rtol: {reached}; HVPs per eigenvalue {per_value}")

    exact_desc = reference.eigenvalues[::-1]
    err_lanczos = np.max(np.abs(lanczos.eigenvalues - reference.eigenvalues) / np.abs(reference.eigenvalues))
    m = len(per_value)
    err_power = np.abs(power_values - exact_desc[:m]) / np.abs(exact_desc[:m])
    res_lanczos = relative_residuals(obj, w, lanczos.eigenvalues, np.asarray(lanczos.eigenvectors))
    res_power = relative_residuals(obj, w, power_values, power_vectors)
    print(f"    max relative error vs reference: Lanczos {err_lanczos:.1e}, power {err_power.max():.1e} "
          f"(both must be <= {RTOL:g})")
    print(f"    max relative residual |Hu - lam u| / |lam|: Lanczos {res_lanczos.max():.1e}, power {res_power.max():.1e}")
    bound = "" if reached and m == k else ">= "
    if bound:
        print(f"    the baseline was cut short ({np.sum(err_power <= RTOL)} of {k} eigenvalues within rtol): "
              "its HVPs and time are lower bounds, and so are the ratios")
    print(f"    ratios: {bound}{power_hvp / lanczos.n_hvp:.1f}x fewer HVPs (target >= 5x), "
          f"{bound}{t_power / t_lanczos:.1f}x less time (target >= 3x)")


if __name__ == "__main__":
    main()
