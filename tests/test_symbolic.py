"""The symbolic layer: exact sympy losses against the numeric Objective, exact Hessians, critical points, numba kernels."""

import json
import os
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import numba
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import gradflow as gf
from gradflow import symbolic

RTOL = 1e-12
ROOT = Path(__file__).resolve().parents[1]
QUADRATIC = gf.activations.Polynomial([0.1, 1.0, 0.5])
CUBIC = gf.activations.Polynomial([0.0, 1.0, 0.0, 0.2])
W1, W2 = sp.symbols("w1 w2")


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    """Every compile of this file writes to a temporary GRADFLOW_CACHE_DIR."""
    path = tmp_path_factory.mktemp("gradflow-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADFLOW_CACHE_DIR", str(path))
        yield path


def _relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def _data(loss, d, k, n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    if loss == "square":
        y = rng.standard_normal((n, k)) if k > 1 else rng.standard_normal(n)
    elif loss == "logistic":
        y = np.array([1.0, -1.0, -1.0, 1.0, 1.0][:n])
    else:
        y = np.arange(n) % k
    return X, y


def _sympy_at(sym, w):
    """Value, gradient and Hessian of the sympy expressions at float weights."""
    values = {s: sp.Float(v) for s, v in zip(sym.symbols, w)}
    value = float(sym.expr.xreplace(values))
    grad = np.array(sym.gradient().xreplace(values), dtype=float).ravel()
    hess = np.array(sym.hessian().xreplace(values), dtype=float)
    return value, grad, hess


CASES = [
    pytest.param([2, 3, 1], "linear", False, 0.0, "square", id="linear-2-3-1"),
    pytest.param([3, 2, 2, 2], "linear", True, 0.3, "square", id="linear-3-2-2-2-bias-wd"),
    pytest.param([2, 2, 2, 2, 1], "linear", False, 0.0, "square", id="linear-depth4"),
    pytest.param([3, 2, 2], QUADRATIC, True, 0.3, "square", id="quadratic-bias-wd"),
    pytest.param([2, 2, 2, 1], CUBIC, False, 0.0, "square", id="cubic-depth3"),
    pytest.param([3, 2, 1], "linear", True, 0.0, "logistic", id="linear-logistic-bias"),
    pytest.param([3, 2, 3], QUADRATIC, False, 0.3, "cross_entropy", id="quadratic-cross-entropy-wd"),
]


@pytest.mark.parametrize("widths, activation, bias, weight_decay, loss", CASES)
def test_symbolic_loss_matches_numeric_objective(widths, activation, bias, weight_decay, loss):
    X, y = _data(loss, widths[0], widths[-1])
    sym = symbolic.network_loss(widths, activation, data=(X, y), loss=loss, weight_decay=weight_decay, bias=bias)
    obj = gf.Objective(gf.models.MLP(widths, activation=activation, bias=bias), gf.Dataset(X, y),
                       loss=loss, weight_decay=weight_decay)
    assert sym.size == obj.size
    for seed in (1, 2):
        w = obj.init(seed=seed, scale=0.8)
        value, grad, hess = _sympy_at(sym, w)
        assert _relative(value, obj.value(w)) <= RTOL
        assert _relative(grad, obj.grad(w)) <= RTOL
        assert _relative(hess, obj.hessian(w)) <= RTOL


def test_per_sample_assembled_derivatives_equal_the_derivatives_of_expr():
    X, y = _data("square", 2, 1, n=3)
    sym = symbolic.network_loss([2, 2, 1], QUADRATIC, data=(X, y), weight_decay=0.25, bias=True)
    direct_grad = sp.Matrix([sp.diff(sym.expr, s) for s in sym.symbols])
    assert (sym.gradient() - direct_grad).applyfunc(sp.expand) == sp.zeros(sym.size, 1)
    direct_hess = sp.hessian(sym.expr, sym.symbols)
    assert (sym.hessian() - direct_hess).applyfunc(sp.expand) == sp.zeros(sym.size, sym.size)


def test_symbols_follow_the_flat_parameter_order_of_the_models():
    sym = symbolic.network_loss([2, 3, 1], bias=True)
    names = [str(s) for s in sym.symbols]
    assert names == ["W1_1_1", "W1_1_2", "W1_2_1", "W1_2_2", "W1_3_1", "W1_3_2", "b1_1", "b1_2", "b1_3",
                     "W2_1_1", "W2_1_2", "W2_1_3", "b2_1"]


def test_symbolic_data_substituted_equals_the_loss_with_that_data():
    X, y = _data("square", 2, 1, n=3)
    symbolic_data = symbolic.network_loss([2, 2, 1], QUADRATIC, n_samples=3, weight_decay=0.5)
    numeric = symbolic.network_loss([2, 2, 1], QUADRATIC, data=(X, y), weight_decay=0.5)
    Xs, Ys = symbolic_data.data_symbols
    assert Xs.shape == (3, 2) and Ys.shape == (3, 1)
    exact = symbolic._exact_number
    values = {Xs[i, j]: exact(X[i, j]) for i in range(3) for j in range(2)}
    values.update({Ys[i, 0]: exact(y[i]) for i in range(3)})
    assert sp.expand(symbolic_data.expr.xreplace(values) - numeric.expr) == 0


def test_network_expression_is_kept_unexpanded_and_exact():
    sym = symbolic.network_loss([1, 1, 1], data=([[2.0]], [0.1]))
    w1, w2 = sym.symbols
    assert sym.expr == (2 * w1 * w2 - sp.Rational(1, 10)) ** 2 / 2


# ----------------------------------------------------------------------------- compiled kernels
@pytest.fixture(scope="module")
def compiled_net():
    """A polynomial network with bias and weight decay, compiled once for the file."""
    X, y = _data("square", 3, 2)
    sym = symbolic.network_loss([3, 2, 2], QUADRATIC, data=(X, y), weight_decay=0.3, bias=True)
    return sym, sym.compile(), (X, y)


def test_compiled_value_grad_hessian_hvp_equal_the_sympy_values(compiled_net):
    sym, compiled, _ = compiled_net
    rng = np.random.default_rng(3)
    W = rng.standard_normal((2, sym.size))
    V = rng.standard_normal((2, sym.size))
    for w, v in zip(W, V):
        value, grad, hess = _sympy_at(sym, w)
        assert _relative(compiled.value(w), value) <= RTOL
        assert _relative(compiled.grad(w), grad) <= RTOL
        assert _relative(compiled.hessian(w), hess) <= RTOL
        assert _relative(compiled.hvp(w, v), hess @ v) <= RTOL
    assert compiled.value(W).shape == (2,) and compiled.grad(W).shape == W.shape
    np.testing.assert_allclose(compiled.grad(W)[1], compiled.grad(W[1]), rtol=0, atol=0)
    np.testing.assert_allclose(compiled.hvp(W, V)[0], compiled.hessian(W[0]) @ V[0], rtol=1e-14)


@numba.njit
def _call_kernels(rhs, jac, w, args):
    out = np.empty_like(w)
    J = np.empty((w.size, w.size))
    rhs(0.0, w, out, args)
    jac(0.0, w, J, args)
    return out, J


@numba.njit
def _euler(rhs, w0, dt, steps, args):
    w, k = w0.copy(), np.empty_like(w0)
    for _ in range(steps):
        rhs(0.0, w, k, args)
        w += dt * k
    return w


def test_rhs_and_jac_called_inside_numba_give_minus_gradient_and_minus_hessian(compiled_net):
    sym, compiled, _ = compiled_net
    w = np.random.default_rng(4).standard_normal(sym.size)
    out, J = _call_kernels(compiled.rhs, compiled.jac, w, compiled.args)
    np.testing.assert_array_equal(out, -compiled.grad(w))
    np.testing.assert_array_equal(J, -compiled.hessian(w))


def test_compiled_euler_loop_decreases_the_loss(compiled_net):
    sym, compiled, _ = compiled_net
    w0 = np.random.default_rng(5).standard_normal(sym.size)
    w = _euler(compiled.rhs, w0, 1e-2, 200, compiled.args)
    assert compiled.value(w) < compiled.value(w0)


def test_new_data_or_weight_decay_gives_new_values_without_recompiling(compiled_net, cache_dir):
    sym, compiled, _ = compiled_net
    w = np.random.default_rng(6).standard_normal(sym.size)
    compiled.grad(w), compiled.hessian(w), compiled.value(w)
    files = sorted(p.name for p in cache_dir.rglob("*"))
    signatures = {name: list(getattr(compiled.module, name).signatures) for name in ("value", "grad", "hess")}

    X, y = _data("square", 3, 2, n=7, seed=9)
    other = compiled.with_data((X, y)).with_weight_decay(1.5)
    numeric = gf.Objective(gf.models.MLP([3, 2, 2], activation=QUADRATIC, bias=True), gf.Dataset(X, y), weight_decay=1.5)
    assert _relative(other.value(w), numeric.value(w)) <= RTOL
    assert _relative(other.grad(w), numeric.grad(w)) <= RTOL
    assert _relative(other.hessian(w), numeric.hessian(w)) <= RTOL
    assert other.value(w) != compiled.value(w)
    assert sorted(p.name for p in cache_dir.rglob("*")) == files
    assert {name: list(getattr(compiled.module, name).signatures) for name in signatures} == signatures
    assert other.module is compiled.module


def test_compiling_a_symbolic_data_loss_binds_the_given_data(compiled_net):
    sym, compiled, (X, y) = compiled_net
    symbolic_data = symbolic.network_loss([3, 2, 2], QUADRATIC, weight_decay=0.3, bias=True)
    bound = symbolic_data.compile(data=(X, y))
    assert bound.module is compiled.module  # same per-sample loss, same kernels
    w = np.random.default_rng(7).standard_normal(sym.size)
    assert bound.value(w) == compiled.value(w)


def test_compiled_logistic_network_matches_numeric_objective():
    X, y = _data("logistic", 3, 1)
    sym = symbolic.network_loss([3, 2, 1], data=(X, y), loss="logistic", bias=True, weight_decay=0.1)
    obj = gf.Objective(gf.models.DeepLinear([3, 2, 1], bias=True), gf.Dataset(X, y), loss="logistic", weight_decay=0.1)
    compiled = sym.compile()
    w = obj.init(seed=3, scale=0.8)
    assert _relative(compiled.value(w), obj.value(w)) <= RTOL
    assert _relative(compiled.grad(w), obj.grad(w)) <= RTOL
    assert _relative(compiled.hessian(w), obj.hessian(w)) <= RTOL


@pytest.fixture(scope="module")
def hyperbola():
    """L = (w1 w2 - 1)^2 / 2, compiled (its kernels are the ones the subprocess reloads)."""
    sym = symbolic.from_expr((W1 * W2 - 1) ** 2 / 2, [W1, W2])
    compiled = sym.compile()
    w = np.array([0.3, -1.2])
    compiled.value(w), compiled.grad(w), compiled.hessian(w), _call_kernels(compiled.rhs, compiled.jac, w, compiled.args)
    return sym, compiled


def test_a_fresh_process_loads_the_compiled_kernels_from_disk(hyperbola, cache_dir):
    _, compiled = hyperbola
    before = {p.name: p.stat().st_mtime_ns for p in cache_dir.rglob("*")}
    script = textwrap.dedent("""
        import json, numpy as np, sympy as sp
        from gradflow import symbolic
        w1, w2 = sp.symbols("w1 w2")
        c = symbolic.from_expr((w1 * w2 - 1)**2 / 2, [w1, w2]).compile()
        w = np.array([0.3, -1.2])
        value, grad, hess = c.value(w), c.grad(w), c.hessian(w)
        k = c.module
        hits = sum(sum(getattr(k, n).stats.cache_hits.values()) for n in ("value", "grad", "hess"))
        misses = sum(sum(getattr(k, n).stats.cache_misses.values()) for n in ("value", "grad", "hess"))
        print(json.dumps({"value": value, "grad": grad.tolist(), "hits": hits, "misses": misses, "path": c.source_path}))
    """)
    env = {**os.environ, "GRADFLOW_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["misses"] == 0 and report["hits"] == 3
    assert report["path"] == compiled.source_path
    assert report["value"] == compiled.value(np.array([0.3, -1.2]))
    assert {p.name: p.stat().st_mtime_ns for p in cache_dir.rglob("*")} == before


def test_generated_source_is_written_once_as_a_python_file(hyperbola, cache_dir):
    _, compiled = hyperbola
    path = Path(compiled.source_path)
    assert path.parent == cache_dir and path.suffix == ".py"
    assert "@numba.njit(cache=True" in path.read_text()
    assert not list(cache_dir.glob("*.tmp"))


# ----------------------------------------------------------------------------- exact Hessians
def test_hyperbola_critical_set_is_the_saddle_and_the_curve(hyperbola):
    sym, _ = hyperbola
    result = sym.critical_points(timeout=30)
    assert result.complete
    assert result.points == ((0, 0),)
    assert result.n_isolated == 1 and result.bezout_bound == 9
    assert len(result.components) == 1
    (equation,) = result.components[0]
    assert sp.expand(equation - (W1 * W2 - 1)) == 0 or sp.expand(equation + (W1 * W2 - 1)) == 0
    assert result.equations() in (["w1*w2 - 1 = 0"], ["-w1*w2 + 1 = 0"])
    np.testing.assert_array_equal(result.real_points, [[0.0, 0.0]])


def test_hyperbola_hessian_nullity_is_one_on_the_curve_and_zero_at_the_saddle(hyperbola):
    sym, _ = hyperbola
    on_curve = sym.hessian_at([2, sp.Rational(1, 2)])
    assert on_curve.exact and on_curve.nullity == 1 and on_curve.rank == 1
    assert on_curve.matrix == sp.Matrix([[sp.Rational(1, 4), 1], [1, 4]])
    assert sym.hessian_at([Fraction(-3, 7), Fraction(-7, 3)]).nullity == 1
    saddle = sym.hessian_at([0, 0])
    assert saddle.nullity == 0 and saddle.matrix == sp.Matrix([[0, -1], [-1, 0]])


@settings(max_examples=25, deadline=None)
@given(st.fractions(min_value=-5, max_value=5), st.fractions(min_value=-5, max_value=5))
def test_exact_hessian_is_symmetric_and_rank_plus_nullity_is_p(a, b):
    sym = symbolic.from_expr((W1 * W2 - 1) ** 2 / 2 + W1**4 / 4, [W1, W2])
    result = sym.hessian_at([a, b])
    assert result.matrix == result.matrix.T
    assert result.rank + result.nullity == 2
    assert all(entry.is_Rational for entry in result.matrix)


def test_figure_2_degenerate_quadratic_has_a_line_of_minima_with_nullity_one():
    sym = symbolic.from_expr(W1**2 / 2, [W1, W2])
    result = sym.critical_points(timeout=30)
    assert result.points == () and [tuple(c) for c in result.components] == [(W1,)]
    assert sym.hessian_at([0, 5]).nullity == 1


def test_zero_dimensional_system_gives_exact_isolated_points_within_bezout():
    sym = symbolic.from_expr((W1**2 - 1) ** 2 + (W2 - 2) ** 2, [W1, W2])
    result = sym.critical_points(timeout=30)
    assert result.complete and result.exact and result.components == ()
    assert sorted(result.points) == [(-1, 2), (0, 2), (1, 2)]
    assert result.n_isolated == 3 <= result.bezout_bound == 3


def test_two_layer_linear_net_at_zero_loss_has_nullity_p_minus_rank_of_output_jacobian():
    X = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [1.0, 1.0, 1.0], [2.0, -1.0, 0.0]])
    W1_ = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0]])
    W2_ = np.array([[2.0, -1.0]])
    y = (X @ W1_.T @ W2_.T)[:, 0]
    sym = symbolic.network_loss([3, 2, 1], data=(X, y))
    w = np.concatenate([W1_.ravel(), W2_.ravel()])
    assert sym.expr.xreplace(dict(zip(sym.symbols, map(sp.Integer, w.astype(int))))) == 0
    result = sym.hessian_at(w)
    obj = gf.Objective(gf.models.DeepLinear([3, 2, 1]), gf.Dataset(X, y))
    rank_J = np.linalg.matrix_rank(obj.output_jacobian(w))
    assert result.exact
    assert 0 < rank_J < obj.size
    assert result.nullity == obj.size - rank_J
    np.testing.assert_allclose(np.array(result.matrix, dtype=float), obj.hessian(w), rtol=0, atol=1e-13)


