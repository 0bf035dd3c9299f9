"""A tiny network's value and gradient against sympy, written out by hand from the formulas."""

import numpy as np
import pytest
import sympy as sp

import gradflow as gf

X = np.array([[0.3, -0.7], [1.1, 0.4], [-0.5, 0.9]])


def _tiny_loss(activation, loss, y, bias):
    """The loss of a [2, 2, 1 or 3] network as a sympy expression, symbols in gradflow's flat order."""
    k = 3 if loss == "cross_entropy" else 1
    W1 = sp.Matrix(2, 2, sp.symbols("a0:4"))
    b1 = sp.Matrix(2, 1, sp.symbols("c0:2"))
    W2 = sp.Matrix(k, 2, sp.symbols(f"e0:{2 * k}"))
    b2 = sp.Matrix(k, 1, sp.symbols(f"g0:{k}"))
    symbols = list(W1) + (list(b1) if bias else []) + list(W2) + (list(b2) if bias else [])
    n = X.shape[0]
    total = 0
    for i in range(n):
        x = sp.Matrix(X[i])
        hidden = (W1 * x + (b1 if bias else sp.zeros(2, 1))).applyfunc(activation)
        f = W2 * hidden + (b2 if bias else sp.zeros(k, 1))
        if loss == "square":
            total += sp.Rational(1, 2) * (f[0] - y[i]) ** 2
        elif loss == "logistic":
            total += sp.log(1 + sp.exp(-y[i] * f[0]))
        else:
            total += sp.log(sum(sp.exp(f[c]) for c in range(k))) - f[int(y[i])]
    return total / n, symbols


@pytest.mark.parametrize("activation, sym_activation", [
    ("tanh", sp.tanh),
    (gf.activations.Polynomial([0.0, 1.0, 0.5]), lambda z: z + z ** 2 / 2),
])
@pytest.mark.parametrize("loss, y", [
    ("square", np.array([0.2, -1.0, 0.5])),
    ("logistic", np.array([1.0, -1.0, 1.0])),
    ("cross_entropy", np.array([0, 2, 1])),
])
@pytest.mark.parametrize("bias", [False, True])
def test_value_and_gradient_equal_sympy(activation, sym_activation, loss, y, bias):
    expr, symbols = _tiny_loss(sym_activation, loss, y, bias)
    k = 3 if loss == "cross_entropy" else 1
    obj = gf.Objective(gf.models.MLP([2, 2, k], activation=activation, bias=bias), gf.Dataset(X, y), loss=loss)
    assert obj.size == len(symbols)
    w = np.random.default_rng(5).standard_normal(obj.size)
    at = dict(zip(symbols, w))
    value = float(expr.subs(at))
    gradient = np.array([float(sp.diff(expr, s).subs(at)) for s in symbols])
    assert obj.value(w) == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(obj.grad(w), gradient, rtol=1e-12, atol=1e-14)
