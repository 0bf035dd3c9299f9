r"""The objective :math:`L(W)` that gradient flow minimizes: a model, a data set, a loss and weight decay.

.. math::

    L(w) = \frac1n \sum_{i=1}^n V\big(f_w(x_i), y_i\big) + \frac{\gamma}{2}\,\|w\|_2^2 ,

with ``V`` the per-sample loss of :mod:`gradflow.losses` and :math:`\gamma`
the weight decay.  An :class:`Objective` is the system that the dynamics
(:math:`\dot w = -\nabla L(w)`, Equation 1 of the paper) and every analysis
take as their first argument.  It gives the exact value, gradient,
Hessian-vector product and dense Hessian, and the output Jacobian on the
training set.  Every method accepts one parameter vector ``(P,)`` or a batch
``(m, P)``, evaluated together.
"""

from __future__ import annotations

import math

import numpy as np

from . import _backend, losses as _losses
from ._validation import check_bool, check_int, check_real, check_seed, describe
from .data import Dataset
from .models import Network

__all__ = ["Objective"]

#: Default standard deviation of the Gaussian initialization of :meth:`Objective.init`.
DEFAULT_INIT_SCALE = 0.1
#: Largest number of elements of the intermediate arrays of one batched pass in :meth:`Objective.hessian`.
HESSIAN_CHUNK_ELEMENTS = 2**24