def test_weight_decay_makes_the_exact_hessian_nondegenerate():
    sym = symbolic.network_loss([1, 1, 1], data=([[1.0]], [1.0]), weight_decay=0.5)
    assert sym.hessian_at([1, 1]).nullity == 0


def test_critical_points_stops_at_the_time_budget_with_a_clear_message():
    X, y = _data("square", 3, 2, n=4)
    sym = symbolic.network_loss([3, 3, 2], CUBIC, data=(X, y), bias=True)
    start = time.perf_counter()
    result = sym.critical_points(timeout=1.0)
    assert time.perf_counter() - start < 6.0
    assert not result.complete and result.n_isolated is None
    assert "timeout" in result.message and "1 s" in result.message


# ----------------------------------------------------------------------------- validators
@pytest.mark.parametrize("activation", ["relu", "tanh", gf.activations.relu])
def test_non_polynomial_activation_is_refused_pointing_to_the_numeric_models(activation):
    with pytest.raises(ValueError, match=r"`activation`.*gf\.Objective\(gf\.models\.MLP"):
        symbolic.network_loss([2, 2, 1], activation)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match=r"`loss` must be one of 'square', 'logistic', 'cross_entropy'; got 'mse'"):
        symbolic.network_loss([2, 1], loss="mse")


def test_negative_weight_decay_is_refused():
    with pytest.raises(ValueError, match=r"`weight_decay` must be >= 0"):
        symbolic.network_loss([2, 1], weight_decay=-1.0)


