r"""Networks: feature regression, deep linear networks and multilayer perceptrons.

Every model here is a stack of fully connected layers on (possibly
transformed) inputs.  With one sample per row, :math:`Z_0 = \phi(X)` and

.. math::

    A_l = Z_{l-1} W_l^\top + b_l, \qquad Z_l = \sigma(A_l) \quad (l < H+1), \qquad
    f(X) = A_{H+1},

where :math:`W_l` has shape ``(N_l, N_{l-1})`` (the paper's convention,
Figure 7: :math:`W_1` maps the ``d`` inputs to the ``N`` hidden units), the
output layer is linear and :math:`\phi` is the identity except for
:class:`FeatureRegression`.

**Flat parameter order.**  The flat vector ``w`` is the concatenation, layer by
layer from the input, of each :math:`W_l` in row-major order followed by its
bias :math:`b_l` when ``bias=True``.  Row-major :math:`W_l` is
:math:`\mathrm{vec}(W_l^\top)`, so for a two-layer net ``w`` is the paper's
:math:`\mathrm{vec}(W_1^\top, W_2^\top)` (Section 6.2.2).  :meth:`Network.unflatten`
returns the arrays in this order; the symbolic layer orders its symbols the
same way.

The derivatives are exact: the gradient by backpropagation and the
Hessian-vector product by Pearlmutter's R-operator (forward-over-backward),
never by finite differences.  All array code is written against the namespace
``xp`` and accepts any number of leading batch dimensions on the weights, so
``m`` parameter vectors ``(m, P)`` are evaluated in one pass.
"""

from __future__ import annotations

import math

from . import _backend, activations as _activations
from ._validation import check_bool, check_int, describe

__all__ = ["Network", "FeatureRegression", "DeepLinear", "MLP"]


