"""The MLflow UI, started the README's way on the store the notebooks left, in a real browser.

What a learner does and checks, done and checked on the page itself. MLflow 3.17's UI opens
in its *GenAI* mode (no registry in the side bar, an Assistant panel, pop-ups over the
pages); notebook 01 tells the learner to switch to *Model training* with the switch at the
top left and to close the pop-ups. The ``learner`` fixture does exactly that, by clicking,
in one browser whose storage lasts between tabs, as a learner's does; every other test then
opens its page in a new tab of that browser and checks that nothing covers it. Then: the
course's experiments are listed, the runs table shows the runs, ticked runs compare, a run
page shows the ``developer`` tag, parameters, metrics and the model, the experiment lists
its logged models, the tuning trials compare side by side, and the registered model
carries the ``champion`` alias. Headless Debian Chromium, driven by Playwright (which
never downloads a browser of its own here).

    COURSE_SCREENSHOTS=docs/images python -m pytest tests/test_ui_browser.py

also saves the pictures the README and the notebooks show, as a learner sees the pages
(1280x800), with the control the course points at outlined where a picture is about it. The
notebooks then run in JupyterLab first, as a learner's do (about 8 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from pathlib import Path

import mlflow
import pytest
from browser import chromium
from jupyterlab_session import LAB_VIEWPORT, jupyter_lab, run_all_cells
from notebook_runs import NOTEBOOKS
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from helpers.server import MlflowServer, free_port

SCREENSHOTS = os.environ.get("COURSE_SCREENSHOTS")
WAIT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 800}  # a laptop's window: the pictures stay readable
MODE_KEY = "mlflow.workflowType_v1"  # where the UI remembers the mode, in the browser
PICTURES = {  # the pictures the README and the notebooks show
    "experiments": "the course's experiments (01, 02)",
    "runs": "the runs table (03-08)",
    "run": "a run page (03, 07)",
    "compare-trials": "the 20 tuning trials compared (05)",
    "registry": "the registered model and its champion alias (08)",
    "ui-first-open": "what opens first: GenAI mode, the switch and the Assistant (01)",
    "ui-compare": "Model training mode: the side bar, ticked runs, Compare (01)",
    "ui-logged-models": "the experiment's logged models (01, 07)",
    "ui-registry": "the Model registry page (01, 08)",
    "ui-system-metrics": "a run's System metrics tab, a chart per metric (06)",
    "ui-traces": "the Traces page of the served model's calls (11)",
}
PICTURE_MAX_BYTES = 250_000

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def course_store(request, tmp_path_factory, browser) -> Path:
    """The folder where every notebook has run once, in order: its ``mlflow.db`` is shown.

    For the pictures (COURSE_SCREENSHOTS), the notebooks run in JupyterLab, as a learner's
    do, so that a run's source on its page is its notebook, not the headless executor's
    ``ipykernel_launcher.py``. Otherwise the store of the nbval run is reused (faster).
    """
    if not SCREENSHOTS:
        folder, first_run, _ = request.getfixturevalue("executed_course")
        if first_run.returncode != 0:
            pytest.fail("the notebooks did not run, so there is nothing to show")
        return folder
    folder = tmp_path_factory.mktemp("lab")
    # CI runs as root; the pictures show a learner's login as the runs' creator.
    with jupyter_lab(folder, login="learner") as (url, token):
        page = browser.new_page(viewport=LAB_VIEWPORT)  # the module's browser
        for notebook in NOTEBOOKS:
            run_all_cells(page, url, token, folder / "notebooks" / notebook.name)
        page.close()
    return folder / "notebooks"


@pytest.fixture(scope="module")
def ui(course_store):
    """``mlflow ui --backend-store-uri sqlite:///mlflow.db`` in the notebooks' folder."""
    with MlflowServer.start(ui=True, folder=course_store, port=free_port(5000)) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def learner(browser, ui):
    """A learner's browser after following notebook 01's advice, done by clicking.

    Its storage (where the UI remembers the mode and the closed panels) is shared by its
    tabs and lasts until the module ends, as in a learner's browser.
    """
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    try:
        follow_the_advice(page, ui)
        page.close()
        yield context
    finally:
        context.close()