def test_non_positive_n_samples_is_refused():
    with pytest.raises(ValueError, match=r"`n_samples` must be an integer >= 1"):
        symbolic.network_loss([2, 1], n_samples=0)


def test_bad_widths_are_refused():
    with pytest.raises(ValueError, match=r"`widths`"):
        symbolic.network_loss([2])


def test_data_whose_inputs_do_not_match_the_widths_is_refused():
    with pytest.raises(ValueError, match=r"`data` inputs X must have shape \(n, 3\) to match widths\[0\] = 3; got shape \(4, 2\)"):
        symbolic.network_loss([3, 2, 1], data=(np.zeros((4, 2)), np.zeros(4)))


def test_data_whose_targets_have_the_wrong_rows_or_columns_is_refused():
    with pytest.raises(ValueError, match=r"`data` targets Y must have one row per sample"):
        symbolic.network_loss([3, 1], data=(np.zeros((4, 3)), np.zeros(5)))
    with pytest.raises(ValueError, match=r"`data.y` has 3 columns but the network has 2 outputs"):
        symbolic.network_loss([3, 2], data=(np.zeros((4, 3)), np.zeros((4, 3))))


def test_bad_labels_are_refused_as_in_the_numeric_losses():
    with pytest.raises(ValueError, match=r"`data.y` for the 'logistic' loss must hold labels -1 and \+1"):
        symbolic.network_loss([3, 1], data=(np.zeros((2, 3)), np.array([0.0, 1.0])), loss="logistic")
    with pytest.raises(ValueError, match=r"`data.y` must hold class labels in 0..2"):
        symbolic.network_loss([3, 3], data=(np.zeros((2, 3)), np.array([0, 3])), loss="cross_entropy")


