"""What the checker tests share: a learner's store, and reading a checker's verdict.

Why a module of its own: each notebook's checkers have a test file of their own
(tests/test_exercises_nbNN.py), so that tools/mutate_checkers.py can run just the tests of
the module it breaks; they all need the same store and the same way to read a verdict.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest

from helpers.data import load_trips, prepare_features

ODD_INPUTS = (None, 42, 3.5, "", 'O\'Brien "quoted"', [], {}, object())
"""What a learner may put in an answer variable by mistake: each must get a hint."""


def verdict(capsys: pytest.CaptureFixture, check: Callable[..., None], *args, **kwargs) -> str:
    """The one line a checker prints; a traceback from the checker fails the test."""
    capsys.readouterr()  # what the test itself printed (MLflow's "View run" links, say)
    check(*args, **kwargs)
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0, f"a checker prints one line, not:\n{out}"
    return out


def correct(out: str) -> bool:
    return out.startswith("Correct: ")


def hint(out: str, *fragments: str) -> bool:
    """Whether ``out`` is a "Not yet" hint that says each of ``fragments``."""
    return out.startswith("Not yet: ") and all(fragment in out for fragment in fragments)


@pytest.fixture(name="store")
def learner_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[mlflow.entities.Experiment]:
    """A learner's store of its own, the test's folder as working folder, the notebooks'
    experiment active."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    monkeypatch.chdir(tmp_path)
    # An absolute URI: MLflow caches a store by its URI, so a relative one would reach the
    # database of the folder an earlier test opened it in.
    mlflow.set_tracking_uri(f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}")
    yield mlflow.set_experiment("nyc-taxi-experiment")
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)


def finished_run(name: str, *, params=None, metrics=None, tags=None, **run_args) -> str:
    """A finished run of the active experiment with what a learner logged; returns its id."""
    with mlflow.start_run(run_name=name, **run_args) as run:
        if params:
            mlflow.log_params(params)
        if metrics:
            mlflow.log_metrics(metrics)
        if tags:
            mlflow.set_tags(tags)
    return run.info.run_id


@functools.cache
def months() -> list:
    """January (train) and February (validation), prepared as the notebooks prepare them."""
    return [prepare_features(load_trips("green", 2021, month)) for month in (1, 2)]
