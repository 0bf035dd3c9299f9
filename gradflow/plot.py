r"""Figures: phase portraits, loss landscapes, Hessian spectra and training curves.

The presentation layer of gradflow.  Every function here only *reads* what the
lower layers computed (objectives, flows, trajectories, linearizations) and
draws it with matplotlib; nothing is integrated or minimized here that the
dynamics and analysis layers do not already provide (:func:`gradflow.find_equilibrium`,
:func:`gradflow.linearize` and the objective's batched ``value`` / ``grad``).

* :func:`phase_portrait` -- the vector field :math:`\dot w = -\nabla L(w)` of a
  2-parameter system, or its projection onto a plane through a point of a
  larger one, with the loss as background, nullclines, the equilibria marked by
  kind, their eigen-directions, manifolds of equilibria as curves and
  trajectories (Section 4 and Figure 2 of the paper).
* :func:`landscape` -- the loss on such a plane as a surface or contour plot
  (Figure 2, a degenerate valley, and its weight-decayed counterpart).
* :func:`spectrum` -- Hessian eigenvalues on a symmetric-log scale with the
  zero band marked and counted (Lemma 1, Theorem 3).
* :func:`curves` -- training / test loss and error and the weight norm against
  iterations, mean :math:`\pm` spread over repetitions (Figures 4, 13, 15, 16).

Defaults aim at a figure readable at half a page width: the Okabe--Ito
colour-blind-safe palette (:data:`PALETTE`), the paper's notation on the axes,
and legends placed where they overlap no data.  matplotlib is imported when
this module is (``gf.plot`` is loaded lazily by ``import gradflow``).
"""

from __future__ import annotations

import functools
import dataclasses
import math
import warnings

import numpy as np

try:
    import matplotlib
    import matplotlib.axes
    import matplotlib.ticker
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
except ImportError as exc:  # pragma: no cover - matplotlib is a dependency of the plot extra
    raise ImportError("gradflow.plot needs matplotlib (a dependency of gradflow); install it with "
                      "pip install matplotlib.") from exc

from . import _backend
from ._validation import check_bool, check_choice, check_int, check_real, describe
from .flow import GradientFlow
from .linearize import (Degeneracy, HessianSpectrum, Linearization, NotAnEquilibriumWarning, find_equilibrium,
                        linearize)
from .trajectory import Trajectory

__all__ = ["phase_portrait", "landscape", "spectrum", "curves", "PALETTE", "KIND_STYLES", "METRIC_LABELS",
           "style"]

# ============================================================================= defaults
#: The Okabe--Ito palette (Okabe & Ito 2008), distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: Width and height in inches of a new single-panel figure: half of a two-column page (about 3.4 in).
FIGSIZE = (3.4, 2.8)
#: Width in inches of each panel of a new :func:`curves` figure (the height is ``FIGSIZE[1]``).
PANEL_WIDTH = 2.6
#: Resolution, dots per inch, of new figures (and of the PNGs the examples write).
DPI = 200
#: matplotlib settings applied while a figure of this module is created: small but legible type at half a page.
STYLE = {
    "font.size": 8.0, "axes.titlesize": 8.0, "axes.labelsize": 8.0, "xtick.labelsize": 7.0, "ytick.labelsize": 7.0,
    "legend.fontsize": 6.5, "legend.frameon": False, "lines.linewidth": 1.2, "lines.markersize": 5.0,
    "axes.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": DPI,
    "savefig.dpi": DPI, "savefig.bbox": "tight", "mathtext.fontset": "cm",
}

#: Axis labels of the metrics of ``Objective.metrics`` / ``Trajectory.metrics`` (and ``"loss"``, ``Trajectory.loss``).
METRIC_LABELS = {
    "train_loss": "training loss", "test_loss": "test loss", "train_error": "training error",
    "test_error": "test error", "norm": r"$\|W\|_2$", "loss": r"$L(W)$",
}
#: Metrics drawn by :func:`curves` by default.
DEFAULT_METRICS = ("train_loss", "test_loss", "norm")
#: Spreads :func:`curves` can draw around the mean of a batch of runs.
SPREADS = {
    "std": "mean +- one standard deviation over the repetitions",
    "sem": "mean +- one standard error of the mean",
    "minmax": "the band from the smallest to the largest repetition",
    "none": "the mean only",
}
#: Default x-axis label of :func:`curves`.
DEFAULT_X_LABEL = "iterations"
#: :func:`curves` with ``logy=None`` uses a log y axis for a positive metric spanning more than this many decades.
AUTO_LOG_DECADES = 2.0
#: Opacity of the spread band of :func:`curves`.
BAND_ALPHA = 0.25

#: Marker, colour and legend label of each kind of equilibrium (``Linearization.kind``).
KIND_STYLES = {
    "sink": {"marker": "o", "color": PALETTE[0], "label": "sink"},
    "saddle": {"marker": "X", "color": PALETTE[1], "label": "saddle"},
    "source": {"marker": "s", "color": PALETTE[3], "label": "source"},
    "non-hyperbolic": {"marker": "D", "color": PALETTE[4], "label": "non-hyperbolic"},
}
#: Largest number of labelled decades on each side of 0 of the symlog axis of :func:`spectrum`.
SYMLOG_MAX_TICKS = 4
#: What :func:`spectrum` plots: eigenvalues of the Hessian :math:`H` or of the flow's Jacobian :math:`-H`.
SPECTRUM_OF = {"hessian": r"$\lambda_i(\nabla^2 L)$", "jacobian": r"$\mu_i(-\nabla^2 L)$"}


def style():
    """A context manager applying :data:`STYLE` (``with gf.plot.style(): ...``), for figures drawn by hand."""
    return plt.rc_context(STYLE)


