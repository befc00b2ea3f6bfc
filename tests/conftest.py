"""Shared fixtures, and the promise that the tests leave nothing behind.

Every temporary file of the test session (pytest's, MLflow's, the kernels', Chromium's,
PostgreSQL's) goes into one scratch folder, removed at the end. When the session ends,
no process it started may still run, and the machine's temporary folder must hold nothing
new; otherwise the run fails, naming what was left.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package

from notebook_runs import copy_notebooks, git_status, offline_prefix, run_nbval  # noqa: E402

SYSTEM_TMP = Path(tempfile.gettempdir())


def pytest_configure(config):
    scratch = Path(tempfile.mkdtemp(prefix="course-tests-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder here
    config.course_tmp_before = set(os.listdir(SYSTEM_TMP))
    config.course_scratch = scratch
    os.environ["TMPDIR"] = str(scratch)  # for every process the tests start
    tempfile.tempdir = str(scratch)  # for this one


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not hasattr(config, "course_scratch"):
        return
    problems = []
    alive = [p for p in psutil.Process().children(recursive=True) if _running(p)]
    for process in alive:
        problems.append(f"process left running: {process.pid} {' '.join(process.cmdline())}")
        process.kill()
    new = set(os.listdir(SYSTEM_TMP)) - config.course_tmp_before - {config.course_scratch.name}
    problems += [f"file left in {SYSTEM_TMP}: {name}" for name in sorted(new)]
    shutil.rmtree(config.course_scratch, ignore_errors=True)
    if problems:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            reporter.write_line(f"LEFT BEHIND: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
