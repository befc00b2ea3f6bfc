"""The MLflow UI, started the README's way on the store the notebooks left, in a real browser.

What a learner checks, checked on the page itself: the course's experiments are listed, the
runs table shows the runs, a run page shows the ``developer`` tag, parameters, metrics and
the model, the tuning trials compare side by side, and the registered model carries the
``champion`` alias. Headless Debian Chromium, driven by Playwright (which never downloads a
browser of its own here).

    COURSE_SCREENSHOTS=docs/images python -m pytest tests/test_ui_browser.py

also saves the pictures the README and the notebooks show.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import mlflow
import pytest
from browser import chromium

from helpers.server import MlflowServer, free_port

SCREENSHOTS = os.environ.get("COURSE_SCREENSHOTS")
WAIT_MS = 60_000

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def ui(executed_course):
    """``mlflow ui --backend-store-uri sqlite:///mlflow.db`` in the notebooks' folder."""
    folder, first_run, _ = executed_course
    if first_run.returncode != 0:
        pytest.fail("the notebooks did not run, so there is nothing to show")
    with MlflowServer.start(ui=True, folder=folder, port=free_port(5000)) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    yield page
    page.close()


@pytest.fixture(scope="module")
def client(ui):
    return mlflow.MlflowClient(ui.url)


@pytest.fixture(scope="module")
def course_experiment(client):
    return client.get_experiment_by_name("nyc-taxi-experiment")


def open_page(page, ui, path: str, ready_text: str):
    """Open a UI address and wait until ``ready_text`` is on the page."""
    page.goto(f"{ui.url}/{path}")
    page.get_by_text(ready_text, exact=True).first.wait_for(timeout=WAIT_MS)
    close = page.get_by_role("button", name="Close")  # the assistant panel, if it is open
    if close.count():
        close.first.click()
    page.wait_for_timeout(1000)  # let charts and tables settle before reading or a picture


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"))


def body(page) -> str:
    return page.inner_text("body")


def run_by_name(client, experiment, name):
    [run] = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.runName = '{name}'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    return run


def test_experiments_page_lists_the_course_experiments(page, ui):
    open_page(page, ui, "#/experiments", "nyc-taxi-experiment")
    text = body(page)
    for name in ("nyc-taxi-experiment", "nyc-taxi-homework", "my-first-experiment", "Default"):
        assert name in text
    assert "project" in text and "nyc-taxi-duration" in text, "experiment tags are shown"
    screenshot(page, "experiments")


def test_runs_page_shows_the_runs_of_the_course(page, ui, course_experiment):
    open_page(
        page, ui, f"#/experiments/{course_experiment.experiment_id}/runs",
        "linear-regression-baseline",
    )  # fmt: skip
    text = body(page)
    for run_name in ("linear-regression-baseline", "a-failing-run", "ridge", "ridge-tuning",
                     "ridge-pipeline", "ridge-route-zones"):  # fmt: skip
        assert run_name in text, run_name
    assert "duration-pipeline" in text, "the Models column names the logged models"
    screenshot(page, "runs")


def test_run_page_shows_tag_params_metrics_and_model(page, ui, client, course_experiment):
    run = run_by_name(client, course_experiment, "ridge-pipeline")
    path = f"#/experiments/{course_experiment.experiment_id}/runs/{run.info.run_id}"
    open_page(page, ui, path, "ridge-pipeline")
    page.get_by_text("developer", exact=True).first.wait_for(timeout=WAIT_MS)
    text = body(page)
    assert "developer" in text and "alice" in text
    rows = [row.split("\n") for row in page.locator("[role=row], tr").all_inner_texts()]
    for param, value in run.data.params.items():
        assert [param, value] in rows, f"parameter {param} = {value} has its own row"
    [metric] = [row for row in rows if row[0] == "rmse"]
    assert float(metric[1]) == run.data.metrics["rmse"], "the stored value, all its digits"
    assert metric[2:] == ["duration-pipeline"], "the metric row links the logged model"
    assert "green-2021-01" in text, "the training dataset is shown (lineage)"
    assert "Finished" in text
    screenshot(page, "run")


def test_compare_view_shows_the_tuning_trials(page, ui, client, course_experiment):
    parent = run_by_name(client, course_experiment, "ridge-tuning")
    trials = client.search_runs(
        [course_experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(trials) == 20
    runs = urllib.parse.quote(json.dumps([t.info.run_id for t in trials]))
    experiments = urllib.parse.quote(json.dumps([course_experiment.experiment_id]))
    open_page(page, ui, f"#/compare-runs?runs={runs}&experiments={experiments}",
              "Comparing 20 Runs from 1 Experiment")  # fmt: skip
    text = body(page)
    assert "Parallel Coordinates Plot" in text
    assert "trial-00" in text and "trial-19" in text
    screenshot(page, "compare-trials")


def test_registry_shows_the_champion_alias(page, ui, client):
    champion = client.get_model_version_by_alias("nyc-taxi-duration", "champion")
    open_page(page, ui, "#/models/nyc-taxi-duration", "nyc-taxi-duration")
    page.get_by_text("champion").first.wait_for(timeout=WAIT_MS)
    text = body(page)
    assert f"Version {champion.version}" in text
    assert "champion" in text
    assert "Predicts a green-taxi trip's duration" in text, "the description is shown"
    screenshot(page, "registry")


def test_the_pictures_the_docs_show_exist():
    """The README and notebooks show these (regenerate them: see the module docstring)."""
    images = Path(__file__).resolve().parents[1] / "docs" / "images"
    for name in ("experiments", "runs", "run", "compare-trials", "registry"):
        assert (images / f"{name}.png").stat().st_size > 10_000, name
