"""Phase portrait of the logistic loss on one separable point: the valley slopes down to infinity.

The 1-1-1 deep linear network f(x) = w2 w1 x with the logistic loss on one point (x, y) = (1, 1),
L = log(1 + exp(-w1 w2)). The data are separable, so L > 0 everywhere and tends to 0 only as
w1 w2 -> +infinity: there is no minimum at all, only the saddle at the origin, and the flow runs
down the valley along the hyperbolas w1 w2 = c towards infinity ("for the cross-entropy loss, the
degenerate valley, instead of being flat, is slightly sloped downwards for |w| -> infinity",
Figure 2's caption). Multi-start Newton finds the saddle and nothing else. Writes
phase_logistic.png (or the path given as argument).
"""

import sys

import numpy as np

import gradflow as gf

OUTPUT = "phase_logistic.png"
EXTENT = (-3.0, 3.0, -3.0, 3.0)
STARTS = ((0.5, -0.4), (-0.6, -0.2))
T_END = 60.0


def main(path: str = OUTPUT) -> None:
    data = gf.Dataset(np.ones((1, 1)), np.ones(1))
    obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), data, loss="logistic")
    flow = gf.GradientFlow(obj)
    runs = {f"from ({a:g}, {b:g})": flow.solve(np.array([a, b]), t_span=(0.0, T_END)) for a, b in STARTS}
    for label, traj in runs.items():
        end = traj.w[-1]
        print(f"trajectory {label}: at t = {T_END:g}, |w| = {np.linalg.norm(end):.3f}, L = {traj.loss[-1]:.3e}")
    ax = gf.plot.phase_portrait(flow, extent=EXTENT, trajectories=runs)
    ax.set_title(r"$L = \log(1 + e^{-w_1 w_2})$")
    ax.figure.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
