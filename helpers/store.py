"""Keep the tracking store truthful after a crash, and explain the store's own failures.

Why: three things go wrong with a local ``sqlite:///mlflow.db`` that MLflow itself explains
badly or not at all.

- A kernel killed mid-run (a crash, the machine asleep, *Restart Kernel* during notebook 05's
  search) never ends its runs: they stay ``RUNNING`` forever, and the UI then shows two
  ``ridge-tuning`` parents, one of them half-made. :func:`end_runs_left_running` marks such
  runs ``KILLED``, and says so.
- ``mlflow.db`` deleted under a live kernel (to start afresh): the kernel still reads the old
  file, but every write fails with "attempt to write a readonly database", and so does *Run
  All* in that kernel, until it is restarted.
- Two notebooks creating a new ``mlflow.db`` at the same instant: MLflow 3.17 sets up a new
  store without a lock, and one of them fails deep in alembic ("duplicate column name: step",
  "table ... already exists", "no such column: ...", "Online migration expected to match one
  row"). Rarely the collision leaves the store half set up (a ``_alembic_tmp_...`` table of
  an interrupted migration), and every later attempt fails on that table.

For the last two, :func:`install_store_hints` makes a notebook kernel print, under MLflow's
own traceback, one line that says what happened and what to do. Importing this module installs
it (``helpers.exercises`` imports this module, and every notebook imports a checker); outside
IPython it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import traceback
from types import TracebackType

import mlflow
from mlflow.entities import Run

__all__ = [
    "end_runs_left_running",
    "install_store_hints",
    "left_half_made",
    "leftover_tables",
    "runs_in",
    "store_hint",
]

NAMES_SHOWN = 5
"""How many runs :func:`end_runs_left_running` names before it says "and N more"."""

STORE_ERRORS = (Exception,)
"""The exception types the hint looks at: all, because a store being made by two processes at
once fails as MLflow's, SQLAlchemy's, alembic's or even a ``KeyError`` ("No such index: ...").
Every error is shown as IPython shows it; :func:`store_hint` adds a line only to the known
store failures."""

READONLY = "attempt to write a readonly database"
RACE_MESSAGES = (
    "duplicate column name",
    "already exists",
    "Online migration expected to match one row",
    "database is locked",
    "no such column",
)
"""What two processes setting up one new store at once raise (measured: the first two, and
"no such column: spans.dimension_attributes", when one migration reads a column the other
has not added yet). Only a traceback through MLflow's set-up of a store counts."""

HALF_MADE = "_alembic_tmp_"
"""Alembic rebuilds a SQLite table as ``_alembic_tmp_<table>``, then renames it; a migration cut
off in between leaves that table, and every later attempt to set up the store stops on it
("table _alembic_tmp_latest_metrics already exists")."""

LEFTOVER_WAIT = 3.0
"""Seconds the hint watches alembic's temporary table before it calls the store half set up."""

MIGRATION_FRAMES = ("_initialize_tables", "db_migrations")
"""A traceback through MLflow's set-up of a new store names one of these (function or file)."""


def _own_runs() -> set[str]:
    """Ids of this process's active run and of its parents (a nested run's are active too)."""
    own: set[str] = set()
    active = mlflow.active_run()
    run_id = active.info.run_id if active else None
    client = mlflow.MlflowClient()
    while run_id and run_id not in own:
        own.add(run_id)
        run_id = client.get_run(run_id).data.tags.get("mlflow.parentRunId")
    return own


def _named(runs: list[Run]) -> str:
    names = [run.info.run_name or run.info.run_id for run in runs]
    if len(names) > NAMES_SHOWN:
        names = [*names[: NAMES_SHOWN - 1], f"{len(names) - NAMES_SHOWN + 1} more"]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def end_runs_left_running(experiment_id: str) -> None:
    """Mark ``KILLED`` every run of the experiment still ``RUNNING``, but this process's own.

    A run stays ``RUNNING`` until its process ends it; a kernel killed mid-run never does
    (Ctrl+C or an error inside ``with mlflow.start_run()`` do end it, as ``KILLED`` or
    ``FAILED``). Call this right after ``set_experiment``, before starting runs: prints one
    line naming the runs it ended, and nothing when there were none. This process's active
    run and its parents are left alone.

    The limit: a run ``RUNNING`` in *another live* process looks exactly the same (MLflow
    records no process or heartbeat), so two kernels running the same notebook at once would
    end each other's live runs; their later writes still land, but the runs show ``KILLED``.
    The course does not support running one notebook twice at once.
    """
    client = mlflow.MlflowClient()
    own = _own_runs()
    left = [
        run
        for run in client.search_runs(
            [experiment_id],
            filter_string="attributes.status = 'RUNNING'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
        )
        if run.info.run_id not in own
    ]
    for run in left:
        client.set_terminated(run.info.run_id, "KILLED")
    if left:
        print(f"A kernel stopped mid-run left {_named(left)} RUNNING; marked KILLED.")


