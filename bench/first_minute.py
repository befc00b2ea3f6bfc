"""Measure a learner's first minute: from a fresh clone to the MLflow UI showing the store.

The steps of the README's quick start, timed one by one, for uv and for pip:

1. install: create ``.venv``, install the lock ``requirements.txt`` and the helpers into it;
2. run notebook 01 (it creates ``notebooks/mlflow.db``), in a fresh kernel of that ``.venv``;
3. start ``mlflow ui --backend-store-uri sqlite:///mlflow.db`` in ``notebooks/`` and wait
   until its API lists the store's experiments, as the page a learner opens would.

    python bench/first_minute.py              # uv (cache warmed first) and pip
    python bench/first_minute.py --only uv

The clone is taken from this folder's last commit, so uncommitted changes are not measured.
uv comes from PATH (``pip install uv``). Prints a Markdown table; docs/PERFORMANCE.md holds
the last results. Linux and macOS (the venv's ``bin/`` layout).

Python as a learner's runs: a machine that sets ``PYTHONDONTWRITEBYTECODE`` (some containers
do) makes every process compile every module it imports, again and again (``import mlflow``
4.0 s instead of 1.4 s on the course's 2-core machine); no learner's laptop does, so it is
dropped from the environment of everything measured (:func:`as_a_learner_runs`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3",
               resources={"metadata": {"path": "."}}).execute()
"""


def as_a_learner_runs() -> None:
    """Let Python write its bytecode caches, as on a learner's machine (see the docstring)."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False
        print("PYTHONDONTWRITEBYTECODE dropped: measured as a learner's Python runs",
              file=sys.stderr)  # fmt: skip


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run ``command`` to completion (failing loudly); return its seconds."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def install(installer: str, course: Path) -> float:
    venv = course / ".venv"
    if installer == "uv":
        seconds = run(["uv", "venv", "--python", sys.executable, str(venv)], course)
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        seconds += run(["uv", "pip", "install", "-r", "requirements.txt"], course, env)
        return seconds + run(["uv", "pip", "install", "--no-deps", "-e", "."], course, env)
    seconds = run([sys.executable, "-m", "venv", str(venv)], course)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install"]
    seconds += run([*pip, "-r", "requirements.txt"], course)
    return seconds + run([*pip, "--no-deps", "-e", "."], course)


def ui_answers(course: Path) -> float:
    """Seconds from starting the README's UI command until its API lists the experiments."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(course / ".venv" / "bin" / "mlflow"), "ui", "--backend-store-uri",
               "sqlite:///mlflow.db", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    start = time.perf_counter()
    server = subprocess.Popen(command, cwd=course / "notebooks", env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
    try:
        while time.perf_counter() - start < 120:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if "Default" in [e["name"] for e in json.load(response)["experiments"]]:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the MLflow UI did not answer within 120 s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def first_minute(installer: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="first-minute-") as folder:
        course = Path(folder) / "course"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(course)], check=True)
        steps = {"install": install(installer, course)}
        python = str(course / ".venv" / "bin" / "python")
        notebook = "01_set_tracking_uri.ipynb"
        steps["run 01"] = run([python, "-c", RUN_NOTEBOOK, notebook], course / "notebooks")
        steps["UI answers"] = ui_answers(course)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["uv", "pip"], help="measure one installer")
    args = parser.parse_args()
    as_a_learner_runs()
    installers = [args.only] if args.only else ["uv", "pip"]
    if "uv" in installers:
        if not shutil.which("uv"):
            parser.error("uv is not on PATH: pip install uv")
        first_minute("uv")  # warms uv's cache, as on a learner's second course or laptop
    rows = {installer: first_minute(installer) for installer in installers}
    print("| installer | install | run 01 | UI answers | from clone to UI |")
    print("|---|---:|---:|---:|---:|")
    for installer, steps in rows.items():
        cells = " | ".join(f"{seconds:.1f} s" for seconds in steps.values())
        print(f"| {installer} | {cells} | **{sum(steps.values()):.1f} s** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
