"""The notebooks run clean in JupyterLab itself, in a real browser, as a learner runs them.

nbval runs the notebooks through a headless executor; learners use JupyterLab. This test
starts ``jupyter lab`` the README's way (from the course folder, on 127.0.0.1, with a token),
opens each notebook in Debian's Chromium, closes the news pop-up as a learner would, sees the
solutions folded and opens one, clears the stored outputs, runs all cells, saves, and reads the
saved notebook: every cell ran, no cell wrote an error, to stderr, or a ``[FAIL]``, every answer
cell shows its "Not yet" hint and nothing says "Correct: " (Run All runs no solution, so saving
after it reveals none; tests/test_solutions.py proves the solutions pass). Then the tracking
store must say that the runs came from the notebooks' files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest
from browser import chromium
from jupyterlab_session import LAB_VIEWPORT, cells, jupyter_lab, run_all_cells
from notebook_runs import NOTEBOOKS

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` in a scratch copy of the course; yields (folder, base URL, token)."""
    folder = tmp_path_factory.mktemp("lab")
    with jupyter_lab(folder) as (url, token):
        yield folder, url, token


@pytest.fixture(scope="module")
def page(lab):
    with chromium() as browser:
        page = browser.new_page(viewport=LAB_VIEWPORT)
        yield page
        page.close()


def test_every_notebook_runs_clean_in_jupyterlab(lab, page):
    folder, url, token = lab
    problems = []
    for original in NOTEBOOKS:
        saved = folder / "notebooks" / original.name
        run_all_cells(page, url, token, saved)
        answers = 0
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
            printed = "".join("".join(o.get("text", "")) for o in cell["outputs"])
            if "Correct: " in printed:
                problems.append(f"{saved.name}: an answer is shown after Run All: {start}")
            code = "".join(cell["source"])
            if "Write your code here" in code and re.search(r"^check_\w+\(", code, re.M):
                answers += 1  # an answer cell, left empty: its checker gives the hint
                if not printed.startswith("Not yet: "):
                    problems.append(f"{saved.name}: an answer cell without its hint: {printed}")
        if answers < 2:
            problems.append(f"{saved.name}: {answers} answer cells found, at least 2 wanted")
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
