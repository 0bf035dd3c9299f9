"""Phase portraits, landscapes, spectra and training curves (issue 7): assertions on what was drawn.

Everything runs on matplotlib's Agg backend.  The portraits are checked against the known phase
portraits: L = 1/2 (w1 w2 - 1)^2 has one saddle (the origin) and a hyperbola of degenerate minima;
with weight decay gamma the hyperbola gives way to two hyperbolic sinks at +-sqrt(1 - gamma)(1, 1);
the logistic loss on one separable point has the saddle only; an isolated degenerate minimum
(w1^4/4 + w2^2/2) is one non-hyperbolic marker, not a curve.

Image comparisons
-----------------
``test_reference_images_match_the_baselines`` renders three reference figures without any text
(titles, tick labels, axis labels and legends removed before saving, so that font differences
between machines do not matter) at a fixed size and dpi, and compares them with the PNGs in
``tests/baseline_images/`` using ``matplotlib.testing.compare.compare_images`` (RMS tolerance
``IMAGE_TOL``).  To regenerate the baselines after an intended change of the figures, run::

    GRADFLOW_REGENERATE_BASELINES=1 python -m pytest -q -p no:cacheprovider tests/test_plot.py -k reference

and look at the new PNGs before committing them.
"""

import os
import pathlib
import runpy
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402
from matplotlib.testing.decorators import remove_ticks_and_titles  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow import plot  # noqa: E402
from gradflow.linearize import NotAnEquilibriumWarning  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASELINES = pathlib.Path(__file__).resolve().parent / "baseline_images"
IMAGE_TOL = 6.0          # RMS difference (0-255 grey levels) allowed between a rendering and its baseline
REGENERATE = os.environ.get("GRADFLOW_REGENERATE_BASELINES") == "1"
GAMMA = 0.2


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- systems
def _one_point(loss="square", weight_decay=0.0):
    """The 1-1-1 deep linear net on (x, y) = (1, 1): L = 1/2 (w1 w2 - 1)^2 (square loss)."""
    return gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)), loss=loss,
                        weight_decay=weight_decay)


class Quartic:
    """L = w1^4 / 4 + w2^2 / 2: one isolated minimum, degenerate (a zero eigenvalue along w1)."""

    size = 2

    def value(self, w):
        w = np.asarray(w, dtype=float)
        return w[..., 0] ** 4 / 4 + w[..., 1] ** 2 / 2

    def grad(self, w):
        w = np.asarray(w, dtype=float)
        return np.stack([w[..., 0] ** 3, w[..., 1]], axis=-1)

    def hessian(self, w):
        return np.diag([3 * float(w[0]) ** 2, 1.0])

    def hvp(self, w, v):
        return np.asarray(v, dtype=float) @ self.hessian(w)


@pytest.fixture(scope="module")
def small_net():
    """A DeepLinear([4, 2, 1]) student at a zero-loss minimum of teacher data (P = 10, degenerate)."""
    data = gf.data.linear_teacher(n=3, n_test=4, d=4)
    obj = gf.Objective(gf.models.DeepLinear([4, 2, 1]), data)
    traj = gf.GradientFlow(obj).solve(obj.init(seed=1, scale=0.5), t_span=(0.0, 500.0))
    eq = gf.find_equilibrium(obj, traj)
    assert eq.converged and eq.loss < 1e-20
    return obj, np.asarray(eq.w)


def _markers(ax):
    """{kind: [(x, y), ...]} of the equilibrium markers drawn."""
    out = {}
    for line in ax.lines:
        gid = line.get_gid() or ""
        if gid.startswith("equilibrium:"):
            out.setdefault(gid.split(":", 1)[1], []).append((float(line.get_xdata()[0]), float(line.get_ydata()[0])))
    return out


