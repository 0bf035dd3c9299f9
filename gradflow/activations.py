r"""Activation functions with their first and second derivatives.

A hidden unit computes :math:`z \mapsto \sigma(z)`; backpropagation needs
:math:`\sigma'`, and the exact Hessian-vector product (Pearlmutter's
R-operator) also needs :math:`\sigma''`.  Every activation here provides all
three, written against the array namespace ``xp`` of its input, so the same
objects serve NumPy, CuPy and ``array_api_strict`` arrays.

The paper (Section 6.4, Figure 9) replaces every ReLU of a network by a
univariate polynomial approximation of degree 10 to obtain a *polynomial
network*, whose loss is a polynomial in the weights; :func:`relu_polynomial`
builds that approximation and reports its error.
"""

from __future__ import annotations

import abc
import dataclasses

import numpy as np

from . import _backend
from ._validation import check_int, check_real, describe

__all__ = [
    "Activation", "Linear", "ReLU", "Tanh", "Polynomial",
    "linear", "relu", "tanh", "relu_polynomial", "get", "NAMES",
]

#: Degree of the paper's polynomial stand-in for ReLU (Section 6.4.2, Figure 9).
DEFAULT_RELU_DEGREE = 10
#: Interval on which :func:`relu_polynomial` approximates ReLU by default.
DEFAULT_RELU_INTERVAL = (-2.0, 2.0)
#: Number of points of the grid on which the approximation error is measured.
ERROR_GRID_POINTS = 20_001


class Activation(abc.ABC):
    r"""Base class of activations: :math:`\sigma`, :math:`\sigma'`, :math:`\sigma''`.

    Subclasses implement ``value``, ``derivative`` and ``second_derivative``,
    each taking ``(z, xp)``.  Calling an activation, ``act(z)``, evaluates it
    on any supported array.  ``is_linear`` lets the network skip the
    elementwise products of a linear unit; ``is_polynomial`` says whether a
    network built from it has a loss that is polynomial in the weights (the
    symbolic layer accepts only these); ``is_smooth`` whether σ is
    continuously differentiable (the gradient flow's vector field is then
    continuous).
    """

    name: str = "activation"
    is_linear: bool = False
    is_polynomial: bool = False
    is_smooth: bool = True

    def __call__(self, z):
        xp = _backend.namespace(z)
        return self.value(_backend.as_array(z, xp), xp)

    @abc.abstractmethod
    def value(self, z, xp):
        """σ(z) elementwise, in namespace ``xp``."""

    @abc.abstractmethod
    def derivative(self, z, xp):
        """σ′(z) elementwise, in namespace ``xp``."""

    @abc.abstractmethod
    def second_derivative(self, z, xp):
        """σ″(z) elementwise, in namespace ``xp``."""

    def __repr__(self) -> str:
        return f"gradflow.activations.{self.name}"


class Linear(Activation):
    r"""The identity, :math:`\sigma(z) = z` (deep *linear* networks, Section 6.2.2)."""

    name = "linear"
    is_linear = True
    is_polynomial = True

    def value(self, z, xp):
        return z

    def derivative(self, z, xp):
        return xp.ones_like(z)

    def second_derivative(self, z, xp):
        return xp.zeros_like(z)


class ReLU(Activation):
    r"""The rectifier, :math:`\sigma(z) = \max(z, 0)`.

    At the kink the derivative is taken as 0 (the usual subgradient
    convention), and :math:`\sigma'' = 0` everywhere else, so Hessians of ReLU
    networks are exact away from the measure-zero set where a pre-activation
    is exactly 0 (Section 6.2.4).
    """

    name = "relu"
    is_smooth = False

    def value(self, z, xp):
        return xp.where(z > 0, z, xp.zeros_like(z))

    def derivative(self, z, xp):
        return xp.astype(z > 0, z.dtype)

    def second_derivative(self, z, xp):
        return xp.zeros_like(z)


class Tanh(Activation):
    r""":math:`\sigma(z) = \tanh z`, :math:`\sigma' = 1 - \tanh^2 z`, :math:`\sigma'' = -2\tanh z\,(1 - \tanh^2 z)`."""

    name = "tanh"

    def value(self, z, xp):
        return xp.tanh(z)

    def derivative(self, z, xp):
        t = xp.tanh(z)
        return 1.0 - t * t

    def second_derivative(self, z, xp):
        t = xp.tanh(z)
        return -2.0 * t * (1.0 - t * t)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Polynomial(Activation):
    r"""A polynomial activation :math:`\sigma(z) = \sum_{j=0}^{D} c_j z^j`.

    Parameters
    ----------
    coeffs : sequence of float
        Coefficients in *ascending* order, :math:`c_0, c_1, \dots, c_D` (the
        convention of :mod:`numpy.polynomial`).  ``Polynomial([0, 1, 1])`` is
        :math:`z + z^2`, the activation of the paper's Section 6.2.4.
    interval, max_error : optional
        Set by :func:`relu_polynomial`: the interval of approximation and the
        largest :math:`|\sigma(z) - \max(z, 0)|` measured on it.
    """

    coeffs: tuple
    interval: tuple | None = None
    max_error: float | None = None

    name = "polynomial"
    is_polynomial = True

    def __post_init__(self):
        object.__setattr__(self, "coeffs", _validate_coeffs(self.coeffs))

    @property
    def degree(self) -> int:
        """The degree :math:`D` (the index of the last nonzero coefficient)."""
        nonzero = [j for j, c in enumerate(self.coeffs) if c != 0.0]
        return nonzero[-1] if nonzero else 0

    @property
    def is_linear(self) -> bool:  # type: ignore[override]
        return self.degree == 1 and self.coeffs[:2] == (0.0, 1.0)

    def value(self, z, xp):
        return _horner(self.coeffs, z, xp)

    def derivative(self, z, xp):
        return _horner(_derivative_coeffs(self.coeffs), z, xp)

    def second_derivative(self, z, xp):
        return _horner(_derivative_coeffs(_derivative_coeffs(self.coeffs)), z, xp)

    def __repr__(self) -> str:
        extra = ""
        if self.interval is not None:
            extra = f", interval={self.interval}, max_error={self.max_error:.3g}"
        return f"Polynomial(coeffs={list(self.coeffs)}{extra})"

    def __eq__(self, other):
        return isinstance(other, Polynomial) and self.coeffs == other.coeffs

    def __hash__(self):
        return hash(("Polynomial", self.coeffs))


