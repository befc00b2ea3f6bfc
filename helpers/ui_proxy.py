"""The MLflow UI inside JupyterLab: a launcher tile, and the UI at ``<JupyterLab>/mlflow/``.

Why: in GitHub Codespaces, on Binder or on a JupyterHub, JupyterLab runs on a machine the
browser reaches only through JupyterLab's own address (``https://<name>-8888.app.github.dev``
and the like); ``mlflow ui`` on that machine's 127.0.0.1:5000 cannot be opened from there.
`jupyter-server-proxy <https://jupyter-server-proxy.readthedocs.io>`_ (installed with the
course) starts a program on first use and forwards ``<JupyterLab>/mlflow/`` to it, behind
JupyterLab's login. :func:`mlflow_ui` is its entry point (``pyproject.toml``,
``jupyter_serverproxy_servers``); it starts this module, which serves the course's store
``notebooks/mlflow.db`` whatever folder JupyterLab started in, and works as the UI of
``python -m helpers.server`` does: the store is checked first, one worker, no job runners,
and nothing outlives JupyterLab (Ctrl+C, ``kill``, even ``kill -9``).

Why the headers are rewritten. MLflow 3's security middleware refuses (403) a request whose
``Host`` is not a local or private address (its guard against DNS rebinding), and a
state-changing API call (POST, such as the UI's run search) whose ``Origin`` is not local.
jupyter-server-proxy passes the browser's headers on, so under Codespaces' host name both
checks fail: the page would load but show no runs. The two ways out:

- ``--allowed-hosts '*'`` and ``--cors-allowed-origins '*'`` switch both checks off for every
  request, including one that reaches the UI's port directly (a DNS-rebinding page in the
  learner's browser can do that on a laptop); and the right origin cannot be named in
  advance (each Codespace, Binder or hub has its own).
- ``request_headers_override`` (chosen): requests that came *through JupyterLab* reach the
  UI as its own page on 127.0.0.1 would send them (``Host`` and ``Origin`` of
  ``127.0.0.1:<port>``), and MLflow's checks stay on for anything else. JupyterLab has
  already checked those requests: its own DNS-rebinding guard (the ``Host`` must be local,
  unless JupyterLab was started to be reached under another name: ``--ip 0.0.0.0`` or
  ``--ServerApp.allow_remote_access=True``, as a remote JupyterLab must be) and its login.
  A foreign web page still cannot change the store through the proxy: MLflow accepts a state
  change only as JSON (or a DELETE/PATCH/PUT), which a browser sends cross-site only after a
  CORS pre-flight request, and that request carries no login (JupyterLab refuses it) and
  would not get the foreign origin allowed anyway.

Why a generous ``timeout``: the UI answers 5-9 s after it starts (a first start that creates
the store took over a minute on a busy machine); jupyter-server-proxy's default is 5 s, after
which it shows "could not start mlflow in time" and kills it.

A store that does not exist yet is created, as notebook 01 would create it: the tile works
before any notebook has run (and shows the *Default* experiment), and experiment ``0`` gets
``notebooks/mlruns/0`` as its artifact location, as if a notebook had made it. A store that
cannot be served (made by an older MLflow, not a database) gets a page that says why and
what to do, in the tab the tile opened, instead of a bare "could not start" error.
"""

from __future__ import annotations

import argparse
import html
import http.server
import os
import sys
from pathlib import Path

import psutil

from helpers.background import LOCALHOST, ServerError
from helpers.server import MlflowServer, _one_line, _port, _stop_on_signals

COURSE = Path(__file__).resolve().parent.parent
"""The course's folder: the helpers are installed from it in place (``pip install -e .``)."""
NOTEBOOKS = COURSE / "notebooks"
STORE_URI = f"sqlite:///{(NOTEBOOKS / 'mlflow.db').as_posix()}"
ARTIFACTS = NOTEBOOKS / "mlruns"
"""Where the notebooks' experiments keep their artifacts: ``./mlruns`` of ``notebooks/``."""
ICON = Path(__file__).resolve().parent / "mlflow-ui.svg"
START_TIMEOUT = 180.0
"""Seconds jupyter-server-proxy waits for the UI to answer (its default, 5 s, is too short)."""
PARENT_CHECK_SECONDS = 1.0


def mlflow_ui() -> dict:
    """jupyter-server-proxy's settings for the MLflow UI (entry point ``mlflow``).

    ``{port}`` is a free port jupyter-server-proxy chooses. The UI gets the path after
    ``/mlflow`` (``absolute_url`` off): its pages and API calls use relative addresses, so it
    needs no ``--static-prefix``, and the same settings work under a hub's ``/user/<name>/``.
    """
    return {
        "command": [sys.executable, "-m", "helpers.ui_proxy", "--port", "{port}"],
        "timeout": START_TIMEOUT,
        "absolute_url": False,
        "request_headers_override": {
            "Host": f"{LOCALHOST}:{{port}}",
            "Origin": f"http://{LOCALHOST}:{{port}}",
        },
        "launcher_entry": {"title": "MLflow UI", "icon_path": str(ICON)},
        "new_browser_tab": True,
    }


