"""P1-P3 (issue 4): the gradient-flow ODE, gradflow's default method against scipy, side by side in one process.

P1  L = 1/2 (w1 w2 - 1)^2 from ``gf.symbolic.from_expr(...).compile()``, w0 = (0.1, 0.2), t in [0, 50],
    rtol 1e-8, atol 1e-10, default method, against ``solve_ivp(method="RK45")`` with a plain-Python
    right-hand side.  Target >= 150x.
P2  The Figure 8 deep linear network (``DeepLinear([31, 2, 1])`` on ``gf.data.linear_teacher()``, 64
    parameters, n = 30), t in [0, 1000], rtol 1e-8, atol 1e-10, written as a user would:
    ``gf.GradientFlow(gf.Objective(...)).solve(w0, (0, 1000), rtol=1e-8, atol=1e-10)``.  Baselines: RK45
    with a plain-NumPy right-hand side written by hand, and ``scipy.integrate.odeint`` (LSODA) given the
    same numba right-hand side and Jacobian that gradflow uses.  Targets: >= 30x RK45, faster than odeint.
P3  P2 from ``M`` random initial conditions through ``solve_ensemble`` (all cores), against a loop of the
    RK45 baseline; the loop is timed on ``M_BASELINE`` of them and scaled (stated in the output).
    Target >= 40x.  When jax and diffrax are importable (the optional ``bench`` extra; not a dependency
    of gradflow), also against diffrax's ``jit(vmap(...))`` Dopri5 on the same problem: target >= 1.5x.

Every result is checked against a DOP853 reference at rtol 1e-12 before a ratio is printed: the largest
difference relative to the largest weight must be below ``CHECK``.  Compile time (first call in this process;
numba's disk cache makes later processes fast) is reported separately.  ``--quick`` shrinks P3.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.integrate

import gradflow as gf

CHECK = 1e-6
RTOL, ATOL = 1e-8, 1e-10


def _best_of(fn, repeats):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _check(name, final, reference):
    error = np.max(np.abs(final - reference)) / np.max(np.abs(reference))
    status = "ok" if error < CHECK else "MISMATCH"
    print(f"    {name:<38s} relative difference from DOP853 {error:.1e}  {status}")
    if error >= CHECK:
        raise SystemExit(f"{name} does not match the reference; no ratio printed")


def p1():
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    compiled = gf.symbolic.from_expr(sp.Rational(1, 2) * (w1 * w2 - 1) ** 2, [w1, w2]).compile()
    flow = gf.GradientFlow(compiled)
    w0 = np.array([0.1, 0.2])

    def plain(t, w):
        r = w[0] * w[1] - 1.0
        return [-r * w[1], -r * w[0]]

    start = time.perf_counter()
    flow.solve(w0, (0, 50), rtol=RTOL, atol=ATOL)
    first = time.perf_counter() - start
    ours, traj = _best_of(lambda: flow.solve(w0, (0, 50), rtol=RTOL, atol=ATOL), 20)
    base, rk = _best_of(lambda: scipy.integrate.solve_ivp(plain, (0, 50), w0, method="RK45", rtol=RTOL, atol=ATOL), 5)
    reference = scipy.integrate.solve_ivp(plain, (0, 50), w0, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
    print(f"P1  L = 1/2 (w1 w2 - 1)^2, t in [0, 50]: default method {traj.method!r}")
    _check("gradflow default", traj.final, reference)
    _check("scipy RK45, plain-Python rhs", rk.y[:, -1], reference)
    print(f"    gradflow {ours * 1e6:.1f} us (first call in this process {first:.2f} s), RK45 {base * 1e3:.2f} ms")
    print(f"    ratio RK45 / gradflow = {base / ours:.0f}x   (target >= 150x)")


def _figure_8():
    data = gf.data.linear_teacher()
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), data, loss="square")
    return obj, _figure_8_field(np, data.X, data.y, data.n)


def _figure_8_field(xnp, X, y, n):
    """-grad L for L = 1/(2n) |X W1^T W2^T - y|^2, written by hand with the NumPy-like module ``xnp``."""

    def field(t, w, *args):
        W1, W2 = w[:62].reshape(2, 31), w[62:].reshape(1, 2)
        hidden = X @ W1.T
        residual = (hidden @ W2.T)[:, 0] - y
        dW2 = residual @ hidden / n
        dW1 = xnp.outer(W2[0], residual @ X) / n
        return -xnp.concatenate([dW1.ravel(), dW2.ravel()])

    return field


def p2():
    obj, plain = _figure_8()
    flow = gf.GradientFlow(obj)
    w0 = obj.init(seed=0, scale=0.3)
    start = time.perf_counter()
    flow.solve(w0, (0, 1000), rtol=RTOL, atol=ATOL)
    first = time.perf_counter() - start
    ours, traj = _best_of(lambda: flow.solve(w0, (0, 1000), rtol=RTOL, atol=ATOL), 10)
    base, rk = _best_of(lambda: scipy.integrate.solve_ivp(plain, (0, 1000), w0, method="RK45", rtol=RTOL, atol=ATOL), 3)
    k = flow.kernels

    def f(w, t):
        out = np.empty(64)
        k.rhs(t, w, out, k.args)
        return out

    def jac(w, t):
        out = np.empty((64, 64))
        k.jac(t, w, out, k.args)
        return out

    lsoda, odeint_result = _best_of(lambda: scipy.integrate.odeint(f, w0, [0.0, 1000.0], Dfun=jac, rtol=RTOL,
                                                                   atol=ATOL, mxstep=100_000), 5)
    reference = scipy.integrate.solve_ivp(plain, (0, 1000), w0, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
    print(f"P2  Figure 8 deep linear net (P = 64, n = 30), t in [0, 1000]: default method {traj.method!r} "
          f"({traj.info['accepted_steps']} steps, {traj.nfev} gradients, {traj.info['njev']} Hessians)")
    _check("gradflow default", traj.final, reference)
    _check("scipy RK45, plain-NumPy rhs", rk.y[:, -1], reference)
    _check("scipy odeint (LSODA), numba rhs + jac", odeint_result[-1], reference)
    print(f"    gradflow {ours * 1e3:.2f} ms (first call in this process {first:.2f} s), RK45 {base * 1e3:.1f} ms, "
          f"odeint {lsoda * 1e3:.2f} ms")
    print(f"    ratio RK45 / gradflow = {base / ours:.1f}x (target >= 30x); odeint / gradflow = {lsoda / ours:.2f}x "
          "(target > 1)")
    return base


def p3(m, m_baseline, rk45_seconds):
    obj, plain = _figure_8()
    flow = gf.GradientFlow(obj)
    W0 = np.stack([obj.init(seed=s, scale=0.3) for s in range(m)])
    times = np.linspace(0, 1000, 11)
    flow.solve_ensemble(W0[:2], (0, 1000), t_eval=times, rtol=RTOL, atol=ATOL)    # compile
    ours, ensemble = _best_of(lambda: flow.solve_ensemble(W0, (0, 1000), t_eval=times, rtol=RTOL, atol=ATOL), 1)
    start = time.perf_counter()
    finals = [scipy.integrate.solve_ivp(plain, (0, 1000), W0[i], method="RK45", rtol=RTOL, atol=ATOL).y[:, -1]
              for i in range(m_baseline)]
    per_run = (time.perf_counter() - start) / m_baseline
    print(f"P3  {m} initial conditions of P2 through solve_ensemble ({ensemble.method!r}, "
          f"status {ensemble.status!r})")
    for i in range(min(m_baseline, 3)):
        reference = scipy.integrate.solve_ivp(plain, (0, 1000), W0[i], method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
        _check(f"ensemble run {i}", ensemble.w[-1, i], reference)
        _check(f"RK45 run {i}", finals[i], reference)
    loop = per_run * m
    print(f"    ensemble {ours:.2f} s; RK45 loop {loop:.1f} s (timed on {m_baseline} runs: {per_run * 1e3:.0f} ms each, "
          f"scaled to {m})")
    print(f"    ratio RK45 loop / ensemble = {loop / ours:.0f}x   (target >= 40x)")
    try:
        import diffrax  # noqa: F401
        import jax  # noqa: F401
    except ImportError:
        print("    diffrax / jax not importable: the diffrax comparison is skipped (pip install -e '.[bench]' to run it)")
        return
    p3_diffrax(obj, W0, times, ours)


def p3_diffrax(obj, W0, times, ours):
    """P3 against diffrax: the same vector field in jax.numpy, ``jit(vmap(diffeqsolve))`` with Dopri5 and a PID
    step-size controller at the same tolerances, float64, on the same initial conditions and output times."""
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    field = _figure_8_field(jnp, jnp.asarray(obj.data.X), jnp.asarray(obj.data.y), obj.data.n)
    plain = _figure_8_field(np, obj.data.X, obj.data.y, obj.data.n)

    def solve(w0):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Dopri5(), t0=0.0, t1=1000.0, dt0=None, y0=w0,
            saveat=diffrax.SaveAt(ts=jnp.asarray(times)),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL), max_steps=1_000_000).ys

    batched = jax.jit(jax.vmap(solve))
    W0j = jnp.asarray(W0)
    start = time.perf_counter()
    batched(W0j).block_until_ready()
    compile_s = time.perf_counter() - start
    theirs, ys = _best_of(lambda: batched(W0j).block_until_ready(), 2)
    ys = np.asarray(ys)
    for i in range(3):
        reference = scipy.integrate.solve_ivp(plain, (0, 1000), W0[i], method="DOP853", rtol=1e-12,
                                              atol=1e-14).y[:, -1]
        _check(f"diffrax run {i}", ys[i, -1], reference)
    print(f"    diffrax {diffrax.__version__} (jax {jax.__version__}) jit+vmap Dopri5 on {jax.devices()[0]}: "
          f"{theirs:.2f} s (+ {compile_s:.1f} s jit compile); gradflow {ours:.2f} s")
    print(f"    ratio diffrax / gradflow ensemble = {theirs / ours:.1f}x   (target >= 1.5x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="P3 on 100 initial conditions instead of 1,000")
    args = parser.parse_args()
    p1()
    rk45 = p2()
    p3(100 if args.quick else 1000, 5 if args.quick else 20, rk45)


if __name__ == "__main__":
    main()