def _validate_coeffs(coeffs) -> tuple:
    if isinstance(coeffs, (str, bytes)) or not hasattr(coeffs, "__len__"):
        raise TypeError(f"`coeffs` must be a sequence of real numbers in ascending order; got {describe(coeffs)}.")
    values = np.asarray(_backend.to_numpy(coeffs) if _backend.is_array(coeffs) else list(coeffs))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"`coeffs` must be a non-empty 1-D sequence (c0, c1, ..., cD); got {describe(coeffs)}.")
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise TypeError(f"`coeffs` must hold real numbers; got dtype {values.dtype}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("`coeffs` must all be finite; got a NaN or an infinity.")
    return tuple(float(c) for c in values)


def _derivative_coeffs(coeffs: tuple) -> tuple:
    return tuple(j * c for j, c in enumerate(coeffs))[1:] or (0.0,)


def _horner(coeffs: tuple, z, xp):
    result = xp.full_like(z, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        result = result * z + c
    return result


def relu_polynomial(degree: int = DEFAULT_RELU_DEGREE, interval=DEFAULT_RELU_INTERVAL) -> Polynomial:
    r"""The polynomial approximation of ReLU that makes a network polynomial (Section 6.4, Figure 9).

    The approximation is the least-squares fit of :math:`\max(z, 0)` in the
    Chebyshev basis of ``interval`` at many Chebyshev points, which is close to
    the best uniform approximation and, as the paper asks, good near 0; it is
    returned in the monomial basis.  The largest error on the interval,
    measured on a grid of ``ERROR_GRID_POINTS`` points, is stored as
    ``max_error`` (about 0.06, at the kink, for the default degree 10 on [-2, 2]).

    Parameters
    ----------
    degree : int, default 10
        Degree of the polynomial (the paper uses 10).
    interval : (float, float), default (-2.0, 2.0)
        Interval ``(a, b)``, ``a < 0 < b``, on which the fit is made.
        Outside it the polynomial grows like :math:`|z|^{10}`: choose it to
        cover the pre-activations the network will reach.  Trained by GD on
        the digits data, networks with the default interval leave it within a
        few hundred steps and diverge; ``gradflow reproduce`` uses (-12, 12)
        for them (``gradflow.experiments.networks.POLY_INTERVAL``) and reports
        the largest pre-activation reached.

    Returns
    -------
    Polynomial
        With ``interval`` and ``max_error`` set.
    """
    degree = check_int("degree", degree, minimum=1, maximum=40)
    low, high = _validate_interval(interval)
    from numpy.polynomial import Chebyshev

    n_fit = max(20 * (degree + 1), 2000)
    nodes = np.cos(np.pi * (np.arange(n_fit) + 0.5) / n_fit)
    z = 0.5 * (high - low) * nodes + 0.5 * (high + low)
    fit = Chebyshev.fit(z, np.maximum(z, 0.0), degree, domain=[low, high])
    power = fit.convert(kind=np.polynomial.Polynomial, domain=[-1, 1], window=[-1, 1]).coef
    grid = np.linspace(low, high, ERROR_GRID_POINTS)
    error = float(np.max(np.abs(np.polynomial.polynomial.polyval(grid, power) - np.maximum(grid, 0.0))))
    return Polynomial(tuple(power), interval=(low, high), max_error=error)


def _validate_interval(interval) -> tuple[float, float]:
    try:
        low, high = interval
    except (TypeError, ValueError):
        raise TypeError(f"`interval` must be a pair (a, b) with a < 0 < b; got {describe(interval)}.") from None
    low, high = check_real("interval[0]", low), check_real("interval[1]", high)
    if not low < 0.0 < high:
        raise ValueError(f"`interval` must be a pair (a, b) with a < 0 < b, so that it contains ReLU's kink; got {interval}.")
    return low, high


linear = Linear()
relu = ReLU()
tanh = Tanh()

#: The activations that can be named by a string.
NAMES = {"linear": linear, "relu": relu, "tanh": tanh}


def get(activation) -> Activation:
    """The :class:`Activation` named by ``activation`` ("linear", "relu", "tanh") or ``activation`` itself."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        if activation not in NAMES:
            raise ValueError(
                f"`activation` must be one of {', '.join(repr(n) for n in NAMES)} or a "
                f"gradflow.activations.Polynomial(coeffs); got {activation!r}."
            )
        return NAMES[activation]
    raise TypeError(
        "`activation` must be a name ('linear', 'relu', 'tanh') or a gradflow.activations.Activation "
        f"such as Polynomial(coeffs); got {describe(activation)}."
    )
