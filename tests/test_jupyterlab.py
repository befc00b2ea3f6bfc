"""The notebooks run clean in JupyterLab itself, in a real browser, as a learner runs them.

nbval runs the notebooks through a headless executor; learners use JupyterLab. This test
starts ``jupyter lab`` the README's way (from the course folder, on 127.0.0.1, with a token),
opens each notebook in Debian's Chromium, closes the news pop-up as a learner would, sees the
solutions collapsed, clears the stored outputs, runs all cells, saves, and reads the saved
notebook: every cell ran, no cell wrote an error, to stderr, or a ``[FAIL]``, and every
solution passed its check. Then the tracking store must say that
the runs came from the notebooks' files.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from browser import chromium
from notebook_runs import NOTEBOOKS

from helpers.server import free_port

pytestmark = pytest.mark.notebooks
RUN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` in a scratch copy of the course; yields (folder, base URL, token)."""
    folder = tmp_path_factory.mktemp("lab")
    (folder / "notebooks").mkdir()
    for notebook in NOTEBOOKS:
        shutil.copy2(notebook, folder / "notebooks" / notebook.name)
    port, token = free_port(8888), secrets.token_hex(16)
    settings = folder / ".jupyter-settings"  # a new learner's settings: the pop-up shows
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the page
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
               "--port", str(port), f"--IdentityProvider.token={token}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; a learner does not
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_RUNTIME_DIR": str(folder / ".jupyter-runtime")}  # fmt: skip
    log = open(folder / "jupyterlab.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/api/status?token={token}", server, folder)
        yield folder, url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_for(url: str, server: subprocess.Popen, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, (folder / "jupyterlab.log").read_text()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer: {(folder / 'jupyterlab.log').read_text()}")


@pytest.fixture(scope="module")
def page(lab):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        yield page
        page.close()


def run_all_cells(page, url: str, token: str, notebook: Path) -> None:
    """Open ``notebook``, clear its outputs, run every cell, wait for the end, save."""
    # ?reset: a fresh workspace, so the notebooks opened before are not reopened beside it.
    page.goto(f"{url}/lab/tree/notebooks/{notebook.name}?reset&token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=RUN_TIMEOUT_MS)
    # The status bar says "Python 3 (ipykernel) | Idle" once the kernel has started and
    # connected; cells run before that are not sent to it.
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=RUN_TIMEOUT_MS)
    no_news = page.locator(".jp-Notification-Toast button", has_text="No")
    if no_news.count():  # "Would you like to get notified about official Jupyter news?"
        no_news.first.click()
    # Solutions open collapsed: JupyterLab shows a placeholder bar instead of their code.
    hidden = [c for c in cells(notebook) if c["metadata"].get("jupyter", {}).get("source_hidden")]
    collapsed = page.locator(".jp-CodeCell .jp-InputPlaceholder")
    assert collapsed.count() == len(hidden), f"{notebook.name}: {collapsed.count()} collapsed"
    if hidden:  # as a learner who opens them; a collapsed cell shows no execution count
        menu(page, "View", "Expand All Code")
        collapsed.first.wait_for(state="detached")
    menu(page, "Edit", "Clear Outputs of All Cells")
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    expected = len([c for c in cells(notebook) if c["cell_type"] == "code"])
    menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    retry_at = time.monotonic() + 60
    while time.monotonic() < deadline:
        texts = prompts.all_inner_texts()
        if time.monotonic() > retry_at and all(t == "[ ]:" for t in texts):
            menu(page, "Run", "Run All Cells")  # the click came before the page could take it
            retry_at = deadline
        if len(texts) == expected and all(t.strip("[]: ").isdigit() for t in texts):
            break
        page.wait_for_timeout(500)
    else:
        raise AssertionError(f"{notebook.name}: not every cell ran: {prompts.all_inner_texts()}")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)  # the save request to finish


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def test_every_notebook_runs_clean_in_jupyterlab(lab, page):
    folder, url, token = lab
    problems = []
    for original in NOTEBOOKS:
        saved = folder / "notebooks" / original.name
        run_all_cells(page, url, token, saved)
        for cell in cells(saved):
            if cell["cell_type"] != "code":
                continue
            start = "".join(cell["source"])[:50]
            if cell["execution_count"] is None:
                problems.append(f"{saved.name}: not run: {start}")
            for output in cell["outputs"]:
                text = json.dumps(output)
                if output["output_type"] == "error" or output.get("name") == "stderr":
                    problems.append(f"{saved.name}: {output['output_type']} in {start}: {text}")
                if "[FAIL]" in text:
                    problems.append(f"{saved.name}: [FAIL] in {start}")
            solution = cell["metadata"].get("jupyter", {}).get("source_hidden")
            if solution and "check_" in "".join(cell["source"]):
                verdict = "".join("".join(o.get("text", "")) for o in cell["outputs"])
                if "Correct: " not in verdict:
                    problems.append(f"{saved.name}: a solution fails its check: {verdict}")
    assert problems == []


def test_runs_made_in_jupyterlab_name_their_notebook(lab):
    """The lessons say a run records the notebook it came from (``mlflow.source.name``)."""
    folder, _, _ = lab
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'notebooks' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nyc-taxi-experiment")
    for run_name, notebook in [("linear-regression-baseline", "03_start_run.ipynb"),
                               ("ridge", "04_set_tag.ipynb"),
                               ("ridge-pipeline", "07_model_management.ipynb")]:  # fmt: skip
        [run] = client.search_runs(
            [experiment.experiment_id], f"tags.mlflow.runName = '{run_name}'", max_results=1
        )
        assert run.data.tags["mlflow.source.type"] == "NOTEBOOK"
        assert Path(run.data.tags["mlflow.source.name"]).name == notebook, run.data.tags
