"""helpers.data: the offline sample is realistic and stable; the real-data path works offline.

The download tests serve files from an HTTP server on 127.0.0.1: the real TLC address is
never contacted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import root_mean_squared_error

from helpers import data

# ---------------------------------------------------------------------------------------
# The offline sample


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    return data.load_trips("green", 2021, 1, source="sample")


def test_sample_has_the_tlc_green_schema(january):
    assert tuple(january.columns) == data.TLC_GREEN_COLUMNS
    assert str(january["lpep_pickup_datetime"].dtype).startswith("datetime64")
    assert january["PULocationID"].between(1, 265).all()
    assert january["DOLocationID"].between(1, 265).all()
    assert january["VendorID"].isin([1, 2]).all()
    assert (january["trip_distance"] > 0).all()
    assert len(january) == data.SAMPLE_TRIPS_PER_MONTH


def test_sample_lies_in_its_month(january):
    assert january["lpep_pickup_datetime"].min() >= pd.Timestamp("2021-01-01")
    assert january["lpep_pickup_datetime"].max() < pd.Timestamp("2021-02-01")
    assert january["lpep_pickup_datetime"].is_monotonic_increasing


def test_sample_is_deterministic_and_differs_by_month(january):
    pd.testing.assert_frame_equal(january, data.load_trips("green", 2021, 1, source="sample"))
    february = data.load_trips("green", 2021, 2, source="sample")
    assert not february["trip_distance"].equals(january["trip_distance"])
    assert february["lpep_pickup_datetime"].dt.month.eq(2).all()


def test_sample_has_outliers_and_missing_values_like_the_real_data(january):
    minutes = (
        january["lpep_dropoff_datetime"] - january["lpep_pickup_datetime"]
    ).dt.total_seconds() / 60
    outside = ~minutes.between(1, 60)
    assert 0.01 < outside.mean() < 0.06
    assert (minutes > 60).any() and (minutes < 1).any()
    for column in ("passenger_count", "RatecodeID", "payment_type", "store_and_fwd_flag"):
        assert 0.02 < january[column].isna().mean() < 0.10, column
    assert january["ehail_fee"].isna().all()


def test_duration_depends_on_distance_and_hour(january):
    df = data.prepare_features(january)
    assert df["duration"].corr(df["trip_distance"]) > 0.6
    short = df[df["trip_distance"].between(2, 4)]
    hour = short["lpep_pickup_datetime"].dt.hour
    rush = short[hour.isin([8, 17])]["duration"].median()
    night = short[hour.isin([1, 2, 3])]["duration"].median()
    assert rush > night * 1.2


def test_baseline_rmse_is_plausible_and_a_better_model_beats_it(january):
    """The module's baseline lands at several minutes; regularisation helps (notebook 04)."""
    train = data.prepare_features(january)
    val = data.prepare_features(data.load_trips("green", 2021, 2, source="sample"))
    features = ["PU_DO", "trip_distance"]
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[features].to_dict(orient="records"))
    X_val = dv.transform(val[features].to_dict(orient="records"))

    def rmse(model):
        model.fit(X_train, train["duration"])
        return root_mean_squared_error(val["duration"], model.predict(X_val))

    baseline = rmse(LinearRegression())
    assert 4 < baseline < 10
    assert rmse(Ridge(alpha=1.0)) < baseline - 0.1
    distance_only = LinearRegression().fit(train[["trip_distance"]], train["duration"])
    distance_rmse = root_mean_squared_error(
        val["duration"], distance_only.predict(val[["trip_distance"]])
    )
    assert baseline < distance_rmse, "the route (PU_DO) must carry information"


GREEN_2021_DIGESTS = {
    1: "a6e4e21187e2247b04a6dde5dd212152871d887f150d07baa85bbb395114aaf7",
    2: "12b70d0438f8a5acb89d488feb593f11fc913954984069cb747ad6e2546789df",
    3: "de70893ebecb85131f76eeca9f06f65f0abaeca562a915736bfc77a890f29df0",
    12: "e88e90334b8cb847942a0f91566ac2f30f572a3e51a840f93b14e419d24d7d73",
}
"""Digests of green 2021 sample months, taken before the generator learnt yellow taxis."""


