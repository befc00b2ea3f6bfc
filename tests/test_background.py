"""Nothing is left behind, however the process that started a server ends.

Everything is real: each test starts a real server (``mlflow ui``/``server``, ``mlflow models
serve``, ``rclone serve s3``) from a real child process, ends that process for real (Ctrl+C's
siblings SIGTERM and SIGHUP, and SIGKILL, which no handler can catch), and checks that no
process of the server is alive and its port is free within seconds. The watchdog does that
work when nothing else can; these tests are how we know it does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from child_python import python_env
from cleanup_guard import child_mark, end, processes_marked_with
from notebook_runs import make_store_with_runs

from helpers import background
from helpers.background import (
    MARKER,
    OWNER,
    answers_health,
    choose_port,
    free_port,
    port_is_free,
    processes_with_environment,
)
from helpers.server import MlflowServer, ServerError

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX signal or fork")


def ending(*signals: str) -> list:
    """Ways to end a process, for parametrize: "kill" (SIGKILL on POSIX, TerminateProcess on
    Windows: nothing can catch either) and the named POSIX signals."""
    return ["kill", *(pytest.param(name, marks=POSIX_ONLY) for name in signals)]


def end_with(process: subprocess.Popen, how: str) -> None:
    """End ``process`` as ``how`` says (see :func:`ending`)."""
    if how == "kill":
        process.kill()
    else:
        process.send_signal(getattr(signal, how))


GONE_WITHIN = 15.0
"""Seconds in which a server must be gone after its parent died: the watchdog asks, waits
5 s (WATCHDOG_GRACE), then kills; a loaded 2-core machine needs some slack on top."""


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Wait until ``condition()`` holds; return the seconds it took; fail after ``timeout``."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {condition.__doc__}")
        time.sleep(0.1)
    return time.monotonic() - began


def assert_gone(marker: str, port: int) -> float:
    """Every process of the server marked ``marker`` has ended and ``port`` is free, soon."""

    def gone() -> bool:
        """the server's processes and its watchdog end, and its port is free"""
        left = processes_with_environment(MARKER, marker) + watchdogs_of(marker)
        return not left and port_is_free(port)

    return wait_until(gone, GONE_WITHIN)


def watchdogs_of(marker: str) -> list[psutil.Process]:
    """The watchdog processes watching the server marked ``marker``."""
    found = []
    for process in psutil.process_iter():
        try:
            command = process.cmdline()
            if "--watch" in command and command[command.index("--watch") + 1 :][:1] == [marker]:
                found.append(process)
        except psutil.Error:
            continue
    return found


KERNEL_CODE = {
    "mlflow": (
        "from helpers.server import MlflowServer\n"
        "server = MlflowServer.start('sqlite:///x.db', port=PORT)\n"
    ),
    "model": (
        "import numpy as np, mlflow.sklearn\n"
        "from sklearn.linear_model import LinearRegression\n"
        "model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))\n"
        "mlflow.sklearn.save_model(model, 'model')\n"
        "from helpers.serving import ModelServer\n"
        "server = ModelServer.start('model', port=PORT)\n"
    ),
    "object store": (
        "from helpers.object_store import ObjectStore\n"
        "server = ObjectStore.start('store', port=PORT)\n"
    ),
}
"""What a notebook's kernel runs to start each kind of server, then it waits."""


def start_kernel_like(kind: str, folder: Path, port: int, mark: dict[str, str]):
    """A child Python that starts a server of ``kind`` and waits; returns (child, marker)."""
    code = KERNEL_CODE[kind].replace("PORT", str(port))
    code += "print(server.marker, flush=True)\nimport time\ntime.sleep(600)\n"
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=folder, env=python_env(**mark),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    marker = child.stdout.readline().strip()
    if not marker:
        child.kill()
        raise AssertionError(f"the {kind} server did not start: {child.stderr.read()[-3000:]}")
    return child, marker


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        *((kind, "kill") for kind in KERNEL_CODE),
        pytest.param("mlflow", "SIGTERM", marks=POSIX_ONLY),
    ],
)
def test_a_server_dies_with_the_kernel_that_started_it(tmp_path, kind, how, request):
    """A kernel killed (or terminated: Python then runs no exit hook) takes its server down,
    and the folders its stop() would have removed. (SIGTERM once: to the watchdog, every way
    a parent ends is the same closed pipe; the kill of each kind proves each server's part.)"""
    port = free_port(5160)
    with child_mark() as mark:
        child, marker = start_kernel_like(kind, tmp_path, port, mark)
        tree = processes_with_environment(MARKER, marker)
        assert tree and not port_is_free(port)
        (watchdog,) = watchdogs_of(marker)
        leftovers = [
            Path(folder) for folder in watchdog.cmdline()[watchdog.cmdline().index(marker) + 1 :]
        ]
        assert all(folder.is_dir() for folder in leftovers)
        if kind == "model":
            assert leftovers, "the model server's copy of its model is the watchdog's to remove"
        scratch = request.config.course_scratch
        seen = {p.pid for p in processes_marked_with(scratch)}
        assert {p.pid for p in tree + watchdogs_of(marker)} <= seen, (
            "the session's clean-up guard sees every process of the server and its watchdog"
        )
        end_with(child, how)
        child.wait(timeout=30)
        took = assert_gone(marker, port)
        assert not any(folder.exists() for folder in leftovers), "its folders are removed"

    print(f"{kind} gone {took:.1f} s after {how}")


