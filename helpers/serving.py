"""Serve a registered model over HTTP with ``mlflow models serve``, and stop it cleanly.

Why: notebook 11 closes the model's lifecycle by serving ``models:/<name>@champion``. The
command is one line, but three things go wrong around it in a notebook:

- ``--env-manager local`` starts the server by running ``uvicorn`` through the shell, so the
  environment's ``bin`` folder must be on PATH. A kernel that runs a virtual environment's
  Python without it being activated lacks it, and the server dies with
  "uvicorn: not found". Here the child's PATH starts with this Python's own folder.
- A ``models:/`` URI is resolved through the tracking store, which the server finds in
  ``MLFLOW_TRACKING_URI``, not in the notebook's ``mlflow.set_tracking_uri(...)``.
- The server copies the model into a temporary folder that MLflow never removes. Here that
  folder is made for the server and removed when it stops.

Starting, waiting, and stopping with every process gone are :mod:`helpers.background`'s: a
taken port is refused with the way out, and the server is stopped when Python exits, or by
its watchdog when the kernel dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

from helpers.background import LOCALHOST, Background, ServerError, answers_health, choose_port

DEFAULT_PORT = 5002
"""Not 5000 (the UI you may have open, or macOS's AirPlay) nor 5001 (notebook 09's server)."""


def child_environment(tracking_uri: str, tmpdir: Path) -> dict[str, str]:
    """The environment of a model server: this one, plus what ``mlflow models serve`` needs.

    - PATH starts with the folder of this Python, where ``uvicorn`` is installed beside it;
    - ``MLFLOW_TRACKING_URI`` lets the server resolve a ``models:/`` URI;
    - ``TMPDIR`` is a folder of the server's own, removed when it stops;
    - no progress bars: the server's log stays readable.
    """
    bin_folder = str(Path(sys.executable).parent)  # not resolved: a venv's python is a link
    path = os.pathsep.join([bin_folder, os.environ.get("PATH", "")]).rstrip(os.pathsep)
    return {
        **os.environ,
        "PATH": path,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "TMPDIR": str(tmpdir),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def _check_uvicorn(path: str) -> None:
    """Refuse to start if ``uvicorn`` cannot be found where the server will look for it."""
    if shutil.which("uvicorn", path=path) is None:
        raise ServerError(
            f"uvicorn is not installed beside {sys.executable}, and `mlflow models serve` "
            "needs it. Install the course's packages in this environment: "
            "pip install -r requirements.txt"
        )


class ModelServer(Background):
    """A running ``mlflow models serve``; stop it with :meth:`stop` or a ``with`` block."""

    name = "The model server"

    def __init__(self, url: str, command: list[str], folder: Path, env: dict[str, str], log: Path):
        self.url, self.tmpdir = url, Path(env["TMPDIR"])
        self.startup_seconds = 0.0
        super().__init__(command, folder, env, log, leftovers=(self.tmpdir,))

    @classmethod
    def start(
        cls,
        model_uri: str,
        *,
        tracking_uri: str = "sqlite:///mlflow.db",
        port: int | None = None,
        folder: str | Path = ".",
        timeout: float = 180,
        log: str | Path | None = None,
    ) -> ModelServer:
        """Serve ``model_uri`` on 127.0.0.1 and return once it answers ``/health``.

        ``port=None`` takes 5002 if free, else a free port; an explicit port that is taken is
        an error. ``tracking_uri`` is the store that resolves a ``models:/`` URI (relative to
        ``folder``, where the server runs). Output goes to ``log`` (default:
        ``model-server.log`` in ``folder``), never into a notebook.
        """
        folder = Path(folder)
        port = choose_port(port, DEFAULT_PORT)
        command = [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
            "--env-manager", "local", "--host", LOCALHOST, "--port", str(port),
        ]  # fmt: skip
        tmpdir = Path(tempfile.mkdtemp(prefix="model-server-"))
        env = child_environment(tracking_uri, tmpdir)
        log_path = Path(log) if log else folder / "model-server.log"
        began = time.monotonic()
        try:
            _check_uvicorn(env["PATH"])
            server = cls(f"http://{LOCALHOST}:{port}", command, folder, env, log_path)
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        try:
            server._wait_until_ready(port, timeout)
        except BaseException:  # Ctrl+C too: never leave a half-started server behind
            server.stop()
            raise
        server.startup_seconds = time.monotonic() - began
        return server

    def _answers(self) -> bool:
        """True once the server answers ``/health``: it does so when the model is loaded."""
        return answers_health(self.url)

    def _log_end(self) -> str:
        """The telling line of the log: MLflow's error if there is one, else the last line.

        Why: a failed start ends with a traceback whose last line is often not the cause
        (for a model that does not exist, MLflow's own error comes first).
        """
        lines = [line.strip() for line in self.log_tail(60).splitlines() if line.strip()]
        errors = [line for line in lines if "Exception:" in line or "not found" in line]
        found = errors[-1] if errors else (lines[-1] if lines else "(empty)")
        return f"The end of its log {self.log}: {found}"

    def memory_mb(self) -> float:
        """The resident memory of all the server's processes, in MB (10^6 bytes)."""
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):  # it ended meanwhile
                total += process.memory_info().rss
        return total / 1e6

    def stop(self, timeout: float = 15) -> None:
        """Stop the server and all its processes, and remove its temporary folder."""
        super().stop(timeout)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ModelServer {self.url} ({state})>"