def _gid_lines(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


def _stream_pieces(ax):
    """Consecutive vertex pairs ``(a, b)`` of the streamlines (older matplotlib: 2-point segments; newer: polylines)."""
    stream, = [c for c in ax.collections if c.get_gid() == "streamlines"]
    pieces = [(s[i], s[i + 1]) for s in stream.get_segments() for i in range(len(s) - 1)]
    return [(a, b) for a, b in pieces if np.linalg.norm(b - a) > 1e-6]


def _legend_texts(ax):
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


# ============================================================================= phase_portrait
def test_hyperbola_portrait_marks_one_saddle_and_draws_the_minima_as_two_curves():
    ax = plot.phase_portrait(_one_point(), extent=(-2, 2, -2, 2))
    markers = _markers(ax)
    assert list(markers) == ["saddle"] and len(markers["saddle"]) == 1
    np.testing.assert_allclose(markers["saddle"][0], [0.0, 0.0], atol=1e-9)
    curves = _gid_lines(ax, "manifold")
    assert len(curves) == 2                                       # the two branches of w1 w2 = 1
    for line in curves:
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert len(x) > 20                                        # a line, not a few scattered points
        np.testing.assert_allclose(x * y, 1.0, atol=1e-9)         # every vertex is a minimum
        inside = (np.abs(x) <= 2) & (np.abs(y) <= 2)
        # the branch crosses the whole window: from the edge y = +-2 to the edge x = +-2
        assert np.max(np.abs(y[inside])) > 1.9 and np.max(np.abs(x[inside])) > 1.9
        assert np.all(np.hypot(np.diff(x), np.diff(y)) < 0.1)     # consecutive vertices: a connected curve


def test_streamlines_follow_minus_the_gradient():
    obj = _one_point()
    ax = plot.phase_portrait(obj, extent=(-2, 2, -2, 2), equilibria=False, manifolds=False)
    pieces = _stream_pieces(ax)
    assert len(pieces) > 200
    a, b = np.array([p[0] for p in pieces]), np.array([p[1] for p in pieces])
    field = -obj.grad(0.5 * (a + b))
    speed = np.linalg.norm(field, axis=1)
    keep = speed > 0.1                     # near the equilibria the grid-interpolated direction is unreliable
    cosines = np.sum((b - a) * field, axis=1)[keep] / (np.linalg.norm(b - a, axis=1)[keep] * speed[keep])
    assert keep.sum() > 0.8 * len(pieces) and np.min(cosines) > 0.95   # each piece runs along -grad L, not against it


def test_portrait_has_labels_legend_loss_background_and_nullclines():
    ax = plot.phase_portrait(_one_point(), extent=(-2, 2, -2, 2))
    assert ax.get_xlabel() == "$w_{1}$" and ax.get_ylabel() == "$w_{2}$"
    texts = _legend_texts(ax)
    for expected in ("saddle", "equilibria (manifold)", "stable direction", "unstable direction",
                     r"$\dot w_{1} = 0$", r"$\dot w_{2} = 0$"):
        assert expected in texts
    assert any(c.get_gid() == "loss" for c in ax.collections)
    nullclines = [c for c in ax.collections if c.get_gid() == "nullcline"]
    assert len(nullclines) == 2
    # w1' = -w2 (w1 w2 - 1) vanishes on w2 = 0: its nullcline contains points (x, 0) across the window
    vertices = np.concatenate([p.vertices for p in nullclines[0].get_paths()])
    on_axis = vertices[np.abs(vertices[:, 1]) < 1e-9]
    assert on_axis[:, 0].min() < -1.9 and on_axis[:, 0].max() > 1.9
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-2.0, 2.0)


def test_saddle_eigen_directions_are_drawn_along_the_eigenvectors():
    ax = plot.phase_portrait(_one_point(), extent=(-2, 2, -2, 2), manifolds=False)
    stable, = _gid_lines(ax, "direction:stable")
    unstable, = _gid_lines(ax, "direction:unstable")
    # at the origin H = [[0, -1], [-1, 0]]: stable along (1, -1), unstable along (1, 1)
    for line, expected in ((stable, [1, -1]), (unstable, [1, 1])):
        x, y = line.get_xdata(), line.get_ydata()
        d = np.array([x[1] - x[0], y[1] - y[0]])
        assert abs(np.dot(d, expected)) / (np.linalg.norm(d) * np.sqrt(2)) == pytest.approx(1.0, abs=1e-9)
        assert line.get_linestyle() == ("-" if line is stable else ":")


