"""Checkers for notebook 09's exercises: a server restarted on its stores, and its REST API."""

from __future__ import annotations

import math
from collections.abc import Callable

import mlflow
from mlflow.exceptions import MlflowException

from helpers.exercises import Hint, checker, require
from helpers.server import MlflowServer


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


@checker
def check_metric_over_rest(metric_over_rest: object, server: object) -> str:
    """The learner's REST function gives the same value as the MLflow client, for any run."""
    require(callable(metric_over_rest), "define the function `metric_over_rest` first.")
    require(
        isinstance(server, MlflowServer) and server.running,
        "pass a running server: call the check inside the `with MlflowServer.start(...)` block.",
    )
    client = mlflow.MlflowClient(server.url)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    checked = [r for r in runs if "rmse" in r.data.metrics]
    require(checked, "the server has no run with an `rmse` metric: start it on server.db.")
    function: Callable = metric_over_rest
    for run in checked[:3]:
        expected = run.data.metrics["rmse"]
        try:
            value = function(server.url, run.info.run_id, "rmse")
        except Exception as error:
            raise Hint(
                f"your function raised {type(error).__name__}: {error}. Try the URL in a "
                "browser first: <server>/api/2.0/mlflow/runs/get?run_id=<id>."
            ) from None
        require(
            isinstance(value, (int, float)) and math.isclose(value, expected),
            "the value is not the run's `rmse`: the JSON answer holds a list of metrics under "
            "run > data > metrics, each with a key and a value.",
        )
    return "your function reads a metric over plain HTTP, as any language could."
