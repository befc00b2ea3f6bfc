"""The exercise checkers refuse wrong answers with a hint, without giving the answer away.

The notebooks' stored outputs already prove, on every nbval run, that each checker refuses
the empty answer and accepts the worked solution. These tests try the answers in between:
the mistakes a learner makes, and what the hint then says.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pytest

from helpers.exercises import Hint, checker, scratch_store
from helpers.exercises.nb00 import check_concepts
from helpers.exercises.nb01 import check_store_path
from helpers.exercises.nb02 import check_use_experiment
from helpers.exercises.nb12 import check_question_1, check_question_4


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A learner's store in an empty folder, with an active experiment."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    yield mlflow.set_experiment("nyc-taxi-experiment")
    mlflow.set_tracking_uri(None)


def verdict(capsys, check, *args) -> str:
    check(*args)
    return capsys.readouterr().out.strip()


def test_a_checker_prints_its_verdict_and_lets_real_bugs_through(capsys):
    @checker
    def check_positive(x):
        if x is None:
            raise Hint("give a number")
        return f"{1 / x} is fine"

    assert verdict(capsys, check_positive, None) == "Not yet: give a number"
    assert verdict(capsys, check_positive, 2) == "Correct: 0.5 is fine"
    with pytest.raises(ZeroDivisionError):  # a bug in a checker is not a learner's mistake
        check_positive(0)


def test_concepts_name_the_wrong_item_and_explain_the_words(capsys):
    answers = {
        "a model.pkl file": "metadata",
        "learning rate = 0.1": "metadata",
        "find the best churn model": "experiment",
        "last Tuesday's training of a random forest": "run",
    }
    out = verdict(capsys, check_concepts, answers)
    assert out.startswith("Not yet: 1 of 4") and "a model.pkl file" in out
    assert "artifact = a file" in out
    answers["a model.pkl file"] = "file"
    assert "not one of" in verdict(capsys, check_concepts, answers)


def test_store_path_hints_at_the_slash_that_was_missed(capsys, tmp_path):
    def ignores_absolute(uri, folder):
        return Path(folder) / uri.removeprefix("sqlite:///").lstrip("/")

    def crashes(uri, folder):
        return uri.split("//")[5]

    assert "Four slashes" in verdict(capsys, check_store_path, ignores_absolute)
    out = verdict(capsys, check_store_path, crashes)
    assert out.startswith("Not yet: ") and "IndexError" in out


def test_use_experiment_is_tried_on_a_scratch_store_and_the_learners_is_untouched(capsys, store):
    before = mlflow.search_experiments()
    out = verdict(capsys, check_use_experiment, mlflow.set_experiment)
    assert out.startswith("Not yet: ") and "restore" in out
    assert mlflow.get_tracking_uri() == "sqlite:///mlflow.db"
    assert [e.name for e in mlflow.search_experiments()] == [e.name for e in before]
    with mlflow.start_run() as run:  # the learner's active experiment is still theirs
        pass
    assert run.info.experiment_id == store.experiment_id


def test_scratch_store_restores_the_store_even_after_an_error(store):
    with pytest.raises(RuntimeError), scratch_store():
        mlflow.set_experiment("elsewhere")
        raise RuntimeError("a learner's function failed")
    assert mlflow.get_tracking_uri() == "sqlite:///mlflow.db"
    assert mlflow.get_experiment_by_name("elsewhere") is None


def test_homework_hints_never_contain_the_answer(capsys):
    out = verdict(capsys, check_question_1, "0.0.1")
    assert out.startswith("Not yet: ") and mlflow.__version__ not in out
    out = verdict(capsys, check_question_4, "--default-artifact-root")
    assert out.startswith("Not yet: ") and "artifacts-destination" not in out
    assert "no option" in verdict(capsys, check_question_4, "artifact-store")
    assert verdict(capsys, check_question_4, "--artifacts-destination").startswith("Correct: ")


def test_question_3_reads_the_newest_autologged_forest(capsys, store):
    from sklearn.ensemble import RandomForestRegressor

    from helpers.exercises.nb12 import check_question_3

    mlflow.set_experiment("nyc-taxi-homework")
    assert "no run in" in verdict(capsys, check_question_3, 2), "nothing autologged yet"
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0.0, 1.0, 2.0, 3.0]
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(run_name="a-forest-of-its-own"):
            RandomForestRegressor(n_estimators=2, min_samples_split=4, random_state=0).fit(X, y)
        out = verdict(capsys, check_question_3, 2)
        assert out.startswith("Not yet: read the parameter"), "2 is not what that run recorded"
        assert "set `min_samples_split` itself" in verdict(capsys, check_question_3, 4)
        with mlflow.start_run(run_name="the-question's-forest"):
            RandomForestRegressor(n_estimators=2, random_state=0).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert verdict(capsys, check_question_3, "2").startswith("Correct: ")
    assert verdict(capsys, check_question_3, 8).startswith("Not yet: ")


def test_question_6_scores_a_dataframe_pipeline_champion_and_hints_at_a_broken_one(capsys, store):
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.metrics import root_mean_squared_error
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from helpers.data import load_trips, prepare_features
    from helpers.exercises.nb12 import MODEL, check_question_6

    def champion(model, inputs):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", input_example=inputs.head(3),
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )  # fmt: skip
        version = mlflow.register_model(info.model_uri, MODEL)
        mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version.version)

    mlflow.set_experiment("nyc-taxi-homework")
    train, march = (prepare_features(load_trips("green", 2021, m)) for m in (1, 3))
    columns = ["PU_DO", "trip_distance"]
    pipeline = Pipeline([
        ("route", ColumnTransformer([("PU_DO", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"])],
                                    remainder="passthrough")),
        ("ridge", Ridge(alpha=1.0, tol=1e-8)),
    ]).fit(train[columns], train["duration"])  # fmt: skip
    champion(pipeline, train[columns])
    rmse = root_mean_squared_error(march["duration"], pipeline.predict(march[columns]))
    assert verdict(capsys, check_question_6, round(rmse, 3)).startswith("Correct: ")

    renamed = train[columns].rename(columns={"trip_distance": "miles"})
    champion(Ridge().fit(renamed[["miles"]], train["duration"]), renamed[["miles"]])
    out = verdict(capsys, check_question_6, round(rmse, 3))
    assert out.startswith("Not yet: the champion asks for columns") and "miles" in out
