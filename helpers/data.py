"""NYC TLC taxi trip data for the course: an offline sample or the real monthly files.

Why a sample: the module trains on January 2021 and validates on February 2021 of the
TLC's green-taxi records; its homework cohorts use January-March of green taxis of 2021
(2022), 2022 (2023) and 2023 (2024 and 2025). Downloading them needs the internet, which a
learner on a train or a CI machine does not have. So by default :func:`load_trips` *generates* a
deterministic month of trips with the real TLC schema of each colour. Durations depend on
distance, the pickup/drop-off zone pair and the hour, with a few outliers outside 1-60
minutes and some missing values, so every lesson of the module works on it. The sample is
synthetic for every colour: its numbers are not the TLC's.

Set the environment variable ``COURSE_DATA_SOURCE=tlc`` to use the real files instead:
each month is downloaded once into a git-ignored ``data/`` folder and read from there.

``python -m helpers.data write-tlc green 2023 --to taxi-data`` writes sample months as files
named and shaped as the TLC's, so that the module's own scripts read them unchanged, offline.
"""

from __future__ import annotations

import argparse
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
COLOURS = ("green", "yellow")
FIRST_MONTHS = {"green": (2013, 8), "yellow": (2009, 1)}
"""The TLC's first month of records for each colour."""
FIRST_MONTH = FIRST_MONTHS["green"]
"""The TLC's first month of green-taxi records (August 2013)."""

COHORT_MONTHS = "green 2021-01 to 2021-03, 2022-01 to 2022-03 and 2023-01 to 2023-03"
"""The months the course's homework cohorts use, for error messages."""

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

TLC_YELLOW_COLUMNS = (
    "VendorID",
    "tpep_pickup_datetime",
    "tpep_dropoff_datetime",
    "passenger_count",
    "trip_distance",
    "RatecodeID",
    "store_and_fwd_flag",
    "PULocationID",
    "DOLocationID",
    "payment_type",
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "total_amount",
    "congestion_surcharge",
    "airport_fee",
)
"""The columns of a TLC yellow-taxi parquet file of 2021-2024, in the TLC's order.

Yellow taxis use ``tpep_*`` (taximeter) times where green ones use ``lpep_*``, have no
``ehail_fee`` or ``trip_type``, and charge an ``airport_fee``. (The TLC spells it
``Airport_fee`` in some months' files; the course needs neither spelling.)
"""

TLC_COLUMNS = {"green": TLC_GREEN_COLUMNS, "yellow": TLC_YELLOW_COLUMNS}

TIME_PREFIX = {"green": "lpep", "yellow": "tpep"}
"""Green taxis' times come from the LPEP, yellow ones' from the TPEP (the TLC's programs)."""


def required_columns(colour: str) -> tuple[str, ...]:
    """What :func:`prepare_features` needs from a file of ``colour``."""
    prefix = TIME_PREFIX[colour]
    return (
        f"{prefix}_pickup_datetime",
        f"{prefix}_dropoff_datetime",
        "PULocationID",
        "DOLocationID",
        "trip_distance",
    )


