"""Tuning at scale, for real: many ``helpers.tune_worker`` processes share one Optuna search.

Each test starts real worker processes (:mod:`helpers.scale`) against a real ``mlflow
server``: eight workers on SQLite and a journal file, the same on PostgreSQL (MLflow's and
Optuna's databases apart), a worker killed with SIGKILL mid-trial (RDB storage: the
heartbeat fails its trial and ends its run KILLED; journal storage:
:func:`helpers.tune_worker.fail_orphaned_trials` does), the workers' parent killed or
interrupted (the watchdogs stop every worker), and a worker's errors (server down, wrong
run, no study, unknown or unreachable storage) said in one line with exit code 2.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
import psutil
import psycopg
import pytest
from child_python import python_env
from cleanup_guard import child_mark
from optuna.trial import TrialState
from test_team_server_postgres import (  # noqa: F401 - postgres_uri is a fixture used here
    PASSWORD,
    libpq_uri,
    postgres_uri,
    start_server,
)

from helpers.background import MARKER, processes_with_environment
from helpers.scale import Workers, worker_arguments
from helpers.server import MlflowServer, free_port
from helpers.tune_worker import (
    FEATURE_SETS,
    GRACE_PERIOD,
    RUN_ID,
    fail_orphaned_trials,
    open_storage,
)

WORKER_MODULE = "helpers.tune_worker"


# --- the search: a tracking server, a parent run, a study -------------------------------------


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    """One ``mlflow server`` on SQLite for the module (each test has its own experiment)."""
    folder = tmp_path_factory.mktemp("tracking")
    server = MlflowServer.start(
        "sqlite:///server.db",
        artifacts_destination=str(folder / "art"),
        port=free_port(5055),
        folder=folder,
    )
    try:
        yield server
    finally:
        server.stop()
    assert server.processes() == [], "the tracking server left processes behind"


@pytest.fixture
def tracking(sqlite_server):
    """The module's server as this process's tracking URI (as a notebook sets it)."""
    mlflow.set_tracking_uri(sqlite_server.url)
    try:
        yield sqlite_server
    finally:
        mlflow.set_tracking_uri(None)


@dataclass
class Search:
    """What the workers share: an experiment, its parent run, the study."""

    name: str
    storage: str
    tracking_uri: str
    client: mlflow.MlflowClient
    experiment_id: str
    parent_run_id: str
    study: optuna.Study

    def arguments(self, trials: int, model: str = "ridge") -> list[str]:
        return worker_arguments(
            self.name, self.storage, self.tracking_uri, self.parent_run_id, trials, model
        )

    def runs(self, *filters: str) -> list[mlflow.entities.Run]:
        """The parent's child runs, in whichever experiment they are (``filters`` added).

        Why every experiment: a child run belongs in its parent's experiment, and the test
        that says so must see the children that landed elsewhere."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        where = " and ".join([f"tags.mlflow.parentRunId = '{self.parent_run_id}'", *filters])
        return self.client.search_runs(experiments, filter_string=where, max_results=5000)

    def end(self) -> None:
        self.client.set_terminated(self.parent_run_id, "FINISHED")


def new_search(tracking_uri: str, storage: str, label: str) -> Search:
    """A new experiment with a RUNNING parent run, and the study, created before any worker."""
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(name)
    parent = client.create_run(experiment_id, run_name="search")
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage, experiment_id),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=42),
    )
    return Search(name, storage, tracking_uri, client, experiment_id, parent.info.run_id, study)


def worker_processes(study: str) -> list[psutil.Process]:
    """Running ``helpers.tune_worker`` processes of the study ``study`` (its name is unique).

    Why the study's name too: other work on this machine may run workers of its own."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            command = process.cmdline()
            if WORKER_MODULE in command and study in command and process.status() != "zombie":
                found.append(process)
    return found


def gone(process: psutil.Process) -> bool:
    """True once ``process`` has ended (a zombie has: only its exit status is left)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def logs_of(workers: Workers) -> dict[str, str]:
    return {w.worker_name: w.log.read_text(errors="replace") for w in workers.workers}


# --- 1, 2: eight workers, one search ----------------------------------------------------------


