"""Activations: values and derivatives against closed forms and differences; the polynomial ReLU."""

import numpy as np
import pytest

import gradflow as gf

ACTIVATIONS = [gf.activations.linear, gf.activations.relu, gf.activations.tanh,
               gf.activations.Polynomial([0.5, -1.0, 0.0, 2.0]), gf.activations.relu_polynomial()]
Z = np.linspace(-1.9, 1.9, 37) + 0.013        # avoids ReLU's kink at 0


@pytest.mark.parametrize("act", ACTIVATIONS, ids=repr)
def test_derivatives_match_central_differences(act):
    h = 1e-6
    d = (act(Z + h) - act(Z - h)) / (2 * h)
    dd = (act.derivative(Z + h, np) - act.derivative(Z - h, np)) / (2 * h)
    np.testing.assert_allclose(act.derivative(Z, np), d, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(act.second_derivative(Z, np), dd, rtol=1e-6, atol=1e-7)


def test_named_activations_have_their_closed_forms():
    np.testing.assert_array_equal(gf.activations.relu(Z), np.maximum(Z, 0))
    np.testing.assert_allclose(gf.activations.tanh(Z), np.tanh(Z))
    np.testing.assert_array_equal(gf.activations.linear(Z), Z)
    assert gf.activations.get("tanh") is gf.activations.tanh


def test_polynomial_coefficients_are_ascending():
    p = gf.activations.Polynomial([1.0, 0.0, 3.0])       # 1 + 3 z^2
    np.testing.assert_allclose(p(Z), 1 + 3 * Z ** 2)
    assert p.degree == 2 and p.is_polynomial and not p.is_linear


def test_relu_polynomial_is_degree_10_and_reports_its_true_max_error():
    p = gf.activations.relu_polynomial()
    assert p.degree == 10
    low, high = p.interval
    grid = np.linspace(low, high, 100_001)
    measured = np.max(np.abs(p(grid) - np.maximum(grid, 0)))
    assert p.max_error == pytest.approx(measured, rel=1e-3)
    assert p.max_error < 0.1


def test_relu_polynomial_improves_with_degree():
    errors = [gf.activations.relu_polynomial(degree=k, interval=(-1, 1)).max_error for k in (4, 10, 20)]
    assert errors[0] > errors[1] > errors[2]
