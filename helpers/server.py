"""Start and stop an MLflow tracking server (or the UI) on this machine.

Why: notebook 09 runs a real ``mlflow server``, and learners start the UI many times a day.
Both go wrong in the same few ways: port 5000 taken (macOS's AirPlay Receiver uses it), the
UI pointed at a database that does not exist yet (it then shows no runs), a database made by
an older MLflow, a database server that refuses connections. This module starts the same
command the README shows, on 127.0.0.1, waits until it answers, and gives each of those
failures a message that says what to do. How a background server lives and dies (its
port, its watchdog, stopping all its processes) is :mod:`helpers.background`'s part.

From a shell, in the folder that holds ``mlflow.db`` (``notebooks/``)::

    python -m helpers.server          # the MLflow UI for ./mlflow.db, on 5000 or a free port
    python -m helpers.server --help   # its options: --port, --backend-store-uri, --workers
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path

from helpers.background import (
    LOCALHOST,
    MARKER,
    Background,
    ServerError,
    answers_health,
    choose_port,
    free_port,
    port_is_free,
    processes_with_environment,
)

__all__ = [
    "LOCALHOST", "MARKER", "Background", "MlflowServer", "ServerError", "answers_health",
    "check_store", "check_uri", "free_port", "port_is_free", "processes_with_environment",
    "sqlite_path",
]  # fmt: skip

DEFAULT_PORT = 5000


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
    written, colon, path = uri.partition(":")
    if not separator and colon and written.split("+")[0] in KNOWN_SCHEMES:
        name = path.lstrip("/") or "mlflow.db"
        raise ServerError(
            f"{uri!r} lacks the slashes after {written}: (so SQLAlchemy cannot parse it). A "
            f"SQLite file takes three: sqlite:///{name}"
        )
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


def check_new_store(uri: str, folder: str | Path = ".") -> None:
    """Refuse a store that ``mlflow server`` could not open or create, naming the fix.

    Unlike the UI, the server creates a missing SQLite database; but a folder that does not
    exist should not be made silently (it is usually a typo, and the runs would land in a
    store nobody looks at), and an existing file must be a database of this MLflow. A
    PostgreSQL (or MySQL) server must accept connections: MLflow would retry for minutes.
    """
    check_uri(uri)
    path = sqlite_path(uri, folder)
    if path is None:
        check_database_reachable(uri)
        return
    if not path.parent.is_dir():
        raise ServerError(
            f"No folder {path.parent} for the database {path.name}. Create the folder first, "
            "or correct the path (sqlite:///mlflow.db is a file in the server's folder)."
        )
    if path.exists():
        check_store(uri, folder)


DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_database_reachable(uri: str, timeout: float = 3) -> None:
    """Refuse a database server URI whose host and port accept no connection, at once.

    Why: ``mlflow server`` retries a refused connection for minutes ("Operation will be
    retried in 51.1 seconds") and the cause is only in its log. A socket says it in
    milliseconds. Only the connection is tried: the password and database are MLflow's.
    """
    scheme = uri.partition("://")[0].split("+")[0]
    if scheme not in DATABASE_PORTS:
        return
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if not url.host:  # a local socket file: left to the driver
        return
    port = url.port or DATABASE_PORTS[scheme]
    where = f"{url.host}:{port}"
    shown = url.render_as_string(hide_password=True)
    try:
        socket.create_connection((url.host, port), timeout=timeout).close()
    except ConnectionRefusedError as error:
        raise ServerError(
            f"The database server at {where} ({shown}) refuses connections: is it running, "
            "on that host and port? Start it (notebook 09 shows how), or correct the URI."
        ) from error
    except socket.gaierror as error:
        raise ServerError(
            f"Unknown database host {url.host!r} in {shown}: check its spelling."
        ) from error
    except OSError as error:
        raise ServerError(
            f"The database server at {where} ({shown}) did not accept a connection within "
            f"{timeout:.0f} s ({error}). Check the host, the port and the network."
        ) from error


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


ERROR_LINE = re.compile(r"^(\(\w[\w.]*(Error|Exception)\) |\w[\w.]*(Error|Exception): )")
"""A line that states an error: "(psycopg.OperationalError) ..." or "ValueError: ..."."""

RACE_FIX = (
    "Another server or notebook was creating the same new database at the same moment, and "
    "finished it: start this one again. "
)
KNOWN_FAILURES = {
    "duplicate column name": RACE_FIX,
    "Online migration expected": RACE_FIX,
    "no such column: spans.": RACE_FIX,
    "Connection refused": "The database server refuses connections: start it, or correct "
    "the host and port in the URI. ",
    "password authentication failed": "The database refused the user name or password: "
    "check them (a password goes in the environment, never on the command line). ",
}
"""Errors a learner meets, by a phrase of MLflow's or the driver's message, with the fix."""


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
        allowed_hosts: list[str] | None = None,
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

        ``allowed_hosts`` (``--allowed-hosts``): the ``Host`` headers the server answers
        besides its own address, for a server reached under another name, each as the header
        reads, port included (``"mlflow.example.com:5000"``; ``*`` is a wildcard). MLflow's
        list replaces its defaults (loopback and private addresses), so this server's own
        ``127.0.0.1`` and ``localhost`` on its port are added: its clients here keep working.
        """
        folder = Path(folder)
        if ui:
            check_store(backend_store_uri, folder)
        else:
            check_new_store(backend_store_uri, folder)
        port = choose_port(port, DEFAULT_PORT, announce=True)
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
        if allowed_hosts:
            own = [f"{LOCALHOST}:{port}", f"localhost:{port}"]
            command += ["--allowed-hosts", ",".join([*allowed_hosts, *own])]
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

    def _failure(self) -> str | None:
        """The store's error, once MLflow says it will retry: it would retry for minutes.

        Why: a database that refuses connections (or a wrong password) makes ``mlflow
        server`` retry for about two minutes, then fail; its log has the cause at once.
        """
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        if "Operation will be retried" not in text:
            return None
        return f"{self.name} cannot open its store. {self._log_end()}"

    def _log_end(self) -> str:
        """The error the log ends with, on one line, with what to do if it is a known one.

        Why not the last line: SQLAlchemy ends its errors with a link to its documentation,
        and MLflow with "Operation will be retried"; the cause is the error line above.
        """
        lines = [line.strip() for line in self.log_tail(80).splitlines() if line.strip()]
        errors = [line for line in lines if ERROR_LINE.match(line)]
        found = errors[-1] if errors else (lines[-1] if lines else "(empty)")
        hint = next((fix for known, fix in KNOWN_FAILURES.items() if known in found), "")
        return f"{hint}The end of its log {self.log}: {found}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MlflowServer {self.url} ({state})>"


class Stopped(KeyboardInterrupt):
    """The command line was asked to stop by a signal: handled as Ctrl+C is."""


def _stop_on_signals() -> None:
    """Make ``kill`` (SIGTERM), a closed terminal (SIGHUP) and Ctrl+Break stop as Ctrl+C does.

    Why: Python's default for those signals ends at once, without the ``finally`` that
    stops the server (the watchdog would still stop it, but this way stopping is in order
    and said).
    """

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    for name in ("SIGTERM", "SIGHUP", "SIGBREAK"):  # SIGHUP: POSIX; SIGBREAK: Windows
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


def _one_line(error: BaseException) -> str:
    """``error`` as one line that says what to do, for the command line."""
    if isinstance(error, Stopped):
        text = f"stopped by {error} before it answered; nothing is left running."
    elif isinstance(error, KeyboardInterrupt):
        text = "stopped by Ctrl+C before it answered; nothing is left running."
    elif isinstance(error, ServerError):
        text = str(error)
    else:
        text = f"{error}. Check that you may read and write this folder and its mlflow.db."
    return " ".join(text.splitlines())


def _positive(text: str) -> int:
    """An integer of 1 or more, for argparse."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _port(text: str) -> int:
    """A TCP port number (1-65535), for argparse."""
    number = int(text)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, not {number}")
    return number


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options; an unknown one is refused with the usage (exit code 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.server",
        description="Start the MLflow UI on 127.0.0.1 for a tracking store, check it first, "
        "and stop it with every process it started (Ctrl+C, kill, or a closed terminal).",
    )
    parser.add_argument(
        "--backend-store-uri", default="sqlite:///mlflow.db", metavar="URI",
        help="the tracking store (default: sqlite:///mlflow.db, in this folder)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=_port, default=None,
        help=f"the port; taken is an error (default: {DEFAULT_PORT}, else a free one)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=_positive, default=2, help="web server processes (default: 2)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the MLflow UI and keep it running until Ctrl+C, ``kill`` or a closed terminal.

    A failure to start is one line on stderr that names the fix, never a traceback.
    """
    options = parse_arguments(argv)
    _stop_on_signals()
    try:
        server = MlflowServer.start(
            options.backend_store_uri, ui=True, port=options.port, workers=options.workers
        )
    except (ServerError, OSError, KeyboardInterrupt) as error:
        print(f"Cannot start the MLflow UI: {_one_line(error)}", file=sys.stderr)
        return 1
    print(f"Ctrl+C stops it; its log is {server.log}", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt as error:
        how = str(error) if isinstance(error, Stopped) else "Ctrl+C"
        print(f"Stopping the MLflow UI ({how}).", flush=True)
        return 0
    finally:
        server.stop()
    print(f"The MLflow UI stopped by itself. {server._log_end()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
