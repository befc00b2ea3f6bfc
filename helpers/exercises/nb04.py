"""Checkers for notebook 04's exercises: a tagged, described run, and a tag given afterwards."""

from __future__ import annotations

import mlflow
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error

from helpers.exercises import checker, close_to, learner_run, require
from helpers.exercises.nb03 import module_matrices

EXPERIMENT = "nyc-taxi-experiment"


@checker
def check_tagged_ridge_run(run_id: str | None) -> str:
    """A finished ``Ridge(alpha=10)`` run with a developer, a model family and a description."""
    run = learner_run(run_id, "your Ridge run")
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    require(tags.get("developer"), "tag the run with `developer` = your name (mlflow.set_tag).")
    require(tags.get("model_family") == "linear", "tag the run with `model_family` = `linear`.")
    require(
        tags.get("mlflow.note.content"),
        "give the run a description: start_run(..., description=...).",
    )
    require("rmse" in metrics, "log the validation RMSE as a metric named `rmse`.")
    require(
        params.get("alpha") in ("10", "10.0"),
        "log the penalty as a parameter `alpha` (mlflow.log_param or log_params).",
    )
    X_train, y_train, X_val, y_val = module_matrices(("PU_DO", "trip_distance"))
    expected = root_mean_squared_error(
        y_val, Ridge(alpha=10.0, tol=1e-8).fit(X_train, y_train).predict(X_val)
    )
    require(
        close_to(metrics["rmse"], expected),
        "the rmse is not Ridge(alpha=10.0, tol=1e-8)'s on X_train/X_val: check the model "
        "and that you scored the validation month.",
    )
    return "tagged, described, and its RMSE is the one Ridge(alpha=10) gets."


@checker
def check_best_linear_tagged(run_id: str | None) -> str:
    """The lowest-RMSE ``linear`` run of nyc-taxi-experiment, tagged ``review=best-linear``."""
    run = learner_run(
        run_id, "the best linear run", "search_runs gives each run's id in its `run_id` column"
    )
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    require(
        experiment and run.info.experiment_id == experiment.experiment_id,
        f"that run is not in `{EXPERIMENT}`: search that experiment (experiment_names=[...]).",
    )
    require(
        run.data.tags.get("model_family") == "linear",
        "that run is not tagged `model_family` = `linear`: filter on the tag.",
    )
    linear = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="tags.model_family = 'linear' and metrics.rmse > 0",
        order_by=["metrics.rmse ASC"],
        max_results=1,
        output_format="list",
    )
    require(
        linear,
        f"no run of `{EXPERIMENT}` is tagged `model_family` = `linear` with an `rmse`: run the "
        "notebook's cells above (and exercise 1) first.",
    )
    require(
        run.data.metrics.get("rmse", float("inf")) <= linear[0].data.metrics["rmse"] + 1e-9,
        "a linear run with a lower RMSE exists: sort with order_by=['metrics.rmse ASC'].",
    )
    require(
        run.data.tags.get("review") == "best-linear",
        "found the right run; now tag it `review` = `best-linear`: MlflowClient().set_tag(run "
        "id, key, value) works on a finished run.",
    )
    return "the best linear run, found by a search and tagged after it ended."
