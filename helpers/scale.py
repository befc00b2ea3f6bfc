"""Start the workers of a shared search from a notebook, watch them, and never leave one behind.

A learner on several machines types the worker's command (:mod:`helpers.tune_worker`) in a
terminal on each. In a notebook we start the same command N times, as background programs of
the course (:class:`helpers.background.Background`): each has a watchdog, so Ctrl+C, a killed
kernel or a closed terminal stops every worker, as it stops the course's servers. Optuna's
storage, not this module, shares the trials between them.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from helpers.background import Background

SETTLED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


class Worker(Background):
    """One ``python -m helpers.tune_worker`` process, its output in ``<name>.log``."""

    name = "A tuning worker"

    def __init__(self, arguments: list[str], name: str, folder: Path, env: dict[str, str]):
        command = [sys.executable, "-m", "helpers.tune_worker", *arguments, "--name", name]
        super().__init__(command, folder, env, folder / f"{name}.log")
        self.worker_name = name

    def exit_code(self) -> int | None:
        return self.process.poll()


def worker_arguments(
    study: str, storage: str, tracking_uri: str, parent_run_id: str, trials: int, model: str
) -> list[str]:
    """The worker's command-line arguments: what a learner types on each machine."""
    return [
        "--study", study, "--storage", storage, "--tracking-uri", tracking_uri,
        "--parent-run-id", parent_run_id, "--trials", str(trials), "--model", model,
    ]  # fmt: skip


def _environment() -> dict[str, str]:
    """The workers' environment: this one, one BLAS thread each, no "View run" links.

    Why one thread: N workers on N cores each with N BLAS threads fight for the cores; the
    processes are the parallelism here."""
    import os

    return {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        "PYTHONUNBUFFERED": "1",
    }


class Workers:
    """N workers of one search: :meth:`wait` shows progress, :meth:`stop` ends them all."""

    def __init__(self, count: int, arguments: list[str], folder: str | Path = "."):
        self.folder = Path(folder).resolve()
        self.workers: list[Worker] = []
        try:
            for number in range(count):
                self.workers.append(
                    Worker(arguments, f"worker-{number}", self.folder, _environment())
                )
        except BaseException:
            self.stop()
            raise

    def running(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.exit_code() is None]

    def wait(
        self, study: optuna.Study, total: int, timeout: float = 600, show: bool = True
    ) -> float:
        """Wait until every worker has ended, showing trials done and the best so far; return
        the seconds waited. Ctrl+C (or a timeout) stops every worker before it raises."""
        started = time.monotonic()
        display = _Progress(show)
        try:
            while self.running():
                if show:  # each look reads the whole study: only when someone watches
                    display.update(progress_line(study, total))
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"the workers did not finish within {timeout:.0f} s")
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise
        if show:
            display.update(progress_line(study, total))
        failed = [w for w in self.workers if w.exit_code() not in (0, -9)]
        for worker in failed:
            print(
                f"{worker.worker_name} ended with code {worker.exit_code()}: {worker.log_tail(3)}"
            )
        for worker in self.workers:
            worker.stop()
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop every worker still running, with every process it started."""
        for worker in self.workers:
            worker.stop()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def running_trial_of(study: optuna.Study, worker: str, timeout: float = 60) -> FrozenTrial:
    """The first trial ``worker`` (its ``--name``) is running, once its MLflow run exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("worker") == worker and "mlflow_run_id" in trial.user_attrs:
                return trial
        time.sleep(0.05)
    raise TimeoutError(f"{worker} ran no trial within {timeout:.0f} s")


def progress_line(study: optuna.Study, total: int) -> str:
    """``"12/40 trials done, 2 running, 0 failed; best rmse 6.395 (trial 7)"``."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(trial.state for trial in trials)
    done = sum(states[state] for state in SETTLED)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = min(complete, key=lambda trial: trial.value) if complete else None
    line = (
        f"{done}/{total} trials done, {states[TrialState.RUNNING]} running, "
        f"{states[TrialState.FAIL]} failed"
    )
    return line + (f"; best rmse {best.value:.3f} (trial {best.number})" if best else "")


class _Progress:
    """One line that updates in place: a notebook display, or a terminal's carriage return."""

    def __init__(self, show: bool):
        self.show, self.handle, self.last = show, None, None

    def update(self, line: str) -> None:
        if not self.show or line == self.last:
            return
        self.last = line
        try:
            from IPython import get_ipython
            from IPython.display import Pretty, display

            in_notebook = get_ipython() is not None
        except ImportError:
            in_notebook = False
        if not in_notebook:
            print(line, flush=True)
        elif self.handle is None:
            self.handle = display(Pretty(line), display_id=True)
        else:
            self.handle.update(Pretty(line))
