"""Notebook 11's checkers: a request for one trip, a client for the model server, a trace.

A real champion is registered and served by `mlflow models serve`, as in the notebook.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import mlflow
import pytest
import sklearn
from exercise_support import ODD_INPUTS, correct, hint, verdict
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from helpers.data import load_trips, prepare_features
from helpers.exercises.nb11 import (
    MODEL_URI,
    POST_SPAN,
    TRIPS,
    check_client,
    check_traced_call,
    check_trip_request,
)
from helpers.server import free_port
from helpers.serving import ModelServer

INPUTS = ["PU_DO", "PULocationID", "DOLocationID", "trip_distance"]
NAME = MODEL_URI.removeprefix("models:/").split("@")[0]


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A champion with the notebook's inputs, and its model server; the store's URI."""
    folder = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("nyc-taxi-experiment")
    train = prepare_features(load_trips("green", 2021, 1))
    zones = ["PU_DO", "PULocationID", "DOLocationID"]
    model = make_pipeline(
        ColumnTransformer(
            [("zones", OneHotEncoder(handle_unknown="ignore"), zones)], remainder="passthrough"
        ),
        Ridge(alpha=1.0, tol=1e-8),
    ).fit(train[INPUTS], train["duration"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=train[INPUTS].head(3),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    version = mlflow.register_model(info.model_uri, NAME)
    mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", version.version)
    # Not 5002, the notebook's: a model server running beside the tests may hold it.
    with ModelServer.start(
        MODEL_URI, tracking_uri=uri, folder=folder, port=free_port(5403)
    ) as server:
        yield uri, server
    mlflow.set_tracking_uri(None)


@pytest.fixture
def served(champion):
    uri, server = champion
    mlflow.set_tracking_uri(uri)  # another test module may have moved it
    return server


ROW = {"PU_DO": "74_75", "PULocationID": "74", "DOLocationID": "75", "trip_distance": 2.5}


def post(url: str, body: dict) -> list[float]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["predictions"]


def test_trip_request_accepts_the_solution_and_refuses_the_empty_answer(capsys, served):
    request = {"dataframe_records": [ROW]}
    minutes = post(served.url, request)[0]
    assert correct(verdict(capsys, check_trip_request, request, minutes))
    split = {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}
    assert correct(verdict(capsys, check_trip_request, split, round(minutes, 2)))
    assert hint(verdict(capsys, check_trip_request, None, None), "set `request` to the JSON")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"dataframe_records": [{**ROW, "PULocationID": 74, "DOLocationID": 75}]}, "quote them"),
        ({"dataframe_records": [{**ROW, "PULocationID": "75", "DOLocationID": "74"}]}, "which is"),
        ({"dataframe_records": [{k: v for k, v in ROW.items() if k != "PU_DO"}]}, "lacks ['PU_DO"),
        ({"dataframe_records": [{**ROW, "PU_DO": "74-75"}]}, "joined by '_'"),
        ({"dataframe_records": [{**ROW, "trip_distance": 2}]}, "a number (double"),
        ({"dataframe_records": [ROW, ROW]}, "holds 2 rows"),
        ({"dataframe_records": ROW}, "a list of rows"),
        ({"dataframe_split": {"columns": list(ROW), "data": [["74_75", "74"]]}}, "one value per"),
        ({"dataframe_split": {"columns": list(ROW)}}, "`columns` and `data`"),
        ({"instances": [ROW]}, "one key"),
        ({"dataframe_records": [ROW], "extra": 1}, "one key"),
    ],
)  # fmt: skip
def test_trip_request_gives_each_mistake_its_hint(capsys, served, body, says):
    assert hint(verdict(capsys, check_trip_request, body, 10.0), says)


