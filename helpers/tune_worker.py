"""One worker of a search that many processes share: Optuna picks, MLflow records.

Start as many as you like, on one machine or on several, with the same arguments: they share
the study through its Optuna **storage** (a journal file, or a database every machine
reaches), and each trial becomes a child run of one parent run on the **tracking server**::

    python -m helpers.tune_worker --study ridge-at-scale --storage journal:search.journal \\
        --tracking-uri http://127.0.0.1:5000 --parent-run-id RUN_ID --trials 10

Nothing here schedules anything: Optuna's storage is what lets workers that never talk to
each other ask for the next trial and never run the same one twice. A worker only needs the
study to exist (create it once, before the workers: workers that all create it race) and the
parent run to be open.

Storages (``--storage``):

- ``journal:PATH``: :class:`optuna.storages.JournalStorage` on a file every worker can write
  (one machine, or a shared disk). No heartbeat in Optuna 5.0: a killed worker's trial stays
  RUNNING until someone fails it (:func:`fail_orphaned_trials`).
- ``sqlite:///...``, ``postgresql+psycopg://...``: :class:`optuna.storages.RDBStorage`, with a
  heartbeat, so a killed worker's trial is failed by the others (and its run ended KILLED).
- ``mlflow``: :class:`mlflow.optuna.storage.MlflowStorage`, the study kept in the tracking
  server itself (in the parent run's experiment): nothing else to run, but slow.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings
from collections.abc import Callable

import mlflow
import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT_INTERVAL = 1
"""Seconds between a running trial's heartbeats (RDBStorage only)."""
GRACE_PERIOD = 5
"""Seconds without a heartbeat after which other workers fail a trial: its worker is dead.

Why 5 and not Optuna's default of twice the interval: a worker on a loaded 2-core machine
can miss a heartbeat or two while it fits, and a live trial failed by mistake is lost work
(optuna #5470: "Cannot tell a FAIL trial")."""
RUN_ID = "mlflow_run_id"
"""The trial's user attribute that names its MLflow run, so that whoever fails the trial can
end the run too."""
SERVER_TIMEOUT = 5
"""Seconds a worker waits for the tracking server before it says it cannot reach it."""

FEATURE_SETS = {
    "route": ["PU_DO", "trip_distance"],
    "zones": ["PULocationID", "DOLocationID", "trip_distance"],
    "route+zones": ["PU_DO", "PULocationID", "DOLocationID", "trip_distance"],
}
"""Notebook 05's feature sets: the same search, on more processes."""


class WorkerError(RuntimeError):
    """The worker cannot start; the message says what to do."""


def end_run_of(study: optuna.Study, trial: FrozenTrial) -> None:
    """Called by Optuna for a trial it failed because its worker stopped beating: end the
    trial's MLflow run KILLED too (the run of a killed process stays RUNNING otherwise)."""
    run_id = trial.user_attrs.get(RUN_ID)
    if run_id:
        mlflow.MlflowClient().set_terminated(run_id, "KILLED")


def open_storage(url: str, experiment_id: str | None = None) -> BaseStorage:
    """The Optuna storage ``url`` names (see the module's docstring)."""
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    if url == "mlflow":
        if experiment_id is None:
            raise WorkerError("--storage mlflow keeps the study in an experiment: name it.")
        from mlflow.optuna.storage import MlflowStorage  # here: it imports MLflow's Spark parts

        return MlflowStorage(experiment_id=experiment_id)
    if url.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "mysql"):
        with warnings.catch_warnings():  # Optuna 5.0 calls the heartbeat experimental, and warns
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=end_run_of,
            )
    raise WorkerError(
        f"Unknown storage {url!r}: use journal:PATH, sqlite:///PATH, "
        "postgresql+psycopg://USER@HOST/DB or mlflow."
    )


@functools.cache
def encoded(year: int = 2021) -> dict[str, tuple]:
    """Notebook 05's data, encoded once per feature set: ``name -> (X_train, X_val)``, and
    the targets under ``"y"``. Cached: a worker reads the trips once, not once per trial."""
    from sklearn.feature_extraction import DictVectorizer

    from helpers.data import load_trips, prepare_features

    train, val = (prepare_features(load_trips("green", year, month)) for month in (1, 2))
    data: dict[str, tuple] = {"y": (train["duration"].values, val["duration"].values)}
    for name, columns in FEATURE_SETS.items():
        dv = DictVectorizer()
        data[name] = (
            dv.fit_transform(train[columns].to_dict(orient="records")),
            dv.transform(val[columns].to_dict(orient="records")),
        )
    return data