def follow_the_advice(page, ui) -> None:
    """Open the UI, switch to Model training, close the pop-ups; assert each step took."""
    page.goto(f"{ui.url}/")  # the address the README and notebook 01 give
    page.get_by_text("Welcome to MLflow", exact=True).wait_for(timeout=WAIT_MS)
    assert stored_mode(page) is None, "a new browser: the UI has chosen no mode yet"
    assistant = assistant_panel(page)
    assistant.wait_for(timeout=WAIT_MS)
    assert_mode(page, "GenAI")
    page.wait_for_timeout(1000)  # let the page settle before the picture
    switch = page.get_by_role("button", name="Model training", exact=True)
    close_assistant = assistant.get_by_role("button", name="Close", exact=True)
    screenshot(page, "ui-first-open", outline=[switch, close_assistant])

    # Opened in GenAI mode, an experiment shows a traces overview behind a pop-up.
    sidebar(page).get_by_role("link", name="Experiments", exact=True).click()
    experiment_link(page, "nyc-taxi-experiment").click()
    guidance = page.get_by_role("dialog").filter(has_text="Detect Issues in Your Traces")
    guidance.wait_for(timeout=WAIT_MS)
    assert "/overview" in page.url, "GenAI mode opens an experiment on its overview"
    guidance.get_by_role("button", name="Close guidance").click()
    guidance.wait_for(state="hidden", timeout=WAIT_MS)

    close_assistant.click()
    assistant.wait_for(state="hidden", timeout=WAIT_MS)

    switch.click()
    page.get_by_role("heading", name="Runs", exact=True).wait_for(timeout=WAIT_MS)
    assert "workflowType=machine_learning" in page.url, "the switch changed the mode"
    assert stored_mode(page) == "machine_learning", "the browser remembers the choice"
    assert_mode(page, "Model training")
    for link in ("Runs", "Models", "Model registry"):
        assert sidebar(page).get_by_role("link", name=link, exact=True).is_visible(), link

    # The registry greets a first visit with a modal about its new look.
    sidebar(page).get_by_role("link", name="Model registry", exact=True).click()
    promotion = page.get_by_role("dialog").filter(has_text="new Model Registry UI")
    promotion.wait_for(timeout=WAIT_MS)
    promotion.get_by_role("button", name="Close", exact=True).click()
    promotion.wait_for(state="hidden", timeout=WAIT_MS)
    model = page.get_by_text("nyc-taxi-duration", exact=True).first
    try:
        model.wait_for(timeout=WAIT_MS)
    except PlaywrightTimeoutError:  # once in CI, on a loaded machine: the list never came
        page.reload()  # what a learner does then; the model must be listed this time
        model.wait_for(timeout=WAIT_MS)


def sidebar(page):
    return page.get_by_role("navigation").first


def experiment_link(page, name: str):
    """An experiment's link in the experiments table (not a breadcrumb of the page before)."""
    return page.locator("a[data-testid=experiment-list-item-link]", has_text=name)


def assistant_panel(page):
    """The MLflow Assistant panel: the box that holds its title and its close button (the
    round button that opens the panel again carries the title too, as a hidden label)."""
    title = page.locator("span:not(.assistant-fab-label)", has_text="MLflow Assistant")
    return (
        page.locator("div", has=title)
        .filter(has=page.get_by_role("button", name="Close", exact=True))
        .last
    )


def stored_mode(page) -> str | None:
    value = page.evaluate(f"localStorage.getItem('{MODE_KEY}')")
    return None if value is None else json.loads(value)


def assert_mode(page, mode: str) -> None:
    """The side bar of each mode: GenAI's has Prompts and no registry; Model training's the
    reverse (outside an experiment: Home, Experiments, Model registry)."""
    links = sidebar(page).get_by_role("link")
    names = [name.strip() for name in links.all_inner_texts()]
    if mode == "GenAI":
        assert "Prompts" in names and "Model registry" not in names, names
    else:
        assert "Model registry" in names and "Prompts" not in names, names


@pytest.fixture
def page(learner):
    """A new tab in the learner's browser."""
    page = learner.new_page()
    yield page
    page.close()


@pytest.fixture(scope="module")
def client(ui):
    return mlflow.MlflowClient(ui.url)


@pytest.fixture(scope="module")
def course_experiment(client):
    return client.get_experiment_by_name("nyc-taxi-experiment")