def digest(df: pd.DataFrame) -> str:
    """A digest of a frame's columns, dtypes and every value (index included)."""
    h = hashlib.sha256(repr(list(zip(df.columns, map(str, df.dtypes), strict=True))).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).values.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("month", sorted(GREEN_2021_DIGESTS))
def test_green_2021_is_the_sample_the_stored_outputs_were_made_with(month):
    """Eleven notebooks' stored outputs come from these months: not one value may change."""
    frame = data.load_trips("green", 2021, month, source="sample")
    assert digest(frame) == GREEN_2021_DIGESTS[month]


@pytest.fixture(scope="module")
def yellow() -> pd.DataFrame:
    return data.load_trips("yellow", 2023, 1, source="sample")


def test_yellow_sample_has_the_tlc_yellow_schema(yellow):
    assert tuple(yellow.columns) == data.TLC_YELLOW_COLUMNS
    assert not [c for c in yellow.columns if c.startswith("lpep_")]
    assert "trip_type" not in yellow.columns and "ehail_fee" not in yellow.columns
    for column in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        assert str(yellow[column].dtype).startswith("datetime64"), column
    assert yellow["PULocationID"].between(1, 265).all()
    assert yellow["VendorID"].isin([1, 2]).all()
    assert (yellow["trip_distance"] > 0).all()
    assert len(yellow) == data.SAMPLE_TRIPS["yellow"] > data.SAMPLE_TRIPS["green"]


def test_yellow_sample_lies_in_its_month_and_is_deterministic(yellow):
    pickups = yellow["tpep_pickup_datetime"]
    assert pickups.min() >= pd.Timestamp("2023-01-01")
    assert pickups.max() < pd.Timestamp("2023-02-01")
    assert pickups.is_monotonic_increasing
    pd.testing.assert_frame_equal(yellow, data.load_trips("yellow", 2023, 1, source="sample"))
    for other in [("yellow", 2023, 2), ("yellow", 2022, 1), ("green", 2023, 1)]:
        assert not data.load_trips(*other, source="sample")["trip_distance"].equals(
            yellow["trip_distance"]
        ), other


def test_yellow_trips_are_short_manhattan_trips_and_airport_runs(yellow, january):
    manhattan = data._MANHATTAN_ZONES
    assert yellow["PULocationID"].isin(manhattan).mean() > 0.75
    assert january["PULocationID"].isin(manhattan).mean() < 0.3, "green taxis work elsewhere"
    airports = yellow["PULocationID"].isin([132, 138]) | yellow["DOLocationID"].isin([132, 138])
    assert 0.03 < airports.mean() < 0.10
    assert yellow["trip_distance"].median() < january["trip_distance"].median() - 1
    assert yellow.loc[airports, "trip_distance"].median() > 8
    assert (yellow.loc[yellow["PULocationID"].isin([132, 138]), "airport_fee"].dropna() > 0).all()


def test_yellow_sample_has_outliers_and_missing_values_like_the_real_data(yellow):
    trips = data.prepare_features(yellow)
    assert 0.01 < 1 - len(trips) / len(yellow) < 0.06
    for column in ("passenger_count", "RatecodeID", "store_and_fwd_flag", "airport_fee"):
        assert 0.01 < yellow[column].isna().mean() < 0.06, column
    assert trips["duration"].corr(trips["trip_distance"]) > 0.6
    assert (trips["PU_DO"] == trips["PULocationID"] + "_" + trips["DOLocationID"]).all()


def test_each_cohort_gets_other_data_and_other_answers():
    """The homework's cohorts of other data must not share answers: the RMSE of one model
    on each cohort's data and target (green 2021 durations for 2022's, green 2022 tips for
    2023's, green 2023 durations for 2024's and 2025's) differs by more than the checkers'
    tolerance."""
    rmses = {}
    for year, target in [(2021, "duration"), (2022, "tip_amount"), (2023, "duration")]:
        train, val = (data.prepare_features(data.load_trips("green", year, m)) for m in (1, 2))
        dv = DictVectorizer()
        X_train = dv.fit_transform(train[["PU_DO", "trip_distance"]].to_dict(orient="records"))
        X_val = dv.transform(val[["PU_DO", "trip_distance"]].to_dict(orient="records"))
        model = Ridge(alpha=1.0).fit(X_train, train[target])
        rmses[year, target] = root_mean_squared_error(val[target], model.predict(X_val))
    values = sorted(rmses.values())
    assert min(b - a for a, b in zip(values, values[1:], strict=False)) > 0.25, rmses
    assert data.traffic(2021) == 1.0 and data.traffic(2023) < 1.0