def fit_and_score(params: dict) -> float:
    """Validation RMSE of the model ``params`` describe (``model``: ridge or forest)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.metrics import root_mean_squared_error

    data = encoded()
    (X_train, X_val), (y_train, y_val) = data[params["features"]], data["y"]
    if params["model"] == "forest":  # the module's homework model: CPU-bound, a second a trial
        model = RandomForestRegressor(
            n_estimators=params["n_estimators"], max_depth=params["max_depth"], random_state=0
        )
    else:
        model = Ridge(alpha=params["alpha"], tol=1e-8)
    return root_mean_squared_error(y_val, model.fit(X_train, y_train).predict(X_val))


def objective_for(
    parent: mlflow.entities.Run, model: str, worker: str
) -> Callable[[optuna.Trial], float]:
    """The objective: suggest, then fit and score inside a child run of ``parent``, in its
    experiment (a worker's own active experiment would be Default, or whatever its
    environment's ``MLFLOW_EXPERIMENT_ID`` says)."""

    def objective(trial: optuna.Trial) -> float:
        params = {
            "model": model,
            "features": trial.suggest_categorical("features", list(FEATURE_SETS)),
        }
        if model == "forest":
            params["n_estimators"] = trial.suggest_int("n_estimators", 5, 30)
            params["max_depth"] = trial.suggest_int("max_depth", 4, 16)
        else:
            params["alpha"] = trial.suggest_float("alpha", 0.01, 100.0, log=True)
        tags = {"optuna.trial": str(trial.number), "worker": worker}
        with mlflow.start_run(
            run_name=f"trial-{trial.number:03d}",
            experiment_id=parent.info.experiment_id,
            parent_run_id=parent.info.run_id,
            tags=tags,
        ) as run:
            trial.set_user_attr(RUN_ID, run.info.run_id)
            trial.set_user_attr("worker", worker)
            mlflow.log_params(params)
            rmse = fit_and_score(params)
            mlflow.log_metric("rmse", rmse)
        return rmse

    return objective


def check_server(tracking_uri: str, parent_run_id: str) -> mlflow.entities.Run:
    """The parent run, or an error that names the fix (server down, wrong run) in seconds."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(SERVER_TIMEOUT))
    mlflow.set_tracking_uri(tracking_uri)
    try:
        parent = mlflow.MlflowClient().get_run(parent_run_id)
    except mlflow.exceptions.MlflowException as error:
        if "RESOURCE_DOES_NOT_EXIST" in str(error) or "not found" in str(error).lower():
            raise WorkerError(
                f"The tracking server at {tracking_uri} has no run {parent_run_id}: pass the "
                "id of the search's parent run (--parent-run-id)."
            ) from None
        raise WorkerError(
            f"Cannot reach the tracking server at {tracking_uri} ({_first_line(error)}). "
            "Is it running, and is this its address? Start it with python -m helpers.server, "
            "or pass the address every worker can reach (--tracking-uri)."
        ) from None
    if parent.info.status != "RUNNING":
        raise WorkerError(
            f"The parent run {parent_run_id} is {parent.info.status}, not RUNNING: start the "
            "search's parent run first, and keep it open while the workers run."
        )
    return parent


def load_study(name: str, storage_url: str, experiment_id: str) -> optuna.Study:
    """The study the workers share, with a TPE sampler of this worker's own."""
    try:
        storage = open_storage(storage_url, experiment_id)
        sampler = optuna.samplers.TPESampler(n_startup_trials=10, constant_liar=True)
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        raise WorkerError(
            f"No study {name!r} in {storage_url}: create it once (optuna.create_study) before "
            "starting the workers."
        ) from None
    except Exception as error:  # noqa: BLE001 - a storage that cannot be opened, said plainly
        if isinstance(error, WorkerError):
            raise
        raise WorkerError(
            f"Cannot open the Optuna storage {storage_url} ({_first_line(error)}): is the "
            "database running and reachable from this machine, or the file's folder there?"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Fail the trials left RUNNING by workers that died, and end their runs KILLED.

    Call it when no worker runs any more (a journal storage has no heartbeat: nothing else
    ever fails them). Returns the failed trials' numbers."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        end_run_of(study, trial)
        failed.append(trial.number)
    return failed


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tune_worker",
        description="One worker of a shared Optuna search; every trial a child run on the "
        "tracking server. Start several, on one or many machines, with the same arguments.",
        epilog="Example, one of several workers sharing a journal file: python -m "
        "helpers.tune_worker --study ridge-at-scale --storage journal:search.journal "
        "--tracking-uri http://TRACKING-HOST:PORT --parent-run-id RUN_ID. Notebook 12 creates "
        "the study and the parent run first, and shows the command for many machines.",
    )
    parser.add_argument(
        "--study", required=True, help="the study's name (create it first, as notebook 12 does)"
    )
    parser.add_argument(
        "--storage", required=True,
        help="where the study lives, shared by every worker: journal:PATH (a journal file: one "
        "machine or a shared disk), sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
        "(RDBStorage, with a heartbeat), or mlflow (MlflowStorage: the study kept in the "
        "tracking server, in the parent run's experiment)",
    )  # fmt: skip
    parser.add_argument(
        "--tracking-uri", required=True,
        help="the tracking server's address, one every worker can reach (http://HOST:PORT)",
    )  # fmt: skip
    parser.add_argument(
        "--parent-run-id", required=True,
        help="the search's parent run: each trial becomes a child run of it, in its experiment",
    )  # fmt: skip
    parser.add_argument(
        "--trials", type=int, default=10, help="trials this worker runs (default: %(default)s)"
    )
    parser.add_argument(
        "--model", choices=("ridge", "forest"), default="ridge",
        help="notebook 05's model to tune: ridge (the default: alpha and the feature set) "
        "or forest (a random forest: n_estimators, max_depth and the feature set)",
    )  # fmt: skip
    parser.add_argument(
        "--name", default=f"worker-{os.getpid()}",
        help="this worker's name: the tag `worker` on each of its trial runs, and the prefix "
        "of what it prints (default: worker- and its process id)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    try:
        parent = check_server(args.tracking_uri, args.parent_run_id)
        study = load_study(args.study, args.storage, parent.info.experiment_id)
    except WorkerError as error:
        print(f"{args.name}: {error}", file=sys.stderr)
        return 2
    encoded()  # the data, read before the first trial: trials then only fit and log
    ready = time.monotonic()
    objective = objective_for(parent, args.model, args.name)
    try:
        study.optimize(objective, n_trials=args.trials)
    except mlflow.exceptions.MlflowException as error:
        print(f"{args.name}: lost the tracking server ({_first_line(error)})", file=sys.stderr)
        return 3
    done = time.monotonic()
    print(f"{args.name}: ready in {ready - started:.1f} s, trials in {done - ready:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
