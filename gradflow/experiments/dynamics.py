r"""The paper's dynamical-systems argument on the systems small enough to see whole (Section 4).

One experiment, ``dynamics``: the 2-parameter deep linear network
:math:`L = \frac12(w_1 w_2 - 1)^2` (a saddle at the origin and a hyperbola of
degenerate minima), the same loss with weight decay (isolated hyperbolic
sinks), and the Figure 8 network with weight decay.  It runs the checks of
:mod:`gradflow.checks` on them and draws their phase portraits:

- Hartman–Grobman applies at hyperbolic equilibria (the saddle, the
  weight-decayed sinks) and the flow is conjugate to its linearization there;
  at the degenerate minima it does not apply;
- the minima form a center manifold of equilibria (reduced field zero, the
  series equal to the hyperbola's expansion), and nearby solutions approach it
  exponentially at the rate of the smallest nonzero eigenvalue (the emergence
  theorem);
- "with weight decay the stable points will all be hyperbolic" (Section 4):
  measured on the 2-parameter net and on the Figure 8 deep linear net.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sympy as sp

from .._verdict import combine, verdict_of
from ..data import linear_teacher
from ..flow import GradientFlow
from ..linearize import find_equilibrium, linearize
from ..manifolds import center_attraction, center_manifold, hartman_grobman
from ..models import DeepLinear
from ..objective import Objective
from ..symbolic import from_expr
from ._core import Claim, ExperimentResult, new_figure, register, save_figure

__all__ = ["dynamics", "DynamicsSetup", "SETUPS", "WEIGHT_DECAY", "FIG8_WEIGHT_DECAY"]

TITLE = "Hartman-Grobman, center manifolds and weight decay on small nets"
#: gradflow's weight decay gamma in L + (gamma/2)||w||^2 for the 2-parameter net (sinks at +-sqrt(1 - gamma)(1, 1)).
WEIGHT_DECAY = 0.2
#: Weight decay of the Figure 8 network (DeepLinear([31, 2, 1]) on the linear teacher).
FIG8_WEIGHT_DECAY = 0.1
#: The flow time used to bring the Figure 8 network near a minimum before Newton refines it.
FIG8_SETTLE_TIME = 2000.0
#: The window of the phase portraits, (w1_min, w1_max, w2_min, w2_max).
WINDOW = (-2.0, 2.0, -2.0, 2.0)


@dataclasses.dataclass(frozen=True)
class DynamicsSetup:
    """Sizes of one run: Hartman–Grobman samples, the center manifold's order, the attraction samples."""

    hg_samples: int
    hg_radius: float
    order: int
    attraction_samples: int


SETUPS = {
    "quick": DynamicsSetup(hg_samples=16, hg_radius=1e-2, order=4, attraction_samples=4),
    "full": DynamicsSetup(hg_samples=64, hg_radius=1e-2, order=6, attraction_samples=16),
}


def _two_parameter():
    w1, w2 = sp.symbols("w1 w2")
    sym = from_expr(sp.Rational(1, 2) * (w1 * w2 - 1) ** 2, [w1, w2])
    return sym, sym.compile()


def _fig8_minimum(seed: int):
    """A minimum of the Figure 8 net with weight decay: the flow from a random start, then Newton."""
    obj = Objective(DeepLinear([31, 2, 1]), linear_teacher(), weight_decay=FIG8_WEIGHT_DECAY)
    settled = GradientFlow(obj).solve(obj.init(seed=seed, scale=0.5), (0.0, FIG8_SETTLE_TIME), rtol=1e-10,
                                      atol=1e-12).final
    eq = find_equilibrium(obj, settled)
    return obj, eq, linearize(obj, eq.w)


def _rotation_direction(obj: Objective, w) -> np.ndarray:
    r"""The unit tangent of :math:`W_1 \to A W_1,\ W_2 \to W_2 A^\top` (:math:`A` a rotation of the 2 hidden units)."""
    W1, W2 = obj.unflatten(w)
    generator = np.array([[0.0, -1.0], [1.0, 0.0]])
    tangent = obj.flatten([generator @ W1, -W2 @ generator])
    return np.asarray(tangent) / np.linalg.norm(tangent)


def _hyperbola_error(cm, radius: float) -> float:
    """Largest |w1 w2 - 1| on the center manifold's series, over |u| <= radius (zero on the true manifold)."""
    us = np.linspace(-radius, radius, 21)
    return float(max(abs(float(np.prod(cm.lift(np.array([u])))) - 1.0) for u in us))