def test_weight_decay_gives_two_isolated_sinks_and_no_curve_of_minima():
    ax = plot.phase_portrait(_one_point(weight_decay=GAMMA), extent=(-2, 2, -2, 2))
    markers = _markers(ax)
    assert sorted(markers) == ["saddle", "sink"]
    assert len(markers["saddle"]) == 1 and len(markers["sink"]) == 2
    r = np.sqrt(1 - GAMMA)
    np.testing.assert_allclose(sorted(markers["sink"]), [(-r, -r), (r, r)], atol=1e-8)
    assert _gid_lines(ax, "manifold") == []
    assert "equilibria (manifold)" not in _legend_texts(ax) and "sink" in _legend_texts(ax)
    assert len(_gid_lines(ax, "direction:stable")) == 2 * 2 + 1   # both eigenvectors at each sink, one at the saddle


def test_logistic_loss_on_a_separable_point_has_only_the_saddle():
    ax = plot.phase_portrait(_one_point(loss="logistic"), extent=(-3, 3, -3, 3))
    assert {k: len(v) for k, v in _markers(ax).items()} == {"saddle": 1}
    assert _gid_lines(ax, "manifold") == []


def test_an_isolated_degenerate_minimum_is_a_non_hyperbolic_marker_not_a_curve():
    ax = plot.phase_portrait(Quartic(), extent=(-1, 1, -1, 1))
    markers = _markers(ax)
    assert list(markers) == ["non-hyperbolic"] and len(markers["non-hyperbolic"]) == 1
    np.testing.assert_allclose(markers["non-hyperbolic"][0], [0.0, 0.0], atol=1e-3)
    assert _gid_lines(ax, "manifold") == []
    center, = _gid_lines(ax, "direction:center")
    assert center.get_linestyle() == "--" and np.ptp(center.get_ydata()) == pytest.approx(0.0, abs=1e-12)



@pytest.mark.parametrize("n_starts", [6, 7])
def test_the_crossing_of_two_lines_of_minima_is_non_hyperbolic_whether_or_not_a_start_lies_on_it(n_starts):
    """L = (w1 w2)^2 / 2 >= 0 has no saddle; with 6 starts Newton only approaches 0 linearly (|w| ~ 1e-4), where
    the Hessian is ~1e-7 with eigenvalues of both signs (it was marked a saddle)."""
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    ax = plot.phase_portrait(gf.symbolic.from_expr((w1 * w2) ** 2 / 2, [w1, w2]).compile(), n_starts=n_starts,
                             resolution=15)
    markers = _markers(ax)
    assert set(markers) <= {"non-hyperbolic"}
    if n_starts == 6:                                   # no start on the axes: the crossing alone, as a marker
        assert min(np.hypot(*xy) for xy in markers["non-hyperbolic"]) < 1e-2
    else:                                               # starts on the axes: the two lines of minima are traced
        assert len(_gid_lines(ax, "manifold")) == 2

def test_slice_of_a_network_through_a_minimum_along_named_directions(small_net):
    obj, w_star = small_net
    lin = gf.linearize(obj, w_star)
    assert lin.kind == "non-hyperbolic"
    ax = plot.phase_portrait(obj, w_center=w_star, directions=("stable", "center"), extent=(-0.5, 0.5, -0.5, 0.5),
                             n_starts=2, resolution=31)
    assert ax.get_xlabel() == r"$\alpha$ (stable)" and ax.get_ylabel() == r"$\beta$ (center)"
    assert _markers(ax) == {"non-hyperbolic": [(0.0, 0.0)]}
    assert len(_gid_lines(ax, "direction:stable")) >= 1 and len(_gid_lines(ax, "direction:center")) >= 1
    stable = _gid_lines(ax, "direction:stable")[0]
    assert np.ptp(stable.get_ydata()) == pytest.approx(0.0, abs=1e-9)     # the top stable vector is the alpha axis
    curve, = _gid_lines(ax, "manifold")
    # the manifold leaves w* along the center direction (beta), tangent to it
    x, y = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    near = np.abs(y) < 0.05
    assert np.ptp(y) > 0.5 and np.max(np.abs(x[near])) < 1e-2