def _styled(function):
    """Run ``function`` under :func:`style`, so that every artist it creates gets the publication defaults."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with style():
            return function(*args, **kwargs)

    return wrapper


# ============================================================================= curves
@_styled
def curves(trajectories, metrics=DEFAULT_METRICS, labels=None, axes=None, spread="std", x_label=DEFAULT_X_LABEL,
           logy=None):
    r"""Training curves: metrics of one or several runs against iterations (Figures 4, 13, 15, 16).

    A batched trajectory (``w`` of shape ``(n_points, m, P)``, metrics
    ``(n_points, m)``, e.g. the paper's 30 repetitions of gradient descent) is
    drawn as the mean over the ``m`` runs, :math:`\bar x(t) = \frac1m\sum_j x_j(t)`,
    with a band of ``spread`` around it; an unbatched one as a single line.

    Parameters
    ----------
    trajectories : Trajectory, sequence of Trajectory, or dict of str to Trajectory
        The runs; a dict gives each a legend label.  Their ``t`` is the x axis.
    metrics : sequence of str, default ``DEFAULT_METRICS`` = ("train_loss", "test_loss", "norm")
        One panel each; names of ``Trajectory.metrics`` (``train_loss``,
        ``test_loss``, ``train_error``, ``test_error``, ``norm``) or ``"loss"``
        (``Trajectory.loss``, with weight decay).  A single string is one panel.
    labels : sequence of str, optional
        Legend labels, one per trajectory (instead of a dict's keys).
    axes : Axes or sequence of Axes, optional
        One per metric, to draw into; by default a new figure with the panels side by side.
    spread : str, default "std"
        One of :data:`SPREADS`: ``"std"``, ``"sem"``, ``"minmax"``, ``"none"`` (None is ``"none"``).
    x_label : str, default ``DEFAULT_X_LABEL`` = "iterations"
        Use e.g. ``"$t$"`` for a gradient-flow trajectory.
    logy : bool or sequence of bool, optional
        Log scale on the y axis, per panel or for all; by default (None) a
        panel is logarithmic when its values are positive and span more than
        ``AUTO_LOG_DECADES`` = 2 decades (a loss decaying to zero).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        One per metric, in the order of ``metrics``.

    Notes
    -----
    Non-finite values (a diverged run, see ``Trajectory.status``) are left out
    of the mean and spread, and a warning names the runs that had them.
    """
    runs = _validate_trajectories(trajectories, labels)
    metrics = _validate_metrics(metrics, runs)
    spread = _validate_spread(spread)
    if not isinstance(x_label, str):
        raise TypeError(f"`x_label` must be a string; got {describe(x_label)}.")
    logy = _validate_logy(logy, len(metrics))
    axes = _validate_axes(axes, len(metrics))

    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(PANEL_WIDTH * len(metrics), FIGSIZE[1]),
                                 layout="constrained", squeeze=False)
        axes = axes[0]
    legend = any(label is not None for label, _ in runs)
    for i, (name, ax) in enumerate(zip(metrics, axes)):
        curves = []
        for j, (label, traj) in enumerate(runs):
            values = np.asarray(traj.loss if name == "loss" else traj.metrics[name], dtype=np.float64)
            if values.ndim == 2:
                mean, low, high = _mean_and_band(values, spread, label if label is not None else f"run {j}", name)
            else:
                mean, low, high = values, None, None
                if not np.all(np.isfinite(values)):
                    _warn_non_finite(label if label is not None else f"run {j}", name, 1)
            curves.append((np.asarray(traj.t, dtype=np.float64), mean, low, high, PALETTE[j % len(PALETTE)], label))
        # the scale follows the curves (the means), not a spread that may reach below 0
        finite = np.concatenate([mean[np.isfinite(mean)] for _, mean, *_ in curves])
        log = logy[i]
        if log is None:
            log = bool(finite.size and finite.min() > 0
                       and math.log10(finite.max() / finite.min()) > AUTO_LOG_DECADES)
        if log:
            ax.set_yscale("log")
        floor = finite[finite > 0].min() if log and np.any(finite > 0) else -np.inf
        for t, mean, low, high, color, label in curves:
            ax.plot(t, mean, color=color, label=label)
            if low is not None:
                # on a log axis a band reaching 0 or below is drawn down to the smallest value plotted
                ax.fill_between(t, np.maximum(low, floor), high, color=color, alpha=BAND_ALPHA, linewidth=0)
        ax.set_xlabel(x_label)
        ax.set_ylabel(METRIC_LABELS.get(name, name.replace("_", " ")))
        if legend and i == 0:
            ax.legend(loc="best")
    return np.asarray(axes, dtype=object)


def _mean_and_band(values: np.ndarray, spread: str, label: str, name: str):
    finite = np.isfinite(values)
    if not np.all(finite):
        _warn_non_finite(label, name, int(np.sum(~np.all(finite, axis=0))))
    masked = np.where(finite, values, np.nan)
    count = np.sum(finite, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN rows give NaN, drawn as gaps
        mean = np.nanmean(masked, axis=1)
        if spread == "none":
            return mean, None, None
        if spread == "minmax":
            return mean, np.nanmin(masked, axis=1), np.nanmax(masked, axis=1)
        std = np.nanstd(masked, axis=1)
        if spread == "sem":
            std = std / np.sqrt(np.maximum(count, 1))
    return mean, mean - std, mean + std


def _warn_non_finite(label, name, n_runs):
    warnings.warn(f"curves: {n_runs} run(s) of {label!r} have non-finite values of {name!r} (a diverged run?); "
                  "they are left out where they are not finite. Check the trajectory's status and message.",
                  RuntimeWarning, stacklevel=3)


def _validate_trajectories(trajectories, labels) -> list:
    """``[(label or None, Trajectory), ...]`` from one trajectory, a sequence or a dict."""
    if isinstance(trajectories, Trajectory):
        items = [(None, trajectories)]
    elif isinstance(trajectories, dict):
        items = list(trajectories.items())
        for key, _ in items:
            if not isinstance(key, str):
                raise TypeError("`trajectories` given as a dict must have string keys (legend labels); "
                                f"got key {key!r}.")
    elif isinstance(trajectories, (list, tuple)):
        items = [(None, traj) for traj in trajectories]
    else:
        raise TypeError("`trajectories` must be a Trajectory, a list of Trajectory or a dict {label: Trajectory}; "
                        f"got {describe(trajectories)}.")
    if not items:
        raise ValueError("`trajectories` is empty; pass at least one Trajectory.")
    for i, (_, traj) in enumerate(items):
        if not isinstance(traj, Trajectory):
            raise TypeError(f"`trajectories` must hold gradflow Trajectory objects; item {i} is {describe(traj)}.")
        if traj.n_points == 0:
            raise ValueError(f"`trajectories` item {i} has no points (status {traj.status!r}: {traj.message}); "
                             "plot runs that recorded at least one point.")
    if labels is not None:
        if isinstance(labels, str) or not isinstance(labels, (list, tuple)):
            raise TypeError(f"`labels` must be a list of strings, one per trajectory; got {describe(labels)}.")
        if len(labels) != len(items):
            raise ValueError(f"`labels` must have one label per trajectory ({len(items)}); got {len(labels)}.")
        items = [(str(label), traj) for label, (_, traj) in zip(labels, items)]
    elif len(items) > 1 and all(label is None for label, _ in items):
        items = [(f"run {i}", traj) for i, (_, traj) in enumerate(items)]
    return items


def _validate_metrics(metrics, runs) -> tuple:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"`metrics` must be a sequence of metric names; got {describe(metrics)}.")
    if not metrics:
        raise ValueError("`metrics` is empty; name at least one, e.g. metrics=['loss'].")
    for name in metrics:
        if not isinstance(name, str):
            raise TypeError(f"`metrics` must hold strings; got {describe(name)}.")
        for label, traj in runs:
            if name != "loss" and name not in traj.metrics:
                have = ", ".join(repr(k) for k in ["loss", *traj.metrics])
                which = f"trajectory {label!r}" if label is not None else "the trajectory"
                hint = " (a run of a compiled symbolic objective records only 'loss')" if not traj.metrics else ""
                raise ValueError(f"`metrics` asks for {name!r}, which {which} does not record; it has {have}{hint}.")
    return tuple(metrics)


def _validate_spread(spread) -> str:
    return "none" if spread is None else check_choice("spread", spread, tuple(SPREADS))


def _validate_logy(logy, n: int) -> list:
    if logy is None or isinstance(logy, (bool, np.bool_)):
        return [None if logy is None else bool(logy)] * n
    if not isinstance(logy, (list, tuple)) or len(logy) != n:
        raise ValueError(f"`logy` must be None, True/False or a list of {n} of them (one per metric); "
                         f"got {describe(logy)}.")
    return [None if v is None else check_bool("logy", v) for v in logy]


def _validate_axes(axes, n: int):
    if axes is None:
        return None
    if isinstance(axes, matplotlib.axes.Axes):
        axes = [axes]
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axes) != n:
        raise ValueError(f"`axes` must hold one Axes per metric ({n}); got {len(axes)}. "
                         "Pass axes=None for a new figure.")
    for ax in axes:
        if not isinstance(ax, matplotlib.axes.Axes):
            raise TypeError(f"`axes` must hold matplotlib Axes; got {describe(ax)}.")
        _validate_ax(ax, name="axes")
    return axes


# ============================================================================= spectrum
@_styled
def spectrum(lin_or_eigenvalues, ax=None, tol=None, of="hessian", label=None, color=None, linthresh=None):
    r"""Eigenvalues on a symmetric-log scale, with the zero band :math:`|\lambda| \le \text{tol}` marked and counted.

    At a degenerate minimum most eigenvalues of the Hessian are zero to
    rounding error and a few are positive (Lemma 1; Theorem 3 bounds how many
    are zero); a symmetric-log axis (linear within ``linthresh`` of zero,
    logarithmic beyond) shows both, and the gap between them.  The eigenvalues
    are drawn against their index, ascending, coloured by sign; the band
    :math:`[-\text{tol}, \text{tol}]` is shaded and its legend entry says how
    many eigenvalues fall in it.

    Parameters
    ----------
    lin_or_eigenvalues : Linearization, HessianSpectrum, Degeneracy or array_like
        A :func:`gradflow.linearize` result (its ``tol`` is the default),
        a :func:`gradflow.spectrum` result, a :func:`gradflow.degeneracy`
        result (its ``tol``), or eigenvalues of :math:`H`.
    ax : Axes, optional
        Where to draw; a new half-page figure by default.
    tol : float, optional
        The zero threshold; default the object's own, or for an array or a
        ``HessianSpectrum`` the rank threshold :math:`|\lambda|_{\max}\,P\,\epsilon`
        of ``numpy.linalg.matrix_rank`` (``P`` the number of eigenvalues, or
        the eigenvectors' length).
    of : {"hessian", "jacobian"}, default "hessian"
        Plot the eigenvalues :math:`\lambda_i` of :math:`H = \nabla^2 L` or
        :math:`\mu_i = -\lambda_i` of the flow's Jacobian :math:`-H`.
    label : str, optional
        Legend label of the eigenvalues (to overlay several spectra on one ``ax``).
    color : color, optional
        One colour for all the eigenvalues instead of the colouring by sign.
    linthresh : float, optional
        Half-width of the linear region of the symlog axis; default ``tol``
        (or, when ``tol`` is 0, the smallest nonzero :math:`|\lambda|`).

    Returns
    -------
    matplotlib.axes.Axes
    """
    values, default_tol, size = _validate_spectrum_input(lin_or_eigenvalues)
    of = check_choice("of", of, tuple(SPECTRUM_OF))
    tol = default_tol if tol is None else check_real("tol", tol, minimum=0.0)
    if tol is None:
        tol = float(np.max(np.abs(values))) * size * np.finfo(np.float64).eps if values.size else 0.0
    if label is not None and not isinstance(label, str):
        raise TypeError(f"`label` must be a string; got {describe(label)}.")
    if linthresh is None:
        nonzero = np.abs(values[np.abs(values) > 0])
        linthresh = tol if tol > 0 else (float(nonzero.min()) if nonzero.size else 1.0)
    else:
        linthresh = check_real("linthresh", linthresh, minimum=0.0, strict=True)
    ax = _validate_ax(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")

    if of == "jacobian":
        values = -values[::-1]
    index = np.arange(1, values.size + 1)
    zero = np.abs(values) <= tol
    n_zero = int(np.sum(zero))
    band_label = rf"$|\lambda| \leq$ {tol:.1e}: {n_zero} of {values.size}"
    ax.axhspan(-tol, tol, color="0.85", zorder=0, label=band_label)
    if color is not None:
        ax.plot(index, values, "o", color=color, markersize=3.0, label=label, zorder=3)
    else:
        groups = ((values > tol, PALETTE[0], "positive"), (zero, PALETTE[7], "zero"),
                  (values < -tol, PALETTE[1], "negative"))
        for mask, c, name in groups:
            if np.any(mask):
                ax.plot(index[mask], values[mask], "o", color=c, markersize=3.0, zorder=3,
                        label=name if label is None else f"{label}, {name}")
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(_symlog_ticks(values, linthresh)))
    ax.set_xlabel("index $i$ (ascending)")
    ax.set_ylabel(SPECTRUM_OF[of])
    ax.legend(loc="best")
    return ax


def _symlog_ticks(values: np.ndarray, linthresh: float) -> list:
    """Major ticks of a symlog axis: 0 and at most ``SYMLOG_MAX_TICKS`` decades a side, none next to 0, the
    outermost at the largest decade the values reach (a tick beyond them would fall outside the axis).

    The decade just above ``linthresh`` is skipped, so that the label of 0
    and of the first decade never overlap however many decades the axis spans.
    """
    ticks = [0.0]
    low = math.floor(math.log10(linthresh)) + 2                # first decade label kept clear of "0"
    for sign in (1.0, -1.0):
        side = values[sign * values > linthresh] * sign
        if side.size == 0:
            continue
        top = math.floor(math.log10(float(side.max())))          # the highest decade inside the data's range
        if top < low:
            continue
        step = max(1, math.ceil((top - low + 1) / SYMLOG_MAX_TICKS))
        ticks += [sign * 10.0 ** e for e in range(top, low - 1, -step)]
    return sorted(ticks)


def _validate_spectrum_input(x):
    """``(eigenvalues of H ascending, default tol or None, P)``."""
    if isinstance(x, Linearization):
        return np.asarray(x.hessian_eigenvalues, dtype=np.float64), float(x.tol), x.eigenvalues.size
    if isinstance(x, Degeneracy):
        return np.sort(np.asarray(x.eigenvalues, dtype=np.float64)), float(x.tol), int(x.size)
    if isinstance(x, HessianSpectrum):
        return np.sort(np.asarray(x.eigenvalues, dtype=np.float64)), None, int(x.eigenvectors.shape[0])
    if isinstance(x, (str, bytes, dict)):
        raise TypeError("`lin_or_eigenvalues` must be a Linearization, HessianSpectrum, Degeneracy or an array of "
                        f"eigenvalues; got {describe(x)}.")
    try:
        values = np.asarray(_backend.to_numpy(x) if _backend.is_array(x) else x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("`lin_or_eigenvalues` must be a Linearization, HessianSpectrum, Degeneracy or an array of "
                        f"eigenvalues; got {describe(x)}.") from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError("`lin_or_eigenvalues` must be a non-empty 1-D array of eigenvalues; "
                         f"got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("`lin_or_eigenvalues` has NaN or inf entries; compute the spectrum at a point where L "
                         "is defined.")
    return np.sort(values), None, int(values.size)


def _validate_ax(ax, three_d: bool = False, name: str = "ax"):
    """``ax`` if it is None or an Axes of the right kind: 3-D when ``three_d``, otherwise 2-D."""
    if ax is None:
        return ax
    if not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"`{name}` must be a matplotlib Axes or None; got {describe(ax)}.")
    if (ax.name == "3d") != three_d:
        wanted = "a 3-D Axes (fig.add_subplot(projection='3d'))" if three_d else "a 2-D Axes"
        raise ValueError(f"`{name}` must be {wanted}; got a {ax.name!r} Axes. Pass {name}=None for a new figure.")
    return ax


# ============================================================================= planes
#: Half-width of the default window of :func:`phase_portrait` and :func:`landscape`, around the centre.
DEFAULT_HALF_WIDTH = 2.0
#: Grid points per side on which the vector field and the loss are evaluated.
DEFAULT_RESOLUTION = 81
#: Starting points per side of the grid of multi-start Newton searches for equilibria (``n_starts**2`` in all).
DEFAULT_N_STARTS = 7
#: Newton iterations allowed to each start of the equilibrium search.
DEFAULT_NEWTON_MAX_ITER = 40
#: Two equilibria closer than ``DEDUP_RTOL`` times the window's diagonal are the same point of the figure (the one
#: with the smaller gradient is kept: near a degenerate equilibrium Newton converges only linearly).
DEDUP_RTOL = 1e-3
#: Streamlines stop where the projected field is below ``STREAM_STOP_RTOL`` times its largest value on the grid:
#: at the equilibria, where the interpolated field has no reliable direction (trajectories end there).
STREAM_STOP_RTOL = 1e-2
#: A found equilibrium lies in the plane when its distance from it is at most ``PLANE_RTOL`` times the window size.
PLANE_RTOL = 1e-6
#: Step of the continuation along a manifold of equilibria, as a fraction of the window's diagonal (in the plane).
TRACE_STEP_FRACTION = 1.0 / 120.0
#: Largest number of continuation steps along each direction of a manifold of equilibria.
TRACE_MAX_STEPS = 600
#: A manifold is traced across the plane only while its tangent projects onto the plane with at least this length.
MIN_PROJECTION = 0.2
#: Length of a drawn eigen-direction, as a fraction of the window's smaller side.
DIRECTION_LENGTH = 0.12
#: Largest number of eigen-directions drawn per invariant subspace at each equilibrium.
MAX_DIRECTIONS = 2
#: Filled loss levels of the background.
DEFAULT_LOSS_LEVELS = 16
#: Streamline density (``matplotlib.axes.Axes.streamplot``'s ``density``).
DEFAULT_DENSITY = 1.0
#: Width and height in inches of a new phase-portrait figure (room for the legend below the axes).
PORTRAIT_FIGSIZE = (3.4, 3.9)
#: Colour map of the loss background: perceptually uniform and colour-blind safe.
LOSS_CMAP = "cividis"
#: Opacity of the loss background, so that streamlines and markers stay readable on it.
LOSS_ALPHA = 0.55
#: Line styles of drawn eigen-directions: stable solid, center dashed, unstable dotted.
DIRECTION_STYLES = {
    "stable": {"linestyle": "-", "color": PALETTE[0], "label": "stable direction"},
    "center": {"linestyle": "--", "color": PALETTE[4], "label": "center direction"},
    "unstable": {"linestyle": ":", "color": PALETTE[1], "label": "unstable direction"},
}
#: Names a direction can be chosen by (``directions=("stable", "center")``), in :func:`gradflow.linearize`'s terms.
DIRECTION_NAMES = ("stable", "center", "unstable")
#: Style of the curves of equilibria (manifolds of degenerate minima).
MANIFOLD_STYLE = {"color": PALETTE[2], "linewidth": 2.2, "label": "equilibria (manifold)"}
#: Colour and line style of overlaid trajectories, in turn (colours not used by the other elements of a portrait).
TRAJECTORY_STYLES = ((PALETTE[7], "-"), (PALETTE[3], "-"), (PALETTE[7], "--"), (PALETTE[3], "--"), (PALETTE[7], ":"),
                     (PALETTE[3], ":"))
#: Colour of the streamlines.
STREAM_COLOR = "0.25"
#: Colours of the two nullclines (told apart by their dash patterns).
NULLCLINE_COLORS = (PALETTE[5], PALETTE[5])
#: Kinds of :func:`landscape`.
LANDSCAPE_KINDS = ("surface", "contour")
#: Rows of weight vectors evaluated at once on a grid.
GRID_CHUNK_ROWS = 8192


class _Plane:
    r"""The plane :math:`w = c + D\,(x - o)`, :math:`x \in \mathbb{R}^2`, and the projection onto it.

    ``D`` is ``P x 2`` of rank 2; plane coordinates of a point are
    :math:`x = D^+(w - c) + o` (the orthogonal projection, in the coordinates
    of ``D``'s columns), and a vector :math:`v` projects to :math:`D^+ v`.
    ``o`` is :math:`(c_i, c_j)` for a coordinate plane (the axes read the weights
    themselves) and 0 otherwise (the axes read offsets :math:`\alpha, \beta` from ``c``).
    """

    def __init__(self, center, basis, offset, labels, symbols):
        self.center = center
        self.basis = basis
        self.pinv = np.linalg.pinv(basis)
        self.offset = offset
        self.labels = labels
        self.symbols = symbols

    def to_plane(self, W):
        return (np.asarray(W) - self.center) @ self.pinv.T + self.offset

    def to_weights(self, XY):
        return self.center + (np.asarray(XY) - self.offset) @ self.basis.T

    def project(self, V):
        return np.asarray(V) @ self.pinv.T

    def off_plane(self, W) -> np.ndarray:
        D = np.asarray(W) - self.center
        return np.linalg.norm(D - (D @ self.pinv.T) @ self.basis.T, axis=-1)


def _objective_of(flow):
    """``(GradientFlow, its objective)`` from a flow or anything ``GradientFlow`` accepts."""
    if isinstance(flow, GradientFlow):
        return flow, flow.obj
    try:
        flow = GradientFlow(flow)
    except TypeError:
        raise TypeError("`flow` must be a gradflow.GradientFlow, an Objective or a compiled symbolic objective; "
                        f"got {describe(flow)}.") from None
    return flow, flow.obj


def _xp_of(obj):
    from .objective import Objective
    return obj.xp if isinstance(obj, Objective) else np


def _evaluate(obj, W: np.ndarray, what: str) -> np.ndarray:
    """``L`` (``what="value"``) or :math:`-\\nabla L` (``"rhs"``) at the rows of ``W``, NumPy, in chunks."""
    xp = _xp_of(obj)
    parts = []
    with np.errstate(all="ignore"):
        for i in range(0, W.shape[0], GRID_CHUNK_ROWS):
            chunk = _backend.as_array(np.ascontiguousarray(W[i:i + GRID_CHUNK_ROWS]), xp)
            out = obj.value(chunk) if what == "value" else -obj.grad(chunk)
            parts.append(np.asarray(_backend.to_numpy(out), dtype=np.float64))
    return np.concatenate(parts)


def _resolve_plane(obj, w_center, directions, plane) -> tuple:
    """``(_Plane, Linearization at the centre or None)`` from the user's description."""
    P = int(obj.size)
    center = _validate_w_center(w_center, P)
    i, j = _validate_plane(plane, P)
    if directions is None:
        basis = np.zeros((P, 2))
        basis[i, 0] = basis[j, 1] = 1.0
        return _Plane(center, basis, center[[i, j]].copy(), (f"$w_{{{i + 1}}}$", f"$w_{{{j + 1}}}$"),
                      (f"w_{{{i + 1}}}", f"w_{{{j + 1}}}")), None
    basis, names, lin = _validate_directions(directions, obj, center)
    labels = tuple(rf"${s}$" + ("" if n is None else f" ({n})") for s, n in zip((r"\alpha", r"\beta"), names))
    return _Plane(center, basis, np.zeros(2), labels, (r"\alpha", r"\beta")), lin


def _validate_w_center(w_center, P: int) -> np.ndarray:
    if w_center is None:
        return np.zeros(P)
    try:
        w = np.asarray(_backend.to_numpy(w_center) if _backend.is_array(w_center) else w_center, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`w_center` must be an array of {P} real numbers; got {describe(w_center)}.") from None
    if w.shape != (P,):
        raise ValueError(f"`w_center` must have shape ({P},), one entry per parameter; got shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise ValueError("`w_center` has NaN or inf entries; pass a point where L is defined.")
    return w


def _validate_plane(plane, P: int) -> tuple:
    if isinstance(plane, (str, bytes)) or not isinstance(plane, (tuple, list, np.ndarray)) or len(plane) != 2:
        raise TypeError(f"`plane` must be a pair of parameter indices (i, j); got {describe(plane)}.")
    i, j = (check_int("plane", k) for k in plane)
    for k in (i, j):
        if not 0 <= k < P:
            raise ValueError(f"`plane` indices must lie in [0, {P - 1}] (the objective has P = {P} parameters); "
                             f"got {tuple(plane)}.")
    if i == j:
        raise ValueError(f"`plane` must name two different parameters; got ({i}, {j}).")
    return i, j


def _validate_directions(directions, obj, center) -> tuple:
    """``(basis P x 2, (name or None, name or None), Linearization or None)``."""
    P = int(obj.size)
    if isinstance(directions, (str, bytes)):
        raise TypeError("`directions` must be two directions (names such as 'stable' / 'center', or vectors of "
                        f"length {P}) or a {P} x 2 array; got the string {directions!r}.")
    if isinstance(directions, (list, tuple)):
        if len(directions) != 2:
            raise ValueError(f"`directions` must hold two directions (names or vectors of length {P}); "
                             f"got {len(directions)}.")
        items = list(directions)
    else:
        try:
            array = np.asarray(_backend.to_numpy(directions) if _backend.is_array(directions) else directions,
                               dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"`directions` must be a {P} x 2 array, two vectors of length {P}, or two names from "
                            f"{DIRECTION_NAMES}; got {describe(directions)}.") from None
        if array.shape != (P, 2):
            hint = " (pass its transpose: the directions are the columns)" if array.shape == (2, P) else ""
            raise ValueError(f"`directions` must have shape ({P}, 2), two directions in the {P}-dimensional weight "
                             f"space as columns; got shape {array.shape}{hint}.")
        items = [array[:, 0], array[:, 1]]
    lin = None
    used = {name: 0 for name in DIRECTION_NAMES}
    columns, names = [], []
    for item in items:
        if isinstance(item, str):
            if item not in DIRECTION_NAMES:
                raise ValueError(f"`directions` names must be among {DIRECTION_NAMES}; got {item!r}.")
            if lin is None:
                lin = _classify(obj, center)
                if not lin.is_equilibrium:
                    warnings.warn(f"`w_center` is not an equilibrium (|grad L| = {lin.grad_norm:.3g}); the named "
                                  "`directions` are eigenvectors of the Hessian there. Refine it with "
                                  "gf.find_equilibrium first.", NotAnEquilibriumWarning, stacklevel=4)
            basis = _backend.to_numpy(_subspace(lin, item))
            k = used[item]
            if k >= basis.shape[1]:
                raise ValueError(f"`directions` asks for {k + 1} {item!r} direction(s) at `w_center`, whose {item} "
                                 f"subspace has dimension {basis.shape[1]} (kind {lin.kind!r}); choose other names or "
                                 "pass vectors.")
            # stable: the most attracting first; unstable: the most repelling first (eigenvalues ascend)
            columns.append(basis[:, basis.shape[1] - 1 - k] if item == "unstable" else basis[:, k])
            used[item] += 1
            names.append(item)
        else:
            try:
                v = np.asarray(_backend.to_numpy(item) if _backend.is_array(item) else item, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"`directions` items must be names from {DIRECTION_NAMES} or vectors of length {P}; "
                                f"got {describe(item)}.") from None
            if v.shape != (P,):
                raise ValueError(f"`directions` vectors must have length {P}; got shape {v.shape}.")
            columns.append(v)
            names.append(None)
    basis = np.stack(columns, axis=1)
    if not np.all(np.isfinite(basis)):
        raise ValueError("`directions` has NaN or inf entries.")
    s = np.linalg.svd(basis, compute_uv=False)
    if s[0] == 0 or s[1] <= 1e-10 * s[0]:
        raise ValueError("`directions` must be linearly independent (they span the plane); the two given are "
                         f"parallel or zero (singular values {s[0]:.3g}, {s[1]:.3g}).")
    return basis, tuple(names), lin


def _subspace(lin: Linearization, name: str):
    """The basis of ``lin``'s subspace ``name`` (``"stable"``, ``"center"`` or ``"unstable"``)."""
    return {"stable": lin.stable, "center": lin.center, "unstable": lin.unstable}[name]


def _validate_extent(extent, plane: _Plane) -> tuple:
    if extent is None:
        ox, oy = plane.offset
        h = DEFAULT_HALF_WIDTH
        return (ox - h, ox + h, oy - h, oy + h)
    if isinstance(extent, (str, bytes)) or not isinstance(extent, (tuple, list, np.ndarray)) or len(extent) != 4:
        raise TypeError(f"`extent` must be (xmin, xmax, ymin, ymax); got {describe(extent)}.")
    values = tuple(check_real("extent", v) for v in extent)
    if not (values[0] < values[1] and values[2] < values[3]):
        raise ValueError(f"`extent` is empty: it needs xmin < xmax and ymin < ymax; got {values}. "
                         "Pass (xmin, xmax, ymin, ymax) with positive width and height.")
    return values


def _validate_resolution(resolution) -> int:
    return check_int("resolution", resolution, minimum=5)


def _grid(plane: _Plane, extent, n: int):
    x = np.linspace(extent[0], extent[1], n)
    y = np.linspace(extent[2], extent[3], n)
    X, Y = np.meshgrid(x, y)
    W = plane.to_weights(np.stack([X.ravel(), Y.ravel()], axis=1))
    return x, y, X, Y, W


# ============================================================================= equilibria
def _classify(obj, w) -> Linearization:
    """``linearize`` at a point found by Newton (its default threshold allows for the residual gradient); no warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAnEquilibriumWarning)
        return linearize(obj, w)


@dataclasses.dataclass(frozen=True, eq=False)
class _Found:
    """An equilibrium in the window: the point, its plane coordinates, its linearization and its gradient norm."""

    w: np.ndarray
    xy: np.ndarray
    lin: Linearization
    grad_norm: float


def _find_equilibria(obj, plane: _Plane, extent, n_starts: int, extra=()) -> list:
    """Multi-start Newton (``find_equilibrium``) from a grid over the window; de-duplicated, in the window and plane."""
    xs = np.linspace(extent[0], extent[1], n_starts + 2)[1:-1]
    ys = np.linspace(extent[2], extent[3], n_starts + 2)[1:-1]
    starts = [plane.to_weights(np.array([x, y])) for y in ys for x in xs] + list(extra)
    size = math.hypot(extent[1] - extent[0], extent[3] - extent[2])
    found = []
    xp = _xp_of(obj)
    for w0 in starts:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            eq = find_equilibrium(obj, _backend.as_array(np.asarray(w0, dtype=np.float64), xp),
                                  max_iter=DEFAULT_NEWTON_MAX_ITER)
        if not eq.converged:
            continue
        w = np.asarray(_backend.to_numpy(eq.w), dtype=np.float64)
        xy = plane.to_plane(w)
        inside = extent[0] <= xy[0] <= extent[1] and extent[2] <= xy[1] <= extent[3]
        if not inside or plane.off_plane(w) > PLANE_RTOL * size * max(1.0, float(np.linalg.norm(w))):
            continue
        same = [k for k, f in enumerate(found) if np.linalg.norm(w - f.w) <= DEDUP_RTOL * size]
        if same and found[same[0]].grad_norm <= eq.grad_norm:
            continue
        entry = _Found(w, xy, _classify(obj, w), eq.grad_norm)
        if same:
            found[same[0]] = entry
        else:
            found.append(entry)
    return found


def _trace_manifold(obj, start: _Found, plane: _Plane, extent) -> np.ndarray | None:
    r"""The curve of equilibria through a non-hyperbolic one, by continuation; ``(n, P)`` or None when isolated.

    Predictor: a step along the tangent, the centre subspace :math:`E^c` of
    the linearization (the directions along the manifold of degenerate
    equilibria, Section 4), the one that projects longest onto the plane.
    Corrector: :func:`gradflow.find_equilibrium`, whose minimum-norm Newton
    steps move off the manifold's normal only, back onto it.  The tangent is
    carried from step to step (projected onto the new :math:`E^c`) so the
    curve does not turn back; it stops when it leaves the window, stops
    moving (an isolated degenerate equilibrium), stops being degenerate, or
    turns away from the plane.
    """
    diag = math.hypot(extent[1] - extent[0], extent[3] - extent[2])
    h_plane = TRACE_STEP_FRACTION * diag
    margin = 2 * h_plane
    C = np.asarray(_backend.to_numpy(start.lin.center), dtype=np.float64)
    if C.shape[1] == 0:
        return None
    M = plane.project(C.T).T                               # 2 x c: the centre directions seen in the plane
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    if s[0] < MIN_PROJECTION * _unit_projection(plane):
        return None
    tangent0 = C @ vt[0]
    xp = _xp_of(obj)
    branches = []
    for sign in (1.0, -1.0):
        w, t = start.w, sign * tangent0
        points = []
        for _ in range(TRACE_MAX_STEPS):
            projected = float(np.linalg.norm(plane.project(t)))
            if projected < MIN_PROJECTION * _unit_projection(plane):
                break
            h = h_plane / projected
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                eq = find_equilibrium(obj, _backend.as_array(w + h * t, xp), max_iter=DEFAULT_NEWTON_MAX_ITER)
            if not eq.converged:
                break
            w_new = np.asarray(_backend.to_numpy(eq.w), dtype=np.float64)
            step = w_new - w
            if np.linalg.norm(plane.project(step)) < 0.5 * h_plane:
                break                                      # the corrector pulled it back: isolated
            lin = _classify(obj, w_new)
            if lin.nullity == 0:
                break
            C = np.asarray(_backend.to_numpy(lin.center), dtype=np.float64)
            t_new = C @ (C.T @ step)
            norm = float(np.linalg.norm(t_new))
            if norm == 0:
                break
            points.append(w_new)
            w, t = w_new, t_new / norm
            xy = plane.to_plane(w)
            if not (extent[0] - margin <= xy[0] <= extent[1] + margin
                    and extent[2] - margin <= xy[1] <= extent[3] + margin):
                break
        branches.append(points)
    if not branches[0] and not branches[1]:
        return None
    return np.array(branches[1][::-1] + [start.w] + branches[0])


def _unit_projection(plane: _Plane) -> float:
    """Length in plane coordinates of a unit vector lying in the plane, on average (1 for orthonormal directions)."""
    return float(np.sqrt(np.mean(np.linalg.svd(plane.pinv, compute_uv=False) ** 2)))


# ============================================================================= phase portrait
@_styled
def phase_portrait(flow, w_center=None, directions=None, plane=(0, 1), extent=None, ax=None, trajectories=(),
                   resolution=DEFAULT_RESOLUTION, n_starts=DEFAULT_N_STARTS, loss=True, nullclines=True,
                   equilibria=True, manifolds=True, eigendirections=True, colorbar=True, legend=True,
                   density=DEFAULT_DENSITY):
    r"""Phase portrait of the gradient flow :math:`\dot w = -\nabla L(w)` on a plane (Section 4, Figure 2).

    For a 2-parameter system the plane is the whole space (axes
    :math:`w_1, w_2`).  For a larger one it is the plane through ``w_center``
    spanned by two ``directions``, :math:`w = w_c + \alpha u + \beta v`, or
    the coordinate plane ``plane`` through ``w_center``; the vector field is
    evaluated on the plane and projected onto it,
    :math:`(\dot\alpha, \dot\beta) = D^+(-\nabla L(w))` with :math:`D = [u\ v]`
    (the flow restricted to the plane is not a flow of the full system:
    trajectories leave the plane).

    Drawn, back to front: the loss :math:`L` as filled contours; the
    nullclines :math:`\dot\alpha = 0` and :math:`\dot\beta = 0`; streamlines;
    manifolds of equilibria as curves (the zero-loss set of a degenerate
    network, e.g. the hyperbola :math:`w_1 w_2 = 1` of
    :math:`\frac12(w_1 w_2 - 1)^2`), traced by continuation from the
    non-hyperbolic equilibria; isolated equilibria, marked by kind (sink,
    saddle, source, non-hyperbolic; :data:`KIND_STYLES`) with their
    eigen-directions (stable solid, center dashed, unstable dotted); and the
    ``trajectories``, projected onto the plane.

    The equilibria are found by multi-start Newton
    (:func:`gradflow.find_equilibrium` from an ``n_starts`` x ``n_starts``
    grid over the window, plus ``w_center``), kept when they lie in the window
    and in the plane, de-duplicated, and classified by
    :func:`gradflow.linearize` (whose default zero threshold allows for
    Newton's residual gradient).  Equilibria on a traced manifold are drawn as the
    curve, not as markers; ``w_center``, when it is an equilibrium, is always
    marked.

    Parameters
    ----------
    flow : GradientFlow, Objective or compiled symbolic objective
    w_center : array, shape (P,), optional
        The point the plane passes through; default the origin.  Must be given
        (an equilibrium) to choose ``directions`` by name.
    directions : sequence of two, or array (P, 2), optional
        The plane's directions: vectors of length ``P``, a ``P x 2`` array, or
        names from :data:`DIRECTION_NAMES` picking eigenvectors of the
        linearization at ``w_center``: ``"stable"`` the most attracting
        stable eigenvector (the top of the Hessian's spectrum), then the next;
        ``"center"`` a zero-eigenvalue one; ``"unstable"`` the most repelling.
        Default: the coordinate plane ``plane``.
    plane : (int, int), default (0, 1)
        Indices of the two coordinates spanning the plane when ``directions`` is None.
    extent : (xmin, xmax, ymin, ymax), optional
        The window in plane coordinates (the weights themselves for a
        coordinate plane, the offsets :math:`\alpha, \beta` otherwise);
        default ``DEFAULT_HALF_WIDTH`` = 2 around ``w_center``.
    ax : Axes, optional
        Where to draw; default a new figure of size ``PORTRAIT_FIGSIZE``.
    trajectories : Trajectory, sequence, or dict of str to Trajectory, optional
        Paths to overlay (arrays ``(n_points, P)`` are accepted too); each run of a batched one is drawn.
    resolution : int, default ``DEFAULT_RESOLUTION`` = 81
        Grid points per side for the field, the loss and the nullclines.
    n_starts : int, default ``DEFAULT_N_STARTS`` = 7
        Newton starts per side; 0 searches from ``w_center`` only.
    loss, nullclines, equilibria, manifolds, eigendirections, colorbar, legend : bool, default True
        What to draw.
    density : float, default ``DEFAULT_DENSITY`` = 1
        Streamline density.

    Returns
    -------
    matplotlib.axes.Axes
        Artists carry ``gid`` tags for inspection: ``"streamlines"``,
        ``"loss"``, ``"nullcline"``, ``"manifold"``, ``"equilibrium:<kind>"``,
        ``"direction:<subspace>"``, ``"trajectory"``.
    """
    _, obj = _objective_of(flow)
    plane_, _ = _resolve_plane(obj, w_center, directions, plane)
    extent = _validate_extent(extent, plane_)
    ax = _validate_ax(ax)
    resolution = _validate_resolution(resolution)
    n_starts = check_int("n_starts", n_starts, minimum=0)
    flags = {name: check_bool(name, value) for name, value in (
        ("loss", loss), ("nullclines", nullclines), ("equilibria", equilibria), ("manifolds", manifolds),
        ("eigendirections", eigendirections), ("colorbar", colorbar), ("legend", legend))}
    density = check_real("density", density, minimum=0.0, strict=True)
    paths = _validate_paths(trajectories, int(obj.size))
    if ax is None:
        _, ax = plt.subplots(figsize=PORTRAIT_FIGSIZE, layout="constrained")

    x, y, X, Y, W = _grid(plane_, extent, resolution)
    n = resolution
    field = plane_.project(_evaluate(obj, W, "rhs"))
    U, V = field[:, 0].reshape(n, n), field[:, 1].reshape(n, n)
    bad = ~(np.isfinite(U) & np.isfinite(V))
    if np.any(bad):
        warnings.warn(f"phase_portrait: the vector field is not finite at {int(bad.sum())} of {n * n} grid points "
                      "(L undefined or overflowing there); they are left blank. Narrow `extent`.", RuntimeWarning,
                      stacklevel=3)
    handles = []

    if flags["loss"]:
        L = _evaluate(obj, W, "value").reshape(n, n)
        cf = _loss_background(ax, X, Y, L)
        if cf is not None and flags["colorbar"]:
            _colorbar(ax, cf)
    if flags["nullclines"]:
        handles += _nullclines(ax, X, Y, U, V, plane_)
    speed = np.where(bad, 0.0, np.hypot(np.where(bad, 0.0, U), np.where(bad, 0.0, V)))
    stop = bad | (speed <= STREAM_STOP_RTOL * float(speed.max())) | (speed == 0)
    stream_u, stream_v = np.ma.array(np.where(bad, 0.0, U), mask=stop), np.ma.array(np.where(bad, 0.0, V), mask=stop)
    if not np.all(stop):                  # a field that vanishes on the whole window has no streamlines
        stream = ax.streamplot(x, y, stream_u, stream_v, density=density, color=STREAM_COLOR, linewidth=0.6,
                               arrowsize=0.7, zorder=2)
        stream.lines.set_gid("streamlines")
        stream.arrows.set_gid("streamlines")

    if flags["equilibria"] or flags["manifolds"]:
        center_given = w_center is not None
        extra = [plane_.center] if center_given else []
        found = _find_equilibria(obj, plane_, extent, n_starts, extra=extra)
        curves_ = []
        marked = []
        for f in found:
            on_curve = any(np.min(np.linalg.norm(c - f.w, axis=1)) <= 2 * TRACE_STEP_FRACTION
                           * math.hypot(extent[1] - extent[0], extent[3] - extent[2]) for c in curves_)
            if f.lin.kind == "non-hyperbolic" and not on_curve:
                curve = _trace_manifold(obj, f, plane_, extent)
                if curve is not None and len(curve) >= 3:
                    curves_.append(curve)
                    on_curve = True
            is_center = center_given and np.linalg.norm(f.w - plane_.center) <= DEDUP_RTOL * (1 + np.linalg.norm(f.w))
            if not on_curve or is_center:
                marked.append(f)
        for i, curve in enumerate(curves_ if flags["manifolds"] else ()):
            xy = plane_.to_plane(curve)
            line, = ax.plot(xy[:, 0], xy[:, 1], color=MANIFOLD_STYLE["color"], linewidth=MANIFOLD_STYLE["linewidth"],
                            solid_capstyle="round", zorder=4, gid="manifold")
            if i == 0:
                line.set_label(MANIFOLD_STYLE["label"])
                handles.append(line)
        if flags["equilibria"]:
            handles += _mark_equilibria(ax, marked, plane_, extent, flags["eigendirections"])

    handles += _draw_paths(ax, paths, plane_)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(plane_.labels[0])
    ax.set_ylabel(plane_.labels[1])
    if flags["legend"] and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False,
                  handlelength=1.8, columnspacing=1.0)
    return ax


def _colorbar(ax, mappable):
    """A colour bar labelled :math:`L(w)`, its levels spaced in proportion to their values, with round ticks."""
    bar = ax.figure.colorbar(mappable, ax=ax, label="$L(w)$", shrink=0.9, pad=0.02, spacing="proportional")
    low, high = float(mappable.levels[0]), float(mappable.levels[-1])
    bar.set_ticks([v for v in matplotlib.ticker.MaxNLocator(5).tick_values(low, high) if low <= v <= high])
    return bar


def _loss_background(ax, X, Y, L):
    finite = L[np.isfinite(L)]
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return None
    # quadratic spacing: more levels near the minimum, where the valleys are
    levels = low + (high - low) * np.linspace(0.0, 1.0, DEFAULT_LOSS_LEVELS) ** 2
    cf = ax.contourf(X, Y, np.ma.masked_invalid(L), levels=levels, cmap=LOSS_CMAP, alpha=LOSS_ALPHA, zorder=0,
                     antialiased=True)
    cf.set_gid("loss")
    return cf


def _nullclines(ax, X, Y, U, V, plane: _Plane) -> list:
    """Contours :math:`\\dot x = 0` and :math:`\\dot y = 0` of the projected field; legend handles."""
    handles = []
    scale = float(np.max(np.hypot(U, V))) if np.size(U) else 0.0
    for component, symbol, color, style in ((U, plane.symbols[0], NULLCLINE_COLORS[0], (0, (4, 2))),
                                            (V, plane.symbols[1], NULLCLINE_COLORS[1], (0, (1, 1.5)))):
        values = np.ma.filled(np.ma.masked_invalid(component).astype(float), np.nan)
        finite = values[np.isfinite(values)]
        if finite.size == 0 or scale == 0 or np.max(np.abs(finite)) <= 1e-12 * scale:
            continue                      # identically zero: every point is on it; nothing to draw
        if not (finite.min() < 0 < finite.max()):
            continue                      # one sign throughout: no nullcline in the window
        cs = ax.contour(X, Y, values, levels=[0.0], colors=[color], linewidths=1.0, linestyles=[style], zorder=3)
        cs.set_gid("nullcline")
        handles.append(Line2D([], [], color=color, linewidth=1.0, linestyle=style, label=rf"$\dot {symbol} = 0$"))
    return handles


def _mark_equilibria(ax, marked, plane: _Plane, extent, directions: bool) -> list:
    handles, kinds, subspaces = [], [], []
    length = DIRECTION_LENGTH * min(extent[1] - extent[0], extent[3] - extent[2])
    unit = _unit_projection(plane)
    for f in marked:
        kind = f.lin.kind
        if directions:
            for name in DIRECTION_NAMES:
                B = np.asarray(_backend.to_numpy(_subspace(f.lin, name)), dtype=np.float64)
                if B.shape[1] == 0:
                    continue
                projected = plane.project(B.T)                  # k x 2
                norms = np.linalg.norm(projected, axis=1)
                for index in np.argsort(-norms)[:MAX_DIRECTIONS]:
                    if norms[index] < MIN_PROJECTION * unit:
                        break
                    d = projected[index] / max(norms[index], unit) * length
                    st = DIRECTION_STYLES[name]
                    ax.plot([f.xy[0] - d[0], f.xy[0] + d[0]], [f.xy[1] - d[1], f.xy[1] + d[1]], color=st["color"],
                            linestyle=st["linestyle"], linewidth=1.6, zorder=5, gid=f"direction:{name}")
                    if name not in subspaces:
                        subspaces.append(name)
        st = KIND_STYLES[kind]
        ax.plot([f.xy[0]], [f.xy[1]], linestyle="none", marker=st["marker"], color=st["color"], markersize=6.5,
                markeredgecolor="white", markeredgewidth=0.8, zorder=6, gid=f"equilibrium:{kind}")
        if kind not in kinds:
            kinds.append(kind)
    for kind in KIND_STYLES:
        if kind in kinds:
            st = KIND_STYLES[kind]
            handles.append(Line2D([], [], linestyle="none", marker=st["marker"], color=st["color"], markersize=6.5,
                                  markeredgecolor="white", markeredgewidth=0.8, label=st["label"]))
    for name in DIRECTION_NAMES:
        if name in subspaces:
            st = DIRECTION_STYLES[name]
            handles.append(Line2D([], [], color=st["color"], linestyle=st["linestyle"], linewidth=1.6,
                                  label=st["label"]))
    return handles


def _validate_paths(trajectories, P: int) -> list:
    """``[(label or None, item index, array (n_points, P)), ...]``, one entry per run (a batch's runs share the
    index of their item, hence its style, and only the first carries the label)."""
    if trajectories is None:
        return []
    if isinstance(trajectories, Trajectory) or _backend.is_array(trajectories):
        items = [(None, trajectories)]
    elif isinstance(trajectories, dict):
        items = list(trajectories.items())
        for key, _ in items:
            if not isinstance(key, str):
                raise TypeError("`trajectories` given as a dict must have string keys (legend labels); "
                                f"got key {key!r}.")
    elif isinstance(trajectories, (list, tuple)):
        items = [(None, t) for t in trajectories]
    else:
        raise TypeError("`trajectories` must be a Trajectory, an array (n_points, P), a list of them or a dict "
                        f"{{label: Trajectory}}; got {describe(trajectories)}.")
    paths = []
    for i, (label, item) in enumerate(items):
        w = item.w if isinstance(item, Trajectory) else item
        try:
            w = np.asarray(_backend.to_numpy(w) if _backend.is_array(w) else w, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"`trajectories` item {i} must be a Trajectory or an array (n_points, {P}); "
                            f"got {describe(item)}.") from None
        if w.ndim == 3 and w.shape[2] == P:
            paths += [(label if j == 0 else None, i, w[:, j]) for j in range(w.shape[1])]
        elif w.ndim == 2 and w.shape[1] == P:
            paths.append((label, i, w))
        else:
            raise ValueError(f"`trajectories` item {i} must hold weights of shape (n_points, {P}) or "
                             f"(n_points, m, {P}); got shape {w.shape}.")
    return paths


def _draw_paths(ax, paths, plane: _Plane) -> list:
    handles = []
    labelled = any(name is not None for name, _, _ in paths)
    for i, (label, group, w) in enumerate(paths):
        keep = np.all(np.isfinite(w), axis=1)
        xy = plane.to_plane(w[keep])
        if xy.shape[0] == 0:
            continue
        color, linestyle = TRAJECTORY_STYLES[group % len(TRAJECTORY_STYLES)] if labelled else TRAJECTORY_STYLES[0]
        line, = ax.plot(xy[:, 0], xy[:, 1], color=color, linestyle=linestyle, linewidth=1.4, zorder=7,
                        gid="trajectory")
        ax.plot([xy[0, 0]], [xy[0, 1]], "o", color=color, markersize=3.5, zorder=7, gid="trajectory")
        if label is not None or (i == 0 and not labelled):
            line.set_label(label if label is not None else "trajectory")
            handles.append(line)
    return handles


# ============================================================================= landscape
#: Scale of a surface's 3-D box within its Axes: small enough that the z label stays inside the figure.
SURFACE_ZOOM = 0.85


@_styled
def landscape(obj, w_center=None, directions=None, extent=None, kind="surface", ax=None, plane=(0, 1),
              resolution=DEFAULT_RESOLUTION, levels=DEFAULT_LOSS_LEVELS, colorbar=True):
    r"""The loss :math:`L(w_c + \alpha u + \beta v)` on a plane, as a surface or a contour plot (Figure 2).

    Figure 2 of the paper is the degenerate valley :math:`L = \frac12 w_1^2`
    in :math:`(w_1, w_2)`: a zero eigenvalue of the Hessian, a line of minima;
    with weight decay :math:`\frac\gamma2\|w\|^2` the same loss has one
    isolated, non-degenerate minimum (the bowl).  For a network, the plane
    through a minimum along a stable and a center eigenvector shows the
    same picture in a slice (Proposition 1).

    Parameters
    ----------
    obj : Objective, compiled symbolic objective or GradientFlow
    w_center, directions, plane, extent
        The plane and window, as in :func:`phase_portrait`.
    kind : {"surface", "contour"}, default "surface"
        A 3-D surface (``ax`` must then be a 3-D Axes, ``projection="3d"``)
        or filled contours with contour lines.
    ax : Axes, optional
        Where to draw; default a new half-page figure.
    resolution : int, default ``DEFAULT_RESOLUTION`` = 81
    levels : int, default ``DEFAULT_LOSS_LEVELS`` = 16
        Number of contour levels (``kind="contour"``).
    colorbar : bool, default True
        A colour bar of :math:`L` beside a contour plot (a surface shows
        :math:`L` on its z axis).

    Returns
    -------
    matplotlib.axes.Axes
        ``Axes3D`` for a surface (its artist tagged ``gid="loss"``).
    """
    _, obj = _objective_of(obj)
    plane_, _ = _resolve_plane(obj, w_center, directions, plane)
    extent = _validate_extent(extent, plane_)
    kind = check_choice("kind", kind, LANDSCAPE_KINDS)
    ax = _validate_ax(ax, three_d=kind == "surface")
    resolution = _validate_resolution(resolution)
    levels = check_int("levels", levels, minimum=2)
    colorbar = check_bool("colorbar", colorbar)
    if ax is None:
        fig = plt.figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot(projection="3d" if kind == "surface" else None)
    _, _, X, Y, W = _grid(plane_, extent, resolution)
    L = _evaluate(obj, W, "value").reshape(resolution, resolution)
    if not np.all(np.isfinite(L)):
        warnings.warn(f"landscape: L is not finite at {int(np.sum(~np.isfinite(L)))} grid points; they are left "
                      "blank. Narrow `extent`.", RuntimeWarning, stacklevel=3)
    L = np.ma.masked_invalid(L)
    if kind == "surface":
        artist = ax.plot_surface(X, Y, L, cmap=LOSS_CMAP, linewidth=0, antialiased=True, rcount=min(resolution, 60),
                                 ccount=min(resolution, 60))
        ax.set_zlabel("$L(w)$")
        ax.view_init(elev=28, azim=-60)
        ax.set_box_aspect(None, zoom=SURFACE_ZOOM)
    else:
        artist = ax.contourf(X, Y, L, levels=levels, cmap=LOSS_CMAP)
        lines = ax.contour(X, Y, L, levels=artist.levels, colors="0.2", linewidths=0.4)
        lines.set_gid("loss-lines")
        ax.set_aspect("auto")
    artist.set_gid("loss")
    finite = L.compressed()
    if colorbar and kind == "contour" and finite.size and finite.max() > finite.min():     # a constant L has no scale
        _colorbar(ax, artist)
    ax.set_xlabel(plane_.labels[0])
    ax.set_ylabel(plane_.labels[1])
    return ax