def open_page(page, ui, path: str, ready_text: str):
    """Open a UI address, wait until ``ready_text`` is on it, and check nothing covers it."""
    page.goto(f"{ui.url}/{path}")
    page.get_by_text(ready_text, exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # let charts and tables settle before reading or a picture
    assert_nothing_covers(page)


def assert_nothing_covers(page) -> None:
    """Model training mode, no pop-up, modal or Assistant panel over the page."""
    assert_mode(page, "Model training")
    assert not page.locator("[role=dialog]:visible, [role=alertdialog]:visible").count(), (
        page.locator("[role=dialog]:visible").all_inner_texts()
    )
    assert not assistant_panel(page).is_visible(), "the Assistant panel is closed"


def screenshot(page, name: str, outline=()) -> None:
    """Save the page as docs' picture ``name`` (with COURSE_SCREENSHOTS), ``outline``d."""
    if not SCREENSHOTS:
        return
    assert name in PICTURES, f"add {name} to PICTURES"
    style = "3px solid #e8590c"  # orange: stands out from MLflow's blues and greys
    for locator in outline:
        locator.evaluate(f"e => {{ e.style.outline = '{style}'; e.style.outlineOffset = '2px'; }}")
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))
    for locator in outline:
        locator.evaluate("e => { e.style.outline = ''; e.style.outlineOffset = ''; }")


def body(page) -> str:
    return page.inner_text("body")


def table_rows(page) -> list[list[str]]:
    """Every table row on the page, as the list of its cells' texts."""
    return [row.split("\n") for row in page.locator("[role=row], tr").all_inner_texts()]


def run_by_name(client, experiment, name):
    [run] = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.runName = '{name}'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    return run


def test_the_mode_chosen_with_the_switch_is_remembered(page, ui):
    """A new tab, at an address that names no mode, and after a reload: Model training."""
    page.goto(f"{ui.url}/#/experiments")
    experiment_link(page, "nyc-taxi-experiment").wait_for(timeout=WAIT_MS)
    assert "workflowType" not in page.url
    assert stored_mode(page) == "machine_learning"
    assert_nothing_covers(page)
    page.reload()
    experiment_link(page, "nyc-taxi-experiment").wait_for(timeout=WAIT_MS)
    assert_nothing_covers(page)
    for link in ("Home", "Experiments", "Model registry"):
        assert sidebar(page).get_by_role("link", name=link, exact=True).is_visible(), link
    experiment_link(page, "nyc-taxi-experiment").click()
    page.get_by_role("heading", name="Runs", exact=True).wait_for(timeout=WAIT_MS)
    assert "/runs" in page.url, "in Model training mode an experiment opens on its runs"
    assert_nothing_covers(page)


def test_experiments_page_lists_the_course_experiments(page, ui):
    open_page(page, ui, "#/experiments", "nyc-taxi-experiment")
    text = body(page)
    # Not my-first-experiment: 02's solution makes it, and Run All never runs a solution.
    for name in ("nyc-taxi-experiment", "nyc-taxi-homework", "Default"):
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


def test_ticked_runs_compare(page, ui, course_experiment):
    """Notebook 01's way to compare: tick runs in the table, press Compare."""
    open_page(
        page, ui, f"#/experiments/{course_experiment.experiment_id}/runs", "ridge-route-zones"
    )
    ticked = ("ridge", "ridge-pipeline", "ridge-route-zones")
    for name in ticked:
        row = page.get_by_role("row").filter(has=page.get_by_text(name, exact=True))
        row.get_by_role("checkbox").first.check()
    compare = page.get_by_role("button", name="Compare", exact=True)
    page.wait_for_timeout(500)
    screenshot(page, "ui-compare", outline=[compare])
    compare.click()
    page.get_by_text("Comparing 3 Runs from 1 Experiment").wait_for(timeout=WAIT_MS)
    text = body(page)
    for name in ticked:
        assert name in text, name