def test_trip_request_refuses_typed_minutes_and_odd_inputs(capsys, served):
    request = {"dataframe_records": [ROW]}
    minutes = post(served.url, request)[0]
    out = verdict(capsys, check_trip_request, request, minutes + 1.0)  # another trip's minutes
    assert hint(out, "`minutes` differs from what the champion predicts")
    assert hint(verdict(capsys, check_trip_request, request, "12.3"), "set `minutes`")
    assert hint(verdict(capsys, check_trip_request, request, float("nan")), "set `minutes`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_trip_request, odd, minutes)), odd
        assert hint(verdict(capsys, check_trip_request, request, odd)), odd


def post_json(url: str, body: dict) -> tuple[int, dict]:
    """POST ``body`` to the model server's /invocations: (status, the JSON it answered)."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def solution(url, trips):
    status, answer = post_json(url, {"dataframe_split": trips.to_dict(orient="split", index=False)})
    if status == 400:
        reason = answer["message"].rsplit("Error: ", 1)[-1]
        raise ValueError(f"the model server refused the trips: {reason}")
    assert status == 200, answer
    return answer["predictions"]


def test_client_accepts_the_solution_and_refuses_the_empty_answer(capsys, served):
    assert correct(verdict(capsys, check_client, solution, served.url))

    def empty(url, trips):
        return None

    assert hint(verdict(capsys, check_client, empty, served.url), "as a list of floats")


def test_client_refuses_what_only_looks_right(capsys, served):
    def lets_errors_escape(url, trips):
        return post(url, {"dataframe_split": trips.to_dict(orient="split", index=False)})

    def vague_error(url, trips):
        try:
            return lets_errors_escape(url, trips)
        except urllib.error.HTTPError:
            raise ValueError("the server said no") from None

    def first_row_only(url, trips):
        return solution(url, trips.head(1))

    def reversed_rows(url, trips):
        return solution(url, trips.iloc[::-1])  # the predictions in the wrong order

    def rounded_text(url, trips):
        return [f"{m:.1f}" for m in solution(url, trips)]

    def always_refuses(url, trips):
        raise ValueError("missing columns")

    def swallows_the_refusal(url, trips):
        try:
            return lets_errors_escape(url, trips)
        except urllib.error.HTTPError:
            return []  # the server's 400 answer hidden as "no predictions"

    def reads_a_missing_column(url, trips):
        return list(trips["minutes"])  # a bug of its own: KeyError

    url = served.url
    assert hint(verdict(capsys, check_client, None, url), "define predict_minutes(url, trips)")
    out = verdict(capsys, check_client, swallows_the_refusal, url)
    assert hint(out, "the server refuses the request: raise a ValueError then")
    out = verdict(capsys, check_client, reads_a_missing_column, url)
    assert hint(out, "predict_minutes raised KeyError")
    assert hint(verdict(capsys, check_client, lets_errors_escape, url), "escaped as an HTTPError")
    assert hint(verdict(capsys, check_client, vague_error, url), "name the missing columns")
    assert hint(verdict(capsys, check_client, first_row_only, url), "3 trips gave 1")
    assert hint(verdict(capsys, check_client, reversed_rows, url), "rows sent in order")
    assert hint(verdict(capsys, check_client, rounded_text, url), "a list of floats")
    assert hint(verdict(capsys, check_client, always_refuses, url), "with every column it raised")
    assert hint(verdict(capsys, check_client, solution, None), "pass the server's address")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_client, odd, url)), odd
        assert hint(verdict(capsys, check_client, solution, odd)), odd


def test_client_after_the_server_stopped_says_how_to_start_it(capsys, champion):
    """Run All ends with the server stopped: the check names that, not a URLError."""
    uri, _ = champion
    mlflow.set_tracking_uri(uri)
    stopped = "http://127.0.0.1:9"  # nothing listens on the discard port
    out = verdict(capsys, check_client, solution, stopped)
    assert hint(out, "it is stopped", "ModelServer.start")
    assert "URLError" not in out


def test_trip_request_without_a_champion_says_to_run_08_first(capsys, tmp_path, served):
    mlflow.set_tracking_uri(f"sqlite:///{(tmp_path / 'empty.db').as_posix()}")  # no registry
    try:
        out = verdict(capsys, check_trip_request, {"dataframe_records": [ROW]}, 10.0)
    finally:
        mlflow.set_tracking_uri(None)
    assert hint(out, "run notebook 08 first")


def traced_post(url: str):
    """Notebook 11's `post`, traced under the same span name."""

    @mlflow.trace(name=POST_SPAN)
    def post_body(body):
        return post_json(url, body)

    return post_body


def split(trips) -> dict:
    return {"dataframe_split": trips.to_dict(orient="split", index=False)}


def trace_of(function, trips) -> str:
    """Call ``function`` on ``trips`` (an error is kept in the trace), return the last trace id."""
    try:
        function(trips)
    except Exception:  # noqa: BLE001  (a learner's bug: its trace says ERROR)
        pass
    return mlflow.get_last_active_trace_id()


@pytest.fixture
def traced(served):
    """The notebook's traced `post`, at the served champion, and traces in an experiment."""
    mlflow.set_experiment("nyc-taxi-serving")
    return traced_post(served.url)


def test_traced_call_accepts_the_solution_and_refuses_the_empty_answer(capsys, traced):
    @mlflow.trace
    def minutes_for(trips):
        status, answer = traced(split(trips))
        return answer["predictions"]

    out = verdict(capsys, check_traced_call, trace_of(minutes_for, TRIPS.head(2)))
    assert correct(out) and "the trace of minutes_for" in out
    assert hint(verdict(capsys, check_traced_call, None), "mlflow.get_last_active_trace_id()")


def test_traced_call_refuses_what_only_looks_right(capsys, traced):
    def check(trace_id):
        return verdict(capsys, check_traced_call, trace_id)

    def traced_function(answer=lambda a: a["predictions"], body=split, posts=1):
        @mlflow.trace
        def minutes_for(trips):
            answers = [traced(body(trips)) for _ in range(posts)]
            return answer(answers[0][1]) if answers else list(TRIPS["trip_distance"][:2])

        return minutes_for

    def undecorated(trips):
        return traced(split(trips))[1]["predictions"]

    @mlflow.trace
    def raises(trips):
        return traced(split(trips))[1]["minutes"]  # KeyError: the answer has `predictions`

    two = TRIPS.head(2)
    assert hint(check(trace_of(undecorated, two)), "a call to `post` alone")
    assert hint(check(trace_of(lambda t: traced(split(t)), two)), "a call to `post` alone")
    assert hint(check(trace_of(raises, two)), "your function raised", "ERROR")
    assert hint(check(trace_of(traced_function(posts=0), two)), "holds 0 spans of `post`")
    assert hint(check(trace_of(traced_function(posts=2), two)), "holds 2 spans of `post`")
    records = traced_function(body=lambda t: {"dataframe_records": t.to_dict(orient="records")})
    assert hint(check(trace_of(records, two)), "`dataframe_split` layout")
    assert hint(check(trace_of(traced_function(), TRIPS)), "holds 3 trips: send the first two")
    assert hint(check(trace_of(traced_function(answer=lambda a: a), two)), "as a list")
    backwards = traced_function(answer=lambda a: a["predictions"][::-1])
    assert hint(check(trace_of(backwards, two)), "not the champion's")
    rounded = traced_function(answer=lambda a: [round(m) for m in a["predictions"]])
    assert hint(check(trace_of(rounded, two)), "not the champion's")
    as_text = traced_function(answer=lambda a: [f"{m:.2f}" for m in a["predictions"]])
    assert hint(check(trace_of(as_text, two)), "not the champion's")
    good = trace_of(traced_function(), two)
    assert correct(check(good))
    assert hint(check(mlflow.get_trace(good)), "that is the trace itself")
    assert hint(check("tr-" + "0" * 32), "no trace has that id")
    for odd in ODD_INPUTS:
        assert hint(check(odd)), odd
