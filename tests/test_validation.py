"""Bad input gets a clear error at the public entry point: the parameter named, what was expected, the fix."""

import os

import numpy as np
import pytest

import gradflow as gf

X = np.random.default_rng(0).standard_normal((6, 3))
Y = np.random.default_rng(1).standard_normal(6)


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ValueError, match=r"`loss` must be one of 'square', 'logistic', 'cross_entropy'; got 'mse'"):
        gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y), loss="mse")


def test_loss_of_a_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="`loss` must be a string"):
        gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y), loss=2)


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match=r"`activation` must be one of 'linear', 'relu', 'tanh'.*got 'sigmoid'"):
        gf.models.MLP([3, 2, 1], activation="sigmoid")


def test_activation_of_a_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="`activation` must be a name"):
        gf.models.MLP([3, 2, 1], activation=np.tanh)


@pytest.mark.parametrize("widths, error, match", [
    ([3], ValueError, "at least an input and an output width"),
    ([3, 0, 1], ValueError, r"`widths\[1\]` must be an integer >= 1; got 0"),
    ([3, 2.5, 1], TypeError, r"`widths\[1\]` must be an integer"),
    ("31", TypeError, "`widths` must be a sequence"),
])
def test_bad_widths_are_refused(widths, error, match):
    with pytest.raises(error, match=match):
        gf.models.DeepLinear(widths)


def test_widths_that_do_not_match_the_data_dimension_are_refused():
    with pytest.raises(ValueError, match=r"`data.X` has shape \(6, 3\) but the model takes 5 inputs.*widths\[0\] equal to the data's dimension 3"):
        gf.Objective(gf.models.DeepLinear([5, 2, 1]), gf.Dataset(X, Y))


def test_square_loss_needs_as_many_outputs_as_target_columns():
    with pytest.raises(ValueError, match=r"`data.y` is 1-D.*the network has 2"):
        gf.Objective(gf.models.DeepLinear([3, 2]), gf.Dataset(X, Y))
    with pytest.raises(ValueError, match="`data.y` has 3 columns but the network has 2 outputs"):
        gf.Objective(gf.models.DeepLinear([3, 2]), gf.Dataset(X, np.ones((6, 3))))


def test_logistic_refuses_zero_one_labels():
    with pytest.raises(ValueError, match=r"`data.y` for the 'logistic' loss must hold labels -1 and \+1.*2\*y - 1"):
        gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, np.array([0.0, 1.0] * 3)), loss="logistic")


def test_logistic_needs_one_output():
    with pytest.raises(ValueError, match="'logistic' loss needs a network with 1 output; this one has 2"):
        gf.Objective(gf.models.DeepLinear([3, 2]), gf.Dataset(X, np.array([1.0, -1.0] * 3)), loss="logistic")


def test_cross_entropy_refuses_real_labels_and_labels_out_of_range():
    with pytest.raises(ValueError, match="must be integer class labels"):
        gf.Objective(gf.models.DeepLinear([3, 3]), gf.Dataset(X, np.array([0.0, 1, 2, 0, 1, 2])), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"class labels in 0\.\.2.*got labels from 0 to 5"):
        gf.Objective(gf.models.DeepLinear([3, 3]), gf.Dataset(X, np.arange(6)), loss="cross_entropy")
    with pytest.raises(ValueError, match="k >= 2 outputs"):
        gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, np.arange(6) % 2), loss="cross_entropy")


def test_negative_weight_decay_is_refused():
    with pytest.raises(ValueError, match="`weight_decay` must be >= 0.0; got -0.1"):
        gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y), weight_decay=-0.1)


def test_model_and_data_of_wrong_types_are_refused():
    with pytest.raises(TypeError, match="`model` must be a gradflow model"):
        gf.Objective("DeepLinear", gf.Dataset(X, Y))
    with pytest.raises(TypeError, match=r"`data` must be a gradflow.Dataset, e.g. gf.Dataset\(X, y\)"):
        gf.Objective(gf.models.DeepLinear([3, 1]), (X, Y))


@pytest.mark.parametrize("w", [np.zeros(4), np.zeros((2, 2, 3)), np.zeros((3, 1))])
def test_parameter_vectors_of_the_wrong_shape_are_refused(w):
    obj = gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y))
    with pytest.raises(ValueError, match=r"`w` must have shape \(3,\) or \(m, 3\)"):
        obj.grad(w)


def test_a_direction_of_the_wrong_length_names_v():
    obj = gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y))
    with pytest.raises(ValueError, match=r"`v` must have shape \(3,\)"):
        obj.hvp(np.zeros(3), np.zeros(5))


def test_weights_from_another_array_library_are_refused():
    xps = pytest.importorskip("array_api_strict")
    obj = gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y))
    with pytest.raises(TypeError, match="`w` comes from a different array library"):
        obj.value(xps.asarray([0.0, 0.0, 0.0]))