def check_eight_workers(search: Search, folder: Path, count: int = 8, trials: int = 25) -> None:
    """``count`` workers of ``trials`` ridge trials each: every trial a finished child run."""
    total = count * trials
    with Workers(count, search.arguments(trials, "ridge"), folder) as workers:
        waited = workers.wait(search.study, total, timeout=400, show=False)
        codes = {w.worker_name: w.exit_code() for w in workers.workers}
        logs = logs_of(workers)
    print(f"{count} workers x {trials} trials: {waited:.1f} s")
    assert codes == {f"worker-{n}": 0 for n in range(count)}, logs
    for name, text in logs.items():
        assert "database is locked" not in text, f"{name}: {text[-2000:]}"
        assert "Traceback" not in text, f"{name}: {text[-2000:]}"
    assert worker_processes(search.name) == []

    trials_ = search.study.get_trials()
    assert len(trials_) == total
    assert {t.state for t in trials_} == {TrialState.COMPLETE}
    assert sorted(t.number for t in trials_) == list(range(total))

    runs, experiment = search.runs(), search.experiment_id
    assert len(runs) == total
    misplaced = [run.info.experiment_id for run in runs if run.info.experiment_id != experiment]
    assert misplaced == [], (
        f"child runs belong in their parent's experiment {experiment}, "
        f"{len(misplaced)} of {total} are in experiment(s) {sorted(set(misplaced))}"
    )
    assert {run.info.status for run in runs} == {"FINISHED"}
    for run in runs:
        assert run.data.params.keys() == {"model", "features", "alpha"}, run.data.params
        assert run.data.params["model"] == "ridge"
        assert run.data.params["features"] in FEATURE_SETS
        assert "rmse" in run.data.metrics
    by_number = {int(run.data.tags["optuna.trial"]): run for run in runs}
    assert sorted(by_number) == list(range(total)), "200 distinct trial numbers, 0 to 199"
    for trial in trials_:  # each run is its trial's: same id, parameters and score
        run = by_number[trial.number]
        assert trial.user_attrs[RUN_ID] == run.info.run_id
        assert run.data.params["features"] == trial.params["features"]
        assert float(run.data.params["alpha"]) == pytest.approx(trial.params["alpha"])
        assert run.data.metrics["rmse"] == pytest.approx(trial.value, rel=1e-12)
    best_run = min(runs, key=lambda run: run.data.metrics["rmse"])
    assert search.study.best_value == pytest.approx(best_run.data.metrics["rmse"], rel=1e-12)
    assert search.study.best_trial.number == int(best_run.data.tags["optuna.trial"])


def test_eight_workers_on_sqlite_and_a_journal_file(sqlite_server, tmp_path):
    search = new_search(sqlite_server.url, f"journal:{tmp_path / 'search.log'}", "eight")
    try:
        check_eight_workers(search, tmp_path)
    finally:
        search.end()


