"""JupyterLab as a learner runs it: started the README's way, notebooks run from its menus.

Shared by tests/test_jupyterlab.py (every notebook runs clean in JupyterLab) and
tests/test_ui_browser.py (with COURSE_SCREENSHOTS, the pictures are taken of a store made in
JupyterLab, so a run page shows what a learner's shows: the notebook as the run's source).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from notebook_runs import NOTEBOOKS

from helpers.server import free_port

RUN_TIMEOUT_MS = 300_000
SOLUTION_FOLD = "<details><summary>Show the worked solution</summary>"
"""How a worked solution starts in its markdown cell (tools/fold_solutions.py)."""
LAB_VIEWPORT = {"width": 1400, "height": 900}  # a notebook and the file browser side by side


@contextlib.contextmanager
def jupyter_lab(
    folder: Path, login: str | None = None, *, args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, str]]:  # fmt: skip
    """``jupyter lab`` in ``folder`` with the notebooks copied to ``folder/notebooks``.

    ``login``, if given, is the user name the kernels' runs record (``mlflow.user``, "Created
    by" in the UI) in place of the machine's. ``args`` are added to the command, ``env`` to
    its environment. Yields (base URL, token).
    """
    (folder / "notebooks").mkdir()
    for notebook in NOTEBOOKS:
        shutil.copy2(notebook, folder / "notebooks" / notebook.name)
    port, token = free_port(8888), secrets.token_hex(16)
    settings = folder / ".jupyter-settings"  # a new learner's settings: the pop-up shows
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the page
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
               "--port", str(port), f"--IdentityProvider.token={token}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; a learner does not
    command += args
    env = {**os.environ, **(env or {}), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / ".jupyter-workspaces"),
           "JUPYTER_RUNTIME_DIR": str(folder / ".jupyter-runtime")}  # fmt: skip
    if login:  # getpass.getuser(), which MLflow asks, reads these first
        env.update(LOGNAME=login, USER=login)
    log = open(folder / "jupyterlab.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/api/status?token={token}", server, folder)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_for(url: str, server: subprocess.Popen, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, (folder / "jupyterlab.log").read_text()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer: {(folder / 'jupyterlab.log').read_text()}")


def run_all_cells(page, url: str, token: str, notebook: Path) -> None:
    """Open ``notebook``, clear its outputs, run every cell, wait for the end, save."""
    # ?reset: a fresh workspace, so the notebooks opened before are not reopened beside it.
    page.goto(f"{url}/lab/tree/notebooks/{notebook.name}?reset&token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=RUN_TIMEOUT_MS)
    # The status bar says "Python 3 (ipykernel) | Idle" once the kernel has started and
    # connected; cells run before that are not sent to it.
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=RUN_TIMEOUT_MS)
    no_news = page.locator(".jp-Notification-Toast button", has_text="No")
    if no_news.count():  # "Would you like to get notified about official Jupyter news?"
        no_news.first.click()
    # Solutions are folded markdown (tools/fold_solutions.py): closed <details> that JupyterLab's
    # sanitizer keeps, that open on a click, and that Run All never runs.
    folds = sum("".join(c["source"]).count(SOLUTION_FOLD)
                for c in cells(notebook) if c["cell_type"] == "markdown")  # fmt: skip
    details = page.locator(".jp-MarkdownCell .jp-RenderedMarkdown details")
    assert details.count() == folds, f"{notebook.name}: {details.count()} of {folds} folds shown"
    closed = page.locator(".jp-MarkdownCell .jp-RenderedMarkdown details:not([open])")
    assert closed.count() == folds, f"{notebook.name}: {folds - closed.count()} folds open"
    if folds:  # as a learner who opens one, reads it, and closes it again
        code = details.first.locator("pre")
        assert not code.is_visible(), f"{notebook.name}: a folded solution's code shows"
        details.first.locator("summary").click()
        code.wait_for(state="visible")
        assert "check_" in code.inner_text(), f"{notebook.name}: the fold holds no solution"
        details.first.locator("summary").click()
        code.wait_for(state="hidden")
    menu(page, "Edit", "Clear Outputs of All Cells")
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    expected = len([c for c in cells(notebook) if c["cell_type"] == "code"])
    menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    retry_at = time.monotonic() + 60
    while time.monotonic() < deadline:
        texts = prompts.all_inner_texts()
        if time.monotonic() > retry_at and all(t == "[ ]:" for t in texts):
            menu(page, "Run", "Run All Cells")  # the click came before the page could take it
            retry_at = deadline
        if len(texts) == expected and all(t.strip("[]: ").isdigit() for t in texts):
            break
        page.wait_for_timeout(500)
    else:
        raise AssertionError(f"{notebook.name}: not every cell ran: {prompts.all_inner_texts()}")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)  # the save request to finish


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]
