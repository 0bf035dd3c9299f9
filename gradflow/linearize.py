r"""Equilibria of the gradient flow, their linearization, degeneracy, and Hessian spectra at scale.

Section 4 of the paper studies the flow :math:`\dot W = -\nabla L(W) = -F(W)`
(Equation 1) near an equilibrium :math:`W^*`, :math:`F(W^*) = 0`, through its
linearization :math:`\delta\dot W = -H\,\delta W` with :math:`H = \nabla^2 L(W^*)`
(Equations 2, 3 and 6).  The Jacobian :math:`-H` is symmetric, so its
eigenvalues are real and its eigenvectors split weight space into

* the *stable* subspace :math:`E^s` (negative eigenvalues of :math:`-H`),
* the *center* subspace :math:`E^c` (zero eigenvalues), and
* the *unstable* subspace :math:`E^u` (positive eigenvalues: saddles, maxima).

Lemma 1 / Theorem 3 (SI 6.2.4) say that the Hessian of an overparametrized
network at a zero-loss minimum of the square loss has zero eigenvalues, and
SI 6.2.2 separates *trivial* degeneracy (moving along it leaves the network
function unchanged) from *nontrivial* degeneracy.  This module computes all of
that:

* :func:`find_equilibrium`: Newton's method on :math:`\nabla L = 0` with the
  exact Hessian, minimum-norm steps and Levenberg--Marquardt damping, so that
  singular Hessians (degenerate minima) are no obstacle;
* :func:`linearize`: the spectral decomposition of :math:`-H`, the three
  invariant subspaces, the type of the equilibrium and how clean the split
  between "zero" and nonzero eigenvalues is;
* :func:`degeneracy`: the nullity of :math:`H`, the dimension of the zero-loss
  manifold, Theorem 3's condition layer by layer and the trivial / nontrivial
  split of the null space;
* :func:`spectrum`, :func:`spectral_density`, :func:`hessian_trace`: extreme
  eigenvalues (dense or Lanczos), the spectral density (stochastic Lanczos
  quadrature) and the trace (Hutchinson) of large Hessians, matrix-free on
  Hessian-vector products;
* :func:`invariants`: the conserved quantities (balancedness) of the flow of
  deep linear and ReLU networks.

**Objectives.**  Every function takes a :class:`gradflow.Objective`, a
compiled symbolic objective (:class:`gradflow.symbolic.CompiledObjective`) or
any object with ``size``, ``value``, ``grad``, ``hvp`` and ``hessian``, or a
:class:`gradflow.GradientFlow` (its objective is used).  :func:`degeneracy`
needs an :class:`~gradflow.Objective` (it uses the network and the data).

**Arrays.**  Vectors and bases (``w``, eigenvectors, subspace bases) are
arrays of the objective's library (NumPy, or CuPy on a GPU, picked from
``obj.xp``); eigenvalue lists and statistics, which are small, are NumPy
arrays and floats.  The matrix-free routines keep every vector in the
objective's library.  Lanczos (:func:`spectrum`) runs the ``eigsh`` of
:func:`gradflow._backend.sparse_linalg`: on CuPy, cupyx's, on the GPU arrays;
otherwise SciPy's ARPACK, which sees NumPy copies of its Lanczos vectors,
converted at its boundary.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import scipy.sparse.linalg

from . import _backend, _threads
from ._validation import check_choice, check_dense_fits, check_int, check_real, check_seed, describe
from .flow import GradientFlow
from .models import Network
from .objective import Objective
from .trajectory import Trajectory

__all__ = [
    "find_equilibrium", "Equilibrium", "linearize", "Linearization", "degeneracy", "Degeneracy", "LayerBound",
    "spectrum", "HessianSpectrum", "spectral_density", "SpectralDensity", "hessian_trace", "TraceEstimate",
    "invariants", "Invariants", "NotAnEquilibriumWarning",
    "DENSE_LIMIT", "DEFAULT_K", "WHICH", "METHODS", "KINDS",
]

# ----------------------------------------------------------------------------- defaults
#: Largest ``P`` for which ``method="auto"`` of :func:`spectrum` uses the dense Hessian and ``eigh``.
DENSE_LIMIT = 2000
#: Dense P x P float64 matrices each dense analysis holds at its peak, rounded up: the Hessian, its symmetric part,
#: LAPACK's copy, eigenvectors and workspace (``eigh``: about 4), and for ``degeneracy`` the bases of the trivial and
#: nontrivial directions and an SVD of the null space (peak memory measured at P = 2,970: 5.2 for ``linearize``,
#: 6.2 for ``find_equilibrium``).  A NumPy objective whose matrices would take more than half of the machine's
#: memory is refused before any is built.
_DENSE_MATRICES = {"linearize": 6, "spectrum": 6, "find_equilibrium": 7, "degeneracy": 9}
#: Number of eigenvalues :func:`spectrum` returns by default.
DEFAULT_K = 20
#: Relative accuracy asked of ARPACK's Lanczos in :func:`spectrum` (``eigsh``'s ``tol``).
DEFAULT_LANCZOS_RTOL = 1e-10
#: Where Lanczos does not report its own convergence (cupyx), eigenpairs count as converged when every residual
#: is at most ``max(rtol, LANCZOS_RESIDUAL_FLOOR)`` times the largest eigenvalue found.
LANCZOS_RESIDUAL_FLOOR = 1e-12
#: Stopping tolerance of :func:`find_equilibrium` on :math:`\|\nabla L(w)\|_2`.
DEFAULT_GTOL = 1e-10
#: Largest number of Newton iterations of :func:`find_equilibrium`.
DEFAULT_MAX_ITER = 100
#: Largest number of damping increases tried within one Newton iteration of :func:`find_equilibrium`.
DEFAULT_MAX_DAMPING_TRIES = 40
#: A point is reported as an equilibrium when :math:`\|\nabla L\| \le` this times
#: :math:`\max(1, \lambda_{\max}\max(1, \|w\|))` (see :func:`linearize`).
EQUILIBRIUM_GRAD_RTOL = 1e-6
#: At an equilibrium known to a residual gradient ``g``, the default zero threshold adds ``RESIDUAL_TOL_FACTOR * g``,
#: and ``NEWTON_DRIFT_FACTOR`` times the change of the Hessian across the Newton step from there (see
#: :func:`linearize`): near a degenerate equilibrium the Hessian's eigenvalues are at most twice that change (three
#: times leaves a margin).
RESIDUAL_TOL_FACTOR = 10.0
NEWTON_DRIFT_FACTOR = 3.0
#: :func:`degeneracy`: a data loss at most this counts as zero (Theorem 3's hypothesis :math:`L(w^*) = 0`).
ZERO_LOSS_TOL = 1e-10
#: :func:`degeneracy`: number of fresh random inputs (besides the test set) on which trivial directions are tested.
DEFAULT_N_PROBE_INPUTS = 512
#: :func:`degeneracy`: a null direction is trivial when it moves the outputs by at most this times :math:`\|J\|_2`.
DEFAULT_TRIVIAL_RTOL = 1e-8
#: Seed of every random probe (inputs, Lanczos start vectors, Rademacher vectors).
DEFAULT_SEED = 0
#: :func:`spectral_density`: number of random probe vectors.
DEFAULT_SLQ_PROBES = 10
#: :func:`spectral_density`: Lanczos steps per probe (the quadrature has this many nodes).
DEFAULT_LANCZOS_STEPS = 80
#: :func:`spectral_density`: number of grid points of the density.
DEFAULT_GRID_POINTS = 512
#: :func:`spectral_density`: Gaussian bandwidth as a fraction of the width of the spectrum.
DEFAULT_BANDWIDTH_FRACTION = 0.01
#: :func:`hessian_trace`: number of Rademacher probes.
DEFAULT_TRACE_PROBES = 100
#: Number of probe vectors whose Hessian-vector products are evaluated in one batched call.
DEFAULT_PROBE_BATCH = 16

#: Accepted values of ``which`` in :func:`spectrum`, with their meaning.
WHICH = {
    "largest": "the k algebraically largest eigenvalues (ARPACK 'LA')",
    "smallest": "the k algebraically smallest eigenvalues (ARPACK 'SA'; slow in Lanczos when they cluster at 0)",
    "both": "k eigenvalues from both ends of the spectrum, ceil(k/2) largest and floor(k/2) smallest (ARPACK 'BE')",
    "magnitude": "the k eigenvalues largest in absolute value (ARPACK 'LM')",
}
#: Accepted values of ``method`` in :func:`spectrum`, with their meaning.
METHODS = {
    "auto": f"'dense' when P <= DENSE_LIMIT = {DENSE_LIMIT}, otherwise 'lanczos'",
    "dense": "the full Hessian (P Hessian-vector products) and numpy/cupy eigh: every eigenpair, exact to rounding",
    "lanczos": "restarted Lanczos (scipy.sparse.linalg.eigsh; cupyx's on CuPy) on Hessian-vector products; needs k < P",
}
#: The types of equilibrium :func:`linearize` reports.
KINDS = {
    "sink": "every eigenvalue of -H is negative: an isolated, asymptotically stable minimum",
    "saddle": "eigenvalues of -H of both signs and none zero: a hyperbolic saddle",
    "source": "every eigenvalue of -H is positive: an isolated maximum of L",
    "non-hyperbolic": "some eigenvalue of -H is zero: a center subspace (e.g. a degenerate minimum, Section 4)",
}
_ARPACK_WHICH = {"largest": "LA", "smallest": "SA", "both": "BE", "magnitude": "LM"}
_EPS = float(np.finfo(np.float64).eps)


class NotAnEquilibriumWarning(RuntimeWarning):
    """Warned by :func:`linearize` when the gradient at the point is not small: it is not an equilibrium."""


# ============================================================================= results
@dataclasses.dataclass(frozen=True, eq=False)
class Equilibrium:
    r"""A point found by :func:`find_equilibrium`, an approximate zero of :math:`\nabla L`.

    Attributes
    ----------
    w : array, shape (P,)
        The point, in the objective's array library.
    grad_norm : float
        :math:`\|\nabla L(w)\|_2` at ``w``.
    loss : float
        :math:`L(w)`.
    converged : bool
        Whether ``grad_norm <= gtol``.
    iterations : int
        Newton iterations taken.
    message : str
        How the search ended, and what to change when it did not converge.
    grad_norms : tuple of float
        :math:`\|\nabla L\|` after every iteration, the initial point first.
    """

    w: object
    grad_norm: float
    loss: float
    converged: bool
    iterations: int
    message: str
    grad_norms: tuple = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Linearization:
    r"""The linearization :math:`\delta\dot w = -H\,\delta w` of the flow at a point (Equations 3 and 6).

    Attributes
    ----------
    w : array, shape (P,)
        The point :math:`w^*`.
    eigenvalues : ndarray, shape (P,)
        Eigenvalues of the Jacobian :math:`-H`, ascending (so the Hessian's
        eigenvalues are ``-eigenvalues[::-1]``).  NumPy.
    eigenvectors : array, shape (P, P)
        Orthonormal eigenvectors, column ``i`` for ``eigenvalues[i]``.
    stable, center, unstable : array, shape (P, k)
        Orthonormal bases of :math:`E^s` (eigenvalues ``< -tol``),
        :math:`E^c` (``|λ| <= tol``) and :math:`E^u` (``> tol``): consecutive
        column blocks of ``eigenvectors``.
    dims : dict
        ``{"stable": k_s, "center": k_c, "unstable": k_u}``, summing to ``P``.
    is_hyperbolic : bool
        No eigenvalue is zero (``dims["center"] == 0``); then the
        Hartman--Grobman theorem applies.
    kind : str
        One of :data:`KINDS`: ``"sink"``, ``"saddle"``, ``"source"`` or ``"non-hyperbolic"``.
    morse_index : int
        Number of negative eigenvalues of :math:`H` (``dims["unstable"]``).
    nullity : int
        Number of zero eigenvalues (``dims["center"]``).
    tol : float
        The threshold used: :math:`|\lambda| \le` ``tol`` counts as zero.
    zero_max : float
        Largest :math:`|\lambda|` counted as zero (0 when none is).
    nonzero_min : float
        Smallest :math:`|\lambda|` counted as nonzero (``inf`` when none is).
    gap : float
        ``nonzero_min / zero_max``, or ``nonzero_min / tol`` when no
        eigenvalue is zero: how many times larger the smallest "nonzero"
        eigenvalue is than the "zero" ones.  Exact degeneracy in double
        precision gives :math:`10^{10}` and more; a gap of a few decades or
        less means the split is ambiguous (cross-entropy minima are only
        *almost* degenerate, Section 4.1), and ``tol`` should be chosen by
        hand from ``eigenvalues``.
    grad_norm : float
        :math:`\|\nabla L(w^*)\|_2`.
    is_equilibrium : bool
        Whether ``grad_norm`` is within the equilibrium threshold (see
        :func:`linearize`); a warning was issued otherwise.
    grad_tol : float
        That threshold.
    """

    w: object
    eigenvalues: np.ndarray
    eigenvectors: object
    stable: object
    center: object
    unstable: object
    dims: dict
    is_hyperbolic: bool
    kind: str
    morse_index: int
    nullity: int
    tol: float
    zero_max: float
    nonzero_min: float
    gap: float
    grad_norm: float
    is_equilibrium: bool
    grad_tol: float

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """Eigenvalues of :math:`H` itself, ascending."""
        return -self.eigenvalues[::-1]


@dataclasses.dataclass(frozen=True)
class LayerBound:
    r"""Theorem 3's condition for one layer ``k`` (SI 6.2.4).

    The Hessian block of layer ``k`` at a zero-loss point is
    :math:`J_k^\top J_k` (times :math:`1/n`) with
    :math:`\operatorname{rank} J_k \le n\cdot\min(N_k, \dots, N_{H+1})`, so it
    has at least ``null_bound`` zero eigenvalues.

    Attributes
    ----------
    layer : int
        ``k``, from 1 (the first weight layer) to ``H + 1``.
    n_params : int
        :math:`N_k N_{k-1}` (plus :math:`N_k` with a bias, which acts as one more input).
    rank_bound : int
        :math:`n\cdot\min(N_k, N_{k+1}, \dots, N_{H+1})`.
    holds : bool
        ``n_params > rank_bound``: the layer is overparametrized.
    null_bound : int
        ``max(0, n_params - rank_bound)``.
    """

    layer: int
    n_params: int
    rank_bound: int
    holds: bool
    null_bound: int


@dataclasses.dataclass(frozen=True, eq=False)
class Degeneracy:
    r"""Degeneracy of the Hessian at a point (Section 4, Lemma 1; SI 6.2.2 and Theorem 3).

    Attributes
    ----------
    size : int
        ``P``.
    nullity, rank : int
        Number of zero / nonzero eigenvalues of :math:`H` (``|λ| <= tol``).
    tol : float
        The zero threshold on the eigenvalues of :math:`H` (as in :func:`linearize`).
    eigenvalues : ndarray, shape (P,)
        Eigenvalues of :math:`H`, ascending (NumPy).
    null_basis : array, shape (P, nullity)
        Orthonormal basis of the null space of :math:`H`.
    jacobian_rank : int
        Rank of the output Jacobian :math:`J` on the training set (SVD, the
        ``numpy.linalg.matrix_rank`` threshold).
    manifold_dim : int
        ``P - jacobian_rank``: the dimension of the set of weights with the
        same training outputs, :math:`\{w : f_w(X) = f_{w^*}(X)\}`; at a
        zero-loss point this is the manifold of zero-loss minima, and with the
        square loss :math:`H = J^\top J / n` there, so ``nullity == manifold_dim``.
    layers : tuple of LayerBound
        Theorem 3's condition, layer by layer.
    theorem3_holds : bool
        Whether some layer satisfies :math:`N_k N_{k-1} > n\cdot\min(N_k, \dots, N_{H+1})`.
    theorem3_applies : bool
        Whether the theorem's hypotheses hold here: square loss, no weight
        decay, data loss at most :data:`ZERO_LOSS_TOL`.  The bound is a
        theorem only then.
    nullity_bound : int
        The lower bound on ``nullity`` the counting implies: the larger of
        :math:`\sum_k` ``null_bound`` (the layers' null spaces lie in disjoint
        coordinate blocks, so they add up) and :math:`P - n k` (``J`` has
        :math:`n k` rows).
    trivial, nontrivial : array, shape (P, n_trivial), (P, n_nontrivial)
        Orthonormal bases splitting the null space: trivial directions leave
        the network's outputs unchanged (to first order) on the training
        inputs, the test inputs and fresh random inputs; nontrivial ones move
        the outputs somewhere beyond the training set.
    n_trivial, n_nontrivial : int
        Their dimensions (``n_trivial + n_nontrivial == nullity``).
    output_change : ndarray, shape (nullity,)
        Singular values of :math:`J_{\text{probe}} N` (``N`` = ``null_basis``),
        ascending, divided by :math:`\|J_{\text{probe}}\|_2`: how much the
        null directions move the outputs; those at most ``trivial_tol`` are
        trivial.  A clear jump shows a clean split.
    trivial_tol : float
        The threshold used on ``output_change``.
    n_probe_inputs : int
        Inputs on which the outputs were compared (training, test and fresh).
    loss : float
        The data term of the loss at the point (without weight decay).
    """

    size: int
    nullity: int
    rank: int
    tol: float
    eigenvalues: np.ndarray
    null_basis: object
    jacobian_rank: int
    manifold_dim: int
    layers: tuple
    theorem3_holds: bool
    theorem3_applies: bool
    nullity_bound: int
    trivial: object
    nontrivial: object
    n_trivial: int
    n_nontrivial: int
    output_change: np.ndarray
    trivial_tol: float
    n_probe_inputs: int
    loss: float


@dataclasses.dataclass(frozen=True, eq=False)
class HessianSpectrum:
    r"""Some eigenpairs of :math:`H = \nabla^2 L(w)` from :func:`spectrum`.

    Attributes
    ----------
    eigenvalues : ndarray, shape (k,)
        Ascending (NumPy).
    eigenvectors : array, shape (P, k)
        Orthonormal, column ``i`` for ``eigenvalues[i]`` (the objective's library).
    which, method : str
        What was asked (:data:`WHICH`) and how it was computed (``"dense"`` or ``"lanczos"``).
    n_hvp : int
        Hessian-vector products used (``P`` for the dense Hessian).
    converged : bool
        False when Lanczos stopped at ``maxiter`` (then only the converged pairs are returned).
    message : str
    """

    eigenvalues: np.ndarray
    eigenvectors: object
    which: str
    method: str
    n_hvp: int
    converged: bool
    message: str


@dataclasses.dataclass(frozen=True, eq=False)
class SpectralDensity:
    r"""Smoothed spectral density of :math:`H` by stochastic Lanczos quadrature (:func:`spectral_density`).

    .. math::

        \phi_\sigma(t) = \frac1P \sum_{i=1}^P g_\sigma(t - \lambda_i)
        \approx \frac{1}{n_v}\sum_{l=1}^{n_v}\sum_{j=1}^{m} \tau^{(l)}_j\, g_\sigma(t - \theta^{(l)}_j),

    :math:`g_\sigma` the Gaussian of standard deviation :math:`\sigma`,
    :math:`\theta^{(l)}_j` the Ritz values of ``m`` Lanczos steps from the
    ``l``-th random unit vector and :math:`\tau^{(l)}_j` the squared first
    components of the Ritz vectors (the weights of a Gauss quadrature for
    the spectral measure seen from that vector).

    Attributes
    ----------
    grid : ndarray, shape (n_grid,)
    density : ndarray, shape (n_grid,)
        :math:`\phi_\sigma` on ``grid``; integrates to 1.
    stderr : ndarray, shape (n_grid,)
        Standard error of ``density`` over the probes (sample standard deviation / :math:`\sqrt{n_v}`).
    nodes, weights : ndarray, shape (n_probes, m)
        :math:`\theta^{(l)}_j` and :math:`\tau^{(l)}_j` (rows padded with
        zero weights when a probe's Lanczos ended early on an invariant subspace).
    bandwidth : float
        :math:`\sigma`.
    n_hvp : int
        Hessian-vector products used.
    """

    grid: np.ndarray
    density: np.ndarray
    stderr: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    bandwidth: float
    n_hvp: int

    def expectation(self, f) -> tuple:
        r"""``(estimate, stderr)`` of :math:`\frac1P\operatorname{tr} f(H)` by the same quadrature.

        ``f`` is applied elementwise to the NumPy array of nodes; for a
        polynomial of degree below ``2 m`` each probe's value is exactly
        :math:`v^\top f(H) v` (Gauss quadrature), so only the sampling of
        ``v`` contributes to the error.
        """
        per_probe = np.sum(self.weights * np.asarray(f(self.nodes), dtype=float), axis=1)
        n = per_probe.shape[0]
        stderr = float(np.std(per_probe, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        return float(np.mean(per_probe)), stderr


@dataclasses.dataclass(frozen=True, eq=False)
class TraceEstimate:
    r"""Hutchinson's estimate of :math:`\operatorname{tr} H` (:func:`hessian_trace`).

    Attributes
    ----------
    estimate : float
        :math:`\frac1m\sum_i z_i^\top H z_i`.
    stderr : float
        Its standard error (sample standard deviation of the :math:`z_i^\top H z_i` over :math:`\sqrt m`).
    n_probes : int
    samples : ndarray, shape (n_probes,)
        The :math:`z_i^\top H z_i`.
    """

    estimate: float
    stderr: float
    n_probes: int
    samples: np.ndarray

    def __float__(self) -> float:
        return self.estimate


@dataclasses.dataclass(frozen=True, eq=False)
class Invariants:
    r"""Conserved quantities of the gradient flow of a deep linear or ReLU network (:func:`invariants`).

    For every hidden layer ``k = 1, ..., H`` (between weight layers ``k`` and ``k + 1``):

    .. math::

        D_k = W_{k+1}^\top W_{k+1} - \tilde W_k \tilde W_k^\top, \qquad
        \tilde W_k = [\,W_k \;\; b_k\,],

    and its diagonal, per hidden unit ``i``,
    :math:`u_{k,i} = \|W_{k+1}[:, i]\|^2 - \|\tilde W_k[i, :]\|^2`
    (outgoing minus incoming squared weights).

    Attributes
    ----------
    matrices : tuple of arrays or None
        :math:`D_k`, shape ``(N_k, N_k)`` (``(m, N_k, N_k)`` for a batch):
        conserved for linear units.  None for ReLU units, where only the
        diagonal is conserved.
    units : tuple of arrays
        :math:`u_k`, shape ``(N_k,)`` (``(m, N_k)``): conserved for linear and ReLU units.
    activation : str
    """

    matrices: tuple | None
    units: tuple
    activation: str

    @property
    def vector(self):
        """Every conserved number in one array, shape ``(n,)`` or ``(m, n)``: the matrices when present, else the units."""
        parts = self.matrices if self.matrices is not None else self.units
        if not parts:
            return np.zeros(0)
        xp = _backend.namespace(*parts)
        ndim = 2 if self.matrices is not None else 1
        batch = tuple(parts[0].shape[: parts[0].ndim - ndim])
        return xp.concat([xp.reshape(p, batch + (-1,)) for p in parts], axis=-1)


# ============================================================================= equilibria
def find_equilibrium(obj, w_guess, gtol=DEFAULT_GTOL, max_iter=DEFAULT_MAX_ITER) -> Equilibrium:
    r"""An equilibrium of the flow, :math:`\nabla L(w^*) = 0`, by damped minimum-norm Newton steps.

    Each iteration diagonalizes the exact Hessian :math:`H = V\Lambda V^\top`
    at the current point and takes the Levenberg--Marquardt step for the
    system :math:`\nabla L(w) = 0`,

    .. math::

        \delta = -(H^2 + \mu I)^{+} H\,\nabla L(w)
               = -\sum_{|\lambda_i| > \tau} \frac{\lambda_i}{\lambda_i^2 + \mu}\,(v_i^\top\nabla L)\,v_i ,

    with :math:`\tau = |\lambda|_{\max} P\,\epsilon` (the rank threshold of
    :func:`linearize`).  With :math:`\mu = 0` this is Newton's step with the
    pseudo-inverse, the minimum-norm least-squares solution of
    :math:`H\delta = -\nabla L`: directions of the null space of a singular
    Hessian (the degenerate directions of Section 4) are left alone, so the
    iteration converges quadratically onto a manifold of degenerate minima
    instead of failing.  A step is accepted when it decreases
    :math:`\|\nabla L\|`; otherwise :math:`\mu` grows (the step turns towards
    steepest descent on :math:`\frac12\|\nabla L\|^2`), and after a success it
    shrinks again.

    Newton's method finds critical points of every kind, not only minima:
    check the result with :func:`linearize` (``kind``).

    Parameters
    ----------
    obj : Objective, compiled symbolic objective or GradientFlow
    w_guess : array, shape (P,), or Trajectory
        The starting point; for a :class:`~gradflow.Trajectory` its last
        point (``traj.w[-1]``), e.g. the end of a gradient-flow or GD run.
    gtol : float, default ``DEFAULT_GTOL`` = 1e-10
        Stop when :math:`\|\nabla L(w)\|_2 \le` ``gtol``.
    max_iter : int, default ``DEFAULT_MAX_ITER`` = 100

    Returns
    -------
    Equilibrium
        ``converged`` says whether ``gtol`` was reached; ``message`` says why not.

    Notes
    -----
    Dense: each iteration costs one Hessian (``P`` Hessian-vector products)
    and one symmetric eigendecomposition, :math:`O(P^3)`; meant for ``P`` up
    to a few thousand.  When the gradient has a component along the null
    space of :math:`H` that no step can remove (e.g. cross-entropy, whose
    minima lie at infinity), the search stops and says so.

    Examples
    --------
    >>> import numpy as np, gradflow as gf
    >>> obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)))
    >>> eq = find_equilibrium(obj, [1.2, 0.9])
    >>> eq.converged, round(float(eq.w[0] * eq.w[1]), 12)
    (True, 1.0)
    """
    obj = _validate_objective(obj)
    w = _validate_w_guess(obj, w_guess)
    gtol = check_real("gtol", gtol, minimum=0.0)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    xp = _namespace(obj)
    P = int(obj.size)

    g = obj.grad(w)
    gn = _norm(g, xp)
    history = [gn]
    mu = 0.0
    message = ""
    iterations = 0
    while True:
        if not math.isfinite(gn):
            message = "the gradient is not finite at the starting point; start from a point where L is defined"
            break
        if gn <= gtol:
            message = f"converged: |grad L| = {gn:.3g} <= gtol = {gtol:.3g} after {iterations} iterations"
            break
        if iterations >= max_iter:
            message = (f"stopped after max_iter = {max_iter} iterations with |grad L| = {gn:.3g} > gtol = {gtol:.3g}; "
                       "raise max_iter, loosen gtol, or start closer to an equilibrium")
            break
        if iterations == 0:                           # before the first Hessian, not for a start that has converged
            _check_dense_hessian_fits(
                obj, xp, _DENSE_MATRICES["find_equilibrium"], "gf.find_equilibrium (Newton steps with the exact Hessian)",
                "For a large network approach a minimum with gf.gd or gf.GradientFlow(obj).solve(..., method='dopri5'); "
                "gf.spectrum(obj, w, k, method='lanczos') then gives the Hessian's extreme eigenvalues there.")
        H = xp.asarray(obj.hessian(w), dtype=xp.float64)
        if not bool(xp.all(xp.isfinite(H))):
            message = (f"stopped after {iterations} iterations: the Hessian is not finite at the current point "
                       f"(|grad L| = {gn:.3g}); start closer to an equilibrium")
            break
        lam, V = xp.linalg.eigh(0.5 * (H + H.mT))
        lam_np = _backend.to_numpy(lam)
        scale = float(np.max(np.abs(lam_np))) if P else 0.0
        cut = scale * P * _EPS
        coeffs = _backend.to_numpy(V.mT @ g)
        active = np.abs(lam_np) > cut
        if not np.any(active) or not np.any(np.abs(lam_np[active] * coeffs[active]) > 0):
            message = (f"stalled at |grad L| = {gn:.3g}: the gradient lies in the null space of the Hessian, so no "
                       "nearby critical point exists along it (e.g. minima at infinity, as for cross-entropy)")
            break
        mu0 = max(scale * scale * 1e-12, np.finfo(float).tiny)
        accepted = False
        for _ in range(DEFAULT_MAX_DAMPING_TRIES):
            factors = np.zeros_like(lam_np)
            np.divide(lam_np, lam_np * lam_np + mu, out=factors, where=active)   # active: |λ| > cut >= 0
            step = -(V @ _backend.as_array(factors * coeffs, xp))
            w_new = w + step
            g_new = obj.grad(w_new)
            gn_new = _norm(g_new, xp)
            if math.isfinite(gn_new) and gn_new < gn:
                accepted = True
                break
            mu = max(10.0 * mu, mu0)
        iterations += 1
        if not accepted:
            message = (f"stalled at |grad L| = {gn:.3g} > gtol = {gtol:.3g}: no damped Newton step decreases the "
                       "gradient (the rounding floor of the gradient, or a gradient component along the Hessian's null "
                       "space); loosen gtol if the point is good enough")
            break
        w, g, gn = w_new, g_new, gn_new
        history.append(gn)
        mu = mu / 100.0 if mu > mu0 else 0.0
    loss = float(_backend.to_numpy(obj.value(w)))
    return Equilibrium(w=w, grad_norm=gn, loss=loss, converged=bool(gn <= gtol), iterations=iterations,
                       message=message, grad_norms=tuple(history))


# ============================================================================= linearization
def linearize(obj_or_flow, w_star, tol=None, grad_tol=None) -> Linearization:
    r"""The linearization of the flow at ``w_star``: eigen-decomposition of :math:`-H` and its invariant subspaces.

    .. math::

        \delta\dot w = -H\,\delta w, \qquad H = \nabla^2 L(w^*) = V\Lambda V^\top
        \qquad\text{(Section 4, Equations 3 and 6)}.

    The eigenvalues :math:`\mu_i = -\lambda_i` of the Jacobian :math:`-H` are
    classified with the threshold ``tol``: :math:`\mu_i < -\text{tol}`
    (stable, :math:`E^s`), :math:`|\mu_i| \le \text{tol}` (center,
    :math:`E^c`), :math:`\mu_i > \text{tol}` (unstable, :math:`E^u`).

    Parameters
    ----------
    obj_or_flow : Objective, compiled symbolic objective or GradientFlow
    w_star : array, shape (P,)
        The point, normally an equilibrium (see :func:`find_equilibrium`).
    tol : float, optional
        Zero threshold on the eigenvalues, ``>= 0``.  Default: the
        rank-revealing threshold of ``numpy.linalg.matrix_rank``,
        :math:`|\lambda|_{\max}\,P\,\epsilon` (:math:`\epsilon` the float64
        machine epsilon), plus, at a point that passes the default
        equilibrium test below, ``RESIDUAL_TOL_FACTOR`` (10) times its
        residual gradient :math:`g = \|\nabla L(w^*)\|` and
        ``NEWTON_DRIFT_FACTOR`` (3) times the change
        :math:`\|\nabla^2 L(w^* + \delta) - \nabla^2 L(w^*)\|_F` across the
        minimum-norm Newton step :math:`\delta = -H^+\nabla L(w^*)`.
        Eigenvalues that are zero in exact arithmetic come out of a Hessian
        computed to rounding error below the first term.  A point that is an
        equilibrium only to a residual :math:`g` (Newton in
        :func:`find_equilibrium` stops near :math:`10^{-10}`) lies about
        :math:`g/\lambda` from a non-degenerate one, so its "zero"
        eigenvalues are off by about :math:`g` times the third derivative over
        :math:`\lambda` (Weyl), which the second term covers for losses scaled
        to order one.  Near a degenerate equilibrium (:math:`L = w^4`, or
        :math:`(w_1 w_2)^2` at 0) Newton converges only linearly and the
        Hessian's eigenvalues at the iterate, of the order of :math:`g^{2/3}`,
        are mostly its change on the way to the equilibrium, which the third
        term measures.  Read ``gap`` and ``eigenvalues`` to see how clear the
        split is, and pass ``tol`` to override.
    grad_tol : float, optional
        The point counts as an equilibrium when :math:`\|\nabla L\|_2 \le`
        ``grad_tol``; default ``EQUILIBRIUM_GRAD_RTOL`` (1e-6) times
        :math:`\max(1, |\lambda|_{\max}\max(1, \|w^*\|))`, the size of the
        gradient the stiffest direction would give at distance
        :math:`10^{-6}\max(1, \|w^*\|)`.  Otherwise a
        :class:`NotAnEquilibriumWarning` gives the gradient norm.

    Returns
    -------
    Linearization
        With ``kind``: ``"sink"`` (all :math:`\mu_i < 0`), ``"source"`` (all
        :math:`> 0`), ``"saddle"`` (both signs, none zero) or
        ``"non-hyperbolic"`` (some zero: a degenerate minimum of an
        overparametrized network, Lemma 1).

    Notes
    -----
    Dense (one Hessian and one ``eigh``, :math:`O(P^3)`); for the extreme
    eigenvalues of large Hessians use :func:`spectrum`.

    Examples
    --------
    >>> import numpy as np, gradflow as gf
    >>> obj = gf.Objective(gf.models.DeepLinear([1, 1, 1]), gf.Dataset(np.ones((1, 1)), np.ones(1)))
    >>> linearize(obj, [0.0, 0.0]).kind, linearize(obj, [2.0, 0.5]).kind
    ('saddle', 'non-hyperbolic')
    """
    obj = _validate_objective(obj_or_flow, "obj_or_flow")
    w = _validate_w_star(obj, w_star)
    tol = _validate_tol(tol)
    grad_tol = _validate_grad_tol(grad_tol)
    xp = _namespace(obj)
    P = int(obj.size)
    _check_dense_hessian_fits(obj, xp, _DENSE_MATRICES["linearize"], "gf.linearize")

    H = _symmetric_hessian(obj, w, xp, "w_star")
    lam, V = xp.linalg.eigh(H)
    mu = -_backend.to_numpy(lam)[::-1].copy()             # Jacobian eigenvalues, ascending
    vectors = xp.flip(V, axis=1)

    gn, near_equilibrium, default_tol = _zero_threshold(obj, w, H, lam, V, xp)
    threshold = grad_tol if grad_tol is not None else near_equilibrium
    is_equilibrium = gn <= threshold
    if not is_equilibrium:
        warnings.warn(
            f"`w_star` is not an equilibrium of the flow: |grad L(w_star)| = {gn:.3g} > {threshold:.3g}; the "
            "linearization describes the flow near a moving point. Refine it with find_equilibrium(obj, w_star), "
            "or pass grad_tol to accept it.", NotAnEquilibriumWarning, stacklevel=2)
    if tol is None:
        tol = default_tol
    n_stable = int(np.sum(mu < -tol))
    n_unstable = int(np.sum(mu > tol))
    n_center = P - n_stable - n_unstable
    zero_max, nonzero_min, gap = _gap(np.abs(mu[n_stable:n_stable + n_center]),
                                      np.abs(np.concatenate([mu[:n_stable], mu[n_stable + n_center:]])), tol)

    if n_center:
        kind = "non-hyperbolic"
    elif n_unstable == 0:
        kind = "sink"
    elif n_stable == 0:
        kind = "source"
    else:
        kind = "saddle"
    return Linearization(
        w=w, eigenvalues=mu, eigenvectors=vectors,
        stable=vectors[:, :n_stable], center=vectors[:, n_stable:n_stable + n_center],
        unstable=vectors[:, n_stable + n_center:],
        dims={"stable": n_stable, "center": n_center, "unstable": n_unstable},
        is_hyperbolic=n_center == 0, kind=kind, morse_index=n_unstable, nullity=n_center, tol=float(tol),
        zero_max=zero_max, nonzero_min=nonzero_min, gap=gap, grad_norm=gn, is_equilibrium=bool(is_equilibrium),
        grad_tol=float(threshold))


def _zero_threshold(obj, w, H, lam, V, xp) -> tuple:
    """``(|grad L(w)|, the default equilibrium threshold, the default zero threshold)`` (see :func:`linearize`), from
    the symmetric Hessian ``H`` at ``w`` and its eigendecomposition ``lam, V``."""
    P = int(obj.size)
    scale = float(np.max(np.abs(_backend.to_numpy(lam)))) if P else 0.0
    g = xp.asarray(obj.grad(w), dtype=xp.float64)
    gn = _norm(g, xp)
    near_equilibrium = EQUILIBRIUM_GRAD_RTOL * max(1.0, scale * max(1.0, _norm(w, xp)))
    rounding = scale * P * _EPS
    if not 0.0 < gn <= near_equilibrium:
        return gn, near_equilibrium, rounding
    drift = _hessian_drift_to_equilibrium(obj, w, g, H, lam, V, rounding, xp)
    return gn, near_equilibrium, rounding + RESIDUAL_TOL_FACTOR * gn + NEWTON_DRIFT_FACTOR * drift


def _hessian_drift_to_equilibrium(obj, w, g, H, lam, V, rounding: float, xp) -> float:
    r"""How much the Hessian changes between ``w`` and the equilibrium it approximates:
    :math:`\|\nabla^2 L(w + \delta) - \nabla^2 L(w)\|_F` across the minimum-norm Newton step
    :math:`\delta = -H^+\nabla L(w)` (eigenvalues above ``rounding``); 0 where the Hessian there is not finite.

    At a non-degenerate equilibrium :math:`\delta` is of the size of the residual gradient and so is this drift.
    Near a degenerate one (:math:`L = w^4`, :math:`L = (w_1 w_2)^2` at 0) Newton converges only linearly,
    :math:`\delta` is a fixed fraction of the distance to it, and the Hessian there is mostly the drift: for
    :math:`L \propto |w|^k`, :math:`k \ge 3`, its eigenvalues at ``w`` are at most 2 times the drift.
    """
    coefficients = V.T @ g
    keep = xp.abs(lam) > rounding
    step = V @ xp.where(keep, coefficients / xp.where(keep, lam, 1.0), 0.0)
    with np.errstate(all="ignore"):
        H_next = xp.asarray(obj.hessian(w - step), dtype=xp.float64)
    if not bool(xp.all(xp.isfinite(H_next))):
        return 0.0
    return _norm(0.5 * (H_next + H_next.mT) - H, xp)


def equilibrium_linearization(obj, w_star, tol=None, hint="gf.find_equilibrium(obj, w_star)") -> Linearization:
    """:func:`linearize` at ``w_star``, which must be an equilibrium: a ``ValueError`` says by how much it is not.

    For the analyses that need an equilibrium (the checks of :mod:`gradflow.checks`); ``hint`` is how to get one.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAnEquilibriumWarning)
        lin = linearize(obj, w_star, tol=tol)
    if not lin.is_equilibrium:
        raise ValueError(
            f"`w_star` must be an equilibrium of the flow (grad L(w_star) = 0); got a point with |grad L(w_star)| = "
            f"{lin.grad_norm:.3g}, {lin.grad_norm / lin.grad_tol:.3g} times the threshold {lin.grad_tol:.3g}. "
            f"Refine it with {hint}.")
    return lin


