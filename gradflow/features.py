"""Polynomial feature maps of a univariate input, for linear-in-the-weights models.

A feature map is a small frozen object that is called on the inputs,
$\\varphi(X) \\in \\mathbb{R}^{n \\times (p + 1)}$, column $j$ being the basis
polynomial of degree $j$ evaluated at the samples::

    model = gf.models.FeatureRegression(gf.features.Legendre(degree=30))

Three bases are offered, each evaluated by its three-term recurrence with
array-API operations only (so it runs on NumPy, CuPy and ``array_api_strict``):

==================  ======================  ==============================================
:class:`Monomial`   $x^j$                   $x^{j+1} = x \\cdot x^j$
:class:`Legendre`   $P_j(x)$                $(j+1) P_{j+1} = (2j+1)\\, x P_j - j P_{j-1}$
:class:`Chebyshev`  $T_j(x)$                $T_{j+1} = 2x T_j - T_{j-1}$
==================  ======================  ==============================================

On $[-1, 1]$ all three satisfy $|\\varphi_j(x)| \\le 1$ with equality at $x = 1$.
The over-parametrized polynomial regression of the paper's Figure 4 (degree 30
on 9 Chebyshev nodes) uses these features.
"""

from __future__ import annotations

import abc
import dataclasses
import math

from . import _backend
from ._validation import check_bool, check_int, describe

__all__ = ["FeatureMap", "Monomial", "Legendre", "Chebyshev"]

DEFAULT_NORMALIZE = False


def _validate_degree(degree) -> int:
    return check_int("degree", degree, minimum=0)


def _validate_normalize(normalize) -> bool:
    return check_bool("normalize", normalize)


def _validate_X(X):
    """The input: an (n, 1) real, finite array of any namespace; returned as float64 with its namespace."""
    xp = _backend.namespace(X)
    try:
        arr = xp.asarray(X)
    except (TypeError, ValueError):
        raise TypeError(f"`X` must be an array of real numbers of shape (n, 1); got {describe(X)}.") from None
    if not (xp.isdtype(arr.dtype, "integral") or xp.isdtype(arr.dtype, "real floating")):
        raise TypeError(
            f"`X` must hold real numbers; got {describe(arr)}. Convert it first, e.g. `X.astype(float)`."
        )
    if arr.ndim != 2 or arr.shape[1] != 1:
        raise ValueError(
            f"`X` must be 2-D with exactly one column, shape (n, 1), for a univariate feature map; "
            f"got {describe(arr)}. Reshape a vector of points with `x.reshape(-1, 1)`."
        )
    arr = _backend.as_array(arr, xp)
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(
            f"`X` must contain only finite numbers; got {describe(arr)} with NaN or inf entries. "
            "Remove or impute those samples first."
        )
    return arr, xp


class FeatureMap(abc.ABC):
    """Protocol of a feature map: ``phi(X) -> (n, n_features)``, with ``n_features`` known in advance.

    Subclass it to use your own features with
    :class:`gradflow.models.FeatureRegression` without passing ``n_features``.
    """

    @property
    @abc.abstractmethod
    def n_features(self) -> int:
        """Number of columns of $\\varphi(X)$."""

    @abc.abstractmethod
    def __call__(self, X):
        """The feature matrix $\\varphi(X)$, shape ``(n, n_features)``."""