def test_a_coordinate_plane_of_a_larger_network_reads_the_weights_and_marks_the_centre(small_net):
    obj, w_star = small_net
    i, j = 0, 5
    extent = (w_star[i] - 0.3, w_star[i] + 0.3, w_star[j] - 0.3, w_star[j] + 0.3)
    ax = plot.phase_portrait(obj, w_center=w_star, plane=(i, j), extent=extent, n_starts=2, resolution=21)
    assert ax.get_xlabel() == "$w_{1}$" and ax.get_ylabel() == "$w_{6}$"
    (x, y), = _markers(ax)["non-hyperbolic"]
    assert (x, y) == pytest.approx((w_star[i], w_star[j]), abs=1e-9)


def test_landscape_slice_through_a_network_minimum_touches_zero_loss_and_a_shifted_one_does_not(small_net):
    obj, w_star = small_net
    ax = plot.landscape(obj, w_star, ("stable", "center"), (-0.5, 0.5, -0.5, 0.5), kind="contour", resolution=21)
    levels = next(c for c in ax.collections if c.get_gid() == "loss").levels
    assert levels[0] <= 1e-12 and ax.get_xlabel() == r"$\alpha$ (stable)"
    shifted = w_star + 0.3 * np.linalg.eigh(obj.hessian(w_star))[1][:, -1]     # off the valley, along the top
    ax = plot.landscape(obj, shifted, [np.eye(obj.size)[0], np.eye(obj.size)[1]], (-0.05, 0.05, -0.05, 0.05),
                        kind="contour", resolution=11)
    levels = next(c for c in ax.collections if c.get_gid() == "loss").levels
    assert levels[0] > 1e-3


def test_slice_streamlines_are_the_projected_field(small_net):
    obj, w_star = small_net
    rng = np.random.default_rng(2)
    D = rng.standard_normal((obj.size, 2))
    ax = plot.phase_portrait(obj, w_center=w_star, directions=D, extent=(-0.3, 0.3, -0.3, 0.3), resolution=25,
                             equilibria=False, manifolds=False, loss=False)
    pinv = np.linalg.pinv(D)
    checked = 0
    for a, b in _stream_pieces(ax)[::25]:
        w = w_star + D @ (0.5 * (a + b))
        v = pinv @ -obj.grad(w)
        if np.linalg.norm(v) < 1e-3:
            continue
        assert np.dot(b - a, v) / (np.linalg.norm(b - a) * np.linalg.norm(v)) > 0.95
        checked += 1
    assert checked > 10


def test_trajectories_are_projected_onto_the_plane(small_net):
    obj, w_star = small_net
    rng = np.random.default_rng(3)
    D = np.linalg.qr(rng.standard_normal((obj.size, 2)))[0]
    path = w_star + rng.standard_normal((15, obj.size)) * 0.1
    ax = plot.phase_portrait(obj, w_center=w_star, directions=D, extent=(-1, 1, -1, 1), resolution=15,
                             equilibria=False, loss=False, trajectories={"path": path})
    line = _gid_lines(ax, "trajectory")[0]
    np.testing.assert_allclose(np.c_[line.get_xdata(), line.get_ydata()], (path - w_star) @ D, atol=1e-12)
    assert "path" in _legend_texts(ax)


def test_a_batched_trajectory_draws_every_run_and_a_coordinate_plane_reads_the_weights():
    obj = _one_point()
    runs = gf.GradientFlow(obj).solve_ensemble(np.array([[1.5, -1.0], [-0.3, 0.4], [-1.8, 0.2]]), t_span=(0, 10))
    ax = plot.phase_portrait(obj, extent=(-2, 2, -2, 2), trajectories=runs, equilibria=False, manifolds=False)
    lines = [line for line in _gid_lines(ax, "trajectory") if len(line.get_xdata()) > 1]
    assert len(lines) == 3
    for j, line in enumerate(lines):
        np.testing.assert_allclose(line.get_xdata(), runs.w[:, j, 0])
        np.testing.assert_allclose(line.get_ydata(), runs.w[:, j, 1])



