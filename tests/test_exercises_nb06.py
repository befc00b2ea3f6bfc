"""Notebook 06's checkers: an autologged run, a metric autologging logs, a system metric."""

from __future__ import annotations

import time

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

from helpers.exercises.nb06 import (
    SYSTEM_METRIC,
    check_autologged_run,
    check_february_metric,
    check_system_metric,
)

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


def history(run_id: str, metric: str = SYSTEM_METRIC) -> list[float]:
    found = mlflow.MlflowClient().get_metric_history(run_id, metric)
    return [m.value for m in sorted(found, key=lambda m: m.step)]


@pytest.fixture
def system_run(store) -> str:
    """A real run with system metrics, sampled each second as in notebook 06, for 2.5 s."""
    mlflow.set_system_metrics_sampling_interval(1)
    try:
        with mlflow.start_run(run_name="ridge-memory", log_system_metrics=True) as run:
            time.sleep(2.5)
    finally:
        mlflow.set_system_metrics_sampling_interval(None)
    return run.info.run_id


def test_system_metric_accepts_the_solution_and_refuses_the_empty_answer(capsys, system_run):
    memory = history(system_run)
    assert memory, "the monitor logged the memory at least once"
    out = verdict(capsys, check_system_metric, system_run, memory)
    assert correct(out) and f"{len(memory)} samples" in out
    assert hint(verdict(capsys, check_system_metric, None, None), "put the id of your run")
    cpu = history(system_run, "system/cpu_utilization_percentage")
    assert len(cpu) == len(memory)
    out = verdict(capsys, check_system_metric, system_run, cpu)  # another system metric
    assert hint(out, "not the values this run logged")


def test_system_metric_refuses_what_only_looks_right(capsys, store):
    def logged(name, values):
        with mlflow.start_run(run_name=name) as run:  # samples as the monitor logs them
            for step, value in enumerate(values):
                mlflow.log_metrics({SYSTEM_METRIC: value, "system/cpu": 50.0}, step=step)
        return run.info.run_id

    run_id = logged("memory", [900.0, 950.0, 1000.0])
    other = logged("other", [800.0, 850.0, 870.0])
    assert correct(verdict(capsys, check_system_metric, run_id, [900.0, 950.0, 1000.0]))
    last = mlflow.get_run(run_id).data.metrics[SYSTEM_METRIC]  # the run's data: the last value
    assert hint(verdict(capsys, check_system_metric, run_id, last), "a list, one value per")
    assert hint(verdict(capsys, check_system_metric, run_id, [last]), "your list has 1 values")
    out = verdict(capsys, check_system_metric, run_id, [1000.0, 950.0, 900.0])
    assert hint(out, "in another order")
    out = verdict(capsys, check_system_metric, run_id, history(other))  # another run's
    assert hint(out, "not the values this run logged")
    out = verdict(capsys, check_system_metric, run_id, ["900.0", "950.0", "1000.0"])
    assert hint(out, "holds numbers")
    plain = finished_run("no-system-metrics", metrics={"rmse": 6.0})
    assert hint(verdict(capsys, check_system_metric, plain, []), "no system metrics")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_system_metric, odd, [900.0])), odd
        assert hint(verdict(capsys, check_system_metric, run_id, odd)), odd