@dataclasses.dataclass(frozen=True)
class _Polynomial(FeatureMap):
    """Common part of the polynomial bases: validation, the recurrence loop and normalization.

    A subclass supplies :meth:`_next`, the value of the degree-$(j+1)$ basis
    polynomial from those of degrees $j$ and $j-1$; degrees 0 and 1 are
    $1$ and $x$ in all three bases.
    """

    degree: int
    normalize: bool = DEFAULT_NORMALIZE

    def __post_init__(self):
        object.__setattr__(self, "degree", _validate_degree(self.degree))
        object.__setattr__(self, "normalize", _validate_normalize(self.normalize))

    @property
    def n_features(self) -> int:
        """Number of columns of $\\varphi(X)$: ``degree + 1``."""
        return self.degree + 1

    @staticmethod
    @abc.abstractmethod
    def _next(j: int, x, p_j, p_prev):
        """The degree-(j+1) basis polynomial from those of degrees j and j-1."""

    def __call__(self, X):
        """The features $\\varphi(X)$, shape (n, degree + 1), in the namespace of ``X``.

        Parameters
        ----------
        X : array, shape (n, 1)
            Real, finite inputs (any value; the bounds quoted hold on $[-1, 1]$).

        Returns
        -------
        array, shape (n, degree + 1), float64
            Column $j$ is the degree-$j$ basis polynomial at the samples, divided by
            $\\sqrt{\\text{degree} + 1}$ when ``normalize``.
        """
        X, xp = _validate_X(X)
        x = X[:, 0]
        cols = [xp.ones_like(x)]
        if self.degree >= 1:
            cols.append(x)
        for j in range(1, self.degree):
            cols.append(self._next(j, x, cols[j], cols[j - 1]))
        Phi = xp.stack(cols, axis=1)
        if self.normalize:
            Phi = Phi / math.sqrt(self.n_features)
        return Phi


_CLASS_DOC = """{title}

    $\\varphi(x) = ({basis_0}, {basis_1}, \\dots, {basis_p})$ for a univariate $x$, by the recurrence

    .. math:: {recurrence}

    Parameters
    ----------
    degree : int
        The highest degree $p \\ge 0$; there are ``n_features = degree + 1`` columns.
    normalize : bool, default ``DEFAULT_NORMALIZE`` = False
        Divide every feature by $\\sqrt{{p + 1}}$.  Since $|\\varphi_j(x)| \\le 1$ on
        $[-1, 1]$ (equality at $x = 1$), this gives $\\|\\varphi(x)\\|_2 \\le 1$ there,
        with equality at $x = 1$.  The Hessian of the square loss
        $L(w) = \\frac{{1}}{{2n}} \\|\\Phi w - y\\|^2$ is $\\Phi^\\top \\Phi / n$, whose largest
        eigenvalue is at most $\\frac{{1}}{{n}} \\|\\Phi\\|_F^2 = \\frac{{1}}{{n}} \\sum_i \\|\\varphi(x_i)\\|^2 \\le 1$;
        gradient descent is then stable for any step below $2$ (the paper's Figure 4 uses 0.2).

    Examples
    --------
    >>> import numpy as np
    >>> {name}(degree=3)(np.array([[0.5]])).shape
    (1, 4)
"""


@dataclasses.dataclass(frozen=True)
class Monomial(_Polynomial):
    @staticmethod
    def _next(j, x, p_j, p_prev):
        return x * p_j


@dataclasses.dataclass(frozen=True)
class Legendre(_Polynomial):
    @staticmethod
    def _next(j, x, p_j, p_prev):
        return ((2 * j + 1) * x * p_j - j * p_prev) / (j + 1)


@dataclasses.dataclass(frozen=True)
class Chebyshev(_Polynomial):
    @staticmethod
    def _next(j, x, p_j, p_prev):
        return 2 * x * p_j - p_prev


Monomial.__doc__ = _CLASS_DOC.format(
    title="Monomial features $x^j$, $j = 0, \\dots, p$ (ill-conditioned for large $p$; prefer :class:`Legendre`).",
    name="Monomial", basis_0="1", basis_1="x", basis_p="x^p",
    recurrence="x^0 = 1, \\quad x^{j+1} = x \\cdot x^j.",
)
Legendre.__doc__ = _CLASS_DOC.format(
    title="Legendre-polynomial features $P_j(x)$, $j = 0, \\dots, p$, orthogonal on $[-1, 1]$.",
    name="Legendre", basis_0="P_0", basis_1="P_1", basis_p="P_p",
    recurrence="P_0 = 1, \\quad P_1 = x, \\quad (j + 1) P_{j+1} = (2j + 1)\\, x P_j - j P_{j-1}.",
)
Chebyshev.__doc__ = _CLASS_DOC.format(
    title="Chebyshev-polynomial features $T_j(x) = \\cos(j \\arccos x)$, $j = 0, \\dots, p$.",
    name="Chebyshev", basis_0="T_0", basis_1="T_1", basis_p="T_p",
    recurrence="T_0 = 1, \\quad T_1 = x, \\quad T_{j+1} = 2x\\, T_j - T_{j-1}.",
)