def test_data_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match=r"`data` must be a gradflow.Dataset, a pair \(X, Y\) or None"):
        symbolic.network_loss([3, 1], data="train.csv")


def test_dataset_is_accepted_as_data():
    data = gf.data.linear_teacher(n=4, n_test=0, d=3)
    sym = symbolic.network_loss([3, 1, 1], data=data)
    assert sym.size == 4 and sym.expr.free_symbols == set(sym.symbols)


def test_symbols_missing_a_free_symbol_of_the_expression_are_refused():
    with pytest.raises(ValueError, match=r"`symbols` must include every free symbol of `expr`; expected also \['w2'\]"):
        symbolic.from_expr(W1 * W2, [W1])


def test_repeated_or_non_symbol_symbols_are_refused():
    with pytest.raises(ValueError, match=r"`symbols` must be distinct"):
        symbolic.from_expr(W1**2, [W1, W1])
    with pytest.raises(TypeError, match=r"`symbols\[1\]` must be a sympy Symbol"):
        symbolic.from_expr(W1**2, [W1, "w2"])
    with pytest.raises(TypeError, match=r"`symbols` must be a sequence of sympy Symbols"):
        symbolic.from_expr(W1**2, W1)


def test_non_scalar_expression_is_refused():
    with pytest.raises(ValueError, match=r"`expr` must be a scalar sympy expression.*shape \(2, 1\)"):
        symbolic.from_expr(sp.Matrix([W1, W2]), [W1, W2])
    with pytest.raises(TypeError, match=r"`expr` must be a sympy expression"):
        symbolic.from_expr("w1**2", [W1])


