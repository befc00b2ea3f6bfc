"""What every checker shares (helpers/exercises/__init__.py): the verdict line, the learner's
run, and the scratch store a checker tries a learner's function in."""

from __future__ import annotations

import mlflow
import pytest
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401

from helpers.exercises import Hint, checker, close_to, learner_run, require, scratch_store


@checker
def check_run(run_id):
    return f"run {learner_run(run_id).info.run_name}"


def test_a_checker_prints_its_verdict_and_lets_real_bugs_through(capsys):
    @checker
    def check_positive(x):
        require(x is not None, "give a number")
        return f"{1 / x} is fine"

    assert verdict(capsys, check_positive, None) == "Not yet: give a number"
    assert verdict(capsys, check_positive, 2) == "Correct: 0.5 is fine"
    assert check_positive(2) is None  # a notebook cell shows the verdict line only
    capsys.readouterr()
    with pytest.raises(ZeroDivisionError):  # a bug in a checker is not a learner's mistake
        check_positive(0)


def test_require_stops_only_on_a_false_condition():
    require(True, "never shown")
    with pytest.raises(Hint, match="shown"):
        require(0, "shown")


def test_learner_run_takes_a_finished_run_and_names_every_other_state(capsys, store):
    with mlflow.start_run(run_name="done") as done:
        pass
    assert correct(verdict(capsys, check_run, done.info.run_id))
    assert hint(verdict(capsys, check_run, done), "that is the run itself", ".info.run_id")
    assert hint(verdict(capsys, check_run, mlflow.get_run(done.info.run_id)), "the run itself")
    with mlflow.start_run() as running:
        assert hint(verdict(capsys, check_run, running.info.run_id), "still running")
    with pytest.raises(RuntimeError), mlflow.start_run() as failed:
        raise RuntimeError("the learner's cell raised")
    assert hint(verdict(capsys, check_run, failed.info.run_id), "ended FAILED")
    with mlflow.start_run() as killed:
        pass
    mlflow.MlflowClient().set_terminated(killed.info.run_id, "KILLED")
    assert hint(verdict(capsys, check_run, killed.info.run_id), "ended KILLED", "interrupted")
    mlflow.MlflowClient().delete_run(done.info.run_id)
    assert hint(verdict(capsys, check_run, done.info.run_id), "that run was deleted")
    assert hint(verdict(capsys, check_run, "f" * 32), "no run with id")
    for odd in ODD_INPUTS:
        out = verdict(capsys, check_run, odd)
        assert hint(out, "no run with id" if isinstance(odd, str) and odd else "put the id"), odd


def test_close_to_is_a_tolerance_and_refuses_what_is_not_a_number():
    assert close_to(6.3, 6.305) and not close_to(6.3, 6.32)
    assert close_to(6.3, 6.4, tolerance=0.11)
    assert not close_to(float("nan"), 6.3) and not close_to(float("inf"), float("inf"))


def test_scratch_store_restores_the_store_and_the_active_experiment(store):
    uri = mlflow.get_tracking_uri()
    with scratch_store() as scratch:
        assert mlflow.get_tracking_uri() == scratch != uri
        assert mlflow.tracking.fluent._get_experiment_id() == "0", "none active in a new store"
        mlflow.set_experiment("elsewhere")
    assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_experiment_by_name("elsewhere") is None
    with pytest.raises(RuntimeError), scratch_store():
        mlflow.set_experiment("elsewhere")
        raise RuntimeError("a learner's function failed")
    assert mlflow.get_tracking_uri() == uri
    with mlflow.start_run() as run:  # the learner's active experiment is still theirs
        pass
    assert run.info.experiment_id == store.experiment_id
