"""Shared fixtures. tests/ is not a package, so its helper modules are put on the path."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notebook_runs import copy_notebooks, git_status, offline_prefix, run_nbval  # noqa: E402


@pytest.fixture(scope="session")
def executed_course(tmp_path_factory):
    """A scratch folder where every notebook has run once, in order, under strict nbval.

    Returns (folder, first run's result, git status before it). The twice-in-a-row test
    runs them a second time there; the browser tests open the MLflow UI on the store they
    leave, as a learner would.
    """
    folder = tmp_path_factory.mktemp("course")
    before = git_status()
    copies = copy_notebooks(folder)
    return folder, run_nbval(folder, copies, offline=offline_prefix() is not None), before