def test_every_run_of_a_labelled_batch_is_drawn_in_the_style_of_its_label():
    obj = _one_point()
    flow = gf.GradientFlow(obj)
    t_eval = np.linspace(0, 5, 11)
    a = flow.solve_ensemble(np.array([[1.5, -1.0], [-0.3, 0.4], [-1.8, 0.2]]), (0, 5), t_eval=t_eval)
    b = flow.solve_ensemble(np.array([[1.0, 1.0], [0.5, -1.5], [-1.0, -1.0]]), (0, 5), t_eval=t_eval)
    ax = plot.phase_portrait(obj, extent=(-2, 2, -2, 2), trajectories={"A": a, "B": b}, equilibria=False,
                             manifolds=False, resolution=15)
    lines = [line for line in _gid_lines(ax, "trajectory") if len(line.get_xdata()) > 1]
    styles = [(line.get_color(), line.get_linestyle()) for line in lines]
    assert len(set(styles[:3])) == 1 and len(set(styles[3:])) == 1 and styles[0] != styles[3]
    legend = {text.get_text(): handle for text, handle in zip(ax.get_legend().get_texts(),
                                                              ax.get_legend().legend_handles)}
    assert (legend["A"].get_color(), legend["A"].get_linestyle()) == styles[0]
    assert (legend["B"].get_color(), legend["B"].get_linestyle()) == styles[3]
    with pytest.raises(TypeError, match="string keys"):
        plot.phase_portrait(obj, trajectories={1: a}, resolution=15, equilibria=False)


def test_a_2d_figure_refuses_a_3d_axes_and_a_surface_keeps_its_z_label_inside_the_figure(tmp_path):
    fig = plt.figure()
    ax3d = fig.add_subplot(projection="3d")
    for draw in (lambda: plot.phase_portrait(_one_point(), ax=ax3d, resolution=15),
                 lambda: plot.spectrum([1.0, 2.0, 0.0], ax=ax3d),
                 lambda: plot.landscape(_one_point(), kind="contour", ax=ax3d, resolution=15),
                 lambda: plot.curves(_batched(), metrics="norm", axes=ax3d)):
        with pytest.raises(ValueError, match="2-D Axes"):
            draw()
    surface = plot.landscape(_one_point(), resolution=15)
    surface.figure.savefig(tmp_path / "surface.png")                     # a plain savefig, outside gradflow's style
    label = surface.zaxis.label.get_window_extent(surface.figure.canvas.get_renderer())
    assert 0 <= label.x0 and label.x1 <= surface.figure.bbox.width

@pytest.mark.parametrize("kwargs, match", [
    ({"plane": (0, 2)}, "`plane`"),
    ({"plane": (1, 1)}, "`plane`"),
    ({"directions": np.ones((3, 2))}, "`directions`"),
    ({"directions": ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0])}, "`directions` must hold two"),
    ({"directions": np.array([[1.0, 2.0], [1.0, 2.0]])}, "`directions`.*linearly independent"),
    ({"directions": ("stable", "stable"), "w_center": [1.0, 1.0]}, "`directions`"),
    ({"directions": ("sideways", "center"), "w_center": [1.0, 1.0]}, "`directions`"),
    ({"extent": (1.0, 1.0, -1.0, 1.0)}, "`extent`.*empty"),
    ({"extent": (-1.0, 1.0, 2.0, 0.0)}, "`extent`.*empty"),
    ({"w_center": [1.0, 2.0, 3.0]}, "`w_center`"),
    ({"resolution": 2}, "`resolution`"),
])
def test_bad_input_to_phase_portrait_raises_value_error_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot.phase_portrait(_one_point(), **kwargs)


def test_named_directions_at_a_point_that_is_not_an_equilibrium_warn_and_two_vectors_are_rows():
    obj = _one_point()
    with pytest.warns(NotAnEquilibriumWarning, match="`w_center` is not an equilibrium"):
        ax = plot.phase_portrait(obj, w_center=[1.0, 2.0], directions=("stable", "unstable"), n_starts=0,
                                 resolution=11, loss=False)
    assert ax.get_xlabel() == r"$\alpha$ (stable)" and ax.get_ylabel() == r"$\beta$ (unstable)"
    ax = plot.phase_portrait(obj, directions=[[1.0, 1.0], [1.0, -1.0]], w_center=[0.0, 0.0], resolution=11,
                             loss=False, manifolds=False, trajectories=[np.array([[1.0, 1.0], [0.5, -0.5]])])
    line = next(line for line in _gid_lines(ax, "trajectory") if len(line.get_xdata()) == 2)
    # w = alpha (1, 1) + beta (1, -1): (1, 1) is alpha = 1, (0.5, -0.5) is beta = 0.5
    np.testing.assert_allclose(np.c_[line.get_xdata(), line.get_ydata()], [[1.0, 0.0], [0.0, 0.5]], atol=1e-12)