def test_hessian_needs_a_single_parameter_vector():
    obj = gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y))
    with pytest.raises(ValueError, match="one parameter vector"):
        obj.hessian(np.zeros((2, 3)))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"seed": -1}, ValueError, "`seed` must be a non-negative integer"),
    ({"scale": -1.0}, ValueError, "`scale` must be >= 0.0"),
    ({"scale": "big"}, TypeError, "`scale` must be a real number"),
    ({"in_data_span": 1}, TypeError, "`in_data_span` must be True or False"),
])
def test_init_validates_its_arguments(kwargs, error, match):
    obj = gf.Objective(gf.models.DeepLinear([3, 1]), gf.Dataset(X, Y))
    with pytest.raises(error, match=match):
        obj.init(**kwargs)


def test_feature_regression_with_a_plain_callable_needs_n_features():
    with pytest.raises(TypeError, match="`n_features` is required when `features` is a plain callable"):
        gf.models.FeatureRegression(lambda X: X)
    with pytest.raises(TypeError, match="`features` must be a feature map"):
        gf.models.FeatureRegression(30)


def test_feature_regression_with_a_plain_callable_checks_its_output_width():
    model = gf.models.FeatureRegression(lambda X: np.hstack([X, X ** 2]), n_features=3)
    with pytest.raises(ValueError, match=r"the features of `data.X` have shape \(6, 2\); the model expects \(6, 3\)"):
        gf.Objective(model, gf.Dataset(X[:, :1], Y))


@pytest.mark.parametrize("coeffs, error, match", [
    ([], ValueError, "non-empty"),
    ([1.0, np.nan], ValueError, "finite"),
    ("12", TypeError, "sequence of real numbers"),
    ([[1.0, 2.0]], ValueError, "1-D"),
])
def test_polynomial_activation_validates_its_coefficients(coeffs, error, match):
    with pytest.raises(error, match=match):
        gf.activations.Polynomial(coeffs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"interval": (0.0, 1.0)}, ValueError, "a < 0 < b"),
    ({"interval": 2.0}, TypeError, "`interval` must be a pair"),
    ({"degree": 0}, ValueError, "`degree` must be an integer >= 1"),
])
def test_relu_polynomial_validates_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gf.activations.relu_polynomial(**kwargs)


def test_flatten_checks_the_layer_shapes():
    model = gf.models.DeepLinear([3, 2, 1])
    with pytest.raises(ValueError, match=r"`arrays` must hold 2 arrays"):
        model.flatten([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"`arrays\[1\]` must have shape \(1, 2\)"):
        model.flatten([np.zeros((2, 3)), np.zeros((2, 1))])


def test_check_dense_fits_compares_the_dense_matrices_with_half_the_memory(monkeypatch):
    from gradflow import _validation

    memory = _validation.physical_memory()                                          # what this process may use, in bytes
    assert memory is None or memory > 2**28                                         # (None: the platform does not say)
    monkeypatch.setattr(_validation, "physical_memory", lambda: 2 * 2**30)          # 2 GiB
    # 4 matrices of 8 P^2 bytes: P = 8,192 takes exactly 2 GiB, P = 5,792 just under 1 GiB
    _validation.check_dense_fits(5792, 4, "work", "fix it")
    assert _validation.dense_fits(5792, 4) and not _validation.dense_fits(5793, 4)
    with pytest.raises(ValueError, match=r"^work holds dense P x P matrices.*about 1.0 GiB for P = 5,793.*"
                                         r"2.0 GiB this process may use\. fix"):
        _validation.check_dense_fits(5793, 4, "work", "fix it")
    with pytest.raises(ValueError, match=r"about 2.0 GiB for P = 4,096"):
        _validation.check_dense_fits(4096, 4, "work", "fix it", copies=4)
    with pytest.raises(ValueError, match=r"about 1.5 GiB for P = 8,192"):
        _validation.check_dense_fits(8192, 3, "work", "fix it")
    monkeypatch.setattr(_validation, "physical_memory", lambda: None)               # the platform does not say
    _validation.check_dense_fits(10**7, 4, "work", "fix it")
    assert _validation.dense_fits(10**7, 4)


def test_the_memory_a_process_may_use_is_the_smallest_of_the_machine_and_its_control_group(monkeypatch, tmp_path):
    from gradflow import _validation

    resource = pytest.importorskip("resource")
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(_validation, "CGROUP_MEMORY_LIMITS", (str(v2), str(v1)))
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def memory():
        _validation.physical_memory.cache_clear()
        return _validation.physical_memory()

    try:
        assert memory() == machine                                                  # no control group files
        v2.write_text("max\n")
        v1.write_text("9223372036854771712\n")                                      # v1's "no limit"
        assert memory() == machine
        v1.write_text(f"{2**30}\n")                                                 # a 1 GiB container
        assert memory() == 2**30
        with pytest.raises(ValueError, match=r"about 1.0 GiB for P = 5,793, more than half of the 1.0 GiB this "
                                             r"process may use"):
            _validation.check_dense_fits(5793, 4, "work", "fix it")
        monkeypatch.setattr(resource, "getrlimit", lambda which: (2**29, resource.RLIM_INFINITY))
        assert memory() == 2**29                                                     # an address-space limit
    finally:
        _validation.physical_memory.cache_clear()
