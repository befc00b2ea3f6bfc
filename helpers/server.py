"""Start and stop an MLflow tracking server (or the UI) on this machine, and clean up.

Why: notebook 09 runs a real ``mlflow server``, and learners start the UI many times a day.
Both go wrong in the same few ways: port 5000 taken (macOS's AirPlay Receiver uses it), the
UI pointed at a database that does not exist yet (it then shows no runs), a database made by
an older MLflow, a server left running in the background. This module starts the same
command the README shows, on 127.0.0.1, waits until it answers, and stops the whole process
tree; each of those failures gets a message that says what to do.

It also never leaves a server behind: every server it starts is stopped when Python exits
(a notebook's kernel restarts, say), and stopping one ends every process it started, even
workers whose parent has died.

From a shell, in the folder that holds ``mlflow.db`` (``notebooks/``)::

    python -m helpers.server          # the MLflow UI for ./mlflow.db, on 5000 or a free port
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Self

import psutil

DEFAULT_PORT = 5000
LOCALHOST = "127.0.0.1"
MARKER = "COURSE_MLFLOW_SERVER"
"""An environment variable set, to a value unique to each server, in every process of it."""


class ServerError(RuntimeError):
    """The server could not be started; the message says what to do."""


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True if nothing listens on ``host:port``: we can bind it, and nothing answers there.

    Why both: binding alone misses some listeners (on macOS and Windows a program listening
    on all addresses, or with address reuse, lets another bind 127.0.0.1 beside it).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if sys.platform != "win32":  # as servers do: ignore connections closing (TIME_WAIT)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) != 0


def _listens_on(process: psutil.Process, port: int) -> bool:
    """True if ``process`` listens on TCP ``port``; False if it does not or we may not look."""
    try:
        connections = process.net_connections(kind="tcp")
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def port_owner(port: int) -> str:
    """Who listens on ``port``: "process PID (command line)" if we may see it.

    Why: "port in use" alone leaves a learner guessing which program to stop.
    """
    for process in psutil.process_iter():
        if _listens_on(process, port):
            with contextlib.suppress(psutil.Error):
                command = " ".join(process.cmdline()) or process.name()
                return f"process {process.pid} ({command[:200]})"
    return "another program"


def _port_taken(port: int) -> ServerError:
    """The error for a port another program holds, naming that program and the way out."""
    return ServerError(
        f"Port {port} is in use by {port_owner(port)} (on macOS, AirPlay Receiver takes "
        f"5000). Stop it, or choose another port, e.g. --port {port + 1}, or pass port=None "
        "to pick a free one."
    )


def free_port(preferred: int = DEFAULT_PORT, host: str = LOCALHOST) -> int:
    """``preferred`` if it is free, else a port the operating system picks."""
    if port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def sqlite_path(uri: str, folder: str | Path = ".") -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to ``folder``), else None.

    Options after ``?`` (``sqlite:///mlflow.db?timeout=20``) are for the driver, not the name.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(folder) / uri[len(prefix) :].partition("?")[0]


KNOWN_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def check_uri(uri: str) -> None:
    """Refuse a tracking URI MLflow 3 cannot use, naming the URI to use instead."""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme == "file":
        raise ServerError(
            f"{uri!r} is a file store, which MLflow 3 refuses. Use a database: "
            "sqlite:///mlflow.db (and `mlflow migrate-filestore` for old runs)."
        )
    if scheme == "sqlite" and not rest.startswith("/"):
        raise ServerError(
            f"{uri!r} has two slashes, so {rest!r} is read as a host. A SQLite file takes "
            f"three: sqlite:///{rest}"
        )
    if scheme.split("+")[0] not in KNOWN_SCHEMES:
        raise ServerError(
            f"Unknown tracking URI scheme {scheme!r} in {uri!r}. Use sqlite:///mlflow.db (a "
            "file), postgresql+psycopg://user@host/db (a database) or http://host:port (a server)."
        )


def check_store(uri: str, folder: str | Path = ".") -> None:
    """Refuse a tracking store that a server could not open, naming the fix.

    Catches what otherwise surfaces as an empty UI or a long traceback: a malformed URI,
    a SQLite database that does not exist yet, is not a database, or has the schema of an
    older (or newer) MLflow. Only reads: the store is never changed. Other stores
    (PostgreSQL, a server URL) are otherwise left to MLflow.
    """
    check_uri(uri)
    path = sqlite_path(uri, folder)
    if path is None:
        return
    if not path.is_file():
        raise ServerError(
            f"No tracking database at {path}. Run notebook 01 first (it creates mlflow.db "
            "next to the notebooks), and start the UI from the folder that holds mlflow.db."
        )
    try:
        row = _read_schema_revision(path)
    except sqlite3.DatabaseError as error:
        raise ServerError(
            f"{path} is not an MLflow tracking database ({error}). Point --backend-store-uri "
            "at the mlflow.db the notebooks created."
        ) from error
    found = row[0] if row else None
    expected = _mlflow_schema_revision()
    if found == expected:
        return
    if found is not None and not _is_known_revision(found):
        raise ServerError(
            f"{path} was made by a newer MLflow (schema {found}). Install the course's "
            "version: pip install -r requirements.txt"
        )
    raise ServerError(
        f"{path} was made by an older MLflow: its schema is {found}, this MLflow needs "
        f"{expected}. Back it up, then upgrade it, in its folder: cp {path.name} "
        f"{path.name}.backup && mlflow db upgrade sqlite:///{path.name}"
    )


def _read_schema_revision(path: Path) -> tuple[str] | None:
    """The alembic row of a SQLite store, read without creating or changing any file.

    Why a file URI: ``mode=ro`` never creates a file, and quoting the path keeps a folder
    name with ``#`` or ``?`` from being read as part of the URI.
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()


