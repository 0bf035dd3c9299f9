"""The ``dynamics`` experiment: Section 4's checks on the 2-parameter net and the Figure 8 net with weight decay."""

import json

import numpy as np
import pytest

import gradflow as gf
from gradflow.experiments import dynamics as experiment


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("dynamics")
    return gf.experiments.run("dynamics", size="quick", seed=0, out=out), out


def test_dynamics_is_registered_and_writes_a_complete_result(result):
    res, out = result
    assert "dynamics" in [e.name for e in gf.experiments.list_experiments()]
    record = json.loads((out / "dynamics" / "result.json").read_text())
    assert record["size"] == "quick" and (out / "dynamics" / "dynamics.png").stat().st_size > 10_000
    assert [c.verdict for c in res.claims] == ["holds", "holds", "holds", "does not hold"]


def test_hartman_grobman_holds_at_the_saddle_and_the_weight_decayed_sink(result):
    m = result[0].measurements
    assert m["saddle"]["kind"] == "saddle" and m["sink_weight_decay"]["kind"] == "sink"
    np.testing.assert_allclose(m["sink_weight_decay"]["eigenvalues"], [-1.6, -0.4], rtol=1e-9)   # -2(1 - gamma), -2 gamma
    assert m["sink_weight_decay"]["curve_slope"] == pytest.approx(1.0, abs=0.1)


def test_the_minima_are_a_flat_center_manifold_on_the_hyperbola_attracting_at_rate_two(result):
    m = result[0].measurements
    assert m["minimum"]["kind"] == "non-hyperbolic" and m["minimum"]["reduced_field"] == ["0"]
    assert m["minimum"]["hyperbola_error"] < 1e-6                  # order-4 series: O(0.1^5)
    assert m["attraction"]["rate"] == pytest.approx(2.0, rel=1e-2) and m["attraction"]["predicted_rate"] == 2.0


def test_weight_decay_leaves_the_rotation_degeneracy_of_the_figure_8_net(result):
    m = result[0].measurements["figure8_weight_decay"]
    assert m["nullity"] == 1 and m["kind"] == "non-hyperbolic"
    assert m["rotation_overlap"] == pytest.approx(1.0, abs=1e-6)   # the null vector is the hidden-unit rotation
    assert m["nonzero_min"] >= experiment.FIG8_WEIGHT_DECAY * 0.99  # the rest is lifted by at least gamma
