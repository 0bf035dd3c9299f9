r"""Discrete dynamics: gradient descent, stochastic gradient descent and the paper's perturbation protocol.

Gradient descent is the explicit Euler discretization of the gradient flow
:math:`\dot W = -\nabla L(W)` (Equation 1 of *Theory of Deep Learning III*),

.. math::

    w_{s+1} = w_s - \eta\,\nabla L(w_s), \qquad s = 0, 1, \dots, S - 1,

stable near a minimum exactly when :math:`\eta < 2/\lambda_{\max}`, with
:math:`\lambda_{\max}` the largest eigenvalue of the Hessian
:math:`\nabla^2 L`.  :func:`sgd` replaces the gradient by the gradient of the
same loss on a mini-batch.  A :class:`Perturbation` adds Gaussian noise to the
weights every few steps: the experiment of the paper's Section 4.1 and
Figures 3, 4 and 16, which probes the degenerate directions of a zero-loss
minimum (Proposition 1): GD pushes the non-degenerate components back, while
the components in the null space of the Hessian keep the noise and random-walk.

Three engines move the weights, all block by block: a block of recorded steps
ends at a perturbation (or after ``BLOCK_UPDATES`` weight updates), and the
health checks and the progress bar run between blocks:

* **quadratic** (``method="gd-quadratic"``): when the loss is quadratic
  (:class:`~gradflow.models.FeatureRegression` with the square loss, with or
  without weight decay) GD is linear, :math:`w_{s+1} = w_s - \eta(H w_s - b)`,
  and is solved exactly in the eigenbasis of :math:`H` (see :func:`gd`);
* **compiled**: a numba loop over the steps that calls the objective's
  compiled gradient kernel (``gradflow._kernels``); for :func:`sgd` on a
  network, the loop gathers each step's mini-batch (drawn beforehand, in
  Python, from the seeded schedule) and calls the same kernel on it;
* **array**: ``w -= lr * obj.grad(w)`` in the objective's array library (NumPy,
  CuPy), used when no compiled kernel exists.

Every run returns a :class:`~gradflow.trajectory.Trajectory`.  A run that
diverges (non-finite weights, or weights that grow by a factor
:data:`DIVERGENCE_NORM_RATIO`) stops with status ``"diverged"`` and a message
naming :math:`\lambda_{\max}` at ``w0`` and the stable bound
:math:`2/\lambda_{\max}`; the trajectory keeps its finite part.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys

import numba
import numpy as np

from . import _backend, _kernels, _quadratic, _threads, _validation
from ._validation import (check_bool, check_choice, check_dense_fits, check_int, check_real, check_seed, dense_fits,
                          describe)
from .objective import Objective
from .trajectory import Trajectory, evaluate_path

__all__ = ["Perturbation", "gd", "sgd", "METHODS"]

#: Default step size of :func:`gd` (the paper's Figures 4, 15, 16).
DEFAULT_LR = 0.2
#: Default number of iterations of :func:`gd` (the paper's Figures 4, 15, 16).
DEFAULT_STEPS = 250_000
#: Default spacing of the recorded iterations of :func:`gd`.
DEFAULT_RECORD_EVERY = 100
#: Default ``method`` of :func:`gd`.
DEFAULT_METHOD = "auto"
#: Default step size of :func:`sgd`.
SGD_DEFAULT_LR = 0.1
#: Default number of iterations of :func:`sgd`.
SGD_DEFAULT_STEPS = 10_000
#: Default mini-batch size of :func:`sgd`.
SGD_DEFAULT_BATCH_SIZE = 8
#: Default spacing of the recorded iterations of :func:`sgd`.
SGD_DEFAULT_RECORD_EVERY = 100
#: Default seed of :func:`sgd`'s mini-batch sampling and of :class:`Perturbation`.
DEFAULT_SEED = 0

#: Every ``method`` :func:`gd` accepts, with what it does.
METHODS = {
    "auto": "the quadratic propagator when the objective is quadratic and its dense Hessian fits in half of the "
            f"memory this process may use ({_quadratic.DENSE_MATRICES} P x P matrices), otherwise iterate",
    "iterate": "iterate w <- w - lr * grad L(w): a compiled numba loop when the objective has compiled kernels, "
               "otherwise array code",
    "quadratic": "the exact spectral propagator of GD on a quadratic loss (FeatureRegression with the square loss)",
}

#: A run has diverged when a repetition's weights are non-finite or their norm exceeds this
#: factor times ``max(1, ||w0||)``.
DIVERGENCE_NORM_RATIO = 1e50
#: Up to this many parameters :math:`\lambda_{\max}` (for divergence messages) comes from the dense
#: Hessian; above it, from :data:`POWER_ITERATIONS` power iterations on ``obj.hvp``.
DENSE_HESSIAN_MAX_SIZE = 1000
#: Copies of the recorded path a run holds at its peak (the path and what its evaluation builds from it).
PATH_COPIES = 2
#: Mini-batch steps the compiled SGD loop runs per call: their sample indices, (steps, m, batch_size) integers,
#: are drawn before the call, so this bounds that array however far apart the recorded steps are.
SGD_STEPS_PER_CALL = 1024
#: Most weight updates (steps x repetitions x parameters) in one call of an engine: between calls GD checks for
#: divergence and moves the progress bar.
BLOCK_UPDATES = 2**26
#: Most weights (recorded steps x repetitions x parameters) one call of an engine returns.
BLOCK_STATES = 2**22
#: Power iterations used to estimate :math:`\lambda_{\max}` of a large Hessian.
POWER_ITERATIONS = 100
#: With ``progress=None`` a bar is shown only for runs of at least this many steps (and on a terminal).
PROGRESS_MIN_STEPS = 10_000
#: Cap on :math:`t \log|1 - \eta\lambda|` in the quadratic propagator, so a divergent run never overflows.
LOG_GROWTH_CLIP = 300.0

_INT = np.int64


# --------------------------------------------------------------------------- perturbation
@dataclasses.dataclass(frozen=True)
class Perturbation:
    r"""Gaussian noise added to every weight every ``every`` steps: the protocol of the paper's Section 4.1.

    The noise is added after steps ``every, 2 every, 3 every, ...`` that are
    before the last step (never at step 0, never after the final step):

    .. math::

        w \leftarrow w + \varepsilon, \qquad \varepsilon_j \sim \mathcal N(0, s_j^2) \text{ i.i.d.},

    with :math:`s_j = \sigma` (absolute, the paper's Figures 4 and 16 with
    :math:`\sigma = 0.6`) or, when ``relative``, :math:`s_j = \sigma\,\operatorname{std}(W_l)`
    for the weights :math:`j` of layer :math:`l` (the standard deviation of
    the current entries of that layer's weight matrix; the paper's Figure 3
    adds noise with "¼ of the standard deviation of the weights of the
    corresponding layer": ``Perturbation(every, 0.25, relative=True)``).  A
    layer's bias vector gets the noise scale of its weight matrix (a bias is
    often all zeros, with no spread of its own).  A layer with a single weight
    has no spread to scale by, so a relative perturbation refuses it.  For a
    batch of repetitions each one uses its own layer standard deviations.

    Parameters
    ----------
    every : int
        Steps between perturbations, >= 1.
    sigma : float
        Standard deviation (absolute) or its ratio to each layer's standard deviation (relative), >= 0.
    relative : bool, default False
    seed : int, default ``DEFAULT_SEED`` = 0
        The noise of the ``k``-th perturbation is drawn from
        ``numpy.random.default_rng([seed, k])``: the same seed gives the same
        noise on every engine, every repetition of a batch gets independent
        noise, and the noise does not depend on the record spacing.

    Examples
    --------
    >>> Perturbation(every=4000, sigma=0.6).steps(10_000)
    array([4000, 8000])
    """

    every: int
    sigma: float
    relative: bool = False
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        object.__setattr__(self, "every", _validate_every(self.every))
        object.__setattr__(self, "sigma", _validate_sigma(self.sigma))
        object.__setattr__(self, "relative", check_bool("relative", self.relative))
        object.__setattr__(self, "seed", check_seed(self.seed))

    def steps(self, n_steps: int) -> np.ndarray:
        """The steps after which noise is added in a run of ``n_steps`` steps: multiples of ``every`` below ``n_steps``."""
        n_steps = check_int("n_steps", n_steps, minimum=0)
        return np.arange(self.every, n_steps, self.every, dtype=_INT)

    def noise(self, index: int, w, parameter_shapes=None) -> np.ndarray:
        """The noise of the ``index``-th perturbation (1, 2, ...) for weights ``w`` (``(P,)`` or ``(m, P)``, NumPy).

        ``parameter_shapes`` (``model.parameter_shapes``) gives the layer
        slices of the flat vector; it is needed when ``relative``.
        """
        index = check_int("index", index, minimum=1)
        w = np.asarray(w, dtype=np.float64)
        z = np.random.default_rng([self.seed, index]).standard_normal(w.shape)
        if not self.relative:
            return self.sigma * z
        if parameter_shapes is None:
            raise ValueError("`parameter_shapes` is needed for a relative perturbation; pass obj.model.parameter_shapes.")
        layers = _relative_layers(parameter_shapes)
        if layers[-1][2] != w.shape[-1]:
            raise ValueError(f"`parameter_shapes` cover {layers[-1][2]} parameters but `w` has {w.shape[-1]}; pass "
                             "obj.model.parameter_shapes.")
        scale = np.empty_like(w)
        for start, weights_stop, stop in layers:
            scale[..., start:stop] = self.sigma * np.std(w[..., start:weights_stop], axis=-1, keepdims=True)
        return scale * z


def _relative_layers(parameter_shapes) -> list:
    """The layers of a flat weight vector as ``(start, weights_stop, stop)``: the noise of a relative perturbation on
    ``[start, stop)`` is scaled by the standard deviation of ``[start, weights_stop)``.

    A 1-D array right after a 2-D one is that layer's bias and joins it; any other array is a layer of its own.
    Raises ``ValueError`` for a layer with a single weight, whose standard deviation is always 0.
    """
    layers, start, previous = [], 0, None
    for shape in parameter_shapes:
        stop = start + math.prod(shape)
        if len(shape) == 1 and previous is not None and len(previous) == 2:
            layers[-1] = (layers[-1][0], layers[-1][1], stop)
        else:
            if stop - start == 1:
                raise ValueError(
                    f"`perturbation` is relative, which scales each layer's noise by the standard deviation of its "
                    f"weights, but layer {len(layers) + 1} has a single weight (shape {tuple(shape)}), whose standard "
                    "deviation is 0: it would never be perturbed. Use an absolute one, Perturbation(every, sigma, "
                    "relative=False).")
            layers.append((start, stop, stop))
        start, previous = stop, shape
    return layers


# --------------------------------------------------------------------------- public entry points
def gd(obj, w0, lr=DEFAULT_LR, steps=DEFAULT_STEPS, record_every=DEFAULT_RECORD_EVERY, perturbation=None,
       progress=None, method=DEFAULT_METHOD) -> Trajectory:
    r"""Full-batch gradient descent :math:`w_{s+1} = w_s - \eta\,\nabla L(w_s)`, optionally with perturbations.

    Parameters
    ----------
    obj : Objective or CompiledObjective
        The loss :math:`L`: a numeric objective, or a compiled symbolic one
        (``sym.compile()``), whose steps run in its numba kernels.
    w0 : array, shape (P,) or (m, P)
        Initial weights; a batch of ``m`` rows runs ``m`` independent
        repetitions together (the paper's 30 repetitions).
    lr : float, default ``DEFAULT_LR`` = 0.2
        Step size :math:`\eta > 0`; GD is stable near a minimum for
        :math:`\eta < 2/\lambda_{\max}(\nabla^2 L)`.
    steps : int, default ``DEFAULT_STEPS`` = 250_000
        Number of iterations, >= 1.
    record_every : int, default ``DEFAULT_RECORD_EVERY`` = 100
        The weights are recorded at steps ``0, record_every, 2 record_every, ...``
        and at the last step.  At a step that is also a perturbation step the
        weights are recorded *before* the noise is added.
    perturbation : Perturbation, optional
        Gaussian noise every ``perturbation.every`` steps (Figures 3, 4, 16).
    progress : bool or None, default None
        A tqdm progress bar; ``None`` shows it for runs of at least
        ``PROGRESS_MIN_STEPS`` steps when stderr is a terminal.
    method : {"auto", "iterate", "quadratic"}, default "auto"
        See :data:`METHODS`.  ``"auto"`` takes the quadratic propagator when
        the objective is quadratic, otherwise iterates (compiled when the
        objective has compiled kernels).

    Returns
    -------
    Trajectory
        ``t`` the recorded iteration numbers, ``w`` ``(n_points, P)`` or
        ``(n_points, m, P)``, ``loss`` and ``metrics`` (``Objective.metrics``)
        at those steps; ``method`` ``"gd"`` or ``"gd-quadratic"``; ``nfev`` the
        gradient evaluations per repetition.  Status ``"diverged"`` (with
        :math:`\lambda_{\max}` and :math:`2/\lambda_{\max}` in the message)
        when the weights become non-finite or blow up.

    Notes
    -----
    **Quadratic propagator.**  For :math:`L(w) = \frac12 w^\top H w - b^\top w + c`
    (:math:`H` constant, :math:`b = -\nabla L(0)`), GD is
    :math:`w_{s+1} = w_s - \eta(H w_s - b)`.  With :math:`H = V \Lambda V^\top`
    and :math:`c = V^\top w`, :math:`\beta = V^\top b`, each coordinate evolves
    independently:

    .. math::

        c_j(s) = (1 - \eta\lambda_j)^s\, c_j(0) + \frac{1 - (1 - \eta\lambda_j)^s}{\lambda_j}\,\beta_j ,

    computed as ``exp(s log1p(-lr λ))`` and ``-expm1(s log1p(-lr λ)) / λ``;
    for :math:`\lambda_j = 0` (the degenerate directions of the paper's
    Figure 2, here :math:`|\lambda_j| \le P\,\epsilon\,\lambda_{\max}`) the limit
    :math:`c_j(0) + \eta s \beta_j`, with :math:`\beta_j = 0` because
    :math:`b = \Phi^\top y / n` lies in the range of :math:`H` (the propagator sets
    those coordinates to exactly 0 where they are at the rounding level
    :math:`P\epsilon\|b\|`): they stay put.  A larger :math:`\beta_j`
    belongs to an eigenvalue too small to resolve (features so ill-conditioned
    that :math:`\lambda_j/\lambda_{\max} < P\epsilon`), whose direction drifts
    by :math:`\eta s\beta_j`.
    Only the recorded steps are evaluated, segment by segment between
    perturbations (the same noise, from the same random numbers, as
    iterating), so the cost does not grow with ``steps``.  The result equals
    iteration to rounding error (about 1e-12 relative) when the Hessian's
    eigenvalues are resolved; below :math:`P\epsilon\lambda_{\max}` they are
    known only to that accuracy, and so is the propagator.  When
    :math:`|1 - \eta\lambda_{\max}| > 1` the run diverges (status ``"diverged"``)
    without overflow.

    **Compiled loop.**  With compiled kernels the steps run in a numba loop,
    one call per stretch between recorded steps and perturbations.  Numba
    compiles the loop once per kernel family and caches it on disk.

    Examples
    --------
    >>> import gradflow as gf
    >>> obj = gf.Objective(gf.models.FeatureRegression(gf.features.Legendre(30, normalize=True)), gf.data.sine())
    >>> traj = gf.gd(obj, obj.init(seed=0), steps=250_000, perturbation=gf.Perturbation(4000, 0.6))
    >>> traj.status
    'success'
    """
    obj = _validate_objective(obj)
    W0, single = _validate_w0(obj, w0)
    lr = _validate_lr(lr)
    steps = _validate_steps(steps)
    record_every = _validate_record_every(record_every)
    _check_path_fits(W0, steps, record_every)
    perturbation = _validate_perturbation(perturbation, obj)
    progress = _validate_progress(progress)
    method = _validate_method(obj, method)
    if method == "quadratic":
        return _gd_quadratic(obj, W0, single, lr, steps, record_every, perturbation)
    traj = _iterate(obj, W0, single, lr, steps, record_every, perturbation, progress, _full_batch_engine(obj, lr), "gd")
    if traj.status == "success" and _quadratic.is_quadratic(obj):
        # past the stability bound a quadratic's GD diverges, however few steps were taken: the propagator's verdict
        lam_max = _lambda_max(obj, W0[0])
        if lr * lam_max > 2.0:
            message = _divergence_text("GD", lam_max, lr, steps, np.arange(W0.shape[0]), W0.shape[0],
                                       cause=_UNSTABLE_QUADRATIC.format(lr * lam_max))
            traj = dataclasses.replace(traj, status="diverged", message=message)
    return traj


def sgd(obj, w0, lr=SGD_DEFAULT_LR, steps=SGD_DEFAULT_STEPS, batch_size=SGD_DEFAULT_BATCH_SIZE, seed=DEFAULT_SEED,
        record_every=SGD_DEFAULT_RECORD_EVERY, perturbation=None, progress=None) -> Trajectory:
    r"""Mini-batch stochastic gradient descent :math:`w_{s+1} = w_s - \eta\,\nabla L_{B_s}(w_s)`.

    :math:`L_B` is the same loss (same per-sample loss and weight decay) on
    the samples of the mini-batch :math:`B_s`,
    :math:`L_B(w) = \frac{1}{|B|}\sum_{i\in B} V(f_w(x_i), y_i) + \frac\gamma2\|w\|^2`.
    Mini-batches are drawn without replacement within each epoch: every epoch
    reshuffles the ``n`` training samples (``numpy.random.default_rng(seed)``)
    and cuts them into consecutive batches of ``batch_size``, the last one
    smaller when ``batch_size`` does not divide ``n``.  Each repetition of a
    batch ``w0`` gets its own shuffles.  With ``batch_size = n`` every
    mini-batch is the whole training set and SGD is exactly :func:`gd`
    (``method="iterate"``), run by the same engine.

    Parameters
    ----------
    obj : Objective
    w0 : array, shape (P,) or (m, P)
    lr : float, default ``SGD_DEFAULT_LR`` = 0.1
    steps : int, default ``SGD_DEFAULT_STEPS`` = 10_000
        Number of iterations (mini-batch steps), >= 1.
    batch_size : int, default ``SGD_DEFAULT_BATCH_SIZE`` = 8
        Between 1 and the number of training samples.
    seed : int, default ``DEFAULT_SEED`` = 0
        Seed of the mini-batch shuffles (perturbations have their own seed).
    record_every : int, default ``SGD_DEFAULT_RECORD_EVERY`` = 100
    perturbation : Perturbation, optional
    progress : bool or None, default None

    Returns
    -------
    Trajectory
        As :func:`gd`, with ``method="sgd"``; ``loss`` and ``metrics`` are
        those of the full training set.
    """
    obj = _validate_objective(obj, compiled_ok=False)
    W0, single = _validate_w0(obj, w0)
    lr = _validate_lr(lr)
    steps = _validate_steps(steps)
    batch_size = _validate_batch_size(obj, batch_size)
    seed = check_seed(seed)
    record_every = _validate_record_every(record_every)
    _check_path_fits(W0, steps, record_every)
    perturbation = _validate_perturbation(perturbation, obj)
    progress = _validate_progress(progress)
    n = int(obj._inputs.shape[0])
    engine = _full_batch_engine(obj, lr) if batch_size == n else _minibatch_engine(obj, lr, batch_size, seed, W0.shape[0])
    traj = _iterate(obj, W0, single, lr, steps, record_every, perturbation, progress, engine, "sgd")
    traj.info.update(batch_size=batch_size, seed=seed)
    return traj


# --------------------------------------------------------------------------- validation
def _validate_objective(obj, compiled_ok: bool = True):
    """A numeric :class:`Objective`, or (where ``compiled_ok``) a compiled symbolic objective."""
    from .symbolic import CompiledObjective

    if isinstance(obj, Objective) or (compiled_ok and isinstance(obj, CompiledObjective)):
        return obj
    if isinstance(obj, CompiledObjective):
        raise TypeError(
            "`obj` must be a gradflow.Objective for SGD (mini-batches are drawn from its data); got a compiled "
            "symbolic objective. Use gf.gd for it, or build gf.Objective(model, data, loss) for SGD."
        )
    accepted = "a gradflow.Objective, e.g. gf.Objective(model, data, loss='square')"
    if compiled_ok:
        accepted += ", or a compiled symbolic objective (sym.compile())"
    raise TypeError(f"`obj` must be {accepted}; got {describe(obj)}.")


def _validate_w0(obj: Objective, w0):
    """``w0`` as a C-contiguous ``(m, P)`` array of the objective's library, and whether it was one vector."""
    xp = obj.xp
    not_real = TypeError(f"`w0` must be an array of {obj.size} real initial weights; got {describe(w0)}.")
    if _backend.is_array(w0) and not isinstance(w0, np.ndarray) and not _backend.is_numpy(xp):
        if xp.isdtype(w0.dtype, "complex floating"):
            raise not_real
    else:
        try:
            w0 = _backend.to_real_numpy(w0)
        except (TypeError, ValueError):
            raise not_real from None
    w0 = _backend.as_array(w0, xp)
    P = obj.size
    if w0.ndim not in (1, 2) or w0.shape[-1] != P:
        raise ValueError(
            f"`w0` must have shape ({P},) or (m, {P}): this objective has P = {P} parameters; got shape "
            f"{tuple(w0.shape)}. Start from obj.init(seed=0), or stack m of them for a batch."
        )
    if w0.ndim == 2 and w0.shape[0] < 1:
        raise ValueError(f"`w0` must hold at least one repetition; got shape {tuple(w0.shape)}.")
    if not bool(xp.all(xp.isfinite(w0))):
        raise ValueError("`w0` must be finite; it contains NaN or infinite entries. Start from obj.init(seed=0).")
    single = w0.ndim == 1
    W0 = xp.reshape(w0, (1, P)) if single else w0
    if _backend.is_numpy(xp):
        W0 = np.array(W0, dtype=np.float64, order="C")
    return W0, single


def _validate_lr(lr) -> float:
    lr = check_real("lr", lr)
    if not lr > 0:
        raise ValueError(f"`lr` must be a positive step size, e.g. 0.2 (below 2/λ_max for stability); got {lr}.")
    return lr


def _validate_steps(steps) -> int:
    return _positive_int("steps", steps, "the number of iterations, e.g. 250_000")


def _check_path_fits(W0, steps: int, record_every: int) -> None:
    """Refuse, before any step, a run whose recorded weights (``PATH_COPIES`` copies of ``(records, m, P)`` floats)
    would take more than half of the memory this process may use; it would otherwise fail at the end, after all the
    work."""
    m, P = W0.shape
    n_records = len(_record_steps(steps, record_every))
    _validation.check_fits(PATH_COPIES * 8 * n_records * m * P,
                           f"`record_every` = {record_every} records {n_records:,} points of {m} x {P:,} weights",
                           "Raise record_every (the path holds steps / record_every x m x P floats).",
                           detail=" with the path's evaluation")


def _validate_record_every(record_every) -> int:
    return _positive_int("record_every", record_every, "the spacing of recorded steps, e.g. 100")


def _validate_every(every) -> int:
    return _positive_int("every", every, "the steps between perturbations, e.g. 4000")


def _positive_int(name: str, value, what: str) -> int:
    value = check_int(name, value)
    if value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, {what}; got {value}.")
    return value


def _validate_sigma(sigma) -> float:
    sigma = check_real("sigma", sigma)
    if sigma < 0:
        raise ValueError(f"`sigma` must be a standard deviation >= 0, e.g. 0.6 (or 0.25 with relative=True); got {sigma}.")
    return sigma


def _validate_batch_size(obj: Objective, batch_size) -> int:
    batch_size = check_int("batch_size", batch_size)
    n = int(obj._inputs.shape[0])
    if not 1 <= batch_size <= n:
        raise ValueError(
            f"`batch_size` must be between 1 and the number of training samples n = {n}; got {batch_size}. "
            f"Use batch_size={n} for full-batch gradient descent."
        )
    return batch_size


def _validate_perturbation(perturbation, obj):
    if perturbation is not None and not isinstance(perturbation, Perturbation):
        raise TypeError(
            "`perturbation` must be None or a gradflow.Perturbation, e.g. Perturbation(every=4000, sigma=0.6); "
            f"got {describe(perturbation)}."
        )
    if perturbation is not None and perturbation.relative:
        _relative_layers(obj.parameter_shapes)         # refuses single-weight layers before any step
    return perturbation


def _validate_progress(progress):
    if progress is None:
        return None
    return check_bool("progress", progress)


def _validate_method(obj: Objective, method) -> str:
    method = check_choice("method", method, tuple(METHODS))
    quadratic = _quadratic.is_quadratic(obj)
    if method == "quadratic" and not quadratic:
        raise ValueError(
            "`method` 'quadratic' needs a quadratic objective (a gf.Objective of a FeatureRegression model with the "
            f"'square' loss, not a subclass, which may change the loss); got {obj!r}. Use method='iterate' or 'auto'."
        )
    if method == "auto":
        return "quadratic" if quadratic and dense_fits(obj.size, _quadratic.DENSE_MATRICES) else "iterate"
    if method == "quadratic":
        check_dense_fits(obj.size, _quadratic.DENSE_MATRICES, "`method` 'quadratic' (the eigendecomposed Hessian)",
                         "Use method='iterate' (or 'auto', which chooses it at this size).")
    return method


# --------------------------------------------------------------------------- engines
@numba.njit(cache=True, inline="always")
def _gd_row(grad, w, g, lr, n_steps, args):
    """``n_steps`` GD steps in place on one parameter vector ``w``, with ``g`` as gradient scratch."""
    for _ in range(n_steps):
        grad(w, g, args)
        for j in range(w.shape[0]):
            w[j] -= lr * g[j]


@numba.njit(cache=True)
def _gd_steps(grad, W, G, lr, counts, out, args):
    """GD steps in place on every row of ``W`` (m, P), with ``G`` (m, P) as gradient scratch: ``counts[k]`` more
    steps, then ``out[k] = W``, for each ``k``."""
    for r in range(W.shape[0]):
        for k in range(counts.shape[0]):
            _gd_row(grad, W[r], G[r], lr, counts[k], args)
            out[k, r, :] = W[r]


@numba.njit(cache=True, parallel=True)
def _gd_steps_parallel(grad, W, G, lr, counts, out, args):
    """:func:`_gd_steps` with the repetitions spread over the cores (``numba.prange``); the same arithmetic per row."""
    for r in numba.prange(W.shape[0]):
        for k in range(counts.shape[0]):
            _gd_row(grad, W[r], G[r], lr, counts[k], args)
            out[k, r, :] = W[r]


class _CompiledEngine:
    """GD steps in a numba loop with the objective's compiled gradient kernel (NumPy only).

    One repetition runs in :func:`_gd_steps`; a batch in
    :func:`_gd_steps_parallel`, one repetition per thread (measured on the
    Figure 4 problem, 30 repetitions, chunks of 100 steps: 0.37 us per
    repetition-step on 2 cores against 0.78 us serially).  One call runs a
    whole block of recorded steps (see :func:`_iterate`): every call is a fork
    and a join of the threads, and a join waits for the slowest, which on a
    machine with other work is one descheduled for a time slice (the Figure 4
    run, 30 repetitions, 250,000 steps recorded every 100, a perturbation
    every 4,000, 2 cores: 3.5 s idle and 9.3 s with one core busy elsewhere
    at one call per record; 3.0 and 4.5 s at one call per block).  Each row
    gets the same arithmetic either way, so a batch equals its repetitions
    run alone; in layers large enough for BLAS (``_kernels.BLAS_MIN_WORK``),
    whose threads serve one repetition but not a batch, equal up to the order
    of BLAS's sums.
    """

    name = "compiled"

    def __init__(self, kernels, lr: float):
        self.kernels, self.lr = _kernels.bind(kernels), lr
        self.blas = _kernels.calls_blas(kernels)
        self.scratch = None
        matrix = numba.types.float64[:, ::1]
        signature = (self.kernels.types.grad, matrix, matrix, numba.types.float64, numba.types.int64[::1],
                     numba.types.float64[:, :, ::1], self.kernels.types.args)
        self.loops = {}
        self.signature = signature

    def advance(self, W, counts):
        """``counts[k]`` more steps, for each ``k``: ``(W, states)`` with ``states[k]`` the weights after them."""
        if self.scratch is None or self.scratch.shape != W.shape:
            self.scratch = np.empty_like(W)
        states = np.empty((len(counts),) + W.shape)
        parallel = W.shape[0] > 1
        if parallel not in self.loops:
            self.loops[parallel] = _kernels.specialize(_gd_steps_parallel if parallel else _gd_steps, self.signature)
        # BLAS (in layers large enough for it) gets one thread per repetition when the repetitions run on all cores
        # (four repetitions of the [64, 100, 100, 10] net on 1,000 digits, 2 cores: 19.8 against 4.8 ms a step)
        with _threads.single_threaded_blas(parallel and self.blas):
            self.loops[parallel](self.kernels.grad, W, self.scratch, self.lr, np.asarray(counts, dtype=_INT), states,
                                 self.kernels.args)
        return W, states


class _SteppingEngine:
    """An engine that moves the weights by ``steps(W, n)``, in Python between calls; ``advance`` as
    :meth:`_CompiledEngine.advance`."""

    def advance(self, W, counts):
        states = np.empty((len(counts),) + tuple(W.shape))
        for k, n in enumerate(counts):
            W = self.steps(W, int(n))
            states[k] = _backend.to_numpy(W)
        return W, states


class _ArrayEngine(_SteppingEngine):
    """GD steps ``W <- W - lr * obj.grad(W)`` in the objective's array library (NumPy, CuPy, ...)."""

    name = "array"

    def __init__(self, obj: Objective, lr: float):
        self.obj, self.lr = obj, lr

    def steps(self, W, n_steps: int):
        grad, lr = self.obj.grad, self.lr
        for _ in range(n_steps):
            W = W - lr * grad(W)
        return W


class _MinibatchSchedule:
    """The mini-batches of :func:`sgd`, step after step: every epoch reshuffles the ``n`` samples of each of the
    ``m`` repetitions (``numpy.random.default_rng(seed)``) and cuts them into consecutive, sorted batches."""

    def __init__(self, n: int, batch_size: int, seed: int, m: int):
        self.n, self.batch_size, self.m = n, batch_size, m
        self.rng = np.random.default_rng(seed)
        self.order = None
        self.position = n  # forces a shuffle before the first step

    def next(self) -> np.ndarray:
        """The sample indices of the next step's batch, ``(m, b)``, each row sorted."""
        if self.position >= self.n:
            self.order = self.rng.permuted(np.tile(np.arange(self.n), (self.m, 1)), axis=1)
            self.position = 0
        stop = min(self.position + self.batch_size, self.n)
        idx = np.sort(self.order[:, self.position:stop], axis=1)
        self.position = stop
        return idx


class _MinibatchEngine(_SteppingEngine):
    """SGD steps: each step's gradient is the objective's gradient on a mini-batch of its training rows.

    The mini-batch gradient reuses the objective's own code on a shallow copy
    whose (already transformed) inputs and prepared targets are replaced by
    the rows of the batch, so no features are recomputed and no objective is
    rebuilt per step.  Repetitions have separate shuffles, so a batch of
    repetitions sees row-wise different inputs ``(m, b, d)``, which the
    models broadcast against weights ``(m, ...)``.
    """

    name = "minibatch"

    def __init__(self, obj: Objective, lr: float, batch_size: int, seed: int, m: int):
        self.obj, self.lr, self.m = obj, lr, m
        self.schedule = _MinibatchSchedule(int(obj._inputs.shape[0]), batch_size, seed, m)
        self.sub = copy.copy(obj)

    def steps(self, W, n_steps: int):
        obj, sub, xp = self.obj, self.sub, self.obj.xp
        for _ in range(n_steps):
            idx = self.schedule.next()
            flat = xp.asarray(idx.reshape(-1))
            inputs = xp.take(obj._inputs, flat, axis=0)
            targets = xp.take(obj._targets, flat, axis=0)
            shape = (self.m, idx.shape[1]) if self.m > 1 else (idx.shape[1],)
            sub._inputs = xp.reshape(inputs, shape + (inputs.shape[-1],))
            sub._targets = xp.reshape(targets, shape + (targets.shape[-1],))
            W = W - self.lr * sub.grad(W if self.m > 1 else W[0, ...])
            if self.m == 1:
                W = xp.reshape(W, (1, -1))
        return W


@numba.njit(cache=True, inline="always")
def _sgd_row(grad, w, g, lr, batches, sizes, args):
    """SGD steps in place on one parameter vector: step ``s`` uses the samples ``batches[s, :sizes[s]]``.

    The network kernels' ``args`` are ``(X, XT, TT, ...)`` with the samples
    along the rows of ``X`` and the columns of ``XT`` and ``TT``, and nothing
    after them depends on the data (``_kernels.network_args``); a batch's
    ``args`` are those arrays restricted to its samples.
    """
    X, XT, TT, params, layout = args
    d, k = X.shape[1], TT.shape[0]
    for s in range(batches.shape[0]):
        b = sizes[s]
        Xb, XbT, TTb = np.empty((b, d)), np.empty((d, b)), np.empty((k, b))
        for i in range(b):
            row = batches[s, i]
            for q in range(d):
                Xb[i, q] = X[row, q]
                XbT[q, i] = XT[q, row]
            for c in range(k):
                TTb[c, i] = TT[c, row]
        grad(w, g, (Xb, XbT, TTb, params, layout))
        for j in range(w.shape[0]):
            w[j] -= lr * g[j]


@numba.njit(cache=True)
def _sgd_steps(grad, W, G, lr, batches, sizes, args):
    """SGD steps on every row of ``W`` (m, P); repetition ``r`` uses ``batches[:, r]`` (steps, m, batch size)."""
    for r in range(W.shape[0]):
        _sgd_row(grad, W[r], G[r], lr, batches[:, r], sizes, args)


@numba.njit(cache=True, parallel=True)
def _sgd_steps_parallel(grad, W, G, lr, batches, sizes, args):
    """:func:`_sgd_steps` with the repetitions spread over the cores; the same arithmetic per row."""
    for r in numba.prange(W.shape[0]):
        _sgd_row(grad, W[r], G[r], lr, batches[:, r], sizes, args)


class _CompiledMinibatchEngine(_SteppingEngine):
    """SGD steps in a numba loop on the network's compiled gradient kernel, with :class:`_MinibatchSchedule`'s batches.

    The batches of a stretch of steps are drawn first (the same random
    numbers, in the same order, as :class:`_MinibatchEngine`), then the loop
    gathers each batch's samples and calls the kernel.
    """

    name = "compiled-minibatch"

    def __init__(self, obj: Objective, kernels, lr: float, batch_size: int, seed: int, m: int):
        self.kernels, self.lr, self.batch_size = _kernels.bind(kernels), lr, batch_size
        self.blas = _kernels.calls_blas(kernels, batch_size)
        self.schedule = _MinibatchSchedule(int(obj._inputs.shape[0]), batch_size, seed, m)
        self.scratch = None
        matrix, i64 = numba.types.float64[:, ::1], numba.types.int64
        self.signature = (self.kernels.types.grad, matrix, matrix, numba.types.float64, i64[:, :, ::1], i64[::1],
                          self.kernels.types.args)
        self.loops = {}

    def steps(self, W, n_steps: int):
        """``n_steps`` SGD steps, drawn and run ``SGD_STEPS_PER_CALL`` at a time (the drawn indices stay small)."""
        for start in range(0, n_steps, SGD_STEPS_PER_CALL):
            W = self._advance(W, min(SGD_STEPS_PER_CALL, n_steps - start))
        return W

    def _advance(self, W, n_steps: int):
        if self.scratch is None or self.scratch.shape != W.shape:
            self.scratch = np.empty_like(W)
        batches = np.zeros((n_steps, W.shape[0], self.batch_size), dtype=np.int64)
        sizes = np.empty(n_steps, dtype=np.int64)
        for s in range(n_steps):
            idx = self.schedule.next()
            batches[s, :, :idx.shape[1]] = idx
            sizes[s] = idx.shape[1]
        parallel = W.shape[0] > 1
        if parallel not in self.loops:
            self.loops[parallel] = _kernels.specialize(_sgd_steps_parallel if parallel else _sgd_steps, self.signature)
        with _threads.single_threaded_blas(parallel and self.blas):              # as in _CompiledEngine.advance
            self.loops[parallel](self.kernels.grad, W, self.scratch, self.lr, batches, sizes, self.kernels.args)
        return W


def _full_batch_engine(obj: Objective, lr: float):
    kernels = _kernels.compiled_kernels(obj)
    return _ArrayEngine(obj, lr) if kernels is None else _CompiledEngine(kernels, lr)


def _minibatch_engine(obj: Objective, lr: float, batch_size: int, seed: int, m: int):
    """The compiled SGD loop for the network kernels (whose ``args`` it knows how to cut into batches), else array code."""
    kernels = _kernels.compiled_kernels(obj)
    if kernels is not None and kernels.grad is _kernels.network_grad:
        return _CompiledMinibatchEngine(obj, kernels, lr, batch_size, seed, m)
    return _MinibatchEngine(obj, lr, batch_size, seed, m)


# --------------------------------------------------------------------------- the iterative driver
def _record_steps(steps: int, record_every: int) -> np.ndarray:
    return np.unique(np.append(np.arange(0, steps, record_every, dtype=_INT), _INT(steps)))


def _iterate(obj, W0, single, lr, steps, record_every, perturbation, progress, engine, label) -> Trajectory:
    """Run ``engine`` over the boundaries (recorded steps and perturbation steps), checking health at each.

    The engine runs a block of boundaries per call (:func:`_blocks`), which ends at a perturbation (the noise is
    drawn in Python); the health checks then go through the block's states in order.
    """
    xp = obj.xp
    record = _record_steps(steps, record_every)
    kicks = perturbation.steps(steps) if perturbation is not None else np.empty(0, dtype=_INT)
    boundaries = np.union1d(record, kicks)
    is_record, is_kick = np.isin(boundaries, record), np.isin(boundaries, kicks)
    limit = _blowup_limit(W0)
    W, reached, kick_index = (W0.copy() if isinstance(W0, np.ndarray) else W0), 0, 0
    times, path = [], np.empty((len(record),) + tuple(W0.shape))
    status, bad_step, bad_rows = "success", None, None
    bar = _progress_bar(progress, steps, label.upper())
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for block in _blocks(boundaries, is_kick, W0.shape[0] * W0.shape[1]):
                W, states = engine.advance(W, np.diff(boundaries[block], prepend=reached))
                bar.update(int(boundaries[block][-1]) - reached)
                for s, rec, kick, W_np in zip(boundaries[block].tolist(), is_record[block], is_kick[block], states):
                    reached = s
                    bad = _blown_up(W_np, limit)
                    if bad.any():
                        status, bad_step, bad_rows = "diverged", s, np.flatnonzero(bad)
                        break
                    if rec:
                        path[len(times)] = W_np
                        times.append(s)
                    if kick:                          # the last boundary of its block: W holds these weights
                        kick_index += 1
                        W = _add(W, perturbation.noise(kick_index, W_np, obj.parameter_shapes), xp)
                if status != "success":
                    break
    finally:
        bar.close()
    info = {"engine": engine.name, "lr": lr, "steps": steps, "record_every": record_every, "steps_done": reached,
            "perturbation": None if perturbation is None else dataclasses.asdict(perturbation),
            "perturbations_applied": kick_index}
    message = "" if status == "success" else _divergence_message(obj, W0, lr, bad_step, bad_rows, label.upper(),
                                                                 kicks=kick_index)
    return _finish(obj, times, path[:len(times)], single, status, message, reached, label, info, W0, lr)


def _blocks(boundaries, is_kick, weights_per_step):
    """Slices of consecutive ``boundaries`` for one engine call each: a block ends at a perturbation, or before
    ``BLOCK_UPDATES`` weight updates (steps x m x P: the health checks and the progress bar wait no longer than
    that) or ``BLOCK_STATES`` recorded weights (its states' memory)."""
    max_steps = max(1, BLOCK_UPDATES // weights_per_step)
    max_boundaries = max(1, BLOCK_STATES // weights_per_step)
    first, previous = 0, 0
    for i in range(len(boundaries)):
        last = (is_kick[i] or i + 1 == len(boundaries) or boundaries[i + 1] - previous > max_steps
                or i + 1 - first >= max_boundaries)
        if last:
            yield slice(first, i + 1)
            first, previous = i + 1, int(boundaries[i])


def _add(W, noise, xp):
    if isinstance(W, np.ndarray):
        W += noise
        return W
    return W + _backend.as_array(noise, xp)


def _blowup_limit(W0) -> np.ndarray:
    norms = np.linalg.norm(_backend.to_numpy(W0), axis=-1)
    return DIVERGENCE_NORM_RATIO * np.maximum(1.0, norms)


def _blown_up(W_np: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Rows (repetitions) whose weights are non-finite or past the blow-up limit."""
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.sqrt(np.einsum("mp,mp->m", W_np, W_np))
    return ~(norms <= limit)  # NaN norms count as blown up


# --------------------------------------------------------------------------- the quadratic propagator
def _gd_quadratic(obj, W0, single, lr, steps, record_every, perturbation) -> Trajectory:
    """GD on a quadratic loss by the exact spectral propagator (NumPy; converts at its boundary)."""
    spec = _quadratic.spectrum(obj)
    lam_eff, V, zero, beta, lam_max = spec
    null_space_dim = int(zero.sum())
    # the null space's directions without drift (beta_j = 0) do not move between perturbations (Section 4.1): the part
    # of W along them is added to each state as it is, and only the others are propagated (9 of Figure 4's 31)
    moving = ~(zero & (beta == 0.0))
    lam_eff, zero, beta, V_moving, V_still = lam_eff[moving], zero[moving], beta[moving], V[:, moving], V[:, ~moving]
    factor = 1.0 - lr * lam_eff
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mag = np.where(lr * lam_eff < 1.0, np.log1p(-lr * lam_eff), np.log(np.abs(factor)))
    negative = factor < 0
    lam_div = np.where(zero, 1.0, lam_eff)

    record = _record_steps(steps, record_every)
    kicks = perturbation.steps(steps) if perturbation is not None else np.empty(0, dtype=_INT)
    W = np.array(_backend.to_numpy(W0), dtype=np.float64)
    limit = _blowup_limit(W)
    times = [0]
    path = np.empty((record.shape[0],) + W.shape)     # filled in place: stacking 2,501 x 30 states took 14 ms
    path[0] = W
    n_path = 1
    status, bad_step, bad_rows, reached = "success", None, None, 0
    starts = np.concatenate([[0], kicks]).astype(_INT)
    ends = np.concatenate([kicks, [steps]]).astype(_INT)
    kick_index = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for s0, s1 in zip(starts.tolist(), ends.tolist()):
            inside = record[np.searchsorted(record, s0, side="right"):np.searchsorted(record, s1, side="right")]
            targets = inside if inside.size and inside[-1] == s1 else np.append(inside, _INT(s1))
            tau = (targets - s0).astype(np.float64)[:, None]
            exponent = np.minimum(tau * log_mag, LOG_GROWTH_CLIP)
            magnitude = np.exp(exponent)
            odd = (((targets - s0) % 2) == 1)[:, None] & negative
            power = np.where(odd, -magnitude, magnitude)
            gain = np.where(zero, lr * tau, np.where(odd, 1.0 + magnitude, -np.expm1(exponent)) / lam_div)
            C0, C_still = W @ V_moving, W @ V_still
            still = C_still @ V_still.T                                          # (m, P)
            coeffs = power[:, None, :] * C0[None] + (gain * beta)[:, None, :]      # (T, m, moving), in the eigenbasis
            norms = np.sqrt(np.einsum("tmp,tmp->tm", coeffs, coeffs)               # = |w_t|: V is orthogonal
                            + np.einsum("mp,mp->m", C_still, C_still))
            bad = ~(norms <= limit)
            # the recorded targets come first; s1 closes the segment unrecorded unless it is a recorded step
            recorded = int(np.count_nonzero((targets % record_every == 0) | (targets == steps)))
            last = int(np.flatnonzero(bad.any(axis=1))[0]) if bad.any() else targets.shape[0]
            kept = min(recorded, last)
            np.matmul(coeffs[:kept], V_moving.T, out=path[n_path:n_path + kept])    # the weights, straight in the path
            path[n_path:n_path + kept] += still
            times.extend(targets[:kept].tolist())
            n_path += kept
            if last < targets.shape[0]:
                status, bad_step, bad_rows = "diverged", int(targets[last]), np.flatnonzero(bad[last])
                reached = int(targets[last])              # as the iterating engines: the step found bad
                break
            W = coeffs[-1] @ V_moving.T + still
            reached = s1
            if s1 < steps:
                kick_index += 1
                W += perturbation.noise(kick_index, W, obj.parameter_shapes)
    info = {"engine": "spectral", "lr": lr, "steps": steps, "record_every": record_every, "steps_done": reached,
            "perturbation": None if perturbation is None else dataclasses.asdict(perturbation),
            "perturbations_applied": kick_index, "lambda_max": lam_max, "stable_bound": _bound(lam_max),
            "null_space_dim": null_space_dim, "hessian_evaluations": 1}
    message = ""
    if lr * lam_max > 2.0 and status == "success":
        status = "diverged"
        message = _divergence_text("GD", lam_max, lr, steps, np.arange(W.shape[0]), W.shape[0],
                                   cause=_UNSTABLE_QUADRATIC.format(lr * lam_max))
    elif status == "diverged":
        message = _divergence_text("GD", lam_max, lr, bad_step, bad_rows, W.shape[0], kicks=kick_index)
    return _finish(obj, times, path[:n_path], single, status, message, 1, "gd-quadratic", info, W0, lr)


# --------------------------------------------------------------------------- results
def _finish(obj, times, path, single, status, message, nfev, method, info, W0, lr) -> Trajectory:
    """Stack the recorded weights, evaluate loss and metrics, and cut the path at any non-finite loss."""
    m, P = W0.shape
    t = np.asarray(times, dtype=_INT)
    w = path if isinstance(path, np.ndarray) else (np.stack(path) if path else np.empty((0, m, P)))
    loss, metrics = evaluate_path(obj, w.reshape(-1, P))
    loss = loss.reshape(len(t), m)
    metrics = {k: v.reshape(len(t), m) for k, v in metrics.items()}
    finite = np.isfinite(loss).all(axis=1) & np.all([np.isfinite(v).all(axis=1) for v in metrics.values()], axis=0)
    if not finite.all():
        cut = int(np.flatnonzero(~finite)[0])
        bad_rows = np.flatnonzero(~np.isfinite(loss[cut]))
        t, w, loss = t[:cut], w[:cut], loss[:cut]
        metrics = {k: v[:cut] for k, v in metrics.items()}
        if cut == 0:
            status = "diverged"
            message = (f"the loss is not finite at w0 (repetition(s) {', '.join(map(str, bad_rows[:10]))}): the "
                       "objective overflows there. Rescale the data (e.g. inputs to [-1, 1]) or start from smaller "
                       "weights, e.g. obj.init(seed=0).")
        elif status == "success":
            status = "diverged"
            label = "GD" if method.startswith("gd") else method.upper()
            message = _divergence_message(obj, W0, lr, int(times[cut]), bad_rows, label, cause="the loss became non-finite")
    if single:
        w, loss = w[:, 0], loss[:, 0]
        metrics = {k: v[:, 0] for k, v in metrics.items()}
    if status == "success":
        message = f"{method}: {info['steps']} steps done."
    return Trajectory(t=t, w=w, loss=loss, metrics=metrics, status=status, message=message, nfev=int(nfev),
                      method=method, info=info)


#: The cause in the message of GD on a quadratic loss past its stability bound.
_UNSTABLE_QUADRATIC = ("lr * λ_max = {:.6g} > 2, so the component along the top eigenvector of the Hessian grows like "
                       "|1 - lr λ_max|^t")


def _bound(lam_max: float) -> float:
    return 2.0 / lam_max if lam_max > 0 else math.inf


def _lambda_max(obj: Objective, w) -> float:
    r"""The largest eigenvalue of :math:`\nabla^2 L(w)`: dense for small ``P``, power iterations on ``obj.hvp`` otherwise."""
    xp = obj.xp
    w = _backend.as_array(w, xp)
    if obj.size <= DENSE_HESSIAN_MAX_SIZE:
        H = _backend.to_numpy(obj.hessian(w))
        return float(np.linalg.eigvalsh(0.5 * (H + H.T))[-1])
    v = np.random.default_rng(0).standard_normal(obj.size)
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(POWER_ITERATIONS):
        Hv = _backend.to_numpy(obj.hvp(w, _backend.as_array(v, xp)))
        estimate = float(v @ Hv)
        norm = float(np.linalg.norm(Hv))
        if norm == 0 or not np.isfinite(norm):
            break
        v = Hv / norm
    return estimate


def _divergence_message(obj, W0, lr, step, rows, label, cause=None, kicks=0) -> str:
    rows = np.atleast_1d(rows)
    first = _backend.to_numpy(W0)[int(rows[0]) if rows.size else 0]
    with np.errstate(all="ignore"):
        try:
            lam_max = _lambda_max(obj, first)
        except (ValueError, np.linalg.LinAlgError):
            lam_max = math.nan
    return _divergence_text(label, lam_max, lr, step, rows, W0.shape[0], cause, kicks)


def _divergence_text(label, lam_max, lr, step, rows, m, cause=None, kicks=0) -> str:
    """Why a run diverged: the stable bound 2/λ_max at w0 against lr, and the ``kicks`` perturbations before it."""
    cause = cause or f"the weights became non-finite or grew past {DIVERGENCE_NORM_RATIO:g} times their initial norm"
    which = "" if m == 1 else f" in repetition(s) {', '.join(str(int(r)) for r in np.atleast_1d(rows)[:10])} of {m}"
    head = f"{label} diverged by step {step}{which}: {cause}."
    bound = _bound(lam_max) if np.isfinite(lam_max) else math.nan
    if not np.isfinite(bound):
        return (f"{head} The Hessian at w0 has largest eigenvalue λ_max = {lam_max:.6g} (no stable bound 2/λ_max "
                f"applies); lr = {lr:g} is too large for the curvature met along the path: use a smaller lr.")
    if lr > bound:
        return (f"{head} The Hessian at w0 has largest eigenvalue λ_max = {lam_max:.6g}, so {label} is stable only "
                f"for lr < 2/λ_max = {bound:.6g}; lr = {lr:g} exceeds it. Use a smaller lr, e.g. lr = {0.9 * bound:.3g}.")
    satisfied = (f"{head} The Hessian at w0 has largest eigenvalue λ_max = {lam_max:.6g} and stable bound "
                 f"2/λ_max = {bound:.6g}, which lr = {lr:g} satisfies")
    if kicks:
        return (f"{satisfied}; {kicks} perturbation(s) came before: noise that large can throw the weights where the "
                f"curvature is larger or past the limit. Lower the perturbation's sigma, or use a smaller lr, e.g. "
                f"lr = {0.5 * lr:.3g}.")
    return f"{satisfied}, but the curvature grew along the path: use a smaller lr, e.g. lr = {0.5 * lr:.3g}."


# --------------------------------------------------------------------------- progress
class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(progress, total: int, desc: str):
    """A tqdm bar over ``total`` steps when ``progress`` is True, or None on a terminal for long runs."""
    if progress is False or (progress is None and (total < PROGRESS_MIN_STEPS or not sys.stderr.isatty())):
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress is None:
            return _NoBar()
        raise ImportError('progress bars need tqdm: pip install tqdm (or pip install "gradflow[progress]")') from None
    return tqdm(total=total, desc=desc, unit="step", leave=False)