REQUIRED_COLUMNS = required_columns("green")
"""What :func:`prepare_features` needs of a green-taxi file; a file without these cannot be used."""

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
            f"Unknown taxi colour {colour!r}: the course serves {' and '.join(map(repr, COLOURS))} "
            "taxi data. Call load_trips('green', year, month) or load_trips('yellow', year, month)."
        )
    if not isinstance(year, int) or not isinstance(month, int):
        raise ValueError(f"year and month must be integers, got {year!r} and {month!r}.")
    if not 1 <= month <= 12:
        raise ValueError(f"Month {month} is out of range: use 1 (January) to 12 (December).")
    today = dt.date.today()
    first = FIRST_MONTHS[colour]
    last = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    valid = (
        f"Choose a month from {first[0]}-{first[1]:02d} to {last[0]}-{last[1]:02d}; the "
        f"homework's cohorts use {COHORT_MONTHS}."
    )
    if (year, month) < first:
        raise ValueError(
            f"No {colour} taxi data for {year}-{month:02d}: the TLC's records start in "
            f"{first[0]}-{first[1]:02d}. {valid}"
        )
    if (year, month) > last:
        raise ValueError(
            f"No {colour} taxi data for {year}-{month:02d} yet: the TLC publishes a month "
            f"after it ends. {valid}"
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
        return generate_sample(year, month, sample_size(colour), colour=colour)
    return read_trips(download_trips(colour, year, month), colour=colour)


def colour_of(df: pd.DataFrame) -> str:
    """The taxi colour a frame's columns belong to: yellow if it has ``tpep_*`` times."""
    return "yellow" if "tpep_pickup_datetime" in df.columns else "green"


def missing_columns(df: pd.DataFrame, colour: str | None = None) -> list[str]:
    """The columns :func:`prepare_features` needs that ``df`` lacks, in the TLC's order.

    ``colour`` defaults to the one the frame's columns show (:func:`colour_of`).
    """
    return [c for c in required_columns(colour or colour_of(df)) if c not in df.columns]


def _colour_of_file(path: Path) -> str | None:
    """The colour a TLC file name states (``yellow_tripdata_...``), or None."""
    return next((c for c in COLOURS if path.name.startswith(f"{c}_tripdata_")), None)


def read_trips(path: str | Path, colour: str | None = None) -> pd.DataFrame:
    """Read a TLC parquet file, with an error that says what to do when it is unusable.

    ``colour`` is the kind of file expected; by default the one its name states
    (``green_tripdata_...``), else the one its columns show.
    """
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
    colour = colour or _colour_of_file(path) or colour_of(df)
    missing = missing_columns(df, colour)
    if missing and path.parent.resolve() == data_dir().resolve():
        raise TripDataError(
            f"{path} lacks the columns {missing} of a TLC {colour}-taxi file, so it is not the "
            "month it is named after: delete it, and the next run downloads it afresh."
        )
    if missing:
        other = next(c for c in COLOURS if c != colour)
        raise TripDataError(
            f"{path} lacks the columns {missing} of a TLC {colour}-taxi file. "
            f"Is it a {colour}-taxi file? {other.capitalize()}-taxi files use "
            f"{TIME_PREFIX[other]}_* instead of {TIME_PREFIX[colour]}_*."
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
        _check_download(partial, url, colour)
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


def _check_download(path: Path, url: str, colour: str = "green") -> None:
    """Refuse a download that is not a whole parquet file of ``colour`` before it is kept.

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
    missing = [c for c in required_columns(colour) if c not in columns]
    if missing:
        raise TripDataError(
            f"{url} sent a parquet file without the columns {missing} of a TLC {colour}-taxi "
            "file, and nothing was kept. Check COURSE_TLC_BASE_URL: it must be the TLC's "
            "trip-data address."
        )


# --------------------------------------------------------------------------------------
# The course's feature preparation


def prepare_features(df: pd.DataFrame) -> pd.DataFrame:
    """The module's preparation: trip duration in minutes, 1-60 minutes kept, ``PU_DO``.

    Adds ``duration`` (minutes) and ``PU_DO`` (pickup and drop-off zone joined by ``_``,
    a categorical feature) and keeps ``trip_distance`` numeric. Returns a new frame. Green
    (``lpep_*``) and yellow (``tpep_*``) trips alike.
    """
    colour = colour_of(df)
    missing = missing_columns(df, colour)
    if missing:
        raise ValueError(
            f"The trip data lacks the columns {missing}. Load it with helpers.data.load_trips "
            "or read a TLC green- or yellow-taxi parquet file."
        )
    df = df.copy()
    prefix = TIME_PREFIX[colour]
    elapsed = df[f"{prefix}_dropoff_datetime"] - df[f"{prefix}_pickup_datetime"]
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

SAMPLE_TRIPS = {"green": SAMPLE_TRIPS_PER_MONTH, "yellow": 2 * SAMPLE_TRIPS_PER_MONTH}
"""Trips in a sample month of each colour.

Yellow taxis make about 40 times as many trips as green ones (some 3 million a month in
2023, against 65,000-80,000): their sample is twice as big, not 40 times, so that the
homework still runs in seconds.
"""

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


def sample_size(colour: str = "green") -> int:
    """Trips per sample month: ``COURSE_SAMPLE_TRIPS`` if set, else the course's default.

    Why a knob: the benchmark runs the notebooks on months of real size
    (``COURSE_SAMPLE_TRIPS=76000``) to measure what a learner with the real files needs.
    Stored outputs are made with the default. The setting applies to every colour.
    """
    configured = os.environ.get("COURSE_SAMPLE_TRIPS", "")
    if not configured:
        return SAMPLE_TRIPS[colour]
    try:
        trips = int(configured)
    except ValueError:
        trips = 0
    if trips < MIN_SAMPLE_TRIPS:
        raise ValueError(
            f"COURSE_SAMPLE_TRIPS={configured!r} is not a whole number of trips from "
            f"{MIN_SAMPLE_TRIPS:,} to {MAX_SAMPLE_TRIPS:,}. Set it to one, or unset it to use "
            f"the course's sample size ({SAMPLE_TRIPS[colour]:,})."
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


def traffic(year: int) -> float:
    """How fast traffic moves in ``year``, relative to 2021 (and the years before).

    Why: NYC's traffic came back after the pandemic years, so trips of 2022 on are slower
    and the homework's cohorts (2021 and 2023 data) get different answers, as on the real
    data. 2021 is 1.0 exactly: the course's stored outputs are made on its months.
    """
    return 1.0 if year <= 2021 else 0.88


def _pickup_times(
    rng: np.random.Generator, year: int, month: int, n: int, hour_weights: np.ndarray
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Each trip's pickup hour, and its pickup time: a day of the month, that hour, a second.

    Both colours draw them the same way, from an hour profile of their own, in this order:
    the random stream, and so green 2021's sample, must stay as it was.
    """
    days = pd.Timestamp(year=year, month=month, day=1).days_in_month
    hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum())
    start = pd.Timestamp(year=year, month=month, day=1)
    pickup = (
        start
        + pd.to_timedelta(rng.integers(0, days, n), unit="D")
        + pd.to_timedelta(hour, unit="h")
        + pd.to_timedelta(rng.integers(0, 3600, n), unit="s")
    )
    return hour, pickup


def generate_sample(
    year: int, month: int, n: int = SAMPLE_TRIPS_PER_MONTH, *, colour: str = "green"
) -> pd.DataFrame:
    """Generate one month of taxi trips, deterministic for a given colour, year and month.

    A trip's duration is driving time (speed falls with congestion of both zones and at
    rush hour, rises with trip length as longer trips use highways) plus a fixed pickup
    overhead, times noise. About 3% of trips fall outside 1-60 minutes, as in the real
    data, and about 5% lack the fields a street-hail meter leaves empty. Yellow trips:
    see :func:`_generate_yellow`.
    """
    if colour == "yellow":
        return _generate_yellow(year, month, n)
    if colour != "green":
        validate_month(colour, year, month)  # names the colours there are
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

    # fmt: off
    hour_weights = np.array(
        [2, 1.5, 1, 0.8, 0.8, 1.2, 2.5, 4, 5, 4.5, 4, 4, 4.2, 4.3, 4.6, 5, 5.2, 5.4, 5, 4.2,
         3.6, 3.2, 2.8, 2.4]
    )
    # fmt: on
    hour, pickup = _pickup_times(rng, year, month, n, hour_weights)

    rush = np.isin(hour, [7, 8, 9, 16, 17, 18, 19])
    night = (hour >= 22) | (hour <= 5)
    time_factor = np.where(rush, 0.72, np.where(night, 1.25, 1.0))
    highway = 1 + 0.9 * (1 - np.exp(-distance / 4))
    speed = 12 * traffic(year) * time_factor * highway / np.sqrt(congestion[pu] * congestion[do])
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


# fmt: off
_MANHATTAN_ZONES = np.array(
    [237, 161, 236, 162, 230, 186, 142, 170, 163, 239, 234, 48, 68, 79, 141, 249, 107, 140,
     238, 263, 100, 229, 164, 137, 143, 113, 233, 262, 246, 90, 151, 75, 87, 231, 114, 158,
     148, 211, 13, 4]
)
"""Manhattan zones by how many yellow trips start there (the TLC's 2023 ranking, roughly)."""
# fmt: on
_JFK, _LAGUARDIA = 132, 138


def _yellow_map() -> tuple[np.ndarray, np.ndarray]:
    """The zone map of :func:`_zone_map`, Manhattan drawn as a narrow island and airports far.

    Yellow taxis work mostly in Manhattan: about 1.5 by 4.5 miles where most of their trips
    start and end, slowly; JFK lies some 15 miles away, LaGuardia some 8.
    """
    position, congestion = _zone_map()
    position, congestion = position.copy(), congestion.copy()
    rng = np.random.default_rng(2009)  # the TLC's first year of yellow records
    position[_MANHATTAN_ZONES] = rng.uniform([0, 0], [1.5, 4.5], size=(len(_MANHATTAN_ZONES), 2))
    position[_JFK], position[_LAGUARDIA] = (12.0, -8.0), (7.0, 4.0)
    congestion[_MANHATTAN_ZONES] *= 1.2
    congestion[[_JFK, _LAGUARDIA]] = 0.9
    return position, congestion


def _generate_yellow(year: int, month: int, n: int) -> pd.DataFrame:
    """One month of yellow-taxi trips, deterministic for a given year and month.

    Unlike green taxis (street hails outside Manhattan's core), yellow taxis mostly drive
    short, slow trips within Manhattan, plus airport runs: about 80% of trips start and
    end in Manhattan, 6% start or end at JFK or LaGuardia. As with green ones, about 3%
    of trips fall outside 1-60 minutes, and about 3% lack the meter's fields.
    """
    rng = np.random.default_rng([1, year, month])  # [0, ...] stays free; green has its own
    position, congestion = _yellow_map()

    weights = 1 / np.arange(1, len(_MANHATTAN_ZONES) + 1) ** 0.6
    weights /= weights.sum()

    def zones(size: int) -> np.ndarray:
        manhattan = rng.choice(_MANHATTAN_ZONES, size=size, p=weights)
        airport = rng.choice([_JFK, _LAGUARDIA], size=size, p=[0.55, 0.45])
        anywhere = rng.integers(1, 266, size=size)
        where = rng.random(size)
        return np.where(where < 0.88, manhattan, np.where(where < 0.91, airport, anywhere))

    pu, do = zones(n), zones(n)
    do = np.where(rng.random(n) < 0.04, pu, do)  # few yellow trips stay in their zone
    straight = np.linalg.norm(position[pu] - position[do], axis=1)
    distance = np.where(
        pu == do, rng.gamma(2.0, 0.3, n), straight * 1.25 * rng.lognormal(0, 0.18, n)
    )
    distance = np.round(np.maximum(distance, 0.01), 2)

    # fmt: off
    hour_weights = np.array(
        [2.8, 1.9, 1.2, 0.8, 0.6, 0.7, 1.6, 3.0, 4.0, 4.3, 4.5, 4.8, 5.1, 5.3, 5.7, 5.9, 6.1,
         6.6, 6.8, 6.2, 5.5, 5.3, 5.0, 3.9]
    )
    # fmt: on
    hour, pickup = _pickup_times(rng, year, month, n, hour_weights)

    rush = np.isin(hour, [8, 9, 15, 16, 17, 18, 19])
    night = (hour >= 22) | (hour <= 5)
    time_factor = np.where(rush, 0.7, np.where(night, 1.3, 1.0))
    highway = 1 + 1.4 * (1 - np.exp(-distance / 5))
    speed = 11 * traffic(year) * time_factor * highway / np.sqrt(congestion[pu] * congestion[do])
    minutes = (1.5 + 60 * distance / speed) * rng.lognormal(0, 0.18, n)

    outlier = rng.random(n)
    minutes = np.where(outlier < 0.014, rng.uniform(0, 1, n), minutes)  # cancelled, test rides
    minutes = np.where(outlier > 0.99, rng.uniform(61, 1440, n), minutes)  # meter left on
    dropoff = pickup + pd.to_timedelta(np.round(minutes * 60), unit="s")

    airport = np.isin(pu, [_JFK, _LAGUARDIA]) | np.isin(do, [_JFK, _LAGUARDIA])
    manhattan_pu, manhattan_do = np.isin(pu, _MANHATTAN_ZONES), np.isin(do, _MANHATTAN_ZONES)
    jfk_flat = ((pu == _JFK) & manhattan_do) | ((do == _JFK) & manhattan_pu)
    newer = year >= 2023  # the TLC's fare rise of December 2022
    flat_fare = 70.0 if newer else 52.0
    metered = (3.0 if newer else 2.5) + (3.5 if newer else 2.5) * distance
    fare = np.round(np.where(jfk_flat, flat_fare, metered + 0.4 * np.clip(minutes, 0, 90)), 2)
    card = rng.random(n) < 0.8
    tip = np.round(np.where(card, fare * rng.uniform(0.15, 0.25, n), 0), 2)
    tolls = np.where(airport & (rng.random(n) < 0.35), 6.94, 0.0)
    extra = np.where(rush, 2.5 if newer else 1.0, np.where(night, 1.0 if newer else 0.5, 0.0))
    surcharge = 1.0 if newer else 0.3
    congestion_fee = np.where(manhattan_pu | manhattan_do, 2.5, 0.0)
    airport_fee = np.where(np.isin(pu, [_JFK, _LAGUARDIA]), 1.25, 0.0)
    total = np.round(fare + extra + 0.5 + tip + tolls + surcharge + congestion_fee + airport_fee, 2)

    metered_ok = rng.random(n) >= 0.03  # the rest come without the meter's fields

    def sure(values: np.ndarray) -> np.ndarray:
        return np.where(metered_ok, values, np.nan)

    passengers = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], size=n,
                            p=[0.02, 0.74, 0.14, 0.04, 0.02, 0.02, 0.02])  # fmt: skip
    payment = np.where(card, 1, rng.choice([2, 3, 4], size=n, p=[0.9, 0.04, 0.06]))

    df = pd.DataFrame(
        {
            "VendorID": rng.choice([1, 2], size=n, p=[0.26, 0.74]).astype("int64"),
            "tpep_pickup_datetime": pickup.astype("datetime64[us]"),
            "tpep_dropoff_datetime": dropoff.astype("datetime64[us]"),
            "passenger_count": sure(passengers),
            "trip_distance": distance,
            "RatecodeID": sure(np.where(jfk_flat, 2.0, np.where(rng.random(n) < 0.99, 1.0, 5.0))),
            "store_and_fwd_flag": pd.Series(
                np.where(metered_ok, np.where(rng.random(n) < 0.006, "Y", "N"), None),
                dtype="str",  # what pandas reads from the TLC's parquet files
            ),
            "PULocationID": pu.astype("int64"),
            "DOLocationID": do.astype("int64"),
            "payment_type": np.where(metered_ok, payment, 0).astype("int64"),  # 0: not recorded
            "fare_amount": fare,
            "extra": extra,
            "mta_tax": np.full(n, 0.5),
            "tip_amount": tip,
            "tolls_amount": tolls,
            "improvement_surcharge": np.full(n, surcharge),
            "total_amount": total,
            "congestion_surcharge": sure(congestion_fee),
            "airport_fee": sure(airport_fee),
        },
        columns=list(TLC_YELLOW_COLUMNS),
    )
    return df.sort_values("tpep_pickup_datetime", ignore_index=True)


