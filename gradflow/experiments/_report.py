"""The report of ``gradflow reproduce``: ``report.md`` for people, ``report.json`` for programs.

One section per experiment: the paper's claims quoted with their figure or
section, what was run (sizes, seeds, step sizes, feature scaling), the measured
numbers, the verdict of each claim with the numbers that decided it, the
figures and notes.  A table at the top maps every experiment to its overall
verdict.  A claim that does not hold is reported as such: the report's value
is that it is honest.  Both files are written atomically.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

from .._files import atomic_write
from .._validation import describe
from .._verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from ._core import REGISTRY, ExperimentResult
from ._runner import FAILED, ExperimentFailure, _validate_out, jsonable

__all__ = ["write_report", "render_markdown", "report_data", "REPORT_MD", "REPORT_JSON"]

#: File names of the report inside the output folder.
REPORT_MD, REPORT_JSON = "report.md", "report.json"
#: Version of the ``report.json`` layout.
REPORT_FORMAT = 1
#: Lists longer than this are shortened in ``report.md`` (``report.json`` keeps them whole).
MAX_LIST_ITEMS = 8
#: Significant digits of floats in ``report.md``.
DIGITS = 4

_INTRO = ("Each section quotes a claim of *Theory of Deep Learning III* (by figure or section), says what was run and "
          "what was measured, and gives the verdict -- **holds**, **does not hold** or **inconclusive** -- decided "
          "from the measured numbers against the thresholds stated with them. A claim that does not hold is "
          "reported as such.")


def _validate_results(results) -> list:
    if isinstance(results, (ExperimentResult, ExperimentFailure)):
        return [results]
    try:
        results = list(results)
    except TypeError:
        raise TypeError(f"`results` must be a list of ExperimentResult (or ExperimentFailure); "
                        f"got {describe(results)}.") from None
    for item in results:
        if not isinstance(item, (ExperimentResult, ExperimentFailure)):
            raise TypeError(f"`results` must hold ExperimentResult or ExperimentFailure objects, as returned by "
                            f"gf.experiments.reproduce or run; got {describe(item)}.")
    return results


def _source(name: str) -> str:
    experiment = REGISTRY.get(name)
    return experiment.source if experiment is not None else ""


# ============================================================================= JSON
def report_data(results) -> dict:
    """The content of ``report.json``: a summary ``{name: verdict}`` and one record per experiment."""
    from .. import __version__

    results = _validate_results(results)
    experiments = []
    for r in results:
        if isinstance(r, ExperimentFailure):
            experiments.append({"name": r.name, "title": r.title, "source": _source(r.name), "status": FAILED,
                                "verdict": FAILED, "size": r.size, "seed": r.seed, "error": r.error,
                                "traceback": r.traceback})
        else:
            experiments.append({
                "name": r.name, "title": r.title, "source": _source(r.name), "status": "ok", "verdict": r.verdict,
                "size": r.size, "seed": r.seed,
                "claims": [{"source": c.source, "statement": c.statement, "verdict": c.verdict, "evidence": c.evidence}
                           for c in r.claims],
                "setup": jsonable(r.setup), "measurements": jsonable(r.measurements),
                "figures": [f"{r.name}/{f}" for f in r.figures], "data": f"{r.name}/data.npz", "notes": r.notes,
            })
    return {"format": REPORT_FORMAT, "gradflow_version": __version__,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": {e["name"]: e["verdict"] for e in experiments}, "experiments": experiments}


# ============================================================================= Markdown
def _number(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{DIGITS}g}"
    return str(x)


def _value(x) -> str:
    """A short rendering of a JSON value for a Markdown bullet."""
    if isinstance(x, dict):
        return "; ".join(f"{k}: {_value(v)}" for k, v in x.items())
    if isinstance(x, list):
        items = [_value(v) for v in x[:MAX_LIST_ITEMS]]
        more = f", ... ({len(x)} values)" if len(x) > MAX_LIST_ITEMS else ""
        return "[" + ", ".join(items) + more + "]"
    return _number(x)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anchor(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch in "-_")


def _bullets(mapping: dict) -> list:
    lines = []
    for key, value in jsonable(mapping).items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            lines.append(f"- **{key}**:")
            lines.extend(f"  - {k}: {_value(v)}" for k, v in value.items())
        else:
            lines.append(f"- **{key}**: {_value(value)}")
    return lines or ["- (none recorded)"]


def _counts(result) -> str:
    if isinstance(result, ExperimentFailure):
        return "--"
    verdicts = [c.verdict for c in result.claims]
    return " / ".join(str(verdicts.count(v)) for v in (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE))


def render_markdown(results) -> str:
    """The text of ``report.md`` for ``results`` (see the module docstring)."""
    from .. import __version__

    results = _validate_results(results)
    sizes = sorted({r.size for r in results})
    seeds = sorted({r.seed for r in results})
    lines = ["# gradflow reproduce: report", "",
             f"gradflow {__version__}; size {', '.join(sizes) or '-'}; seed {', '.join(map(str, seeds)) or '-'}; "
             f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "", _INTRO, "",
             "| experiment | paper | verdict | claims: holds / does not hold / inconclusive |",
             "|---|---|---|---|"]
    for r in results:
        lines.append(f"| [{r.name}](#{_anchor(r.name)}) | {_cell(_source(r.name))} | **{r.verdict}** | {_counts(r)} |")
    if not results:
        lines.append("| (no experiments) | | | |")
    for r in results:
        lines += ["", f"<a id=\"{_anchor(r.name)}\"></a>", f"## {r.name}: {r.title}", ""]
        source = _source(r.name)
        head = f"Paper: {source}. " if source else ""
        lines.append(f"{head}Size {r.size}, seed {r.seed}. **Verdict: {r.verdict}.**")
        if isinstance(r, ExperimentFailure):
            lines += ["", "The experiment raised an exception, so none of its claims could be checked:", "",
                      f"    {r.error}", "", "The full traceback is in `report.json`."]
            continue
        lines += ["", "### Claims and verdicts", ""]
        for k, claim in enumerate(r.claims, 1):
            lines += [f"{k}. **{claim.verdict}** ({claim.source})", "",
                      f"   > {claim.statement}", "",
                      f"   Measured: {claim.evidence}", ""]
        if not r.claims:
            lines += ["(no claims were checked)", ""]
        lines += ["### What was run", ""] + _bullets(r.setup)
        lines += ["", "### Measured", ""] + _bullets(r.measurements)
        if r.notes:
            lines += ["", "### Notes", "", r.notes]
        if r.figures:
            lines += ["", "### Figures", ""]
            lines += [f"![{r.name}: {f}]({r.name}/{f})" for f in r.figures]
    return "\n".join(lines) + "\n"


# ============================================================================= writing
def write_report(results, out) -> pathlib.Path:
    """Write ``out/report.md`` and ``out/report.json`` for ``results`` (atomically); return the Markdown path.

    Parameters
    ----------
    results : sequence of ExperimentResult or ExperimentFailure
        As returned by :func:`gradflow.experiments.reproduce`; figures are
        linked as ``<name>/<figure>`` relative to ``out``.
    out : str or Path
        The output folder (created if needed).
    """
    results = _validate_results(results)
    out = _validate_out(out)
    markdown = render_markdown(results)
    data = json.dumps(report_data(results), indent=2, allow_nan=False) + "\n"
    atomic_write(out / REPORT_JSON, lambda handle: handle.write(data.encode("utf-8")))
    return atomic_write(out / REPORT_MD, lambda handle: handle.write(markdown.encode("utf-8")))
