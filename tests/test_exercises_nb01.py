"""Notebook 01's checkers: the database file of a tracking URI, relative and absolute."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401

from helpers.exercises.nb01 import check_database_file, check_store_path


def solution(uri, folder):
    return Path(folder) / uri.removeprefix("sqlite:///")


@pytest.fixture
def relative_store(store, tmp_path):
    """The learner's relative URI, as notebook 01 sets it. The name is the test's own: MLflow
    caches a store by its URI, so `sqlite:///mlflow.db` would reach an earlier test's file."""
    uri = f"sqlite:///{tmp_path.name}.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("nyc-taxi-experiment")
    return uri


def test_database_file_accepts_the_solution_and_refuses_the_empty_answer(capsys, relative_store):
    with mlflow.start_run():  # the store's file exists once something is logged
        pass
    database = Path(mlflow.get_tracking_uri().partition(":///")[2])
    assert correct(verdict(capsys, check_database_file, database))
    assert correct(verdict(capsys, check_database_file, str(database.resolve())))
    assert hint(verdict(capsys, check_database_file, None), "set `database`")


def test_database_file_refuses_another_file_a_missing_one_and_odd_inputs(
    capsys, relative_store, tmp_path
):
    with mlflow.start_run():
        pass
    (tmp_path / "other.db").touch()
    out = verdict(capsys, check_database_file, "other.db")  # another database of the folder
    assert hint(out, "not the file of the tracking URI")
    out = verdict(capsys, check_database_file, "notebooks/mlflow.db")  # the repository's
    assert hint(out, "not the file of the tracking URI")
    out = verdict(capsys, check_database_file, relative_store)  # the URI itself
    assert hint(out, "not the file of the tracking URI")
    mlflow.set_tracking_uri("sqlite:///not-yet.db")  # right path, nothing logged there yet
    assert hint(verdict(capsys, check_database_file, "not-yet.db"), "no file is there yet")
    mlflow.set_tracking_uri("http://127.0.0.1:5000")
    assert hint(verdict(capsys, check_database_file, "mlflow.db"), "set the course's tracking")
    mlflow.set_tracking_uri(relative_store)
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_database_file, odd)), odd


def test_store_path_accepts_the_solution_and_refuses_the_empty_answer(capsys):
    assert correct(verdict(capsys, check_store_path, solution))

    def empty(uri, folder):
        return None

    assert hint(verdict(capsys, check_store_path, empty), "returned None")
    assert hint(verdict(capsys, check_store_path, None), "define a function")


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        # four slashes read as relative: the folder is kept in front of an absolute path
        (lambda uri, folder: Path(folder) / uri.removeprefix("sqlite:///").lstrip("/"),
         "Four slashes"),
        # the folder forgotten: the relative path alone
        (lambda uri, folder: Path(uri.removeprefix("sqlite:///")), "Three slashes"),
        # the URI's scheme kept in the path
        (lambda uri, folder: Path(folder) / uri, "Three slashes"),
        # a typed answer: the course's own database, whatever the question
        (lambda uri, folder: "/projects/course/notebooks/mlflow.db", "Three slashes"),
        # a bug: the learner's function raises
        (lambda uri, folder: uri.split("//")[5], "IndexError"),
        # a wrong type: a number, a list
        (lambda uri, folder: 42, "returned a int"),
        (lambda uri, folder: [folder, uri], "returned a list"),
    ],
)  # fmt: skip
def test_store_path_gives_each_mistake_its_hint(capsys, wrong, says):
    assert hint(verdict(capsys, check_store_path, wrong), says)


def test_store_path_refuses_odd_inputs(capsys):
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_store_path, odd)), odd
