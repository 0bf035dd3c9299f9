r"""Losses on a network's outputs: square, logistic and cross-entropy.

Each loss is an average over the ``n`` training samples of a per-sample loss
of the outputs :math:`F = f(X)` (shape ``(n, k)``):

* ``"square"``: :math:`L = \frac{1}{2n}\sum_i \|f(x_i) - y_i\|^2`, the
  normalization of the paper's Equation 10, so that for a linear model the
  Hessian is :math:`X^\top X / n` and at a zero-loss point of any model
  :math:`\nabla^2 L = J^\top J / n` (``J`` the output Jacobian).
* ``"logistic"``: :math:`L = \frac1n\sum_i \log(1 + e^{-y_i f(x_i)})`, labels
  :math:`y_i \in \{-1, +1\}`, one output.
* ``"cross_entropy"``: :math:`L = \frac1n\sum_i \big(\log\sum_c e^{F_{ic}} - F_{i y_i}\big)`,
  softmax over ``k >= 2`` outputs, integer labels :math:`y_i \in \{0, \dots, k-1\}`.

All three are computed in a numerically stable form (``logaddexp`` and a
shifted log-sum-exp), finite for margins of :math:`10^3` and far beyond.  Each
loss also gives its derivative ``G = dL/dF`` and the product of its Hessian
in ``F`` with a direction, which the network's backward passes turn into the
exact gradient and Hessian-vector product.
"""

from __future__ import annotations

import abc

from ._validation import check_choice

__all__ = ["Loss", "Square", "Logistic", "CrossEntropy", "get", "NAMES"]


class Loss(abc.ABC):
    """Protocol of a loss: ``prepare`` the targets once, then value / gradient / Hessian product in the outputs.

    ``targets`` is what :meth:`prepare` returned; ``F`` has shape ``(..., n, k)``.
    """

    name: str

    @abc.abstractmethod
    def prepare(self, y, n_outputs: int, xp, name: str = "y"):
        """Check labels ``y`` against this loss and ``n_outputs``; return the targets the other methods take."""

    @abc.abstractmethod
    def value(self, F, targets, xp):
        """The loss, shape ``(...)``."""

    @abc.abstractmethod
    def gradient(self, F, targets, xp):
        """``dL/dF``, shape of ``F``."""

    @abc.abstractmethod
    def hessian_product(self, F, targets, R, xp):
        """``(d²L/dF²)[R]``, shape of ``F``."""

    @abc.abstractmethod
    def error(self, F, targets, xp):
        """The error reported by ``Objective.metrics``: misclassification rate, or mean squared error."""

    def value_and_error(self, F, targets, xp):
        """``(value, error)``, for ``Objective.metrics``; a loss whose error follows from its value overrides it."""
        return self.value(F, targets, xp), self.error(F, targets, xp)


class Square(Loss):
    r""":math:`L = \frac{1}{2n}\sum_i \|f(x_i) - y_i\|^2`; its "error" is the mean squared error :math:`\frac1n\sum_i\|f(x_i)-y_i\|^2`."""

    name = "square"

    def prepare(self, y, n_outputs, xp, name="y"):
        if xp.isdtype(y.dtype, "integral"):
            y = xp.astype(y, xp.float64)
        if y.ndim == 1:
            if n_outputs != 1:
                raise ValueError(
                    f"`{name}` is 1-D, which fits a network with 1 output, but the network has {n_outputs}; "
                    f"give targets of shape (n, {n_outputs}) or make the last width 1."
                )
            return xp.reshape(y, (y.shape[0], 1))
        if y.shape[1] != n_outputs:
            raise ValueError(
                f"`{name}` has {y.shape[1]} columns but the network has {n_outputs} outputs; "
                "make the last width equal to the number of target columns."
            )
        return y

    def value(self, F, targets, xp):
        residual = F - targets
        flat = xp.reshape(residual, residual.shape[:-2] + (-1,))
        return xp.vecdot(flat, flat) / (2 * F.shape[-2])

    def gradient(self, F, targets, xp):
        return (F - targets) / F.shape[-2]

    def hessian_product(self, F, targets, R, xp):
        return R / F.shape[-2]

    def error(self, F, targets, xp):
        return 2.0 * self.value(F, targets, xp)

    def value_and_error(self, F, targets, xp):
        value = self.value(F, targets, xp)
        if type(self).error is not Square.error:     # a subclass with an error of its own
            return value, self.error(F, targets, xp)
        return value, 2.0 * value


