"""Phase portrait of the smallest deep linear network, L = 1/2 (w1 w2 - 1)^2 (Section 4 of the paper).

A 1-1-1 linear network f(x) = w2 w1 x fitted to one point (x, y) = (1, 1). Its gradient flow has a
saddle at the origin and a whole curve of minima, the hyperbola w1 w2 = 1: every minimum is
degenerate (one zero eigenvalue of the Hessian, along the curve), the two-dimensional picture of
the paper's Lemma 1. The portrait shows the hyperbola as a curve of equilibria, the saddle with
its stable and unstable directions, the nullclines and three gradient-flow trajectories, each
ending at the point of the hyperbola its initial condition selects. The loss is compiled from its
sympy expression (gf.symbolic). Writes phase_deep_linear.png (or the path given as argument).
"""

import sys

import numpy as np
import sympy as sp

import gradflow as gf

OUTPUT = "phase_deep_linear.png"
EXTENT = (-2.0, 2.0, -2.0, 2.0)
STARTS = ((1.5, -1.0), (-0.3, 0.4), (-1.8, 0.2))     # initial conditions of the overlaid trajectories
T_END = 20.0


def main(path: str = OUTPUT) -> None:
    w1, w2 = sp.symbols("w1 w2")
    flow = gf.GradientFlow(gf.symbolic.from_expr((w1 * w2 - 1) ** 2 / 2, [w1, w2]).compile())
    runs = {f"from ({a:g}, {b:g})": flow.solve(np.array([a, b]), t_span=(0.0, T_END)) for a, b in STARTS}
    for label, traj in runs.items():
        end = traj.w[-1]
        print(f"trajectory {label}: {traj.status}, ends at ({end[0]:.4f}, {end[1]:.4f}), w1*w2 = {end[0] * end[1]:.6f}")
    ax = gf.plot.phase_portrait(flow, extent=EXTENT, trajectories=runs)
    ax.set_title(r"$L = \frac{1}{2}(w_1 w_2 - 1)^2$")
    ax.figure.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
