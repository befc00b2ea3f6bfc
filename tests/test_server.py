"""helpers.server: starts a real MLflow server or UI, stops it with nothing left, and
refuses each bad case with a message that names the fix.

Everything here is real: sockets, HTTP servers on 127.0.0.1, `mlflow server` processes.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import mlflow
import psutil
import pytest
from child_python import assert_nothing_left, python_env, run_python
from cleanup_guard import child_mark, end
from notebook_runs import make_store_with_runs

from helpers import background
from helpers.server import (
    MARKER,
    Background,
    MlflowServer,
    ServerError,
    check_store,
    free_port,
    port_is_free,
    processes_with_environment,
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


@pytest.fixture
def foreign_server():
    """Another program's HTTP server on 127.0.0.1 that answers /health with 200, as MLflow
    does. It runs in this test process, so the process that owns its port is this one."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_free_port_prefers_the_given_port_and_avoids_a_busy_one(busy_port):
    assert not port_is_free(busy_port)
    other = free_port(busy_port)
    assert other != busy_port and port_is_free(other)
    assert free_port(other) == other


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every process it started, as the operating system sees them now."""
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` that still run (a zombie has ended: only its exit status is left)."""
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def test_ui_on_a_real_store_answers_and_stops_with_no_process_left(store):
    with MlflowServer.start(ui=True, folder=store.parent, port=free_port(5077)) as server:
        assert server.running
        with urllib.request.urlopen(f"{server.url}/health") as response:
            assert response.read() == b"OK"
        experiments = mlflow.MlflowClient(server.url).search_experiments()
        assert "kept" in [e.name for e in experiments]
        processes = tree(server.process.pid)
        assert len(processes) >= 2, "mlflow ui, and the uvicorn that serves it"
    try:
        assert not server.running
        assert server.processes() == []
        assert running(processes) == [], "every process of the server's tree has ended"
        assert (store.parent / "mlflow-server.log").is_file()
    finally:
        end(processes)


STUBBORN_TREE = """
import os, pathlib, signal, subprocess, sys, time
child = (
    "import os, pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(f'ready-{os.getpid()}').touch(); time.sleep(600)"
)
subprocess.Popen([sys.executable, "-c", child])
subprocess.Popen([sys.executable, "-c", child], start_new_session=True)
time.sleep(600)
"""
"""A server whose parent ends on SIGTERM without ending its two workers, which ignore
SIGTERM; one of them runs in a session (and so a process group) of its own."""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM and sessions are POSIX")
def test_stop_ends_every_process_of_the_tree_not_only_the_parent(tmp_path):
    """What stop() promises, on a tree that gives it every chance to fail: MLflow's own
    parent takes its workers down on SIGTERM, so a stop() that ended only the parent would
    pass on a real server. These workers outlive their parent unless each is ended, and
    ignore SIGTERM, so stop() must also kill after its timeout."""
    with child_mark() as mark:
        command = [sys.executable, "-c", STUBBORN_TREE]
        server = Background(command, tmp_path, {**os.environ, **mark}, tmp_path / "tree.log")
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            assert server.running, server.log_tail()
            time.sleep(0.05)
        processes = tree(server.process.pid)
        assert len(processes) == 3, "the parent and its two workers are ready"
        server.stop(timeout=2)
        assert running(processes) == [], "every process of the server's tree has ended"
        assert server.processes() == []


def test_a_taken_port_is_refused_with_a_way_out(store, busy_port):
    with pytest.raises(ServerError, match=rf"Port {busy_port} is in use.*port=None"):
        MlflowServer.start(ui=True, folder=store.parent, port=busy_port)


def test_a_port_answered_by_another_server_names_that_server(foreign_server, tmp_path):
    with pytest.raises(ServerError) as error:
        MlflowServer.start(folder=tmp_path, port=foreign_server)
    message = str(error.value)
    assert f"Port {foreign_server} is in use by process {os.getpid()} (" in message
    assert "pytest" in message, "the owner's command line is shown"
    assert "Stop it, or choose another port" in message and "port=None" in message
    assert not (tmp_path / "mlflow-server.log").exists(), "nothing was started"