class Logistic(Loss):
    r""":math:`L = \frac1n\sum_i \log(1 + e^{-y_i f(x_i)})` with :math:`y_i = \pm 1` (Section 3.2).

    With the margin :math:`m = y f`: :math:`\partial L/\partial f = -y\,s(-m)/n` and
    :math:`\partial^2 L/\partial f^2 = s(m)\,s(-m)/n`, where :math:`s(m) = 1/(1+e^{-m}) = e^{-\mathrm{softplus}(-m)}`
    is evaluated through ``logaddexp`` so that no exponential overflows.
    """

    name = "logistic"

    def prepare(self, y, n_outputs, xp, name="y"):
        if n_outputs != 1:
            raise ValueError(f"the 'logistic' loss needs a network with 1 output; this one has {n_outputs}. Set the last width to 1.")
        if y.ndim == 2:
            if y.shape[1] != 1:
                raise ValueError(f"`{name}` for the 'logistic' loss must be labels of shape (n,); got shape {tuple(y.shape)}.")
            y = xp.reshape(y, (y.shape[0],))
        y = xp.astype(y, xp.float64)
        if not bool(xp.all((y == 1.0) | (y == -1.0))):
            raise ValueError(
                f"`{name}` for the 'logistic' loss must hold labels -1 and +1; got other values "
                "(for labels {0, 1} pass 2*y - 1; for k classes use loss='cross_entropy')."
            )
        return xp.reshape(y, (y.shape[0], 1))

    @staticmethod
    def _softplus(x, xp):
        return xp.logaddexp(xp.zeros_like(x), x)

    def value(self, F, targets, xp):
        return xp.sum(self._softplus(-targets * F, xp), axis=(-2, -1)) / F.shape[-2]

    def gradient(self, F, targets, xp):
        margin = targets * F
        return -targets * xp.exp(-self._softplus(margin, xp)) / F.shape[-2]

    def hessian_product(self, F, targets, R, xp):
        margin = targets * F
        curvature = xp.exp(-self._softplus(margin, xp) - self._softplus(-margin, xp))
        return curvature * R / F.shape[-2]

    def error(self, F, targets, xp):
        wrong = xp.astype(targets * F <= 0.0, F.dtype)
        return xp.mean(wrong, axis=(-2, -1))


class CrossEntropy(Loss):
    r""":math:`L = \frac1n\sum_i \big(\operatorname{logsumexp}_c F_{ic} - F_{i y_i}\big)` (softmax over ``k`` classes).

    :math:`\partial L/\partial F = (p - e_y)/n` and
    :math:`(\partial^2 L/\partial F^2)[R] = (p\odot R - p\,\langle p, R\rangle)/n`, with
    :math:`p = \operatorname{softmax}(F)` computed from the shifted log-sum-exp.
    Targets are stored one-hot.
    """

    name = "cross_entropy"

    def prepare(self, y, n_outputs, xp, name="y"):
        if n_outputs < 2:
            raise ValueError(
                f"the 'cross_entropy' loss needs a network with k >= 2 outputs, one per class; this one has {n_outputs}. "
                "For two classes with labels ±1 and one output use loss='logistic'."
            )
        if y.ndim != 1 or not xp.isdtype(y.dtype, "integral"):
            raise ValueError(
                f"`{name}` for the 'cross_entropy' loss must be integer class labels of shape (n,); "
                f"got shape {tuple(y.shape)} and dtype {y.dtype}."
            )
        if y.shape[0] and (int(xp.min(y)) < 0 or int(xp.max(y)) >= n_outputs):
            raise ValueError(
                f"`{name}` must hold class labels in 0..{n_outputs - 1} (the network has {n_outputs} outputs); "
                f"got labels from {int(xp.min(y))} to {int(xp.max(y))}."
            )
        classes = xp.arange(n_outputs, dtype=y.dtype)
        return xp.astype(xp.expand_dims(y, axis=1) == xp.expand_dims(classes, axis=0), xp.float64)

    @staticmethod
    def _log_softmax(F, xp):
        shift = xp.max(F, axis=-1, keepdims=True)
        shifted = F - shift
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))

    def value(self, F, targets, xp):
        return -xp.sum(targets * self._log_softmax(F, xp), axis=(-2, -1)) / F.shape[-2]

    def gradient(self, F, targets, xp):
        return (xp.exp(self._log_softmax(F, xp)) - targets) / F.shape[-2]

    def hessian_product(self, F, targets, R, xp):
        p = xp.exp(self._log_softmax(F, xp))
        return (p * R - p * xp.sum(p * R, axis=-1, keepdims=True)) / F.shape[-2]

    def error(self, F, targets, xp):
        wrong = xp.astype(xp.argmax(F, axis=-1) != xp.argmax(targets, axis=-1), F.dtype)
        return xp.mean(wrong, axis=-1)


#: The losses by name.
NAMES = {"square": Square(), "logistic": Logistic(), "cross_entropy": CrossEntropy()}


def get(loss) -> Loss:
    """The :class:`Loss` named ``loss`` ("square", "logistic", "cross_entropy") or ``loss`` itself."""
    if isinstance(loss, Loss):
        return loss
    return NAMES[check_choice("loss", loss, tuple(NAMES))]
