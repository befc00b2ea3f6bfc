"""helpers.server: starts a real MLflow server or UI, stops it with nothing left, and
refuses each bad case with a message that names the fix."""

from __future__ import annotations

import socket
import sqlite3
import sys
import time
import urllib.request

import mlflow
import pytest
from notebook_runs import make_store_with_runs

from helpers.server import (
    MlflowServer,
    ServerError,
    check_store,
    free_port,
    port_is_free,
    sqlite_path,
)


@pytest.fixture
def store(tmp_path):
    """A real tracking database with runs, made by this MLflow."""
    return make_store_with_runs(tmp_path)


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_free_port_prefers_the_given_port_and_avoids_a_busy_one(busy_port):
    assert not port_is_free(busy_port)
    other = free_port(busy_port)
    assert other != busy_port and port_is_free(other)
    assert free_port(other) == other


def test_ui_on_a_real_store_answers_and_stops_with_no_process_left(store):
    with MlflowServer.start(ui=True, folder=store.parent, port=free_port(5077)) as server:
        assert server.running
        with urllib.request.urlopen(f"{server.url}/health") as response:
            assert response.read() == b"OK"
        experiments = mlflow.MlflowClient(server.url).search_experiments()
        assert "kept" in [e.name for e in experiments]
        processes = server.processes()
        assert processes
    assert not server.running
    assert not any(p.is_running() and p.status() != "zombie" for p in processes)
    assert (store.parent / "mlflow-server.log").is_file()


def test_a_taken_port_is_refused_with_a_way_out(store, busy_port):
    with pytest.raises(ServerError, match=rf"Port {busy_port} is in use.*port=None"):
        MlflowServer.start(ui=True, folder=store.parent, port=busy_port)


def test_missing_database_says_run_notebook_01_first(tmp_path):
    with pytest.raises(ServerError, match="Run notebook 01 first"):
        MlflowServer.start(ui=True, folder=tmp_path)
    assert not (tmp_path / "mlflow.db").exists(), "checking must not create an empty store"


def test_a_file_that_is_no_database_is_named(tmp_path):
    (tmp_path / "mlflow.db").write_text("not a database")
    with pytest.raises(ServerError, match="is not an MLflow tracking database"):
        check_store("sqlite:///mlflow.db", tmp_path)


def test_an_older_schema_names_backup_and_mlflow_db_upgrade(store):
    with sqlite3.connect(store) as connection:  # stamp the oldest revision MLflow knows
        connection.execute("UPDATE alembic_version SET version_num = '451aebb31d03'")
    with pytest.raises(ServerError) as error:
        check_store("sqlite:///mlflow.db", store.parent)
    message = str(error.value)
    assert "older MLflow" in message
    assert "cp mlflow.db mlflow.db.backup" in message
    assert "mlflow db upgrade sqlite:///mlflow.db" in message


def test_an_unknown_newer_schema_says_install_the_course_versions(store):
    with sqlite3.connect(store) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(ServerError, match="newer MLflow.*pip install -r requirements.txt"):
        check_store("sqlite:///mlflow.db", store.parent)


def test_a_server_that_dies_at_start_shows_its_log(tmp_path):
    with pytest.raises(ServerError, match="stopped at start"):
        MlflowServer.start("nosuchscheme://nowhere", folder=tmp_path, port=free_port(5078))


def test_driver_options_after_the_file_name_are_not_part_of_it(store):
    assert sqlite_path("sqlite:///mlflow.db?timeout=20", store.parent) == store
    check_store("sqlite:///mlflow.db?timeout=20", store.parent)


def test_a_folder_named_with_hash_and_question_mark_is_checked_without_stray_files(tmp_path):
    """`#` and `?` mean something in a URI: the check must not open a shorter name instead."""
    folder = tmp_path / ("course #1" if sys.platform == "win32" else "course #1 ?")
    folder.mkdir()
    with pytest.raises(ServerError, match="No tracking database"):
        check_store("sqlite:///mlflow.db", folder)
    assert list(tmp_path.rglob("*")) == [folder], "checking must create nothing"
    made = tmp_path / "made"  # SQLAlchemy would read the `?` of the folder's name in a URI
    made.mkdir()
    make_store_with_runs(made).replace(folder / "mlflow.db")
    made.rmdir()
    before = sorted(tmp_path.rglob("*"))
    check_store("sqlite:///mlflow.db", folder)
    assert sorted(tmp_path.rglob("*")) == before, "checking must create nothing"


def test_check_store_leaves_other_stores_to_mlflow(tmp_path):
    """A PostgreSQL or server URI is not opened: a listener on its port sees no connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        started = time.monotonic()
        check_store(f"postgresql://mlflow@127.0.0.1:{port}/mlflow", tmp_path)
        check_store(f"http://127.0.0.1:{port}", tmp_path)
        assert time.monotonic() - started < 2
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing tried to connect
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ServerError, match="Unknown tracking URI scheme 'mongodb'"):
        check_store(f"mongodb://127.0.0.1:{port}/mlflow", tmp_path)
