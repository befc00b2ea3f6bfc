"""Checkers for notebook 02's exercises: experiments found by tag, and reusing a deleted name."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import mlflow.tracking.fluent
from mlflow.entities import Experiment

from helpers.exercises import Hint, checker, require, scratch_store

NOTEBOOK_EXPERIMENT = "nyc-taxi-experiment"


def active_experiment_id() -> str | None:
    """The experiment a new run would go to: what ``set_experiment`` last made active.

    MLflow has no public call for it; ``start_run`` asks this function, so the check sees what
    the learner's next run would do, without logging a run to find out.
    """
    return mlflow.tracking.fluent._get_experiment_id()


@checker
def check_owned_experiments(owner: str | None, names: list[str] | None) -> str:
    """``names``: the experiments whose ``owner`` tag is ``owner``, found by a search; and
    ``nyc-taxi-experiment`` active again (step 3)."""
    require(owner, "set `owner` to the name you put in the `owner` tag.")
    require(isinstance(owner, str), "`owner` is the tag's value: a string, in quotes.")
    mine = mlflow.get_experiment_by_name("my-first-experiment")
    require(mine, "there is no experiment called `my-first-experiment` yet: create it.")
    require(
        mine.tags.get("owner") == owner,
        f"`my-first-experiment` has no `owner` tag equal to {owner!r}: set the tag on it "
        "(set_experiment_tag acts on the active experiment).",
    )
    require(names, "set `names` to the names your search found (a list).")
    require(
        isinstance(names, list | tuple | set) and all(isinstance(n, str) for n in names),
        "`names` should be a list of experiment names (strings): take each experiment's `.name`.",
    )
    # The truth, without a filter string: an owner such as O'Brien needs no quoting here.
    found = {e.name for e in mlflow.search_experiments() if e.tags.get("owner") == owner}
    require(
        sorted(names) == sorted(found),
        "`names` is not what a search on the tag finds: search with filter_string "
        "\"tags.owner = '...'\" and take each experiment's `.name`.",
    )
    nyc_taxi = mlflow.get_experiment_by_name(NOTEBOOK_EXPERIMENT)
    require(
        nyc_taxi and active_experiment_id() == nyc_taxi.experiment_id,
        f"step 3: new runs would not go to `{NOTEBOOK_EXPERIMENT}`: make it the active "
        "experiment again with set_experiment.",
    )
    return f"{len(found)} experiment(s) owned by {owner!r}, found by their tag."


def _try(use_experiment: Callable[[str], object], name: str) -> Experiment:
    """Call the learner's function; its error, or a wrong return value, becomes a hint."""
    try:
        result = use_experiment(name)
    except Exception as error:  # a learner's bug: report it as a hint
        raise Hint(
            f"it raised {type(error).__name__}: {str(error).rstrip('.')}. For a deleted "
            "experiment, look it up with search_experiments(view_type=...) and restore it "
            "before using it."
        ) from None
    require(result is not None, "use_experiment must return the experiment.")
    require(
        isinstance(result, Experiment),
        f"it returned a {type(result).__name__}: return the Experiment (set_experiment "
        "returns it).",
    )
    require(
        active_experiment_id() == result.experiment_id,
        f"after use_experiment({name!r}) new runs do not go to that experiment: make it the "
        "active one (set_experiment).",
    )
    return result


@checker
def check_use_experiment(use_experiment: Callable[[str], Experiment] | None) -> str:
    """A function that makes an experiment active whether it is new, active or deleted."""
    require(callable(use_experiment), "define use_experiment(name) and pass the function.")
    with scratch_store():  # try it on a throwaway store, never on the course's runs
        client = mlflow.MlflowClient()
        created = _try(use_experiment, "brand-new")  # active: set_experiment refuses others
        again = _try(use_experiment, "brand-new")
        require(
            again.experiment_id == created.experiment_id,
            "called twice with one name, it must reuse the experiment, not make another.",
        )
        client.delete_experiment(created.experiment_id)
        restored = _try(use_experiment, "brand-new")
        require(
            restored.experiment_id == created.experiment_id,
            "for a deleted name, restore the deleted experiment (its runs come back with it) "
            "instead of making a new one.",
        )
        require(  # it may still be the active one from the first call, and deleted
            client.get_experiment(created.experiment_id).lifecycle_stage == "active",
            "the deleted experiment must be active again after the call: restore it.",
        )
    return "new, reused and deleted experiments all handled, and no run lost."
