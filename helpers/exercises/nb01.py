"""Checkers for notebook 01's exercises: where a SQLite tracking URI puts the database."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import mlflow

from helpers.exercises import Hint, checker, require


@checker
def check_database_file(database: Path | str | None) -> str:
    """The database file the current tracking URI points to, which must exist."""
    require(database, "set `database` to the path of the file (a Path or a string).")
    require(
        isinstance(database, str | os.PathLike),
        f"`database` is a {type(database).__name__}: make it a path (a Path or a string).",
    )
    uri = mlflow.get_tracking_uri()
    require(uri.startswith("sqlite:///"), "set the course's tracking URI first (cell above).")
    expected = Path(uri.removeprefix("sqlite:///")).resolve()
    found = Path(database).resolve()
    require(
        found == expected,
        "that is not the file of the tracking URI: the location is what follows "
        "`sqlite:///`, relative to the folder the notebook runs in.",
    )
    require(found.is_file(), "the path is right but no file is there yet: log something first.")
    return "that is the store's database, and it exists."


_CASES = [
    # (tracking URI, folder the program starts in) -> database file
    (("sqlite:///mlflow.db", "/projects/course/notebooks"), "/projects/course/notebooks/mlflow.db"),
    (("sqlite:///mlflow.db", "/projects"), "/projects/mlflow.db"),
    (("sqlite:///stores/team.db", "/srv/mlflow"), "/srv/mlflow/stores/team.db"),
    (("sqlite:////data/runs/mlflow.db", "/projects"), "/data/runs/mlflow.db"),
]


@checker
def check_store_path(store_path: Callable[[str, str], Path | str] | None) -> str:
    """A function that says which database file a program started in ``folder`` opens."""
    require(callable(store_path), "define a function store_path(uri, folder) and pass it.")
    for (uri, folder), expected in _CASES:
        try:
            answer = store_path(uri, folder)
        except Exception as error:  # a learner's bug: report it as a hint, not a traceback
            raise Hint(f"store_path({uri!r}, {folder!r}) raised {error!r}.") from None
        require(answer is not None, "store_path returned None: return the database's path.")
        require(
            isinstance(answer, str | os.PathLike),
            f"store_path returned a {type(answer).__name__}: return a path (a Path or a string).",
        )
        if Path(answer) != Path(expected):
            absolute = uri.startswith("sqlite:////")
            raise Hint(
                f"store_path({uri!r}, {folder!r}) gave {str(answer)!r}. "
                + (
                    "Four slashes: after `sqlite:///` comes an absolute path, so the folder "
                    "does not matter."
                    if absolute
                    else "Three slashes: the path after them is relative to the folder the "
                    "program starts in."
                )
            )
    return f"right for all {len(_CASES)} cases, relative and absolute."
