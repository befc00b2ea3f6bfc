"""Notebook 00's checkers: the four words of experiment tracking, and the pinned versions."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from exercise_support import ODD_INPUTS, correct, hint, verdict

from helpers.env import pinned_requirements
from helpers.exercises.nb00 import _EXPECTED, check_concepts, check_sklearn_versions


def test_concepts_accept_the_solution_and_refuse_the_empty_answer(capsys):
    assert correct(verdict(capsys, check_concepts, dict(_EXPECTED)))
    empty = dict.fromkeys(_EXPECTED)
    assert hint(verdict(capsys, check_concepts, empty), "give each item one of")


@pytest.mark.parametrize(
    ("item", "wrong"),
    [
        ("a model.pkl file", "metadata"),  # a file is not a recorded value
        ("learning rate = 0.1", "artifact"),  # a value is not a file
        ("find the best churn model", "run"),  # a question, not one attempt
        ("last Tuesday's training of a random forest", "experiment"),  # one attempt
    ],
)
def test_concepts_name_the_wrong_item_and_recall_the_words(capsys, item, wrong):
    out = verdict(capsys, check_concepts, {**_EXPECTED, item: wrong})
    assert hint(out, "1 of 4", item, "artifact = a file", "run = one execution")


def test_concepts_refuse_a_word_that_is_not_one_of_the_four(capsys):
    out = verdict(capsys, check_concepts, {**_EXPECTED, "a model.pkl file": "file"})
    assert hint(out, "['file'] is not one of")


def test_concepts_refuse_a_renamed_item_and_odd_inputs(capsys):
    renamed = {**_EXPECTED, "model.pkl": "artifact"}
    del renamed["a model.pkl file"]
    assert hint(verdict(capsys, check_concepts, renamed), "keep the dictionary's four items")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_concepts, odd)), odd


def test_versions_accept_the_solution_and_refuse_the_empty_answer(capsys):
    installed, pinned = version("scikit-learn"), pinned_requirements()["scikit-learn"]
    assert correct(verdict(capsys, check_sklearn_versions, installed, pinned))
    assert hint(verdict(capsys, check_sklearn_versions, None, None), "fill in both")
    assert hint(verdict(capsys, check_sklearn_versions, installed, None), "fill in both")


def test_versions_refuse_another_package_a_typed_version_and_swapped_names(capsys):
    pinned = pinned_requirements()["scikit-learn"]
    mlflow_version = version("mlflow")  # the version of another package
    out = verdict(capsys, check_sklearn_versions, mlflow_version, pinned)
    assert hint(out, "`installed` is not what this environment has")
    out = verdict(capsys, check_sklearn_versions, version("scikit-learn"), "1.0")  # typed
    assert hint(out, "`pinned` is not the version requirements.in pins")
    out = verdict(
        capsys, check_sklearn_versions, version("scikit-learn"), pinned_requirements()["mlflow"]
    )
    assert hint(out, "`pinned` is not")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_sklearn_versions, odd, pinned)), odd
        assert hint(verdict(capsys, check_sklearn_versions, pinned, odd)), odd
