"""Checkers for notebook 02's exercises: experiments found by tag, and reusing a deleted name."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
from mlflow.entities import Experiment

from helpers.exercises import Hint, checker, require, scratch_store


@checker
def check_owned_experiments(owner: str | None, names: list[str] | None) -> str:
    """``names``: the experiments whose ``owner`` tag is ``owner``, found by a search."""
    require(owner, "set `owner` to the name you put in the `owner` tag.")
    mine = mlflow.get_experiment_by_name("my-first-experiment")
    require(mine, "there is no experiment called `my-first-experiment` yet: create it.")
    require(
        mine.tags.get("owner") == owner,
        f"`my-first-experiment` has no `owner` tag equal to {owner!r}: set the tag on it "
        "(set_experiment_tag acts on the active experiment).",
    )
    found = {e.name for e in mlflow.search_experiments(filter_string=f"tags.owner = '{owner}'")}
    require(names, "set `names` to the names your search found (a list).")
    require(
        sorted(names) == sorted(found),
        "`names` is not what a search on the tag finds: search with filter_string "
        "\"tags.owner = '...'\" and take each experiment's `.name`.",
    )
    return f"{len(found)} experiment(s) owned by {owner!r}, found by their tag."


@checker
def check_use_experiment(use_experiment: Callable[[str], Experiment] | None) -> str:
    """A function that makes an experiment active whether it is new, active or deleted."""
    require(callable(use_experiment), "define use_experiment(name) and pass the function.")
    with scratch_store():  # try it on a throwaway store, never on the course's runs
        client = mlflow.MlflowClient()
        try:
            created = use_experiment("brand-new")
            require(created is not None, "use_experiment must return the experiment.")
            require(
                created.lifecycle_stage == "active", "a new name must give an active experiment."
            )
            again = use_experiment("brand-new")
            require(
                again.experiment_id == created.experiment_id,
                "called twice with one name, it must reuse the experiment, not make another.",
            )
            client.delete_experiment(created.experiment_id)
            restored = use_experiment("brand-new")
        except Hint:
            raise
        except Exception as error:  # a learner's bug: report it as a hint
            raise Hint(
                f"it raised {type(error).__name__}: {str(error).rstrip('.')}. For a deleted "
                "experiment, look it up with search_experiments(view_type=...) and restore it "
                "before using it."
            ) from None
        require(
            restored.experiment_id == created.experiment_id,
            "for a deleted name, restore the deleted experiment (its runs come back with it) "
            "instead of making a new one.",
        )
        require(
            client.get_experiment(created.experiment_id).lifecycle_stage == "active",
            "the deleted experiment must be active again after the call.",
        )
    return "new, reused and deleted experiments all handled, and no run lost."