def _portraits(out_dir, compiled, decayed) -> str:
    from .. import plot

    fig, axes = new_figure(1, 2, 9.0, 4.0)
    plot.phase_portrait(GradientFlow(compiled), extent=WINDOW, ax=axes[0, 0], colorbar=False)
    axes[0, 0].set_title(r"$L = \frac{1}{2}(w_1 w_2 - 1)^2$: saddle and a curve of minima")
    plot.phase_portrait(GradientFlow(decayed), extent=WINDOW, ax=axes[0, 1], colorbar=False)
    axes[0, 1].set_title(rf"with weight decay $\gamma = {WEIGHT_DECAY:g}$: hyperbolic sinks")
    return save_figure(fig, out_dir, "dynamics.png")


@register("dynamics", TITLE, "Section 4 (Hartman-Grobman, center manifold emergence); Figure 2")
def dynamics(size: str, seed: int, out_dir) -> ExperimentResult:
    """Hartman–Grobman, the center manifold and its attraction, and weight decay, on the 2-parameter net and Figure 8's.

    The checks are those of :mod:`gradflow.checks`; every number in the claims is measured here.
    """
    cfg = SETUPS[size]
    sym, compiled = _two_parameter()
    decayed = compiled.with_weight_decay(WEIGHT_DECAY)
    flow, flow_decayed = GradientFlow(compiled), GradientFlow(decayed)
    origin, minimum = np.zeros(2), np.ones(2)
    sink = np.sqrt(1.0 - WEIGHT_DECAY) * np.ones(2)

    hg_saddle = hartman_grobman(flow, origin, radius=cfg.hg_radius, samples=cfg.hg_samples, seed=seed)
    hg_sink = hartman_grobman(flow_decayed, sink, radius=cfg.hg_radius, samples=cfg.hg_samples, seed=seed)
    hg_minimum = hartman_grobman(flow, minimum, radius=cfg.hg_radius, samples=cfg.hg_samples, seed=seed)
    cm = center_manifold(sym, minimum, order=cfg.order)
    curve_error = _hyperbola_error(cm, 0.1)
    attraction = center_attraction(flow, minimum, samples=cfg.attraction_samples, seed=seed)
    lin_sink = linearize(decayed, sink)
    fig8, fig8_eq, fig8_lin = _fig8_minimum(seed)
    rotation = _rotation_direction(fig8, fig8_eq.w)
    rotation_overlap = (float(np.linalg.norm(fig8_lin.center.T @ rotation)) if fig8_lin.nullity else 0.0)

    hg_claim = Claim(
        "Section 4, Hartman-Grobman theorem",
        "Near a hyperbolic equilibrium the flow dW/dt = -grad L is topologically conjugate to its linearization "
        "dU/dt = -HU.",
        combine([hg_saddle.verdict, hg_sink.verdict]),
        f"saddle of (1/2)(w1 w2 - 1)^2 at 0: {hg_saddle.verdict}; the conjugacy h is injective on the samples "
        f"({hg_saddle.injective}) and |h - id|/r = {hg_saddle.h_minus_id:.2g} shrinks with the radius (log-log slope "
        f"{hg_saddle.curve_slope:.2f}: the nonlinear and linearized flows agree as r -> 0). Sink at "
        f"sqrt(1 - gamma)(1, 1) with weight decay {WEIGHT_DECAY:g}: {hg_sink.verdict}; injective {hg_sink.injective}, "
        f"|h - id|/r = {hg_sink.h_minus_id:.2g} (slope {hg_sink.curve_slope:.2f}). The conjugacy equation itself holds "
        f"to the integration accuracy ({hg_saddle.conjugacy_error:.1g} and {hg_sink.conjugacy_error:.1g}; h is built "
        "from the flow, so this only checks the integration). "
        f"{cfg.hg_samples} samples on a ball of radius {cfg.hg_radius:g} each.")
    degenerate = (not hg_minimum.applies) and hg_minimum.kind == "non-hyperbolic" and cm.flat
    manifold_claim = Claim(
        "Section 4.1, Figure 2; center manifold existence theorem",
        "At a zero-loss minimum of an overparametrized net the Hessian is degenerate, so Hartman-Grobman does not "
        "apply; the minima form a center manifold (the flat valley of Figure 2), which is not unstable.",
        verdict_of(degenerate and cm.verdict == "holds" and curve_error < 1e-3),
        f"at (1, 1): kind {hg_minimum.kind}, dims {hg_minimum.dims}; the theorem does not apply "
        f"(applies = {hg_minimum.applies}); along the center direction the linearized flow is frozen and the "
        f"nonlinear one drifts {hg_minimum.center_drift:.2g} x radius (a manifold of equilibria). Center-manifold "
        f"series to order {cfg.order}: reduced field {'identically zero' if cm.flat else 'nonzero'} "
        f"({cm.stability}), verdict {cm.verdict}; on it |w1 w2 - 1| <= {curve_error:.2g} for |u| <= 0.1 "
        "(the true manifold is the hyperbola w1 w2 = 1).")
    attraction_claim = Claim(
        "Section 4, center manifold emergence theorem",
        "All solutions from a neighbourhood of W* tend exponentially fast to a solution in the center manifold.",
        attraction.verdict,
        f"{cfg.attraction_samples} starts within {attraction.radius:g} of (1, 1): fitted rate "
        f"{_fmt(attraction.rate)} against the smallest nonzero eigenvalue {_fmt(attraction.predicted_rate)} "
        f"(tolerance {attraction.rate_rtol:g}); {attraction.message}")
    decay_ok = lin_sink.is_hyperbolic and fig8_lin.is_hyperbolic
    weight_decay_claim = Claim(
        "Section 4",
        "With the regularized loss L + gamma ||W||^2, gamma small and positive, the stable points of the dynamical "
        "system will all be hyperbolic.",
        verdict_of(decay_ok),
        f"2-parameter net, gamma = {WEIGHT_DECAY:g}: the sink's Jacobian eigenvalues "
        f"{np.array2string(lin_sink.eigenvalues, precision=3)} ({lin_sink.kind}). Figure 8 net DeepLinear([31, 2, 1]), "
        f"gamma = {FIG8_WEIGHT_DECAY:g}: at the minimum reached (|grad L| = {fig8_eq.grad_norm:.1e}) the Hessian has "
        f"{fig8_lin.nullity} zero eigenvalue(s) (largest |mu| counted as zero {fig8_lin.zero_max:.1e}, smallest "
        f"nonzero {fig8_lin.nonzero_min:.2g}): kind {fig8_lin.kind}. The null direction is the rotation of the two "
        f"hidden units, W1 -> A W1, W2 -> W2 A^T (A orthogonal), which leaves both the data loss and ||W||^2 "
        f"unchanged (overlap {rotation_overlap:.6f}). Weight decay removes the degeneracy of feature regression "
        "and of this 2-parameter net, not that of symmetries.")
    claims = (hg_claim, manifold_claim, attraction_claim, weight_decay_claim)
    figure = _portraits(out_dir, compiled, decayed)

    setup = {
        "two_parameter_loss": "L = (1/2)(w1 w2 - 1)^2 (gf.symbolic.from_expr, compiled)",
        "weight_decay": f"gamma = {WEIGHT_DECAY:g} in L + (gamma/2)||w||^2 (the paper writes gamma ||W||^2)",
        "hartman_grobman": {"radius": cfg.hg_radius, "samples": cfg.hg_samples, "seed": seed},
        "center_manifold_order": cfg.order,
        "attraction_samples": cfg.attraction_samples,
        "figure8": f"DeepLinear([31, 2, 1]) on gf.data.linear_teacher(), weight decay {FIG8_WEIGHT_DECAY:g}, flow to "
                   f"t = {FIG8_SETTLE_TIME:g} from obj.init(seed={seed}, scale=0.5), then Newton",
    }
    measurements = {
        "saddle": {"kind": hg_saddle.kind, "conjugacy_error": hg_saddle.conjugacy_error,
                   "h_minus_id": hg_saddle.h_minus_id, "curve_slope": hg_saddle.curve_slope},
        "sink_weight_decay": {"kind": hg_sink.kind, "eigenvalues": lin_sink.eigenvalues.tolist(),
                              "conjugacy_error": hg_sink.conjugacy_error, "h_minus_id": hg_sink.h_minus_id,
                              "curve_slope": hg_sink.curve_slope},
        "minimum": {"kind": hg_minimum.kind, "center_drift": hg_minimum.center_drift,
                    "reduced_field": [str(e) for e in cm.reduced_series], "graph": [str(e) for e in cm.graph_series],
                    "hyperbola_error": curve_error},
        "attraction": {"rate": attraction.rate, "predicted_rate": attraction.predicted_rate},
        "figure8_weight_decay": {"nullity": int(fig8_lin.nullity), "kind": fig8_lin.kind,
                                 "grad_norm": fig8_eq.grad_norm, "zero_max": fig8_lin.zero_max,
                                 "nonzero_min": fig8_lin.nonzero_min, "rotation_overlap": rotation_overlap},
    }
    arrays = {"attraction_times": attraction.times, "attraction_distances": attraction.distances,
              "hg_radii": hg_sink.radii, "hg_sink_curve": hg_sink.h_minus_id_curve,
              "figure8_eigenvalues": fig8_lin.eigenvalues}
    notes = ("The Hartman-Grobman conjugacy h is computed by flowing each sample into a small ball (sinks) or out to "
             "a sphere (saddles, through the stable and unstable fibres) and mapping back with the linear flow; "
             "what can fail is hyperbolicity, injectivity and |h - id| shrinking with the radius.")
    return ExperimentResult("dynamics", TITLE, size, seed, setup, measurements, claims, (figure,), arrays, notes)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"