def test_a_server_that_is_not_ours_is_never_reported_as_running(
    foreign_server, tmp_path, monkeypatch
):
    """The race the port check cannot see: another server takes the port between the check
    and the start. Ours then fails to bind while the other answers /health."""
    monkeypatch.setattr(background, "port_is_free", lambda port, host="": True)
    test_id = uuid.uuid4().hex
    with pytest.raises(ServerError, match=rf"Port {foreign_server} is in use by process "):
        MlflowServer.start(folder=tmp_path, port=foreign_server, env={"COURSE_TEST": test_id})
    assert (tmp_path / "mlflow-server.log").exists(), "our server was started"
    left = processes_with_environment("COURSE_TEST", test_id)
    assert left == [], "and stopped, with all its processes"
    assert not background._RUNNING, "nothing is left to stop at exit"


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
    """A setting MLflow reads only once it runs: the error line of its traceback is shown."""
    bad = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "many"}
    with pytest.raises(ServerError, match="stopped at start.*log.*ValueError: Failed to con"):
        MlflowServer.start("sqlite:///x.db", folder=tmp_path, port=free_port(5078), env=bad)


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
        check_store(f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow", tmp_path)
        check_store(f"http://127.0.0.1:{port}", tmp_path)
        assert time.monotonic() - started < 2
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing tried to connect
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ServerError, match="Unknown tracking URI scheme 'mongodb'"):
        check_store(f"mongodb://127.0.0.1:{port}/mlflow", tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and re-parenting are POSIX")
def test_stop_ends_workers_whose_parent_was_killed(tmp_path):
    port = free_port(5079)
    server = MlflowServer.start("sqlite:///x.db", folder=tmp_path, port=port)
    try:
        workers = [p for p in server.processes() if p.pid != server.process.pid]
        assert workers, "mlflow server runs its web server in a child process"
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        assert all(w.is_running() and w.ppid() != server.process.pid for w in workers), (
            "its workers outlive it, and are nobody's children now"
        )
    finally:
        server.stop()
    assert processes_with_environment(MARKER, server.marker) == []
    assert server.processes() == []
    assert port_is_free(port)


def test_a_server_left_running_is_stopped_when_python_exits(tmp_path):
    """As when a notebook's kernel restarts: the server must not keep its port."""
    code = (
        "from helpers.server import MlflowServer, free_port\n"
        "server = MlflowServer.start('sqlite:///x.db', port=free_port(5080))\n"
        "print(server.marker, server.url.rsplit(':', 1)[1], server.running)\n"
    )
    with child_mark() as mark:  # should the child be killed (a timeout), its server ends too
        marker, port, running = run_python(code, tmp_path, timeout=180, **mark).split()
        assert running == "True"
        assert_nothing_left(marker, port)


def _no_database(folder: Path) -> None:
    pass


def _not_a_database(folder: Path) -> None:
    (folder / "mlflow.db").write_text("not a database")


def _log_is_a_folder(folder: Path) -> None:
    make_store_with_runs(folder)
    (folder / "mlflow-server.log").mkdir()


@pytest.mark.parametrize(
    ("prepare", "fix"),
    [
        (_no_database, "Run notebook 01 first"),
        (_not_a_database, "is not an MLflow tracking database"),
        (_log_is_a_folder, "Remove or rename what is there"),
    ],
)
def test_the_command_line_fails_with_one_line_that_names_the_fix(tmp_path, prepare, fix):
    prepare(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "helpers.server"], cwd=tmp_path, env=python_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Cannot start the MLflow UI:") and fix in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


INVALID_HOST = "Invalid Host header - possible DNS rebinding attack detected"
"""MLflow 3's answer (403) to a request addressed to a name it does not serve."""


def addressed_to(url: str, host: str) -> tuple[int, str]:
    """Status and body of an API call to ``url`` whose ``Host`` header names ``host``.

    Why a forged header: it is what a browser sends for a server reached under a public
    name (``ec2-...amazonaws.com:5000``), or a page that rebinds its own name to 127.0.0.1.
    """
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    request = urllib.request.Request(search, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def listening_addresses(server: MlflowServer) -> set[str]:
    """The addresses the server's processes listen on, as the operating system sees them."""
    return {
        c.laddr.ip
        for p in server.processes()
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


def test_a_server_started_the_course_way_is_for_this_machine_and_its_names_only(tmp_path):
    """Notebook 09's server: on 127.0.0.1, never 0.0.0.0, and MLflow 3's host check refuses
    a name that is not loopback or private, such as the public name of a cloud machine."""
    port = free_port(5081)
    with MlflowServer.start("sqlite:///x.db", folder=tmp_path, port=port) as server:
        command = server.command
        assert command[command.index("--host") + 1] == "127.0.0.1"
        assert "0.0.0.0" not in command and "--allowed-hosts" not in command
        assert listening_addresses(server) == {"127.0.0.1"}
        for own in (f"127.0.0.1:{port}", f"localhost:{port}"):
            status, body = addressed_to(server.url, own)
            assert status == 200 and '"experiments"' in body, (own, status, body)
        for foreign in ("mlflow.example.com", "ec2-203-0-113-10.compute-1.amazonaws.com:5000"):
            assert addressed_to(server.url, foreign) == (403, INVALID_HOST), foreign


def test_allowed_hosts_admits_the_names_listed_and_keeps_loopback(tmp_path):
    """`--allowed-hosts` for a team's public name: that name (port included) answers; this
    machine's own address still does (MLflow's list replaces its defaults, the helper adds
    it back); other names, and the name without its port, are still refused."""
    port = free_port(5082)
    public = f"mlflow.example.com:{port}"
    with MlflowServer.start(
        "sqlite:///x.db", folder=tmp_path, port=port, allowed_hosts=[public]
    ) as server:
        assert listening_addresses(server) == {"127.0.0.1"}, "a name is not an address"
        for allowed in (public, f"127.0.0.1:{port}", f"localhost:{port}"):
            status, body = addressed_to(server.url, allowed)
            assert status == 200 and '"experiments"' in body, (allowed, status, body)
        for refused in ("mlflow.example.com", f"other.example.com:{port}"):
            assert addressed_to(server.url, refused) == (403, INVALID_HOST), refused
        assert [e.name for e in mlflow.MlflowClient(server.url).search_experiments()] == [
            "Default"
        ], "the course's own client, on 127.0.0.1, still works"