def start_command_line(folder: Path, port: int, mark: dict[str, str]) -> subprocess.Popen:
    """``python -m helpers.server --port PORT`` in ``folder``, as a learner starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.server", "--port", str(port),
         "--backend-store-uri", "sqlite:///course.db"],
        cwd=folder, env=python_env(**mark), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def marker_on(port: int) -> str:
    """The marker of the course server that listens on ``port``."""
    (marker,) = {process.environ()[MARKER] for process in background.listeners(port)}
    return marker


@pytest.mark.parametrize("how", ending("SIGTERM", "SIGHUP"))
def test_the_command_line_leaves_nothing_however_it_is_ended(tmp_path, how):
    """``kill``, a closed terminal, ``kill -9``: the UI ends with its command, on its port."""
    make_store_with_runs(tmp_path).rename(tmp_path / "course.db")  # --backend-store-uri is used
    port = free_port(5170)
    with child_mark() as mark:
        command = start_command_line(tmp_path, port, mark)
        said = [command.stdout.readline(), command.stdout.readline()]
        assert said[0] == f"MLflow UI: http://127.0.0.1:{port}\n", command.stderr.read()
        assert said[1].startswith("Ctrl+C stops it"), "it is ready and says how to stop it"
        marker = marker_on(port)
        end_with(command, how)
        stdout, stderr = command.communicate(timeout=60)
        assert_gone(marker, port)
    if how != "kill":
        assert command.returncode == 0, stderr
        assert f"Stopping the MLflow UI ({how})." in stdout
        assert "Traceback" not in stderr


def test_the_command_line_has_the_options_its_messages_name(tmp_path):
    def run(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "helpers.server", *options], cwd=tmp_path,
            env=python_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    helped = run("--help")
    assert helped.returncode == 0
    for option in ("--port", "--backend-store-uri", "--workers"):
        assert option in helped.stdout
    for wrong, says in [
        (["--hots", "x"], "unrecognized arguments: --hots x"),
        (["--port", "70000"], "a port is a number from 1 to 65535, not 70000"),
        (["--port", "five"], "invalid _port value: 'five'"),
        (["--workers", "0"], "must be 1 or more, not 0"),
    ]:
        refused = run(*wrong)
        assert refused.returncode == 2 and says in refused.stderr, (wrong, refused.stderr)
    missing = run("--backend-store-uri", "sqlite:///other.db")
    assert missing.returncode == 1
    assert "No tracking database at other.db" in missing.stderr, "the option is used"


@POSIX_ONLY
def test_a_pipe_kept_open_by_a_forked_child_does_not_keep_the_server_alive(tmp_path):
    """A kernel that forked (multiprocessing on Linux) and is then killed: its forked child
    still lives, with copies of the kernel's files, yet the server must end."""
    port = free_port(5180)
    code = (
        "import os, sys, time\n"
        "from helpers.server import MlflowServer\n"
        f"server = MlflowServer.start('sqlite:///x.db', port={port})\n"
        "if os.fork() == 0:\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
        "print(server.marker, flush=True)\n"
        "time.sleep(600)\n"
    )
    with child_mark() as mark:
        child = subprocess.Popen(
            [sys.executable, "-c", code], cwd=tmp_path, env=python_env(**mark),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        marker = child.stdout.readline().strip()
        forked = [p for p in psutil.Process(child.pid).children() if "-c" in p.cmdline()]
        assert forked, "the kernel's forked child runs"
        child.kill()
        child.wait(timeout=30)
        assert_gone(marker, port)
        end(forked)


@pytest.fixture
def leftover(tmp_path) -> Iterator[tuple[subprocess.Popen, int]]:
    """An MLflow server as an ended kernel of an older course left it: its owner is dead
    (a process that has ended) and no watchdog watches it."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port = free_port(5190)
    # Its own temporary folder: an older course's server runs MLflow's job runner, whose
    # store leaves a lock file (db_init_lock-...) there; MLflow's, not the course's.
    env = {**os.environ, MARKER: "leftover-" + str(port), OWNER: f"{dead.pid}@1.00",
           "TMPDIR": str(tmp_path)}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", "sqlite:///old.db",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: answers_health(f"http://127.0.0.1:{port}"), 180)
        yield server, port
    finally:
        end(processes_with_environment(MARKER, env[MARKER]))
        server.wait(timeout=30)


def test_a_server_an_ended_kernel_left_is_stopped_and_said(leftover, tmp_path, capsys):
    old, port = leftover
    with MlflowServer.start("sqlite:///new.db", folder=tmp_path, port=port) as server:
        assert server.running and answers_health(server.url)
    said = capsys.readouterr().out
    assert f"Stopped a course server on port {port} (process " in said
    assert old.poll() is not None, "the leftover has ended"


def test_the_preferred_port_is_freed_from_a_leftover_rather_than_dodged(leftover, capsys):
    old, port = leftover
    assert choose_port(None, port, announce=True) == port
    assert "Stopped a course server" in capsys.readouterr().out
    assert old.poll() is not None


def test_a_server_whose_owner_lives_is_named_and_never_stopped(tmp_path, capsys):
    port = free_port(5200)
    with MlflowServer.start("sqlite:///x.db", folder=tmp_path, port=port) as first:
        with pytest.raises(ServerError) as refused:
            MlflowServer.start("sqlite:///y.db", folder=tmp_path, port=port)
        assert f"a server of this course started by process {os.getpid()}" in str(refused.value)
        other = choose_port(None, port, announce=True)
        assert other != port
        said = capsys.readouterr().out
        assert f"Port {port} is in use by process" in said and f"using port {other}." in said
        assert first.running and answers_health(first.url), "the live server is untouched"


def test_another_program_on_the_port_is_never_touched(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert background.stop_leftover_on(port) is None
        with pytest.raises(ServerError, match=f"Port {port} is in use by process {os.getpid()}"):
            MlflowServer.start("sqlite:///x.db", folder=tmp_path, port=port)


def test_a_refused_database_fails_in_seconds_naming_it(tmp_path):
    port = free_port(5432)
    began = time.monotonic()
    with pytest.raises(ServerError) as refused:
        MlflowServer.start(f"postgresql+psycopg://course:secret@127.0.0.1:{port}/mlflow")
    assert time.monotonic() - began < 10
    message = str(refused.value)
    assert f"The database server at 127.0.0.1:{port}" in message
    assert "refuses connections" in message and "secret" not in message


def test_a_database_port_that_is_no_database_fails_at_the_first_retry(tmp_path):
    """Something accepts connections but is no PostgreSQL: MLflow retries for minutes; the
    server fails as soon as its log says it will retry, with the driver's error."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        stop = threading.Event()

        def hang_up() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    listener.accept()[0].close()
                except OSError:
                    continue

        threading.Thread(target=hang_up, daemon=True).start()
        began = time.monotonic()
        try:
            with pytest.raises(ServerError) as failed:
                MlflowServer.start(
                    f"postgresql+psycopg://course@127.0.0.1:{port}/mlflow", folder=tmp_path
                )
        finally:
            stop.set()
    assert time.monotonic() - began < 90, "not the two minutes of MLflow's retries"
    message = str(failed.value)
    assert "cannot open its store" in message
    assert "(psycopg.OperationalError)" in message, message


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("sqlite:/mlflow.db", "lacks the slashes after sqlite: (so SQLAlchemy cannot parse it)"),
        ("sqlite:mlflow.db", "A SQLite file takes three: sqlite:///mlflow.db"),
        ("sqlite:///no/such/dir/mlflow.db", "No folder .*no/such/dir for the database mlflow.db"),
        ("sqlite://mlflow.db", "has two slashes"),
    ],
)
def test_a_server_checks_its_uri_before_it_starts(tmp_path, uri, says):
    with pytest.raises(ServerError, match=says.replace("(", r"\(").replace(")", r"\)")):
        MlflowServer.start(uri, folder=tmp_path, port=free_port(5210))
    assert list(tmp_path.iterdir()) == [], "no folder, database or log is made"


