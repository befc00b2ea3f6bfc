"""The checkers of notebook 12 (tuning at scale), with the answers they must refuse.

A search is logged here as the workers log it (a parent run, one child run per trial with the
worker's tags, the study in a journal file), without starting workers: the checks read only
what is stored. tests/test_solutions.py runs the real thing (the worked solution's workers).
"""

from __future__ import annotations

import mlflow
import optuna
import pytest
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401
from optuna.trial import TrialState

from helpers.exercises.nb12 import check_end_orphans, check_my_search


@pytest.fixture
def search(store, tmp_path):
    """A function that logs a search as the workers do; returns its parent run's id."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made = []

    def log_search(
        workers: int = 3, each: int = 4, name: str = "my-search", params: bool = True,
        journal: str | None = None, running_child: bool = False, trial_offset: int = 0,
        best_off: bool = False, logged_study: str | None = None,
    ) -> str:  # fmt: skip
        journal = journal or f"search-{len(made)}.journal"
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / journal))
        )
        study = optuna.create_study(study_name=f"study-{len(made)}", storage=storage)
        with mlflow.start_run(run_name=name) as parent:
            if params:
                logged = logged_study or study.study_name
                mlflow.log_params({"study": logged, "storage": f"journal:{journal}"})
            for number in range(workers * each):
                trial = study.ask()
                rmse = 6.0 + number / 100
                study.tell(trial, rmse - (0.5 if best_off and number == 0 else 0))
                tags = {"worker": f"worker-{number % workers}",
                        "optuna.trial": str(trial.number + trial_offset)}  # fmt: skip
                with mlflow.start_run(  # as a worker does it, here inside the parent's block
                    run_name=f"trial-{number:03d}", nested=True, tags=tags
                ) as child:
                    mlflow.log_params({"model": "ridge", "alpha": 1.0, "features": "route"})
                    mlflow.log_metric("rmse", rmse)
                if running_child and number == 0:
                    mlflow.MlflowClient().update_run(child.info.run_id, status="RUNNING")
        made.append(parent.info.run_id)
        return parent.info.run_id

    return log_search


def test_my_search_accepts_3_workers_of_4_trials(capsys, search):
    out = verdict(capsys, check_my_search, search())
    assert correct(out) and "12 trials from 3 workers" in out


def test_my_search_refuses_another_search_shape(capsys, search):
    assert hint(verdict(capsys, check_my_search, search(2, 6)), "came from 2 workers")
    assert hint(verdict(capsys, check_my_search, search(4, 3)), "came from 4 workers")
    assert hint(verdict(capsys, check_my_search, search(2, 10)), "has 20 child runs")
    assert hint(verdict(capsys, check_my_search, search(1, 11)), "has 11 child runs")


def test_my_search_refuses_the_wrong_run(capsys, search, store):
    parent = search()
    [child] = mlflow.search_runs(
        [store.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}' "
        "and attributes.run_name = 'trial-000'", output_format="list",
    )  # fmt: skip
    assert hint(verdict(capsys, check_my_search, child.info.run_id), "the run of one trial")
    assert hint(verdict(capsys, check_my_search, search(name="search")), "is named 'search'")
    assert hint(verdict(capsys, check_my_search, search(params=False)), "logged no `study`")
    with mlflow.start_run(run_name="my-search") as running:
        out = verdict(capsys, check_my_search, running.info.run_id)
    assert hint(out, "still running")
    assert hint(verdict(capsys, check_my_search, "0" * 32), "no run with id")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_my_search, odd)), odd


def test_my_search_checks_the_study_behind_it(capsys, search, tmp_path):
    assert hint(verdict(capsys, check_my_search, search(running_child=True)), "not FINISHED")
    gone = search(journal="gone.journal")
    (tmp_path / "gone.journal").unlink()
    assert hint(verdict(capsys, check_my_search, gone), "no journal file 'gone.journal'")
    assert hint(verdict(capsys, check_my_search, search(trial_offset=5)), "not the study's")
    out = verdict(capsys, check_my_search, search(logged_study="another-study"))
    assert hint(out, "no study 'another-study' in 'journal:")
    assert hint(verdict(capsys, check_my_search, search(best_off=True)), "best value")
    reused = search(journal="reused.journal")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "reused.journal"))
    )
    study = optuna.load_study(study_name=mlflow.get_run(reused).data.params["study"],
                              storage=storage)  # fmt: skip
    study.tell(study.ask(), 7.0)  # a study used for more than this search
    assert hint(verdict(capsys, check_my_search, reused), "holds 13 trials")


def right(study):
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        if "mlflow_run_id" in trial.user_attrs:
            mlflow.MlflowClient().set_terminated(trial.user_attrs["mlflow_run_id"], "KILLED")


def trials_only(study):
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)


def runs_failed(study):
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        if "mlflow_run_id" in trial.user_attrs:
            mlflow.MlflowClient().set_terminated(trial.user_attrs["mlflow_run_id"], "FAILED")


def every_trial(study):
    for trial in study.get_trials(deepcopy=False):
        study.tell(trial.number, state=TrialState.FAIL)


def every_run(study):
    trials_only(study)
    for trial in study.get_trials(deepcopy=False):
        if "mlflow_run_id" in trial.user_attrs:
            mlflow.MlflowClient().set_terminated(trial.user_attrs["mlflow_run_id"], "KILLED")


def no_run_id_check(study):
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        mlflow.MlflowClient().set_terminated(trial.user_attrs["mlflow_run_id"], "KILLED")


def test_end_orphans_accepts_the_fix_and_leaves_the_learners_store_alone(capsys, store):
    before = mlflow.search_experiments()
    assert correct(verdict(capsys, check_end_orphans, right))
    assert [e.name for e in mlflow.search_experiments()] == [e.name for e in before]


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        (lambda study: None, "a trial is still RUNNING"),
        (trials_only, "its MLflow run is still RUNNING"),
        (runs_failed, "its run ended FAILED"),
        (every_trial, "your function raised"),
        (every_run, "changed a finished trial or its run"),
        (no_run_id_check, "your function raised KeyError"),
        (None, "should be a function"),
        ("right", "should be a function"),
    ],
)
def test_end_orphans_refuses_plausible_mistakes(capsys, store, function, fragment):
    assert hint(verdict(capsys, check_end_orphans, function), fragment)
