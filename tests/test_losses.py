"""Losses: closed forms, and numerical stability for margins of 1e3 and beyond (no overflow, no log(0))."""

import warnings

import numpy as np
import pytest

import gradflow as gf


def _one_layer(loss, X, y, k):
    return gf.Objective(gf.models.DeepLinear([X.shape[1], k]), gf.Dataset(X, y), loss=loss)


@pytest.mark.parametrize("margin", [1e3, 1e5, 1e300])
def test_logistic_loss_is_finite_and_exact_for_huge_margins(margin):
    X, y = np.array([[1.0], [1.0]]), np.array([1.0, -1.0])
    obj = _one_layer("logistic", X, y, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no overflow / divide-by-zero warnings
        # w = margin: sample 1 has margin +margin (loss ~ 0), sample 2 has margin -margin (loss = margin)
        value, grad = obj.value_and_grad(np.array([margin]))
        curvature = obj.hvp(np.array([margin]), np.array([1.0]))
    assert value == pytest.approx(margin / 2, rel=1e-15)
    assert grad == pytest.approx([0.5], rel=1e-15)    # d/dw of (1/2) softplus(w) -> 1/2
    assert curvature == pytest.approx([0.0], abs=1e-300)


def test_logistic_loss_matches_its_formula_at_moderate_margins():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 3)), np.where(rng.standard_normal(8) > 0, 1.0, -1.0)
    obj = _one_layer("logistic", X, y, 1)
    w = rng.standard_normal(3)
    margins = y * (X @ w)
    assert obj.value(w) == pytest.approx(np.mean(np.log1p(np.exp(-margins))), rel=1e-14)
    assert obj.metrics(w)["train_error"] == pytest.approx(np.mean(margins <= 0))


@pytest.mark.parametrize("scale", [1e3, 1e6, 1e300])
def test_cross_entropy_is_finite_and_exact_for_huge_logits(scale):
    X, y = np.eye(3), np.array([0, 1, 2])
    obj = _one_layer("cross_entropy", X, y, 3)
    W = scale * np.array([[1.0, 0, 1.0], [0, 1.0, 0], [0, 0, 0]])    # samples 0, 1 right; sample 2 wrong by `scale`
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = obj.value_and_grad(W.ravel())
    assert value == pytest.approx(scale / 3, rel=1e-15)      # samples 0, 1: log(1 + 2 e^{-scale}) = 0
    assert np.all(np.isfinite(grad))
    # sample 2 (input e_3): softmax puts all mass on class 0, target 2 -> dL/dW[0, 2] = 1/3, dL/dW[2, 2] = -1/3
    G = grad.reshape(3, 3)
    assert G[0, 2] == pytest.approx(1 / 3) and G[2, 2] == pytest.approx(-1 / 3)


def test_cross_entropy_matches_its_formula():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    obj = _one_layer("cross_entropy", X, y, 3)
    w = rng.standard_normal(12)
    F = X @ w.reshape(3, 4).T
    expected = np.mean(np.log(np.exp(F).sum(axis=1)) - F[np.arange(10), y])
    assert obj.value(w) == pytest.approx(expected, rel=1e-14)


def test_square_loss_is_half_the_mean_squared_residual():
    X, y = np.array([[1.0], [2.0]]), np.array([[1.0, 0.0], [0.0, 3.0]])
    obj = _one_layer("square", X, y, 2)
    w = np.array([1.0, 1.0])
    assert obj.value(w) == pytest.approx(((0 ** 2 + 1 ** 2) + (2 ** 2 + 1 ** 2)) / (2 * 2))
