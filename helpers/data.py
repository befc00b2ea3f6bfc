"""NYC TLC green-taxi trip data for the course: an offline sample or the real monthly files.

Why a sample: the module trains on January 2021 and validates on February 2021 of the
TLC's green-taxi records. Downloading them needs the internet, which a learner on a train
or a CI machine does not have. So by default :func:`load_trips` *generates* a
deterministic month of trips with the real TLC schema. Durations depend on distance,
the pickup/drop-off zone pair and the hour, with a few outliers outside 1-60 minutes and
some missing values, so every lesson of the module works on it.

Set the environment variable ``COURSE_DATA_SOURCE=tlc`` to use the real files instead:
each month is downloaded once into a git-ignored ``data/`` folder and read from there.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"
"""Where the TLC publishes its monthly parquet files (override: ``COURSE_TLC_BASE_URL``)."""

TLC_LIST_URL = "https://www.nyc.gov/site/tlc/about/tlc-trip-record-data.page"
"""The TLC's page that lists the months it has published."""

SOURCES = ("sample", "tlc")
COLOURS = ("green",)
FIRST_MONTH = (2013, 8)
"""The TLC's first month of green-taxi records (August 2013)."""

TLC_GREEN_COLUMNS = (
    "VendorID",
    "lpep_pickup_datetime",
    "lpep_dropoff_datetime",
    "store_and_fwd_flag",
    "RatecodeID",
    "PULocationID",
    "DOLocationID",
    "passenger_count",
    "trip_distance",
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "ehail_fee",
    "improvement_surcharge",
    "total_amount",
    "payment_type",
    "trip_type",
    "congestion_surcharge",
)
"""The columns of a TLC green-taxi parquet file, in the TLC's order."""

REQUIRED_COLUMNS = (
    "lpep_pickup_datetime",
    "lpep_dropoff_datetime",
    "PULocationID",
    "DOLocationID",
    "trip_distance",
)
"""What :func:`prepare_features` needs; a file without these cannot be used."""

PARQUET_MAGIC = b"PAR1"
"""The four bytes a parquet file starts and ends with."""

MIN_MINUTES, MAX_MINUTES = 1, 60
"""The module keeps trips of 1 to 60 minutes: shorter or longer ones are mostly errors."""


class TripDataError(RuntimeError):
    """Trip data could not be loaded; the message says what to do about it."""


# --------------------------------------------------------------------------------------
# Choosing a month


def validate_month(colour: str, year: int, month: int) -> None:
    """Refuse a colour or month that has no trip data, naming what is allowed.

    Raises ``ValueError`` before anything is downloaded or generated.
    """
    if colour not in COLOURS:
        raise ValueError(
            f"Unknown taxi colour {colour!r}: the course uses {', '.join(map(repr, COLOURS))} "
            "taxi data. Call load_trips('green', year, month)."
        )
    if not isinstance(year, int) or not isinstance(month, int):
        raise ValueError(f"year and month must be integers, got {year!r} and {month!r}.")
    if not 1 <= month <= 12:
        raise ValueError(f"Month {month} is out of range: use 1 (January) to 12 (December).")
    today = dt.date.today()
    if (year, month) < FIRST_MONTH:
        raise ValueError(
            f"No {colour} taxi data for {year}-{month:02d}: the TLC's records start in "
            f"{FIRST_MONTH[0]}-{FIRST_MONTH[1]:02d}. The module uses 2021-01 and 2021-02."
        )
    if (year, month) >= (today.year, today.month):
        raise ValueError(
            f"No {colour} taxi data for {year}-{month:02d} yet: the TLC publishes a month "
            "after it ends. The module uses 2021-01 and 2021-02."
        )


def file_name(colour: str, year: int, month: int) -> str:
    """The TLC's file name for one month, e.g. ``green_tripdata_2021-01.parquet``."""
    return f"{colour}_tripdata_{year:04d}-{month:02d}.parquet"


