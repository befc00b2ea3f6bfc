"""A child Python that imports this working copy's helpers, then exits: what is left?

The server, model-server and object-store tests each start their program in such a child
and let it exit without stopping it, as a restarted notebook kernel does; the helpers' exit
hook must then have stopped every process, and the port must be free again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.server import MARKER, port_is_free, processes_with_environment

ROOT = Path(__file__).resolve().parents[1]


def python_env(**changes: str) -> dict[str, str]:
    """The environment for a child Python that imports this working copy's helpers."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **changes}


def run_python(code: str, cwd: Path, timeout: float, **env_changes: str) -> str:
    """Run ``code`` in a child Python in ``cwd``; assert it succeeded; return what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=python_env(**env_changes),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def assert_nothing_left(marker: str, port: str | int) -> None:
    """No process carries the program's marker, and its port is free again."""
    assert processes_with_environment(MARKER, marker) == []
    assert port_is_free(int(port))
