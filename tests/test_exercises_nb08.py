"""Notebook 08's checkers: a rollback traced to its run, and a promotion gate."""

from __future__ import annotations

import mlflow
import pytest
import sklearn
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401
from mlflow import MlflowClient
from sklearn.dummy import DummyRegressor

from helpers.exercises.nb08 import NAME, check_promote_if_better, check_rollback

MARCH_RMSE = {"1": 6.6, "2": 6.3, "3": 6.4}
"""Each version's RMSE on March: version 2 is the best, 3 the newest."""


@pytest.fixture
def registry(store) -> MlflowClient:
    """nyc-taxi-duration with three versions, `champion` on the newest, as in notebook 08."""
    client = MlflowClient()
    for version in MARCH_RMSE:
        with mlflow.start_run(run_name=f"model-{version}"):
            info = mlflow.sklearn.log_model(
                DummyRegressor().fit([[0.0]], [float(version)]),
                name="model",
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )
        mlflow.register_model(info.model_uri, NAME)
    client.set_registered_model_alias(NAME, "champion", "3")
    return client


def run_of(client: MlflowClient, version: str) -> str:
    return client.get_model_version(NAME, version).run_id


def test_rollback_accepts_the_solution_and_refuses_the_empty_answer(capsys, registry):
    assert hint(verdict(capsys, check_rollback, None), "put in the variable the id of the run")
    registry.set_registered_model_alias(NAME, "champion", "2")
    champion = registry.get_model_version_by_alias(NAME, "champion")
    assert correct(verdict(capsys, check_rollback, champion.run_id))


def test_rollback_refuses_what_only_looks_right(capsys, registry):
    newest_run = run_of(registry, "3")
    out = verdict(capsys, check_rollback, newest_run)  # the alias not moved back
    assert hint(out, "`champion` still points at the newest version")
    registry.set_registered_model_alias(NAME, "champion", "2")
    out = verdict(capsys, check_rollback, newest_run)  # moved, but the run of the newest
    assert hint(out, "not the run of the version `champion` points at")
    out = verdict(capsys, check_rollback, run_of(registry, "1"))  # an older version's run
    assert hint(out, "not the run of the version")
    out = verdict(capsys, check_rollback, "2")  # the version number, not a run id
    assert hint(out, "not the run of the version")
    registry.delete_registered_model_alias(NAME, "champion")
    assert hint(verdict(capsys, check_rollback, newest_run), "has no `champion` alias")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_rollback, odd)), odd


def gate(*, promote=None, answer=None, leave_challenger=False):
    """A promotion gate: by default the solution; each keyword makes one mistake."""
    client = MlflowClient()

    def promote_if_better(version):
        client.set_registered_model_alias(NAME, "challenger", version)
        champion = client.get_model_version_by_alias(NAME, "champion").version
        better = MARCH_RMSE[str(version)] < MARCH_RMSE[str(champion)]
        decided = better if promote is None else promote
        if decided:
            client.set_registered_model_alias(NAME, "champion", version)
        if not leave_challenger:
            client.delete_registered_model_alias(NAME, "challenger")
        return decided if answer is None else answer(decided)

    return promote_if_better


def test_gate_accepts_the_solution_and_refuses_the_empty_answer(capsys, registry):
    assert correct(verdict(capsys, check_promote_if_better, gate(), 1, 2))
    assert correct(verdict(capsys, check_promote_if_better, gate(), "1", "2"))
    out = verdict(capsys, check_promote_if_better, None, 1, 2)
    assert hint(out, "define `promote_if_better(version)`")
    assert str(registry.get_model_version_by_alias(NAME, "champion").version) == "3"  # put back
    assert "challenger" not in registry.get_registered_model(NAME).aliases


def test_gate_refuses_what_only_looks_right(capsys, registry):
    def check(promote_if_better):
        return verdict(capsys, check_promote_if_better, promote_if_better, 1, 2)

    assert hint(check(gate(promote=True)), "promoted a version that does worse on March")
    assert hint(check(gate(promote=False)), "kept a champion that does worse on March")
    assert hint(check(gate(answer=lambda decided: None)), "must return False")
    assert hint(check(gate(answer=lambda decided: not decided)), "must return False")
    assert hint(check(gate(answer=lambda decided: "yes" if decided else "")), "must return")
    assert hint(check(gate(leave_challenger=True)), "left the `challenger` alias behind")

    def crashes(version):
        return MARCH_RMSE[int(version)] < 6.5  # the table's keys are strings: KeyError

    assert hint(check(crashes), "your function raised KeyError")
    promoted = gate()(2)  # the function called, its answer passed
    registry.set_registered_model_alias(NAME, "champion", "3")
    assert hint(check(promoted), "pass the function itself")
    assert str(registry.get_model_version_by_alias(NAME, "champion").version) == "3"
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_promote_if_better, odd, 1, 2)), odd
