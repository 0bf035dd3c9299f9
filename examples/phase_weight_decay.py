"""Phase portrait of L = 1/2 (w1 w2 - 1)^2 + gamma/2 (w1^2 + w2^2): weight decay makes the minima isolated.

With gamma = 0 the minima of the 1-1-1 deep linear network form the hyperbola w1 w2 = 1, all
degenerate (phase_deep_linear.py). A weight decay gamma < 1 leaves two isolated minima at
w1 = w2 = +-sqrt(1 - gamma), both hyperbolic sinks (no zero eigenvalue), and the saddle at the
origin: the "regularized, hyperbolic" situation of Section 4 of the paper. The script checks the
sinks against that closed form. Writes phase_weight_decay.png (or the path given as argument).
"""

import sys

import numpy as np

import gradflow as gf

OUTPUT = "phase_weight_decay.png"
GAMMA = 0.2
EXTENT = (-2.0, 2.0, -2.0, 2.0)
STARTS = ((1.5, -1.0), (-0.3, 0.4))
T_END = 40.0


def main(path: str = OUTPUT) -> None:
    data = gf.Dataset(np.ones((1, 1)), np.ones(1))
    obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), data, weight_decay=GAMMA)
    flow = gf.GradientFlow(obj)
    expected = np.sqrt(1.0 - GAMMA)
    for sign in (1.0, -1.0):
        eq = gf.find_equilibrium(obj, sign * np.array([1.0, 1.0]))
        lin = gf.linearize(obj, eq.w)
        print(f"minimum at ({eq.w[0]:.6f}, {eq.w[1]:.6f}), expected +-{expected:.6f}: {lin.kind}, "
              f"Jacobian eigenvalues {np.array2string(lin.eigenvalues, precision=4)}")
    runs = {f"from ({a:g}, {b:g})": flow.solve(np.array([a, b]), t_span=(0.0, T_END)) for a, b in STARTS}
    ax = gf.plot.phase_portrait(flow, extent=EXTENT, trajectories=runs)
    ax.set_title(rf"$L = \frac{{1}}{{2}}(w_1 w_2 - 1)^2 + \frac{{\gamma}}{{2}}\|w\|^2$, $\gamma = {GAMMA:g}$")
    ax.figure.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
