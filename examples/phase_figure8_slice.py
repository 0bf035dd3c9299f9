"""A slice of the Figure 8 network's loss through a converged minimum, along a stable and a center direction.

The student of the paper's Figure 8: a two-layer linear network W2 W1 x with 2 hidden units
(64 parameters) fitted to n = 30 points labelled by a two-layer linear teacher with one hidden unit
(d = 31 inputs including the bias), square loss. Gradient flow from a small random initialization
converges to a zero-loss minimum; find_equilibrium refines it to machine precision, and its
Hessian has many zero eigenvalues (Lemma 1, Theorem 3). The portrait shows the flow projected
onto the plane through that minimum spanned by the top stable eigenvector (the stiffest direction,
the largest Hessian eigenvalue) and a center eigenvector (a zero eigenvalue): the valley is flat
along the center direction, a manifold of minima drawn as a curve (traced through the full
64-dimensional space by continuation and projected), and steep across it, the many-dimensional
version of the paper's Figure 2 (Proposition 1). Writes phase_figure8_slice.png (or the path given
as argument).
"""

import sys

import numpy as np

import gradflow as gf

OUTPUT = "phase_figure8_slice.png"
EXTENT = (-1.0, 1.0, -1.0, 1.0)
T_END = 2000.0
INIT_SCALE = 0.3


def main(path: str = OUTPUT) -> None:
    obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())
    flow = gf.GradientFlow(obj)
    traj = flow.solve(obj.init(seed=0, scale=INIT_SCALE), t_span=(0.0, T_END))
    eq = gf.find_equilibrium(obj, traj)
    lin = gf.linearize(obj, eq.w)
    print(f"P = {obj.size}: flow {traj.status}, final loss {traj.loss[-1]:.2e}; Newton-refined loss {eq.loss:.2e}, "
          f"|grad L| = {eq.grad_norm:.2e}")
    print(f"linearization: {lin.kind}, dims {lin.dims}, top Hessian eigenvalue {-lin.eigenvalues[0]:.4f}, "
          f"gap {lin.gap:.2e}")
    ax = gf.plot.phase_portrait(flow, w_center=eq.w, directions=("stable", "center"), extent=EXTENT)
    ax.set_title(r"Figure 8 network near $w^*$")
    ax.figure.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
