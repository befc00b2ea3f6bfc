"""Checkers for notebook 08 (model registry): a rollback, and a promotion gate."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from helpers.exercises import Hint, checker, require

NAME = "nyc-taxi-duration"
"""The registered model of notebook 08."""


def champion_version(client: MlflowClient) -> str:
    """The version the ``champion`` alias points at (as text), or a hint if there is none."""
    try:
        return str(client.get_model_version_by_alias(NAME, "champion").version)
    except MlflowException:
        raise Hint(
            f"{NAME} has no `champion` alias: run the notebook's cells above first."
        ) from None


@checker
def check_rollback(run_id: object) -> str:
    """Exercise 1: ``champion`` is rolled back, and ``run_id`` is the run its model comes from."""
    require(
        isinstance(run_id, str) and run_id,
        "put in the variable the id of the run that made the champion's model.",
    )
    client = MlflowClient()
    champion = client.get_model_version(NAME, champion_version(client))
    newest = max(int(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))
    require(
        int(champion.version) < newest,
        "`champion` still points at the newest version: move it back to the previous one.",
    )
    require(
        run_id == champion.run_id,
        "that is not the run of the version `champion` points at: ask the registry for the "
        "alias's version; a version knows the run that made it.",
    )
    return f"champion rolled back, and traced to the run {mlflow.get_run(run_id).info.run_name}."


def try_gate(gate: Callable[[str], object], version: str) -> object:
    """Call the learner's function; its error becomes a hint instead of a traceback."""
    try:
        return gate(version)
    except Exception as error:  # a learner's bug: report it, keep the check going to a verdict
        raise Hint(f"your function raised {type(error).__name__}: {error}") from None


@checker
def check_promote_if_better(promote_if_better: object, weaker: object, stronger: object) -> str:
    """Exercise 2: the gate keeps a better champion and promotes a better challenger.

    The checker moves the ``champion`` alias to set up each case, calls the learner's function,
    and puts the alias back where it found it, so the registry ends as it started.
    """
    require(
        callable(promote_if_better),
        "define `promote_if_better(version)` and pass the function itself (no parentheses).",
    )
    client = MlflowClient()
    weaker, stronger = str(weaker), str(stronger)  # MLflow gives version numbers as int or str
    original = champion_version(client)
    had_challenger = "challenger" in client.get_registered_model(NAME).aliases
    try:
        for champion, candidate, better in ((stronger, weaker, False), (weaker, stronger, True)):
            client.set_registered_model_alias(NAME, "champion", champion)
            promoted = try_gate(promote_if_better, candidate)
            now = champion_version(client)
            if better:
                require(now == stronger, "it kept a champion that does worse on March.")
            else:
                require(now == champion, "it promoted a version that does worse on March.")
            decision = "promotes" if better else "keeps the champion"
            require(promoted is better, f"it must return {better} when it {decision}.")
            require(
                "challenger" not in client.get_registered_model(NAME).aliases,
                "it left the `challenger` alias behind: remove it once the decision is made.",
            )
    finally:
        client.set_registered_model_alias(NAME, "champion", original)
        if not had_challenger and "challenger" in client.get_registered_model(NAME).aliases:
            client.delete_registered_model_alias(NAME, "challenger")
    return "it keeps a better champion, promotes a better challenger, and says which it did."
