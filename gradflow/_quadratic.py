r"""Quadratic objectives in the eigenbasis of their Hessian: what the exact propagators of GD and of the flow need.

Feature regression with the square loss (with or without weight decay) is
quadratic in the weights,

.. math::

    L(w) = \tfrac12 w^\top H w - b^\top w + c, \qquad H = \Phi^\top\Phi / n + \gamma I,\quad b = -\nabla L(0),

so GD and the gradient flow are linear and are solved exactly, coordinate by
coordinate, in the eigenbasis :math:`H = V \Lambda V^\top`.  Both propagators
(``descent._gd_quadratic``, ``GradientFlow``'s method ``"quadratic"``) start
from :func:`spectrum`.
"""

from __future__ import annotations

import collections

import numpy as np

from . import _backend
from .losses import Square
from .models import FeatureRegression
from .objective import Objective

#: Dense P x P float64 matrices a propagator holds at its peak (the Hessian, LAPACK's copy, the eigenvectors and
#: workspace); "auto" takes another method where they would take more than half of the memory.
DENSE_MATRICES = 6

#: Products per chunk of rows in :func:`path_metrics`: a megabyte, which stays in the cache while it is squared and
#: summed, and is reused from chunk to chunk (measured on Figure 4's recorded GD path: 10.5 ms against 15.7 with
#: chunks of 32 megabytes, whose fresh pages the kernel zeroes).
CACHED_ELEMENTS = 2**17


#: ``eigenvalues`` (ascending, with the null space's set to exactly 0), ``vectors`` V, ``null`` (which eigenvalues
#: are 0 to rounding), ``beta`` = V^T b, ``lambda_max`` (as computed).
Spectrum = collections.namedtuple("Spectrum", "eigenvalues vectors null beta lambda_max")


def is_quadratic(obj) -> bool:
    """Whether ``L`` is quadratic in ``w`` (constant Hessian): a :class:`~gradflow.Objective` of a
    :class:`~gradflow.models.FeatureRegression` model with the square loss.

    The types are checked exactly: a subclass may override ``value`` or ``grad`` (a penalty, another model) and no
    longer be quadratic.
    """
    return (type(obj) is Objective and type(obj.model) is FeatureRegression and type(obj.loss) is Square)


def spectrum(obj) -> Spectrum:
    r"""The eigendecomposition of the constant Hessian of a quadratic ``obj`` and :math:`b = -\nabla L(0)` in its basis.

    Eigenvalues with :math:`|\lambda_j| \le P\,\epsilon \max|\lambda|` are the null space of :math:`H` (the
    degenerate directions of the paper's Section 4.1) and are set to 0.  :math:`b = \Phi^\top y / n` lies in the
    range of :math:`H`, so its null-space coordinates :math:`\beta_j` are rounding error; those at the rounding
    level :math:`P\epsilon\|b\|` are set to exactly 0, so that the degenerate directions stay exactly where they
    are.  A larger one belongs to an eigenvalue too small to resolve (features so ill-conditioned that
    :math:`\lambda_j/\lambda_{\max} < P\epsilon`) and is kept: its direction then drifts linearly, the limit of the
    propagators for :math:`\lambda_j t \ll 1`.
    """
    P = obj.size
    zero_w = obj.xp.zeros(P, dtype=obj.xp.float64)
    H = np.asarray(_backend.to_numpy(obj.hessian(zero_w)), dtype=np.float64)
    b = -np.asarray(_backend.to_numpy(obj.grad(zero_w)), dtype=np.float64)
    if not (np.isfinite(H).all() and np.isfinite(b).all()):
        raise ValueError("`obj` has a Hessian or gradient with non-finite entries (its features overflow): rescale "
                         "the inputs, e.g. to [-1, 1], or use features with normalize=True.")
    eps = np.finfo(np.float64).eps
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    null = np.abs(lam) <= P * eps * max(float(np.abs(lam).max(initial=0.0)), np.finfo(np.float64).tiny)
    beta = b @ V
    beta = np.where(null & (np.abs(beta) <= P * eps * np.linalg.norm(b)), 0.0, beta)
    return Spectrum(np.where(null, 0.0, lam), V, null, beta, float(lam[-1]))


