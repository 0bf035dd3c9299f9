"""Tests of gradflow.data: the Dataset container and the reference data sets."""

import array_api_strict as xps
import numpy as np
import pytest

from gradflow import _backend
from gradflow.data import DIGITS_TOTAL, Dataset, digits, linear_teacher, separable, sine

STRICT_ARRAY = type(xps.asarray(0.0))


# ---------------------------------------------------------------------------
# Dataset: construction
# ---------------------------------------------------------------------------


def test_dataset_from_lists_becomes_float64_numpy_with_properties():
    data = Dataset([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [0.5, 1.5, 2.5])
    assert isinstance(data.X, np.ndarray) and isinstance(data.y, np.ndarray)
    assert data.X.dtype == np.float64 and data.y.dtype == np.float64
    assert (data.n, data.d, data.outputs, data.n_test) == (3, 2, 1, 0)
    assert not data.has_test and data.X_test is None and data.y_test is None
    assert _backend.is_numpy(data.xp)
    assert dict(data.info) == {}


def test_dataset_keeps_integer_labels_as_int64():
    data = Dataset(np.zeros((4, 2)), np.array([0, 1, 2, 1], dtype=np.int32))
    assert data.y.dtype == np.int64
    np.testing.assert_array_equal(data.y, [0, 1, 2, 1])


def test_dataset_converts_integer_inputs_to_float64():
    data = Dataset(np.arange(6).reshape(3, 2), [1.0, 2.0, 3.0])
    assert data.X.dtype == np.float64


def test_dataset_accepts_two_dimensional_targets():
    data = Dataset(np.zeros((5, 3)), np.ones((5, 2)), np.zeros((4, 3)), np.ones((4, 2)))
    assert data.outputs == 2 and data.n_test == 4 and data.has_test
    assert data.y_test.shape == (4, 2)


def test_dataset_with_real_targets_turns_integer_test_targets_to_float64():
    data = Dataset(np.zeros((2, 1)), [0.5, 1.0], np.zeros((3, 1)), np.array([1, 2, 3]))
    assert data.y_test.dtype == np.float64


def test_dataset_repr_is_short():
    data = Dataset(np.zeros((9, 1)), np.zeros(9), np.zeros((100, 1)), np.zeros(100))
    assert repr(data) == "Dataset(n=9, d=1, outputs=1, n_test=100)"


def test_dataset_is_frozen_and_info_read_only():
    data = Dataset(np.zeros((2, 1)), np.zeros(2), info={"a": 1})
    with pytest.raises(AttributeError):
        data.X = np.ones((2, 1))
    with pytest.raises(TypeError):
        data.info["a"] = 2
    assert data.info["a"] == 1


def test_dataset_info_is_a_copy_of_the_callers_dict():
    meta = {"a": 1}
    data = Dataset(np.zeros((2, 1)), np.zeros(2), info=meta)
    meta["a"] = 2
    assert data.info["a"] == 1


def test_dataset_of_array_api_strict_arrays_stays_array_api_strict():
    X = xps.asarray([[0.0], [1.0], [2.0]])
    data = Dataset(X, xps.asarray([0, 1, 1]), xps.asarray([[0.5]]), xps.asarray([1]))
    assert data.xp is xps
    for arr in (data.X, data.y, data.X_test, data.y_test):
        assert isinstance(arr, STRICT_ARRAY)
    assert data.X.dtype == xps.float64 and data.y.dtype == xps.int64 and data.y_test.dtype == xps.int64


def test_dataset_mixing_array_api_strict_with_lists_takes_the_array_library():
    data = Dataset(xps.asarray([[0.0], [1.0]]), [1.0, 2.0])
    assert isinstance(data.y, STRICT_ARRAY) and data.y.dtype == xps.float64


# ---------------------------------------------------------------------------
# Dataset: validation
# ---------------------------------------------------------------------------


def test_one_dimensional_X_is_refused_with_reshape_advice():
    with pytest.raises(ValueError, match=r"`X` must be 2-D.*reshape it to \(n, 1\)"):
        Dataset(np.zeros(3), np.zeros(3))


def test_three_dimensional_X_is_refused():
    with pytest.raises(ValueError, match=r"`X` must be 2-D"):
        Dataset(np.zeros((3, 1, 1)), np.zeros(3))


def test_empty_X_is_refused():
    with pytest.raises(ValueError, match=r"`X` must have at least one row and one column"):
        Dataset(np.zeros((0, 2)), np.zeros(0))


def test_row_mismatch_between_X_and_y_is_refused():
    with pytest.raises(ValueError, match=r"`y` must have one row per row of `X` \(3\).*shape \(4,\)"):
        Dataset(np.zeros((3, 2)), np.zeros(4))


def test_three_dimensional_y_is_refused():
    with pytest.raises(ValueError, match=r"`y` must be 1-D \(n,\) or 2-D \(n, k\)"):
        Dataset(np.zeros((3, 2)), np.zeros((3, 1, 1)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_X_is_refused(bad):
    X = np.zeros((3, 2))
    X[1, 1] = bad
    with pytest.raises(ValueError, match=r"`X` must contain only finite numbers"):
        Dataset(X, np.zeros(3))


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_non_finite_y_is_refused(bad):
    with pytest.raises(ValueError, match=r"`y` must contain only finite numbers"):
        Dataset(np.zeros((3, 2)), np.array([0.0, bad, 1.0]))


def test_non_finite_test_inputs_are_refused():
    with pytest.raises(ValueError, match=r"`X_test` must contain only finite numbers"):
        Dataset(np.zeros((2, 1)), np.zeros(2), np.array([[np.inf]]), np.zeros(1))


def test_non_finite_array_api_strict_X_is_refused():
    with pytest.raises(ValueError, match=r"`X` must contain only finite numbers"):
        Dataset(xps.asarray([[0.0], [float("nan")]]), xps.asarray([1.0, 2.0]))


def test_X_test_without_y_test_is_refused():
    with pytest.raises(ValueError, match=r"`X_test` and `y_test` must be given both or neither.*Pass `y_test`"):
        Dataset(np.zeros((2, 1)), np.zeros(2), X_test=np.zeros((3, 1)))


def test_y_test_without_X_test_is_refused():
    with pytest.raises(ValueError, match=r"given both or neither; got `y_test` without `X_test`"):
        Dataset(np.zeros((2, 1)), np.zeros(2), y_test=np.zeros(3))


def test_X_test_with_other_number_of_columns_is_refused():
    with pytest.raises(ValueError, match=r"`X_test` must have the same number of columns as `X` \(2\)"):
        Dataset(np.zeros((2, 2)), np.zeros(2), np.zeros((3, 5)), np.zeros(3))


def test_y_test_row_mismatch_with_X_test_is_refused():
    with pytest.raises(ValueError, match=r"`y_test` must have one row per row of `X_test` \(3\)"):
        Dataset(np.zeros((2, 2)), np.zeros(2), np.zeros((3, 2)), np.zeros(4))


def test_y_test_with_other_trailing_shape_than_y_is_refused():
    with pytest.raises(ValueError, match=r"`y_test` must have the shape of `y` apart from its rows, \(n_test, 2\)"):
        Dataset(np.zeros((2, 1)), np.zeros((2, 2)), np.zeros((3, 1)), np.zeros(3))


def test_real_y_test_for_integer_labels_is_refused():
    with pytest.raises(TypeError, match=r"`y_test` must hold integer class labels like `y`"):
        Dataset(np.zeros((2, 1)), np.array([0, 1]), np.zeros((1, 1)), np.array([0.5]))


def test_bool_labels_are_refused():
    with pytest.raises(TypeError, match=r"`y` must hold numbers, not booleans.*astype\(int\)"):
        Dataset(np.zeros((2, 1)), np.array([True, False]))


def test_bool_test_labels_are_refused():
    with pytest.raises(TypeError, match=r"`y_test` must hold numbers, not booleans"):
        Dataset(np.zeros((2, 1)), np.array([0, 1]), np.zeros((1, 1)), np.array([True]))


def test_complex_X_is_refused():
    with pytest.raises(TypeError, match=r"`X` must hold real numbers"):
        Dataset(np.zeros((2, 1), dtype=complex), np.zeros(2))


def test_string_targets_are_refused():
    with pytest.raises(TypeError, match=r"`y` must hold integer class labels or real targets"):
        Dataset(np.zeros((2, 1)), np.array(["a", "b"]))


def test_arrays_from_different_libraries_are_refused():
    with pytest.raises(TypeError, match=r"different libraries"):
        Dataset(xps.asarray([[0.0], [1.0]]), np.zeros(2))


def test_non_mapping_info_is_refused():
    with pytest.raises(TypeError, match=r"`info` must be a mapping"):
        Dataset(np.zeros((2, 1)), np.zeros(2), info=[("a", 1)])


# ---------------------------------------------------------------------------
# sine
# ---------------------------------------------------------------------------


def test_sine_default_shapes_match_figure_4():
    data = sine()
    assert data.X.shape == (9, 1) and data.y.shape == (9,)
    assert data.X_test.shape == (100, 1) and data.y_test.shape == (100,)
    assert data.info["frequency"] == 4 and data.info["nodes"] == "chebyshev"
    assert data.info["target"] == "sin(2*pi*f*x)"


def test_sine_chebyshev_nodes_are_the_chebyshev_gauss_nodes_sorted():
    n = 9
    data = sine(n_train=n)
    k = np.arange(1, n + 1)
    expected = np.sort(np.cos((2 * k - 1) * np.pi / (2 * n)))
    np.testing.assert_allclose(data.X[:, 0], expected, rtol=0, atol=1e-15)
    assert np.all(np.diff(data.X[:, 0]) > 0)


@pytest.mark.parametrize("nodes", ["chebyshev", "uniform", "random"])
def test_sine_targets_equal_sin_two_pi_f_x(nodes):
    data = sine(n_train=13, n_test=50, frequency=2.5, nodes=nodes, seed=3)
    np.testing.assert_allclose(data.y, np.sin(2 * np.pi * 2.5 * data.X[:, 0]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(data.y_test, np.sin(2 * np.pi * 2.5 * data.X_test[:, 0]), rtol=0, atol=1e-15)


def test_sine_uniform_nodes_and_test_points_are_linspace():
    data = sine(n_train=5, n_test=7, nodes="uniform")
    np.testing.assert_array_equal(data.X[:, 0], np.linspace(-1, 1, 5))
    np.testing.assert_array_equal(data.X_test[:, 0], np.linspace(-1, 1, 7))


def test_sine_random_nodes_are_sorted_in_the_interval_and_reproducible():
    a = sine(n_train=20, nodes="random", seed=7)
    b = sine(n_train=20, nodes="random", seed=7)
    c = sine(n_train=20, nodes="random", seed=8)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    assert np.all(np.diff(a.X[:, 0]) >= 0) and np.all(np.abs(a.X) <= 1)


def test_sine_noise_perturbs_training_targets_only_and_is_seeded():
    clean = sine(noise=0.0)
    noisy = sine(noise=0.3, seed=1)
    again = sine(noise=0.3, seed=1)
    assert not np.allclose(noisy.y, clean.y)
    np.testing.assert_array_equal(noisy.y, again.y)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)


def test_sine_zero_test_points_means_no_test_set():
    data = sine(n_test=0)
    assert not data.has_test and data.n_test == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_train": 0}, ValueError, r"`n_train` must be an integer >= 1"),
        ({"n_train": 2.0}, TypeError, r"`n_train` must be an integer"),
        ({"n_test": -1}, ValueError, r"`n_test` must be an integer >= 0"),
        ({"frequency": -1.0}, ValueError, r"`frequency` must be >= 0"),
        ({"frequency": float("nan")}, ValueError, r"`frequency` must be finite"),
        ({"frequency": None}, TypeError, r"`frequency` must be a real number"),
        ({"nodes": "gauss"}, ValueError, r"`nodes` must be one of 'chebyshev', 'uniform', 'random'"),
        ({"nodes": 1}, TypeError, r"`nodes` must be a string"),
        ({"seed": -1}, ValueError, r"`seed` must be a non-negative integer"),
        ({"seed": 1.5}, TypeError, r"`seed` must be an integer"),
        ({"noise": -0.1}, ValueError, r"`noise` must be >= 0"),
    ],
)
def test_sine_validates_its_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        sine(**kwargs)


# ---------------------------------------------------------------------------
# linear_teacher
# ---------------------------------------------------------------------------


def test_linear_teacher_default_shapes_match_figure_8():
    data = linear_teacher()
    assert data.X.shape == (30, 31) and data.y.shape == (30,)
    assert data.X_test.shape == (32, 31) and data.y_test.shape == (32,)
    W1, W2 = data.info["teacher"]
    assert W1.shape == (1, 31) and W2.shape == (1, 1)
    assert W1.size + W2.size == 32
    assert data.info["bias"] is True


def test_linear_teacher_last_column_is_ones_with_bias():
    data = linear_teacher()
    np.testing.assert_array_equal(data.X[:, -1], 1.0)
    np.testing.assert_array_equal(data.X_test[:, -1], 1.0)


def test_linear_teacher_without_bias_has_no_constant_column():
    data = linear_teacher(n=10, d=4, bias=False)
    assert not np.any(np.all(data.X == 1.0, axis=0))


def test_linear_teacher_targets_are_the_teacher_output():
    data = linear_teacher(hidden=3)
    W1, W2 = data.info["teacher"]
    np.testing.assert_allclose(data.y, (W2 @ W1 @ data.X.T)[0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(data.y_test, (W2 @ W1 @ data.X_test.T)[0], rtol=1e-13, atol=1e-13)


def test_linear_teacher_is_rank_one_linear_map_fitting_the_data_exactly():
    data = linear_teacher()
    W1, W2 = data.info["teacher"]
    beta = (W2 @ W1)[0]
    assert np.linalg.matrix_rank(W2 @ W1) == 1
    np.testing.assert_allclose(data.X @ beta, data.y, rtol=1e-13, atol=1e-13)
    # the (n, d+1) matrix [X | y] has the rank of X: y is in the span of X's columns
    assert np.linalg.matrix_rank(np.column_stack([data.X, data.y])) == np.linalg.matrix_rank(data.X)


def test_linear_teacher_is_reproducible_and_teacher_does_not_depend_on_n():
    a, b, c = linear_teacher(seed=4), linear_teacher(seed=4), linear_teacher(n=5, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.info["teacher"][0], c.info["teacher"][0])
    assert not np.array_equal(a.X, linear_teacher(seed=5).X)


def test_linear_teacher_weights_are_read_only():
    W1, _ = linear_teacher().info["teacher"]
    with pytest.raises(ValueError):
        W1[0, 0] = 0.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n": 0}, ValueError, r"`n` must be an integer >= 1"),
        ({"n_test": -2}, ValueError, r"`n_test` must be an integer >= 0"),
        ({"d": 0}, ValueError, r"`d` must be an integer >= 1"),
        ({"hidden": 0}, ValueError, r"`hidden` must be an integer >= 1"),
        ({"bias": 1}, TypeError, r"`bias` must be True or False"),
        ({"seed": "0"}, TypeError, r"`seed` must be an integer"),
    ],
)
def test_linear_teacher_validates_its_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        linear_teacher(**kwargs)


# ---------------------------------------------------------------------------
# separable
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d, margin, seed", [(2, 0.1, 0), (1, 0.5, 1), (10, 2.0, 2)])
def test_separable_training_margin_along_direction_equals_margin(d, margin, seed):
    data = separable(d=d, margin=margin, seed=seed)
    u = data.info["direction"]
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-15)
    assert np.min(data.y * (data.X @ u)) == pytest.approx(margin, abs=1e-12)
    assert data.info["margin"] == margin


def test_separable_test_set_is_separated_by_at_least_the_margin():
    data = separable(margin=0.3, seed=5)
    u = data.info["direction"]
    assert np.min(data.y_test * (data.X_test @ u)) >= 0.3 - 1e-12


@pytest.mark.parametrize("n", [40, 41])
def test_separable_labels_are_plus_minus_one_and_balanced(n):
    data = separable(n=n, n_test=11)
    assert data.y.dtype == np.float64
    assert set(np.unique(data.y)) == {-1.0, 1.0}
    assert abs(np.sum(data.y == 1.0) - np.sum(data.y == -1.0)) <= 1
    assert abs(np.sum(data.y_test == 1.0) - np.sum(data.y_test == -1.0)) <= 1


def test_separable_shapes_and_reproducibility():
    a, b = separable(n=12, n_test=7, d=3, seed=9), separable(n=12, n_test=7, d=3, seed=9)
    assert a.X.shape == (12, 3) and a.X_test.shape == (7, 3)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.info["direction"], b.info["direction"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"margin": 0.0}, ValueError, r"`margin` must be > 0"),
        ({"margin": -1.0}, ValueError, r"`margin` must be > 0"),
        ({"margin": None}, TypeError, r"`margin` must be a real number"),
        ({"n": 1}, ValueError, r"`n` must be an integer >= 2"),
        ({"d": 0}, ValueError, r"`d` must be an integer >= 1"),
        ({"n_test": -1}, ValueError, r"`n_test` must be an integer >= 0"),
        ({"seed": -3}, ValueError, r"`seed` must be a non-negative integer"),
    ],
)
def test_separable_validates_its_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        separable(**kwargs)


