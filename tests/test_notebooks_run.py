"""Every notebook passes strict nbval: alone in an empty folder, and twice in one folder.

Strict means every stored output is compared (after nbval_sanitize.cfg), so a notebook
that runs but prints something else than what a learner reads on GitHub fails here.
"""

from __future__ import annotations

import subprocess

import pytest
from notebook_runs import (
    NOTEBOOKS,
    copy_notebooks,
    git_status,
    offline_prefix,
    report,
    run_nbval,
)

pytestmark = pytest.mark.notebooks
OFFLINE = offline_prefix() is not None
# Notebooks that keep their runs in the course's store, ./mlflow.db: all but 00, which tracks
# nothing, and 10, whose scenario has a store of its own (scenario-3/).
TRACKING_NOTEBOOKS = [nb for nb in NOTEBOOKS if nb.name[:3] not in ("00_", "10_")]
STORE_OF = {"09_": "server.db"}
"""A notebook that logs only through its server never opens mlflow.db: its store is the server's."""


def test_network_isolation_works_in_ci():
    """CI must prove the course offline; a learner's laptop may not be able to."""
    if not OFFLINE:
        pytest.skip(
            "no network namespaces here (util-linux unshare and iproute2 ip): "
            "notebooks run with the network on"
        )
    links = subprocess.run(
        [*offline_prefix(), "ip", "-o", "link"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines()]
    assert names == ["lo"], f"the offline namespace has other interfaces: {names}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_passes_alone_in_an_empty_folder(notebook, tmp_path):
    [copy] = copy_notebooks(tmp_path, [notebook])
    result = run_nbval(tmp_path, [copy], offline=OFFLINE)
    assert result.returncode == 0, report(result)
    assert "passed" in result.stdout
    if notebook in TRACKING_NOTEBOOKS:
        # The store is created next to the notebook, where `mlflow ui` is told to look.
        assert (tmp_path / STORE_OF.get(notebook.name[:3], "mlflow.db")).is_file()


def test_all_notebooks_pass_twice_in_one_folder(executed_course):
    folder, first, before = executed_course
    assert first.returncode == 0, f"first run:\n{report(first)}"
    second = run_nbval(folder, sorted(folder.glob("[0-9][0-9]_*.ipynb")), offline=OFFLINE)
    assert second.returncode == 0, f"second run:\n{report(second)}"
    assert git_status() == before, "running the notebooks changed the working tree"
