"""Notebook 04's checkers: a labelled Ridge run, and the best linear run tagged afterwards."""

from __future__ import annotations

import functools

import mlflow
from exercise_support import (  # noqa: F401
    ODD_INPUTS,
    correct,
    finished_run,
    hint,
    learner_store,
    verdict,
)
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error

from helpers.data import load_trips, prepare_features
from helpers.exercises.nb04 import check_best_linear_tagged, check_tagged_ridge_run


@functools.cache
def ridge_rmse(alpha: float) -> float:
    """Ridge's validation RMSE as notebook 04 computes it, with its own DictVectorizer."""
    train, val = (prepare_features(load_trips("green", 2021, m)) for m in (1, 2))
    features = ["PU_DO", "trip_distance"]
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[features].to_dict(orient="records"))
    X_val = dv.transform(val[features].to_dict(orient="records"))
    model = Ridge(alpha=alpha, tol=1e-8).fit(X_train, train["duration"].values)
    return root_mean_squared_error(val["duration"].values, model.predict(X_val))


TAGS = {"developer": "bob", "model_family": "linear"}


def ridge_run(*, alpha="10.0", rmse=None, tags=TAGS, description="Stronger penalty.") -> str:
    return finished_run(
        "ridge-alpha-10",
        params={"model": "Ridge", **({"alpha": alpha} if alpha else {})},
        metrics={"rmse": ridge_rmse(10.0) if rmse is None else rmse},
        tags=tags,
        description=description,
    )


def test_tagged_ridge_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    assert correct(verdict(capsys, check_tagged_ridge_run, ridge_run()))
    assert correct(verdict(capsys, check_tagged_ridge_run, ridge_run(alpha="10")))
    assert hint(verdict(capsys, check_tagged_ridge_run, None), "put the id of your Ridge run")


def test_tagged_ridge_refuses_what_only_looks_right(capsys, store):
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(rmse=ridge_rmse(1.0)))  # alpha=1
    assert hint(out, "the rmse is not Ridge(alpha=10.0")
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(rmse=6.0))  # a number typed in
    assert hint(out, "the rmse is not Ridge(alpha=10.0")
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(alpha="1.0"))
    assert hint(out, "log the penalty as a parameter `alpha`")
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(alpha=None))
    assert hint(out, "log the penalty as a parameter `alpha`")
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(description=None))
    assert hint(out, "give the run a description")
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(tags={"model_family": "linear"}))
    assert hint(out, "tag the run with `developer`")
    out = verdict(capsys, check_tagged_ridge_run, ridge_run(tags={**TAGS, "model_family": "ridge"}))
    assert hint(out, "`model_family` = `linear`")
    no_rmse = finished_run("ridge", params={"alpha": "10.0"}, tags=TAGS, description="d")
    assert hint(verdict(capsys, check_tagged_ridge_run, no_rmse), "metric named `rmse`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_tagged_ridge_run, odd)), odd


def linear(name: str, rmse: float | None, family: str = "linear") -> str:
    return finished_run(
        name, metrics={"rmse": rmse} if rmse is not None else None, tags={"model_family": family}
    )


def test_best_linear_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    linear("linear-regression", 6.58)
    best = linear("ridge", 6.31)
    linear("random-forest", 6.05, family="tree")
    mlflow.MlflowClient().set_tag(best, "review", "best-linear")
    assert correct(verdict(capsys, check_best_linear_tagged, best))
    assert hint(verdict(capsys, check_best_linear_tagged, None), "put the id of the best")


def test_best_linear_refuses_what_only_looks_right(capsys, store):
    client = mlflow.MlflowClient()
    worse = linear("linear-regression", 6.58)
    best = linear("ridge", 6.31)
    forest = linear("random-forest", 6.05, family="tree")
    assert hint(verdict(capsys, check_best_linear_tagged, forest), "not tagged `model_family`")
    client.set_tag(worse, "review", "best-linear")
    assert hint(verdict(capsys, check_best_linear_tagged, worse), "a linear run with a lower")
    out = verdict(capsys, check_best_linear_tagged, best)  # found, not tagged yet
    assert hint(out, "found the right run; now tag it")
    mlflow.set_experiment("elsewhere")  # a better linear run, in another experiment
    other = linear("ridge-elsewhere", 5.0)
    client.set_tag(other, "review", "best-linear")
    assert hint(verdict(capsys, check_best_linear_tagged, other), "not in `nyc-taxi-experiment`")
    client.set_tag(best, "review", "best-linear")
    client.delete_run(best)  # the right run, thrown away
    assert hint(verdict(capsys, check_best_linear_tagged, best), "that run was deleted")


def test_best_linear_without_any_scored_linear_run_hints_instead_of_raising(capsys, store):
    unscored = linear("linear-regression", None)
    linear("random-forest", 6.05, family="tree")
    mlflow.MlflowClient().set_tag(unscored, "review", "best-linear")
    out = verdict(capsys, check_best_linear_tagged, unscored)
    assert hint(out, "no run of `nyc-taxi-experiment` is tagged")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_best_linear_tagged, odd)), odd
