r"""The result of every run of the dynamics: :class:`Trajectory`.

Like ``scipy.integrate.solve_ivp``'s ``OdeResult`` and diffrax's ``Solution``,
a trajectory carries the path it computed *and* how the run ended: a
``status`` and a ``message`` saying what to change when it did not end well
(divergence, a step size past the stability bound, a loss that rose along a
gradient flow).  A failure is never an exception in the middle of a long run
and never a silent NaN.

Shapes: one run gives ``w`` of shape ``(n_points, P)``; a batch of ``m`` runs
(an ensemble, the paper's 30 repetitions) gives ``(n_points, m, P)``, with
``loss`` and every metric ``(n_points, m)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import zipfile
import zlib

import numpy as np

from . import _backend, _quadratic, _threads
from ._files import atomic_write
from .objective import Objective

__all__ = ["Trajectory", "STATUSES", "evaluate_path"]

#: Largest number of activations (rows x samples x units) of one batch of weight vectors evaluated at once
#: by :func:`evaluate_path`.
PATH_CHUNK_ELEMENTS = 2**22

#: Every status a run can end with, and what it means.
STATUSES = {
    "success": "the run reached the end of its time span or step count",
    "terminated": "a terminal event stopped the run",
    "diverged": "the weights or the loss became non-finite or blew up (step size past the stability bound)",
    "failed": "the integrator could not continue (step size underflow, too many steps)",
}

_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False, init=False)
class Trajectory:
    r"""A path of the weights under the flow :math:`\dot w = -\nabla L(w)`, GD or SGD.

    Attributes
    ----------
    t : ndarray, shape (n_points,)
        Times of the flow, or iteration numbers of GD / SGD.
    w : ndarray, shape (n_points, P) or (n_points, m, P)
        The weights at those times.
    loss : ndarray, shape (n_points,) or (n_points, m)
        :math:`L(w)` (with weight decay) at those times.
    metrics : dict of str to ndarray
        ``train_loss``, ``test_loss``, ``train_error``, ``test_error``, ``norm``
        (see ``Objective.metrics``), each shaped like ``loss``.
    status : str
        One of :data:`STATUSES`.
    message : str
        What happened, and what to change when it went wrong.
    nfev : int
        Number of gradient evaluations: per run for a batch of GD / SGD runs
        (they take the same steps), the total for an ensemble of flows (each
        run adapts its own steps; ``info["nfev"]`` lists them).
    method : str
        The integrator or algorithm that produced the path.
    t_events : list of ndarray, optional
        For a flow solved with ``events``: the times at which each event fired.
    info : dict
        Anything else worth keeping (step counts, Jacobian evaluations, settings).
    """

    t: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    metrics: dict = dataclasses.field(default_factory=dict)
    status: str = "success"
    message: str = ""
    nfev: int = 0
    method: str = ""
    t_events: list | None = None
    info: dict = dataclasses.field(default_factory=dict)

    def __init__(self, t, w, loss, metrics=None, status="success", message="", nfev=0, method="", t_events=None,
                 info=None):
        if status not in STATUSES:
            raise ValueError(f"`status` must be one of {', '.join(map(repr, STATUSES))}; got {status!r}.")
        if not w.shape[0] == t.shape[0] == loss.shape[0]:
            raise ValueError(f"`t`, `w` and `loss` must have one row per point; got {t.shape[0]}, "
                             f"{w.shape[0]} and {loss.shape[0]} rows.")
        # written once, straight into the instance: the __init__ a frozen dataclass generates sets each field
        # through object.__setattr__, a microsecond a trajectory, which short compiled solves notice
        self.__dict__.update(t=t, w=w, loss=loss, metrics={} if metrics is None else metrics, status=status,
                             message=message, nfev=nfev, method=method, t_events=t_events,
                             info={} if info is None else info)

    @property
    def success(self) -> bool:
        """Whether the run ended as asked (``status`` is ``"success"`` or ``"terminated"``)."""
        return self.status in ("success", "terminated")

    @property
    def n_points(self) -> int:
        return int(self.t.shape[0])

    @property
    def is_batch(self) -> bool:
        """Whether this holds a batch of runs (``w`` of shape ``(n_points, m, P)``)."""
        return self.w.ndim == 3

    @property
    def final(self) -> np.ndarray:
        """The last recorded weights, ``(P,)`` or ``(m, P)``."""
        if self.n_points == 0:
            raise ValueError(f"this trajectory has no points (status {self.status!r}: {self.message})")
        return self.w[-1]

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.w.shape)
        span = f"[{self.t[0]:g}, {self.t[-1]:g}]" if self.n_points else "[]"
        return (f"Trajectory(method={self.method!r}, status={self.status!r}, points={self.n_points}, "
                f"w: {shape}, t: {span}, nfev={self.nfev}, message={self.message!r})")

    # ------------------------------------------------------------------ disk
    def save(self, path) -> pathlib.Path:
        """Write the trajectory to ``path`` (``.npz``: the arrays, plus JSON metadata), atomically.

        The file is written to a temporary name in the same folder and moved
        into place, so an interrupted save never leaves a half-written file.
        Returns the path written (``.npz`` is appended when missing).
        """
        path = pathlib.Path(os.fspath(path))
        if path.is_dir():
            raise ValueError(f"`path` {str(path)!r} is a folder; pass a file name in it, e.g. {str(path / 'run.npz')!r}.")
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays = {"t": self.t, "w": self.w, "loss": self.loss}
        arrays.update({f"metric__{k}": np.asarray(v) for k, v in self.metrics.items()})
        for i, times in enumerate(self.t_events or []):
            arrays[f"event__{i}"] = np.asarray(times)
        meta = {
            "format": _FORMAT_VERSION, "status": self.status, "message": self.message, "nfev": int(self.nfev),
            "method": self.method, "metrics": list(self.metrics), "n_events": None if self.t_events is None else len(self.t_events),
            "info": _jsonable(self.info),
        }
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))

    @classmethod
    def load(cls, path) -> "Trajectory":
        """Read a trajectory written by :meth:`save`."""
        path = pathlib.Path(os.fspath(path))
        if not path.exists() and path.with_name(path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"`path` {str(path)!r} is not a gradflow trajectory (not an .npz archive); write one "
                             "with Trajectory.save.") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"`path` {str(path)!r} is not a gradflow trajectory (a single .npy array, not an .npz "
                             "archive); write one with Trajectory.save.")
        with archive as data:
            if "__meta__" not in data.files:
                raise ValueError(f"`path` {str(path)!r} is not a gradflow trajectory (no metadata); write one with Trajectory.save.")
            try:
                meta = json.loads(data["__meta__"].tobytes().decode())
                if meta.get("format") != _FORMAT_VERSION:
                    raise ValueError(f"format {meta.get('format')!r}, where this gradflow reads {_FORMAT_VERSION}")
                metrics = {k: data[f"metric__{k}"] for k in meta["metrics"]}
                events = None if meta["n_events"] is None else [data[f"event__{i}"] for i in range(meta["n_events"])]
                return cls(t=data["t"], w=data["w"], loss=data["loss"], metrics=metrics, status=meta["status"],
                           message=meta["message"], nfev=meta["nfev"], method=meta["method"], t_events=events,
                           info=meta["info"])
            except (KeyError, TypeError, ValueError, AttributeError, OSError, EOFError, zipfile.BadZipFile,
                    zlib.error) as exc:
                reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                raise ValueError(f"`path` {str(path)!r} is not a valid gradflow trajectory: it is damaged or was not "
                                 f"written by Trajectory.save ({reason}).") from None


def evaluate_path(obj, W: np.ndarray):
    """Loss (with weight decay) and, for a :class:`~gradflow.Objective`, its metrics at every row of ``W`` (N, P).

    Returns NumPy arrays ``(loss (N,), {name: (N,)})``; a compiled symbolic
    objective has no data split, so its metrics are empty.  The loss is
    ``obj.value`` (the training loss plus weight decay, or what a subclass
    makes of it).  The rows are
    evaluated in chunks that bound the memory, with the BLAS thread pool held
    to one thread: the products of a recorded path are small, and a BLAS that
    spreads them over busy cores runs many times slower than one thread.  Many
    rows of a quadratic objective are evaluated from the QR factors of its
    feature matrices instead, in fewer products
    (:func:`gradflow._quadratic.path_metrics`).
    """
    N = W.shape[0]
    objective = isinstance(obj, Objective)
    if N == 0:
        names = (["train_loss", "train_error"] + (["test_loss", "test_error"] if obj.data.has_test else []) + ["norm"]
                 if objective else [])
        return np.empty(0), {k: np.empty(0) for k in names}
    if not objective:
        return _values_of_rows(obj, np.ascontiguousarray(W)), {}
    if _quadratic.is_quadratic(obj) and _quadratic.metrics_by_qr_pay(obj, N):
        with _threads.single_threaded_blas():
            return _quadratic.path_metrics(obj, np.ascontiguousarray(W, dtype=np.float64))
    xp = obj.xp
    samples = obj.data.n + (obj.data.n_test if obj.data.has_test else 0)
    rows = max(1, PATH_CHUNK_ELEMENTS // (samples * sum(obj.model.widths)))
    with np.errstate(over="ignore", invalid="ignore"), _threads.single_threaded_blas():
        parts = [obj.metrics(_backend.as_array(W[i:i + rows], xp)) for i in range(0, N, rows)]
        metrics = {k: np.concatenate([np.asarray(_backend.to_numpy(p[k]), dtype=np.float64) for p in parts])
                   for k in parts[0]}
        if type(obj).value is Objective.value:
            loss = metrics["train_loss"] + (0.5 * obj.weight_decay * np.einsum("np,np->n", W, W) if obj.weight_decay
                                            else 0.0)
        else:                                         # a subclass that changes L (a penalty): its own value
            loss = _values_of_rows(obj, np.ascontiguousarray(W))
    return loss, metrics


def _values_of_rows(obj, W: np.ndarray) -> np.ndarray:
    """``obj.value`` of every row of ``W``: in one call when ``value`` takes a batch (as compiled symbolic objectives
    do), otherwise row by row (an objective-like object whose ``value`` takes one vector)."""
    try:
        values = np.asarray(_backend.to_numpy(obj.value(W)), dtype=np.float64)
        if values.shape == (W.shape[0],):
            return values
    except (ValueError, TypeError):
        pass
    return np.array([float(_backend.to_numpy(obj.value(w))) for w in W])


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