# ---------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------


def test_digits_shapes_range_and_labels():
    data = digits(n_train=1000)
    assert data.X.shape == (1000, 64) and data.y.shape == (1000,)
    assert data.X_test.shape == (DIGITS_TOTAL - 1000, 64)
    assert data.X.min() >= 0.0 and data.X.max() <= 1.0 and data.X.max() == 1.0
    assert data.y.dtype == np.int64 and set(np.unique(data.y)) == set(range(10))
    assert data.info["source"] == "sklearn.datasets.load_digits"


def test_digits_explicit_test_size_and_no_test_set():
    assert digits(n_train=100, n_test=50).n_test == 50
    assert not digits(n_train=100, n_test=0).has_test
    assert not digits(n_train=DIGITS_TOTAL).has_test


def test_digits_pixels_are_sklearn_pixels_over_sixteen():
    from sklearn.datasets import load_digits

    data = digits(n_train=DIGITS_TOTAL)
    pixels = load_digits().data
    # the shuffled rows are a permutation of the original rows, scaled by 1/16
    key = lambda rows: sorted(map(tuple, np.round(rows, 12)))  # noqa: E731
    assert key(data.X) == key(pixels / 16.0)


def test_digits_random_labels_scramble_training_labels_only():
    clean = digits(n_train=500, n_test=300, seed=2)
    scrambled = digits(n_train=500, n_test=300, random_labels=True, seed=2)
    assert scrambled.info["random_labels"] is True
    np.testing.assert_array_equal(scrambled.X, clean.X)
    assert np.mean(scrambled.y != clean.y) > 0.5
    np.testing.assert_array_equal(np.sort(scrambled.y), np.sort(clean.y))
    np.testing.assert_array_equal(scrambled.y_test, clean.y_test)
    np.testing.assert_array_equal(scrambled.X_test, clean.X_test)


