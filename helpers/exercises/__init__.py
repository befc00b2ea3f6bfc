"""Feedback for the "Try it yourself" exercises: right or not, and a hint, never the answer.

Each notebook's checkers live in their own module (``nb03`` for notebook 03, ...). A checker
looks at what the learner made (a run id, a value, a function) and prints one of two lines:

- ``Correct: <what was checked>``
- ``Not yet: <a hint>``

A checker never raises for a wrong answer, so the learner's cell still runs, and it never prints
the expected value: the hint says where to look, not what to find. The worked solutions, at the
end of each notebook, call the same checkers, so every CI run proves that each solution passes
its checker (and, through the exercise cells' stored outputs, that an empty answer does not).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import mlflow
import mlflow.tracking.fluent
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

import helpers.store  # noqa: F401  (in a kernel: hints under mlflow.db failures)

__all__ = [
    "Hint", "checker", "require", "learner_run", "newest_run", "close_to", "scratch_store"
]  # fmt: skip


class Hint(Exception):
    """An answer is not right yet; the message says what to look at."""


def require(condition: object, hint: str) -> None:
    """Stop the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise Hint(hint)


def checker(check: Callable[..., str]) -> Callable[..., None]:
    """Turn ``check`` (returns what it verified, raises :class:`Hint`) into a printed verdict.

    The wrapped function returns None, so a notebook cell shows the verdict line only.
    """

    @functools.wraps(check)
    def run_check(*args: Any, **kwargs: Any) -> None:
        try:
            verified = check(*args, **kwargs)
        except Hint as hint:
            print(f"Not yet: {hint}")
        else:
            print(f"Correct: {verified}")

    return run_check


def learner_run(run_id: object, what: str = "your run", where: str = "") -> Run:
    """The finished, not deleted run a learner names by its id, or a hint that fits the slip.

    Why each refusal: a run checked inside its own ``with`` block is still RUNNING and has not
    logged all it will; a FAILED run is one whose cell raised; a deleted run is one the learner
    threw away, and a check must not praise what the UI no longer shows.
    """
    # `my_run`, not `run`: a learner who follows the hint must not overwrite the notebook's own.
    where = where or "inside `with mlflow.start_run() as my_run:` it is `my_run.info.run_id`"
    if isinstance(run_id, Run | mlflow.ActiveRun):
        raise Hint("that is the run itself; put its id in the variable: `.info.run_id`.")
    require(isinstance(run_id, str) and run_id, f"put the id of {what} in the variable ({where}).")
    try:
        run = mlflow.get_run(run_id)
    except MlflowException:
        raise Hint(
            f"no run with id {run_id!r} in the store at {mlflow.get_tracking_uri()}: "
            "was it made with this notebook's tracking URI?"
        ) from None
    require(
        run.info.lifecycle_stage != "deleted",
        f"that run was deleted: {what} must be one the store still shows (restore it, or log "
        "it again).",
    )
    status = run.info.status
    require(
        status != "RUNNING",
        "that run is still running: check it after its `with mlflow.start_run()` block has "
        "ended (call the check below the block, not inside it).",
    )
    require(
        status == "FINISHED",
        f"that run ended {status}: the code inside its `with` block raised (or was "
        "interrupted). Fix it and run it again.",
    )
    return run


def newest_run(name: str, **where: list[str]) -> Run | None:
    """The newest run called ``name`` in the experiments ``where`` names (``experiment_ids=``
    or ``experiment_names=``), or None.

    Why the newest: a learner who runs a notebook twice has two runs of that name, and the
    notebook's variables hold the newest.
    """
    found = mlflow.search_runs(
        **where,
        filter_string=f"attributes.run_name = '{name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return found[0] if found else None


def close_to(value: float, expected: float, tolerance: float = 0.01) -> bool:
    """Whether two RMSEs agree to ``tolerance`` (CPUs differ in the last digits of a fit)."""
    return math.isfinite(value) and abs(value - expected) <= tolerance


@contextlib.contextmanager
def scratch_store() -> Iterator[str]:
    """Track into a new, temporary SQLite store; afterwards, back to the learner's store.

    A checker that tries a learner's function (one that creates or deletes experiments, say)
    does it here, so the check never adds anything to the learner's own runs. The active
    experiment is restored too: ``set_experiment`` keeps it in a module global and in the
    ``MLFLOW_EXPERIMENT_ID`` environment variable, and MLflow has no public call to read it.
    """
    uri = mlflow.get_tracking_uri()
    active = mlflow.tracking.fluent._active_experiment_id
    environment = os.environ.get("MLFLOW_EXPERIMENT_ID")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
        scratch = f"sqlite:///{os.path.join(folder, 'scratch.db')}"
        mlflow.set_tracking_uri(scratch)
        # No experiment is active in a new store: the learner's, by its id, would name another.
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        try:
            yield scratch
        finally:
            mlflow.set_tracking_uri(uri)
            mlflow.tracking.fluent._active_experiment_id = active
            if environment is None:
                os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
            else:
                os.environ["MLFLOW_EXPERIMENT_ID"] = environment
