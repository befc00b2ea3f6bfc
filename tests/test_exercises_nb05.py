"""Notebook 05's checkers: the best `zones` trial of the notebook's search, and a search of
one's own whose trials are Ridge's real scores."""

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
from helpers.exercises.nb05 import check_best_zones_trial, check_zones_search


def search(name: str, trials: list[tuple[str, float]]) -> tuple[str, list[str]]:
    """A parent run named ``name`` with one child run per (features, rmse); returns the ids."""
    children = []
    with mlflow.start_run(run_name=name) as parent:
        for number, (features, rmse) in enumerate(trials):
            children.append(
                finished_run(
                    f"trial-{number:02d}",
                    params={"alpha": 1.0 + number, "features": features},
                    metrics={"rmse": rmse},
                    nested=True,
                )
            )
    return parent.info.run_id, children


NOTEBOOK_TRIALS = [("route", 6.30), ("zones", 6.40), ("zones", 6.37), ("route+zones", 6.20)]


def test_best_zones_trial_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    _, trials = search("ridge-tuning", NOTEBOOK_TRIALS)
    assert correct(verdict(capsys, check_best_zones_trial, trials[2]))
    assert hint(verdict(capsys, check_best_zones_trial, None), "the best `zones` trial")


def test_best_zones_trial_refuses_what_only_looks_right(capsys, store):
    search("ridge-tuning", [("zones", 6.10)])  # an older run of the notebook's search
    parent, trials = search("ridge-tuning", NOTEBOOK_TRIALS)
    _, own_search = search("ridge-tuning-zones", [("zones", 6.36), ("zones", 6.38)])  # exercise 2
    older = mlflow.search_runs(
        filter_string="params.features = 'zones'", order_by=["metrics.rmse ASC"], max_results=1
    ).iloc[0]["run_id"]  # the parentRunId filter dropped: the best zones trial of any search
    assert hint(verdict(capsys, check_best_zones_trial, older), "belongs to another search")
    out = verdict(capsys, check_best_zones_trial, own_search[0])
    assert hint(out, "belongs to another search")
    assert hint(verdict(capsys, check_best_zones_trial, trials[3]), "did not use the `zones`")
    assert hint(verdict(capsys, check_best_zones_trial, trials[1]), "another `zones` trial")
    assert hint(verdict(capsys, check_best_zones_trial, parent), "this run has no parent")
    with mlflow.start_run(run_id=parent):  # a zones trial that logged no score
        unscored = finished_run("trial-99", params={"features": "zones"}, nested=True)
    assert hint(verdict(capsys, check_best_zones_trial, unscored), "no `rmse` metric")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_best_zones_trial, odd)), odd


ZONES = ["PULocationID", "DOLocationID", "trip_distance"]


@functools.cache
def zones_rmse(alpha: float) -> float:
    """Ridge on the zones features at ``alpha``, as the notebook's objective trains it."""
    train, val = (prepare_features(load_trips("green", 2021, m)) for m in (1, 2))
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[ZONES].to_dict(orient="records"))
    X_val = dv.transform(val[ZONES].to_dict(orient="records"))
    model = Ridge(alpha=alpha, tol=1e-8).fit(X_train, train["duration"].values)
    return root_mean_squared_error(val["duration"].values, model.predict(X_val))


ALPHAS = (0.05, 2.5, 40.0)


def zones_search(
    alphas=ALPHAS, *, rmse=zones_rmse, features="zones", nested=True, summary=True, **wrong
) -> str:
    """A learner's zones search: trials at ``alphas``, each logging ``rmse(alpha)``."""
    scores = {alpha: rmse(alpha) for alpha in alphas}

    def trials():
        for number, alpha in enumerate(alphas):
            finished_run(
                f"zones-trial-{number:02d}",
                params={"model": "Ridge", "alpha": alpha, "features": features},
                metrics={"rmse": scores[alpha]},
                nested=nested,
            )

    with mlflow.start_run(run_name="ridge-tuning-zones") as parent:
        if nested:
            trials()
        best = min(scores, key=scores.get)
        if summary:
            mlflow.log_param("best_alpha", wrong.get("best_alpha", best))
            mlflow.log_metric("best_rmse", wrong.get("best_rmse", scores[best]))
    if not nested:  # runs of their own, after the parent: MLflow refuses them inside it
        trials()
    return parent.info.run_id