def test_phase_portrait_refuses_a_non_objective():
    with pytest.raises(TypeError, match="`flow`"):
        plot.phase_portrait("not a flow")


# ============================================================================= landscape
def test_landscape_of_the_degenerate_valley_and_its_weight_decayed_bowl():
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    sym = gf.symbolic.from_expr(w1 ** 2 / 2, [w1, w2])                 # Figure 2: a line of minima w1 = 0
    valley = plot.landscape(sym.compile(), kind="contour", extent=(-1, 1, -1, 1), resolution=21)
    filled = next(c for c in valley.collections if c.get_gid() == "loss")
    assert filled.levels[0] <= 0.0 and filled.levels[-1] >= 0.5
    surface = plot.landscape(_one_point(weight_decay=GAMMA), kind="surface", extent=(-2, 2, -2, 2), resolution=21)
    assert surface.name == "3d" and surface.get_zlabel() == "$L(w)$"
    assert surface.get_xlabel() == "$w_{1}$" and surface.get_ylabel() == "$w_{2}$"
    L = _one_point(weight_decay=GAMMA).value(np.array([[2.0, -2.0]]))[0]
    assert surface.get_zlim()[1] >= L * 0.99                                 # the corner (2, -2) is the highest point


def test_a_constant_landscape_has_no_colour_bar():
    import sympy as sp

    w1, w2 = sp.symbols("w1 w2")
    flat = plot.landscape(gf.symbolic.from_expr(0 * w1 + 1, [w1, w2]).compile(), kind="contour", resolution=11)
    valley = plot.landscape(gf.symbolic.from_expr(w1 ** 2, [w1, w2]).compile(), kind="contour", resolution=11)
    assert len(flat.figure.axes) == 1 and len(valley.figure.axes) == 2          # the valley's colour bar


def test_landscape_surface_needs_a_3d_axes_and_a_known_kind():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="`ax`"):
        plot.landscape(_one_point(), kind="surface", ax=ax)
    with pytest.raises(ValueError, match="`kind`"):
        plot.landscape(_one_point(), kind="wireframe")
    with pytest.raises(ValueError, match="`extent`"):
        plot.landscape(_one_point(), extent=(0, 0, 0, 1))


# ============================================================================= spectrum
@pytest.fixture(scope="module")
def polynomial_regression():
    data = gf.data.sine(n_train=9, n_test=20, frequency=4, nodes="chebyshev")
    model = gf.models.FeatureRegression(gf.features.Legendre(degree=30, normalize=True))
    return gf.Objective(model, data), gf.Objective(model, data, weight_decay=1e-3)


def test_spectrum_counts_the_zero_band_of_a_degenerate_hessian(polynomial_regression):
    obj, _ = polynomial_regression
    lin = gf.linearize(obj, np.zeros(obj.size), grad_tol=1.0)
    ax = plot.spectrum(lin)
    assert ax.get_yscale() == "symlog"
    texts = _legend_texts(ax)
    assert any(t.endswith(": 22 of 31") for t in texts)                      # 31 - 9 zero eigenvalues (Lemma 1)
    points = {line.get_label(): np.asarray(line.get_ydata()) for line in ax.lines}
    assert len(points["zero"]) == 22 and len(points["positive"]) == 9
    np.testing.assert_allclose(np.sort(points["positive"]), np.sort(lin.hessian_eigenvalues)[-9:])
    assert ax.get_ylabel() == r"$\lambda_i(\nabla^2 L)$"


def test_spectrum_with_weight_decay_has_an_empty_zero_band(polynomial_regression):
    _, decayed = polynomial_regression
    ax = plot.spectrum(gf.linearize(decayed, np.zeros(decayed.size), grad_tol=1.0))
    assert any(t.endswith(": 0 of 31") for t in _legend_texts(ax))
    assert "zero" not in [line.get_label() for line in ax.lines]