def test_run_page_shows_tag_params_metrics_and_model(page, ui, client, course_experiment):
    run = run_by_name(client, course_experiment, "ridge-pipeline")
    path = f"#/experiments/{course_experiment.experiment_id}/runs/{run.info.run_id}"
    open_page(page, ui, path, "ridge-pipeline")
    page.get_by_text("developer", exact=True).first.wait_for(timeout=WAIT_MS)
    text = body(page)
    assert "developer" in text and "alice" in text
    rows = table_rows(page)
    for param, value in run.data.params.items():
        assert [param, value] in rows, f"parameter {param} = {value} has its own row"
    [metric] = [row for row in rows if row[0] == "rmse"]
    assert float(metric[1]) == run.data.metrics["rmse"], "the stored value, all its digits"
    assert metric[2:] == ["duration-pipeline"], "the metric row links the logged model"
    assert "green-2021-01" in text, "the training dataset is shown (lineage)"
    assert "Finished" in text
    source = Path(run.data.tags["mlflow.source.name"]).name
    assert source in text, "the run's source"
    if SCREENSHOTS:  # made in JupyterLab: the picture shows what a learner's run page shows
        assert source == "07_model_management.ipynb"
        assert run.data.tags["mlflow.user"] == "learner" and "learner" in text, "created by"
    screenshot(page, "run")