@pytest.fixture
def two_databases(postgres_uri, monkeypatch):  # noqa: F811 - the imported fixture
    """MLflow's database and Optuna's, apart, on one PostgreSQL server; the password in the
    environment only (the workers inherit it)."""
    with psycopg.connect(libpq_uri(postgres_uri), password=PASSWORD, autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS optuna")
        db.execute("CREATE DATABASE optuna")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return postgres_uri, postgres_uri.rsplit("/", 1)[0] + "/optuna"


def tables_and_revision(uri: str) -> tuple[set[str], str]:
    with psycopg.connect(libpq_uri(uri), password=PASSWORD) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        revision = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(revision) == 1, f"one alembic revision in {uri}, not {revision}"
    return {name for (name,) in tables}, revision[0][0]


def test_eight_workers_on_postgresql(two_databases, tmp_path):
    mlflow_uri, optuna_uri = two_databases
    with start_server(mlflow_uri, tmp_path / "artifacts") as server:
        search = new_search(server.url, optuna_uri, "eight-pg")
        try:
            check_eight_workers(search, tmp_path)
        finally:
            search.end()
    mlflow_tables, mlflow_revision = tables_and_revision(mlflow_uri)
    optuna_tables, optuna_revision = tables_and_revision(optuna_uri)
    assert {"runs", "experiments", "alembic_version"} <= mlflow_tables
    assert {"trials", "studies", "alembic_version"} <= optuna_tables
    assert "runs" not in optuna_tables and "trials" not in mlflow_tables
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert mlflow_revision == _get_latest_schema_revision()
    assert optuna_revision == optuna.storages.RDBStorage(optuna_uri).get_current_version()
    with psycopg.connect(libpq_uri(mlflow_uri), password=PASSWORD) as db:
        query = (
            "SELECT runs.status, runs.experiment_id, count(*) FROM runs JOIN tags"
            " ON tags.run_uuid = runs.run_uuid AND tags.key = 'mlflow.parentRunId'"
            " WHERE tags.value = %s GROUP BY runs.status, runs.experiment_id"
        )
        children = db.execute(query, (search.parent_run_id,)).fetchall()
        parent = db.execute("SELECT status FROM runs WHERE run_uuid = %s", (search.parent_run_id,))
        assert parent.fetchall() == [("FINISHED",)]
    assert children == [("FINISHED", int(search.experiment_id), 200)], "in PostgreSQL itself"
    with psycopg.connect(libpq_uri(optuna_uri), password=PASSWORD) as db:
        assert db.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall() == [
            ("COMPLETE", 200)
        ]


# --- 3, 4: a worker killed with SIGKILL mid-trial ---------------------------------------------


@dataclass
class Kill:
    trial: int
    run_id: str
    started_by_victim: int
    """Trials the victim had started when it died, the killed one included."""
    at: datetime.datetime


def kill_mid_trial(search: Search, workers: Workers, timeout: float = 180) -> Kill:
    """SIGKILL worker-0 while it runs a trial that has its MLflow run.

    Stopped first (SIGSTOP), then checked, then killed: a trial seen RUNNING may have ended
    by the time a kill lands, and a stopped process cannot end it."""
    victim = workers.workers[0]
    process = psutil.Process(victim.process.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert victim.exit_code() is None, victim.log_tail()
        for trial in search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run_id = trial.user_attrs.get(RUN_ID)
            if not run_id or search.client.get_run(run_id).data.tags.get("worker") != "worker-0":
                continue
            process.suspend()
            now = {t.number: t for t in search.study.get_trials(deepcopy=False)}
            if now[trial.number].state != TrialState.RUNNING:  # it ended before it stopped
                process.resume()
                break
            started = search.runs("tags.worker = 'worker-0'")
            killed_at = datetime.datetime.now()
            process.kill()
            victim.process.wait(timeout=10)  # Popen's wait: it keeps the exit code
            return Kill(trial.number, run_id, len(started), killed_at)
        time.sleep(0.05)
    raise AssertionError(f"worker-0 ran no trial within {timeout:.0f} s: {victim.log_tail()}")


def check_survivors(search: Search, workers: Workers, kill: Kill, trials: int) -> None:
    """Everything but the killed trial ended well; no trial or run was lost."""
    codes = [w.exit_code() for w in workers.workers]
    logs = logs_of(workers)
    assert codes == [-signal.SIGKILL] + [0] * (len(codes) - 1), logs
    for name, text in logs.items():
        assert "database is locked" not in text, f"{name}: {text[-2000:]}"
        if name != "worker-0":
            assert "Traceback" not in text, f"{name}: {text[-2000:]}"
    assert worker_processes(search.name) == []
    # Every worker asked for `trials` trials; the victim never started the rest of its own.
    expected = len(codes) * trials - (trials - kill.started_by_victim)
    all_trials = search.study.get_trials()
    assert len(all_trials) == expected
    assert sorted(t.number for t in all_trials) == list(range(expected))
    others = [t for t in all_trials if t.number != kill.trial]
    assert {t.state for t in others} == {TrialState.COMPLETE}
    runs = {run.info.run_id: run for run in search.runs()}
    assert len(runs) == expected
    assert {t.user_attrs[RUN_ID] for t in all_trials} == set(runs)
    assert {runs[t.user_attrs[RUN_ID]].info.status for t in others} == {"FINISHED"}
    by_worker = [run.data.tags["worker"] for run in runs.values()]
    assert by_worker.count("worker-0") == kill.started_by_victim


def test_killed_worker_rdb_heartbeat_fails_its_trial_and_kills_its_run(sqlite_server, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # Optuna's own file, not the server's
    search = new_search(sqlite_server.url, storage, "kill-rdb")
    trials = 12  # forest trials of about a second: survivors still ask 6+ s after the kill
    try:
        with Workers(3, search.arguments(trials, "forest"), tmp_path) as workers:
            kill = kill_mid_trial(search, workers)
            workers.wait(search.study, 3 * trials, timeout=300, show=False)
            check_survivors(search, workers, kill, trials)
    finally:
        search.end()
    after_grace = kill.at + datetime.timedelta(seconds=GRACE_PERIOD + 1)
    asked_late = [t for t in search.study.get_trials() if t.datetime_start > after_grace]
    assert asked_late, "the survivors must still ask for trials after the grace period"
    killed = search.study.get_trials()[kill.trial]
    assert killed.state == TrialState.FAIL, "the heartbeat fails a dead worker's trial"
    assert killed.datetime_complete > kill.at, "failed by a survivor, after the kill"
    run = search.client.get_run(kill.run_id)
    assert run.info.status == "KILLED", "the stale-trial callback ends its run KILLED"
    assert run.info.end_time is not None
    assert run.data.tags["optuna.trial"] == str(kill.trial)


def test_killed_worker_journal_trial_is_failed_by_fail_orphaned_trials(tracking, tmp_path):
    search = new_search(tracking.url, f"journal:{tmp_path / 'search.log'}", "kill-journal")
    trials = 5
    try:
        with Workers(3, search.arguments(trials, "forest"), tmp_path) as workers:
            kill = kill_mid_trial(search, workers)
            workers.wait(search.study, 3 * trials, timeout=300, show=False)
            check_survivors(search, workers, kill, trials)
        killed = search.study.get_trials()[kill.trial]
        assert killed.state == TrialState.RUNNING, "Optuna 5.0's journal has no heartbeat"
        assert search.client.get_run(kill.run_id).info.status == "RUNNING"

        assert fail_orphaned_trials(search.study) == [kill.trial]
    finally:
        search.end()
    assert search.study.get_trials()[kill.trial].state == TrialState.FAIL
    assert search.client.get_run(kill.run_id).info.status == "KILLED"
    states = [t.state for t in search.study.get_trials()]
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.RUNNING) == 0
    assert fail_orphaned_trials(search.study) == [], "nothing left to fail"


# --- 5: the workers' parent dies, or is interrupted -------------------------------------------

PARENT = """
import json, sys, time
import optuna
from helpers.scale import Workers, worker_arguments
from helpers.tune_worker import open_storage

spec = json.loads(sys.argv[1])
workers = Workers(2, worker_arguments(*spec["arguments"]), spec["folder"])
print(json.dumps({
    "workers": [w.process.pid for w in workers.workers],
    "watchdogs": [w.watchdog.pid for w in workers.workers if hasattr(w, "watchdog")],
    "markers": [w.marker for w in workers.workers if hasattr(w, "marker")],
}), flush=True)
if spec["mode"] == "sleep":
    time.sleep(600)
else:
    storage = open_storage(spec["storage"])
    study = optuna.load_study(study_name=spec["arguments"][0], storage=storage)
    workers.wait(study, 1000, timeout=600, show=False)
"""


def start_parent(search: Search, folder: Path, mode: str, env: dict[str, str]):
    """A child Python that starts 2 workers, prints their processes, then sleeps or waits."""
    folder.mkdir()
    spec = {
        "arguments": [search.name, search.storage, search.tracking_uri, search.parent_run_id,
                      500, "forest"],
        "storage": search.storage, "folder": str(folder), "mode": mode,
    }  # fmt: skip
    stderr = open(folder / "parent.err", "w")  # closed below, once the line is read
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, json.dumps(spec)], cwd=folder, env=python_env(**env),
        stdout=subprocess.PIPE, stderr=stderr, text=True,
    )  # fmt: skip
    ready, _, _ = select.select([parent.stdout], [], [], 60)
    line = parent.stdout.readline() if ready else ""
    stderr.close()
    assert line, (folder / "parent.err").read_text()
    started = json.loads(line)
    processes = [psutil.Process(pid) for pid in started["workers"] + started["watchdogs"]]
    assert len(started["workers"]) == 2, started
    assert not any(gone(p) for p in processes)
    return parent, processes, started["markers"]


