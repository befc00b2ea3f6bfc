"""Reliability: concurrent writers to one SQLite store, bad tracking URIs, and an old
database upgraded the documented way without losing a run."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
import textwrap
import threading

import mlflow
import pytest
from notebook_runs import NOTEBOOK_DIR, copy_notebooks, make_store_with_runs, report, run_nbval

from helpers.server import ServerError, check_store
from helpers.store import HALF_MADE, RACE_MESSAGES, runs_in

RUNS_PER_WRITER = 15
WRITER = textwrap.dedent(
    f"""
    import logging, sys
    import mlflow
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    name = sys.argv[1]
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment("concurrent")
    for i in range({RUNS_PER_WRITER}):
        with mlflow.start_run(run_name=f"{{name}}-{{i}}"):
            mlflow.set_tag("writer", name)
            mlflow.log_params({{f"p{{j}}": j for j in range(5)}})
            for step in range(10):
                mlflow.log_metric("loss", 1 / (step + 1), step=step)
            mlflow.log_metric("rmse", i)
    """
)


def start_writers(folder) -> list[subprocess.Popen]:
    return [
        subprocess.Popen([sys.executable, "-c", WRITER, name], cwd=folder,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("left", "right")
    ]  # fmt: skip


def run_writer(folder, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRITER, name], cwd=folder,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def assert_both_writers_complete(folder) -> None:
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("concurrent")
    for name in ("left", "right"):
        runs = client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.writer = '{name}'"
        )
        assert len(runs) == RUNS_PER_WRITER
        assert sorted(r.data.metrics["rmse"] for r in runs) == list(range(RUNS_PER_WRITER))
        for run in runs:
            assert run.info.status == "FINISHED"
            assert run.data.params == {f"p{j}": str(j) for j in range(5)}
            history = client.get_metric_history(run.info.run_id, "loss")
            assert sorted(m.step for m in history) == list(range(10))


def test_two_processes_log_to_one_sqlite_store_at_once(tmp_path):
    """As in the course, the store exists (notebook 01 made it); two writers share it."""
    mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()
    writers = start_writers(tmp_path)
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr[-3000:]
    assert_both_writers_complete(tmp_path)


def test_two_processes_creating_a_new_store_at_once_lose_nothing(tmp_path):
    """MLflow 3.17 creates a new SQLite store without a lock: when two processes create
    the same one at the same instant, one or (on a busy machine) both may fail deep in alembic
    with one of the messages the kernel's hint recognises (README, troubleshooting; the
    kernels' side is tests/test_store_truth.py). Rerunning them is the fix, and nothing of
    either is lost.
    """
    writers = start_writers(tmp_path)
    failed = []
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        if writer.returncode != 0:
            # Made in MLflow's set-up of a new store, where the kernel's hint takes any error
            # for the race (seen: the RACE_MESSAGES, "Circular dependency detected", "No such
            # index"); the other writer then finished the store.
            assert "_initialize_tables" in stderr, stderr[-3000:]
            assert any(message in stderr for message in RACE_MESSAGES) or "alembic" in stderr
            failed.append(writer.args[-1])
    half_made = False
    for name in failed:  # the documented fix: run it again, one after the other
        rerun = run_writer(tmp_path, name)
        if rerun.returncode != 0 and HALF_MADE in rerun.stderr:
            half_made = True
            break
        assert rerun.returncode == 0, rerun.stderr[-3000:]
    if half_made:
        # Rarely (once in about 35 collisions) the collision left the store half set up, and
        # running again cannot mend it: the kernel's hint then says delete it and run one
        # after the other (tests/test_store_truth.py). It holds no runs: nothing is lost.
        assert runs_in(str(tmp_path / "mlflow.db")) == 0
        (tmp_path / "mlflow.db").unlink()
        for name in ("left", "right"):
            rerun = run_writer(tmp_path, name)
            assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_both_writers_complete(tmp_path)


def test_two_notebooks_run_at_once_on_one_store(tmp_path):
    """After notebook 01 made the store, notebooks 03 and 04 log to it at the same time,
    as two JupyterLab tabs would."""
    [first, *copies] = copy_notebooks(
        tmp_path,
        [NOTEBOOK_DIR / name for name in
         ("01_set_tracking_uri.ipynb", "03_start_run.ipynb", "04_set_tag.ipynb")],
    )  # fmt: skip
    result = run_nbval(tmp_path, [first], offline=False)
    assert result.returncode == 0, report(result)
    # The experiment exists, as once either notebook has run. Were it new, both would create
    # it at the same moment, and MLflow 3.17's set_experiment leaves the loser of that race
    # logging to Default (README, Troubleshooting): a bug of MLflow's, not what this tests.
    with contextlib.chdir(tmp_path):  # its artifacts in ./mlruns/<id>, as a notebook's are
        mlflow.MlflowClient("sqlite:///mlflow.db").create_experiment("nyc-taxi-experiment")
    results = [None, None]

    def run(index):
        results[index] = run_nbval(tmp_path, [copies[index]], offline=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert result.returncode == 0, report(result)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nyc-taxi-experiment")
    names = {r.info.run_name for r in client.search_runs([experiment.experiment_id])}
    assert {"linear-regression-baseline", "ridge"} <= names, "one run of each notebook at least"


@pytest.mark.parametrize(
    ("uri", "fix"),
    [
        ("./mlruns", "sqlite:///mlflow.db"),
        ("file:///home/me/mlruns", "migrate-filestore"),
        ("sqlite://mlflow.db", "three: sqlite:///mlflow.db"),
        ("sqllite:///mlflow.db", "Unknown tracking URI scheme 'sqllite'"),
    ],
)
def test_a_wrong_tracking_uri_names_the_right_one(uri, fix, tmp_path):
    with pytest.raises(ServerError, match=fix.replace(".", r"\.")):
        check_store(uri, tmp_path)
    assert list(tmp_path.iterdir()) == [], "checking a URI must not create anything"


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_old_store_is_refused_untouched_then_upgraded_without_losing_runs(tmp_path):
    """A store with runs, taken back three schema revisions by MLflow's own migrations
    (a real older schema). The helper names the fix and changes nothing; the documented fix
    (backup, then `mlflow db upgrade`) brings it to this MLflow's schema with every run.
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config, _get_latest_schema_revision

    db = make_store_with_runs(tmp_path)
    config = _get_alembic_config(db_url=f"sqlite:///{db}")
    older = _get_latest_schema_revision()
    for _ in range(3):
        older = ScriptDirectory.from_config(config).get_revision(older).down_revision
    command.downgrade(config, older)
    before = _digest(db)

    with pytest.raises(ServerError, match="mlflow db upgrade sqlite:///mlflow.db"):
        check_store("sqlite:///mlflow.db", tmp_path)
    assert _digest(db) == before, "the check must not change the store"

    (tmp_path / "mlflow.db.backup").write_bytes(db.read_bytes())  # the documented fix
    upgrade = subprocess.run(
        [sys.executable, "-m", "mlflow", "db", "upgrade", "sqlite:///mlflow.db"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    check_store("sqlite:///mlflow.db", tmp_path)
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("kept")
    runs = client.search_runs([experiment.experiment_id], order_by=["params.i"])
    assert [(r.info.run_name, r.data.metrics["rmse"]) for r in runs] == [
        ("run-0", 0.0),
        ("run-1", 1.0),
        ("run-2", 2.0),
    ]
    assert _digest(tmp_path / "mlflow.db.backup") == before