class Network:
    """A fully connected network; the base of every gradflow model.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first: ``[N_0, N_1, ..., N_{H+1}]``.
    activation : str or Activation
        Activation of the hidden layers (the output layer is linear).
    bias : bool
        Whether every layer has a bias vector.
    """

    def __init__(self, widths, activation="linear", bias=False):
        self.widths = _validate_widths(widths)
        self.activation = _activations.get(activation)
        self.bias = check_bool("bias", bias)
        shapes = []
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            shapes.append((n_out, n_in))
            if self.bias:
                shapes.append((n_out,))
        self.parameter_shapes = tuple(shapes)
        offsets, start = [], 0
        for shape in shapes:
            stop = start + math.prod(shape)
            offsets.append((start, stop))
            start = stop
        self._offsets = tuple(offsets)
        self.size = start

    # ------------------------------------------------------------------ layout
    @property
    def n_inputs(self) -> int:
        """Width of the first layer's input (after :meth:`transform`)."""
        return self.widths[0]

    @property
    def n_outputs(self) -> int:
        """Number of outputs ``k``."""
        return self.widths[-1]

    @property
    def n_layers(self) -> int:
        """Number of weight layers ``H + 1``."""
        return len(self.widths) - 1

    def transform(self, X):
        """The first layer's input for raw inputs ``X`` (identity here; features in :class:`FeatureRegression`)."""
        return X

    def unflatten(self, w) -> list:
        """Per-layer arrays ``[W_1, (b_1), W_2, (b_2), ...]`` of a flat ``w`` of shape ``(..., P)``."""
        xp = _backend.namespace(w)
        w = _backend.as_array(w, xp)
        _check_parameter_length(w, self.size)
        return self._split(w, xp)

    def flatten(self, arrays) -> object:
        """The flat vector of per-layer arrays given in the order of :meth:`unflatten`."""
        arrays = list(arrays)
        if len(arrays) != len(self.parameter_shapes):
            raise ValueError(
                f"`arrays` must hold {len(self.parameter_shapes)} arrays of shapes {list(self.parameter_shapes)}; "
                f"got {len(arrays)}."
            )
        xp = _backend.namespace(*arrays)
        arrays = [_backend.as_array(a, xp) for a in arrays]
        batch = None
        for i, (a, shape) in enumerate(zip(arrays, self.parameter_shapes)):
            if tuple(a.shape[a.ndim - len(shape):]) != shape or a.ndim < len(shape):
                raise ValueError(f"`arrays[{i}]` must have shape {shape} (after any batch axes); got {tuple(a.shape)}.")
            this_batch = tuple(a.shape[: a.ndim - len(shape)])
            if batch is not None and this_batch != batch:
                raise ValueError(f"`arrays` must share their batch shape; got {batch} and {this_batch}.")
            batch = this_batch
        return self._join(arrays, xp)

    def _split(self, w, xp) -> list:
        """:meth:`unflatten` without validation, for the hot paths."""
        batch = tuple(w.shape[:-1])
        return [xp.reshape(w[..., a:b], batch + shape) for (a, b), shape in zip(self._offsets, self.parameter_shapes)]

    def _join(self, arrays, xp):
        """:meth:`flatten` without validation; the arrays share their batch shape."""
        batch = tuple(arrays[0].shape[: arrays[0].ndim - len(self.parameter_shapes[0])])
        return xp.concat([xp.reshape(a, batch + (-1,)) for a in arrays], axis=-1)

    def forward(self, w, X):
        """Network outputs ``f(X)`` of shape ``(..., n, k)`` for flat weights ``w`` (``(P,)`` or ``(..., P)``)."""
        xp = _backend.namespace(w, X)
        X = _backend.as_array(X, xp)
        inputs = self.transform(X)
        if inputs.ndim != 2 or inputs.shape[1] != self.n_inputs:
            raise ValueError(
                f"`X` must give first-layer inputs of shape (n, {self.n_inputs}); got {tuple(inputs.shape)} "
                f"from X of shape {tuple(X.shape)}."
            )
        w = _backend.as_array(w, xp)
        _check_parameter_length(w, self.size)
        return self._forward(self._split(w, xp), inputs, xp)[0]

    # ------------------------------------------------------------ the maths
    def _layers(self, params):
        """Pairs ``(W_l, b_l or None)``."""
        if not self.bias:
            return [(W, None) for W in params]
        return list(zip(params[0::2], params[1::2]))

    def _forward(self, params, inputs, xp):
        """Outputs and the cache ``(Z_0, A_1, Z_1, ..., A_{H+1})`` of the forward pass."""
        act = self.activation
        layers = self._layers(params)
        Z = inputs
        cache = [Z]
        for l, (W, b) in enumerate(layers):
            A = _matmul(Z, W.mT, xp)
            if b is not None:
                A = A + xp.expand_dims(b, axis=-2)
            cache.append(A)
            if l < len(layers) - 1:
                Z = A if act.is_linear else act.value(A, xp)
                cache.append(Z)
        return A, cache

    def _backward(self, params, cache, G, xp):
        r"""Gradient of :math:`\sum` ``G * f`` with respect to every parameter, ``G = dL/df``."""
        act = self.activation
        layers = self._layers(params)
        grads = []
        for l in range(len(layers) - 1, -1, -1):
            W, b = layers[l]
            Z_prev = cache[2 * l]
            if b is not None:
                grads.append(xp.sum(G, axis=-2))
            grads.append(_matmul(G.mT, Z_prev, xp))
            if l > 0:
                G = G @ W
                if not act.is_linear:
                    G = G * act.derivative(cache[2 * l - 1], xp)
        grads.reverse()
        return grads

    def _jvp(self, params, directions, cache, xp):
        r"""Forward-mode pass: :math:`R\{A_l\}` and :math:`R\{Z_l\}` along ``directions`` (same layout as params).

        Returns the list ``(R Z_0 = None, R A_1, R Z_1, ..., R A_{H+1})``.
        """
        act = self.activation
        layers = self._layers(params)
        dlayers = self._layers(directions)
        RZ = None
        rcache = [None]
        for l, ((W, _), (V, c)) in enumerate(zip(layers, dlayers)):
            RA = _matmul(cache[2 * l], V.mT, xp)
            if RZ is not None:
                RA = RA + RZ @ W.mT
            if c is not None:
                RA = RA + xp.expand_dims(c, axis=-2)
            rcache.append(RA)
            if l < len(layers) - 1:
                RZ = RA if act.is_linear else act.derivative(cache[2 * l + 1], xp) * RA
                rcache.append(RZ)
        return rcache

    def _hvp_backward(self, params, directions, cache, rcache, G, RG, xp):
        r"""R-operator of :meth:`_backward`: the Hessian-vector product given ``G`` and ``R{G}`` at the output."""
        act = self.activation
        layers = self._layers(params)
        dlayers = self._layers(directions)
        out = []
        for l in range(len(layers) - 1, -1, -1):
            W, b = layers[l]
            V, _ = dlayers[l]
            Z_prev, RZ_prev = cache[2 * l], rcache[2 * l]
            if b is not None:
                out.append(xp.sum(RG, axis=-2))
            RdW = _matmul(RG.mT, Z_prev, xp)
            if RZ_prev is not None:
                RdW = RdW + G.mT @ RZ_prev
            out.append(RdW)
            if l > 0:
                back, Rback = G @ W, RG @ W + G @ V
                if act.is_linear:
                    G, RG = back, Rback
                else:
                    A_prev, RA_prev = cache[2 * l - 1], rcache[2 * l - 1]
                    slope = act.derivative(A_prev, xp)
                    G = back * slope
                    RG = Rback * slope + back * act.second_derivative(A_prev, xp) * RA_prev
        out.reverse()
        return out

    def __repr__(self) -> str:
        bias = ", bias=True" if self.bias else ""
        return f"{type(self).__name__}({list(self.widths)}, activation={self.activation.name!r}{bias})"


