"""Shared fixtures, and the promise that the tests leave nothing behind.

Every temporary file of the test session (pytest's, MLflow's, the kernels', Chromium's,
PostgreSQL's) goes into one scratch folder, given to every process the session starts as
``TMPDIR``. When the session ends, no process carrying that folder may still run and the
folder may hold nothing but pytest's own ``tmp_path`` folders; otherwise the run fails,
naming what was left (tests/cleanup_guard.py).

With ``COURSE_REQUIRE_ALL_TESTS=1`` (set by .ci/run) every collected test must run and pass:
a skipped, xfailed or xpassed test fails the session. The browser, PostgreSQL and offline
tests must run in CI, however CI is started, and a test marked "expected to fail" proves
nothing there either. (A test that meets a missing dependency says so with ``pytest.skip``,
never with a bare ``return``, which would pass: tests/test_suite_honesty.py checks that.)
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package

from cleanup_guard import (  # noqa: E402
    UnreadableProcess,
    describe,
    end,
    files_left_in,
    processes_marked_with,
)
from notebook_runs import copy_notebooks, git_status, offline_prefix, run_nbval  # noqa: E402

REQUIRE_ALL = os.environ.get("COURSE_REQUIRE_ALL_TESTS") == "1"
NOT_RUN_TO_A_PASS = ("skipped", "xfailed", "xpassed")
"""Outcomes that pass a session yet prove nothing: each fails it when every test is required."""


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
    left = [f"file in the session's temporary folder: {name}" for name in files_left_in(scratch)]
    try:
        processes = processes_marked_with(scratch)
    except UnreadableProcess as error:
        processes, left = [], [*left, str(error)]
    left = [f"process still running: {describe(p)}" for p in processes] + left
    end(processes)
    shutil.rmtree(scratch, ignore_errors=True)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    not_run = not_run_to_a_pass(reporter.stats if reporter else {}) if REQUIRE_ALL else []
    if left or not_run:
        reporter.write_sep("=", "what this session left behind or did not prove", red=True)
    for problem in left:
        reporter.write_line(f"LEFT BEHIND: {problem}", red=True)
    for outcome, nodeid in not_run:
        message = f"{outcome.upper()}, but COURSE_REQUIRE_ALL_TESTS=1: {nodeid}"
        reporter.write_line(message, red=True)
    if left or not_run:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def not_run_to_a_pass(stats: dict[str, list]) -> list[tuple[str, str]]:
    """(outcome, test id) of every test that was skipped, xfailed or xpassed."""
    return [
        (outcome, report.nodeid)
        for outcome in NOT_RUN_TO_A_PASS
        for report in stats.get(outcome, [])
    ]


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