def test_digits_seed_changes_the_shuffle_reproducibly():
    a, b, c = (digits(n_train=50, n_test=10, seed=s) for s in (1, 1, 3))
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_train": 1000, "n_test": 800}, ValueError, r"at most 1797.*got 1000 \+ 800 = 1800"),
        ({"n_train": 0}, ValueError, r"`n_train` must be an integer >= 1"),
        ({"n_train": 1798}, ValueError, r"`n_train` must be an integer <= 1797"),
        ({"n_test": -1}, ValueError, r"`n_test` must be an integer >= 0"),
        ({"n_test": 1.5}, TypeError, r"`n_test` must be an integer"),
        ({"random_labels": "yes"}, TypeError, r"`random_labels` must be True or False"),
        ({"seed": -1}, ValueError, r"`seed` must be a non-negative integer"),
    ],
)
def test_digits_validates_its_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        digits(**kwargs)



def test_a_dataset_and_an_objective_survive_pickling_and_deep_copies():
    import copy
    import pickle

    import gradflow as gf

    data = sine()
    again = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(again.X, data.X)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    assert dict(again.info) == dict(data.info)
    obj = gf.Objective(gf.models.MLP([1, 3, 1], activation="tanh"), data, weight_decay=0.1)
    w = obj.init(seed=0)
    for copied in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
        assert copied.value(w) == obj.value(w) and copied.weight_decay == 0.1
