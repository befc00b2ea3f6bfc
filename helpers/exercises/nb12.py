"""Checkers for notebook 12 (tuning at scale): a search of the learner's own on several workers,
and a function that ends what a dead worker left."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import mlflow
import optuna
from optuna.trial import TrialState

from helpers.exercises import Hint, checker, learner_run, require, scratch_store
from helpers.tune_worker import open_storage

SEARCH_NAME = "my-search"
WORKERS, TRIALS_EACH = 3, 4


def _children(parent_id: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        max_results=1000,
        output_format="list",
    )


@checker
def check_my_search(run_id: object) -> str:
    """The parent run of a search on 3 workers of 4 trials, checked against its own study."""
    run = learner_run(run_id, "your search's parent run")
    parent_of = run.data.tags.get("mlflow.parentRunId")
    require(
        not parent_of,
        "that is the run of one trial: give the id of its parent, the search's run "
        "(this run's tag `mlflow.parentRunId` names it).",
    )
    require(
        run.info.run_name == SEARCH_NAME,
        f"that run is named {run.info.run_name!r}: the search's parent run is `{SEARCH_NAME}`.",
    )
    params = run.data.params
    require(
        "study" in params and "storage" in params,
        "the parent run logged no `study` or `storage`: log both (`mlflow.log_params`), so that "
        "the run says where its study is.",
    )
    children = _children(run.info.run_id)
    expected = WORKERS * TRIALS_EACH
    require(
        len(children) == expected,
        f"the search has {len(children)} child runs: {WORKERS} workers of {TRIALS_EACH} trials "
        f"make {expected}.",
    )
    require(
        all(child.info.status == "FINISHED" for child in children),
        "some of its child runs are not FINISHED: was a worker stopped? Run the search again.",
    )
    workers = Counter(child.data.tags.get("worker") for child in children)
    require(
        sorted(workers.values()) == [TRIALS_EACH] * WORKERS,
        f"its trials came from {len(workers)} workers ({sorted(workers.values())} trials "
        f"each): start {WORKERS} workers of {TRIALS_EACH} trials (`Workers({WORKERS}, ...)`, "
        f"`trials={TRIALS_EACH}`).",
    )
    study = _study(params["study"], params["storage"])
    trials = study.get_trials(deepcopy=False)
    require(
        len(trials) == expected and all(t.state == TrialState.COMPLETE for t in trials),
        f"the study {params['study']!r} holds {len(trials)} trials, not {expected} COMPLETE "
        "ones: use a new study for this search, in a new journal file.",
    )
    require(
        sorted(int(c.data.tags.get("optuna.trial", -1)) for c in children)
        == sorted(t.number for t in trials),
        "the child runs are not the study's trials: was the search run on another study?",
    )
    best = min(children, key=lambda child: child.data.metrics.get("rmse", float("inf")))
    require(
        best.data.metrics.get("rmse") == study.best_value,
        "the study's best value is not the best child run's rmse: do they belong together?",
    )
    return (
        f"{expected} trials from {WORKERS} workers, one child run each, and the study agrees "
        "with MLflow on the best."
    )


def _study(name: str, storage: str) -> optuna.Study:
    """The study the parent run names, or a hint."""
    if storage.startswith("journal:") and not Path(storage.removeprefix("journal:")).is_file():
        raise Hint(
            f"there is no journal file {storage.removeprefix('journal:')!r} here: log the "
            "`storage` as the workers' `--storage` (`journal:<file>`), from this folder."
        )
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage))
    except Exception:  # noqa: BLE001 - a missing study, or a storage that cannot be opened
        raise Hint(
            f"no study {name!r} in {storage!r}: log the study's name and storage as the "
            "workers were given them."
        ) from None


def _orphaned_study(folder: str) -> tuple[optuna.Study, dict[str, str]]:
    """A journal study as a killed worker leaves it: a finished trial with its finished run, a
    trial still RUNNING with its run RUNNING, and one RUNNING before its run was started."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(Path(folder) / "orphans.journal"))
    )
    study = optuna.create_study(study_name="orphans", storage=storage)
    client = mlflow.MlflowClient()
    experiment_id = mlflow.create_experiment("orphans")
    runs = {}
    for name in ("finished", "orphan", "no-run"):
        trial = study.ask()
        if name != "no-run":
            run = client.create_run(experiment_id, run_name=name)
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            runs[name] = run.info.run_id
        if name == "finished":
            study.tell(trial, 6.5)
            client.set_terminated(runs[name], "FINISHED")
    return study, runs


@checker
def check_end_orphans(end_orphans: object) -> str:
    """The learner's function, run on a study of the check's own with a dead worker's trial."""
    require(callable(end_orphans), "`end_orphans` should be a function of one study.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with scratch_store(), tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
        study, runs = _orphaned_study(folder)
        _call(end_orphans, study)
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        status = {name: mlflow.get_run(run_id).info.status for name, run_id in runs.items()}
        require(
            states[0] == TrialState.COMPLETE and status["finished"] == "FINISHED",
            "it changed a finished trial or its run: end only the trials still RUNNING, and "
            "only their runs.",
        )
        require(
            states[1] == TrialState.FAIL and states[2] == TrialState.FAIL,
            "a trial is still RUNNING: fail each one "
            "(`study.tell(trial.number, state=TrialState.FAIL)`).",
        )
        require(
            status["orphan"] != "RUNNING",
            "the trial failed, but its MLflow run is still RUNNING: end it too "
            "(its id is the trial's user attribute `mlflow_run_id`).",
        )
        require(
            status["orphan"] == "KILLED",
            f"its run ended {status['orphan']}: KILLED says its process was stopped from "
            "outside; FAILED would say its own code raised.",
        )
        _call(end_orphans, study)  # once more, as after a second look: nothing left to do
    return "the dead worker's trials are FAIL, its run KILLED, and the rest as it was."


def _call(end_orphans: Callable, study: optuna.Study) -> None:
    try:
        end_orphans(study)
    except Exception as error:  # noqa: BLE001 - a learner's error becomes a hint
        raise Hint(
            f"your function raised {type(error).__name__}: {str(error).splitlines()[0][:200]}. "
            "Skip a trial without a run "
            "id, and tell only trials that are RUNNING."
        ) from None