# --------------------------------------------------------------------------------------
# Sample months as TLC files, for the module's own scripts


def write_tlc_files(
    colour: str, year: int, months: list[int], folder: str | Path, source: str = "sample"
) -> list[Path]:
    """Write months of trips into ``folder`` as the TLC names and shapes them; return the files.

    Why: the module's homework scripts (``preprocess_data.py``) read
    ``<colour>_tripdata_YYYY-MM.parquet`` from a folder. Written from the sample, they run
    offline, unchanged; their numbers are then the sample's, not the module's.
    """
    for month in months:
        validate_month(colour, year, month)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for month in months:
        path = folder / file_name(colour, year, month)
        partial = path.with_suffix(".partial")
        load_trips(colour, year, month, source=source).to_parquet(partial, index=False)
        partial.replace(path)  # whole or not at all: a script never reads half a file
        written.append(path)
    return written


def _months(text: str) -> list[int]:
    """``"1-3"`` or ``"1,2,3"`` -> ``[1, 2, 3]``."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-", 1))
            return list(range(first, last + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write months as 1-3 or 1,2,3") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.data write-tlc COLOUR YEAR --to FOLDER [--months 1-3]``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.data", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser(
        "write-tlc",
        help="write months as TLC parquet files, for the module's own scripts",
        description="Write months of the course's trips as TLC parquet files (offline sample "
        "by default; COURSE_DATA_SOURCE=tlc copies the real, downloaded months).",
    )
    write.add_argument("colour", choices=COLOURS)
    write.add_argument("year", type=int)
    write.add_argument("--months", type=_months, default=[1, 2, 3], help="default: 1-3")
    write.add_argument("--to", required=True, type=Path, help="the folder to write into")
    args = parser.parse_args(argv)
    source = os.environ.get("COURSE_DATA_SOURCE") or "sample"
    try:
        written = write_tlc_files(args.colour, args.year, args.months, args.to, source=source)
    except (ValueError, TripDataError, OSError) as error:
        parser.exit(2, f"python -m helpers.data: {error}\n")
    kind = "synthetic sample" if source == "sample" else "TLC's real"
    for path in written:
        print(f"wrote {path} ({kind} trips)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
