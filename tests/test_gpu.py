"""The CuPy path on a GPU: the same numbers as NumPy, computed on the device.  Skipped without CuPy or a GPU."""

import numpy as np
import pytest

import gradflow as gf
from gradflow import _backend
from conftest import ALL_CASES, make_objective

cp = pytest.importorskip("cupy")
try:
    HAS_DEVICE = cp.cuda.runtime.getDeviceCount() > 0
except Exception:  # no driver, no device: CuPy imports but cannot run
    HAS_DEVICE = False
pytestmark = pytest.mark.skipif(not HAS_DEVICE, reason="no CUDA device")


@pytest.mark.parametrize("model_name, loss, weight_decay", ALL_CASES)
def test_cupy_objectives_give_the_numpy_gradients_and_hvps(model_name, loss, weight_decay):
    reference = make_objective(model_name, loss, weight_decay)
    gpu = make_objective(model_name, loss, weight_decay, xp_convert=cp.asarray)
    w_np = reference.init(seed=2, scale=0.6)
    v_np = np.random.default_rng(9).standard_normal(reference.size)
    w, v = cp.asarray(w_np), cp.asarray(v_np)
    grad, hvp = gpu.grad(w), gpu.hvp(w, v)
    assert isinstance(grad, cp.ndarray) and isinstance(hvp, cp.ndarray)
    np.testing.assert_allclose(grad.get(), reference.grad(w_np), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hvp.get(), reference.hvp(w_np, v_np), rtol=1e-10, atol=1e-13)


@pytest.fixture(scope="module")
def mlp_pair():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 10)), rng.standard_normal(200)
    model = gf.models.MLP([10, 16, 16, 1], activation="tanh", bias=True)
    cpu = gf.Objective(model, gf.Dataset(X, y))
    gpu = gf.Objective(model, gf.Dataset(cp.asarray(X), cp.asarray(y)))
    w = cpu.init(seed=1, scale=0.5)
    return cpu, gpu, w


@pytest.mark.parametrize("which", ["largest", "smallest", "both", "magnitude"])
def test_lanczos_runs_on_the_device_and_matches_the_dense_numpy_spectrum(mlp_pair, which):
    cpu, gpu, w = mlp_pair
    exact = gf.spectrum(cpu, w, k=6, which=which, method="dense")
    result = gf.spectrum(gpu, cp.asarray(w), k=6, which=which, method="lanczos", rtol=1e-10)
    assert isinstance(result.eigenvectors, cp.ndarray)
    assert "cupyx" in result.message
    np.testing.assert_allclose(result.eigenvalues, exact.eigenvalues, rtol=0,
                               atol=1e-7 * np.abs(exact.eigenvalues).max())
    H = cpu.hessian(w)
    V = result.eigenvectors.get()
    np.testing.assert_allclose(H @ V, V * result.eigenvalues, atol=1e-6 * np.abs(exact.eigenvalues).max())


def test_trace_and_density_on_the_device_equal_numpy_with_the_same_seed(mlp_pair):
    cpu, gpu, w = mlp_pair
    trace_cpu, trace_gpu = gf.hessian_trace(cpu, w, n_probes=20), gf.hessian_trace(gpu, cp.asarray(w), n_probes=20)
    assert trace_gpu.estimate == pytest.approx(trace_cpu.estimate, rel=1e-9)
    density_cpu = gf.spectral_density(cpu, w, n_probes=3, steps=20)
    density_gpu = gf.spectral_density(gpu, cp.asarray(w), n_probes=3, steps=20)
    np.testing.assert_allclose(density_gpu.nodes, density_cpu.nodes, rtol=1e-7, atol=1e-9)


def test_gd_on_the_device_follows_the_compiled_numpy_run(mlp_pair):
    cpu, gpu, w = mlp_pair
    ours = gf.gd(gpu, cp.asarray(w), lr=0.05, steps=200, record_every=50, method="iterate", progress=False)
    reference = gf.gd(cpu, w, lr=0.05, steps=200, record_every=50, method="iterate", progress=False)
    assert ours.status == reference.status == "success"
    np.testing.assert_allclose(_backend.to_numpy(ours.w), reference.w, rtol=1e-9, atol=1e-12)
