"""Notebook 06's checkers: reading an autologged run, and a metric autologging logs itself."""

from __future__ import annotations

import mlflow
import pytest
import sklearn.metrics
from exercise_support import (  # noqa: F401
    ODD_INPUTS,
    correct,
    finished_run,
    hint,
    learner_store,
    months,
    verdict,
)
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from helpers.exercises.nb06 import check_autologged_run, check_february_metric

FEATURES = ["PU_DO", "trip_distance"]


def ridge_pipeline(**ridge_params):
    encode = ColumnTransformer(
        [("route", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"])], remainder="passthrough"
    )
    return make_pipeline(encode, Ridge(tol=1e-8, **ridge_params))


@pytest.fixture
def autolog():
    """Autologging as the notebook turns it on; off again after the test whatever happens."""
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    yield
    mlflow.sklearn.autolog(disable=True)


def autologged(name: str, **ridge_params) -> mlflow.entities.Run:
    train, _ = months()
    with mlflow.start_run(run_name=name) as run:
        ridge_pipeline(**ridge_params).fit(train[FEATURES], train["duration"])
    return mlflow.get_run(run.info.run_id)


def training_rmse(run) -> float:
    return run.data.metrics["training_root_mean_squared_error"]


def test_autologged_run_accepts_the_solution_and_refuses_the_empty_answer(capsys, store, autolog):
    run = autologged("ridge-alpha-5", alpha=5.0, solver="sparse_cg")
    out = verdict(capsys, check_autologged_run, run.info.run_id, training_rmse(run))
    assert hint(out, "autologging is still on")  # the last step forgotten
    mlflow.sklearn.autolog(disable=True)
    out = verdict(capsys, check_autologged_run, run.info.run_id, training_rmse(run))
    assert correct(out)
    rounded = round(training_rmse(run), 3)  # read off the UI, to its digits
    assert correct(verdict(capsys, check_autologged_run, run.info.run_id, rounded))
    assert hint(verdict(capsys, check_autologged_run, None, None), "put the id of your")


def test_autologged_run_refuses_what_only_looks_right(capsys, store, autolog):
    asked = autologged("ridge-alpha-5", alpha=5.0, solver="sparse_cg")
    default_solver = autologged("ridge-alpha-5-auto", alpha=5.0)
    weaker_penalty = autologged("ridge-alpha-1", alpha=1.0, solver="sparse_cg")
    mlflow.sklearn.autolog(disable=True)
    out = verdict(capsys, check_autologged_run, default_solver.info.run_id, 1.0)
    assert hint(out, "trained another model than the one asked")
    out = verdict(capsys, check_autologged_run, weaker_penalty.info.run_id, 1.0)
    assert hint(out, "trained another model than the one asked")
    # the training RMSE of another run: the right number is this run's own
    out = verdict(capsys, check_autologged_run, asked.info.run_id, training_rmse(weaker_penalty))
    assert hint(out, "not this run's `training_root_mean_squared_error`")
    out = verdict(capsys, check_autologged_run, asked.info.run_id, "6.1")  # text, not a number
    assert hint(out, "the number you read")
    out = verdict(capsys, check_autologged_run, asked.info.run_id, True)
    assert hint(out, "the number you read")
    by_hand = finished_run("by-hand", params={"ridge__alpha": "5.0"}, metrics={"rmse": 6.0})
    assert hint(verdict(capsys, check_autologged_run, by_hand, 6.0), "no autologged Ridge")
    no_training_metric = finished_run(
        "no-metrics", params={"ridge__alpha": "5.0", "ridge__solver": "sparse_cg"}
    )
    out = verdict(capsys, check_autologged_run, no_training_metric, 6.0)
    assert hint(out, "no autologged training metrics")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_autologged_run, odd, 6.0)), odd
        assert hint(verdict(capsys, check_autologged_run, asked.info.run_id, odd)), odd


def february_run(name: str, predict, log_by_hand: bool = False) -> str:
    """A run that fits with autologging on, then calls the RMSE on what ``predict`` returns."""
    train, val = months()
    with mlflow.start_run(run_name=name) as run:
        model = ridge_pipeline(alpha=1.0).fit(train[FEATURES], train["duration"])
        rmse = predict(model, train, val)
        if log_by_hand:
            mlflow.log_metric("root_mean_squared_error_february", rmse)
    return run.info.run_id


def solution(model, train, val):
    february = val[FEATURES].copy()  # a new object, whose only name is `february`
    return sklearn.metrics.root_mean_squared_error(val["duration"], model.predict(february))


def test_february_metric_accepts_the_solution_and_refuses_the_empty_answer(capsys, store, autolog):
    run_id = february_run("ridge-february-metric", solution)
    out = verdict(capsys, check_february_metric, run_id)
    assert hint(out, "autologging is still on")  # the last step forgotten
    mlflow.sklearn.autolog(disable=True)
    assert correct(verdict(capsys, check_february_metric, run_id))
    assert hint(verdict(capsys, check_february_metric, None), "put the id of your run")


def test_february_metric_refuses_what_only_looks_right(capsys, store, autolog):
    def other_name(model, train, val):
        X_val = val[FEATURES]
        return sklearn.metrics.root_mean_squared_error(val["duration"], model.predict(X_val))

    def imported_before(model, train, val):  # the function captured before autolog() patched it
        return unpatched_rmse(val["duration"], model.predict(val[FEATURES]))

    def on_january(model, train, val):
        february = train[FEATURES].copy()  # the right name, the wrong month
        return sklearn.metrics.root_mean_squared_error(train["duration"], model.predict(february))

    def typed(model, train, val):
        return 6.0

    named_otherwise = february_run("x-val", other_name)
    not_logged = february_run("imported-before", imported_before)
    january = february_run("january", on_january)
    by_hand = february_run("by-hand", imported_before, log_by_hand=True)
    typed_in = february_run("typed", typed, log_by_hand=True)
    mlflow.sklearn.autolog(disable=True)
    out = verdict(capsys, check_february_metric, named_otherwise)
    assert hint(out, "root_mean_squared_error_X_val", "the name of the variable")
    assert hint(verdict(capsys, check_february_metric, not_logged), "logged no RMSE of its own")
    assert hint(verdict(capsys, check_february_metric, january), "predict February's trips")
    assert hint(verdict(capsys, check_february_metric, by_hand), "logged by hand")
    assert hint(verdict(capsys, check_february_metric, typed_in), "logged by hand")
    untrained = finished_run("nothing-fitted", metrics={"root_mean_squared_error_february": 6.0})
    assert hint(verdict(capsys, check_february_metric, untrained), "no autologged training")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_february_metric, odd)), odd


unpatched_rmse = sklearn.metrics.root_mean_squared_error  # bound before any autolog()
