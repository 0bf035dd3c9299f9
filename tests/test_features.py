"""Tests of gradflow.features: the polynomial bases against numpy.polynomial, normalization, backends, validation."""

import array_api_strict as xps
import numpy as np
import pytest
from numpy.polynomial import chebyshev, legendre, polynomial

from gradflow.features import Chebyshev, Legendre, Monomial

BASES = [
    (Monomial, polynomial.polyvander),
    (Legendre, legendre.legvander),
    (Chebyshev, chebyshev.chebvander),
]
DEGREES = [0, 1, 2, 7, 30]


def _points(n=64, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=n)


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("basis, vander", BASES, ids=[b.__name__ for b, _ in BASES])
def test_basis_matches_numpy_polynomial_vandermonde(basis, vander, degree):
    x = _points()
    Phi = basis(degree=degree)(x[:, None])
    np.testing.assert_allclose(Phi, vander(x, degree), rtol=0, atol=1e-12)


@pytest.mark.parametrize("basis", [Monomial, Legendre, Chebyshev])
def test_output_shape_dtype_and_n_features(basis):
    phi = basis(degree=5)
    Phi = phi(np.linspace(-1, 1, 11)[:, None])
    assert phi.n_features == 6
    assert Phi.shape == (11, 6)
    assert Phi.dtype == np.float64


@pytest.mark.parametrize("basis", [Monomial, Legendre, Chebyshev])
def test_integer_input_is_evaluated_as_float(basis):
    Phi = basis(degree=3)(np.array([[1], [-1], [0]]))
    np.testing.assert_allclose(Phi, basis(degree=3)(np.array([[1.0], [-1.0], [0.0]])), rtol=0, atol=0)


@pytest.mark.parametrize("degree", [0, 4, 30])
@pytest.mark.parametrize("basis", [Monomial, Legendre, Chebyshev])
def test_normalized_features_have_norm_at_most_one_with_equality_at_one(basis, degree):
    grid = np.linspace(-1.0, 1.0, 2001)[:, None]
    norms = np.linalg.norm(basis(degree=degree, normalize=True)(grid), axis=1)
    assert norms.max() <= 1.0 + 1e-12
    assert norms[-1] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("basis", [Monomial, Legendre, Chebyshev])
def test_normalize_divides_by_sqrt_of_n_features(basis):
    x = _points(16)[:, None]
    np.testing.assert_allclose(
        basis(degree=9, normalize=True)(x), basis(degree=9)(x) / np.sqrt(10), rtol=1e-15, atol=0
    )


def test_normalized_square_loss_hessian_has_largest_eigenvalue_at_most_one():
    Phi = Legendre(degree=30, normalize=True)(np.cos((2 * np.arange(1, 10) - 1) * np.pi / 18)[:, None])
    hessian = Phi.T @ Phi / Phi.shape[0]
    assert np.linalg.eigvalsh(hessian).max() <= 1.0 + 1e-12


@pytest.mark.parametrize("basis", [Monomial, Legendre, Chebyshev])
def test_array_api_strict_input_gives_array_api_strict_output_equal_to_numpy(basis):
    x = _points(20)[:, None]
    phi = basis(degree=12, normalize=True)
    out = phi(xps.asarray(x))
    assert isinstance(out, type(xps.asarray(0.0)))
    assert out.dtype == xps.float64
    np.testing.assert_array_equal(np.asarray(out), phi(x))


def test_feature_maps_are_frozen_and_compare_by_value():
    phi = Legendre(degree=3)
    with pytest.raises(AttributeError):
        phi.degree = 4
    assert phi == Legendre(degree=3)
    assert phi != Chebyshev(degree=3)
    assert phi != Legendre(degree=3, normalize=True)


@pytest.mark.parametrize("degree", [-1, -30])
def test_negative_degree_is_a_value_error(degree):
    with pytest.raises(ValueError, match=r"`degree` must be an integer >= 0"):
        Legendre(degree=degree)


@pytest.mark.parametrize("degree", [2.5, "3", True, None])
def test_non_integer_degree_is_a_type_error(degree):
    with pytest.raises(TypeError, match=r"`degree` must be an integer"):
        Chebyshev(degree=degree)


def test_numpy_integer_degree_is_accepted_as_int():
    phi = Monomial(degree=np.int64(4))
    assert type(phi.degree) is int and phi.n_features == 5


@pytest.mark.parametrize("normalize", [1, "yes", None])
def test_non_bool_normalize_is_a_type_error(normalize):
    with pytest.raises(TypeError, match=r"`normalize` must be True or False"):
        Monomial(degree=2, normalize=normalize)


def test_one_dimensional_input_is_a_value_error_telling_to_reshape():
    with pytest.raises(ValueError, match=r"`X` must be 2-D with exactly one column.*reshape\(-1, 1\)"):
        Legendre(degree=3)(np.linspace(-1, 1, 5))


def test_input_with_two_columns_is_a_value_error():
    with pytest.raises(ValueError, match=r"`X` must be 2-D with exactly one column.*shape \(5, 2\)"):
        Legendre(degree=3)(np.zeros((5, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_value_error(bad):
    X = np.zeros((4, 1))
    X[2, 0] = bad
    with pytest.raises(ValueError, match=r"`X` must contain only finite numbers"):
        Chebyshev(degree=3)(X)


def test_non_finite_array_api_strict_input_is_a_value_error():
    with pytest.raises(ValueError, match=r"`X` must contain only finite numbers"):
        Chebyshev(degree=3)(xps.asarray([[0.0], [float("nan")]]))


@pytest.mark.parametrize("X", [np.array([[1 + 1j]]), np.array([[True], [False]])], ids=["complex", "bool"])
def test_non_real_input_is_a_type_error(X):
    with pytest.raises(TypeError, match=r"`X` must hold real numbers"):
        Monomial(degree=2)(X)