def test_a_server_refuses_an_existing_file_that_is_no_store(tmp_path):
    (tmp_path / "notes.db").write_text("my notes")
    with pytest.raises(ServerError, match="is not an MLflow tracking database"):
        MlflowServer.start("sqlite:///notes.db", folder=tmp_path, port=free_port(5210))
    assert (tmp_path / "notes.db").read_text() == "my notes"


RACE_LOG = """\
sqlite3.OperationalError: duplicate column name: step

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) duplicate column name: step
[SQL: ALTER TABLE metrics ADD COLUMN step BIGINT DEFAULT '0' NOT NULL]
(Background on this error at: https://sqlalche.me/e/21/e3q8)
"""
"""The end of the log of one of two ``mlflow server`` started at once on a new SQLite file
(MLflow 3.17; the traceback's frames left out). Seen on this machine; which of the two
fails, and whether one does, depends on timing, so the parsing is tested on the text."""


def test_two_servers_creating_one_store_at_once_get_the_cause_not_a_link(tmp_path):
    server = object.__new__(MlflowServer)
    server.log = tmp_path / "mlflow-server.log"
    server.log.write_text(RACE_LOG)
    end_of_log = server._log_end()
    assert end_of_log.startswith("Another server or notebook was creating the same new database")
    assert "duplicate column name: step" in end_of_log
    assert "sqlalche.me" not in end_of_log