# ============================================================================= degeneracy
def degeneracy(obj, w_star, tol=None, probe_inputs=None, n_probe=DEFAULT_N_PROBE_INPUTS,
               trivial_tol=DEFAULT_TRIVIAL_RTOL, seed=DEFAULT_SEED) -> Degeneracy:
    r"""How degenerate the Hessian is at ``w_star``, and which degeneracy is trivial (SI 6.2).

    * **Nullity** of :math:`H = \nabla^2 L(w^*)`, with the threshold of
      :func:`linearize`.
    * **Zero-loss manifold**: :math:`P - \operatorname{rank} J`, with
      :math:`J = \partial\,\mathrm{vec} f(X) / \partial w` the output
      Jacobian on the training inputs.  At a zero-loss point of the square
      loss :math:`H = J^\top J / n` (SI 6.2.4), so the two agree.
    * **Theorem 3**, layer by layer: the Hessian block of layer ``k`` is
      :math:`J_k^\top J_k / n` with
      :math:`\operatorname{rank} J_k \le n\cdot\min(N_k, \dots, N_{H+1})`, so
      when :math:`N_k N_{k-1} > n\cdot\min(N_k, \dots, N_{H+1})` it has at
      least the difference as zero eigenvalues.  The null spaces of different
      layers lie in disjoint coordinates, hence
      :math:`\text{nullity} \ge \sum_k \max(0, N_k N_{k-1} - n\min(N_k, \dots, N_{H+1}))`;
      also :math:`\text{nullity} \ge P - n k` (``J`` has ``n k`` rows).  A
      layer's bias counts as one more input column.
    * **Trivial vs nontrivial** (SI 6.2.2): a null direction :math:`\Delta w`
      is trivial when moving along it leaves the network function unchanged,
      :math:`f_{w^* + \epsilon\Delta w} = f_{w^*}`.  To first order that is
      :math:`J(x)\Delta w = 0` for *every* input ``x``; it is tested on the
      training inputs, the test inputs (when the data have them) and
      ``n_probe`` fresh inputs drawn uniformly from the bounding box of the
      data.  The trivial subspace is the null space of :math:`H` intersected
      with that of the stacked Jacobian :math:`J_{\text{probe}}`; its
      orthogonal complement within the null space is nontrivial.  Examples:
      in a deep linear net, adding to :math:`W_1` rows in the null space of
      :math:`W_2`, or rescaling :math:`W_1 \to c W_1`, :math:`W_2 \to W_2/c`,
      is trivial; moving the weights of a degree-30 polynomial fit (Figure 15)
      in the null space of the 9 training points is nontrivial.

    Parameters
    ----------
    obj : Objective or GradientFlow of one
    w_star : array, shape (P,)
    tol : float, optional
        Zero threshold on the eigenvalues of :math:`H`; default that of
        :func:`linearize` (:math:`|\lambda|_{\max} P\,\epsilon`, plus, at an
        approximate equilibrium, ten times the residual gradient and three times
        the change of the Hessian across a Newton step).
    probe_inputs : array, shape (m, d), optional
        Raw inputs to test trivial directions on, instead of the fresh random ones.
    n_probe : int, default ``DEFAULT_N_PROBE_INPUTS`` = 512
        Number of fresh random inputs when ``probe_inputs`` is None.
    trivial_tol : float, default ``DEFAULT_TRIVIAL_RTOL`` = 1e-8
        A null direction is trivial when it moves the probe outputs by at most
        ``trivial_tol`` times :math:`\|J_{\text{probe}}\|_2`
        (:math:`\approx\sqrt\epsilon`: above the rounding error of the computed
        null space, far below any real change of the function).
    seed : int, default ``DEFAULT_SEED`` = 0
        Seed of the fresh inputs.

    Returns
    -------
    Degeneracy
    """
    obj = _validate_network_objective(obj)
    w = _validate_w_star(obj, w_star)
    tol = _validate_tol(tol)
    n_probe = check_int("n_probe", n_probe, minimum=0)
    trivial_tol = check_real("trivial_tol", trivial_tol, minimum=0.0)
    seed = check_seed(seed)
    xp = obj.xp
    probe_inputs = _validate_probe_inputs(obj, probe_inputs)
    P = obj.size
    model = obj.model
    _check_dense_hessian_fits(obj, xp, _DENSE_MATRICES["degeneracy"], "gf.degeneracy")

    H = _symmetric_hessian(obj, w, xp, "w_star")
    lam, V = xp.linalg.eigh(H)
    lam_np = _backend.to_numpy(lam)
    if tol is None:
        tol = _zero_threshold(obj, w, H, lam, V, xp)[2]
    zero = np.abs(lam_np) <= tol
    index = _backend.as_array(np.flatnonzero(zero), xp, dtype=xp.int64)
    null_basis = xp.take(V, index, axis=1)
    nullity = int(np.sum(zero))

    J = _backend.to_numpy(obj.output_jacobian(w))
    jacobian_rank = _matrix_rank(J)

    n = int(obj.data.X.shape[0])
    k_out = model.n_outputs
    layers = _theorem3_layers(model, n)
    layer_sum = sum(layer.null_bound for layer in layers)
    nullity_bound = max(layer_sum, P - n * k_out, 0)
    loss = float(obj.metrics(w)["train_loss"])
    applies = obj.loss.name == "square" and obj.weight_decay == 0.0 and loss <= ZERO_LOSS_TOL

    # trivial directions: null directions that do not move the outputs on many inputs
    raw = [_backend.to_numpy(obj.data.X)]
    if obj.data.has_test:
        raw.append(_backend.to_numpy(obj.data.X_test))
    if probe_inputs is not None:
        raw.append(probe_inputs)
    elif n_probe:
        box = np.concatenate(raw, axis=0)
        lo, hi = box.min(axis=0), box.max(axis=0)
        raw.append(np.random.default_rng(seed).uniform(lo, hi, size=(n_probe, box.shape[1])))
    inputs = np.concatenate(raw, axis=0)
    J_probe = obj.output_jacobian(w, _backend.as_array(inputs, xp))
    J_norm = float(np.linalg.norm(_backend.to_numpy(J_probe), 2)) if J_probe.shape[0] else 0.0
    if nullity:
        moved = _backend.to_numpy(J_probe @ null_basis)
        _, s, vh = np.linalg.svd(moved, full_matrices=True)
        change = np.zeros(nullity)
        change[: s.shape[0]] = s
        change = change / J_norm if J_norm > 0 else change
        order = np.argsort(change, kind="stable")       # vh is square (full_matrices): row i has singular value change[i]
        change, basis_coeffs = change[order], vh.T[:, order]
        n_trivial = int(np.sum(change <= trivial_tol))
        C = _backend.as_array(basis_coeffs, xp)
        trivial = null_basis @ C[:, :n_trivial]
        nontrivial = null_basis @ C[:, n_trivial:]
    else:
        change = np.zeros(0)
        n_trivial = 0
        trivial = nontrivial = xp.zeros((P, 0), dtype=xp.float64)
    return Degeneracy(
        size=P, nullity=nullity, rank=P - nullity, tol=float(tol), eigenvalues=lam_np, null_basis=null_basis,
        jacobian_rank=jacobian_rank, manifold_dim=P - jacobian_rank, layers=layers,
        theorem3_holds=any(layer.holds for layer in layers), theorem3_applies=bool(applies),
        nullity_bound=int(nullity_bound), trivial=trivial, nontrivial=nontrivial, n_trivial=n_trivial,
        n_nontrivial=nullity - n_trivial, output_change=change, trivial_tol=trivial_tol,
        n_probe_inputs=int(inputs.shape[0]), loss=loss)


