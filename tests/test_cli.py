"""The ``gradflow`` command line and the runner behind it, end to end in temporary folders."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow.cli import main
from gradflow.experiments import REGISTRY, Claim, Experiment, ExperimentFailure, ExperimentResult
from gradflow._verdict import DOES_NOT_HOLD, HOLDS

REGRESSION = ("fig2", "fig4", "fig13", "fig15", "fig16")


# ----------------------------------------------------------------------------- fake experiments
def _ok_run(size, seed, out_dir):
    (out_dir / "plot.png").write_bytes(b"not really a png")
    return ExperimentResult("fake_ok", "A fake experiment", size, seed, {"steps": 3}, {"value": 1.5},
                            (Claim("Figure 0", "a claim", HOLDS, "measured 1.5"),
                             Claim("Figure 0", "another", DOES_NOT_HOLD, "measured 2")),
                            ("plot.png",), {"curve": np.arange(3.0)}, "a note")


def _broken_run(size, seed, out_dir):
    (out_dir / "half.png").write_bytes(b"half")
    raise ValueError("boom: the experiment broke\nsecond line of the message")


def _interrupted_run(size, seed, out_dir):
    (out_dir / "half.png").write_bytes(b"half")
    raise KeyboardInterrupt


@pytest.fixture
def fakes(monkeypatch):
    for name, run in [("fake_ok", _ok_run), ("fake_broken", _broken_run), ("fake_interrupted", _interrupted_run)]:
        monkeypatch.setitem(REGISTRY, name, Experiment(name, f"title of {name}", "Figure 0", run))


def leftovers(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------- list, version, help
def test_list_prints_every_experiment_with_its_source(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in REGISTRY:
        assert name in text
    assert "Figure 4" in text and "Perturbation" in text


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and gf.__version__ in capsys.readouterr().out
    assert main([]) == 0 and "reproduce" in capsys.readouterr().out


def test_list_experiments_is_in_natural_order_and_includes_the_regression_ones():
    names = [e.name for e in gf.experiments.list_experiments()]
    assert set(REGRESSION) <= set(names)
    assert names.index("fig2") < names.index("fig4") < names.index("fig13") < names.index("fig15") < names.index("fig16")


# ----------------------------------------------------------------------------- reproduce, end to end
def test_reproduce_fig2_writes_the_experiment_folder_and_the_report(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["reproduce", "fig2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "fig2" in captured.out and "holds" in captured.out
    assert "fig2 (1/1) started" in captured.err and "finished in" in captured.err
    record = json.loads((out / "fig2" / "result.json").read_text())
    assert record["name"] == "fig2" and record["size"] == "quick" and record["seed"] == 0
    assert record["verdict"] == HOLDS and all(c["verdict"] == HOLDS for c in record["claims"])
    assert (out / "fig2" / "fig2.png").stat().st_size > 1000
    with np.load(out / "fig2" / "data.npz") as data:
        assert "starts" in data.files
    report = json.loads((out / "report.json").read_text())
    assert report["summary"] == {"fig2": HOLDS}
    markdown = (out / "report.md").read_text()
    assert "| [fig2](#fig2) | Figure 2; Sections 4.1, 4.2 | **holds** | 3 / 0 / 0 |" in markdown
    assert "![fig2: fig2.png](fig2/fig2.png)" in markdown and "### What was run" in markdown
    assert "> A quadratic loss in two parameters" in markdown
    assert leftovers(out) == []


def test_rerun_skips_complete_experiments_unless_forced_or_the_seed_differs(tmp_path, capsys, fakes):
    out = tmp_path / "r"
    assert main(["reproduce", "fake_ok", "--out", str(out)]) == 0
    marker = out / "fake_ok" / "result.json"
    first = marker.read_text()
    capsys.readouterr()
    assert main(["reproduce", "fake_ok", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "--force" in err and marker.read_text() == first
    assert main(["reproduce", "fake_ok", "--out", str(out), "--force"]) == 0
    assert "finished in" in capsys.readouterr().err
    assert main(["reproduce", "fake_ok", "--out", str(out), "--seed", "3"]) == 0
    assert "finished in" in capsys.readouterr().err
    assert json.loads(marker.read_text())["seed"] == 3
    assert leftovers(out) == []


def _other_run(size, seed, out_dir):
    return ExperimentResult("fake_other", "Another fake", size, seed, {}, {},
                            (Claim("Figure 0", "a third claim", HOLDS, "measured 3"),))


def test_the_report_covers_earlier_complete_results_of_the_same_size_and_seed(tmp_path, capsys, fakes, monkeypatch):
    monkeypatch.setitem(REGISTRY, "fake_other", Experiment("fake_other", "Another fake", "Figure 0", _other_run))
    out = tmp_path / "r"
    assert main(["reproduce", "fake_ok", "--out", str(out)]) == 0
    assert main(["reproduce", "fake_other", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [e["name"] for e in report["experiments"]] == ["fake_ok", "fake_other"]
    assert main(["reproduce", "fake_other", "--out", str(out), "--seed", "1"]) == 0     # another seed: its own report
    assert [e["name"] for e in json.loads((out / "report.json").read_text())["experiments"]] == ["fake_other"]


def test_a_result_written_by_another_gradflow_version_is_not_complete(tmp_path, capsys, fakes):
    out = tmp_path / "r"
    assert main(["reproduce", "fake_ok", "--out", str(out)]) == 0
    marker = out / "fake_ok" / "result.json"
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps({**record, "gradflow_version": "0.0.1"}))
    capsys.readouterr()
    assert main(["reproduce", "fake_ok", "--out", str(out)]) == 0
    assert "finished in" in capsys.readouterr().err and json.loads(marker.read_text())["gradflow_version"] == gf.__version__


def test_a_failing_experiment_is_reported_the_others_still_run_and_exit_code_is_1(tmp_path, capsys, fakes):
    out = tmp_path / "r"
    assert main(["reproduce", "fake_broken", "fake_ok", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.err and "second line of the message" in captured.err
    assert not (out / "fake_broken").exists() and (out / "fake_ok" / "result.json").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["summary"] == {"fake_broken": "failed", "fake_ok": DOES_NOT_HOLD}
    broken = report["experiments"][0]
    assert broken["error"] == "ValueError: boom: the experiment broke / second line of the message"
    assert "Traceback" in broken["traceback"] and "_broken_run" in broken["traceback"]
    markdown = (out / "report.md").read_text()
    assert "**failed**" in markdown and "second line of the message" in markdown
    assert "1 / 1 / 0" in markdown                        # fake_ok: one claim holds, one does not
    assert leftovers(out) == []


def test_a_failed_forced_rerun_keeps_the_previous_complete_result(tmp_path, fakes, monkeypatch):
    out = tmp_path / "r"
    assert main(["reproduce", "fake_ok", "--out", str(out)]) == 0
    before = (out / "fake_ok" / "result.json").read_text()
    monkeypatch.setitem(REGISTRY, "fake_ok", Experiment("fake_ok", "now broken", "Figure 0", _broken_run))
    assert main(["reproduce", "fake_ok", "--out", str(out), "--force"]) == 1
    assert (out / "fake_ok" / "result.json").read_text() == before
    assert gf.experiments.load_result(out, "fake_ok", "quick", 0) is not None
    assert leftovers(out) == []


def test_ctrl_c_keeps_finished_experiments_and_leaves_nothing_half_written(tmp_path, capsys, fakes):
    out = tmp_path / "r"
    assert main(["reproduce", "fake_ok", "fake_interrupted", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert gf.experiments.load_result(out, "fake_ok", "quick", 0) is not None
    assert not (out / "fake_interrupted").exists()
    assert leftovers(out) == [] and not (out / "report.md").exists()


def test_jobs_runs_experiments_in_worker_processes(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "fig2", "fig13", "--out", str(out), "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "fig2 (1/2) finished" in err and "fig13 (2/2) finished" in err
    report = json.loads((out / "report.json").read_text())
    assert list(report["summary"]) == ["fig2", "fig13"] and set(report["summary"].values()) == {HOLDS}
    assert leftovers(out) == []


# ----------------------------------------------------------------------------- bad input
def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gradflow reproduce: error:"), err
    for part in parts:
        assert part in err, err


def test_unknown_experiment_exits_2_listing_the_valid_names_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "fig2", "fig99", "--out", str(out)])
    assert exit_info.value.code == 2
    _one_line_error(capsys, "unknown experiment 'fig99'", "fig2", "fig4", "fig13", "fig16")
    assert not out.exists()


@pytest.mark.parametrize("argv, parts", [
    (["--jobs", "0"], ["--jobs", ">= 1", "got 0"]),
    (["--seed", "-1"], ["--seed", "got -1"]),
    (["--jobs", "two"], ["--jobs", "'two'"]),
    (["--quick", "--full"], ["--full"]),
    (["--out", ""], ["--out", "empty", "Pass e.g. --out gradflow-results"]),
])
def test_bad_options_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, argv, parts):
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "fig2", "--out", str(out)] + argv)
    assert exit_info.value.code == 2
    _one_line_error(capsys, *parts)
    assert not out.exists()


def test_output_folder_that_is_a_file_exits_2_and_leaves_the_file_alone(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    for out in (target, target / "below"):
        with pytest.raises(SystemExit) as exit_info:
            main(["reproduce", "fig2", "--out", str(out)])
        assert exit_info.value.code == 2
        _one_line_error(capsys, "--out", "results.txt")
    assert target.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_that_is_not_writable_exits_2(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["reproduce", "fig2", "--out", str(locked / "r")])
        assert exit_info.value.code == 2
        _one_line_error(capsys, "not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


# ----------------------------------------------------------------------------- the library entry points
def test_library_validation_names_the_parameter(tmp_path):
    with pytest.raises(ValueError, match="`names` must be registered experiments .*'nope'"):
        gf.experiments.reproduce(["nope"], out=tmp_path)
    with pytest.raises(TypeError, match="`names` must hold strings"):
        gf.experiments.reproduce([4], out=tmp_path)
    with pytest.raises(ValueError, match="`jobs` must be an integer >= 1; got 0"):
        gf.experiments.reproduce(["fig2"], out=tmp_path, jobs=0)
    with pytest.raises(ValueError, match="`size` must be one of 'quick', 'full'"):
        gf.experiments.reproduce(["fig2"], out=tmp_path, size="huge")
    with pytest.raises(TypeError, match="`force` must be True or False"):
        gf.experiments.reproduce(["fig2"], out=tmp_path, force="yes")
    with pytest.raises(TypeError, match="`out` must be a folder path"):
        gf.experiments.reproduce(["fig2"], out=3)
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer, e.g. 0; got -1"):
        gf.experiments.reproduce(["fig2"], out=tmp_path, seed=-1)
    with pytest.raises(TypeError, match="`progress` must be True or False"):
        gf.experiments.reproduce(["fig2"], out=tmp_path, progress=None)
    with pytest.raises(TypeError, match="`name` must be an experiment name"):
        gf.experiments.run(["fig2"], out=tmp_path)
    with pytest.raises(ValueError, match="`name` must be a registered experiment"):
        gf.experiments.run("nope", out=tmp_path)
    with pytest.raises(TypeError, match="`results` must hold ExperimentResult"):
        gf.experiments.write_report([1], tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="`out` must be a folder; .* is not one"):
        gf.experiments.reproduce(["fig2"], out=tmp_path / "file")
    with pytest.raises(ValueError, match="`out` .* cannot be created: .* is a file"):
        gf.experiments.run("fig2", out=tmp_path / "file" / "sub")


def test_run_returns_the_result_and_stores_it_loadable(tmp_path, fakes):
    result = gf.experiments.run("fake_ok", seed=2, out=tmp_path)
    loaded = gf.experiments.load_result(tmp_path, "fake_ok", "quick", 2)
    assert loaded is not None and loaded.claims == result.claims and loaded.verdict == DOES_NOT_HOLD
    np.testing.assert_array_equal(loaded.arrays["curve"], np.arange(3.0))
    assert gf.experiments.load_result(tmp_path, "fake_ok", "full", 2) is None
    assert gf.experiments.load_result(tmp_path, "fake_ok", "quick", 0) is None
    (tmp_path / "fake_ok" / "plot.png").unlink()                 # a listed figure missing: not complete
    assert gf.experiments.load_result(tmp_path, "fake_ok", "quick", 2) is None
    with pytest.raises(TypeError, match="experiment name"):
        gf.experiments.load_result("fake_ok", tmp_path)                # the arguments swapped
    with pytest.raises(ValueError, match="registered experiment"):
        gf.experiments.load_result(tmp_path, "fig99")


def test_write_report_marks_failures_and_counts_claims(tmp_path):
    ok = _ok_run("quick", 0, tmp_path)
    failure = ExperimentFailure("fake_broken", "broken", "quick", 0, "ValueError: boom", "Traceback ...")
    path = gf.experiments.write_report([ok, failure], tmp_path / "rep")
    text = path.read_text()
    assert text.index("fake_ok") < text.index("fake_broken")
    assert "**does not hold** | 1 / 1 / 0 |" in text and "**failed** | -- |" in text
    assert "    ValueError: boom" in text and "> a claim" in text and "Measured: measured 1.5" in text
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["summary"] == {"fake_ok": DOES_NOT_HOLD, "fake_broken": "failed"}


# ----------------------------------------------------------------------------- the console script
def _console_script():
    script = shutil.which("gradflow")
    return [script] if script else [sys.executable, "-m", "gradflow.cli"]


def test_console_script_end_to_end_exit_codes(tmp_path):
    out = tmp_path / "r"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(_console_script() + ["reproduce", "fig2", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "report.md").is_file() and (out / "fig2" / "result.json").is_file()
    bad = subprocess.run(_console_script() + ["reproduce", "nope", "--out", str(tmp_path / "x")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'nope'" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_python_dash_m_gradflow_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "gradflow", "list"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    assert "fig2" in done.stdout