def test_experiment_lists_its_logged_models(page, ui, client, course_experiment):
    open_page(
        page, ui, f"#/experiments/{course_experiment.experiment_id}/runs", "ridge-route-zones"
    )
    sidebar(page).get_by_role("link", name="Models", exact=True).click()
    page.get_by_role("heading", name="Models", exact=True).wait_for(timeout=WAIT_MS)
    page.get_by_text("duration-pipeline", exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    assert_nothing_covers(page)
    text = body(page)
    models = client.search_logged_models([course_experiment.experiment_id])
    assert models, "the notebooks logged models"
    for model in models:
        assert model.name in text, model.name
        source_run = client.get_run(model.source_run_id).info.run_name
        assert source_run in text, f"{model.name} links its run {source_run}"
    screenshot(page, "ui-logged-models")


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


def test_registry_lists_the_models_with_their_aliases(page, ui, client):
    """Reached by the side bar's Model registry link; its modal was closed once, for good."""
    open_page(page, ui, "#/experiments", "nyc-taxi-experiment")
    sidebar(page).get_by_role("link", name="Model registry", exact=True).click()
    page.get_by_role("heading", name="Registered Models").wait_for(timeout=WAIT_MS)
    page.get_by_text("nyc-taxi-duration", exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    assert_nothing_covers(page)
    rows = [row.split("\n") for row in page.get_by_role("row").all_inner_texts()]
    for model in client.search_registered_models():
        champion = client.get_model_version_by_alias(model.name, "champion")
        [row] = [" ".join(row) for row in rows if model.name in row]
        assert f"champion : Version {champion.version}" in row, row
    screenshot(page, "ui-registry")


def test_registry_shows_the_champion_alias(page, ui, client):
    champion = client.get_model_version_by_alias("nyc-taxi-duration", "champion")
    open_page(page, ui, "#/models/nyc-taxi-duration", "nyc-taxi-duration")
    page.get_by_text("champion").first.wait_for(timeout=WAIT_MS)
    text = body(page)
    assert f"Version {champion.version}" in text
    assert "champion" in text
    assert "Predicts a green-taxi trip's duration" in text, "the description is shown"
    screenshot(page, "registry")


def test_evaluation_run_page_shows_the_gates_evidence(page, ui, client, course_experiment):
    """08's evaluation of the champion on March, found where 08's prose says: the run's
    metrics linked to the model, the model, March's data, no artifacts; and on the logged
    model's page the same metrics, with the run and dataset each came from."""
    run = run_by_name(client, course_experiment, "evaluate-champion-on-march")
    [dataset] = [entry.dataset for entry in run.inputs.dataset_inputs]
    path = f"#/experiments/{course_experiment.experiment_id}/runs/{run.info.run_id}"
    open_page(page, ui, path, "evaluate-champion-on-march")
    page.get_by_text("root_mean_squared_error", exact=True).first.wait_for(timeout=WAIT_MS)
    text = body(page)
    metrics = run.data.metrics
    assert "root_mean_squared_error" in metrics and "mean_absolute_error" in metrics
    assert f"Metrics ({len(metrics)})" in text
    rows = table_rows(page)
    for name, value in metrics.items():
        [row] = [row for row in rows if row[0] == name]
        assert float(row[1]) == value and row[2] == "duration-pipeline", row
    assert "Logged models (1)" in text
    assert f"{dataset.name} ({dataset.digest})" in text, "March's data, named, with its digest"
    page.get_by_role("tab", name="Artifacts", exact=True).click()
    page.get_by_text("No Artifacts Recorded", exact=True).wait_for(timeout=WAIT_MS)

    page.get_by_role("tab", name="Overview", exact=True).click()
    page.get_by_role("link", name="duration-pipeline", exact=True).last.click()
    page.get_by_text("About this logged model", exact=True).wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    assert_nothing_covers(page)
    text = body(page)
    model = client.get_logged_model(page.url.rsplit("/", 1)[-1])
    assert model.model_id in text and model.name == "duration-pipeline"
    versions = client.search_model_versions(f"run_id = '{model.source_run_id}'")
    assert [v.name for v in versions] == ["nyc-taxi-duration"], "it is a registered version"
    assert "Not registered" in text, "yet its page says so (08's prose warns)"
    rows = table_rows(page)
    evaluated = [row for row in rows if row[2:3] == ["evaluate-champion-on-march"]]
    by_name: dict[str, list[list[str]]] = {}
    for row in evaluated:
        by_name.setdefault(row[0], []).append(row)
    assert set(by_name) == set(metrics)
    for name, value in metrics.items():
        assert len(by_name[name]) == 2, "listed twice, as 08's prose warns"
        for row in by_name[name]:
            assert row[1] == f"{dataset.name} (#{dataset.digest})" and float(row[3]) == value


def test_run_page_shows_the_system_metrics_tab(page, ui, client, course_experiment):
    """06's run with ``log_system_metrics=True``: its System metrics tab counts the metrics it
    logged and draws them, CPU first, each chart's legend naming the run and the metric."""
    run = run_by_name(client, course_experiment, "ridge-system-metrics")
    system = sorted(name for name in run.data.metrics if name.startswith("system/"))
    assert "system/cpu_utilization_percentage" in system, system
    path = f"#/experiments/{course_experiment.experiment_id}/runs/{run.info.run_id}"
    open_page(page, ui, path, "ridge-system-metrics")
    tab = page.get_by_role("tab", name="System metrics", exact=True)
    tab.click()
    legend = f"ridge-system-metrics ({system[0]})"
    page.get_by_text(legend, exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # let the charts draw
    assert_nothing_covers(page)
    text = body(page)
    assert re.search(rf"System metrics\s*\({len(system)}\)", text), "a chart per metric, counted"
    assert page.locator("svg path").count() > 0, "the charts are drawn"
    search = page.get_by_placeholder("Search metric charts")
    screenshot(page, "ui-system-metrics", outline=[tab])
    search.fill("memory")  # the charts below the fold, found as a learner finds them
    for name in system:
        if "memory" in name:
            page.get_by_text(f"ridge-system-metrics ({name})", exact=True).wait_for(timeout=WAIT_MS)


def test_traces_page_lists_the_calls_to_the_served_model(page, ui, client):
    """11's calls of its traced ``post``: the experiment nyc-taxi-serving has no runs, and its
    Traces page, reached by the side bar, shows one row per call with its request and answer."""
    serving = client.get_experiment_by_name("nyc-taxi-serving")
    traces = client.search_traces(locations=[serving.experiment_id])
    assert traces, "notebook 11 traced its calls"
    open_page(page, ui, f"#/experiments/{serving.experiment_id}/runs", "No runs logged")
    link = sidebar(page).get_by_role("link", name="Traces", exact=True)
    link.click()
    page.get_by_text(f"{len(traces)} of {len(traces)}", exact=True).wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    assert_nothing_covers(page)
    assert "/traces" in page.url
    text = body(page)
    for column in ("Input", "Output", "Duration", "State"):
        assert column in text, column
    assert text.count('{"body": {"dataframe_') == len(traces), "each call's request"
    assert text.count('"predictions"') >= 1 and '"error_code"' in text, "each call's answer"
    assert text.count("OK") >= len(traces), "each call returned"
    screenshot(page, "ui-traces", outline=[link])


def test_the_pictures_the_docs_show_exist():
    """The README and notebooks show these (regenerate them: see the module docstring)."""
    images = Path(__file__).resolve().parents[1] / "docs" / "images"
    for name in PICTURES:
        size = (images / f"{name}.png").stat().st_size
        assert 10_000 < size < PICTURE_MAX_BYTES, f"{name}.png: {size} bytes"
