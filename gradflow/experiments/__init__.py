"""The paper's numerical evidence as library functions, the runner behind ``gradflow reproduce``, and its report.

Every experiment of *Theory of Deep Learning III* that gradflow reruns is a
function ``run(size, seed, out_dir) -> ExperimentResult`` registered under a
short name (``"fig2"``, ``"fig4"``, ..., ``"theorem3"``)::

    import gradflow as gf

    gf.experiments.list_experiments()                    # name, title, source of each
    result = gf.experiments.run("fig4", size="quick", seed=0, out="results")
    result.verdict, [c.verdict for c in result.claims]
    results = gf.experiments.reproduce(["fig2", "fig4"], out="results", size="quick", jobs=2)
    gf.experiments.write_report(results, "results")     # results/report.md and report.json

``size="quick"`` runs in seconds (the tests and the default of ``gradflow
reproduce``); ``size="full"`` runs the paper's sizes from its figure captions.

Modules: :mod:`~gradflow.experiments.regression` (Figures 2, 4, 13, 15, 16),
:mod:`~gradflow.experiments.networks` (Figures 1, 3, 8, 9, 10, 11, Theorem 3),
:mod:`~gradflow.experiments.dynamics` (Section 4: Hartman-Grobman, center manifolds, weight decay).
"""

from . import dynamics, networks, regression  # noqa: F401  (importing them registers their experiments)
from ._core import REGISTRY, SIZES, Claim, Experiment, ExperimentResult, new_figure, register, save_figure
from ._report import render_markdown, report_data, write_report
from ._runner import (DEFAULT_JOBS, DEFAULT_OUT, DEFAULT_SEED, DEFAULT_SIZE, ExperimentFailure, experiment_dir,
                      list_experiments, load_result, reproduce, run)

__all__ = ["list_experiments", "run", "reproduce", "write_report", "load_result", "experiment_dir",
           "render_markdown", "report_data", "Claim", "ExperimentResult", "ExperimentFailure", "Experiment",
           "register", "save_figure", "REGISTRY", "SIZES", "DEFAULT_OUT", "DEFAULT_SIZE", "DEFAULT_SEED",
           "DEFAULT_JOBS", "regression", "networks", "dynamics", "new_figure"]