def _messages(error: BaseException) -> str:
    """The text of ``error`` and of every exception it was raised from or during."""
    texts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def _database(uri: str) -> str | None:
    """The file of a ``sqlite:`` tracking URI, as written in it; None for other stores."""
    if not uri.startswith("sqlite:"):
        return None
    import sqlalchemy.engine  # here: only after an error; a notebook on a server never needs it

    database = sqlalchemy.engine.make_url(uri).database or None
    if database and database.startswith("file:"):  # sqlite:///file:mlflow.db?mode=ro&uri=true
        database = database.removeprefix("file:").split("?")[0]
    return database


def _deleted_while_open(path: str) -> bool:
    """True if ``path`` is gone, or this process holds it open though it was deleted (Linux)."""
    if not os.path.exists(path):
        return True
    deleted = f"{os.path.abspath(path)} (deleted)"
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:  # not Linux: the file exists, and that is all we can tell
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == deleted:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def _read(path: str, query: str) -> list[tuple] | None:
    """The rows of ``query`` on the SQLite file ``path``, opened read-only with the standard
    library (the store may be half made); None when it cannot be read."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute(query).fetchall()
    except sqlite3.Error:
        return None


def runs_in(path: str) -> int | None:
    """How many runs the SQLite file ``path`` holds (0 if it has no runs table yet); None when
    it cannot be read."""
    tables = _read(path, "SELECT name FROM sqlite_master WHERE name = 'runs'")
    if tables is None:
        return None
    if not tables:
        return 0
    counted = _read(path, "SELECT count(*) FROM runs")
    return counted[0][0] if counted else None


def leftover_tables(path: str) -> list[str]:
    """The ``_alembic_tmp_`` tables in the SQLite file ``path`` ([] if unreadable)."""
    tables = _read(path, "SELECT name FROM sqlite_master WHERE type = 'table'") or []
    return [name for (name,) in tables if name.startswith(HALF_MADE)]


def left_half_made(database: str) -> bool:
    """True if alembic's temporary table stays in the store: the store was left half set up.

    Why wait: the same message also comes from a collision still under way, when the other
    process has just made that table and is about to rename it; then it is gone within a
    moment, and running the cell again works.
    """
    deadline = time.monotonic() + LEFTOVER_WAIT
    while leftover_tables(database):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)
    return False


def _half_made_hint(database: str) -> str:
    """What to do with a store left half set up: delete it only if it holds no runs."""
    name = os.path.basename(database)
    runs = runs_in(database)
    if runs == 0:
        return (
            f"{name} was left half set up when two notebooks created it at once, so every new "
            "attempt fails; it holds no runs yet. Restart this kernel and the other notebook's "
            f"(Kernel > Restart Kernel), delete {name}, then run one notebook before the other."
        )
    held = "runs MLflow cannot reach now" if runs is None else f"{runs} runs"
    return (
        f"{name} was left half set up by an interrupted migration, and it holds {held}: do not "
        "delete it. Close the notebooks and keep a copy of it before anything else (README, "
        "Troubleshooting, 'half set up')."
    )


def store_hint(error: BaseException, tb: TracebackType | None = None) -> str | None:
    """What happened and what to do, for a known store failure; None for any other error."""
    messages = _messages(error)
    database = _database(mlflow.get_tracking_uri())
    if database is None:
        return None
    name = os.path.basename(database)
    if READONLY in messages and _deleted_while_open(database):
        return (
            f"{name} was deleted while this kernel had it open: the kernel can still read the "
            "old file but no longer write to it. Restart the kernel (Kernel > Restart Kernel) "
            f"and run the notebook again; a fresh {name} is created."
        )
    frames = traceback.extract_tb(tb or error.__traceback__)
    in_setup = any(
        frame.name in MIGRATION_FRAMES or MIGRATION_FRAMES[1] in frame.filename for frame in frames
    )
    if in_setup and HALF_MADE in messages and left_half_made(database):
        return _half_made_hint(database)
    # A new store is made in _initialize_tables (an existing one never gets there): the race
    # shows there in more ways than the messages above (seen too: "Circular dependency
    # detected"), so any failure but a folder we may not write to is taken for it.
    creating = any(frame.name == MIGRATION_FRAMES[0] for frame in frames)
    no_access = READONLY in messages or "unable to open database file" in messages
    known = any(message in messages for message in RACE_MESSAGES)
    if (in_setup and known) or (creating and not no_access):
        return (
            f"Two notebooks created {name} at the same moment and collided (MLflow sets up a "
            "new store without a lock); the other one finished it. Run this cell again: "
            "nothing is lost. (If the other notebook failed too, run its cell again after.)"
        )
    return None


def _show_with_hint(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: the usual traceback, then the hint if one fits."""
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    try:
        hint = store_hint(value, tb)
    except Exception:  # a hint must never hide the error it explains
        hint = None
    if hint:
        print(hint)


def install_store_hints() -> bool:
    """In an IPython kernel, add :func:`store_hint`'s line under a store failure's traceback.

    Returns whether it is installed. A no-op outside IPython, and when another custom
    exception handler is already installed (IPython keeps one; we do not replace it).
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    if shell.custom_exceptions == STORE_ERRORS:
        return True
    if shell.custom_exceptions:
        return False
    shell.set_custom_exc(STORE_ERRORS, _show_with_hint)
    return True


install_store_hints()