def test_zones_search_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    parent = zones_search()
    assert correct(verdict(capsys, check_zones_search, parent, len(ALPHAS)))
    assert hint(verdict(capsys, check_zones_search, None), "your search's parent run")


def test_zones_search_refuses_typed_numbers_and_other_searches(capsys, store):
    typed = zones_search(rmse=lambda alpha: 6.0 + alpha / 1000)  # numbers typed, nothing trained
    out = verdict(capsys, check_zones_search, typed, len(ALPHAS))
    assert hint(out, "but Ridge (tol=1e-8) on the `zones` features gives another RMSE")
    route = zones_search(features="route")
    assert hint(verdict(capsys, check_zones_search, route, len(ALPHAS)), "`zones` features")
    same = zones_search(alphas=(2.5, 2.5, 2.5))
    assert hint(verdict(capsys, check_zones_search, same, 3), "the same `alpha`")
    flat = zones_search(nested=False)  # the trials are runs of their own, not children
    assert hint(verdict(capsys, check_zones_search, flat, len(ALPHAS)), "no child runs", "nested")


def test_zones_search_names_a_short_search_and_a_wrong_summary(capsys, store):
    short = zones_search()
    out = verdict(capsys, check_zones_search, short)  # the task's 10 trials, 3 run
    assert hint(out, "has 3 trials and the task asks for 10", "n_trials=10")
    assert "nested" not in out
    out = verdict(capsys, check_zones_search, zones_search(summary=False), len(ALPHAS))
    assert hint(out, "`best_rmse` must be its best trial's RMSE")
    out = verdict(capsys, check_zones_search, zones_search(best_rmse=6.0), len(ALPHAS))
    assert hint(out, "`best_rmse` must be")
    out = verdict(capsys, check_zones_search, zones_search(best_alpha=40.0), len(ALPHAS))
    assert hint(out, "`best_alpha` must be the `alpha` of its best trial")
    out = verdict(capsys, check_zones_search, zones_search(best_alpha="two"), len(ALPHAS))
    assert hint(out, "`best_alpha` parameter is not a number")
    trial = mlflow.search_runs(filter_string="tags.mlflow.parentRunId != ''").iloc[0]["run_id"]
    assert hint(verdict(capsys, check_zones_search, trial, 3), "this run is a trial")


def search_with_alphas(alphas: tuple[str, ...]) -> str:
    with mlflow.start_run(run_name="ridge-tuning-zones") as parent:
        for number, alpha in enumerate(alphas):
            finished_run(
                f"zones-trial-{number:02d}",
                params={"alpha": alpha, "features": "zones"},
                metrics={"rmse": 6.4},
                nested=True,
            )
    return parent.info.run_id


def test_zones_search_refuses_a_trial_that_logged_no_score(capsys, store):
    parent = zones_search()
    with mlflow.start_run(run_id=parent):
        finished_run("zones-trial-99", params={"alpha": 1.0, "features": "zones"}, nested=True)
    out = verdict(capsys, check_zones_search, parent, 3)
    assert hint(out, "every trial must log its `alpha` parameter and its `rmse` metric")


def test_zones_search_refuses_a_trial_without_a_usable_alpha_and_odd_inputs(capsys, store):
    out = verdict(capsys, check_zones_search, search_with_alphas(("abc", "1", "2.5")), 3)
    assert hint(out, "an `alpha` that is not a number")
    out = verdict(capsys, check_zones_search, search_with_alphas(("-1", "1", "2.5")), 3)
    assert hint(out, "Ridge needs alpha > 0")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_zones_search, odd)), odd
