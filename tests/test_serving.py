"""helpers.serving: serves a real registered model with `mlflow models serve`, answers
predictions, refuses a request with a missing column clearly, refuses a taken port with the
way out, and stops with no process or temporary folder left, even when Python just exits.

Everything is real: a SQLite store, a logged and registered scikit-learn model, the
`mlflow models serve` command and its uvicorn server on 127.0.0.1. A server starts twice in
this file (about 5 s each), and fails to start once; the other tests start nothing.
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import psutil
import pytest
from child_python import assert_nothing_left, run_python
from cleanup_guard import child_mark

from helpers.server import MARKER, ServerError, port_is_free, processes_with_environment
from helpers.serving import ModelServer

MODEL = "models:/tiny@champion"
ROWS = pd.DataFrame({"zone": ["a", "b", "a"], "miles": [1.0, 2.0, 3.0]})
TARGETS = [3.0, 5.0, 7.0]


def make_store(folder: Path) -> None:
    """``folder/mlflow.db`` with a registered model ``tiny`` whose ``champion`` is a pipeline
    that reads a string column ``zone`` and a number ``miles`` (its signature says so)."""
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = ColumnTransformer([("zone", OneHotEncoder(), ["zone"])], remainder="passthrough")
    pipeline = Pipeline([("features", features), ("model", LinearRegression())])
    pipeline.fit(ROWS, TARGETS)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("serving", artifact_location=str(folder / "mlruns"))
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=infer_signature(ROWS),
                pip_requirements=["scikit-learn"],
            )
        version = mlflow.register_model(info.model_uri, "tiny")
        client.set_registered_model_alias("tiny", "champion", version.version)
    finally:
        mlflow.set_tracking_uri(before)


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def ended(process: psutil.Process) -> bool:
    """True once ``process`` has ended (a zombie has: only its exit status is left)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serving")
    make_store(folder)
    return folder


@pytest.fixture(scope="module")
def server(store):
    with ModelServer.start(MODEL, folder=store) as running:
        yield running


def test_the_server_is_ready_on_localhost_as_two_processes(server):
    assert server.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
        assert response.status == 200
    assert len(server.processes()) == 2, "mlflow models serve, and the uvicorn it started"
    assert server.memory_mb() > 100
    assert server.tmpdir.is_dir()


def test_it_predicts_what_the_model_learned_in_both_layouts(server):
    expected = pytest.approx(TARGETS)  # three points, three coefficients: an exact fit
    split = {"dataframe_split": ROWS.to_dict(orient="split", index=False)}
    records = {"dataframe_records": ROWS.to_dict(orient="records")}
    for body in (split, records):
        status, answer = post(server.url, body)
        assert status == 200
        assert answer["predictions"] == expected


def test_a_missing_column_is_refused_with_a_message_that_names_it(server):
    status, answer = post(server.url, {"dataframe_records": [{"zone": "a"}]})
    assert status == 400
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert answer["message"].endswith("Model is missing inputs ['miles'].")


def test_a_taken_port_is_refused_with_the_way_out(store):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(ServerError, match=rf"Port {port} is in use .* port=None"):
            ModelServer.start(MODEL, folder=store, port=port)


def test_a_missing_alias_is_named(store):
    with pytest.raises(ServerError, match="stopped at start.*alias nope not found"):
        ModelServer.start("models:/tiny@nope", folder=store, log=store / "nope.log")


def test_without_uvicorn_it_says_how_to_install_it(store, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(store / "no-env" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(store / "no-env" / "bin"))
    with pytest.raises(ServerError, match=r"uvicorn is not installed.*pip install -r requirements"):
        ModelServer.start(MODEL, folder=store)


def test_an_unactivated_environment_serves_and_python_exit_stops_it(store):
    """The gotcha and the kernel restart: a Python started from the environment without
    its ``bin`` on PATH still serves (the helper puts it first); when that Python exits
    without stopping the server, nothing is left.

    Leak-proof: should the child be killed (the timeout kills with SIGKILL, which skips its
    exit hook), its server, in a session of its own, would be nobody's child and keep its
    port; child_mark ends it. (It would also be a leak the session's guard names: its TMPDIR
    is a folder inside the session's.)"""
    code = (
        "from helpers.serving import ModelServer\n"
        f"server = ModelServer.start({MODEL!r}, log='exit.log')\n"
        "import json, urllib.request\n"
        "body = json.dumps({'dataframe_records': [{'zone': 'b', 'miles': 2.0}]}).encode()\n"
        "request = urllib.request.Request(f'{server.url}/invocations', data=body,\n"
        "                                 headers={'Content-Type': 'application/json'})\n"
        "answer = json.load(urllib.request.urlopen(request, timeout=30))\n"
        "print(server.marker, server.url.rsplit(':', 1)[1], server.tmpdir, answer['predictions'])\n"
    )
    with child_mark() as mark:
        printed = run_python(code, store, timeout=240, PATH="/usr/bin:/bin", **mark)
        marker, port, tmpdir, predictions = printed.split(maxsplit=3)
        assert predictions.startswith("[") and predictions.strip() != "[]"
        assert_nothing_left(marker, port)
        assert not Path(tmpdir).exists()


def test_stop_leaves_no_process_and_no_temporary_folder(server):
    """Last of the tests on the shared server (pytest runs them in file order)."""
    parent = psutil.Process(server.process.pid)  # the tree as the system sees it, and as
    processes = [parent, *parent.children(recursive=True), *server.processes()]  # stop does
    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    assert not server.running
    assert all(ended(p) for p in processes)
    assert processes_with_environment(MARKER, server.marker) == []
    assert not server.tmpdir.exists()
    assert port_is_free(port)
