"""Checkers for notebook 11's exercises: a request to the model server, a client, a trace.

Both compare the server's answers with the champion loaded in the notebook's own process:
the same model, so the same minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Trace
from mlflow.exceptions import MlflowException

from helpers.exercises import Hint, checker, require
from helpers.server import answers_health

MODEL_URI = "models:/nyc-taxi-duration@champion"
PAYLOAD_KEYS = ("dataframe_split", "dataframe_records")

TRIP = {"pickup": 74, "dropoff": 75, "miles": 2.5}
"""Exercise 1's trip: from East Harlem North (zone 74) to East Harlem South (75)."""

TRIPS = pd.DataFrame(
    {
        "PU_DO": ["74_75", "41_42", "7_7"],
        "PULocationID": ["74", "41", "7"],
        "DOLocationID": ["75", "42", "7"],
        "trip_distance": [2.5, 1.2, 0.8],
    }
)
"""Exercise 2's trips, in the features the champion reads."""

POST_SPAN = "POST /invocations"
"""The name notebook 11 gives the span of its traced ``post`` function."""


def _champion_minutes(trips: pd.DataFrame) -> list[float]:
    """What the champion, loaded here, predicts for ``trips``."""
    model = mlflow.pyfunc.load_model(MODEL_URI)
    return [float(m) for m in model.predict(trips)]


def _as_frame(request: dict) -> pd.DataFrame:
    """The table a request's JSON body describes, as the server reads it."""
    key = next(k for k in PAYLOAD_KEYS if k in request)
    body = request[key]
    if key == "dataframe_records":
        require(isinstance(body, list), "`dataframe_records` holds a list of rows (dicts).")
        return pd.DataFrame(body)
    require(
        isinstance(body, dict) and {"columns", "data"} <= set(body),
        "`dataframe_split` holds a dict with `columns` and `data` (rows of values).",
    )
    return pd.DataFrame(body["data"], columns=body["columns"])


@checker
def check_trip_request(request: dict | None, minutes: float | None) -> str:
    """The JSON body for exercise 1's trip, and the minutes the server answered for it."""
    require(isinstance(request, dict), "set `request` to the JSON body, a dict, as above.")
    keys = [k for k in PAYLOAD_KEYS if k in request]
    require(
        len(keys) == 1 and len(request) == 1,
        "the body has one key, `dataframe_records` (a list of rows) or `dataframe_split`.",
    )
    try:
        frame = _as_frame(request)
    except (ValueError, TypeError) as error:  # pandas refuses rows that do not fit the columns
        raise Hint(
            f"the body does not describe a table ({str(error).rstrip('.')}): in "
            "`dataframe_split`, `data` holds rows with one value per name in `columns`."
        ) from None
    require(len(frame) == 1, f"the request holds {len(frame)} rows: send the one trip.")
    try:
        inputs = mlflow.models.get_model_info(MODEL_URI).signature.inputs.input_names()
    except MlflowException:
        raise Hint(f"there is no {MODEL_URI} to compare with: run notebook 08 first.") from None
    missing = [name for name in inputs if name not in frame.columns]
    require(not missing, f"the request lacks {missing}: the server needs every model input.")
    row = frame.iloc[0]
    pickup, dropoff = str(TRIP["pickup"]), str(TRIP["dropoff"])
    require(
        row["PULocationID"] == pickup and row["DOLocationID"] == dropoff,
        "the zones are strings in the model's signature: quote them, and check which is "
        "pickup and which drop-off.",
    )
    require(
        row["PU_DO"] == f"{pickup}_{dropoff}",
        "PU_DO is a feature made before the model: the pickup and drop-off zones joined by "
        "'_' (see prepare_features in helpers/data.py). The server does not compute it.",
    )
    require(
        isinstance(row["trip_distance"], float) and row["trip_distance"] == TRIP["miles"],
        "trip_distance is the trip's length in miles, a number (double in the signature).",
    )
    require(
        isinstance(minutes, int | float) and math.isfinite(minutes),
        "set `minutes` to the number the server answered: the first of its `predictions`.",
    )
    expected = _champion_minutes(frame[inputs])[0]
    require(
        abs(minutes - expected) < 0.01,
        "`minutes` differs from what the champion predicts for this trip: take it from the "
        "server's answer to this request.",
    )
    return f"the server predicts {minutes:.1f} minutes for that trip, as the champion does."


def _call(predict_minutes: Callable, url: str, trips: pd.DataFrame) -> Any:
    """The learner's client on ``trips``; a ValueError is returned, anything else a hint."""
    try:
        return predict_minutes(url, trips)
    except ValueError as error:
        return error
    except Exception as error:  # a learner's bug: report it as a hint, not a traceback
        if getattr(error, "code", None) == 400:
            raise Hint(
                "the server's 400 answer escaped as an HTTPError: catch it, read its JSON "
                "body (json.load(error)) and raise a ValueError instead."
            ) from None
        raise Hint(f"predict_minutes raised {error!r}.") from None