# ---------------------------------------------------------------------------------------
# Feature preparation


def test_prepare_features_follows_the_module(january):
    df = data.prepare_features(january)
    assert df["duration"].between(1, 60).all()
    assert len(df) < len(january)
    first = df.iloc[0]
    assert first["PU_DO"] == f"{first['PULocationID']}_{first['DOLocationID']}"
    assert df["trip_distance"].dtype == np.float64
    assert "duration" not in january.columns, "the input frame must not change"


def test_prepare_features_names_missing_columns(january, yellow):
    with pytest.raises(ValueError, match=r"lacks the columns \['trip_distance'\]"):
        data.prepare_features(january.drop(columns="trip_distance"))
    with pytest.raises(ValueError, match=r"lacks the columns \['tpep_dropoff_datetime'\]"):
        data.prepare_features(yellow.drop(columns="tpep_dropoff_datetime"))


def test_prepare_features_reads_the_times_of_each_colour(yellow):
    trips = data.prepare_features(yellow)
    minutes = (yellow["tpep_dropoff_datetime"] - yellow["tpep_pickup_datetime"]).dt.total_seconds()
    kept = (minutes / 60).between(1, 60)
    assert len(trips) == kept.sum()
    assert trips["duration"].tolist() == (minutes[kept] / 60).tolist()


def test_prepare_features_explains_an_empty_result(january):
    swapped = january.rename(
        columns={
            "lpep_pickup_datetime": "lpep_dropoff_datetime",
            "lpep_dropoff_datetime": "lpep_pickup_datetime",
        }
    )
    with pytest.raises(ValueError, match="swapped"):
        data.prepare_features(swapped)


# ---------------------------------------------------------------------------------------
# Choosing a month


@pytest.mark.parametrize(
    ("colour", "year", "month", "message"),
    [
        ("purple", 2021, 1, "Unknown taxi colour 'purple'.*'green' and 'yellow'"),
        ("Yellow", 2023, 1, "Unknown taxi colour 'Yellow'.*load_trips\\('yellow'"),
        ("green", 2021, 13, "Month 13 is out of range: use 1"),
        ("green", 2021, 0, "Month 0 is out of range"),
        ("yellow", 2023, 13, "Month 13 is out of range: use 1"),
        ("green", 2012, 5, "records start in 2013-08. Choose a month from 2013-08 to 20"),
        ("yellow", 2008, 12, "records start in 2009-01. Choose a month from 2009-01 to 20"),
        ("green", 2999, 1, "publishes a month after it ends. Choose a month from 2013-08 to"),
        ("yellow", 2999, 1, "publishes a month after it ends. Choose a month from 2009-01 to"),
        ("green", "2021", 1, "must be integers"),
    ],
)
def test_bad_months_get_a_clear_error(colour, year, month, message):
    with pytest.raises(ValueError, match=message):
        data.load_trips(colour, year, month)


def test_the_valid_range_ends_with_last_month_and_names_the_cohorts():
    today = dt.date.today()
    last = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    with pytest.raises(ValueError) as error:
        data.load_trips("yellow", today.year, today.month)
    assert str(error.value).endswith(
        f"Choose a month from 2009-01 to {last[0]}-{last[1]:02d}; the homework's cohorts use "
        "green 2021-01 to 2021-03, 2022-01 to 2022-03 and 2023-01 to 2023-03."
    )
    assert len(data.load_trips("yellow", *last, source="sample")) > 0, "last month is served"


@pytest.mark.parametrize("colour", data.COLOURS)
@pytest.mark.parametrize("year", [2021, 2022, 2023, 2024])
def test_every_month_of_2021_to_2024_is_served_for_each_colour(colour, year, monkeypatch):
    monkeypatch.setenv("COURSE_SAMPLE_TRIPS", "200")
    for month in range(1, 13):
        trips = data.load_trips(colour, year, month, source="sample")
        pickups = trips[f"{data.TIME_PREFIX[colour]}_pickup_datetime"]
        assert (pickups.dt.year == year).all() and (pickups.dt.month == month).all()
        assert tuple(trips.columns) == data.TLC_COLUMNS[colour]


