"""Notebook 08's checkers: a rollback traced to its run, a promotion gate, a stricter gate."""

from __future__ import annotations

import mlflow
import pytest
import sklearn
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401
from mlflow import MlflowClient
from mlflow.models import MetricThreshold
from mlflow.models.evaluation import EvaluationResult
from sklearn.dummy import DummyRegressor

from helpers.exercises.nb08 import (
    NAME,
    check_promote_if_better,
    check_rollback,
    check_stricter_gate,
)

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


def evaluations(challenger_mae: float) -> dict:
    """Evaluations as notebook 08 makes them: the challenger's RMSE 4.9 % below the champion's."""
    return {
        "champion": EvaluationResult(
            {"mean_absolute_error": 4.38, "root_mean_squared_error": 6.289, "r2_score": 0.71}, {}
        ),
        "challenger": EvaluationResult(
            {"mean_absolute_error": challenger_mae, "root_mean_squared_error": 5.983}, {}
        ),
    }


def stricter_gate(*, mae=None, rmse=None) -> dict:
    """The stricter gate: by default the solution's; each keyword replaces one threshold."""
    return {
        "mean_absolute_error": mae or MetricThreshold(threshold=4.2, greater_is_better=False),
        "root_mean_squared_error": rmse
        or MetricThreshold(min_relative_change=0.03, greater_is_better=False),
    }


def test_stricter_gate_accepts_the_solution_and_refuses_the_empty_answer(capsys):
    out = verdict(capsys, check_stricter_gate, stricter_gate(), False, evaluations(4.23))
    assert correct(out) and "March's challenger does not pass" in out
    out = verdict(capsys, check_stricter_gate, stricter_gate(), True, evaluations(4.1))
    assert correct(out) and "March's challenger passes" in out
    assert hint(verdict(capsys, check_stricter_gate, None, None, evaluations(4.23)), "a dict")


def test_stricter_gate_refuses_what_only_looks_right(capsys):
    def check(gate, passes=False, results=None):
        return verdict(capsys, check_stricter_gate, gate, passes, results or evaluations(4.23))

    def lower(**kwargs):
        return MetricThreshold(greater_is_better=False, **kwargs)

    assert hint(check({"mae": 4.2, "rmse": 0.03}), "each value of `stricter` is a MetricThreshold")
    short = {"mae": lower(threshold=4.2), "rmse": lower(min_relative_change=0.03)}
    assert hint(check(short), "named as evaluate names them")
    only_mae = {"mean_absolute_error": lower(threshold=4.2)}
    assert hint(check(only_mae), "named as evaluate names them")
    higher = MetricThreshold(threshold=4.2, greater_is_better=True)  # an error is not a score
    assert hint(check(stricter_gate(mae=higher)), "refuses a candidate with MAE 4.15")
    assert hint(check(stricter_gate(mae=lower(threshold=4.5))), "passes a candidate with MAE 4.3")
    relative_mae = lower(threshold=4.2, min_relative_change=0.01)  # the MAE judged relatively too
    assert hint(check(stricter_gate(mae=relative_mae)), "refuses a candidate with MAE 4.15")
    wrong_way = MetricThreshold(min_relative_change=0.03, greater_is_better=True)
    assert hint(check(stricter_gate(rmse=wrong_way)), "refuses a candidate with MAE 4.15")
    minutes = lower(min_absolute_change=0.18)  # 3 % of 6 minutes, as minutes
    assert hint(check(stricter_gate(rmse=minutes)), "passes a candidate 0.25 minutes (2.5 %)")
    for change in (0.01, 0.05, 0.1, 0.15, 0.2, 0.3):  # no gain in minutes is 3 % of every RMSE
        out = check(stricter_gate(rmse=lower(min_absolute_change=change)))
        assert hint(out, "`min_relative_change` a fraction of the champion's value"), change
    per_cent = lower(min_relative_change=0.3)  # 30 %, not 3 %
    assert hint(check(stricter_gate(rmse=per_cent)), "refuses a candidate with MAE 4.15")
    too_loose = lower(min_relative_change=0.02)
    assert hint(check(stricter_gate(rmse=too_loose)), "passes a candidate whose RMSE is only 2.5")
    any_gain = lower(min_absolute_change=0.01)
    assert hint(check(stricter_gate(rmse=any_gain)), "passes a candidate whose RMSE is only 2.5")
    bar = lower(threshold=5.82)  # 3 % below one champion, as an absolute bar for every champion
    assert hint(check(stricter_gate(rmse=bar)), "refuses a candidate 3.5 % better")
    assert hint(check(stricter_gate(), True), "not what the gate says of March's challenger")
    assert hint(check(stricter_gate(), False, evaluations(4.1)), "not what the gate says")
    assert hint(check(stricter_gate(), "False"), "True or False")
    assert hint(check(stricter_gate(), None), "True or False")
    assert hint(check(stricter_gate(), False, {"x": 1}), "pass the notebook's `results`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_stricter_gate, odd, False, evaluations(4.23))), odd
