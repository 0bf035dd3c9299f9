"""Shared builders: every model x activation x loss x weight decay the derivative tests run over."""

import numpy as np
import pytest

import gradflow as gf

N_SAMPLES = 6
N_INPUTS = 3

MODELS = {
    "feature_regression": lambda k: gf.models.FeatureRegression(gf.features.Legendre(degree=5), n_outputs=k),
    "deep_linear": lambda k: gf.models.DeepLinear([N_INPUTS, 4, 2, k]),
    "relu_bias": lambda k: gf.models.MLP([N_INPUTS, 5, 4, k], activation="relu", bias=True),
    "tanh": lambda k: gf.models.MLP([N_INPUTS, 4, 3, k], activation="tanh"),
    "tanh_bias": lambda k: gf.models.MLP([N_INPUTS, 4, k], activation="tanh", bias=True),
    "quadratic": lambda k: gf.models.MLP([N_INPUTS, 3, 3, k], activation=gf.activations.Polynomial([0.0, 1.0, 0.5])),
    "relu_polynomial": lambda k: gf.models.MLP([N_INPUTS, 4, k], activation=gf.activations.relu_polynomial(), bias=True),
}
LOSSES = ("square", "logistic", "cross_entropy")
WEIGHT_DECAYS = (0.0, 0.3)


def make_data(model_name: str, loss: str, seed: int = 0, xp_convert=None) -> gf.Dataset:
    """Random data that fits ``loss``; 1-D inputs in [-1, 1] for feature regression."""
    rng = np.random.default_rng(seed)
    d = 1 if model_name == "feature_regression" else N_INPUTS
    X = rng.uniform(-1, 1, size=(N_SAMPLES, d))
    X_test = rng.uniform(-1, 1, size=(4, d))
    if loss == "square":
        y, y_test = rng.standard_normal((N_SAMPLES, 2)), rng.standard_normal((4, 2))
    elif loss == "logistic":
        y = np.array([1.0, -1.0] * (N_SAMPLES // 2))
        y_test = np.array([1.0, -1.0, -1.0, 1.0])
    else:
        y, y_test = np.arange(N_SAMPLES) % 3, np.array([0, 1, 2, 0])
    arrays = (X, y, X_test, y_test)
    if xp_convert is not None:
        arrays = tuple(xp_convert(a) for a in arrays)
    return gf.Dataset(*arrays)


def n_outputs(loss: str) -> int:
    return {"square": 2, "logistic": 1, "cross_entropy": 3}[loss]


def make_objective(model_name: str, loss: str, weight_decay: float, xp_convert=None) -> gf.Objective:
    model = MODELS[model_name](n_outputs(loss))
    return gf.Objective(model, make_data(model_name, loss, xp_convert=xp_convert), loss=loss, weight_decay=weight_decay)


ALL_CASES = [
    pytest.param(m, loss, wd, id=f"{m}-{loss}-wd{wd}")
    for m in MODELS for loss in LOSSES for wd in WEIGHT_DECAYS
]
