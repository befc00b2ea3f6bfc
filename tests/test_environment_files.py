"""requirements.txt is the one list of packages; environment.yml, README and CI use it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "mlflow",
    "jupyterlab",
    "scikit-learn",
    "pandas",
    "pyarrow",
    "matplotlib",
    "nbval",
    "pytest",
    "ipywidgets",
}


def requirement_lines() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.split(" #")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_every_requirement_is_pinned_exactly():
    for line in requirement_lines():
        if line == "-e .":
            continue
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", line), line


def test_requirements_cover_the_course_and_install_helpers():
    names = {line.split("==")[0].lower() for line in requirement_lines()}
    assert REQUIRED <= names
    assert "-e ." in requirement_lines(), "helpers must be importable from notebooks/"


def test_environment_yml_installs_exactly_requirements_txt():
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert spec["channels"] == ["conda-forge"]
    conda_packages = [d for d in spec["dependencies"] if isinstance(d, str)]
    pip_sections = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    assert sorted(conda_packages) == ["pip", "python=3.11"], (
        "packages belong in requirements.txt, so pip and conda learners get the same ones"
    )
    assert pip_sections == [["-r requirements.txt"]]


def test_readme_and_ci_use_the_same_install_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("pip install -r requirements.txt", "python -m pytest"):
        assert command in readme, command
        assert command in ci, command
    assert "conda env create -f environment.yml" in readme
