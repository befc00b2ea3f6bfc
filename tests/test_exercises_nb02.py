"""Notebook 02's checkers: experiments found by their owner tag, and reusing a deleted name."""

from __future__ import annotations

import mlflow
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401
from mlflow.entities import ViewType

from helpers.exercises.nb02 import check_owned_experiments, check_use_experiment


def own(owner: str, name: str = "my-first-experiment") -> None:
    mlflow.set_experiment(name)
    mlflow.set_experiment_tag("owner", owner)


def names_owned_by(owner: str) -> list[str]:
    # Double quotes: a name such as O'Brien holds the single one.
    found = mlflow.search_experiments(filter_string=f'tags.owner = "{owner}"')
    return [e.name for e in found]


def test_owned_experiments_accept_the_solution_and_refuse_the_empty_answer(capsys, store):
    assert hint(verdict(capsys, check_owned_experiments, None, None), "set `owner`")
    assert hint(verdict(capsys, check_owned_experiments, "alice", None), "no experiment called")
    own("alice")
    own("alice", "alices-other-experiment")
    names = names_owned_by("alice")
    mlflow.set_experiment("nyc-taxi-experiment")
    assert correct(verdict(capsys, check_owned_experiments, "alice", names))
    assert hint(verdict(capsys, check_owned_experiments, "alice", None), "set `names`")


def test_owned_experiments_refuse_what_only_looks_right(capsys, store):
    own("alice")
    own("alice", "alices-other-experiment")
    own("bob", "bobs-experiment")
    mlflow.set_experiment("nyc-taxi-experiment")
    out = verdict(capsys, check_owned_experiments, "bob", ["my-first-experiment"])  # other owner
    assert hint(out, "no `owner` tag equal to 'bob'")
    out = verdict(capsys, check_owned_experiments, "alice", ["my-first-experiment"])  # one missed
    assert hint(out, "not what a search on the tag finds")
    every = [e.name for e in mlflow.search_experiments()]  # the search without its filter
    assert hint(verdict(capsys, check_owned_experiments, "alice", every), "not what a search")
    out = verdict(capsys, check_owned_experiments, "alice", "my-first-experiment")  # not a list
    assert hint(out, "should be a list of experiment names")
    mlflow.set_experiment("alices-other-experiment")  # step 3 forgotten
    out = verdict(capsys, check_owned_experiments, "alice", names_owned_by("alice"))
    assert hint(out, "step 3", "active experiment again")


def test_owned_experiments_want_the_owner_as_text(capsys, store):
    own("42")  # a tag's value is always text
    mlflow.set_experiment("nyc-taxi-experiment")
    out = verdict(capsys, check_owned_experiments, 42, names_owned_by("42"))
    assert hint(out, "a string, in quotes")


def test_owned_experiments_take_a_name_with_quotes_and_odd_inputs(capsys, store):
    own("O'Brien")
    names = names_owned_by("O'Brien")
    mlflow.set_experiment("nyc-taxi-experiment")
    assert names == ["my-first-experiment"]
    assert correct(verdict(capsys, check_owned_experiments, "O'Brien", names))
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_owned_experiments, odd, names)), odd
        assert hint(verdict(capsys, check_owned_experiments, "O'Brien", odd)), odd


def solution(name):
    client = mlflow.MlflowClient()
    for deleted in mlflow.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{name}'"
    ):
        client.restore_experiment(deleted.experiment_id)
    return mlflow.set_experiment(name)


def test_use_experiment_accepts_the_solution_and_refuses_the_empty_answer(capsys, store):
    assert correct(verdict(capsys, check_use_experiment, solution))

    def empty(name):
        return None

    assert hint(verdict(capsys, check_use_experiment, empty), "must return the experiment")
    out = verdict(capsys, check_use_experiment, None)  # the function forgotten
    assert hint(out, "define use_experiment(name) and pass the function")
    called = solution("x")  # the function called, and its result passed instead of it
    assert hint(verdict(capsys, check_use_experiment, called), "define use_experiment(name)")


def test_use_experiment_refuses_functions_that_only_look_right(capsys, store):
    def never_activates(name):  # finds or creates it, and never makes it active
        client = mlflow.MlflowClient()
        found = client.get_experiment_by_name(name)
        if found is None:
            return client.get_experiment(client.create_experiment(name))
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return client.get_experiment(found.experiment_id)

    def makes_a_new_one(name):  # renames the deleted experiment away, then creates another
        client = mlflow.MlflowClient()
        deleted = mlflow.search_experiments(
            view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{name}'"
        )
        for experiment in deleted:
            client.restore_experiment(experiment.experiment_id)
            client.rename_experiment(experiment.experiment_id, f"{name}-old")
            client.delete_experiment(experiment.experiment_id)
        return mlflow.set_experiment(name)

    def finds_without_restoring(name):  # a deleted experiment is found by name too
        found = mlflow.get_experiment_by_name(name)
        return found if found is not None else mlflow.set_experiment(name)

    def returns_the_id(name):
        solution(name)
        return mlflow.get_experiment_by_name(name).experiment_id

    def always_new(name):  # a fresh name each call
        always_new.calls = getattr(always_new, "calls", 0) + 1
        return mlflow.set_experiment(f"{name}-{always_new.calls}")

    assert hint(verdict(capsys, check_use_experiment, never_activates), "make it the active one")
    assert hint(verdict(capsys, check_use_experiment, makes_a_new_one), "restore the deleted")
    assert hint(verdict(capsys, check_use_experiment, returns_the_id), "returned a str")
    out = verdict(capsys, check_use_experiment, finds_without_restoring)
    assert hint(out, "must be active again after the call: restore it")
    assert hint(verdict(capsys, check_use_experiment, always_new), "reuse the experiment")
    out = verdict(capsys, check_use_experiment, mlflow.set_experiment)  # deleted name: raises
    assert hint(out, "it raised MlflowException", "restore it")


def test_use_experiment_leaves_the_learners_store_untouched(capsys, store):
    before = mlflow.search_experiments(view_type=ViewType.ALL)
    uri = mlflow.get_tracking_uri()
    verdict(capsys, check_use_experiment, solution)
    verdict(capsys, check_use_experiment, mlflow.set_experiment)
    assert mlflow.get_tracking_uri() == uri
    after = mlflow.search_experiments(view_type=ViewType.ALL)
    assert [e.name for e in after] == [e.name for e in before]
    with mlflow.start_run() as run:  # the learner's active experiment is still theirs
        pass
    assert run.info.experiment_id == store.experiment_id
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_use_experiment, odd)), odd
