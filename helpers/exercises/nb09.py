"""Checkers for notebook 09's exercises: a server restarted on its stores, a command fixed."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import mlflow
from mlflow.exceptions import MlflowException

from helpers.exercises import Hint, checker, require
from helpers.server import LOCALHOST, MlflowServer, ServerError, check_uri, sqlite_path


def _backend_store(server: MlflowServer) -> str:
    """The ``--backend-store-uri`` a server was started with."""
    return server.command[server.command.index("--backend-store-uri") + 1]


@checker
def check_restarted_server(run_id: object, server: object) -> str:
    """A run logged through a server that was restarted on server.db, and stopped again."""
    require(
        isinstance(server, MlflowServer),
        "pass the server you started (the name after `as` in `with MlflowServer.start(...) as`).",
    )
    require(
        _backend_store(server) == "sqlite:///server.db",
        "start it on the same stores as before: sqlite:///server.db and ./server-artifacts.",
    )
    require(not server.running, "the server still runs: start it as a `with` block.")
    require(isinstance(run_id, str) and run_id, "put the id of your run in the variable.")
    try:  # read the server's own database: the server is stopped by now
        run = mlflow.MlflowClient(_backend_store(server)).get_run(run_id)
    except MlflowException:
        raise Hint(
            "that run is not in server.db: log it while the client points at the server "
            "(`mlflow.set_tracking_uri(<your server>.url)`)."
        ) from None
    require(
        run.data.metrics.get("answer") == 42,
        "the run has no metric `answer` equal to 42: log it with mlflow.log_metric.",
    )
    require(
        run.info.artifact_uri.startswith("mlflow-artifacts:"),
        "that run was not logged through the server: set the tracking URI to its URL first.",
    )
    return "the run went through the restarted server into server.db, and the server stopped."


def _parse(command: str) -> dict[str, object]:
    """The options of an ``mlflow server`` command, read as MLflow's own command line reads them.

    Why ask click: ``-h`` is ``--host``, ``--host=0.0.0.0`` is one word, and a typo is an
    error, exactly as when the teammate runs the command.
    """
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise Hint(f"the command is not a valid shell line ({error}): check the quotes.") from None
    require(
        words[:2] == ["mlflow", "server"],
        "write the whole command as a string, starting with `mlflow server`.",
    )
    # Imported here, not at the top: MLflow's command line costs seconds to import, and the
    # notebook imports this module for its first exercise too.
    from mlflow.cli import server as server_command

    try:
        return server_command.make_context("server", words[2:]).params
    except click.ClickException as error:
        raise Hint(f"`mlflow server` would refuse it: {error.format_message()}") from None


@checker
def check_server_command(command: object) -> str:
    """A teammate's ``mlflow server`` command, fixed: a valid SQLite URI, 127.0.0.1 only."""
    require(
        isinstance(command, str),
        "write the whole command as a string, starting with `mlflow server`.",
    )
    options = _parse(command)
    uri = options.get("backend_store_uri")
    require(uri, "keep the option `--backend-store-uri`: without it the server uses another file.")
    try:
        check_uri(uri)
    except ServerError:
        raise Hint(
            "the backend store URI is still wrong: count the slashes after `sqlite:` "
            "(check_uri on it says more)."
        ) from None
    require(
        sqlite_path(uri) == Path("server.db"),
        "keep the same database: the file server.db, next to the notebook.",
    )
    if options["host"] not in (LOCALHOST, "localhost") and options.get("allowed_hosts"):
        raise Hint(
            "`--allowed-hosts` checks only the name a request is addressed to, not who sends "
            "it: the server still listens beyond this machine. Keep it on this machine (the team "
            "reaches it through `ssh -L`)."
        )
    require(
        options["host"] in (LOCALHOST, "localhost"),
        "the server still listens beyond this machine: see the security defaults above.",
    )
    require(
        options.get("allowed_hosts") != "*",
        "`--allowed-hosts '*'` turns off the host check that keeps web pages from reaching the "
        "server (DNS rebinding): leave it out.",
    )
    require(options["port"] == 5000, "keep the port of the teammate's command.")
    return "the URI names the file server.db, and the server listens on this machine only."
