"""Shared fixtures, and the promise that the tests leave nothing behind.

Every temporary file of the test session (pytest's, MLflow's, the kernels', Chromium's,
PostgreSQL's) goes into one scratch folder, given to every process the session starts as
``TMPDIR``. When the session ends, no process carrying that folder may still run and the
folder may hold nothing but pytest's own ``tmp_path`` folders; otherwise the run fails,
naming what was left (tests/cleanup_guard.py).

With ``COURSE_REQUIRE_ALL_TESTS=1`` (set by .ci/run) a skipped test fails the session: the
browser, PostgreSQL and offline tests must run in CI, however CI is started.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package

from cleanup_guard import files_left_in, processes_marked_with  # noqa: E402
from notebook_runs import copy_notebooks, git_status, offline_prefix, run_nbval  # noqa: E402

REQUIRE_ALL = os.environ.get("COURSE_REQUIRE_ALL_TESTS") == "1"


def pytest_configure(config):
    scratch = Path(tempfile.mkdtemp(prefix="course-tests-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder here
    config.course_scratch = scratch
    os.environ["TMPDIR"] = str(scratch)  # for every process the tests start
    tempfile.tempdir = str(scratch)  # for this one


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not hasattr(config, "course_scratch"):
        return
    scratch = config.course_scratch
    left = []
    for process in processes_marked_with(scratch):
        try:
            left.append(f"process still running: {process.pid} {' '.join(process.cmdline())}")
            process.kill()
        except Exception:  # it ended meanwhile
            pass
    left += [f"file in the session's temporary folder: {name}" for name in files_left_in(scratch)]
    shutil.rmtree(scratch, ignore_errors=True)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    not_run = [report.nodeid for report in skipped] if REQUIRE_ALL else []
    for problem in left:
        reporter.write_line(f"LEFT BEHIND: {problem}", red=True)
    for nodeid in not_run:
        reporter.write_line(f"SKIPPED, but COURSE_REQUIRE_ALL_TESTS=1: {nodeid}", red=True)
    if left or not_run:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
