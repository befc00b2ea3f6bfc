"""Checkers for notebook 03's exercises: a run with fewer features, and one with the hour."""

from __future__ import annotations

import functools

from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import root_mean_squared_error

from helpers.data import load_trips, prepare_features
from helpers.exercises import checker, close_to, learner_run, require


@functools.cache
def module_matrices(features: tuple[str, ...], hour_as_category: bool = False) -> tuple:
    """January (train) and February (validation) encoded as notebooks 03-05 do: X, y of each.

    ``hour``, if among ``features``, is the pickup hour, as a number or as a category.
    """
    frames = []
    for month in (1, 2):
        trips = prepare_features(load_trips("green", 2021, month))
        hour = trips["lpep_pickup_datetime"].dt.hour
        frames.append(trips.assign(hour=hour.astype(str) if hour_as_category else hour))
    train, val = frames
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[list(features)].to_dict(orient="records"))
    X_val = dv.transform(val[list(features)].to_dict(orient="records"))
    return X_train, train["duration"].values, X_val, val["duration"].values


def _validation_rmse(features: tuple[str, ...], hour_as_category: bool = False) -> float:
    """The module's LinearRegression on January, scored on February, with ``features``."""
    X_train, y_train, X_val, y_val = module_matrices(features, hour_as_category)
    model = LinearRegression().fit(X_train, y_train)
    return root_mean_squared_error(y_val, model.predict(X_val))


BASELINE = ("PU_DO", "trip_distance")
WITH_HOUR = ("PU_DO", "trip_distance", "hour")


def _finished_with_rmse(run_id: object, name: str) -> float:
    run = learner_run(run_id, f"your `{name}` run")
    require(run.info.run_name == name, f"name the run `{name}` (run_name=...).")
    require("rmse" in run.data.metrics, "log the validation RMSE as a metric named `rmse`.")
    return run.data.metrics["rmse"]


@checker
def check_distance_only_run(run_id: str | None) -> str:
    """A ``distance-only`` run whose ``rmse`` is LinearRegression's on trip_distance alone."""
    rmse = _finished_with_rmse(run_id, "distance-only")
    baseline = _validation_rmse(BASELINE)
    require(
        not close_to(rmse, baseline),
        "that is the baseline's RMSE, with `PU_DO`: train on `trip_distance` alone.",
    )
    require(
        close_to(rmse, _validation_rmse(("trip_distance",))),
        "the run's rmse is not that of LinearRegression on `trip_distance` alone, trained on "
        "January and scored on February (y_val): check the columns and the data you scored.",
    )
    return f"without PU_DO the RMSE is {rmse - baseline:.1f} minutes worse than the baseline."


@checker
def check_hour_run(run_id: str | None) -> str:
    """A ``with-pickup-hour`` run whose ``rmse`` is LinearRegression's with the hour added.

    Why recompute: a logged number is a claim. The checker trains the three models a learner
    may have trained (without the hour, the hour as a number, the hour as a category) and says
    which one the run's RMSE belongs to, so each mistake gets its own hint.
    """
    rmse = _finished_with_rmse(run_id, "with-pickup-hour")
    baseline = _validation_rmse(BASELINE)
    candidates = {  # the model a learner may have trained -> its RMSE
        "without the hour": baseline,
        "the hour as a number": _validation_rmse(WITH_HOUR),
        "the hour as a category": _validation_rmse(WITH_HOUR, hour_as_category=True),
    }
    # The nearest, not the first within tolerance: on the sample data, adding the hour as a
    # number changes the RMSE by less than the tolerance.
    trained = min(candidates, key=lambda model: abs(candidates[model] - rmse))
    require(
        close_to(rmse, candidates[trained]),
        "the run's rmse is not that of LinearRegression on `PU_DO`, `trip_distance` and the "
        "pickup hour, trained on January and scored on February (y_val): check the features "
        "and the data you scored.",
    )
    require(
        trained != "without the hour",
        "that is the baseline's RMSE: the hour is not among the features the model saw. Add it "
        "to each trip's dict before `DictVectorizer`, and fit a new one.",
    )
    require(
        trained != "the hour as a number",
        f"the RMSE gains only {baseline - rmse:.2f} minutes. Given the hour as a number, a "
        "linear model can only make trips longer (or shorter) as the day goes on; the errors "
        "above go up and down with the hour. Look at how `DictVectorizer` encodes `PU_DO`, a "
        "feature whose values are not amounts.",
    )
    return f"the pickup hour cuts the RMSE by {baseline - rmse:.1f} minutes."