def test_hessian_at_a_point_of_the_wrong_length_or_type_is_refused(hyperbola):
    sym, _ = hyperbola
    with pytest.raises(ValueError, match=r"`w` must have length P = 2; got 3 entries"):
        sym.hessian_at([1, 2, 3])
    with pytest.raises(TypeError, match=r"`w\[0\]` must be a real number"):
        sym.hessian_at(["a", 1])
    with pytest.raises(ValueError, match=r"`w\[1\]` must be finite"):
        sym.hessian_at([1, float("nan")])


def test_hessian_at_with_symbolic_data_is_refused():
    sym = symbolic.network_loss([1, 1, 1])
    with pytest.raises(ValueError, match=r"`w` fixes the weights.*numeric `data`"):
        sym.hessian_at([1, 1])


def test_critical_points_of_a_non_polynomial_loss_is_refused():
    X, y = _data("logistic", 2, 1, n=2)
    sym = symbolic.network_loss([2, 1], data=(X, y), loss="logistic")
    with pytest.raises(ValueError, match=r"critical_points needs a loss that is a polynomial"):
        sym.critical_points()


def test_non_positive_timeout_is_refused(hyperbola):
    sym, _ = hyperbola
    with pytest.raises(ValueError, match=r"`timeout` must be > 0"):
        sym.critical_points(timeout=0)


