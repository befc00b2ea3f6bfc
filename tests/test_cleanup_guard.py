"""The session's clean-up guard fails on a real leak, and only on the session's own leaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cleanup_guard import files_left_in, processes_marked_with

TESTS = Path(__file__).parent


def start_orphan(tmpdir: Path) -> int:
    """Start a sleeper whose parent exits at once (so it is re-parented); return its pid."""
    spawn = (
        "import subprocess as s; "
        "print(s.Popen(['sleep', '60'], stdout=s.DEVNULL, stderr=s.DEVNULL).pid)"
    )
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    out = subprocess.run([sys.executable, "-c", spawn], env=env, capture_output=True, text=True)
    return int(out.stdout)


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX sleep")
def test_an_orphaned_process_of_the_session_is_found_and_a_foreign_one_is_not(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(), theirs.mkdir()
    orphan, foreign = start_orphan(ours), start_orphan(theirs)
    try:
        found = [p.pid for p in processes_marked_with(ours)]
        assert orphan in found
        assert foreign not in found
    finally:
        for pid in (orphan, foreign):
            os.kill(pid, 9)


def test_files_left_are_named_but_pytest_folders_are_not(tmp_path):
    (tmp_path / "pytest-of-learner").mkdir()
    (tmp_path / "mlflow-leftover").mkdir()
    (tmp_path / "tmp1234.db").write_text("")
    assert files_left_in(tmp_path) == ["mlflow-leftover", "tmp1234.db"]


def run_session(folder: Path, test_code: str, **env: str) -> subprocess.CompletedProcess:
    """Run a small pytest session in ``folder`` with the course's conftest and guard."""
    for name in ("conftest.py", "cleanup_guard.py", "notebook_runs.py"):
        shutil.copy(TESTS / name, folder / name)
    (folder / "test_sample.py").write_text(textwrap.dedent(test_code))
    # This session may run with every test required (CI); the small one decides for itself.
    outer = {k: v for k, v in os.environ.items() if k != "COURSE_REQUIRE_ALL_TESTS"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=folder, env={**outer, **env}, capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX sleep")
def test_a_session_that_leaves_a_process_fails(tmp_path):
    leaking = """
        import subprocess
        def test_starts_a_server_and_forgets_it():
            subprocess.Popen(["sleep", "60"])
    """
    result = run_session(tmp_path, leaking)
    assert result.returncode == 1, result.stdout
    assert "LEFT BEHIND: process still running" in result.stdout
    assert "sleep 60" in result.stdout


def test_a_session_that_leaves_a_temporary_file_fails_and_a_clean_one_passes(tmp_path):
    leaking = """
        import tempfile
        def test_forgets_a_file():
            tempfile.mkstemp(prefix="forgotten-")
    """
    result = run_session(tmp_path, leaking)
    assert result.returncode == 1 and "forgotten-" in result.stdout, result.stdout
    clean = """
        import tempfile
        def test_cleans_up():
            with tempfile.TemporaryDirectory():
                pass
    """
    assert run_session(tmp_path, clean).returncode == 0


def test_a_skip_fails_the_session_only_when_every_test_is_required(tmp_path):
    skipping = """
        import pytest
        def test_needs_a_browser():
            pytest.skip("no Chromium")
    """
    assert run_session(tmp_path, skipping).returncode == 0
    required = run_session(tmp_path, skipping, COURSE_REQUIRE_ALL_TESTS="1")
    assert required.returncode == 1
    assert "SKIPPED, but COURSE_REQUIRE_ALL_TESTS=1" in required.stdout