@checker
def check_client(predict_minutes: Callable | None, url: str | None) -> str:
    """A client function: minutes for good trips, a clear ValueError for missing columns."""
    require(callable(predict_minutes), "define predict_minutes(url, trips) and pass it.")
    require(
        isinstance(url, str) and url.startswith("http://127.0.0.1:"),
        "pass the server's address too: server.url.",
    )
    require(
        answers_health(url),
        f"no model server answers at {url}: it is stopped (the notebook's last section stops "
        "it, and Run All runs that too). Start it again with the cell "
        "`server = ModelServer.start(...)` near the top, then run this cell.",
    )
    answer = _call(predict_minutes, url, TRIPS)
    require(
        not isinstance(answer, ValueError),
        f"on trips with every column it raised ValueError({answer}).",
    )
    require(
        isinstance(answer, list) and all(isinstance(m, float) for m in answer),
        "return the predictions as a list of floats: the server's answer['predictions'].",
    )
    expected = _champion_minutes(TRIPS)
    require(
        len(answer) == len(expected),
        f"{len(TRIPS)} trips gave {len(answer)} predictions: send every row.",
    )
    require(
        all(abs(a - e) < 0.01 for a, e in zip(answer, expected, strict=True)),
        "the minutes differ from the champion's: is the server at `url` serving "
        "@champion, and are the rows sent in order?",
    )
    for dropped in (["trip_distance"], ["PULocationID", "DOLocationID"]):
        refused = _call(predict_minutes, url, TRIPS.drop(columns=dropped))
        require(
            isinstance(refused, ValueError),
            f"without {dropped} the server refuses the request: raise a ValueError then.",
        )
        require(
            all(name in str(refused) for name in dropped),
            f"without {dropped} your ValueError says {str(refused)!r}: name the missing "
            "columns (the server's message says which).",
        )
    return "right minutes for complete trips, and a ValueError naming what is missing."


@checker
def check_traced_call(trace_id: object) -> str:
    """Exercise 3: the trace of a traced function that asked the server about two trips.

    Read back from the store, as the UI reads it: the learner's own span at the root, the span
    of ``post`` inside it with the request, and answers that are the champion's own minutes.
    """
    if isinstance(trace_id, Trace):
        raise Hint("that is the trace itself; put its id in the variable: `.info.trace_id`.")
    require(
        isinstance(trace_id, str) and trace_id,
        "put the id of your call's trace in `my_trace_id`: mlflow.get_last_active_trace_id().",
    )
    trace = mlflow.get_trace(trace_id, silent=True, flush=True)
    require(
        trace is not None,
        "no trace has that id in this store: call your traced function, then ask "
        "mlflow.get_last_active_trace_id() right after it.",
    )
    [root] = [span for span in trace.data.spans if span.parent_id is None]
    require(
        root.name != POST_SPAN,
        f"that trace is of a call to `post` alone (its span is {POST_SPAN!r}): decorate your "
        "own function with @mlflow.trace, and take the trace of a call to it.",
    )
    require(
        trace.info.state == "OK",
        f"your function raised during that call (the trace's state is {trace.info.state}): "
        "look at the error, fix it, and call it again.",
    )
    posts = [s for s in trace.data.spans if s.name == POST_SPAN and s.parent_id == root.span_id]
    require(
        len(posts) == 1,
        f"your function's span holds {len(posts)} spans of `post`: send the trips with one "
        "call of `post` inside it.",
    )
    [sent] = posts
    body = (sent.inputs or {}).get("body")
    require(
        isinstance(body, dict) and list(body) == ["dataframe_split"],
        "send the trips in the `dataframe_split` layout: "
        "{'dataframe_split': trips.to_dict(orient='split', index=False)}.",
    )
    frame = _as_frame(body)
    require(len(frame) == 2, f"the request holds {len(frame)} trips: send the first two.")
    minutes = root.outputs
    require(
        isinstance(minutes, list) and len(minutes) == 2,
        "your function must return the predicted minutes as a list: answer['predictions'].",
    )
    expected = _champion_minutes(frame)
    require(
        all(isinstance(m, int | float) for m in minutes)
        and all(abs(m - e) < 0.01 for m, e in zip(minutes, expected, strict=True)),
        "the minutes your function returned are not the champion's for those trips: return "
        "the server's `predictions`, in order.",
    )
    return (
        f"the trace of {root.name} holds its call to the server: two trips in, "
        "the champion's minutes out."
    )