def test_compiling_symbolic_data_without_data_is_refused():
    with pytest.raises(ValueError, match=r"`data` is needed: this loss was built with data=None"):
        symbolic.network_loss([1, 1, 1]).compile()


def test_binding_data_to_a_from_expr_loss_is_refused(hyperbola):
    _, compiled = hyperbola
    with pytest.raises(ValueError, match=r"`data` cannot be given to a loss built with from_expr"):
        compiled.with_data((np.zeros((1, 1)), np.zeros(1)))


def test_compiled_objective_refuses_weights_of_the_wrong_shape(hyperbola):
    _, compiled = hyperbola
    with pytest.raises(ValueError, match=r"`w` must have shape \(2,\) or \(m, 2\) for P = 2 parameters; got shape \(3,\)"):
        compiled.grad(np.zeros(3))
    with pytest.raises(ValueError, match=r"`w` must be one parameter vector of shape \(2,\)"):
        compiled.hessian(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"`weight_decay` must be >= 0"):
        compiled.with_weight_decay(-0.1)


def test_a_singular_compiled_loss_gives_inf_and_a_diverged_flow_not_an_exception():
    # the generated kernels use IEEE arithmetic (error_model="numpy"): 1/0 is inf, log(0) is -inf
    compiled = gf.symbolic.from_expr((1 / W1 - W2) ** 2 + sp.log(W2 ** 2), [W1, W2]).compile()
    assert compiled.value(np.array([0.0, 1.0])) == np.inf
    assert compiled.value(np.array([1.0, 0.0])) == -np.inf
    assert not np.all(np.isfinite(compiled.grad(np.array([0.0, 1.0]))))
    flow = gf.GradientFlow(compiled)
    for method in ("auto", "dopri5", "bdf", "exprb32", "LSODA"):
        traj = flow.solve(np.array([0.0, 1.0]), (0, 1), method=method)
        assert traj.status == "diverged" and "non-finite" in traj.message, method
        # not even w0 is kept: a trajectory holds only points where L is finite
        assert traj.w.shape == (0, 2) and "the loss is not finite at t = 0" in traj.message, method