def _theorem3_layers(model: Network, n: int) -> tuple:
    widths = model.widths
    out = []
    for k in range(1, len(widths)):
        n_params = widths[k] * (widths[k - 1] + (1 if model.bias else 0))
        rank_bound = n * min(widths[k:])
        out.append(LayerBound(layer=k, n_params=n_params, rank_bound=rank_bound, holds=n_params > rank_bound,
                              null_bound=max(0, n_params - rank_bound)))
    return tuple(out)


# ============================================================================= spectra
def spectrum(obj, w, k=DEFAULT_K, which="largest", method="auto", rtol=DEFAULT_LANCZOS_RTOL, maxiter=None,
             seed=DEFAULT_SEED) -> HessianSpectrum:
    r"""``k`` eigenpairs of :math:`H = \nabla^2 L(w)`: the dense ``eigh`` for small ``P``, Lanczos for large.

    Parameters
    ----------
    obj : Objective, compiled symbolic objective or GradientFlow
    w : array, shape (P,)
    k : int, default ``DEFAULT_K`` = 20
        ``1 <= k <= P`` (``k < P`` for Lanczos).
    which : str, default "largest"
        One of :data:`WHICH`: ``"largest"``, ``"smallest"``, ``"both"``, ``"magnitude"``.
    method : str, default "auto"
        One of :data:`METHODS`: ``"auto"`` (dense when ``P <= DENSE_LIMIT`` = 2000),
        ``"dense"`` or ``"lanczos"``.
    rtol : float, default ``DEFAULT_LANCZOS_RTOL`` = 1e-10
        Relative accuracy of the Lanczos eigenvalues (ARPACK's ``tol``; 0 means machine precision).  On CuPy,
        cupyx's ``eigsh`` gets ``rtol`` times a lower bound of :math:`|\lambda|_{\max}` as its residual
        tolerance, and the result counts as converged when every residual is within
        ``max(rtol, LANCZOS_RESIDUAL_FLOOR)`` :math:`|\lambda|_{\max}`.
    maxiter : int, optional
        Largest number of Lanczos restarts for ARPACK, of Lanczos steps for cupyx (``eigsh``'s default when
        None).
    seed : int, default ``DEFAULT_SEED`` = 0
        Seed of the Lanczos start vector (results are reproducible).

    Returns
    -------
    HessianSpectrum
        Eigenvalues ascending, eigenvectors, and the number of Hessian-vector products.

    Notes
    -----
    Lanczos (``eigsh`` of :func:`gradflow._backend.sparse_linalg`: ARPACK's
    implicitly restarted Lanczos, or cupyx's thick-restart one) sees :math:`H` only through
    ``obj.hvp``, the exact Hessian-vector product (Pearlmutter's
    R-operator), each costing a small multiple of one gradient; the
    products run in the objective's array library.  On CuPy the Lanczos
    iteration is cupyx's thick-restart ``eigsh`` on the GPU arrays ("both"
    as two calls, one per end); elsewhere ARPACK gets NumPy copies.  The largest eigenvalues of a network Hessian are well separated
    and converge in a few dozen products each; the smallest cluster at zero
    at a degenerate minimum (Lemma 1) and converge slowly.

    Lanczos builds one Krylov space from one start vector, so an eigenvalue
    repeated exactly (a deep linear network's Hessian has such multiplicities
    at every point, from the symmetries of its layers) may be returned once,
    and the next distinct eigenvalues fill the remaining places: each returned
    pair is accurate, but they need not be the ``k`` most extreme counted with
    multiplicity.  Where multiplicities matter, use ``method="dense"`` (``P``
    up to a few thousand) or compare with :func:`spectral_density`.
    """
    obj = _validate_objective(obj)
    w = _validate_w_star(obj, w, "w")
    P = int(obj.size)
    which = check_choice("which", which, tuple(WHICH))
    method = check_choice("method", method, tuple(METHODS))
    if method == "auto":
        method = "dense" if P <= DENSE_LIMIT else "lanczos"
    k = _validate_k(k, P, method)
    rtol = check_real("rtol", rtol, minimum=0.0)
    maxiter = None if maxiter is None else check_int("maxiter", maxiter, minimum=1)
    seed = check_seed(seed)
    xp = _namespace(obj)

    if method == "dense":
        _check_dense_hessian_fits(obj, xp, _DENSE_MATRICES["spectrum"], "`method` 'dense'",
                                  "Use method='lanczos' (matrix-free), or 'auto'.")
        lam, V = xp.linalg.eigh(_symmetric_hessian(obj, w, xp))
        lam_np = _backend.to_numpy(lam)
        index = _select(lam_np, k, which)
        vectors = xp.take(V, _backend.as_array(index, xp, dtype=xp.int64), axis=1)
        return HessianSpectrum(eigenvalues=lam_np[index].copy(), eigenvectors=vectors, which=which, method="dense",
                               n_hvp=P, converged=True, message="dense eigh of the exact Hessian")

    linalg, native = _backend.sparse_linalg(xp)
    to_solver = (lambda x: x) if native else _backend.to_numpy
    arpack = linalg is scipy.sparse.linalg     # ARPACK raises on non-convergence; cupyx returns what it has
    count = [0]

    def matvec(v):
        count[0] += 1
        return to_solver(_finite_hvp(obj, w, xp.reshape(_backend.as_array(v, xp), (P,)), xp))

    def matmat(V):
        count[0] += V.shape[1]
        return to_solver(_finite_hvp(obj, w, _backend.as_array(V, xp).T, xp)).T

    operator = linalg.LinearOperator((P, P), matvec=matvec, matmat=matmat, dtype=np.float64)
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(P)
    # |H v0| / |v0| is a lower bound of |lambda|_max; H v0 = 0 for a random v0 means H = 0 (almost surely), where
    # Lanczos cannot start (ARPACK: "starting vector is zero")
    lower_bound = float(np.linalg.norm(_backend.to_numpy(matvec(v0)))) / float(np.linalg.norm(v0))
    if lower_bound == 0.0:
        basis = _backend.as_array(np.linalg.qr(rng.standard_normal((P, k)))[0], xp)
        return HessianSpectrum(eigenvalues=np.zeros(k), eigenvectors=basis, which=which, method="lanczos",
                               n_hvp=count[0], converged=True,
                               message="H v = 0 for a random v: the Hessian is zero (almost surely); every "
                                       "direction is an eigenvector with eigenvalue 0")
    tol = rtol
    if not arpack:
        # cupyx's tol bounds the residual norm itself: scale rtol by the lower bound of |lambda|_max
        tol = rtol * lower_bound
        v0 = _backend.as_array(v0, xp) if native else v0
    converged, message = True, f"Lanczos ({linalg.__name__}.eigsh) converged"
    try:
        with _threads.scipy_blas_single_threaded():
            lam, vecs = _eigsh(linalg, operator, k, which, v0, tol, maxiter)
    except scipy.sparse.linalg.ArpackNoConvergence as exc:
        lam, vecs = exc.eigenvalues, exc.eigenvectors
        converged = False
        message = (f"Lanczos did not converge within maxiter: {len(lam)} of {k} eigenpairs converged (returned); "
                   "raise maxiter, loosen rtol, or use method='dense' for P up to a few thousand")
    if not arpack:
        converged, message = _check_residuals(obj, w, lam, vecs, rtol, xp, linalg.__name__, count)
    lam = _backend.to_numpy(lam)
    order = np.argsort(lam)
    vecs = _backend.as_array(vecs, xp)
    return HessianSpectrum(eigenvalues=lam[order], eigenvectors=xp.take(vecs, _backend.as_array(order, xp, xp.int64),
                                                                        axis=1),
                           which=which, method="lanczos", n_hvp=count[0], converged=converged, message=message)