def _mlflow_schema_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _is_known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    try:
        ScriptDirectory.from_config(_get_alembic_config(db_url="")).get_revision(revision)
    except Exception:
        return False
    return True


_RUNNING: set[Background] = set()
"""The servers started and not stopped yet: :func:`_stop_all` stops them when Python exits."""


@atexit.register
def _stop_all() -> None:
    """Stop every server still running when Python exits.

    Why: a server started from a notebook would otherwise outlive a kernel restart and keep
    its port, so the restarted notebook could not start it again.
    """
    for server in list(_RUNNING):
        server.stop()


def _alive(process: psutil.Process) -> bool:
    """True while ``process`` runs (a zombie has ended: only its exit status is left)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def processes_with_environment(name: str, value: str) -> list[psutil.Process]:
    """Every running process but this one whose environment has ``name=value``.

    Why by environment: a child inherits it, so this finds a server's workers even when
    their parent has died and they are nobody's children any more.
    """
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):  # not ours to read, or gone
            if process.pid != os.getpid() and process.environ().get(name) == value:
                found.append(process)
    return [p for p in found if _alive(p)]


def _launch(command: list[str], folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``command`` in ``folder`` with its output in ``log``.

    On POSIX it gets a session (and so a process group) of its own: :meth:`Background.stop`
    can then end the whole group, workers whose parent has died included.
    """
    try:
        output = open(log, "wb")
    except OSError as error:
        raise ServerError(
            f"Cannot write the server's log {log} ({error.strerror}). Remove or rename what is "
            "there (a folder?), or start the server from a folder you can write to."
        ) from error
    with output:
        return subprocess.Popen(
            command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=sys.platform != "win32",
        )  # fmt: skip


