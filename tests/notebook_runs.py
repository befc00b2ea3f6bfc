"""Run course notebooks under strict nbval in scratch folders, optionally with no network.

Why a subprocess: nbval must start each notebook's kernel in a folder of our choosing
(an empty one, or one shared by every notebook), never in ``notebooks/`` itself, so that
tests leave the working tree clean; and running it under ``unshare --net`` proves the
course needs no network.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")
FIGURES_PLUGIN = "nbval_figures"  # tests/nbval_figures.py: nbval compares the figures too


@functools.cache
def offline_prefix() -> tuple[str, ...] | None:
    """A command prefix that runs a program in a new network namespace with only loopback.

    Returns None where that is impossible (no ``unshare``, or no right to use it, as on
    macOS and Windows). Loopback is brought up because Jupyter talks to its kernel over it.
    """
    if not shutil.which("unshare") or not shutil.which("ip"):
        return None
    for unshare in (["unshare", "--net"], ["unshare", "--net", "--map-root-user"]):
        prefix = (*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "offline")
        probe = subprocess.run([*prefix, "true"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def copy_notebooks(folder: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """Copy notebooks into ``folder``; return the copies, in course order."""
    copies = []
    for notebook in notebooks or NOTEBOOKS:
        copies.append(Path(shutil.copy2(notebook, folder / notebook.name)))
    return copies


def run_nbval(folder: Path, notebooks: list[Path], *, offline: bool) -> subprocess.CompletedProcess:
    """Run strict nbval on ``notebooks`` (in order) with ``folder`` as working directory."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(SANITIZE),
        "--nbval-cell-timeout=300",
        "-p",
        FIGURES_PLUGIN,
        f"--nbval-figures-dir={folder / 'figure-diffs'}",
        "-p",
        "no:cacheprovider",
        "-q",
        *[nb.name for nb in notebooks],
    ]
    if offline:
        prefix = offline_prefix()
        if prefix is None:
            raise RuntimeError("No network isolation here: cannot prove the run is offline.")
        command = [*prefix, *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MLFLOW_"))}
    for setting in ("COURSE_DATA_SOURCE", "COURSE_SAMPLE_TRIPS"):  # stored outputs use the sample
        env.pop(setting, None)
    # tests/ is not a package: the plugin is importable by `-p` only with tests/ on the path
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)


def report(result: subprocess.CompletedProcess) -> str:
    """The end of a run's output, for an assertion message."""
    return (result.stdout[-8000:] + "\n" + result.stderr[-3000:]).strip()


def git_status() -> str:
    """`git status` of the course, to prove the tests leave the working tree as it was."""
    if not (ROOT / ".git").exists():
        return ""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def make_store_with_runs(folder: Path, runs: int = 3) -> Path:
    """A real tracking database made by this MLflow: experiment "kept", runs run-0.. with a
    param ``i`` and a metric ``rmse`` = i. Returns the database file."""
    import mlflow

    db = folder / "mlflow.db"
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    experiment_id = client.create_experiment("kept")
    for i in range(runs):
        run = client.create_run(experiment_id, run_name=f"run-{i}")
        client.log_param(run.info.run_id, "i", i)
        client.log_metric(run.info.run_id, "rmse", float(i))
        client.set_terminated(run.info.run_id)
    return db