def data_dir() -> Path:
    """The download cache: ``COURSE_DATA_DIR``, else ``data/`` at the course's root."""
    configured = os.environ.get("COURSE_DATA_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------------------
# Loading


def load_trips(
    colour: str = "green", year: int = 2021, month: int = 1, source: str | None = None
) -> pd.DataFrame:
    """One month of taxi trips with the TLC's schema.

    ``source`` is ``"sample"`` (the default: generated offline, deterministic) or
    ``"tlc"`` (the real file, downloaded once). Without an argument it is taken from the
    ``COURSE_DATA_SOURCE`` environment variable, so a learner can switch every notebook
    to the real data without editing any of them.
    """
    source = source or os.environ.get("COURSE_DATA_SOURCE") or "sample"
    if source not in SOURCES:
        raise ValueError(
            f"Unknown data source {source!r}: use 'sample' (offline, the default) or 'tlc' "
            "(download the real files). Check the COURSE_DATA_SOURCE environment variable."
        )
    validate_month(colour, year, month)
    if source == "sample":
        return generate_sample(year, month, sample_size())
    return read_trips(download_trips(colour, year, month))


def missing_columns(df: pd.DataFrame) -> list[str]:
    """The columns of :data:`REQUIRED_COLUMNS` that ``df`` lacks, in the TLC's order."""
    return [c for c in REQUIRED_COLUMNS if c not in df.columns]


def read_trips(path: str | Path) -> pd.DataFrame:
    """Read a TLC parquet file, with an error that says what to do when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise TripDataError(
            f"Trip data file not found: {path}. Download it with "
            "helpers.data.download_trips(colour, year, month), or use the offline sample "
            "(unset COURSE_DATA_SOURCE)."
        )
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise TripDataError(
            f"{path} is not a readable parquet file ({type(exc).__name__}). It is probably "
            "a broken download: delete it and run again to download it afresh."
        ) from exc
    missing = missing_columns(df)
    if missing and path.parent.resolve() == data_dir().resolve():
        raise TripDataError(
            f"{path} lacks the columns {missing} of a TLC green-taxi file, so it is not the "
            "month it is named after: delete it, and the next run downloads it afresh."
        )
    if missing:
        raise TripDataError(
            f"{path} lacks the columns {missing} of a TLC green-taxi file. "
            "Is it a green-taxi file? Yellow-taxi files use tpep_* instead of lpep_*."
        )
    return df


def download_trips(
    colour: str, year: int, month: int, *, base_url: str | None = None, timeout: float = 60
) -> Path:
    """Download one month's TLC file into :func:`data_dir` once; return its path.

    The file is written under a temporary name, checked (every promised byte arrived, it
    is a parquet file with the module's columns), and only then renamed: a broken download
    never leaves a half file that looks like a good one.
    """
    validate_month(colour, year, month)
    name = file_name(colour, year, month)
    target = data_dir() / name
    if target.is_file():
        return target
    base = (base_url or os.environ.get("COURSE_TLC_BASE_URL") or TLC_BASE_URL).rstrip("/")
    url = f"{base}/{name}"
    try:  # before downloading: a cache that cannot take the file fails at once
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial_name = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise _cache_error(target.parent, exc) from exc
    partial = Path(partial_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _body(url, f"{colour} taxi data for {year}-{month:02d}", timeout):
                out.write(chunk)
        _check_download(partial, url)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _cache_error(folder: Path, exc: OSError) -> TripDataError:
    """Why downloads cannot be kept in ``folder``, and the way out.

    Why not let the ``OSError`` through: it names a temporary file or says only "File
    exists", not the setting that chose the folder (``COURSE_DATA_DIR``).
    """
    in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        return TripDataError(
            f"Cannot keep downloads in {folder}: {in_the_way} is a file, not a folder. "
            "Remove that file, or set COURSE_DATA_DIR to another folder."
        )
    return TripDataError(
        f"Cannot write downloads to {folder} ({exc.strerror or exc}). Set COURSE_DATA_DIR to "
        "a folder you can write to, or work offline: unset COURSE_DATA_SOURCE."
    )


def _body(url: str, month: str, timeout: float) -> Iterator[bytes]:
    """The body of ``url`` in pieces, refusing one shorter than the server promised.

    Why count: when a connection drops, Python's HTTP client ends the body early without
    an error, so a truncated file would otherwise look complete. Why a generator: the
    caller writes the pieces, so an error writing them is never taken for a network error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            promised = response.headers.get("Content-Length")
            got = 0
            while chunk := response.read(1 << 20):
                got += len(chunk)
                yield chunk
    except urllib.error.HTTPError as exc:
        exc.close()  # its unread body holds the connection open
        if exc.code not in (403, 404):  # S3 answers 403 for a missing file if listing is denied
            raise _network_error(url, exc) from exc
        raise TripDataError(
            f"{url} answered {exc.code} {exc.reason}: the TLC has not published {month} "
            "(or the address is wrong). Choose a month the TLC lists at "
            f"{TLC_LIST_URL}, or check COURSE_TLC_BASE_URL."
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _network_error(url, exc) from exc
    if promised and promised.isdigit() and got != int(promised):
        raise TripDataError(
            f"The download of {url} was incomplete: got {got:,} of {int(promised):,} bytes, "
            "and nothing was kept. Delete nothing, just run again to download it afresh."
        )


def _network_error(url: str, exc: Exception) -> TripDataError:
    reason = getattr(exc, "reason", None) or exc
    return TripDataError(
        f"Could not download {url} ({reason}). Check your internet connection, or work "
        "offline with the course's sample data: unset COURSE_DATA_SOURCE (or pass "
        "source='sample')."
    )


def _check_download(path: Path, url: str) -> None:
    """Refuse a download that is not a whole green-taxi parquet file before it is kept.

    A parquet file starts and ends with ``PAR1``, its footer (the schema) last: a body cut
    short where no Content-Length was promised starts right but ends wrong. An error page
    is not parquet at all. A file without the columns the module needs would fail every
    later run from the cache.
    """
    with path.open("rb") as file:
        head = file.read(4)
        file.seek(max(file.seek(0, os.SEEK_END) - 4, 0))
        tail = file.read(4)
    if head == PARQUET_MAGIC and tail != PARQUET_MAGIC:
        raise TripDataError(
            f"The download of {url} was cut short (the file ends before its parquet footer), "
            "and nothing was kept. Run again to download it afresh."
        )
    try:
        with pq.ParquetFile(path) as parquet:
            columns = parquet.schema_arrow.names
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise TripDataError(
            f"{url} sent something that is not a parquet file ({exc}), and nothing was "
            "kept. Check COURSE_TLC_BASE_URL (it must be the TLC's trip-data address), or "
            "work offline: unset COURSE_DATA_SOURCE."
        ) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise TripDataError(
            f"{url} sent a parquet file without the columns {missing} of a TLC green-taxi "
            "file, and nothing was kept. Check COURSE_TLC_BASE_URL: it must be the TLC's "
            "trip-data address."
        )


# --------------------------------------------------------------------------------------
# The course's feature preparation


def prepare_features(df: pd.DataFrame) -> pd.DataFrame:
    """The module's preparation: trip duration in minutes, 1-60 minutes kept, ``PU_DO``.

    Adds ``duration`` (minutes) and ``PU_DO`` (pickup and drop-off zone joined by ``_``,
    a categorical feature) and keeps ``trip_distance`` numeric. Returns a new frame.
    """
    missing = missing_columns(df)
    if missing:
        raise ValueError(
            f"The trip data lacks the columns {missing}. Load it with helpers.data.load_trips "
            "or read a TLC green-taxi parquet file."
        )
    df = df.copy()
    elapsed = df["lpep_dropoff_datetime"] - df["lpep_pickup_datetime"]
    df["duration"] = elapsed.dt.total_seconds() / 60
    df = df[(df["duration"] >= MIN_MINUTES) & (df["duration"] <= MAX_MINUTES)].copy()
    if df.empty:
        raise ValueError(
            f"No trip lasts {MIN_MINUTES}-{MAX_MINUTES} minutes: are the pickup and drop-off "
            "columns swapped or empty?"
        )
    zones = ["PULocationID", "DOLocationID"]
    df[zones] = df[zones].astype(str)
    df["PU_DO"] = df["PULocationID"] + "_" + df["DOLocationID"]
    df["trip_distance"] = df["trip_distance"].astype(float)
    return df


# --------------------------------------------------------------------------------------
# The offline sample

SAMPLE_TRIPS_PER_MONTH = 12_000
"""Trips in a sample month: a sixth of a real one, so every notebook runs in seconds."""

REAL_MONTH_TRIPS = 76_000
"""About the size of the real January 2021 green-taxi file, to measure the course at scale."""


MIN_SAMPLE_TRIPS = 100
"""Fewer trips leave some notebooks' validation months nearly empty."""

MAX_SAMPLE_TRIPS = 1_000_000
"""The most trips ``COURSE_SAMPLE_TRIPS`` may ask for: 13 real months' worth.

Why a bound: the generator holds several arrays per trip at once. Measured (2 cores, numpy
2.4, pandas 3.1): a million trips take 1.5-1.9 s and peak at 530 MiB above the interpreter
(the frame itself is 154 MiB); two million, 3.1-4.1 s and 1.06 GiB; five million, 9.3 s and
2.4 GiB. Notebooks load two months, so a million keeps them near 1 GB and seconds; at
the same rate a billion would need about 500 GB and half an hour.
"""


def sample_size() -> int:
    """Trips per sample month: ``COURSE_SAMPLE_TRIPS`` if set, else the course's default.

    Why a knob: the benchmark runs the notebooks on months of real size
    (``COURSE_SAMPLE_TRIPS=76000``) to measure what a learner with the real files needs.
    Stored outputs are made with the default.
    """
    configured = os.environ.get("COURSE_SAMPLE_TRIPS", "")
    if not configured:
        return SAMPLE_TRIPS_PER_MONTH
    try:
        trips = int(configured)
    except ValueError:
        trips = 0
    if trips < MIN_SAMPLE_TRIPS:
        raise ValueError(
            f"COURSE_SAMPLE_TRIPS={configured!r} is not a whole number of trips from "
            f"{MIN_SAMPLE_TRIPS:,} to {MAX_SAMPLE_TRIPS:,}. Set it to one, or unset it to use "
            f"the course's sample size ({SAMPLE_TRIPS_PER_MONTH:,})."
        )
    if trips > MAX_SAMPLE_TRIPS:
        raise ValueError(
            f"COURSE_SAMPLE_TRIPS={configured!r} is more than the {MAX_SAMPLE_TRIPS:,} trips a "
            "generated month may have (each million takes about 2 s and 0.5 GB to generate). "
            f"Set it to {MAX_SAMPLE_TRIPS:,} or less, or use the real files: "
            "COURSE_DATA_SOURCE=tlc."
        )
    return trips


# fmt: off
_POPULAR_ZONES = np.array(
    [74, 75, 41, 166, 7, 82, 97, 95, 42, 244, 129, 181, 260, 65, 116, 152, 255, 25, 226, 43,
     61, 33, 49, 112, 80, 17, 146, 179, 138, 236, 24, 223, 92, 56, 193, 83, 168, 69, 247, 52]
)
# fmt: on


def _zone_map() -> tuple[np.ndarray, np.ndarray]:
    """Fixed positions (miles) and congestion of all 265 zones, the same every month.

    Fixing the map is what lets a model trained on January predict February.
    """
    rng = np.random.default_rng(2013)
    position = rng.uniform(0, 8, size=(266, 2))
    congestion = rng.lognormal(0, 0.45, size=266)
    return position, congestion


def generate_sample(year: int, month: int, n: int = SAMPLE_TRIPS_PER_MONTH) -> pd.DataFrame:
    """Generate one month of green-taxi trips, deterministic for a given year and month.

    A trip's duration is driving time (speed falls with congestion of both zones and at
    rush hour, rises with trip length as longer trips use highways) plus a fixed pickup
    overhead, times noise. About 3% of trips fall outside 1-60 minutes, as in the real
    data, and about 5% lack the fields a street-hail meter leaves empty.
    """
    rng = np.random.default_rng(year * 100 + month)
    position, congestion = _zone_map()

    weights = 1 / np.arange(1, len(_POPULAR_ZONES) + 1) ** 0.8
    weights /= weights.sum()

    def zones(size: int) -> np.ndarray:
        popular = rng.choice(_POPULAR_ZONES, size=size, p=weights)
        anywhere = rng.integers(1, 266, size=size)
        return np.where(rng.random(size) < 0.93, popular, anywhere)

    pu, do = zones(n), zones(n)
    same_area = rng.random(n) < 0.25  # many green-taxi trips stay in their zone
    do = np.where(same_area, pu, do)
    straight = np.linalg.norm(position[pu] - position[do], axis=1)
    distance = np.where(
        pu == do,
        rng.gamma(2.0, 0.45, n),
        straight * 1.3 * rng.lognormal(0, 0.15, n),
    )
    distance = np.round(np.maximum(distance, 0.01), 2)

    days = pd.Timestamp(year=year, month=month, day=1).days_in_month
    # fmt: off
    hour_weights = np.array(
        [2, 1.5, 1, 0.8, 0.8, 1.2, 2.5, 4, 5, 4.5, 4, 4, 4.2, 4.3, 4.6, 5, 5.2, 5.4, 5, 4.2,
         3.6, 3.2, 2.8, 2.4]
    )
    # fmt: on
    hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum())
    start = pd.Timestamp(year=year, month=month, day=1)
    pickup = (
        start
        + pd.to_timedelta(rng.integers(0, days, n), unit="D")
        + pd.to_timedelta(hour, unit="h")
        + pd.to_timedelta(rng.integers(0, 3600, n), unit="s")
    )

    rush = np.isin(hour, [7, 8, 9, 16, 17, 18, 19])
    night = (hour >= 22) | (hour <= 5)
    time_factor = np.where(rush, 0.72, np.where(night, 1.25, 1.0))
    highway = 1 + 0.9 * (1 - np.exp(-distance / 4))
    speed = 12 * time_factor * highway / np.sqrt(congestion[pu] * congestion[do])
    minutes = (2 + 60 * distance / speed) * rng.lognormal(0, 0.22, n)

    outlier = rng.random(n)
    minutes = np.where(outlier < 0.015, rng.uniform(0, 1, n), minutes)  # cancelled, test rides
    minutes = np.where(outlier > 0.988, rng.uniform(61, 1440, n), minutes)  # meter left on
    dropoff = pickup + pd.to_timedelta(np.round(minutes * 60), unit="s")

    fare = np.round(2.5 + 2.5 * distance + 0.5 * np.clip(minutes, 0, 90), 2)
    tip = np.round(np.where(rng.random(n) < 0.4, fare * rng.uniform(0.1, 0.25, n), 0), 2)
    tolls = np.where(distance > 8, np.where(rng.random(n) < 0.2, 6.55, 0.0), 0.0)
    extra = np.where(night | rush, np.where(night, 0.5, 1.0), 0.0)
    congestion_fee = np.where(rng.random(n) < 0.1, 2.75, 0.0)
    total = np.round(fare + extra + 0.5 + tip + tolls + 0.3 + congestion_fee, 2)

    street_hail = rng.random(n) >= 0.05  # the rest come from apps: no meter fields

    def sure(values: np.ndarray) -> np.ndarray:
        return np.where(street_hail, values, np.nan)

    passengers = rng.choice([1.0, 2.0, 3.0, 5.0], size=n, p=[0.85, 0.1, 0.03, 0.02])

    df = pd.DataFrame(
        {
            "VendorID": rng.choice([1, 2], size=n, p=[0.15, 0.85]).astype("int64"),
            "lpep_pickup_datetime": pickup.astype("datetime64[us]"),
            "lpep_dropoff_datetime": dropoff.astype("datetime64[us]"),
            "store_and_fwd_flag": pd.Series(
                np.where(street_hail, np.where(rng.random(n) < 0.01, "Y", "N"), None),
                dtype="str",  # what pandas reads from the TLC's parquet files
            ),
            "RatecodeID": sure(np.where(rng.random(n) < 0.97, 1.0, 5.0)),
            "PULocationID": pu.astype("int64"),
            "DOLocationID": do.astype("int64"),
            "passenger_count": sure(passengers),
            "trip_distance": distance,
            "fare_amount": fare,
            "extra": extra,
            "mta_tax": np.full(n, 0.5),
            "tip_amount": tip,
            "tolls_amount": tolls,
            "ehail_fee": np.full(n, np.nan),
            "improvement_surcharge": np.full(n, 0.3),
            "total_amount": total,
            "payment_type": sure(rng.choice([1.0, 2.0, 3.0], size=n, p=[0.55, 0.43, 0.02])),
            "trip_type": sure(np.where(rng.random(n) < 0.98, 1.0, 2.0)),
            "congestion_surcharge": sure(congestion_fee),
        },
        columns=list(TLC_GREEN_COLUMNS),
    )
    return df.sort_values("lpep_pickup_datetime", ignore_index=True)
