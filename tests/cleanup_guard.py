"""What a test session leaves behind: its processes, and files outside pytest's own folders.

Why: the course starts servers, kernels, browsers and a database. A test that forgets to stop
one leaves a process running on a learner's machine (and a port taken); a helper that forgets
its temporary files fills their disk. The session gives every process it starts one scratch
folder as ``TMPDIR``, so both kinds of leak carry its mark, and nothing else on the machine
(another program writing to the same temporary folder, another test run) is mistaken for one.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from helpers.server import processes_with_environment

PYTEST_FOLDERS = ("pytest-of-",)
"""pytest's own ``tmp_path`` folders, kept on purpose for debugging and removed with scratch."""


def processes_marked_with(scratch: Path) -> list[psutil.Process]:
    """Every process but this one whose ``TMPDIR`` is ``scratch``: the session's own.

    Finds them even when they were re-parented (their parent died), which a search of
    this process's children would miss. Processes of other users that cannot be read are
    not the session's: it starts nothing as another user without passing its environment.
    """
    return processes_with_environment("TMPDIR", str(scratch))


def files_left_in(scratch: Path) -> list[str]:
    """Names in ``scratch`` that a tool or helper made and did not remove (pytest's aside)."""
    if not scratch.is_dir():
        return []
    return sorted(p.name for p in scratch.iterdir() if not p.name.startswith(PYTEST_FOLDERS))
