"""The README's commands, the CI script, the command line and the example, as a new user meets them."""

import pathlib
import re
import subprocess
import sys

import gradflow as gf

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_commands():
    blocks = re.findall(r"```\n(.*?)```", README, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if "pip install" in line]


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert "pytest" in commands[1] and '".[test]"' in commands[1]
    assert commands[0] == "python -m pip install -e . && gradflow reproduce --out results"


def test_ci_runs_the_readme_test_command_verbatim_in_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _readme_commands()[1]
    assert test_command in ci.splitlines()
    assert "set -euo pipefail" in ci
    assert re.search(r"python3? -m venv", ci)
    assert ci.index("venv") < ci.index(test_command)


def test_readme_tour_runs(capsys):
    tour = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    exec(compile(tour, "README tour", "exec"), {})
    printed = capsys.readouterr().out
    assert "zero eigenvalues: 22" in printed and "min-norm: holds" in printed


def test_setup_cfg_declares_the_runtime_dependencies_and_extras():
    cfg = (ROOT / "setup.cfg").read_text()
    for package in ("numpy", "scipy", "sympy", "numba", "matplotlib", "array-api-compat", "tqdm", "scikit-learn"):
        assert re.search(rf"^\s+{package}\b", cfg, flags=re.M), package
    for extra in ("test", "gpu", "docs"):
        assert re.search(rf"^{extra} =", cfg, flags=re.M), extra
    assert "gradflow = gradflow.cli:main" in cfg
    assert "python_requires = >=3.10" in cfg


def test_command_line_prints_version_and_help():
    version = subprocess.run([sys.executable, "-m", "gradflow.cli", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"gradflow {gf.__version__}"
    help_text = subprocess.run([sys.executable, "-m", "gradflow.cli", "--help"], capture_output=True, text=True, check=True)
    assert "usage: gradflow" in help_text.stdout


def test_example_finds_the_minimum_norm_solution():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "min_norm_sine.py")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert "zero eigenvalues 22 (P - n = 22)" in out
    distance = float(re.search(r"distance from GD's solution ([0-9.e+-]+)", out).group(1))
    assert distance < 1e-6