def test_unknown_source_names_the_environment_variable(monkeypatch):
    monkeypatch.setenv("COURSE_DATA_SOURCE", "s3")
    with pytest.raises(ValueError, match="COURSE_DATA_SOURCE"):
        data.load_trips("green", 2021, 1)


def test_sample_is_the_default(monkeypatch):
    monkeypatch.delenv("COURSE_DATA_SOURCE", raising=False)
    monkeypatch.setenv("COURSE_TLC_BASE_URL", "http://127.0.0.1:9/nothing-here")
    assert len(data.load_trips("green", 2021, 1)) == data.SAMPLE_TRIPS_PER_MONTH


# ---------------------------------------------------------------------------------------
# Reading and downloading real files


def test_read_trips_missing_file_names_the_fix(tmp_path):
    with pytest.raises(data.TripDataError, match="not found.*download_trips.*offline sample"):
        data.read_trips(tmp_path / "green_tripdata_2021-01.parquet")


def test_read_trips_corrupt_file_says_delete_and_retry(tmp_path):
    broken = tmp_path / "green_tripdata_2021-01.parquet"
    broken.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(data.TripDataError, match="broken download: delete it"):
        data.read_trips(broken)


def test_read_trips_wrong_kind_of_file(tmp_path, january):
    """Read as green, a yellow file is refused; named yellow, it is a yellow file."""
    yellow = tmp_path / "yellow_tripdata_2021-01.parquet"
    january.rename(columns=lambda c: c.replace("lpep_", "tpep_")).to_parquet(yellow)
    with pytest.raises(data.TripDataError, match="tpep_"):
        data.read_trips(yellow, colour="green")
    assert "tpep_pickup_datetime" in data.read_trips(yellow).columns


def test_a_green_file_named_yellow_says_which_columns_yellow_files_use(tmp_path, january):
    wrong = tmp_path / "yellow_tripdata_2023-01.parquet"
    january.to_parquet(wrong)
    with pytest.raises(data.TripDataError) as error:
        data.read_trips(wrong)
    assert str(error.value) == (
        f"{wrong} lacks the columns ['tpep_pickup_datetime', 'tpep_dropoff_datetime'] of a TLC "
        "yellow-taxi file. Is it a yellow-taxi file? Green-taxi files use lpep_* instead of "
        "tpep_*."
    )


def test_a_wrong_file_in_the_cache_says_which_to_delete(tlc_server, cache, monkeypatch, january):
    """A file there by hand, or from an older course version: the learner must remove it."""
    cache.mkdir()
    cached = cache / "green_tripdata_2021-01.parquet"
    january.rename(columns=lambda c: c.replace("lpep_", "tpep_")).to_parquet(cached)
    monkeypatch.setenv("COURSE_TLC_BASE_URL", tlc_server.url)
    with pytest.raises(data.TripDataError) as error:
        data.load_trips("green", 2021, 1, source="tlc")
    assert str(error.value) == (
        f"{cached} lacks the columns ['lpep_pickup_datetime', 'lpep_dropoff_datetime'] of a "
        "TLC green-taxi file, so it is not the month it is named after: delete it, and the "
        "next run downloads it afresh."
    )
    cached.unlink()  # what the message says to do
    pd.testing.assert_frame_equal(data.load_trips("green", 2021, 1, source="tlc"), january)


