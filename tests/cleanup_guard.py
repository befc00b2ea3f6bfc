"""What a test session leaves behind: its processes, and files outside pytest's own folders.

Why: the course starts servers, kernels, browsers and a database. A test that forgets to stop
one leaves a process running on a learner's machine (and a port taken); a helper that forgets
its temporary files fills their disk. The session gives every process it starts one scratch
folder as ``TMPDIR``, so both kinds of leak carry its mark, and nothing else on the machine
(another program writing to the same temporary folder, another test run) is mistaken for one.
A helper may give its own process a folder *inside* the scratch folder as ``TMPDIR`` (the
model server does, to remove its copy of the model when it stops): that is the session's mark
too.

The guard must never go blind quietly: while listing processes it ignores only a process that
ended meanwhile, and one it may not read that cannot be the session's (another user's, or one
older than the session); any other error surfaces.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

PYTEST_FOLDERS = ("pytest-of-",)
"""pytest's own ``tmp_path`` folders, kept on purpose for debugging and removed with scratch."""

SESSION_START = time.time()
"""When the session started, near enough: conftest imports this module before any test runs."""

TEST_MARK = "COURSE_TEST_CHILD"
"""An environment variable a test gives a child program, so it can end all of it afterwards."""


class UnreadableProcess(RuntimeError):
    """A process that may be the session's, whose environment the guard may not read."""


def _another_users(process: psutil.Process) -> bool:
    """True if ``process`` runs as another user (so it cannot carry the session's mark).

    The effective user: a set-user-id program started by us (sudo) is another user's.
    """
    try:
        if hasattr(os, "geteuid"):
            return process.uids().effective != os.geteuid()
        return process.username() != psutil.Process().username()
    except psutil.AccessDenied:  # we may not even see whose it is: not ours
        return True


def _environment(process: psutil.Process, since: float) -> dict[str, str]:
    """The environment of ``process``; empty if it ended or is certainly not the session's.

    Why so narrow: a guard that skips what it cannot read passes a session whose leak it never
    saw. A process we may not read is let pass only when it cannot be the session's: another
    user's, or one started before ``since`` (the session's start), like a container's init or
    an ssh-agent, which make themselves unreadable. Raises :class:`UnreadableProcess` else.
    """
    try:
        return process.environ()
    except psutil.NoSuchProcess:  # it ended meanwhile (ZombieProcess too); kernel threads
        return {}
    except psutil.AccessDenied as error:
        try:
            if _another_users(process) or process.create_time() < since:
                return {}
            command = " ".join(process.cmdline()) or process.name()
        except psutil.NoSuchProcess:
            return {}
        raise UnreadableProcess(
            f"cannot read the environment of process {process.pid} ({command[:200]}), started "
            "during the session by this user: it may be a leak the guard cannot see"
        ) from error


def processes_where(
    matches: Callable[[dict[str, str]], bool], since: float = SESSION_START
) -> list[psutil.Process]:
    """Every running process but this one whose environment ``matches``.

    Finds them even when they were re-parented (their parent died), which a search of this
    process's children would miss. ``since``: see :func:`_environment`.
    """
    found = []
    for process in psutil.process_iter():
        if process.pid != os.getpid() and matches(_environment(process, since)):
            found.append(process)
    return found


def in_folder(path: str | None, folder: Path) -> bool:
    """True if ``path`` is ``folder`` or a path inside it (compared as written, not resolved)."""
    return bool(path) and Path(path).is_relative_to(folder)


def processes_marked_with(scratch: Path, since: float = SESSION_START) -> list[psutil.Process]:
    """Every process but this one whose ``TMPDIR`` is ``scratch`` or a folder inside it.

    These are the session's own. ``since`` is the session's start: see :func:`_environment`.
    """
    return processes_where(lambda env: in_folder(env.get("TMPDIR"), scratch), since)


def files_left_in(scratch: Path) -> list[str]:
    """Names in ``scratch`` that a tool or helper made and did not remove (pytest's aside)."""
    if not scratch.is_dir():
        return []
    return sorted(p.name for p in scratch.iterdir() if not p.name.startswith(PYTEST_FOLDERS))


def end(processes: list[psutil.Process], timeout: float = 10) -> None:
    """Kill ``processes`` and wait until they have ended."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended meanwhile
            process.kill()
    psutil.wait_procs(processes, timeout=timeout)


def describe(process: psutil.Process) -> str:
    """The process as "PID command line", or "PID (ended)" if it ended meanwhile."""
    try:
        return f"{process.pid} {' '.join(process.cmdline())}"
    except psutil.NoSuchProcess:
        return f"{process.pid} (ended)"


@contextlib.contextmanager
def child_mark() -> Iterator[dict[str, str]]:
    """Environment changes that mark a child program; on leaving, nothing it started is left.

    Why: a test that runs a program which starts a server in a session of its own (a notebook
    kernel's Python, say) cannot end that server if the program is killed (a timeout kills
    with SIGKILL, which skips its exit hooks): the server is then nobody's child. It still
    carries this mark. Leaving normally with a marked process still running is an error (the
    program leaked it); leaving with an exception ends them quietly, as that error is the news.
    """
    value = uuid.uuid4().hex
    started = time.time()
    failed = True
    try:
        yield {TEST_MARK: value}
        failed = False
    finally:
        left = processes_where(lambda env: env.get(TEST_MARK) == value, started)
        names = [describe(p) for p in left]
        end(left)
        if left and not failed:
            raise AssertionError(f"the child program left processes running: {names}")