def test_spectrum_accepts_hessian_spectra_arrays_and_the_jacobian_sign(polynomial_regression):
    obj, _ = polynomial_regression
    spec = gf.spectrum(obj, np.zeros(obj.size), k=31)
    assert any(t.endswith(": 22 of 31") for t in _legend_texts(plot.spectrum(spec)))
    w_min_norm = np.linalg.pinv(obj.model.features(obj.data.X)) @ obj.data.y
    assert any(t.endswith(": 22 of 31") for t in _legend_texts(plot.spectrum(gf.degeneracy(obj, w_min_norm))))
    ax = plot.spectrum([-2.0, -1e-3, 0.0, 1e-14, 5.0], tol=1e-10, of="jacobian")
    points = {line.get_label(): np.sort(line.get_ydata()) for line in ax.lines}
    np.testing.assert_allclose(points["negative"], [-5.0])                      # mu = -lambda
    np.testing.assert_allclose(points["positive"], [1e-3, 2.0])
    assert any(t.endswith(": 2 of 5") for t in _legend_texts(ax)) and ax.get_ylabel().startswith(r"$\mu_i")
    ticks = ax.get_yticks()
    assert 0.0 in ticks and not np.any((np.abs(ticks) > 0) & (np.abs(ticks) < 1e-9))   # no label crowding 0



def test_the_outermost_spectrum_tick_is_inside_the_axis():
    ax = plot.spectrum([1e-3, 0.02, 0.3, 4.0, 9.0, 12.0])
    ax.figure.canvas.draw()
    low, high = ax.get_ylim()
    ticks = ax.get_yticks()
    assert np.all((ticks >= low) & (ticks <= high)) and 10.0 in ticks               # 12 > 10: the decade 10 is shown

