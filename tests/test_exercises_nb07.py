"""Notebook 07's checkers: predicting from a model's URI, and a challenger logged in full."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pandas as pd
import pytest
import sklearn
from exercise_support import ODD_INPUTS, correct, hint, learner_store, months, verdict  # noqa: F401
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from helpers.exercises.nb07 import check_colleague_predictions, check_logged_challenger

FEATURES = ["PU_DO", "trip_distance"]


def pipeline(alpha: float = 1.0) -> Pipeline:
    train, _ = months()
    route = ColumnTransformer(
        [("route", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"])], remainder="passthrough"
    )
    model = Pipeline([("features", route), ("model", Ridge(alpha=alpha, tol=1e-8))])
    return model.fit(train[FEATURES], train["duration"])


def log(model, *, rmse=None, example=True, training_data=True, attach=True, flavour="sklearn"):
    """The notebook's logging cell, each part of which a test may leave out or get wrong."""
    train, val = months()
    measured = root_mean_squared_error(val["duration"], model.predict(val[FEATURES]))
    with warnings.catch_warnings(), mlflow.start_run(run_name="ridge-pipeline") as run:
        if training_data:
            data = mlflow.data.from_pandas(train[[*FEATURES, "duration"]], targets="duration")
            mlflow.log_input(data, context="training")
        kwargs = {"input_example": val[FEATURES].head(3)} if example else {}
        if flavour == "sklearn":
            info = mlflow.sklearn.log_model(
                model,
                name="duration-pipeline",
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                **kwargs,
            )
        else:  # a model of another flavour; pyfunc's advice on type hints is not the test's
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            info = mlflow.pyfunc.log_model(
                name="duration-pipeline",
                python_model=lambda inputs: inputs["trip_distance"] * 3.0,
                pip_requirements=["mlflow"],
                **kwargs,
            )
        if attach:
            value = measured if rmse is None else rmse
            mlflow.log_metric("rmse", value, model_id=info.model_id)
    return info, run.info.run_id


@pytest.fixture
def logged(store):
    info, _ = log(pipeline())
    return info


TRIPS = pd.DataFrame({"PU_DO": ["74_75", "74_75"], "trip_distance": [5.0, 10.0]})


def test_predictions_accept_the_solution_and_refuse_the_empty_answer(capsys, logged):
    predictions = mlflow.pyfunc.load_model(logged.model_uri).predict(TRIPS)
    assert correct(verdict(capsys, check_colleague_predictions, predictions, logged.model_uri))
    rounded = list(np.round(predictions, 1))  # as the solution prints them
    assert correct(verdict(capsys, check_colleague_predictions, rounded, logged.model_uri))
    out = verdict(capsys, check_colleague_predictions, None, logged.model_uri)
    assert hint(out, "put the model's two predictions")


def test_predictions_refuse_what_only_looks_right(capsys, logged):
    model = mlflow.pyfunc.load_model(logged.model_uri)
    right = model.predict(TRIPS)
    out = verdict(capsys, check_colleague_predictions, right[::-1], logged.model_uri)
    assert hint(out, "the right numbers in the wrong order")
    reversed_route = TRIPS.assign(PU_DO="75_74")  # pickup and drop-off swapped
    out = verdict(
        capsys, check_colleague_predictions, model.predict(reversed_route), logged.model_uri
    )
    assert hint(out, "check the route")
    other_model = pipeline(alpha=100.0).predict(TRIPS)  # another model's predictions
    out = verdict(capsys, check_colleague_predictions, other_model, logged.model_uri)
    assert hint(out, "not what the model predicts")
    out = verdict(capsys, check_colleague_predictions, right[:1], logged.model_uri)
    assert hint(out, "1 numbers", "one prediction per trip")
    out = verdict(capsys, check_colleague_predictions, ["fast", "slow"], logged.model_uri)
    assert hint(out, "should be numbers")
    out = verdict(capsys, check_colleague_predictions, [np.nan, 1.0], logged.model_uri)
    assert hint(out, "finite numbers")
    out = verdict(capsys, check_colleague_predictions, right, "models:/m-0000")
    assert hint(out, "no model to load at")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_colleague_predictions, odd, logged.model_uri)), odd


def test_challenger_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    info, _ = log(clone(pipeline()).set_params(model__alpha=10.0).fit(*training()))
    assert correct(verdict(capsys, check_logged_challenger, info.model_id))
    assert hint(verdict(capsys, check_logged_challenger, None), "put the model's id")


def training():
    train, _ = months()
    return train[FEATURES], train["duration"]


def test_challenger_refuses_what_only_looks_right(capsys, store):
    challenger = pipeline(alpha=10.0)
    info, run_id = log(challenger, rmse=6.0)  # a number typed in
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "not its RMSE on Febr")
    _, val = months()
    on_train = root_mean_squared_error(training()[1], challenger.predict(training()[0]))
    info, _ = log(challenger, rmse=on_train)  # measured on January
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "not its RMSE on Febr")
    assert hint(verdict(capsys, check_logged_challenger, run_id), "looks like a run's id")
    info, _ = log(pipeline(alpha=1.0))  # the notebook's own model, logged again
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "another `alpha`")
    info, _ = log(challenger, example=False)
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "has no signature")
    info, _ = log(challenger, attach=False)
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "no `rmse` attached")
    info, _ = log(challenger, training_data=False)
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "training data")
    info, _ = log(challenger, flavour="pyfunc")
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "scikit-learn flavour")
    out = verdict(capsys, check_logged_challenger, "m-00000000000000000000000000000000")
    assert hint(out, "no logged model with id")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_logged_challenger, odd)), odd


def test_challenger_hints_at_a_model_the_trips_cannot_feed_or_one_logged_outside_a_run(
    capsys, store
):
    train, val = months()
    renamed = train[FEATURES].rename(columns={"trip_distance": "miles"})
    route = ColumnTransformer(
        [("route", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"])], remainder="passthrough"
    )
    on_miles = Pipeline([("features", route), ("model", Ridge(alpha=10.0, tol=1e-8))])
    on_miles.fit(renamed, train["duration"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            on_miles,
            name="m",
            input_example=renamed.head(3),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        mlflow.log_metric("rmse", 6.4, model_id=info.model_id)
    out = verdict(capsys, check_logged_challenger, info.model_id)
    assert hint(out, "asks for ['miles']")

    strict = ColumnTransformer(  # OneHotEncoder's default: a route unseen in January fails
        [("route", OneHotEncoder(), ["PU_DO"])], remainder="passthrough"
    )
    unseen_fails = Pipeline([("features", strict), ("model", Ridge(alpha=10.0, tol=1e-8))])
    unseen_fails.fit(train[FEATURES], train["duration"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            unseen_fails,
            name="m",
            input_example=train[FEATURES].head(3),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        mlflow.log_metric("rmse", 6.4, model_id=info.model_id)
    out = verdict(capsys, check_logged_challenger, info.model_id)
    assert hint(out, "could not predict February's trips (ValueError)")

    challenger = pipeline(alpha=10.0)
    info = mlflow.sklearn.log_model(  # no run: the model is logged on its own
        challenger,
        name="m",
        input_example=val[FEATURES].head(3),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    measured = root_mean_squared_error(val["duration"], challenger.predict(val[FEATURES]))
    mlflow.log_metric("rmse", measured, model_id=info.model_id)
    mlflow.end_run()
    assert hint(verdict(capsys, check_logged_challenger, info.model_id), "logged outside a run")