class Objective:
    r"""The training objective of a network: value, exact gradient, Hessian-vector product and Hessian.

    Parameters
    ----------
    model : Network
        ``gradflow.models.FeatureRegression``, ``DeepLinear`` or ``MLP``.
    data : Dataset
        Training (and optionally test) data; its array library (NumPy, CuPy,
        ``array_api_strict``) is the one every method computes with.
    loss : {"square", "logistic", "cross_entropy"}, default "square"
        See :mod:`gradflow.losses` for the normalizations.
    weight_decay : float, default 0.0
        :math:`\gamma \ge 0` in :math:`\frac{\gamma}{2}\|w\|^2`.  With
        :math:`\gamma > 0` the degenerate minima of feature regression (and of
        the 2-parameter net :math:`\frac12(w_1w_2 - 1)^2`) become isolated and
        hyperbolic, as Section 4 expects.  Not every degeneracy goes: the loss
        of a deep linear net with two or more hidden units stays invariant
        under :math:`W_1 \to AW_1,\ W_2 \to W_2A^\top` (:math:`A` orthogonal),
        so its minima still come in manifolds, with a zero Hessian eigenvalue
        per rotation direction (check with :func:`gradflow.linearize`).

    Examples
    --------
    >>> import gradflow as gf
    >>> obj = gf.Objective(gf.models.DeepLinear([31, 2, 1]), gf.data.linear_teacher())
    >>> w = obj.init(seed=0)
    >>> obj.grad(w).shape
    (64,)
    """

    def __init__(self, model, data, loss="square", weight_decay=0.0):
        self.model = _validate_model(model)
        self.data = _validate_data(data)
        self.loss = _losses.get(loss)
        self.weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
        self.xp = data.xp
        self._inputs = _validate_inputs(self.model, data.X, "data.X")
        self._targets = self.loss.prepare(data.y, self.model.n_outputs, self.xp, "data.y")
        if data.has_test:
            self._test_inputs = _validate_inputs(self.model, data.X_test, "data.X_test")
            self._test_targets = self.loss.prepare(data.y_test, self.model.n_outputs, self.xp, "data.y_test")
        self._array_type = type(self._inputs)

    def __reduce__(self):
        # rebuilt through the constructor: the namespace module it keeps cannot be pickled (multiprocessing)
        return type(self), (self.model, self.data, self.loss, self.weight_decay)

    # --------------------------------------------------------------- layout
    @property
    def size(self) -> int:
        """The number of parameters ``P``."""
        return self.model.size

    @property
    def parameter_shapes(self) -> tuple:
        """The shapes of the per-layer arrays, in the order of the flat vector (``model.parameter_shapes``)."""
        return self.model.parameter_shapes

    def unflatten(self, w) -> list:
        """Per-layer arrays ``[W_1, (b_1), W_2, ...]`` of ``w`` (see :mod:`gradflow.models` for the order)."""
        return self.model.unflatten(self._weights(w))

    def flatten(self, arrays):
        """The flat parameter vector of per-layer arrays (the inverse of :meth:`unflatten`)."""
        return self.model.flatten(arrays)

    # -------------------------------------------------------------- values
    def value(self, w):
        r""":math:`L(w)`: shape ``()`` for ``w`` of shape ``(P,)``, ``(m,)`` for a batch ``(m, P)``."""
        w = self._weights(w)
        F, _ = self.model._forward(self.model._split(w, self.xp), self._inputs, self.xp)
        return self.loss.value(F, self._targets, self.xp) + self._decay_value(w)

    def grad(self, w):
        r""":math:`\nabla L(w)`, exact (backpropagation); the shape of ``w``."""
        w = self._weights(w)
        xp = self.xp
        params = self.model._split(w, xp)
        F, cache = self.model._forward(params, self._inputs, xp)
        grad = self.model._join(self.model._backward(params, cache, self.loss.gradient(F, self._targets, xp), xp), xp)
        return grad + self.weight_decay * w if self.weight_decay else grad

    def value_and_grad(self, w):
        """``(value(w), grad(w))`` from one forward and one backward pass."""
        w = self._weights(w)
        xp = self.xp
        params = self.model._split(w, xp)
        F, cache = self.model._forward(params, self._inputs, xp)
        G = self.loss.gradient(F, self._targets, xp)
        grad = self.model._join(self.model._backward(params, cache, G, xp), xp)
        value = self.loss.value(F, self._targets, xp)
        if self.weight_decay:
            grad = grad + self.weight_decay * w
            value = value + self._decay_value(w)
        return value, grad

    def hvp(self, w, v):
        r"""The Hessian-vector product :math:`\nabla^2 L(w)\,v`, exact (Pearlmutter's R-operator).

        ``v`` may be one direction ``(P,)`` or a batch ``(m, P)`` (then every
        direction is applied at the same ``w``, or pairwise when ``w`` is a
        batch ``(m, P)`` too).
        """
        w, v = self._weights(w), self._weights(v, "v")
        if w.ndim == 2 and v.ndim == 2 and v.shape != w.shape:
            raise ValueError(f"`v` must have the shape of the batch `w`, {tuple(w.shape)}, to pair them row by row; got "
                             f"shape {tuple(v.shape)}. For many directions at one point pass one `w` of shape "
                             f"({self.size},).")
        xp, model = self.xp, self.model
        params, directions = model._split(w, xp), model._split(v, xp)
        F, cache = model._forward(params, self._inputs, xp)
        rcache = model._jvp(params, directions, cache, xp)
        G = self.loss.gradient(F, self._targets, xp)
        RG = self.loss.hessian_product(F, self._targets, rcache[-1], xp)
        product = model._join(model._hvp_backward(params, directions, cache, rcache, G, RG, xp), xp)
        if self.weight_decay:
            product = product + self.weight_decay * v
        return product

    def hessian(self, w):
        r"""The dense Hessian :math:`\nabla^2 L(w)`, shape ``(P, P)``, exact.

        Built from batched Hessian-vector products with the unit vectors,
        in chunks that bound the memory; meant for ``P`` up to a few thousand.
        Not symmetrized: it is symmetric to rounding error because it is exact.
        """
        w = self._single(self._weights(w))
        xp, P = self.xp, self.size
        chunk = self._chunk_size(self._inputs.shape[0])
        rows = xp.empty((P, P), dtype=xp.float64)
        for start in range(0, P, chunk):
            count = min(chunk, P - start)
            rows[start:start + count, :] = self.hvp(w, _unit_vectors(start, count, P, xp))
        return rows.mT

    def output_jacobian(self, w, X=None):
        r"""The Jacobian :math:`J = \partial\,\mathrm{vec}(f(X)) / \partial w`, shape ``(n k, P)``.

        Rows are ordered sample by sample (row ``i k + c`` is output ``c`` of
        sample ``i``); by default ``X`` is the training inputs.  At a zero-loss
        point of the square loss, :math:`\nabla^2 L = J^\top J / n` (plus
        :math:`\gamma I`).
        """
        w = self._single(self._weights(w))
        xp, model = self.xp, self.model
        inputs = self._inputs if X is None else _validate_inputs(model, _backend.as_array(X, xp), "X")
        params = model._split(w, xp)
        _, cache = model._forward(params, inputs, xp)
        P = self.size
        chunk = self._chunk_size(inputs.shape[0])
        blocks = []
        for start in range(0, P, chunk):
            directions = _unit_vectors(start, min(chunk, P - start), P, xp)
            rcache = model._jvp(params, model._split(directions, xp), cache, xp)
            RF = rcache[-1]  # (m, n, k): the derivative of every output along each unit vector
            blocks.append(xp.reshape(RF, (RF.shape[0], -1)))
        return xp.concat(blocks, axis=0).mT

    def predict(self, w, X):
        """The network's outputs on raw inputs ``X`` (``(n, d)``), shape ``(..., n, k)``."""
        return self.model.forward(self._weights(w), _backend.as_array(X, self.xp))

    def metrics(self, w) -> dict:
        """Training and test loss and error, and the weight norm :math:`\\|w\\|_2`.

        ``train_loss`` / ``test_loss`` are the data term of the loss, without
        weight decay; ``*_error`` is the misclassification rate for the
        logistic and cross-entropy losses and the mean squared error
        :math:`\\frac1n\\sum_i\\|f(x_i) - y_i\\|^2` for the square loss (the
        "error" of the paper's Figures 4, 15, 16).  The test entries are
        present only when the data has a test set.  Values are floats for one
        ``w`` and arrays ``(m,)`` for a batch.
        """
        w = self._weights(w)
        xp = self.xp
        params = self.model._split(w, xp)
        sets = [("train", self._inputs, self._targets)]
        if self.data.has_test:
            sets.append(("test", self._test_inputs, self._test_targets))
        out = {}
        for name, inputs, targets in sets:
            F, _ = self.model._forward(params, inputs, xp)
            out[f"{name}_loss"], out[f"{name}_error"] = self.loss.value_and_error(F, targets, xp)
        out["norm"] = xp.sqrt(xp.sum(w * w, axis=-1))
        if w.ndim == 1:
            out = {k: float(v) for k, v in out.items()}
        return out

    # ----------------------------------------------------------------- init
    def init(self, seed=0, scale=DEFAULT_INIT_SCALE, in_data_span=False):
        r"""Random initial weights: i.i.d. :math:`\mathcal N(0, \text{scale}^2)` entries, seeded.

        Parameters
        ----------
        seed : int, default 0
        scale : float, default 0.1
            Standard deviation of every entry (0 gives the zero vector).
        in_data_span : bool, default False
            Project the rows of the first layer's weights onto the row space of
            the (transformed) training inputs, so that they start in the span of
            the data, the condition of the paper's Theorem 2 / Lemma 3 under
            which gradient descent on the square loss selects the minimum-norm
            solution.
        """
        seed = check_seed(seed)
        scale = check_real("scale", scale, minimum=0.0)
        in_data_span = check_bool("in_data_span", in_data_span)
        w = scale * np.random.default_rng(seed).standard_normal(self.size)
        if in_data_span:
            w = self._project_first_layer(w)
        return _backend.as_array(w, self.xp)

    def _project_first_layer(self, w: np.ndarray) -> np.ndarray:
        inputs = _backend.to_numpy(self._inputs)
        _, s, vh = np.linalg.svd(inputs, full_matrices=False)
        rank = int(np.sum(s > s.max(initial=0.0) * max(inputs.shape) * np.finfo(float).eps)) if s.size else 0
        basis = vh[:rank]
        rows, cols = self.model.parameter_shapes[0]
        W1 = w[: rows * cols].reshape(rows, cols)
        w = w.copy()
        w[: rows * cols] = (W1 @ basis.T @ basis).ravel()
        return w

    # -------------------------------------------------------------- helpers
    def _decay_value(self, w):
        if not self.weight_decay:
            return 0.0
        return 0.5 * self.weight_decay * self.xp.sum(w * w, axis=-1)

    def _weights(self, w, name="w"):
        """``w`` as an array of this objective's library, checked for its last dimension."""
        if type(w) is not self._array_type:
            if _backend.is_array(w) and _backend.namespace(w) is not self.xp and not isinstance(w, np.ndarray):
                raise TypeError(
                    f"`{name}` comes from a different array library than the objective's data "
                    f"({type(w).__module__.split('.')[0]} vs {self._array_type.__module__.split('.')[0]}); "
                    "convert it first, e.g. with the objective's init() or xp.asarray."
                )
            w = _backend.as_array(w, self.xp)
        if not self.xp.isdtype(w.dtype, ("real floating", "integral")):
            raise TypeError(f"`{name}` must hold real numbers; got dtype {w.dtype}. Pass a float64 array.")
        if w.ndim not in (1, 2) or w.shape[-1] != self.size or (w.ndim == 2 and w.shape[0] == 0):
            raise ValueError(
                f"`{name}` must have shape ({self.size},) or (m, {self.size}) with m >= 1 for this objective "
                f"with P = {self.size} parameters; got {describe(w)}."
            )
        if not self.xp.isdtype(w.dtype, "real floating"):
            w = self.xp.astype(w, self.xp.float64)
        return w

    def _single(self, w):
        if w.ndim != 1:
            raise ValueError(f"`w` must be one parameter vector of shape ({self.size},) here; got shape {tuple(w.shape)}.")
        return w

    def _chunk_size(self, n_samples: int) -> int:
        """Directions per batch of a dense Hessian or output Jacobian on ``n_samples`` inputs, so that a batch's
        work arrays hold about ``HESSIAN_CHUNK_ELEMENTS`` numbers."""
        per_direction = n_samples * (sum(self.model.widths) + self.model.n_outputs) * 4 + self.size
        return max(1, min(self.size, HESSIAN_CHUNK_ELEMENTS // max(per_direction, 1)))

    def __repr__(self) -> str:
        decay = f", weight_decay={self.weight_decay}" if self.weight_decay else ""
        return f"Objective({self.model!r}, {self.data!r}, loss={self.loss.name!r}{decay}; P={self.size})"


def _unit_vectors(start: int, count: int, size: int, xp):
    """Rows ``start .. start + count - 1`` of the ``size x size`` identity, without building the identity."""
    return xp.eye(count, size, k=start, dtype=xp.float64)


def _validate_model(model) -> Network:
    if not isinstance(model, Network):
        raise TypeError(
            "`model` must be a gradflow model (gradflow.models.FeatureRegression, DeepLinear or MLP); "
            f"got {describe(model)}."
        )
    return model


def _validate_data(data) -> Dataset:
    if not isinstance(data, Dataset):
        raise TypeError(f"`data` must be a gradflow.Dataset, e.g. gf.Dataset(X, y); got {describe(data)}.")
    return data


def _validate_inputs(model: Network, X, name: str):
    """The first layer's input for ``X``, checked against the model's input width."""
    if X.ndim != 2:
        raise ValueError(f"`{name}` must be raw inputs of shape (n, d), one sample per row; got shape {tuple(X.shape)}. "
                         "A single feature is a column: X.reshape(-1, 1).")
    inputs = model.transform(X)
    if inputs.ndim == 2 and inputs.shape[0] == X.shape[0] and inputs.shape[1] == model.n_inputs:
        return inputs
    if inputs is X:
        raise ValueError(
            f"`{name}` has shape {tuple(X.shape)} but the model takes {model.n_inputs} inputs per sample "
            f"(widths {list(model.widths)}, input first); make widths[0] equal to the data's dimension {X.shape[1]}."
        )
    raise ValueError(
        f"the features of `{name}` have shape {tuple(inputs.shape)}; the model expects ({X.shape[0]}, {model.n_inputs})."
    )
