"""Checkers for notebook 07 (model management): predicting from a URI, logging a model fully."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.metrics import root_mean_squared_error

from helpers.data import load_trips, prepare_features
from helpers.exercises import Hint, checker, close_to, require

RUN_ID = re.compile(r"[0-9a-f]{32}")
ROUTE, DISTANCES = "74_75", (5.0, 10.0)
"""Exercise 1's two trips: the same route at two distances."""


@checker
def check_colleague_predictions(predictions: object, model_uri: str) -> str:
    """Exercise 1: the model's predictions for the two trips, in the order asked.

    The checker loads the model from its URI and predicts the trips itself, so it accepts the
    predictions of whatever model the learner's notebook logged, rounded or not.
    """
    require(predictions is not None, "put the model's two predictions in `predictions`.")
    try:
        answer = np.asarray(predictions, dtype=float).ravel()
    except (TypeError, ValueError):
        raise Hint("`predictions` should be numbers, as `predict` returns them.") from None
    require(answer.size == 2, f"{answer.size} numbers: the task asks for one prediction per trip.")
    require(answer.size and np.isfinite(answer).all(), "`predictions` should be finite numbers.")
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as error:
        raise Hint(f"no model to load at {model_uri!r} ({type(error).__name__}).") from None
    trips = pd.DataFrame({"PU_DO": [ROUTE, ROUTE], "trip_distance": list(DISTANCES)})
    expected = model.predict(trips)
    right = np.allclose(answer, expected, atol=0.06)
    if not right and np.allclose(answer, expected[::-1], atol=0.06):
        raise Hint("the right numbers in the wrong order: first 5 miles, then 10.")
    require(
        right,
        "not what the model predicts for those two trips: check the route (`PU_DO` is the "
        "pickup and drop-off zones joined by `_`) and the distances.",
    )
    return "the model's predictions for both trips, from its URI alone."


def hyperparameter(model: object, name: str) -> list[object]:
    """Values of ``name`` anywhere in a pipeline (the learner may name its steps as they like)."""
    params = model.get_params(deep=True)
    return [value for key, value in params.items() if key == name or key.endswith(f"__{name}")]


@checker
def check_logged_challenger(model_id: object) -> str:
    """Exercise 2: a logged model with what a colleague needs: signature, lineage, its metric.

    Why recompute the RMSE: a metric attached to a model is a claim; the checker loads the model
    from the store and measures it on February's trips, as a colleague could.
    """
    require(isinstance(model_id, str) and model_id, "put the model's id (`m-...`) in the variable.")
    require(
        not RUN_ID.fullmatch(model_id),
        "that looks like a run's id: a logged model has its own, `m-...`, in what `log_model` "
        "returns (`.model_id`).",
    )
    try:
        logged = mlflow.get_logged_model(model_id)
    except MlflowException:
        raise Hint(f"no logged model with id {model_id!r}: `log_model` returns it.") from None
    info = mlflow.models.get_model_info(f"models:/{model_id}")
    require(
        info.signature is not None and info.signature.inputs is not None,
        "the model has no signature: give `log_model` an input example (a few rows of trips).",
    )
    columns = info.signature.inputs.input_names()
    try:
        native = mlflow.sklearn.load_model(f"models:/{model_id}")
    except MlflowException:
        raise Hint("that model has no scikit-learn flavour: log it with mlflow.sklearn.") from None
    require(
        10.0 in hyperparameter(native, "alpha"),
        "this model's Ridge has another `alpha` than the task's.",
    )
    attached = {metric.key: metric.value for metric in logged.metrics or []}
    require(
        "rmse" in attached,
        "no `rmse` attached to the model: pass its `model_id` to `mlflow.log_metric`.",
    )
    february = prepare_features(load_trips("green", 2021, 2))
    unknown = sorted(set(columns) - set(february.columns))
    require(
        not unknown,
        f"the model's signature asks for {unknown}, which the trips do not have: log the "
        "pipeline trained on the trips' own columns, with a few of those rows as input example.",
    )
    try:
        predicted = native.predict(february[columns])
    except Exception as error:  # noqa: BLE001 - a learner's model: any failure becomes a hint
        raise Hint(
            f"the model could not predict February's trips ({type(error).__name__}): log the "
            "whole pipeline, preprocessing included, fitted on the trips' columns."
        ) from None
    measured = root_mean_squared_error(february["duration"], predicted)
    require(
        close_to(attached["rmse"], measured, 0.001),
        "the `rmse` attached to the model is not its RMSE on February's trips: compute it from "
        "this model's own predictions.",
    )
    require(logged.source_run_id, "the model was logged outside a run: log it inside one.")
    run = mlflow.get_run(logged.source_run_id)
    contexts = {
        tag.value
        for dataset_input in run.inputs.dataset_inputs
        for tag in dataset_input.tags
        if tag.key == "mlflow.data.context"
    }
    require(
        "training" in contexts,
        'its run does not link the training data: `mlflow.log_input(..., context="training")`.',
    )
    return "a logged model with a signature, its training data linked and its own RMSE attached."