def _check_residuals(obj, w, lam, vecs, rtol, xp, name, count):
    r"""``(converged, message)`` of eigenpairs from an ``eigsh`` that does not report non-convergence: every residual
    :math:`\|Hx_i - \lambda_i x_i\|` at most ``max(rtol, LANCZOS_RESIDUAL_FLOOR)`` times the largest
    :math:`|\lambda_i|` (for symmetric H, an eigenvalue lies within the residual of each :math:`\lambda_i`)."""
    V = _backend.as_array(vecs, xp)
    values = _backend.as_array(lam, xp)
    residual = obj.hvp(w, V.T) - values[:, None] * V.T
    count[0] += int(V.shape[1])
    worst = float(_backend.to_numpy(xp.max(xp.sqrt(xp.sum(residual * residual, axis=1)))))
    scale = float(np.max(np.abs(_backend.to_numpy(lam)), initial=np.finfo(np.float64).tiny))
    bound = max(rtol, LANCZOS_RESIDUAL_FLOOR) * scale
    if worst <= bound:
        return True, f"Lanczos ({name}.eigsh) converged: largest residual {worst:.2e} (bound {bound:.2e})"
    return False, (f"Lanczos ({name}.eigsh) stopped with a residual |H x - lambda x| of {worst:.2e}, above "
                   f"max(rtol, {LANCZOS_RESIDUAL_FLOOR:g}) * max|lambda| = {bound:.2e}: raise maxiter (on CuPy it "
                   "counts Lanczos steps), loosen rtol, or use method='dense' for P up to a few thousand")