def flow_path(spec: Spectrum, W0: np.ndarray, durations: np.ndarray) -> np.ndarray:
    r"""The exact gradient flow :math:`w(\tau) = e^{-H\tau} w_0 + H^{+}(I - e^{-H\tau}) b` (plus :math:`\tau\,b`
    along the null space) from every row of ``W0`` (m, P) after each of ``durations`` (T,): shape (T, m, P).

    Coordinate by coordinate, :math:`c_j(\tau) = e^{-\lambda_j\tau} c_j(0) - \operatorname{expm1}(-\lambda_j\tau)
    \beta_j/\lambda_j`, and :math:`c_j(0) + \tau\beta_j` where :math:`\lambda_j = 0`.
    """
    lam = spec.eigenvalues
    tau = np.asarray(durations, dtype=np.float64)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        decay = np.exp(-tau * lam)
        gain = np.where(spec.null, tau, -np.expm1(-tau * lam) / np.where(spec.null, 1.0, lam))
        C0 = W0 @ spec.vectors
        return (decay[:, None, :] * C0[None] + (gain * spec.beta)[:, None, :]) @ spec.vectors.T


def metrics_by_qr_pay(obj, rows: int) -> bool:
    r"""Whether :func:`path_metrics` evaluates ``rows`` weight vectors of a quadratic ``obj`` in fewer operations than
    the objective's own metrics: when its products are at most half as many per row (``min(n, F)`` instead of ``n``
    per set of ``n`` samples and ``F`` features), and there are at least twice as many rows as samples, which pays
    for the QR factorizations (:math:`O(nF\min(n, F))`)."""
    features = obj.size // obj.model.n_outputs
    samples = [obj.data.n] + ([obj.data.n_test] if obj.data.has_test else [])
    return rows >= 2 * sum(samples) and 2 * sum(min(n, features) for n in samples) <= sum(samples)


def path_metrics(obj, W: np.ndarray):
    r"""The loss and the metrics of :meth:`Objective.metrics` of a quadratic ``obj`` at every row of ``W`` (N, P).

    The square loss of a feature matrix :math:`\Phi` (n, F), with its reduced QR factors :math:`\Phi = QR`, is for
    each output's weights :math:`w_o` and targets :math:`y_o`

    .. math::

        \|\Phi w_o - y_o\|^2 = \|R\,w_o - Q^\top y_o\|^2 + \|(I - QQ^\top)\,y_o\|^2 ,

    so a weight vector costs :math:`\min(n, F)` products per output instead of :math:`n` (see
    :func:`metrics_by_qr_pay`), and the two non-negative terms do not cancel.  The training and the test set go
    through one product per chunk of rows (of :data:`CACHED_ELEMENTS` products).  Returns NumPy arrays ``(loss (N,),
    {name: (N,)})``, as :func:`gradflow.trajectory.evaluate_path` does.  On Figure 4's problem (9 training and 100
    test points, 31 features) that is 40 products per weight vector instead of 109: a GD path recorded at 2,501 x 30
    states is evaluated in 10 ms instead of 25.
    """
    N, P = W.shape
    k = obj.model.n_outputs
    sets = [("train", obj._inputs, obj._targets)]
    if obj.data.has_test:
        sets.append(("test", obj._test_inputs, obj._test_targets))
    blocks, shifts, spans, start = [], [], [], 0
    for name, inputs, targets in sets:
        Phi = np.asarray(_backend.to_numpy(inputs), dtype=np.float64)
        Y = np.asarray(_backend.to_numpy(targets), dtype=np.float64)
        Q, R = np.linalg.qr(Phi)
        QtY = Q.T @ Y                                                 # (r, k)
        unreachable = float(np.sum((Y - Q @ QtY) ** 2))               # the part of Y outside the range of Phi
        blocks.append(R.T)
        shifts.append(QtY.T)
        spans.append((name, start, start + R.shape[0], unreachable, Phi.shape[0]))
        start += R.shape[0]
    M, shift = np.concatenate(blocks, axis=1), np.concatenate(shifts, axis=1)     # (F, r_all), (k, r_all)
    sums = np.empty((N, len(sets)))
    rows = max(1, CACHED_ELEMENTS // (k * M.shape[1]))
    metrics = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(0, N, rows):
            Z = (W[i:i + rows].reshape(-1, P // k) @ M).reshape(-1, k, M.shape[1])     # one product, not one a row
            Z -= shift
            Z *= Z
            for s, (_, a, b, _, _) in enumerate(spans):
                sums[i:i + rows, s] = np.einsum("nkr->n", Z[..., a:b])      # a third of np.sum's time here
        for s, (name, _, _, unreachable, n) in enumerate(spans):
            metrics[f"{name}_loss"] = (sums[:, s] + unreachable) / (2 * n)
            metrics[f"{name}_error"] = 2.0 * metrics[f"{name}_loss"]   # Square's error: the mean squared error
        squares = np.einsum("np,np->n", W, W)
        metrics["norm"] = np.sqrt(squares)
        loss = metrics["train_loss"] + (0.5 * obj.weight_decay * squares if obj.weight_decay else 0.0)
    return loss, metrics
