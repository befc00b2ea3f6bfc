"""Notebook 09's checkers: a run through a restarted server, and a teammate's command fixed."""

from __future__ import annotations

import mlflow
import pytest
from exercise_support import ODD_INPUTS, correct, hint, learner_store, verdict  # noqa: F401

from helpers.exercises.nb09 import check_restarted_server, check_server_command
from helpers.server import MlflowServer, free_port


def log_answer(url_or_uri: str, value: float = 42, experiment: str = "exercise") -> str:
    mlflow.set_tracking_uri(url_or_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="exercise-run") as run:
        mlflow.log_metric("answer", value)
    return run.info.run_id


def test_restarted_server_accepts_the_solution_and_refuses_what_only_looks_right(
    capsys, store, tmp_path
):
    """One test, two real servers (each start takes seconds): every case in order."""
    learner_uri = mlflow.get_tracking_uri()
    start = {"folder": tmp_path, "artifacts_destination": "./server-artifacts"}
    with MlflowServer.start("sqlite:///server.db", port=free_port(5401), **start) as server:
        right = log_answer(server.url)
        wrong_value = log_answer(server.url, 41)
        mlflow.set_tracking_uri(learner_uri)
        out = verdict(capsys, check_restarted_server, right, server)  # checked while it runs
        assert hint(out, "the server still runs")
    assert correct(verdict(capsys, check_restarted_server, right, server))
    assert hint(verdict(capsys, check_restarted_server, None, server), "put the id of your run")
    out = verdict(capsys, check_restarted_server, wrong_value, server)
    assert hint(out, "no metric `answer` equal to 42")
    # Into the file, not through the server: its experiment made there keeps artifacts locally.
    # (A run logged into the file in an experiment the server made cannot be told apart.)
    direct = log_answer("sqlite:///server.db", experiment="exercise-without-server")
    mlflow.set_tracking_uri(learner_uri)
    out = verdict(capsys, check_restarted_server, direct, server)
    assert hint(out, "not logged through the server")
    elsewhere = log_answer(learner_uri)  # the notebook's own store
    assert hint(verdict(capsys, check_restarted_server, elsewhere, server), "not in server.db")
    out = verdict(capsys, check_restarted_server, right, server.url)  # its address, not itself
    assert hint(out, "pass the server you started")
    with MlflowServer.start("sqlite:///other.db", port=free_port(5402), **start) as other:
        pass
    out = verdict(capsys, check_restarted_server, right, other)
    assert hint(out, "start it on the same stores as before")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_restarted_server, odd, server)), odd
        assert hint(verdict(capsys, check_restarted_server, right, odd)), odd


FIXED = "mlflow server --backend-store-uri sqlite:///server.db --host 127.0.0.1 --port 5000"


def test_server_command_accepts_the_solution_its_spellings_and_refuses_the_empty_answer(capsys):
    assert correct(verdict(capsys, check_server_command, FIXED))
    for spelling in (
        "mlflow server --backend-store-uri sqlite:///server.db",  # 127.0.0.1:5000 are defaults
        "mlflow server --backend-store-uri=sqlite:///server.db -h localhost -p 5000",
        "mlflow server --port 5000 --backend-store-uri 'sqlite:///server.db'",
        f"{FIXED} --allowed-hosts 'localhost:*,127.0.0.1:*'",  # the defaults' loopback names
    ):
        assert correct(verdict(capsys, check_server_command, spelling)), spelling
    assert hint(verdict(capsys, check_server_command, None), "write the whole command")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        # the teammate's two bugs, one left in
        ("mlflow server --backend-store-uri sqlite://server.db --port 5000", "count the slashes"),
        ("mlflow server --backend-store-uri sqlite:///server.db -h 0.0.0.0", "beyond this machine"),
        ("mlflow server --backend-store-uri sqlite:///server.db --host=0.0.0.0", "beyond this"),
        ("mlflow server --backend-store-uri sqlite:///server.db --host 192.168.1.5", "beyond"),
        # what the remote-machine section may suggest, misread: a name check is no wall
        (f"{FIXED} --host 0.0.0.0 --allowed-hosts ec2-203-0-113-10.compute-1.amazonaws.com:5000",
         "checks only the name"),
        ("mlflow server --backend-store-uri sqlite:///server.db -h 0.0.0.0 --allowed-hosts '*'",
         "checks only the name"),
        (f"{FIXED} --allowed-hosts '*'", "turns off the host check"),
        # another database, another port, the option dropped
        ("mlflow server --backend-store-uri sqlite:////server.db", "keep the same database"),
        ("mlflow server --backend-store-uri sqlite:///mlflow.db", "keep the same database"),
        ("mlflow server --backend-store-uri sqlite:///server.db -p 5001", "keep the port"),
        ("mlflow server --host 127.0.0.1 --port 5000", "keep the option `--backend-store-uri`"),
        # what mlflow itself would refuse, in its own words
        ("mlflow server --backend-store-uri sqlite:///server.db --hots 127.0.0.1", "No such"),
        ("mlflow server --backend-store-uri sqlite:///server.db --port five", "not a valid"),
        ("mlflow server --backend-store-uri 'sqlite:///server.db", "check the quotes"),
        ("mlflow ui --backend-store-uri sqlite:///server.db", "starting with `mlflow server`"),
        ("", "starting with `mlflow server`"),
    ],
)  # fmt: skip
def test_server_command_gives_each_mistake_its_hint(capsys, command, says):
    assert hint(verdict(capsys, check_server_command, command), says)


def test_server_command_refuses_odd_inputs(capsys):
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_server_command, odd)), odd
    assert hint(verdict(capsys, check_server_command, FIXED.split()), "as a string")