@pytest.mark.parametrize("args, kwargs, error, match", [
    (([],), {}, ValueError, "`lin_or_eigenvalues`"),
    (([1.0, np.nan],), {}, ValueError, "`lin_or_eigenvalues`"),
    (("abc",), {}, TypeError, "`lin_or_eigenvalues`"),
    (([1.0, 2.0],), {"of": "gradient"}, ValueError, "`of`"),
    (([1.0, 2.0],), {"tol": -1.0}, ValueError, "`tol`"),
])
def test_bad_input_to_spectrum(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot.spectrum(*args, **kwargs)


# ============================================================================= curves
def _batched(m=4, n=30, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 100.0
    train = np.exp(-t[:, None] / 500.0) * (1 + 0.1 * rng.standard_normal((n, m))) ** 2 + 1e-8
    test = 0.3 + 0.001 * t[:, None] / 100 + 0.02 * rng.standard_normal((n, m))
    norm = 1 + np.sqrt(t[:, None] / 100.0) + 0.1 * rng.standard_normal((n, m))
    return gf.Trajectory(t=t, w=np.zeros((n, m, 2)), loss=train, metrics={"train_loss": train, "test_loss": test,
                                                                            "norm": norm})


def test_curves_draw_the_mean_and_a_standard_deviation_band_of_a_batch():
    traj = _batched()
    axes = plot.curves(traj)
    assert isinstance(axes, np.ndarray) and axes.shape == (3,)
    for ax, name in zip(axes, ("train_loss", "test_loss", "norm")):
        line, = ax.lines
        np.testing.assert_allclose(line.get_ydata(), traj.metrics[name].mean(axis=1))
        band, = ax.collections
        vertices = band.get_paths()[0].vertices
        values = traj.metrics[name]
        high = values.mean(axis=1) + values.std(axis=1)
        assert np.max(vertices[:, 1]) == pytest.approx(np.max(high))
        assert ax.get_xlabel() == "iterations"
    assert [ax.get_ylabel() for ax in axes] == ["training loss", "test loss", r"$\|W\|_2$"]
    assert axes[0].get_yscale() == "log" and axes[1].get_yscale() == "linear"  # the loss decays over decades


def test_curves_label_several_runs_and_honour_spread_and_logy():
    a, b = _batched(seed=0), _batched(seed=1)
    axes = plot.curves({"degree 30": a, "degree 4": b}, metrics=("norm",), spread="minmax", logy=True)
    ax, = axes
    assert _legend_texts(ax) == ["degree 30", "degree 4"] and ax.get_yscale() == "log"
    vertices = ax.collections[0].get_paths()[0].vertices
    assert np.max(vertices[:, 1]) == pytest.approx(a.metrics["norm"].max())
    axes = plot.curves([a, b], metrics="test_loss", spread=None, axes=plt.subplots()[1], x_label="$t$")
    assert len(axes[0].collections) == 0 and axes[0].get_xlabel() == "$t$"
    assert _legend_texts(axes[0]) == ["run 0", "run 1"]


def test_curves_of_a_single_unbatched_run_have_no_band_and_leave_out_non_finite_values():
    t = np.arange(5.0)
    loss = np.array([1.0, 0.5, np.nan, 0.2, 0.1])
    traj = gf.Trajectory(t=t, w=np.zeros((5, 2)), loss=loss, status="diverged")
    with pytest.warns(RuntimeWarning, match="non-finite"):
        axes = plot.curves(traj, metrics=("loss",))
    assert len(axes[0].collections) == 0 and axes[0].get_ylabel() == "$L(W)$"



def test_the_log_scale_of_a_batch_follows_its_mean_when_the_band_reaches_below_zero():
    t = np.arange(40.0)
    runs = np.exp(-t)[:, None] * np.array([[0.01, 1.0, 3.0]])     # a spread wider than the mean: mean - std < 0
    traj = gf.Trajectory(t=t, w=np.zeros((40, 3, 2)), loss=runs, metrics={"train_loss": runs})
    ax, = plot.curves(traj, metrics=["train_loss"])
    assert ax.get_yscale() == "log"
    band, = ax.collections
    assert np.min(band.get_paths()[0].vertices[:, 1]) >= runs.mean(axis=1).min() * (1 - 1e-12)


def test_curves_of_a_run_that_recorded_nothing_point_to_its_status():
    empty = gf.Trajectory(t=np.empty(0), w=np.empty((0, 2)), loss=np.empty(0), status="diverged",
                          message="the weights diverged at step 0")
    with pytest.raises(ValueError, match="'diverged': the weights diverged at step 0"):
        plot.curves(empty)

@pytest.mark.parametrize("kwargs, error, match", [
    ({"metrics": ("train_error",)}, ValueError, "`metrics`"),
    ({"spread": "iqr"}, ValueError, "`spread`"),
    ({"labels": ["a", "b"]}, ValueError, "`labels`"),
    ({"logy": [True]}, ValueError, "`logy`"),
    ({"axes": [None]}, ValueError, "`axes`"),
    ({"metrics": []}, ValueError, "`metrics` is empty"),
])
def test_bad_input_to_curves(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot.curves(_batched(), **kwargs)
    with pytest.raises(TypeError, match="`trajectories`"):
        plot.curves([np.zeros(3)])


# ============================================================================= images
def _strip_text(fig):
    """Remove every piece of text (titles, tick labels, axis labels, legends) so fonts cannot matter."""
    remove_ticks_and_titles(fig)
    for ax in fig.get_axes():
        ax.set_xlabel("")
        ax.set_ylabel("")
        if ax.get_legend() is not None:
            ax.get_legend().remove()


def _reference_figures():
    yield "portrait_hyperbola", plot.phase_portrait(_one_point(), extent=(-2, 2, -2, 2)).figure
    yield "portrait_weight_decay", plot.phase_portrait(_one_point(weight_decay=GAMMA), extent=(-2, 2, -2, 2)).figure
    yield "spectrum_values", plot.spectrum([-1.0, 0.0, 1e-15, 1e-3, 0.1, 2.0, 30.0], tol=1e-12).figure


def test_reference_images_match_the_baselines(tmp_path):
    for name, fig in _reference_figures():
        fig.set_size_inches(3.4, 3.4)
        _strip_text(fig)
        baseline = BASELINES / f"{name}.png"
        actual = (BASELINES if REGENERATE else tmp_path) / f"{name}.png"
        fig.savefig(actual, dpi=100, bbox_inches=None)
        if REGENERATE:
            continue
        assert baseline.exists(), f"missing baseline {baseline}; regenerate it (see this module's docstring)"
        result = compare_images(str(baseline), str(actual), tol=IMAGE_TOL)
        assert result is None, result


# ============================================================================= examples
EXAMPLES = ("phase_deep_linear", "phase_weight_decay", "phase_logistic", "phase_figure8_slice")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_writes_its_png(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(ROOT / "examples" / f"{name}.py"), run_name="example")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        module["main"]()
    out = tmp_path / f"{name}.png"
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {name}.png" in capsys.readouterr().out