def wait_until_running(search: Search, timeout: float = 120) -> None:
    """Until a worker runs a trial: the workers are at work, the parent in its loop."""
    deadline = time.monotonic() + timeout
    while not search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        assert time.monotonic() < deadline, f"no trial started within {timeout:.0f} s"
        time.sleep(0.25)


def test_workers_end_with_their_parent_killed_or_interrupted(sqlite_server, tmp_path):
    storage = f"journal:{tmp_path / 'search.log'}"
    killed = new_search(sqlite_server.url, storage, "parent-killed")
    interrupted = new_search(sqlite_server.url, storage, "parent-interrupted")
    try:
        with child_mark() as mark:
            parent, processes, markers = start_parent(killed, tmp_path / "killed", "sleep", mark)
            wait_until_running(killed)
            parent.kill()  # SIGKILL: no exit hook runs, only the watchdogs can stop them
            parent.wait()
            started = time.monotonic()
            while not all(gone(p) for p in processes) and time.monotonic() - started < 15:
                time.sleep(0.1)
            took = time.monotonic() - started
            left = [p.pid for p in processes if not gone(p)]
            assert left == [], f"alive 15 s after their parent was killed: {left}"
            print(f"workers and watchdogs gone {took:.1f} s after the parent's SIGKILL")
            assert len(processes) == 4 and len(markers) == 2, "a watchdog per worker"
            assert worker_processes(killed.name) == []
            assert all(processes_with_environment(MARKER, m) == [] for m in markers)

            parent, processes, markers = start_parent(
                interrupted, tmp_path / "interrupted", "wait", mark
            )
            wait_until_running(interrupted)
            parent.send_signal(signal.SIGINT)  # Ctrl+C, to the parent alone
            code = parent.wait(timeout=60)
            error = (tmp_path / "interrupted" / "parent.err").read_text()
            assert code != 0 and "KeyboardInterrupt" in error, error
            assert [p.pid for p in processes if not gone(p)] == []
            assert worker_processes(interrupted.name) == []
            assert all(processes_with_environment(MARKER, m) == [] for m in markers)
    finally:
        killed.end()
        interrupted.end()


