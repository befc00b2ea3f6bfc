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