def log_path() -> Path:
    """The UI's log: in Jupyter's runtime folder, not among the learner's files."""
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(jupyter_runtime_dir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "mlflow-ui.log"


def start_ui(port: int) -> MlflowServer:
    """The MLflow UI for the course's store on ``127.0.0.1:port``; raises ServerError if not.

    ``mlflow server`` rather than ``mlflow ui``: the same program, but it creates a missing
    store. ``--default-artifact-root`` is what a notebook in ``notebooks/`` uses, and no
    artifact proxying: the UI reads a run's artifacts where the run says they are.
    """
    if not NOTEBOOKS.is_dir():
        raise ServerError(
            f"No notebooks folder at {NOTEBOOKS}: install the course in place, from its folder "
            "(pip install --no-deps -e .), so that the helpers find the notebooks' store."
        )
    # An existing store is checked by MlflowServer.start (check_new_store) before anything starts.
    return MlflowServer.start(
        STORE_URI, port=port, folder=NOTEBOOKS, default_artifact_root=str(ARTIFACTS),
        serve_artifacts=False, workers=1, timeout=START_TIMEOUT, log=log_path(),
    )  # fmt: skip


def serve_error(port: int, message: str) -> None:
    """Answer every request on ``127.0.0.1:port`` with ``message`` (503), until stopped.

    Why: jupyter-server-proxy shows only "could not start mlflow in time" when the program
    ends; this page says why the UI cannot start, in the tab the learner opened.
    """
    page = (
        "<!doctype html><title>MLflow UI: cannot start</title>"
        f"<h1>The MLflow UI cannot start</h1><p>{html.escape(message)}</p>"
        f"<p>The tile always shows {html.escape(str(NOTEBOOKS / 'mlflow.db'))}. Fix that, "
        "then restart JupyterLab and click the tile again.</p>"
    ).encode()

    class Explain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self.send_response(503)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_POST = do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            """Quiet: JupyterLab's terminal is not the place for each request."""

    with http.server.ThreadingHTTPServer((LOCALHOST, port), Explain) as server:
        server.timeout = PARENT_CHECK_SECONDS
        parent = psutil.Process(os.getppid())
        while parent_alive(parent):  # JupyterLab killed: end too
            server.handle_request()


def parent_alive(parent: psutil.Process) -> bool:
    """True while ``parent`` (JupyterLab) runs.

    Why more than ``is_running``: a killed JupyterLab whose own parent has not yet collected
    it is a zombie, which psutil counts as running; on POSIX its children are handed to
    another parent at once, so ``getppid`` says it first (Windows never changes it).
    """
    if sys.platform != "win32" and os.getppid() != parent.pid:
        return False
    try:
        return parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for(server: MlflowServer) -> int:
    """Keep the UI until it ends, a signal comes, or JupyterLab (the parent) is gone.

    Why watch the parent: jupyter-server-proxy stops this process when JupyterLab stops
    normally; a JupyterLab killed outright (``kill -9``, a crashed container) cannot, and
    the UI's own watchdog watches this process, not JupyterLab.
    """
    parent = psutil.Process(os.getppid())
    try:
        while parent_alive(parent):
            try:
                server.process.wait(timeout=PARENT_CHECK_SECONDS)
            except Exception:  # TimeoutExpired: still running
                continue
            print(f"The MLflow UI stopped by itself. {server._log_end()}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:  # Ctrl+C, or SIGTERM from jupyter-server-proxy
        return 0
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Start the UI on ``--port`` for the course's store, as jupyter-server-proxy asks."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.ui_proxy",
        description="The MLflow UI of the course's notebooks/mlflow.db on 127.0.0.1:PORT, "
        "as JupyterLab's MLflow UI tile starts it.",
    )
    parser.add_argument("--port", type=_port, required=True)
    options = parser.parse_args(argv)
    _stop_on_signals()
    try:
        server = start_ui(options.port)
    except KeyboardInterrupt:
        return 0
    except (ServerError, OSError) as error:
        message = _one_line(error)
        print(f"Cannot start the MLflow UI: {message}", file=sys.stderr)
        try:
            serve_error(options.port, message)
        except KeyboardInterrupt:
            pass
        return 1
    return wait_for(server)


if __name__ == "__main__":
    sys.exit(main())