def _eigsh(linalg, operator, k, which, v0, tol, maxiter):
    """``eigsh`` of ``linalg`` for ``which``; "both" (ARPACK's "BE": half from each end, the extra one from the
    top) is two calls where the library has no "BE" (cupyx), and for ``k = 1``, which ARPACK refuses with "BE"."""
    if which != "both" or (linalg is scipy.sparse.linalg and k > 1):
        return linalg.eigsh(operator, k=k, which=_ARPACK_WHICH[which], v0=v0, tol=tol, maxiter=maxiter)
    # each call from its own copy of the seeded start vector (cupyx works in the one it is given)
    high = linalg.eigsh(operator, k=k - k // 2, which="LA", v0=v0.copy(), tol=tol, maxiter=maxiter)
    if k // 2 == 0:
        return high
    low = linalg.eigsh(operator, k=k // 2, which="SA", v0=v0.copy(), tol=tol, maxiter=maxiter)
    xp = _backend.namespace(high[0], low[0])
    return xp.concat([low[0], high[0]]), xp.concat([low[1], high[1]], axis=1)


def spectral_density(obj, w, n_probes=DEFAULT_SLQ_PROBES, steps=DEFAULT_LANCZOS_STEPS, grid=DEFAULT_GRID_POINTS,
                     bandwidth=None, seed=DEFAULT_SEED) -> SpectralDensity:
    r"""The spectral density of :math:`H = \nabla^2 L(w)` by stochastic Lanczos quadrature.

    For each of ``n_probes`` random unit vectors :math:`v` (Rademacher,
    normalized), ``steps`` steps of Lanczos on :math:`H` from :math:`v`, with
    full reorthogonalization, give a tridiagonal :math:`T = S\Theta S^\top`;
    its eigenvalues :math:`\theta_j` and squared first components
    :math:`\tau_j = S_{1j}^2` form the Gauss quadrature of the measure
    :math:`\sum_i (u_i^\top v)^2 \delta_{\lambda_i}`, whose expectation over
    :math:`v` is the spectral measure :math:`\frac1P\sum_i\delta_{\lambda_i}`.
    The density is the average over probes of
    :math:`\sum_j \tau_j\,g_\sigma(t - \theta_j)`, :math:`g_\sigma` a Gaussian
    of standard deviation ``bandwidth``.

    Parameters
    ----------
    obj : Objective, compiled symbolic objective or GradientFlow
    w : array, shape (P,)
    n_probes : int, default ``DEFAULT_SLQ_PROBES`` = 10
        At least 1 (2 for a standard error).
    steps : int, default ``DEFAULT_LANCZOS_STEPS`` = 80
        Lanczos steps per probe (capped at ``P``).
    grid : int or array, default ``DEFAULT_GRID_POINTS`` = 512
        Number of evenly spaced points spanning the Ritz values plus five
        bandwidths on each side, or the points themselves.
    bandwidth : float, optional
        :math:`\sigma > 0`; default ``DEFAULT_BANDWIDTH_FRACTION`` (0.01) times
        the width of the spectrum (largest minus smallest Ritz value).
    seed : int, default ``DEFAULT_SEED`` = 0

    Returns
    -------
    SpectralDensity
        Also ``expectation(f)`` for :math:`\frac1P\operatorname{tr} f(H)`.

    Notes
    -----
    The probes run together: each Lanczos step is one batched Hessian-vector
    product over all probes, in the objective's array library.  Cost:
    ``n_probes * steps`` products plus :math:`O(\text{steps}^2 P)` for the
    reorthogonalization.
    """
    obj = _validate_objective(obj)
    w = _validate_w_star(obj, w, "w")
    n_probes = check_int("n_probes", n_probes, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    bandwidth = None if bandwidth is None else check_real("bandwidth", bandwidth, minimum=0.0, strict=True)
    seed = check_seed(seed)
    grid = _validate_grid(grid)
    xp = _namespace(obj)
    P = int(obj.size)
    steps = min(steps, P)

    signs = np.random.default_rng(seed).integers(0, 2, size=(n_probes, P)) * 2.0 - 1.0
    start = _backend.as_array(signs / math.sqrt(P), xp)
    alphas, betas, lengths, n_hvp = _block_lanczos(lambda V: _finite_hvp(obj, w, V, xp), start, steps, xp)
    nodes = np.zeros((n_probes, steps))
    weights = np.zeros((n_probes, steps))
    for i in range(n_probes):
        m = lengths[i]
        theta, S = _tridiagonal_eigh(alphas[i, :m], betas[i, : m - 1])
        nodes[i, :m] = theta
        weights[i, :m] = S[0, :] ** 2
        if m < steps:
            nodes[i, m:] = theta[-1]
    lo, hi = float(nodes.min()), float(nodes.max())
    if bandwidth is None:
        bandwidth = DEFAULT_BANDWIDTH_FRACTION * (hi - lo) if hi > lo else max(abs(hi), 1.0) * DEFAULT_BANDWIDTH_FRACTION
    if isinstance(grid, int):
        grid = np.linspace(lo - 5 * bandwidth, hi + 5 * bandwidth, grid)
    kernel = np.exp(-0.5 * ((grid[None, None, :] - nodes[:, :, None]) / bandwidth) ** 2) / (bandwidth * math.sqrt(2 * math.pi))
    per_probe = np.einsum("pj,pjg->pg", weights, kernel)
    density = per_probe.mean(axis=0)
    stderr = per_probe.std(axis=0, ddof=1) / math.sqrt(n_probes) if n_probes > 1 else np.full_like(density, np.nan)
    return SpectralDensity(grid=grid, density=density, stderr=stderr, nodes=nodes, weights=weights,
                           bandwidth=float(bandwidth), n_hvp=n_hvp)


def hessian_trace(obj, w, n_probes=DEFAULT_TRACE_PROBES, seed=DEFAULT_SEED, batch_size=DEFAULT_PROBE_BATCH) -> TraceEstimate:
    r"""Hutchinson's estimate of :math:`\operatorname{tr}\nabla^2 L(w)` with its standard error.

    .. math::

        \operatorname{tr} H = \mathbb E_z[z^\top H z], \qquad z_i \in \{-1, +1\} \text{ i.i.d. uniform (Rademacher)},

    estimated by the mean over ``n_probes`` probes; the variance of one
    sample is :math:`2\sum_{i \ne j} H_{ij}^2`, the smallest of the usual
    probe distributions.

    Parameters
    ----------
    obj : Objective, compiled symbolic objective or GradientFlow
    w : array, shape (P,)
    n_probes : int, default ``DEFAULT_TRACE_PROBES`` = 100
        At least 1 (2 for a standard error).
    seed : int, default ``DEFAULT_SEED`` = 0
    batch_size : int, default ``DEFAULT_PROBE_BATCH`` = 16
        Probes per batched Hessian-vector product.

    Returns
    -------
    TraceEstimate
    """
    obj = _validate_objective(obj)
    w = _validate_w_star(obj, w, "w")
    n_probes = check_int("n_probes", n_probes, minimum=1)
    seed = check_seed(seed)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    xp = _namespace(obj)
    P = int(obj.size)
    rng = np.random.default_rng(seed)
    samples = []
    for begin in range(0, n_probes, batch_size):
        b = min(batch_size, n_probes - begin)
        Z = _backend.as_array(rng.integers(0, 2, size=(b, P)) * 2.0 - 1.0, xp)
        HZ = _finite_hvp(obj, w, Z, xp)
        samples.append(_backend.to_numpy(xp.sum(Z * HZ, axis=1)))
    samples = np.concatenate(samples)
    stderr = float(np.std(samples, ddof=1) / math.sqrt(n_probes)) if n_probes > 1 else float("nan")
    return TraceEstimate(estimate=float(np.mean(samples)), stderr=stderr, n_probes=n_probes, samples=samples)


# ============================================================================= invariants
def invariants(model, w) -> Invariants:
    r"""The conserved quantities of the gradient flow of a deep linear or ReLU network (balancedness).

    For a hidden layer ``k`` between weight layers ``k`` and ``k + 1``, the
    loss is invariant under :math:`\tilde W_k \to A\tilde W_k`,
    :math:`W_{k+1} \to W_{k+1}A^{-1}` (:math:`\tilde W_k = [W_k\; b_k]`), for
    every invertible ``A`` when the units are linear and every positive
    diagonal ``A`` when they are positively homogeneous (ReLU).  By Noether's
    argument :math:`W_{k+1}^\top\nabla_{W_{k+1}}L = \nabla_{\tilde W_k}L\,\tilde W_k^\top`
    (restricted to the diagonal for ReLU), so along
    :math:`\dot w = -\nabla L(w)`

    .. math::

        \frac{d}{dt}\Big(W_{k+1}^\top W_{k+1} - \tilde W_k\tilde W_k^\top\Big) = 0

    (for ReLU only its diagonal, :math:`\|W_{k+1}[:, i]\|^2 - \|\tilde W_k[i, :]\|^2`,
    outgoing minus incoming weight per unit).  This holds for every loss of
    the outputs (square, logistic, cross-entropy) but not with weight decay.
    Gradient *descent* with step :math:`\eta` changes them by
    :math:`\eta^2(\nabla_{W_{k+1}}^\top\nabla_{W_{k+1}} - \nabla_{\tilde W_k}\nabla_{\tilde W_k}^\top)`
    per step, :math:`O(\eta)` over a fixed flow time :math:`t = \eta s`.

    Parameters
    ----------
    model : Network, Objective or GradientFlow
        A network with linear or ReLU hidden units (``DeepLinear``, ``MLP``,
        ``FeatureRegression``, which has no hidden layer and no invariant).
    w : array, shape (P,) or (m, P)

    Returns
    -------
    Invariants
        ``matrices`` (linear units) and ``units`` (per hidden unit), batched like ``w``.
    """
    model = _validate_invariant_model(model)
    w = _validate_invariant_w(model, w)
    xp = _backend.namespace(w)
    layers = model._layers(model._split(w, xp))
    linear = model.activation.is_linear
    matrices, units = [], []
    for (W_in, b_in), (W_out, _) in zip(layers[:-1], layers[1:]):
        incoming = W_in if b_in is None else xp.concat([W_in, xp.expand_dims(b_in, axis=-1)], axis=-1)
        units.append(xp.sum(W_out * W_out, axis=-2) - xp.sum(incoming * incoming, axis=-1))
        if linear:
            matrices.append(W_out.mT @ W_out - incoming @ incoming.mT)
    return Invariants(matrices=tuple(matrices) if linear else None, units=tuple(units),
                      activation=model.activation.name)


# ============================================================================= internals
def _namespace(obj):
    """The array namespace of an objective (NumPy for objectives without ``xp``, e.g. compiled symbolic ones)."""
    if isinstance(obj, Objective):
        return obj.xp
    return getattr(obj, "xp", None) or _backend.namespace()




def _norm(v, xp) -> float:
    return float(_backend.to_numpy(xp.sqrt(xp.sum(v * v))))


def _check_dense_hessian_fits(obj, xp, matrices, what, fix=None):
    """A ValueError before ``matrices`` dense P x P arrays of a NumPy objective too large for this machine are built
    (the GPU's memory, for CuPy, is CuPy's to report)."""
    if _backend.is_numpy(xp):
        check_dense_fits(int(obj.size), matrices, what, fix or (
            "For a large network use what needs Hessian-vector products only: gf.spectrum(obj, w, k, "
            "method='lanczos'), gf.spectral_density and gf.hessian_trace."))


def _symmetric_hessian(obj, w, xp, name="w"):
    """The symmetric part of the exact Hessian at ``w``; a ValueError naming ``name`` where it is not finite."""
    H = xp.asarray(obj.hessian(w), dtype=xp.float64)
    _require_finite(H, w, xp, name, "Hessian")
    return 0.5 * (H + H.mT)


def _finite_hvp(obj, w, V, xp, name="w"):
    """``obj.hvp(w, V)``; a ValueError naming ``name`` where it is not finite."""
    HV = obj.hvp(w, V)
    _require_finite(HV, w, xp, name, "Hessian-vector product")
    return HV


def _require_finite(values, w, xp, name, what):
    """An analysis of the Hessian at a point where it overflows or is undefined would return NaN everywhere."""
    if not bool(xp.all(xp.isfinite(values))):
        largest = float(_backend.to_numpy(xp.max(xp.abs(w)))) if w.shape[0] else 0.0
        raise ValueError(
            f"The {what} at `{name}` has non-finite entries (the largest |{name}_i| is {largest:.3g}): the loss "
            f"overflows or is not twice differentiable there. Pass a point where L is finite, such as an "
            "equilibrium found by gf.find_equilibrium."
        )


def _gap(zero_abs: np.ndarray, nonzero_abs: np.ndarray, tol: float) -> tuple:
    zero_max = float(np.max(zero_abs)) if zero_abs.size else 0.0
    nonzero_min = float(np.min(nonzero_abs)) if nonzero_abs.size else math.inf
    denominator = zero_max if zero_abs.size else tol
    if math.isinf(nonzero_min):
        gap = math.inf
    elif denominator > 0:
        gap = nonzero_min / denominator
    else:
        gap = math.inf
    return zero_max, nonzero_min, gap


def _matrix_rank(A: np.ndarray) -> int:
    """Rank by SVD with ``numpy.linalg.matrix_rank``'s threshold :math:`\\sigma_{\\max}\\max(m, n)\\epsilon`."""
    if A.size == 0:
        return 0
    s = np.linalg.svd(A, compute_uv=False)
    return int(np.sum(s > s.max() * max(A.shape) * _EPS))


def _select(lam: np.ndarray, k: int, which: str) -> np.ndarray:
    """Indices (ascending by eigenvalue) of the ``k`` eigenvalues ``which`` picks from ascending ``lam``."""
    P = lam.shape[0]
    if which == "largest":
        return np.arange(P - k, P)
    if which == "smallest":
        return np.arange(k)
    if which == "both":
        top = (k + 1) // 2
        return np.concatenate([np.arange(k - top), np.arange(P - top, P)])
    order = np.argsort(-np.abs(lam), kind="stable")[:k]
    return np.sort(order)


def _block_lanczos(hvp, start, steps, xp):
    r"""Independent Lanczos runs from the rows of ``start`` (unit vectors), with full reorthogonalization.

    One batched Hessian-vector product per step serves every run.  A run that
    finds an invariant subspace (:math:`\beta_j \le P\epsilon\|T\|`) stops
    there; its length is returned.  Returns ``alphas (b, steps)``, ``betas
    (b, steps)``, ``lengths`` and the number of products.
    """
    b, P = start.shape
    alphas = np.zeros((b, steps))
    betas = np.zeros((b, steps))
    lengths = np.full(b, steps)
    active = np.ones(b, dtype=bool)
    basis = xp.zeros((b, steps, P), dtype=xp.float64)     # filled in place: no copies of the basis as it grows
    basis[:, 0, :] = start
    q = start
    n_hvp = 0
    for j in range(steps):
        z = hvp(q)
        n_hvp += int(np.sum(active))
        a = xp.sum(q * z, axis=1)
        Q = basis[:, : j + 1, :]                           # (b, j + 1, P)
        for _ in range(2):                                 # full reorthogonalization, twice is enough
            coefficients = xp.matmul(Q, xp.expand_dims(z, axis=2))                  # (b, j + 1, 1)
            z = z - xp.matmul(xp.permute_dims(coefficients, (0, 2, 1)), Q)[:, 0, :]
        beta = _backend.to_numpy(xp.sqrt(xp.sum(z * z, axis=1)))
        alphas[:, j] = _backend.to_numpy(a)
        if j == steps - 1:
            break
        scale = np.abs(alphas[:, : j + 1]).max(axis=1) + betas[:, :j].max(axis=1, initial=0.0)
        ended = active & (beta <= P * _EPS * np.maximum(scale, np.finfo(float).tiny))
        lengths[ended] = j + 1
        active &= ~ended
        if not np.any(active):
            break
        betas[:, j] = np.where(active, beta, 0.0)
        safe = _backend.as_array(np.where(active, beta, 1.0), xp)
        q = z / xp.expand_dims(safe, axis=1)
        basis[:, j + 1, :] = q
    return alphas, betas, lengths, n_hvp


def _tridiagonal_eigh(alpha: np.ndarray, beta: np.ndarray):
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    return np.linalg.eigh(T)


# ----------------------------------------------------------------------------- validators
def _validate_objective(obj, name="obj"):
    """An objective with the protocol of :class:`gradflow.Objective` (a GradientFlow gives its ``obj``)."""
    if isinstance(obj, GradientFlow):
        return obj.obj
    if isinstance(obj, Objective):
        return obj
    required = ("size", "value", "grad", "hvp", "hessian")
    missing = [attr for attr in required if getattr(obj, attr, None) is None]
    if missing:
        raise TypeError(
            f"`{name}` must be a gradflow.Objective, a compiled symbolic objective or a GradientFlow (anything with "
            f"size, value, grad, hvp and hessian); got {describe(obj)}, which lacks {', '.join(missing)}."
        )
    return obj


def _validate_network_objective(obj) -> Objective:
    if isinstance(obj, GradientFlow):
        obj = obj.obj
    if not isinstance(obj, Objective):
        raise TypeError(
            "`obj` must be a gradflow.Objective (degeneracy needs the network and the data, for the output "
            f"Jacobian); got {describe(obj)}. Build one with gf.Objective(model, data)."
        )
    return obj


def _validate_vector(obj, w, name):
    xp = _namespace(obj)
    P = int(obj.size)
    if not _backend.is_array(w):
        try:
            w = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be an array of {P} real numbers; got {describe(w)}.") from None
    w = _backend.as_array(w, xp)
    if w.ndim != 1 or w.shape[0] != P:
        raise ValueError(
            f"`{name}` must be one parameter vector of shape ({P},), one entry per parameter of the objective; "
            f"got shape {tuple(w.shape)}. For a batch, call once per row."
        )
    if not bool(xp.all(xp.isfinite(w))):
        raise ValueError(f"`{name}` must be finite; it has NaN or inf entries. Pass a point where L is defined.")
    return w


def _validate_w_star(obj, w_star, name="w_star"):
    return _validate_vector(obj, w_star, name)


def _validate_w_guess(obj, w_guess):
    if isinstance(w_guess, Trajectory):
        if w_guess.w.shape[0] == 0:
            raise ValueError("`w_guess` is a trajectory without points; run the dynamics first.")
        if w_guess.w.ndim != 2:
            raise ValueError(
                f"`w_guess` is a batched trajectory (w of shape {w_guess.w.shape}); pick one run, e.g. "
                "find_equilibrium(obj, traj.w[-1, i])."
            )
        w_guess = w_guess.w[-1]
    return _validate_vector(obj, w_guess, "w_guess")


def _validate_tol(tol):
    if tol is None:
        return None
    return check_real("tol", tol, minimum=0.0)


def _validate_grad_tol(grad_tol):
    if grad_tol is None:
        return None
    return check_real("grad_tol", grad_tol, minimum=0.0)


def _validate_k(k, P: int, method: str) -> int:
    k = check_int("k", k, minimum=1)
    if method == "lanczos" and k >= P:
        raise ValueError(
            f"`k` must be < P = {P} for method='lanczos' (ARPACK cannot return every eigenvalue); got k = {k}. "
            "Use a smaller k, or method='dense' for the whole spectrum."
        )
    if k > P:
        raise ValueError(f"`k` must be at most P = {P}, the number of eigenvalues; got k = {k}.")
    return k


def _validate_grid(grid):
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        return check_int("grid", grid, minimum=2)
    try:
        points = np.asarray(_backend.to_numpy(grid), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`grid` must be a number of points or a 1-D array of points; got {describe(grid)}.") from None
    if points.ndim != 1 or points.size == 0 or not np.all(np.isfinite(points)):
        raise ValueError(f"`grid` must be a non-empty 1-D array of finite points; got shape {points.shape}.")
    return points


def _validate_probe_inputs(obj: Objective, probe_inputs):
    if probe_inputs is None:
        return None
    try:
        X = np.asarray(_backend.to_numpy(probe_inputs), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`probe_inputs` must be an array of real numbers, shape (m, d); got "
                        f"{describe(probe_inputs)}.") from None
    d = int(obj.data.X.shape[1])
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(
            f"`probe_inputs` must be raw inputs of shape (m, {d}), like the training inputs; got shape {X.shape}."
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("`probe_inputs` must be finite; it has NaN or inf entries.")
    return X


def _validate_invariant_model(model) -> Network:
    if isinstance(model, GradientFlow):
        model = model.obj
    if isinstance(model, Objective):
        model = model.model
    if not isinstance(model, Network):
        raise TypeError(
            "`model` must be a gradflow network (gf.models.DeepLinear, MLP, FeatureRegression), an Objective or a "
            f"GradientFlow; got {describe(model)}."
        )
    if not (model.activation.is_linear or model.activation.name == "relu"):
        raise ValueError(
            f"`model` must have linear or ReLU hidden units for balancedness to be conserved; its activation is "
            f"{model.activation.name!r}, which is not positively homogeneous. Use DeepLinear or MLP(..., activation='relu')."
        )
    return model


def _validate_invariant_w(model: Network, w):
    if not _backend.is_array(w):
        try:
            w = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"`w` must be an array of real numbers; got {describe(w)}.") from None
    xp = _backend.namespace(w)
    w = _backend.as_array(w, xp)
    if w.ndim not in (1, 2) or w.shape[-1] != model.size:
        raise ValueError(
            f"`w` must have shape ({model.size},) or (m, {model.size}) for this model with P = {model.size} "
            f"parameters; got shape {tuple(w.shape)}."
        )
    if not bool(xp.all(xp.isfinite(w))):
        raise ValueError("`w` must be finite; it has NaN or inf entries.")
    return w