class _Server:
    """A static file server on 127.0.0.1 that counts the requests it answers."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/trip-data"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tlc_server(tmp_path, january):
    published = tmp_path / "published" / "trip-data"
    published.mkdir(parents=True)
    january.to_parquet(published / "green_tripdata_2021-01.parquet")
    server = _Server(published.parent)
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    return folder


def test_download_once_then_read_from_the_cache(tlc_server, cache, monkeypatch, january):
    monkeypatch.setenv("COURSE_DATA_SOURCE", "tlc")
    monkeypatch.setenv("COURSE_TLC_BASE_URL", tlc_server.url)
    first = data.load_trips("green", 2021, 1)
    second = data.load_trips("green", 2021, 1)
    pd.testing.assert_frame_equal(first, january)
    pd.testing.assert_frame_equal(second, january)
    assert tlc_server.requests == ["/trip-data/green_tripdata_2021-01.parquet"]
    assert sorted(p.name for p in cache.iterdir()) == ["green_tripdata_2021-01.parquet"]


def test_yellow_months_are_downloaded_by_their_tlc_name(tmp_path, cache, monkeypatch, yellow):
    published = tmp_path / "published" / "trip-data"
    published.mkdir(parents=True)
    yellow.to_parquet(published / "yellow_tripdata_2023-01.parquet")
    server = _Server(published.parent)
    try:
        monkeypatch.setenv("COURSE_TLC_BASE_URL", server.url)
        got = data.load_trips("yellow", 2023, 1, source="tlc")
        pd.testing.assert_frame_equal(got, yellow)
        assert server.requests == ["/trip-data/yellow_tripdata_2023-01.parquet"]
        with pytest.raises(data.TripDataError, match="TLC has not published yellow taxi data"):
            data.download_trips("yellow", 2023, 2)
    finally:
        server.close()
    assert sorted(p.name for p in cache.iterdir()) == ["yellow_tripdata_2023-01.parquet"]


def test_a_green_file_sent_for_a_yellow_month_is_not_kept(serve, cache, tmp_path, january):
    green = tmp_path / "green.parquet"
    january.to_parquet(green)
    url = serve(green.read_bytes(), green.stat().st_size, "application/octet-stream")
    with pytest.raises(data.TripDataError) as error:
        data.download_trips("yellow", 2023, 1, base_url=url)
    assert str(error.value).startswith(
        f"{url}/yellow_tripdata_2023-01.parquet sent a parquet file without the columns "
        "['tpep_pickup_datetime', 'tpep_dropoff_datetime'] of a TLC yellow-taxi file, "
        "and nothing was kept."
    )
    assert list(cache.iterdir()) == []


def test_month_not_published_says_so_with_the_month_and_the_url(tlc_server, cache):
    """The server is reached and answers 404: the network is fine, the month is not there."""
    with pytest.raises(data.TripDataError) as error:
        data.download_trips("green", 2021, 2, base_url=tlc_server.url)
    assert str(error.value) == (
        f"{tlc_server.url}/green_tripdata_2021-02.parquet answered 404 File not found: the "
        "TLC has not published green taxi data for 2021-02 (or the address is wrong). Choose "
        f"a month the TLC lists at {data.TLC_LIST_URL}, or check COURSE_TLC_BASE_URL."
    )
    assert not cache.exists() or not any(cache.iterdir()), "no partial file may stay behind"


def test_forbidden_is_read_as_not_published(serve, cache):
    """S3, behind the TLC's address, answers 403 for a missing file when listing is denied."""
    url = serve(b"<Error><Code>AccessDenied</Code></Error>", 39, "application/xml", status=403)
    with pytest.raises(data.TripDataError, match=r"answered 403 Forbidden: the TLC has not pub"):
        data.download_trips("green", 2021, 2, base_url=url)
    assert list(cache.iterdir()) == []


def test_a_server_error_is_not_read_as_not_published(serve, cache):
    url = serve(b"", 0, "text/plain", status=503)
    with pytest.raises(data.TripDataError, match=r"Service Unavailable.*internet connection"):
        data.download_trips("green", 2021, 2, base_url=url)


def test_unreachable_server_names_the_url_and_the_fallback(cache):
    with pytest.raises(data.TripDataError, match=r"http://127\.0\.0\.1:9/.*internet.*offline"):
        data.download_trips("green", 2021, 1, base_url="http://127.0.0.1:9", timeout=5)
    assert not any(cache.iterdir())