# --- 6, 7: a worker's errors, and its help ----------------------------------------------------


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_worker(*arguments: str) -> tuple[int, str, float]:
    """Run one worker to its end: (exit code, stderr, seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", WORKER_MODULE, *arguments], env=python_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return result.returncode, result.stderr, time.monotonic() - started


def test_worker_errors_say_what_to_do(sqlite_server, tmp_path):
    journal = f"journal:{tmp_path / 'search.log'}"
    search = new_search(sqlite_server.url, journal, "errors")
    down = f"http://127.0.0.1:{unused_port()}"
    no_database = f"postgresql+psycopg://mlflow@127.0.0.1:{unused_port()}/optuna"
    common = ["--study", search.name, "--trials", "1"]
    ok_server = ["--tracking-uri", search.tracking_uri]
    ok_parent = ["--parent-run-id", search.parent_run_id]
    cases = {
        "server down": [*common, "--storage", journal, "--tracking-uri", down, *ok_parent],
        "wrong parent": [*common, "--storage", journal, *ok_server, "--parent-run-id", "0" * 32],
        "no study": ["--study", "nothing-here", "--trials", "1", "--storage",
                     f"journal:{tmp_path / 'empty.log'}", *ok_server, *ok_parent],
        "unknown storage": [*common, "--storage", "redis://x", *ok_server, *ok_parent],
        "no database": [*common, "--storage", no_database, *ok_server, *ok_parent],
    }  # fmt: skip
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = pool.map(lambda arguments: run_worker(*arguments), cases.values())
            results = dict(zip(cases, outcomes, strict=True))
    finally:
        search.end()
    print({case: f"{seconds:.1f} s" for case, (_, _, seconds) in results.items()})
    for case, (code, error, _) in results.items():
        assert code == 2, f"{case}: {code} {error}"
        assert "Traceback" not in error, f"{case}: {error}"
        assert len(error.strip().splitlines()) == 1, f"{case}: one line, not {error}"
    code, error, seconds = results["server down"]
    assert f"Cannot reach the tracking server at {down}" in error
    assert "Start it with python -m helpers.server" in error
    assert seconds < 20, f"{seconds:.1f} s to say the server is down"
    assert f"has no run {'0' * 32}" in results["wrong parent"][1]
    assert "No study 'nothing-here'" in results["no study"][1]
    assert "Unknown storage 'redis://x'" in results["unknown storage"][1]
    code, error, seconds = results["no database"]
    assert f"Cannot open the Optuna storage {no_database}" in error
    assert seconds < 20, f"{seconds:.1f} s to say the database is down"
    assert search.runs() == [], "no worker started a trial"


def test_worker_help_lists_its_options():
    result = subprocess.run(
        [sys.executable, "-m", WORKER_MODULE, "--help"], env=python_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for option in ("--study", "--storage", "--tracking-uri", "--parent-run-id", "--trials"):
        assert option in result.stdout, option
    assert "python -m helpers.tune_worker" in result.stdout
    text = " ".join(result.stdout.split())  # argparse wraps lines at the terminal's width
    for explained in (
        "journal:PATH", "MlflowStorage", "(default: 10)", "ridge (the default", "the tag `worker`",
    ):  # fmt: skip
        assert explained in text, f"--help does not explain {explained!r}"
