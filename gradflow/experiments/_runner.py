"""Running registered experiments into an output folder: one folder per experiment, atomic, resumable, in parallel.

Layout of an output folder ``DIR``::

    DIR/report.md, DIR/report.json        the report (see ``_report.py``), regenerated after every run
    DIR/<name>/result.json                the ExperimentResult as JSON: written last, the completeness marker
    DIR/<name>/data.npz                   ExperimentResult.arrays
    DIR/<name>/<figure files>

Each experiment is built in a hidden sibling folder ``DIR/.<name>.<random>.partial``
and renamed into place only when its ``result.json`` is written, so an
interrupted or crashed run (Ctrl-C, an exception) never leaves a half-written
``DIR/<name>``: the folder is either the previous complete result or the new
one.  An experiment is *complete* when ``DIR/<name>/result.json`` exists,
reads back, and has the requested size and seed (and its data and figures are
there); :func:`reproduce` skips complete experiments unless ``force``.
One ``reproduce`` at a time per output folder.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time
import traceback

import numpy as np

from .._files import atomic_write
from .._validation import check_bool, check_choice, check_int, check_seed, describe
from ._core import REGISTRY, SIZES, Claim, ExperimentResult

__all__ = ["ExperimentFailure", "list_experiments", "run", "reproduce", "load_result", "experiment_dir",
           "DEFAULT_OUT", "DEFAULT_SIZE", "DEFAULT_SEED", "DEFAULT_JOBS", "RESULT_FILE", "DATA_FILE", "FAILED"]

#: Default output folder of :func:`run` and :func:`reproduce` (relative to the current directory).
DEFAULT_OUT = "gradflow-results"
#: Default size: the quick runs (seconds each).
DEFAULT_SIZE = "quick"
#: Default seed of every experiment.
DEFAULT_SEED = 0
#: Default number of worker processes of :func:`reproduce` (1: run in this process).
DEFAULT_JOBS = 1
#: The completeness marker of an experiment's folder, written last.
RESULT_FILE = "result.json"
#: ``ExperimentResult.arrays``, saved beside the figures.
DATA_FILE = "data.npz"
#: The verdict shown for an experiment that raised.
FAILED = "failed"
#: Version of the ``result.json`` layout.
RESULT_FORMAT = 1

_PARTIAL_SUFFIX = ".partial"


@dataclasses.dataclass(frozen=True)
class ExperimentFailure:
    """An experiment that raised instead of returning an :class:`ExperimentResult`.

    Attributes
    ----------
    name, title, size : str
    seed : int
    error : str
        The last line of the traceback (``"ValueError: ..."``).
    traceback : str
        The whole traceback.
    """

    name: str
    title: str
    size: str
    seed: int
    error: str
    traceback: str = ""

    @property
    def verdict(self) -> str:
        """Always ``"failed"``."""
        return FAILED


# ============================================================================= validation
def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _registered() -> list:
    return sorted(REGISTRY, key=_natural_key)


def _validate_names(names) -> list:
    """``names`` as a list of registered names (None or empty: all), duplicates dropped, order kept."""
    valid = _registered()
    if names is None:
        return valid
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise TypeError(f"`names` must be an experiment name or a list of them, e.g. ['fig2', 'fig4']; "
                        f"got {describe(names)}.") from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"`names` must hold strings (experiment names such as 'fig2'); got {describe(name)}.")
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise ValueError(f"`names` must be registered experiments ({', '.join(valid)}); got unknown "
                         f"{', '.join(repr(n) for n in unknown)}. Run `gradflow list` to see them.")
    return list(dict.fromkeys(names)) or valid


def _validate_out(out) -> pathlib.Path:
    """``out`` as a Path to a folder that exists or can be created, and can be written."""
    if isinstance(out, bytes) or not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"`out` must be a folder path (str or pathlib.Path); got {describe(out)}.")
    path = pathlib.Path(out).expanduser()
    if str(out) == "":
        raise ValueError("`out` must be a folder path; got an empty string. Pass e.g. out='gradflow-results'.")
    if path.exists() and not path.is_dir():
        raise ValueError(f"`out` must be a folder; {str(path)!r} exists and is not one. Choose another output folder.")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"`out` {str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder. "
                         "Choose another output folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"`out` {str(path)!r} is not writable (no write permission in {str(existing)!r}). "
                         "Choose a folder you can write to.")
    return path


def _validate_size(size) -> str:
    return check_choice("size", size, SIZES)


def _validate_jobs(jobs) -> int:
    return check_int("jobs", jobs, minimum=1)


def _validate_force(force) -> bool:
    return check_bool("force", force)


def _validate_progress(progress) -> bool:
    return check_bool("progress", progress)


# ============================================================================= listing, loading
def list_experiments() -> list:
    """The registered experiments (:class:`~gradflow.experiments.Experiment`: name, title, source, run), in
    natural order of their names (fig1, fig2, ..., fig16, theorem3)."""
    return [REGISTRY[name] for name in _registered()]


def experiment_dir(out, name: str) -> pathlib.Path:
    """``out/<name>``, where :func:`run` and :func:`reproduce` put an experiment's files."""
    return pathlib.Path(out) / name