def answers_health(url: str) -> bool:
    """True if an MLflow server (tracking or model) at ``url`` answers ``/health`` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (http.client.HTTPException, OSError):  # URLError is an OSError
        return False


class Background:
    """A program this course started in the background (a server); stop it with :meth:`stop`.

    Why one class: an MLflow server and an object store must both be stopped with every
    process they started, and must not outlive the notebook's kernel.
    """

    name = "The program"
    """How errors name it: "The MLflow server stopped at start. ..."."""

    def __init__(self, command: list[str], folder: Path, env: dict[str, str], log: Path):
        """Start ``command`` in ``folder``, with ``env``, its output in ``log``.

        Every process of it carries a fresh value of MARKER in its environment, so that
        :meth:`processes` finds them all; it is stopped at the latest when Python exits.
        """
        self.command, self.log = command, log
        self.marker = uuid.uuid4().hex
        self.process = _launch(command, folder, {**env, MARKER: self.marker}, log)
        _RUNNING.add(self)

    def _wait_until_ready(self, port: int, timeout: float) -> None:
        """Return once this server answers; raise if it stops, or if another program answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if not port_is_free(port):  # it died because another program has the port
                    raise _port_taken(port)
                raise ServerError(f"{self.name} stopped at start. {self._log_end()}")
            if self._answers():
                if not any(_listens_on(p, port) for p in self.processes()):
                    raise _port_taken(port)  # the answer came from another program
                return
            time.sleep(0.25)
        raise ServerError(f"{self.name} did not answer within {timeout:.0f} s. {self._log_end()}")

    def _answers(self) -> bool:
        """True if something answers at this program's address (each kind says how)."""
        raise NotImplementedError

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server wrote, to explain a failure."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _log_end(self) -> str:
        """The last line of the log (usually the error), on one line, and where the rest is."""
        written = [line.strip() for line in self.log_tail().splitlines() if line.strip()]
        return f"The end of its log {self.log}: {written[-1] if written else '(empty)'}"

    def processes(self) -> list[psutil.Process]:
        """The server and every process it started, while they run.

        Its children, and every process that carries its marker: a worker whose parent
        died is nobody's child any more, but it still carries the marker.
        """
        tree = []
        if self.process.poll() is None:  # once it has ended, its process id can be reused
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(self.process.pid)
                tree = [parent, *parent.children(recursive=True)]
        marked = processes_with_environment(MARKER, self.marker) if self.marker else []
        return list({p.pid: p for p in [*tree, *marked] if _alive(p)}.values())

    def stop(self, timeout: float = 15) -> None:
        """Stop the server and all its workers; wait until none is left.

        Asks them to end first, then kills what is left after ``timeout`` seconds.
        """
        _RUNNING.discard(self)
        # Look again after each round: a server may start a worker while the others end (a
        # loaded machine showed a uvicorn still running after the second round).
        for ending in ("terminate", "kill", "kill", "kill"):
            processes = self.processes()
            if not processes:
                break
            self._signal_group(ending)
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    getattr(process, ending)()
            self._wait_ended(processes, timeout)
        self.process.wait(timeout=timeout)

    def _signal_group(self, ending: str) -> None:
        """On POSIX, end the server's process group too: it reaches workers we cannot see."""
        if sys.platform == "win32":
            return
        sig = signal.SIGTERM if ending == "terminate" else signal.SIGKILL
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)  # its own session: group id = its process id

    def _wait_ended(self, processes: list[psutil.Process], timeout: float) -> None:
        """Wait up to ``timeout`` seconds for ``processes`` to end."""
        deadline = time.monotonic() + timeout
        while True:
            self.process.poll()  # collect our own child, so that it does not stay a zombie
            if not any(_alive(p) for p in processes) or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class MlflowServer(Background):
    """A running ``mlflow server`` or ``mlflow ui``; stop it with :meth:`stop` or ``with``."""

    name = "The MLflow server"

    def __init__(self, url: str, command: list[str], folder: Path, env: dict[str, str], log: Path):
        self.url = url
        super().__init__(command, folder, env, log)

    @classmethod
    def start(
        cls,
        backend_store_uri: str = "sqlite:///mlflow.db",
        *,
        ui: bool = False,
        port: int | None = None,
        artifacts_destination: str | None = None,
        default_artifact_root: str | None = None,
        serve_artifacts: bool = True,
        folder: str | Path = ".",
        workers: int = 1,
        timeout: float = 180,
        log: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> MlflowServer:
        """Start the server on 127.0.0.1 and return once it answers.

        ``ui=True`` runs ``mlflow ui`` on an existing store (checked first with
        :func:`check_store`); otherwise ``mlflow server``, which creates its store.
        ``port=None`` takes 5000 if free, else a free port (and says so); an explicit
        port that is taken is an error. Output goes to ``log`` (default:
        ``mlflow-server.log`` in ``folder``), never into a notebook. ``env`` adds
        environment variables for the server only, such as a database password.
        ``timeout`` is generous: a first start creates the store's tables, which took over a
        minute on a busy 2-core machine.

        Artifacts (the command's flags of the same names): ``artifacts_destination`` is
        where a proxying server stores them (clients upload to the server);
        ``default_artifact_root`` with ``serve_artifacts=False`` makes clients write to
        that location themselves, with their own credentials (notebook 10 shows both).
        """
        folder = Path(folder)
        if ui:
            check_store(backend_store_uri, folder)
        if port is None:
            port = free_port(DEFAULT_PORT)
            if port != DEFAULT_PORT:
                print(f"Port {DEFAULT_PORT} is taken; using port {port} instead.")
        elif not port_is_free(port):
            raise _port_taken(port)
        command = [
            sys.executable, "-m", "mlflow", "ui" if ui else "server",
            "--backend-store-uri", backend_store_uri,
            "--host", LOCALHOST, "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip
        if artifacts_destination:
            command += ["--artifacts-destination", artifacts_destination]
        if default_artifact_root:
            command += ["--default-artifact-root", default_artifact_root]
        if not serve_artifacts:
            command += ["--no-serve-artifacts"]
        # The course uses no background jobs (they serve GenAI evaluation): without them
        # the server starts faster, as 2 processes instead of 10.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        log_path = Path(log) if log else folder / "mlflow-server.log"
        server = cls(f"http://{LOCALHOST}:{port}", command, folder, env, log_path)
        try:
            server._wait_until_ready(port, timeout)
        except BaseException:  # Ctrl+C too: never leave a half-started server behind
            server.stop()
            raise
        if ui:
            print(f"MLflow UI: {server.url}")
        return server

    def _answers(self) -> bool:
        """True if something at this server's address answers ``/health``."""
        return answers_health(self.url)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MlflowServer {self.url} ({state})>"


def _one_line(error: BaseException) -> str:
    """``error`` as one line that says what to do, for the command line."""
    if isinstance(error, KeyboardInterrupt):
        text = "stopped by Ctrl+C before it answered; nothing is left running."
    elif isinstance(error, ServerError):
        text = str(error)
    else:
        text = f"{error}. Check that you may read and write this folder and its mlflow.db."
    return " ".join(text.splitlines())


def main() -> int:
    """Start the MLflow UI for ./mlflow.db and keep it running until Ctrl+C.

    A failure to start is one line on stderr that names the fix, never a traceback.
    """
    try:
        server = MlflowServer.start(ui=True, workers=2)
    except (ServerError, OSError, KeyboardInterrupt) as error:
        print(f"Cannot start the MLflow UI: {_one_line(error)}", file=sys.stderr)
        return 1
    print(f"Ctrl+C stops it; its log is {server.log}")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
