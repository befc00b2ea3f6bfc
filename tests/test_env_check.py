"""helpers.env: the setup check of notebook 00 says [ OK ] or [FAIL] truthfully."""

from __future__ import annotations

import sys
from importlib.metadata import version

from helpers import env


def test_pins_are_read_from_requirements_txt():
    pins = env.pinned_requirements()
    assert pins["mlflow"] == version("mlflow")
    assert "-e" not in pins and "." not in pins


def test_this_environment_passes(capsys):
    assert env.check_environment() is True
    out = capsys.readouterr().out
    assert "[FAIL]" not in out
    assert f"[ OK ] mlflow {version('mlflow')}" in out


def test_wrong_and_missing_packages_fail_with_the_fix(tmp_path, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "mlflow==0.0.1  # too old\n"
        "no-such-package-for-this-course==1.0\n"
        f"pandas=={version('pandas')}\n"
        "-e .\n"
    )
    assert env.check_environment(requirements) is False
    out = capsys.readouterr().out
    assert f"[FAIL] mlflow {version('mlflow')}  (the course needs 0.0.1)" in out
    assert "[FAIL] no-such-package-for-this-course not installed" in out
    assert f"[ OK ] pandas {version('pandas')}" in out
    assert "pip install -r requirements.txt" in out


def test_a_missing_requirements_file_names_the_fix(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="pip install -r requirements.txt"):
        env.check_environment(tmp_path / "requirements.txt")


def test_a_supported_python_is_named_by_the_requirement_not_its_version(capsys):
    """The stored output of notebook 00 must be the same on Python 3.11, 3.12 and 3.13."""
    env.check_environment()
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "[ OK ] python (supported by the course)"


def test_too_old_a_python_fails_and_says_which_to_install(monkeypatch, capsys):
    monkeypatch.setattr(env, "MIN_PYTHON", (99, 0))
    assert env.check_environment() is False
    out = capsys.readouterr().out
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"[FAIL] python {this}  (the course needs Python 99.0 or newer)" in out
    assert "Fix: install Python 99.0" in out
    assert "pip install -r requirements.txt" not in out, "reinstalling packages would not help"


def test_notebook_00_stores_the_check_of_every_pinned_package():
    """Adding a pin to requirements.in changes 00's output: regenerate it in the same change."""
    import json
    from pathlib import Path

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "00_setup.ipynb"
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    [check] = [c for c in cells if "check_environment()" in "".join(c["source"])]
    printed = "".join(check["outputs"][0]["text"]).splitlines()
    assert printed[0] == "[ OK ] python (supported by the course)"
    assert [line[len("[ OK ] ") :].split()[0] for line in printed[1:]] == list(
        env.pinned_requirements()
    )