def load_result(out, name: str, size: str | None = None, seed: int | None = None):
    """The complete result of ``name`` (a registered experiment) in ``out`` as an :class:`ExperimentResult`, or None.

    Complete means: ``out/<name>/result.json`` reads back, names ``name``, was
    written by this version of gradflow (another version may decide its
    claims differently), has the given ``size`` and ``seed`` (when given), and
    its data file and figures exist.
    """
    from .. import __version__

    name = _validate_name(name)
    folder = experiment_dir(out, name)
    try:
        record = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
        if (record.get("format") != RESULT_FORMAT or record.get("name") != name
                or record.get("gradflow_version") != __version__):
            return None
        if (size is not None and record.get("size") != size) or (seed is not None and record.get("seed") != seed):
            return None
        figures = tuple(record.get("figures", ()))
        if not (folder / DATA_FILE).is_file() or not all((folder / f).is_file() for f in figures):
            return None
        with np.load(folder / DATA_FILE, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        claims = tuple(Claim(c["source"], c["statement"], c["verdict"], c["evidence"]) for c in record["claims"])
        return ExperimentResult(name=record["name"], title=record["title"], size=record["size"], seed=record["seed"],
                                setup=record.get("setup", {}), measurements=record.get("measurements", {}),
                                claims=claims, figures=figures, arrays=arrays, notes=record.get("notes", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ============================================================================= JSON
def jsonable(value):
    """``value`` made JSON-serializable: NumPy scalars and arrays to Python, tuples to lists, non-finite floats to
    the strings ``"nan"``, ``"inf"``, ``"-inf"``, anything else unknown to ``str(value)``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def result_record(result: ExperimentResult, source: str = "", elapsed: float | None = None) -> dict:
    """The JSON record of a result (what ``result.json`` holds), without its arrays."""
    from .. import __version__

    return {
        "format": RESULT_FORMAT, "gradflow_version": __version__, "name": result.name, "title": result.title,
        "source": source, "size": result.size, "seed": result.seed, "verdict": result.verdict,
        "claims": [dataclasses.asdict(c) for c in result.claims], "setup": jsonable(result.setup),
        "measurements": jsonable(result.measurements), "figures": list(result.figures), "notes": result.notes,
        "arrays": sorted(result.arrays), "elapsed_s": elapsed,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write_text(path: pathlib.Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


# ============================================================================= running one experiment
def _check_result(result, name: str, size: str, seed: int) -> ExperimentResult:
    if not isinstance(result, ExperimentResult):
        raise TypeError(f"experiment {name!r} returned {describe(result)}, not an ExperimentResult")
    if (result.name, result.size, result.seed) != (name, size, seed):
        raise ValueError(f"experiment {name!r} returned a result for name={result.name!r}, size={result.size!r}, "
                         f"seed={result.seed!r}; expected {name!r}, {size!r}, {seed!r}")
    return result


def _replace_dir(new: pathlib.Path, final: pathlib.Path) -> None:
    """Move the finished folder ``new`` to ``final``, replacing an older ``final`` (moved aside, then deleted)."""
    if not (final.exists() or final.is_symlink()):
        os.rename(new, final)
        return
    aside = pathlib.Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    os.rename(final, aside / final.name)
    try:
        os.rename(new, final)
    except BaseException:   # put the previous result back rather than leave no result at all
        if not final.exists():
            os.rename(aside / final.name, final)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _build(name: str, size: str, seed: int, out: pathlib.Path) -> tuple:
    """Run experiment ``name`` into a hidden sibling folder and rename it to ``out/<name>`` when complete.

    Returns ``(result, elapsed seconds)``; on any exception (or Ctrl-C) the
    partial folder is removed and the exception propagates.
    """
    experiment = REGISTRY[name]
    out.mkdir(parents=True, exist_ok=True)
    partial = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=_PARTIAL_SUFFIX, dir=out))
    os.chmod(partial, _folder_mode())   # mkdtemp makes it private; the result folder should be like any other
    try:
        start = time.perf_counter()
        result = _check_result(experiment.run(size, seed, partial), name, size, seed)
        arrays = {str(k): np.asarray(v) for k, v in result.arrays.items()}
        atomic_write(partial / DATA_FILE, lambda handle: np.savez_compressed(handle, **arrays))
        missing = [f for f in result.figures if not (partial / f).is_file()]
        if missing:
            raise FileNotFoundError(f"experiment {name!r} lists figures it did not write: {', '.join(missing)}")
        elapsed = time.perf_counter() - start
        record = result_record(result, experiment.source, elapsed)
        _write_text(partial / RESULT_FILE, json.dumps(record, indent=2, allow_nan=False) + "\n")
        _replace_dir(partial, experiment_dir(out, name))
        return result, elapsed
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _folder_mode() -> int:
    """The permissions a new folder gets under the current umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o777 & ~mask


def _error_line(exc: BaseException) -> str:
    """The last entry of the traceback (``"ValueError: message"``) on one line (a multi-line message joined by " / ")."""
    lines = [line.strip() for line in "".join(traceback.format_exception_only(type(exc), exc)).splitlines()]
    return " / ".join(line for line in lines if line) or type(exc).__name__


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"gradflow: {text}", file=sys.stderr, flush=True)


def _attempt(name: str, size: str, seed: int, out: str, progress: bool, position: str):
    """Run one experiment, catching its exceptions (not Ctrl-C): ``(result or ExperimentFailure, elapsed)``."""
    _say(progress, f"{name}{position} started")
    start = time.perf_counter()
    try:
        result, elapsed = _build(name, size, seed, pathlib.Path(out))
    except Exception as exc:  # an experiment that raises is reported as failed; the others still run
        elapsed = time.perf_counter() - start
        failure = ExperimentFailure(name, REGISTRY[name].title, size, seed, _error_line(exc), traceback.format_exc())
        return failure, elapsed
    return result, elapsed


def _worker_init(blas_threads: int) -> None:
    """Hold each worker's BLAS (and numba) thread pools to its share of the cores."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=blas_threads)
    try:
        import numba

        numba.set_num_threads(max(1, min(blas_threads, numba.config.NUMBA_NUM_THREADS)))
    except (ImportError, ValueError):  # pragma: no cover - numba is a dependency
        pass


# ============================================================================= public entry points
def run(name: str, size: str = DEFAULT_SIZE, seed: int = DEFAULT_SEED, out=DEFAULT_OUT) -> ExperimentResult:
    """Run one experiment and store it in ``out/<name>`` (replacing what was there), atomically.

    Parameters
    ----------
    name : str
        A registered experiment (:func:`list_experiments`).
    size : {"quick", "full"}, default ``DEFAULT_SIZE`` = "quick"
        "full" is the paper's sizes (figure captions).
    seed : int, default ``DEFAULT_SEED`` = 0
    out : str or Path, default ``DEFAULT_OUT`` = "gradflow-results"
        The output folder; the experiment's figures, ``data.npz`` and
        ``result.json`` go to ``out/<name>/``.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError, TypeError
        Bad arguments (nothing is written).
    Exception
        Whatever the experiment raised (nothing is left in ``out/<name>``'s place).
    """
    name = _validate_name(name)
    size = _validate_size(size)
    seed = check_seed(seed)
    out = _validate_out(out)
    result, _ = _build(name, size, seed, out)
    return result


def _validate_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"`name` must be an experiment name (a string such as 'fig2'); got {describe(name)}.")
    if name not in REGISTRY:
        raise ValueError(f"`name` must be a registered experiment ({', '.join(_registered())}); got {name!r}. "
                         "Run `gradflow list` to see them.")
    return name


def reproduce(names=None, out=DEFAULT_OUT, size: str = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
              jobs: int = DEFAULT_JOBS, force: bool = False, progress: bool = True) -> list:
    """Run the paper's experiments into ``out`` and write ``out/report.md`` and ``out/report.json``.

    The report covers the experiments run now and every other complete one
    already in ``out`` with the same size and seed, so that running the
    experiments one at a time into one folder builds up one report.

    Parameters
    ----------
    names : str or sequence of str, optional
        Registered experiments to run; default (None or empty) all of them.
    out : str or Path, default ``DEFAULT_OUT`` = "gradflow-results"
        Output folder (created if needed); each experiment goes to ``out/<name>/``.
    size : {"quick", "full"}, default "quick"
    seed : int, default 0
    jobs : int, default ``DEFAULT_JOBS`` = 1
        Worker processes; with 1 the experiments run in this process, one
        after the other.  Each worker's BLAS and numba pools get
        ``max(1, cpu_count // jobs)`` threads.
    force : bool, default False
        Rerun experiments whose outputs in ``out`` are already complete (same
        size and seed); by default they are loaded and skipped.
    progress : bool, default True
        One line per experiment on stderr (started, finished with its time and
        verdict, skipped, failed); long runs also show their own tqdm bars when
        stderr is a terminal.

    Returns
    -------
    list of ExperimentResult or ExperimentFailure
        In the order of ``names``; an experiment that raised is an
        :class:`ExperimentFailure` (its traceback's last line in the report),
        and the others still run.

    Raises
    ------
    ValueError, TypeError
        Unknown names, an ``out`` that is a file or not writable, ``jobs < 1``
        and other bad arguments, before anything is written.
    KeyboardInterrupt
        Ctrl-C: experiments finished so far stay complete in ``out``; the one
        running leaves nothing behind; the report is not rewritten.
    """
    from ._report import write_report

    names = _validate_names(names)
    out = _validate_out(out)
    size = _validate_size(size)
    seed = check_seed(seed)
    jobs = _validate_jobs(jobs)
    force = _validate_force(force)
    progress = _validate_progress(progress)

    total = len(names)
    results: dict = {}
    todo = []
    for i, name in enumerate(names):
        existing = None if force else load_result(out, name, size, seed)
        if existing is not None:
            results[name] = existing
            _say(progress, f"{name} ({i + 1}/{total}) skipped: complete in {experiment_dir(out, name)} "
                           f"({existing.verdict}); rerun it with --force (force=True)")
        else:
            todo.append((i, name))

    def finished(name, outcome, elapsed, position):
        results[name] = outcome
        if isinstance(outcome, ExperimentFailure):
            _say(progress, f"{name}{position} FAILED after {elapsed:.1f} s: {outcome.error}")
        else:
            _say(progress, f"{name}{position} finished in {elapsed:.1f} s: {outcome.verdict}")

    workers = min(jobs, len(todo))
    if workers <= 1:
        for i, name in todo:
            position = f" ({i + 1}/{total})"
            outcome, elapsed = _attempt(name, size, seed, str(out), progress, position)
            finished(name, outcome, elapsed, position)
    elif todo:
        blas_threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                          initializer=_worker_init, initargs=(blas_threads,))
        # At most `workers` experiments are handed to the pool at a time, so none is queued inside it: on Ctrl-C
        # (which reaches the workers too) the running ones clean up and nothing new starts.
        pending, running = list(todo), {}
        try:
            while pending or running:
                while pending and len(running) < workers:
                    i, name = pending.pop(0)
                    future = executor.submit(_attempt, name, size, seed, str(out), progress, f" ({i + 1}/{total})")
                    running[future] = (i, name)
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    i, name = running.pop(future)
                    try:
                        outcome, elapsed = future.result()
                    except Exception as exc:  # the worker process died (e.g. killed): report it, keep going
                        outcome, elapsed = ExperimentFailure(name, REGISTRY[name].title, size, seed, _error_line(exc),
                                                             "".join(traceback.format_exception(exc))), 0.0
                    finished(name, outcome, elapsed, f" ({i + 1}/{total})")
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        executor.shutdown(wait=True)

    ordered = [results[name] for name in names]
    earlier = [result for name in _registered() if name not in results
               for result in [load_result(out, name, size, seed)] if result is not None]
    write_report(sorted(ordered + earlier, key=lambda r: _natural_key(r.name)), out)
    _say(progress, f"report: {out / 'report.md'}")
    return ordered