def test_kinks_compile_with_their_almost_everywhere_derivatives_and_other_functions_say_they_cannot():
    # Max (a ReLU) and Abs: the weights are real, so sympy differentiates them to Heaviside and sign; the DiracDelta
    # of the second derivative is 0 away from the kink
    compiled = gf.symbolic.from_expr(sp.Max(0, W1) ** 2 + sp.Abs(W2) * W1, [W1, W2]).compile()
    for w in ([1.5, -2.0], [-1.5, 0.5]):
        w1, w2 = w
        assert compiled.value(np.array(w)) == pytest.approx(max(0.0, w1) ** 2 + abs(w2) * w1, rel=RTOL)
        np.testing.assert_allclose(compiled.grad(np.array(w)), [2 * max(0.0, w1) + abs(w2), np.sign(w2) * w1], rtol=RTOL)
        np.testing.assert_allclose(compiled.hessian(np.array(w)), [[2.0 * (w1 > 0), np.sign(w2)], [np.sign(w2), 0.0]],
                                   rtol=RTOL)
    with pytest.raises(ValueError, match="cannot be compiled: .*besselj"):
        gf.symbolic.from_expr(sp.besselj(0, W1) + W2 ** 2, [W1, W2]).compile()
    with pytest.raises(ValueError, match="cannot be compiled: DiracDelta"):
        gf.symbolic.from_expr(sp.DiracDelta(W1) + W2 ** 2, [W1, W2]).compile()


def test_at_a_kink_the_compiled_derivatives_are_the_numeric_relu_models():
    # a one-unit ReLU net f = w2 relu(w1 x) on x = 1, y = 1 with w1 = 0: the unit is dead, and the numeric model's
    # gradient is 0 (relu'(0) = 0); sympy's Heaviside(0) = 1/2 would give -1/2
    relu = gf.symbolic.from_expr((W2 * sp.Max(0, W1) - 1) ** 2 / 2, [W1, W2]).compile()
    numeric = gf.Objective(gf.models.MLP([1, 1, 1], activation="relu"), gf.Dataset(np.ones((1, 1)), np.ones(1)))
    for w in ([0.0, 1.0], [0.5, 1.5], [-0.5, 2.0]):
        np.testing.assert_allclose(relu.grad(np.array(w)), numeric.grad(np.array(w)), rtol=RTOL, atol=1e-15)
        np.testing.assert_allclose(relu.hessian(np.array(w)), numeric.hessian(np.array(w)), rtol=RTOL, atol=1e-15)
    square = gf.symbolic.from_expr(sp.Max(0, W1) ** 2 + W2 ** 2, [W1, W2]).compile()
    np.testing.assert_array_equal(square.hessian(np.zeros(2)), [[0.0, 0.0], [0.0, 2.0]])


@pytest.mark.parametrize("assumptions, expr, expected", [
    ({"real": True}, lambda r: (r ** 2 + 1) ** 2, [(0,), (-sp.I,), (sp.I,)]),
    ({"positive": True}, lambda p: (p ** 2 - 1) ** 2, [(-1,), (0,), (1,)]),
])
def test_critical_points_are_every_complex_solution_whatever_the_symbols_assume(assumptions, expr, expected):
    w = sp.Symbol("w", **assumptions)
    result = symbolic.from_expr(expr(w), [w]).critical_points()
    assert result.complete and set(result.points) == set(expected)


def test_the_saddle_of_the_hyperbola_in_positive_symbols_is_still_found():
    p1, p2 = sp.symbols("p1 p2", positive=True)
    result = symbolic.from_expr((p1 * p2 - 1) ** 2 / 2, [p1, p2]).critical_points()
    assert result.points == ((0, 0),) and result.equations() == ["p1*p2 - 1 = 0"]


def test_abs_and_sign_differentiate_as_functions_of_real_weights():
    w1, w2 = sp.symbols("w1 w2")
    loss = symbolic.from_expr(sp.Abs(w1) + w2 ** 2, [w1, w2])
    assert loss.gradient() == sp.Matrix([sp.sign(w1), 2 * w2])
    assert loss.hessian_at([-0.5, 1]).rank == 1
    compiled = loss.compile()
    np.testing.assert_allclose(compiled.grad(np.array([-0.5, 1.0])), [-1.0, 2.0])


