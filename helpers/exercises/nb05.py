"""Checkers for notebook 05 (compare and tune): finding a trial, and a search of your own."""

from __future__ import annotations

import functools

import mlflow
import numpy as np
from mlflow.entities import Run
from sklearn.metrics import root_mean_squared_error

from helpers.exercises import Hint, checker, close_to, learner_run, newest_run, require
from helpers.exercises.nb03 import module_matrices

SEARCH = "ridge-tuning"
"""The run name of the notebook's own search, the parent of its trials."""
ZONES = ("PULocationID", "DOLocationID", "trip_distance")
"""The columns of the `zones` feature set (notebook 05's FEATURE_SETS)."""


def trials_of(parent_id: str, experiment_id: str, extra_filter: str = "") -> list[Run]:
    """The child runs of ``parent_id``: the trials of one search, whatever else the store holds."""
    return mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'{extra_filter}",
        output_format="list",
    )


@functools.cache
def _zones_normal_equations() -> tuple:
    """What Ridge needs of the `zones` data, computed once: the centred Gram matrix and more.

    Why not ``Ridge.fit``: a learner's search has ten or more trials, and Ridge with tol=1e-8
    takes about a second per fit on these data. Solving Ridge's normal equations directly
    gives the same model (the exact solution, which tol=1e-8 reaches to far below the check's
    tolerance) in milliseconds per alpha.
    """
    X_train, y_train, X_val, y_val = module_matrices(ZONES)
    n = X_train.shape[0]
    mean_x, mean_y = np.asarray(X_train.mean(axis=0)).ravel(), y_train.mean()
    gram = (X_train.T @ X_train).toarray() - n * np.outer(mean_x, mean_x)
    moment = X_train.T @ (y_train - mean_y)
    return gram, moment, mean_x, mean_y, X_val, y_val


@functools.cache
def zones_rmse(alpha: float) -> float:
    """Ridge's validation RMSE on the `zones` features at ``alpha``, as the notebook trains it."""
    gram, moment, mean_x, mean_y, X_val, y_val = _zones_normal_equations()
    weights = np.linalg.solve(gram + alpha * np.eye(len(gram)), moment)
    predictions = X_val @ weights + (mean_y - mean_x @ weights)
    return root_mean_squared_error(y_val, predictions)


@checker
def check_best_zones_trial(run_id: object) -> str:
    """Exercise 1: the run is the lowest-RMSE trial, among its search's ``zones`` trials.

    Why compare with its siblings: the learner's search may have found other values than the
    stored notebook's, so the checker asks the store, not a number copied from it.
    """
    run = learner_run(
        run_id, "the best `zones` trial", "it is in the `run_id` column of `search_runs`' table"
    )
    parent_id = run.data.tags.get("mlflow.parentRunId")
    require(
        parent_id,
        "this run has no parent, so it is not a trial: look among the child runs of the search "
        "(filter on `tags.mlflow.parentRunId`).",
    )
    search = newest_run(SEARCH, experiment_ids=[run.info.experiment_id])
    require(
        search is not None and parent_id == search.info.run_id,
        f"this trial belongs to another search than the notebook's `{SEARCH}` run (`parent` "
        "above): keep a filter on `tags.mlflow.parentRunId` with that run's id.",
    )
    require(
        run.data.params.get("features") == "zones",
        "this trial did not use the `zones` features: add a filter on `params.features`.",
    )
    require("rmse" in run.data.metrics, "this run has no `rmse` metric: is it one of the trials?")
    zones_trials = trials_of(parent_id, run.info.experiment_id, " and params.features = 'zones'")
    best = min(trial.data.metrics.get("rmse", float("inf")) for trial in zones_trials)
    require(
        run.data.metrics["rmse"] <= best,
        "another `zones` trial of the same search has a lower RMSE: order the results by "
        "`metrics.rmse`, best first, and take the first.",
    )
    return f"{run.info.run_name} is the best of its search's {len(zones_trials)} `zones` trials."


def _alpha_of(trial: Run) -> float:
    """The ``alpha`` a trial logged, as a number Ridge accepts, or a hint."""
    name = trial.info.run_name
    try:
        alpha = float(trial.data.params["alpha"])
    except ValueError:
        raise Hint(f"trial {name!r} logged an `alpha` that is not a number.") from None
    require(alpha > 0, f"trial {name!r} logged alpha={alpha}: Ridge needs alpha > 0.")
    return alpha


def _require_trained(trial: Run, alpha: float) -> None:
    """The trial's own claim, checked: Ridge at its logged ``alpha`` must give its ``rmse``."""
    rmse = trial.data.metrics["rmse"]
    require(
        close_to(rmse, zones_rmse(alpha)),
        f"trial {trial.info.run_name!r} logged rmse={rmse:.3f} at alpha={alpha:.3g}, but Ridge "
        "(tol=1e-8) on the `zones` features gives another RMSE there: log what the trial's own "
        "model scores on February (`encoded['zones']`), not a number typed or copied.",
    )


@checker
def check_zones_search(parent_run_id: object, n_trials: int = 10) -> str:
    """Exercise 2: a parent run with ``n_trials`` nested trials on the ``zones`` features, and
    the best trial's ``alpha`` and RMSE logged on the parent as ``best_alpha`` and ``best_rmse``.

    Why retrain each trial: a search whose numbers were typed in would pass every other test.
    """
    parent = learner_run(parent_run_id, "your search's parent run")
    require(
        "mlflow.parentRunId" not in parent.data.tags,
        "this run is a trial (it has a parent): pass the id of the parent run that holds them.",
    )
    trials = trials_of(parent.info.run_id, parent.info.experiment_id)
    require(
        trials,
        "this run has no child runs: open each trial with `mlflow.start_run(nested=True)` "
        "inside the parent's `with` block.",
    )
    require(
        len(trials) >= n_trials,
        f"this search has {len(trials)} trials and the task asks for {n_trials}: "
        f"`study.optimize(..., n_trials={n_trials})`.",
    )
    require(
        all(t.data.params.get("features") == "zones" for t in trials),
        "every trial must train on the `zones` features and log the parameter `features`.",
    )
    require(
        all("alpha" in t.data.params and "rmse" in t.data.metrics for t in trials),
        "every trial must log its `alpha` parameter and its `rmse` metric.",
    )
    require(
        len({t.data.params["alpha"] for t in trials}) > 1,
        "all your trials tried the same `alpha`: let the sampler suggest it "
        "(`trial.suggest_float`).",
    )
    alphas = [_alpha_of(trial) for trial in trials]
    for trial, alpha in zip(trials, alphas, strict=True):
        _require_trained(trial, alpha)
    best = min(trials, key=lambda trial: trial.data.metrics["rmse"])
    require(
        "best_rmse" in parent.data.metrics
        and close_to(parent.data.metrics["best_rmse"], best.data.metrics["rmse"], 1e-9),
        "the parent's `best_rmse` must be its best trial's RMSE (after `study.optimize`, "
        "Optuna knows it).",
    )
    try:
        best_alpha = float(parent.data.params.get("best_alpha", "nan"))
    except ValueError:
        raise Hint("the parent's `best_alpha` parameter is not a number.") from None
    require(
        close_to(best_alpha, float(best.data.params["alpha"]), 1e-9 * best_alpha),
        "the parent's `best_alpha` must be the `alpha` of its best trial.",
    )
    return f"a search of {len(trials)} `zones` trials, its best one summarised on the parent run."