# A cache that cannot take the file fails before anything is downloaded, naming the fix.


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` really refuse writes while the block runs.

    Permissions stop other users but not root (and CI may run as root), so as root the
    folder is bind-mounted read-only onto itself; otherwise its write permission is taken
    away. Either way a write is tried first, so the test never believes a folder is
    read-only when it is not.
    """
    if os.name != "posix":
        pytest.skip("no read-only folders by permission on Windows: tested on Linux and macOS")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = functools.partial(folder.chmod, 0o755)
    else:
        if not shutil.which("mount"):
            pytest.skip("root, without mount: cannot make a folder read-only")
        bind = subprocess.run(["mount", "--bind", folder, folder], capture_output=True, text=True)
        if bind.returncode:
            pytest.skip(f"root, but mount --bind failed: {bind.stderr.strip()}")
        undo = functools.partial(subprocess.run, ["umount", folder], check=True)
    try:
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro,bind", folder], check=True)
        with pytest.raises(OSError):
            (folder / "probe").touch()
        yield folder
    finally:
        undo()


@pytest.mark.parametrize("where", ["the cache", "the folder the cache is made in"])
def test_a_read_only_cache_names_the_folder_and_the_setting(
    tlc_server, tmp_path, monkeypatch, where
):
    locked = tmp_path / "locked"
    locked.mkdir()
    folder = locked if where == "the cache" else locked / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    with read_only(locked), pytest.raises(data.TripDataError) as error:
        data.download_trips("green", 2021, 1, base_url=tlc_server.url)
    message = str(error.value)
    assert message.startswith(f"Cannot write downloads to {folder} (")
    assert "Set COURSE_DATA_DIR to a folder you can write to" in message
    assert tlc_server.requests == [], "nothing may be downloaded into a cache that cannot keep it"


@pytest.mark.parametrize("depth", ["the cache itself", "a folder above it"])
def test_a_file_in_the_way_of_the_cache_is_named(tlc_server, tmp_path, monkeypatch, depth):
    in_the_way = tmp_path / "data"
    in_the_way.write_text("a file where the cache folder should be")
    folder = in_the_way if depth == "the cache itself" else in_the_way / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    monkeypatch.setenv("COURSE_TLC_BASE_URL", tlc_server.url)
    with pytest.raises(data.TripDataError) as error:
        data.load_trips("green", 2021, 1, source="tlc")
    assert str(error.value) == (
        f"Cannot keep downloads in {folder}: {in_the_way} is a file, not a folder. "
        "Remove that file, or set COURSE_DATA_DIR to another folder."
    )
    assert tlc_server.requests == []
    assert in_the_way.read_text() == "a file where the cache folder should be"


@pytest.fixture
def serve():
    """Start HTTP servers on 127.0.0.1 that answer every GET with the given status, body, headers.

    ``length`` is the Content-Length promised (None: no header, the body ends when the
    connection closes); the connection closes after the body either way (HTTP/1.0).
    """
    started = []

    def start(body: bytes, length: int | None, content_type: str, status: int = 200) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/trip-data"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def test_a_download_without_the_module_columns_is_not_kept(serve, cache, tmp_path, january):
    """A parquet file of another kind (yellow taxis use tpep_*) would fail every later run."""
    yellow = tmp_path / "yellow.parquet"
    january.rename(columns=lambda c: c.replace("lpep_", "tpep_")).to_parquet(yellow)
    url = serve(yellow.read_bytes(), yellow.stat().st_size, "application/octet-stream")
    with pytest.raises(data.TripDataError) as error:
        data.download_trips("green", 2021, 1, base_url=url)
    assert str(error.value).startswith(
        f"{url}/green_tripdata_2021-01.parquet sent a parquet file without the columns "
        "['lpep_pickup_datetime', 'lpep_dropoff_datetime'] of a TLC green-taxi file, "
        "and nothing was kept."
    )
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("cut", "length", "message"),
    [
        (1000, 100_000, r"incomplete: got 1,000 of 100,000 bytes.*just run again"),
        # no length promised: only the missing footer shows the cut
        (1000, None, r"^The download of .* was cut short .*nothing was kept\. Run again"),
        (-1, None, r"^The download of .* was cut short .*nothing was kept\. Run again"),
    ],
)
def test_a_truncated_download_is_refused_and_not_kept(
    serve, tlc_server, cache, tmp_path, january, cut, length, message
):
    """The server closes the connection early: after 1,000 bytes, or one byte short."""
    real = tmp_path / "published" / "trip-data" / "green_tripdata_2021-01.parquet"
    url = serve(real.read_bytes()[:cut], length, "application/octet-stream")
    with pytest.raises(data.TripDataError, match=message):
        data.download_trips("green", 2021, 1, base_url=url)
    assert list(cache.iterdir()) == [], "no file, not even a temporary one, may stay behind"
    path = data.download_trips("green", 2021, 1, base_url=tlc_server.url)  # "run again"
    pd.testing.assert_frame_equal(data.read_trips(path), january)


def test_a_web_page_instead_of_the_file_is_refused_and_not_kept(serve, cache):
    """What a Wi-Fi login page or a wrong COURSE_TLC_BASE_URL sends: 200 OK, but HTML."""
    page = b"<!doctype html><html><body>Please sign in to the Wi-Fi</body></html>"
    url = serve(page, len(page), "text/html")
    with pytest.raises(data.TripDataError, match="not a parquet file.*COURSE_TLC_BASE_URL"):
        data.download_trips("green", 2021, 1, base_url=url)
    assert list(cache.iterdir()) == []


def test_data_dir_defaults_to_the_course_root(monkeypatch):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert data.data_dir() == Path(data.__file__).resolve().parents[1] / "data"


def test_sample_size_can_be_set_for_measurements(monkeypatch):
    monkeypatch.setenv("COURSE_SAMPLE_TRIPS", "500")
    assert len(data.load_trips("green", 2021, 1)) == 500
    assert len(data.load_trips("yellow", 2023, 1)) == 500
    monkeypatch.delenv("COURSE_SAMPLE_TRIPS")
    assert len(data.load_trips("green", 2021, 1)) == data.SAMPLE_TRIPS_PER_MONTH


@pytest.mark.parametrize("setting", ["many", "1e6", "0", "-500", "99", "12.5", "²"])
def test_a_sample_size_that_is_not_a_number_of_trips_is_refused(monkeypatch, setting):
    monkeypatch.setenv("COURSE_SAMPLE_TRIPS", setting)
    with pytest.raises(ValueError) as error:
        data.load_trips("green", 2021, 1)
    assert str(error.value) == (
        f"COURSE_SAMPLE_TRIPS={setting!r} is not a whole number of trips from 100 to "
        "1,000,000. Set it to one, or unset it to use the course's sample size (12,000)."
    )


def test_a_sample_too_big_to_generate_is_refused_at_once(monkeypatch):
    """A billion trips would run for half an hour or end in MemoryError: refused first.

    sample_size, not load_trips: without the bound this test must fail, not generate them.
    """
    monkeypatch.setenv("COURSE_SAMPLE_TRIPS", "1000000000")
    with pytest.raises(ValueError) as error:
        data.sample_size()
    assert str(error.value).startswith(
        "COURSE_SAMPLE_TRIPS='1000000000' is more than the 1,000,000 trips a generated month "
        "may have"
    )
    assert "Set it to 1,000,000 or less" in str(error.value)
    monkeypatch.setenv("COURSE_SAMPLE_TRIPS", str(data.MAX_SAMPLE_TRIPS))
    assert data.sample_size() == data.MAX_SAMPLE_TRIPS, "the bound itself is allowed"


def test_write_tlc_writes_sample_months_as_the_module_scripts_read_them(tmp_path, capsys):
    """`python -m helpers.data write-tlc`: files named and shaped as the TLC's, read back
    as the same trips, and the module's own reading (lpep_* times) works on them."""
    assert data.main(["write-tlc", "green", "2023", "--to", str(tmp_path / "taxi")]) == 0
    names = [f"green_tripdata_2023-0{m}.parquet" for m in (1, 2, 3)]
    assert sorted(p.name for p in (tmp_path / "taxi").iterdir()) == names
    assert capsys.readouterr().out.count("(synthetic sample trips)") == 3
    written = pd.read_parquet(tmp_path / "taxi" / names[1])
    pd.testing.assert_frame_equal(written, data.load_trips("green", 2023, 2, source="sample"))
    assert tuple(written.columns) == data.TLC_GREEN_COLUMNS
    minutes = (written["lpep_dropoff_datetime"] - written["lpep_pickup_datetime"]).dt.seconds
    assert minutes.between(60, 3600).mean() > 0.9


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["write-tlc", "green", "2023", "--months", "13", "--to", "x"], "Month 13 is out of range"),
        (["write-tlc", "green", "2023", "--months", "a-b", "--to", "x"], "write months as 1-3"),
        (["write-tlc", "purple", "2023", "--to", "x"], "invalid choice: 'purple'"),
        (["write-tlc", "green", "2023"], "the following arguments are required: --to"),
    ],
)
def test_write_tlc_refuses_bad_input_and_writes_nothing(
    tmp_path, capsys, monkeypatch, argv, message
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        data.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