@pytest.mark.parametrize("expr, symbols, error, match", [
    (lambda w1, w2: sp.I * w1 ** 2, lambda w1, w2: [w1, w2], ValueError, "`expr` must be a real loss"),
    (lambda w1, w2: w1 + w2, lambda w1, w2: {w1, w2}, TypeError, "`symbols` must be an ordered sequence"),
    (lambda w1, w2: w1 ** 2, lambda w1, w2: [sp.IndexedBase("w")[1]], TypeError, r"`symbols\[0\]` must be a sympy Symbol"),
])
def test_from_expr_refuses_complex_losses_unordered_symbols_and_non_symbols(expr, symbols, error, match):
    w1, w2 = sp.symbols("w1 w2")
    with pytest.raises(error, match=match):
        symbolic.from_expr(expr(w1, w2), symbols(w1, w2))


def test_from_expr_takes_a_matrix_of_symbols_and_a_numpy_scalar():
    w1, w2 = sp.symbols("w1 w2")
    assert symbolic.from_expr(w1 * w2, sp.Matrix([w1, w2])).symbols == (w1, w2)
    assert symbolic.from_expr(np.array(2.0), [w1]).expr == sp.Float(2.0)
    with pytest.raises(TypeError, match="`w` must be a real array"):
        symbolic.from_expr(w1 ** 2, [w1]).compile().value(None)


@pytest.mark.parametrize("loss, widths, y, w", [
    ("logistic", [1, 1, 1], [1.0], [30.0, -30.0]),              # margin -900: exp(900) overflows
    ("logistic", [1, 1, 1], [1.0], [30.0, 30.0]),               # margin 900: the loss is e^-900, not 0 * inf
    ("cross_entropy", [1, 1, 2], [0], [30.0, 30.0, -30.0]),     # a confident, correct prediction: loss 0
    ("cross_entropy", [1, 1, 2], [1], [30.0, 30.0, -30.0]),     # a confident, wrong one: loss 1800
])
def test_compiled_logistic_and_cross_entropy_do_not_overflow_at_large_logits(loss, widths, y, w, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(tmp_path))
    X = np.array([[1.0]])
    compiled = symbolic.network_loss(widths, data=(X, np.array(y)), loss=loss).compile()
    numeric = gf.Objective(gf.models.DeepLinear(widths), gf.Dataset(X, np.array(y)), loss=loss)
    w = np.array(w)
    assert np.isfinite(compiled.value(w)) and compiled.value(w) == pytest.approx(numeric.value(w), rel=1e-12,
                                                                                 abs=1e-300)
    np.testing.assert_allclose(compiled.grad(w), numeric.grad(w), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(compiled.hessian(w), numeric.hessian(w), rtol=1e-12, atol=1e-300)


def test_the_rank_of_a_logistic_hessian_is_found_in_a_moment():
    """sympy's simplifying rank ran for minutes on these transcendental entries; 50-digit singular values do not."""
    loss = symbolic.network_loss([2, 2, 1], data=([[0.5, 1.0], [1.0, 0.2]], [1, -1]), loss="logistic")
    w = [0.3, 0.7, 0.1, -0.2, 0.5, 0.4]
    at = loss.hessian_at(w)
    assert not at.exact and at.rank == np.linalg.matrix_rank(loss.compile().hessian(np.array(w)))
    np.testing.assert_allclose(np.array(at.matrix, dtype=float), loss.compile().hessian(np.array(w)), atol=1e-14)


def test_critical_components_inside_another_are_not_listed_and_none_twice():
    w1, w2, w3, w4 = sp.symbols("w1 w2 w3 w4")
    two_products = symbolic.from_expr((w1 * w2 + w3 * w4 - 1) ** 2 / 2, [w1, w2, w3, w4]).critical_points()
    # grad L = g grad g: {g = 0} and the origin (grad g = (w2, w1, w4, w3)); sympy also listed branches of g = 0
    assert two_products.equations() == ["w1*w2 + w3*w4 - 1 = 0"] and two_products.points == ((0, 0, 0, 0),)
    triple = symbolic.from_expr((w1 * w2 * w3 - 1) ** 2 / 2, [w1, w2, w3]).critical_points()
    assert sorted(triple.equations()) == ["w1 = 0, w2 = 0", "w1 = 0, w3 = 0", "w1*w2*w3 - 1 = 0", "w2 = 0, w3 = 0"]
    net = symbolic.network_loss([1, 2, 1], data=([[1.0], [2.0]], [1.0, 3.0])).critical_points()
    assert len(net.components) == 1 and net.n_isolated == 1