class DeepLinear(Network):
    r"""A deep *linear* network :math:`f(x) = W_{H+1}\cdots W_2 W_1 x` (Sections 6.2.2, Figure 8).

    Linear in its input but polynomial in its weights, so its loss landscape
    already has saddles and manifolds of degenerate minima.

    Parameters
    ----------
    widths : sequence of int
        ``[d, N_1, ..., k]``, input first, e.g. ``[31, 2, 1]`` for Figure 8.
    bias : bool, default False
    """

    def __init__(self, widths, bias=False):
        super().__init__(widths, activation="linear", bias=bias)

    def __repr__(self) -> str:
        bias = ", bias=True" if self.bias else ""
        return f"DeepLinear({list(self.widths)}{bias})"


class MLP(Network):
    """A multilayer perceptron with the same activation in every hidden layer and a linear output layer.

    Parameters
    ----------
    widths : sequence of int
        ``[d, N_1, ..., N_H, k]``, input first.
    activation : {"relu", "tanh", "linear"} or Activation, default "relu"
        E.g. :func:`gradflow.activations.relu_polynomial` for the paper's polynomial networks (Section 6.4).
    bias : bool, default False
    """

    def __init__(self, widths, activation="relu", bias=False):
        super().__init__(widths, activation=activation, bias=bias)


class FeatureRegression(Network):
    r"""A linear model in feature space, :math:`f(x) = W\,\phi(x)` (Figures 4, 13, 15, 16).

    With the square loss its loss is quadratic in ``W``, with Hessian
    :math:`\Phi^\top\Phi / n`, degenerate when there are more features than
    training points: the paper's model of a degenerate minimum (Figure 2).

    Parameters
    ----------
    features : callable
        A feature map, ``features(X) -> (n, n_features)``, e.g.
        ``gradflow.features.Legendre(degree=30)``.
    n_outputs : int, default 1
    n_features : int, optional
        Needed only when ``features`` is not one of gradflow's feature maps
        (which know their ``n_features``).
    """

    def __init__(self, features, n_outputs=1, n_features=None):
        self.features = _validate_features(features)
        n_features = _validate_n_features(features, n_features)
        n_outputs = check_int("n_outputs", n_outputs, minimum=1)
        super().__init__([n_features, n_outputs], activation="linear", bias=False)

    def transform(self, X):
        """The feature matrix :math:`\\Phi = \\phi(X)`."""
        return self.features(X)

    def __repr__(self) -> str:
        return f"FeatureRegression({self.features!r}, n_outputs={self.n_outputs})"


def _matmul(A, B, xp):
    """``A @ B`` where one side may carry batch axes and the other is a plain matrix, as one matrix product.

    Broadcasting a matrix against a batch would run one small product per batch
    entry; folding the batch into the rows (or columns) makes it one large
    product, which is what evaluating many weight vectors (a GD batch, the
    unit vectors of a Hessian) on one data set needs.
    """
    if A.ndim == 2 and B.ndim == 2:
        return A @ B
    if B.ndim == 2:                                   # (..., r, c) @ (c, s)
        batch = tuple(A.shape[:-2])
        return xp.reshape(xp.reshape(A, (-1, A.shape[-1])) @ B, batch + (A.shape[-2], B.shape[-1]))
    if A.ndim == 2:                                   # (r, c) @ (..., c, s) = ((..., s, c) @ (c, r))^T
        batch = tuple(B.shape[:-2])
        product = xp.reshape(xp.reshape(B.mT, (-1, B.shape[-2])) @ A.mT, batch + (B.shape[-1], A.shape[0]))
        if B.shape[-1] == 1:                          # one column: the transpose is a reshape, and stays contiguous
            return xp.reshape(product, batch + (A.shape[0], 1))
        return product.mT
    return A @ B


def _validate_widths(widths) -> tuple:
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise TypeError(f"`widths` must be a sequence of positive integers, input first, e.g. [31, 2, 1]; got {describe(widths)}.")
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(f"`widths` must list at least an input and an output width, e.g. [31, 2, 1]; got {widths}.")
    return tuple(check_int(f"widths[{i}]", n, minimum=1) for i, n in enumerate(widths))


def _validate_features(features):
    if not callable(features):
        raise TypeError(
            "`features` must be a feature map, a callable phi(X) -> (n, n_features) such as "
            f"gradflow.features.Legendre(degree=30); got {describe(features)}."
        )
    return features


def _validate_n_features(features, n_features) -> int:
    from .features import FeatureMap

    if isinstance(features, FeatureMap):
        if n_features is not None and n_features != features.n_features:
            raise ValueError(f"`n_features` must be {features.n_features} for {features!r}, or left out; got {n_features}.")
        return features.n_features
    if n_features is None:
        raise TypeError(
            "`n_features` is required when `features` is a plain callable; pass the number of columns "
            "features(X) returns, e.g. FeatureRegression(phi, n_features=31)."
        )
    return check_int("n_features", n_features, minimum=1)


def _check_parameter_length(w, size: int) -> None:
    if w.ndim < 1 or w.shape[-1] != size:
        raise ValueError(
            f"`w` must be a flat parameter vector of length {size} (shape ({size},) or (m, {size})); "
            f"got shape {tuple(w.shape)}."
        )
