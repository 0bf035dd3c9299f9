"""The derivative tests once more on array_api_strict arrays: the path CuPy takes, kept honest without a GPU."""

import numpy as np
import pytest

from conftest import ALL_CASES, make_objective

xps = pytest.importorskip("array_api_strict")
STRICT_ARRAY = type(xps.asarray(0.0))


def _strict(a):
    return xps.asarray(a)


@pytest.mark.parametrize("model_name, loss, weight_decay", ALL_CASES)
def test_strict_arrays_give_the_numpy_values_gradients_and_hessians(model_name, loss, weight_decay):
    reference = make_objective(model_name, loss, weight_decay)
    strict = make_objective(model_name, loss, weight_decay, xp_convert=_strict)
    assert strict.xp is xps
    w_np = reference.init(seed=2, scale=0.6)
    v_np = np.random.default_rng(9).standard_normal(reference.size)
    w = strict.init(seed=2, scale=0.6)
    assert isinstance(w, STRICT_ARRAY)
    v = _strict(v_np)
    value, grad, hvp, hessian = strict.value(w), strict.grad(w), strict.hvp(w, v), strict.hessian(w)
    for out in (value, grad, hvp, hessian):
        assert isinstance(out, STRICT_ARRAY)
    np.testing.assert_allclose(np.asarray(value), reference.value(w_np), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(grad), reference.grad(w_np), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(hvp), reference.hvp(w_np, v_np), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(hessian), reference.hessian(w_np), rtol=1e-12, atol=1e-15)
    metrics, metrics_np = strict.metrics(w), reference.metrics(w_np)
    assert metrics.keys() == metrics_np.keys()
    for key in metrics:
        assert metrics[key] == pytest.approx(metrics_np[key], rel=1e-12)


def test_strict_output_jacobian_and_data_span_init_match_numpy():
    reference = make_objective("deep_linear", "square", 0.0)
    strict = make_objective("deep_linear", "square", 0.0, xp_convert=_strict)
    w_np = reference.init(seed=1, in_data_span=True)
    w = strict.init(seed=1, in_data_span=True)
    np.testing.assert_allclose(np.asarray(w), w_np, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(strict.output_jacobian(w)), reference.output_jacobian(w_np), rtol=1e-13)
