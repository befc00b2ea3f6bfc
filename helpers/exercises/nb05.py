"""Checkers for notebook 05 (compare and tune): finding a trial, and a search of your own."""

from __future__ import annotations

import mlflow
from mlflow.entities import Run

from helpers.exercises import Hint, checker, close_to, learner_run, require


def trials_of(parent_id: str, experiment_id: str, extra_filter: str = "") -> list[Run]:
    """The child runs of ``parent_id``: the trials of one search, whatever else the store holds."""
    return mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'{extra_filter}",
        output_format="list",
    )


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


@checker
def check_zones_search(parent_run_id: object, n_trials: int = 10) -> str:
    """Exercise 2: a parent run with ``n_trials`` nested trials on the ``zones`` features, and
    the best trial's ``alpha`` and RMSE logged on the parent as ``best_alpha`` and ``best_rmse``.
    """
    parent = learner_run(parent_run_id, "your search's parent run")
    require(
        "mlflow.parentRunId" not in parent.data.tags,
        "this run is a trial (it has a parent): pass the id of the parent run that holds them.",
    )
    trials = trials_of(parent.info.run_id, parent.info.experiment_id)
    require(
        len(trials) >= n_trials,
        f"this run has {len(trials)} child runs and the task asks for {n_trials}: open each "
        "trial with `mlflow.start_run(nested=True)` inside the parent's `with` block.",
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
    best = min(trials, key=lambda t: t.data.metrics["rmse"])
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
