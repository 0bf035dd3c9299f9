"""What an experiment is and returns: the contract between experiments, the runner and the report.

An experiment is a function ``run(size, seed, out_dir) -> ExperimentResult``
registered under a short name (``"fig4"``, ``"theorem3"``) with
:func:`register`. ``size`` is ``"quick"`` (seconds; what the tests and the
default ``gradflow reproduce`` run) or ``"full"`` (the paper's sizes, from its
figure captions). It writes its figures into ``out_dir`` (atomically, with
:func:`save_figure`) and returns an :class:`ExperimentResult` whose claims each
carry a verdict decided from measured numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Callable

from .._validation import check_choice, check_seed, describe
from .._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, VERDICTS, combine

__all__ = ["Claim", "ExperimentResult", "Experiment", "REGISTRY", "register", "new_figure", "save_figure", "VERDICTS", "SIZES",
           "HOLDS", "DOES_NOT_HOLD", "INCONCLUSIVE"]

SIZES = ("quick", "full")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of the paper and what the run measured about it.

    Attributes
    ----------
    source : str
        Where the paper makes it: ``"Figure 4"``, ``"Section 4.1"``, ``"Theorem 3"``.
    statement : str
        The claim, quoted or closely paraphrased from the paper.
    verdict : str
        ``"holds"``, ``"does not hold"`` or ``"inconclusive"``.
    evidence : str
        The measured numbers that decided the verdict, in words
        (``"train loss 3.1e-12 after 250,000 steps; test loss 0.84"``).
    """

    source: str
    statement: str
    verdict: str
    evidence: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"`verdict` must be one of {VERDICTS}; got {self.verdict!r}.")


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    """What one experiment returns.

    Attributes
    ----------
    name, title : str
        The registry name and a one-line title.
    size : str
        ``"quick"`` or ``"full"``.
    seed : int
        The seed everything random in the run was drawn from.
    setup : dict
        What was run, JSON-serializable: sizes, seeds, step sizes, iterations,
        feature scaling and any departure from the paper, stated plainly.
    measurements : dict
        The numbers measured, JSON-serializable (floats, ints, strings, lists).
    claims : tuple of Claim
        Each claim checked, with its verdict.
    figures : tuple of str
        File names of the figures written, relative to the experiment's
        output directory.
    arrays : dict
        Larger numeric data (curves, spectra) as NumPy arrays; the runner
        saves them to ``data.npz`` beside the figures.
    notes : str
        Anything a reader of the report should know (what was scaled, what was
        not reproduced and why).
    """

    name: str
    title: str
    size: str
    seed: int
    setup: dict
    measurements: dict
    claims: tuple
    figures: tuple = ()
    arrays: dict = dataclasses.field(default_factory=dict)
    notes: str = ""

    @property
    def verdict(self) -> str:
        """The experiment's overall verdict: ``"does not hold"`` if any claim fails, else
        ``"inconclusive"`` if any is, else ``"holds"``."""
        return combine(claim.verdict for claim in self.claims)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name, title, the paper's figures/sections it reruns, and its function."""

    name: str
    title: str
    source: str
    run: Callable


REGISTRY: dict = {}


def register(name: str, title: str, source: str):
    """Decorator registering ``run(size, seed, out_dir) -> ExperimentResult`` under ``name``.

    The registered function checks its inputs first (``size`` one of :data:`SIZES`, ``seed`` an integer
    >= 0, ``out_dir`` a path), so every experiment called directly gets the same clear errors.
    """

    def decorate(run: Callable) -> Callable:
        if name in REGISTRY:
            raise RuntimeError(f"experiment {name!r} registered twice")

        @functools.wraps(run)
        def checked(size, seed, out_dir):
            return run(check_choice("size", size, SIZES), check_seed(seed), _validate_out_dir(out_dir))

        REGISTRY[name] = Experiment(name=name, title=title, source=source, run=checked)
        return checked

    return decorate


def _validate_out_dir(out_dir) -> pathlib.Path:
    if isinstance(out_dir, (str, os.PathLike)):
        return pathlib.Path(out_dir)
    raise TypeError(f"`out_dir` must be a directory path (str or pathlib.Path) for the figures; got {describe(out_dir)}.")


def new_figure(rows: int, cols: int, width: float, height: float, subplot_kw=None):
    """A figure in gradflow's plot style (``gf.plot.style``) with constrained layout and a ``(rows, cols)`` array of axes.

    ``subplot_kw`` maps ``(row, col)`` to keyword arguments of ``add_subplot`` (e.g. ``{"projection": "3d"}``).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .. import plot

    with plot.style():
        fig = plt.figure(figsize=(width, height), layout="constrained")
        axes = np.empty((rows, cols), dtype=object)
        for r in range(rows):
            for c in range(cols):
                axes[r, c] = fig.add_subplot(rows, cols, r * cols + c + 1, **(subplot_kw or {}).get((r, c), {}))
    return fig, axes


def save_figure(fig, out_dir, filename: str, dpi: int = 150) -> str:
    """Save a matplotlib figure atomically into ``out_dir`` and close it; return ``filename``."""
    import matplotlib.pyplot as plt

    from .._files import atomic_write

    fmt = pathlib.Path(filename).suffix.lstrip(".") or "png"
    atomic_write(pathlib.Path(out_dir) / filename, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi,
                                                                              bbox_inches="tight"))
    plt.close(fig)
    return filename
