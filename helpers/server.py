"""Start and stop an MLflow tracking server (or the UI) on this machine, and clean up.

Why: notebook 09 runs a real ``mlflow server``, and learners start the UI many times a day.
Both go wrong in the same few ways: port 5000 taken (macOS's AirPlay Receiver uses it), the
UI pointed at a database that does not exist yet (it then shows no runs), a database made by
an older MLflow, a server left running in the background. This module starts the same
command the README shows, on 127.0.0.1, waits until it answers, and stops the whole process
tree; each of those failures gets a message that says what to do.

From a shell, in the folder that holds ``mlflow.db`` (``notebooks/``)::

    python -m helpers.server          # the MLflow UI for ./mlflow.db, on 5000 or a free port
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

DEFAULT_PORT = 5000
LOCALHOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server could not be started; the message says what to do."""


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True if nothing listens on ``host:port`` (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if sys.platform != "win32":  # as servers do: ignore connections closing (TIME_WAIT)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


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
            "file), postgresql://user@host:5432/db (a database) or http://host:port (a server)."
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


class MlflowServer:
    """A running ``mlflow server`` or ``mlflow ui``; stop it with :meth:`stop` or ``with``."""

    def __init__(self, process: subprocess.Popen, url: str, command: list[str], log: Path):
        self.process, self.url, self.command, self.log = process, url, command, log

    @classmethod
    def start(
        cls,
        backend_store_uri: str = "sqlite:///mlflow.db",
        *,
        ui: bool = False,
        port: int | None = None,
        artifacts_destination: str | None = None,
        folder: str | Path = ".",
        workers: int = 1,
        timeout: float = 90,
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
        """
        folder = Path(folder)
        if ui:
            check_store(backend_store_uri, folder)
        if port is None:
            port = free_port(DEFAULT_PORT)
            if port != DEFAULT_PORT:
                print(f"Port {DEFAULT_PORT} is taken; using port {port} instead.")
        elif not port_is_free(port):
            raise ServerError(
                f"Port {port} is in use by another program (on macOS, AirPlay Receiver "
                f"takes 5000). Choose another port, e.g. --port {port + 1}, or pass "
                "port=None to pick a free one."
            )
        command = [
            sys.executable, "-m", "mlflow", "ui" if ui else "server",
            "--backend-store-uri", backend_store_uri,
            "--host", LOCALHOST, "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip
        if artifacts_destination:
            command += ["--artifacts-destination", artifacts_destination]
        # The course uses no background jobs (they serve GenAI evaluation): without them
        # the server starts faster, as 2 processes instead of 10.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        log_path = Path(log) if log else folder / "mlflow-server.log"
        with open(log_path, "wb") as output:
            process = subprocess.Popen(
                command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        server = cls(process, f"http://{LOCALHOST}:{port}", command, log_path)
        server._wait_until_ready(timeout)
        if ui:
            print(f"MLflow UI: {server.url}")
        return server

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"The MLflow server stopped at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"The MLflow server did not answer within {timeout:.0f} s:\n"
                          f"{self.log_tail()}")  # fmt: skip

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server wrote, to explain a failure."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> list[psutil.Process]:
        """The server and every process it started (workers), while they run."""
        try:
            parent = psutil.Process(self.process.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 15) -> None:
        """Stop the server and all its workers; wait until none is left."""
        processes = self.processes()
        for process in processes:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(processes, timeout=timeout)
        for process in alive:
            process.kill()
        psutil.wait_procs(alive, timeout=timeout)
        self.process.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def __enter__(self) -> MlflowServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MlflowServer {self.url} ({state})>"


def main() -> int:
    """Start the MLflow UI for ./mlflow.db and keep it running until Ctrl+C."""
    try:
        server = MlflowServer.start(ui=True, workers=2)
    except ServerError as error:
        print(f"Cannot start the MLflow UI: {error}", file=sys.stderr)
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
