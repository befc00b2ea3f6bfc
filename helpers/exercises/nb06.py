"""Checkers for notebook 06 (autolog): an autologged run, a named metric, a system metric."""

from __future__ import annotations

import os
from unittest import mock

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.utils.autologging_utils import autologging_is_disabled

from helpers.exercises import checker, close_to, learner_run, require

FEBRUARY_METRIC = "root_mean_squared_error_february"


def autologging_is_off() -> None:
    """Both exercises end with autologging off, so the cells after them log only what they say."""
    require(
        autologging_is_disabled("sklearn"),
        "autologging is still on: turn it off at the end (`disable=True`), so later cells log "
        "only what they say.",
    )


def _autologged_calls(run_id: str) -> dict[str, str]:
    """The metrics autologging logged after training, each with the call that produced it.

    Why this file: a metric logged by hand with ``log_metric`` looks the same in the run's
    metrics; only autologging writes ``metric_info.json`` beside the metrics it logs itself.
    """
    # A download shows a progress bar in the notebook; MLflow reads this switch at each call.
    with mock.patch.dict(os.environ, {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
        try:
            return mlflow.artifacts.load_dict(f"runs:/{run_id}/metric_info.json")
        except (MlflowException, OSError, ValueError):
            return {}


@checker
def check_autologged_run(run_id: object, training_rmse: object) -> str:
    """Exercise 1: an autologged run of the asked pipeline, and its training RMSE read back."""
    run = learner_run(run_id, "your autologged run")
    params, metrics = run.data.params, run.data.metrics
    require(
        "ridge__solver" in params,
        "this run has no autologged Ridge parameters: turn autologging on before `fit`, and call "
        "`fit` inside the run.",
    )
    require(
        params.get("ridge__alpha") == "5.0" and params["ridge__solver"] == "sparse_cg",
        "this run trained another model than the one asked: check `alpha` and `solver`.",
    )
    require(
        "training_root_mean_squared_error" in metrics,
        "this run has no autologged training metrics: was `log_training_metrics` turned off?",
    )
    require(
        isinstance(training_rmse, int | float) and not isinstance(training_rmse, bool),
        "put in `training_rmse` the number you read from the run's metrics.",
    )
    require(
        close_to(float(training_rmse), metrics["training_root_mean_squared_error"], 0.001),
        "that is not this run's `training_root_mean_squared_error`: read it from "
        "`mlflow.get_run(...).data.metrics`, not from another run.",
    )
    autologging_is_off()
    return (
        "an autologged run of the sparse_cg pipeline, its training RMSE read from its record, "
        "and autologging off again."
    )


@checker
def check_february_metric(run_id: object) -> str:
    """Exercise 2: autologging itself logged the validation RMSE as ``..._february``."""
    run = learner_run(run_id, "your run")
    metrics = run.data.metrics
    require(
        "training_root_mean_squared_error" in metrics,
        "this run has no autologged training metrics: turn autologging on before `fit`, and call "
        "`fit` inside the run.",
    )
    logged_by_autolog = sorted(key for key in metrics if key.startswith("root_mean_squared_error"))
    require(
        logged_by_autolog,
        "autologging logged no RMSE of its own: it does so only for a metric function looked up "
        "in `sklearn.metrics` after `autolog()`, given the predictions of a model fitted with "
        "autologging on (see the section on the metric autologging logs by itself).",
    )
    require(
        FEBRUARY_METRIC in metrics,
        f"autologging logged {logged_by_autolog}: the part after the function's name is the name "
        "of the variable holding the data you gave to `predict` (if two names hold the same "
        "object, the one defined first wins).",
    )
    require(
        FEBRUARY_METRIC in _autologged_calls(run.info.run_id),
        f"`{FEBRUARY_METRIC}` was logged by hand, not by autologging: autologging records each "
        "metric it logs, with the call that made it, in the run's `metric_info.json`. Log "
        "nothing yourself; call the metric function as the section above shows.",
    )
    require(
        not close_to(metrics[FEBRUARY_METRIC], metrics["training_root_mean_squared_error"], 1e-9),
        "this RMSE is the training RMSE: predict February's trips, not January's.",
    )
    autologging_is_off()
    return f"autologging logged `{FEBRUARY_METRIC}` by itself, and is off again."


SYSTEM_METRIC = "system/system_memory_usage_megabytes"
"""Exercise 3's metric: one of those ``log_system_metrics=True`` logs on every machine."""


@checker
def check_system_metric(run_id: object, memory_mb: object) -> str:
    """Exercise 3: a run with system metrics, and one metric's history read back, oldest first.

    The list must be the store's own: each value at its step, so a value read elsewhere (the
    run's last value, another metric, another run) cannot pass.
    """
    run = learner_run(run_id, "your run with system metrics")
    require(
        any(name.startswith("system/") for name in run.data.metrics),
        "this run has no system metrics: start it with "
        "`mlflow.start_run(log_system_metrics=True)`, and train in it for longer than the "
        "sampling interval (1 second here).",
    )
    client = mlflow.MlflowClient()
    history = sorted(
        client.get_metric_history(run.info.run_id, SYSTEM_METRIC), key=lambda m: m.step
    )
    stored = [m.value for m in history]
    require(
        isinstance(memory_mb, list),
        "put in `memory_mb` a list, one value per sample: the metric's whole history "
        "(client.get_metric_history), not only its last value.",
    )
    require(
        all(isinstance(v, int | float) and not isinstance(v, bool) for v in memory_mb),
        "`memory_mb` holds numbers: the `.value` of each entry of the history.",
    )
    require(
        len(memory_mb) == len(stored),
        f"your list has {len(memory_mb)} values; the run logged {len(stored)} for "
        f"{SYSTEM_METRIC}: read that metric's history of this run.",
    )
    require(
        sorted(memory_mb) == sorted(stored),
        f"those are not the values this run logged for {SYSTEM_METRIC}: read that metric "
        "(not another system metric) of this run.",
    )
    require(
        memory_mb == stored,
        "the right values, in another order: oldest first is by step (0, 1, 2, ...).",
    )
    return f"{len(stored)} samples of the machine's memory use, read back from the store."
