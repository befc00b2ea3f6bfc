"""Notebook 03's checkers: a run without PU_DO, and a run with the pickup hour.

The runs here are trained as the notebook's solutions train them (their own DictVectorizer,
January to train, February to score), independently of the checker's code.
"""

from __future__ import annotations

import functools

import mlflow
import pytest
from exercise_support import (  # noqa: F401
    ODD_INPUTS,
    correct,
    finished_run,
    hint,
    learner_store,
    months,
    verdict,
)
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import root_mean_squared_error

from helpers.exercises.nb03 import check_distance_only_run, check_hour_run


def with_hour(df, as_category: bool):
    hour = df["lpep_pickup_datetime"].dt.hour
    return df.assign(hour=hour.astype(str) if as_category else hour)


@functools.cache
def rmse_of(features: tuple[str, ...], hour: str = "", score_on: str = "val") -> float:
    """LinearRegression's RMSE as a learner computes it; hour: "", "number" or "category"."""
    train, val = months()
    if hour:
        train, val = (with_hour(df, hour == "category") for df in (train, val))
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[list(features)].to_dict(orient="records"))
    model = LinearRegression().fit(X_train, train["duration"].values)
    scored = val if score_on == "val" else train
    X = dv.transform(scored[list(features)].to_dict(orient="records"))
    return root_mean_squared_error(scored["duration"].values, model.predict(X))


def run_with_rmse(name: str, rmse: float) -> str:
    return finished_run(name, metrics={"rmse": rmse})


def test_distance_only_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    run_id = run_with_rmse("distance-only", rmse_of(("trip_distance",)))
    assert correct(verdict(capsys, check_distance_only_run, run_id))
    assert hint(verdict(capsys, check_distance_only_run, None), "put the id of your")


def test_distance_only_refuses_what_only_looks_right(capsys, store):
    typed = run_with_rmse("distance-only", 1.0)
    assert hint(verdict(capsys, check_distance_only_run, typed), "not that of LinearRegression")
    baseline = run_with_rmse("distance-only", rmse_of(("PU_DO", "trip_distance")))
    assert hint(verdict(capsys, check_distance_only_run, baseline), "the baseline's RMSE")
    on_training = run_with_rmse("distance-only", rmse_of(("trip_distance",), score_on="train"))
    assert hint(verdict(capsys, check_distance_only_run, on_training), "not that of")
    unnamed = run_with_rmse("baseline", rmse_of(("trip_distance",)))  # another run
    assert hint(verdict(capsys, check_distance_only_run, unnamed), "name the run `distance-only`")
    no_metric = finished_run("distance-only", params={"features": "trip_distance"})
    assert hint(verdict(capsys, check_distance_only_run, no_metric), "metric named `rmse`")


def test_a_run_deleted_still_running_or_failed_gets_its_own_hint(capsys, store):
    right = rmse_of(("trip_distance",))
    deleted = run_with_rmse("distance-only", right)
    mlflow.MlflowClient().delete_run(deleted)
    assert hint(verdict(capsys, check_distance_only_run, deleted), "that run was deleted")
    with mlflow.start_run(run_name="distance-only") as run:  # checked inside its block
        mlflow.log_metric("rmse", right)
        out = verdict(capsys, check_distance_only_run, run.info.run_id)
    assert hint(out, "still running", "after its `with mlflow.start_run()` block")
    with pytest.raises(ValueError), mlflow.start_run(run_name="distance-only") as failed:
        raise ValueError("a learner's cell raised")
    assert hint(verdict(capsys, check_distance_only_run, failed.info.run_id), "ended FAILED")
    assert hint(verdict(capsys, check_distance_only_run, run), "that is the run itself")
    out = verdict(capsys, check_distance_only_run, "0" * 32)  # an id from another store
    assert hint(out, "no run with id", "this notebook's tracking URI")


def test_distance_only_refuses_odd_inputs(capsys, store):
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_distance_only_run, odd)), odd


HOUR_FEATURES = ("PU_DO", "trip_distance", "hour")


def test_hour_run_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    run_id = run_with_rmse("with-pickup-hour", rmse_of(HOUR_FEATURES, hour="category"))
    assert correct(verdict(capsys, check_hour_run, run_id))
    assert hint(verdict(capsys, check_hour_run, None), "put the id of your")


def test_hour_run_names_each_mistake(capsys, store):
    as_number = run_with_rmse("with-pickup-hour", rmse_of(HOUR_FEATURES, hour="number"))
    assert hint(verdict(capsys, check_hour_run, as_number), "Given the hour as a number")
    left_out = run_with_rmse("with-pickup-hour", rmse_of(("PU_DO", "trip_distance")))
    out = verdict(capsys, check_hour_run, left_out)
    assert hint(out, "the baseline's RMSE", "the hour is not among the features")
    assert "as a number" not in out
    typed = run_with_rmse("with-pickup-hour", 1.0)  # nothing trained: a number typed in
    assert hint(verdict(capsys, check_hour_run, typed), "not that of LinearRegression")
    on_training = run_with_rmse(
        "with-pickup-hour", rmse_of(HOUR_FEATURES, hour="category", score_on="train")
    )
    assert hint(verdict(capsys, check_hour_run, on_training), "the data you scored")
    other_name = run_with_rmse("hour", rmse_of(HOUR_FEATURES, hour="category"))
    assert hint(verdict(capsys, check_hour_run, other_name), "name the run `with-pickup-hour`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_hour_run, odd)), odd
