"""Checkers for notebook 08 (model registry): a rollback, a promotion gate, a stricter gate."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold
from mlflow.models.evaluation import EvaluationResult

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


STRICTER_METRICS = ("mean_absolute_error", "root_mean_squared_error")
"""Exercise 3's gate judges these two metrics, named as `mlflow.models.evaluate` names them."""

CANDIDATES = (
    # (MAE, RMSE) of a candidate, the champion's RMSE, whether the stricter gate passes it, and
    # the hint when a gate decides otherwise. The champion's MAE is 4.1 in every case: a gate
    # that judges the MAE relative to the champion refuses the first candidate.
    ((4.15, 5.8, 6.0), True, "a candidate with MAE 4.15 and an RMSE 3.3 % below the champion's"),
    ((4.2, 5.8, 6.0), True, "a candidate with MAE exactly 4.2 (at most 4.2 passes)"),
    ((4.3, 5.5, 6.0), False, "a candidate with MAE 4.3 (above 4.2)"),
    ((4.0, 5.85, 6.0), False, "a candidate whose RMSE is only 2.5 % below the champion's"),
    ((4.0, 6.2, 6.0), False, "a candidate whose RMSE is above the champion's"),
    ((4.0, 9.65, 10.0), True, "a candidate 3.5 % better than a champion at 10 minutes"),
    ((4.0, 9.75, 10.0), False, "a candidate 0.25 minutes (2.5 %) better than a champion at 10"),
    ((4.0, 1.93, 2.0), True, "a candidate 0.07 minutes (3.5 %) better than a champion at 2"),
    ((4.0, 1.95, 2.0), False, "a candidate 0.05 minutes (2.5 %) better than a champion at 2"),
)
"""Candidates the learner's gate must judge as the stated gate does."""


def gate_passes(gate: dict, candidate: dict, baseline: dict) -> bool:
    """Whether ``mlflow.validate_evaluation_results`` lets ``candidate`` pass ``gate``."""
    try:
        mlflow.validate_evaluation_results(
            gate, EvaluationResult(candidate, {}), EvaluationResult(baseline, {})
        )
    except MlflowException:  # ModelValidationFailedException is one
        return False
    return True


@checker
def check_stricter_gate(stricter: object, challenger_passes: object, results: object) -> str:
    """Exercise 3: a gate of an absolute MAE bar and a relative RMSE gain, and its verdict.

    The gate is judged by what it does: the checker runs ``validate_evaluation_results`` with it
    on made-up evaluations on either side of each condition, then on the notebook's own
    ``results`` to know the verdict the learner must report.
    """
    require(
        isinstance(stricter, dict) and stricter,
        "set `stricter` to a dict: metric name -> MetricThreshold(...).",
    )
    require(
        all(isinstance(t, MetricThreshold) for t in stricter.values()),
        "each value of `stricter` is a MetricThreshold(...), one per metric.",
    )
    require(
        set(stricter) == set(STRICTER_METRICS),
        f"the gate judges two metrics, named as evaluate names them (see `results[...].metrics`);"
        f" yours names {sorted(stricter)}.",
    )
    for (mae, rmse, champion_rmse), passes, who in CANDIDATES:
        candidate = {"mean_absolute_error": mae, "root_mean_squared_error": rmse}
        baseline = {"mean_absolute_error": 4.1, "root_mean_squared_error": champion_rmse}
        decided = gate_passes(stricter, candidate, baseline)
        require(
            decided == passes,
            f"your gate {'refuses' if passes else 'passes'} {who}. Check each MetricThreshold: "
            "`threshold` is an absolute bar, `min_relative_change` a fraction of the champion's "
            "value, and an error is better when lower.",
        )
    require(
        isinstance(results, dict) and {"champion", "challenger"} <= set(results),
        "pass the notebook's `results` (the evaluations of champion and challenger) as well.",
    )
    require(
        isinstance(challenger_passes, bool),
        "set `challenger_passes` to True or False: whether validate_evaluation_results raised.",
    )
    truth = gate_passes(stricter, results["challenger"].metrics, results["champion"].metrics)
    require(
        challenger_passes == truth,
        "that is not what the gate says of March's challenger: call "
        "mlflow.validate_evaluation_results(stricter, candidate, baseline) with the challenger's "
        "evaluation as candidate, and see whether it raises.",
    )
    verdict = "passes" if truth else "does not pass"
    return f"the stricter gate judges every candidate right, and March's challenger {verdict}."
