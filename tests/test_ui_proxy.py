"""The MLflow UI inside JupyterLab (helpers/ui_proxy.py): the launcher's tile and ``/mlflow/``.

A learner in Codespaces, on Binder or on a JupyterHub reaches JupyterLab under a host name of
its own, never as 127.0.0.1. Here: a scratch copy of the course (its helpers, its
``pyproject.toml`` and its notebooks), with the package metadata setuptools makes from that
``pyproject.toml`` (so jupyter-server-proxy finds the entry point the course declares), where
notebook 03 has run; ``jupyter lab`` started from it the README's way, plus the one setting a
remote JupyterLab needs (``--ServerApp.allow_remote_access=True``: else JupyterLab itself
refuses a foreign ``Host`` with 403). Debian's Chromium reaches it as
``course.example.test`` (``--host-resolver-rules``), clicks the launcher's *MLflow UI* tile
and finds notebook 03's runs in the tab it opens; the UI's API answers through ``/mlflow/``
to a foreign ``Host`` and ``Origin`` (MLflow 3 refuses both with 403 unless the proxy's
headers are set right), while the UI's own port still refuses a foreign ``Host``; a store
MLflow cannot serve gets a page that says why; and a JupyterLab killed outright leaves no UI
process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from jupyterlab_session import LAB_VIEWPORT, jupyter_lab
from notebook_runs import ROOT

from helpers import ui_proxy
from helpers.background import answers_health, listeners
from helpers.server import free_port

HOST = "course.example.test"  # a name that is not localhost, as Codespaces' or a hub's
MODE_KEY = "mlflow.workflowType_v1"  # where the MLflow UI remembers its mode (notebook 01)
WAIT_MS = 120_000
SCREENSHOTS = os.environ.get("COURSE_SCREENSHOTS")  # a folder: save the tile's picture there
COURSE_FILES = ("helpers", "pyproject.toml", "README.md")


def course_copy(folder: Path) -> dict[str, str]:
    """The course's helpers and pyproject in ``folder``, and its package metadata beside.

    Returns the environment that makes Python see that copy as the installed course (as
    ``pip install -e .`` does): the copy's helpers first on the path, and the metadata
    setuptools makes from the copy's ``pyproject.toml``, with its entry points.
    """
    for name in COURSE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    metadata = folder.parent / f"{folder.name}-metadata"
    metadata.mkdir()
    code = "from setuptools import build_meta; build_meta.prepare_metadata_for_build_wheel"
    subprocess.run(
        [sys.executable, "-c", f"{code}({str(metadata)!r})"], cwd=folder, check=True,
        capture_output=True, timeout=120,
    )  # fmt: skip
    for egg_info in metadata.glob("*.egg-info"):  # setuptools' working copy: not metadata
        shutil.rmtree(egg_info)
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(metadata)])}


def test_entry_point_and_icon_are_in_the_built_package(tmp_path):
    """The wheel built from pyproject.toml registers the tile and ships its icon."""
    source = tmp_path / "source"
    source.mkdir()
    for name in COURSE_FILES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    code = "from setuptools import build_meta; print(build_meta.build_wheel"
    built = subprocess.run(
        [sys.executable, "-c", f"{code}({str(tmp_path)!r}))"], cwd=source,
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    wheel = tmp_path / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
        assert "helpers/mlflow-ui.svg" in names, "the tile's icon is not installed"
        assert archive.read("helpers/mlflow-ui.svg").startswith(b"<svg")
    assert "[jupyter_serverproxy_servers]\nmlflow = helpers.ui_proxy:mlflow_ui" in text


def test_settings_serve_the_course_store():
    """What jupyter-server-proxy gets: accepted by it, and pointing at notebooks/mlflow.db."""
    from jupyter_server_proxy.config import ServerProcess

    settings = ui_proxy.mlflow_ui()
    process = ServerProcess(name="mlflow", **settings)  # refuses unknown or mistyped settings
    assert process.command == [sys.executable, "-m", "helpers.ui_proxy", "--port", "{port}"]
    assert process.timeout >= 60, "the UI takes 5-9 s to answer, more on a new store"
    assert process.launcher_entry.title == "MLflow UI"
    assert Path(process.launcher_entry.icon_path).read_text().startswith("<svg")
    assert process.request_headers_override == {
        "Host": "127.0.0.1:{port}", "Origin": "http://127.0.0.1:{port}",
    }  # fmt: skip
    assert ui_proxy.STORE_URI == f"sqlite:///{(ROOT / 'notebooks' / 'mlflow.db').as_posix()}"
    assert ui_proxy.ARTIFACTS == ROOT / "notebooks" / "mlruns"


def start_tile_ui(tmp_path: Path, store_text: str | None = None):
    """The tile's command, as jupyter-server-proxy runs it, for a course copy in ``tmp_path``.

    ``store_text``: what ``notebooks/mlflow.db`` holds beforehand (None: no store yet).
    Returns the course folder, the UI's port and its process.
    """
    course = tmp_path / "course"
    course.mkdir()
    env = {**os.environ, **course_copy(course), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    (course / "notebooks").mkdir()
    if store_text is not None:
        (course / "notebooks" / "mlflow.db").write_text(store_text)
    port = free_port(5000)
    ui = subprocess.Popen(
        [sys.executable, "-m", "helpers.ui_proxy", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return course, port, ui


def test_a_store_it_cannot_serve_gets_a_page_that_says_why(tmp_path):
    """Not a database: the tile's tab says so (503), instead of "could not start in time"."""
    _, port, ui = start_tile_ui(tmp_path, store_text="not a database")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            except urllib.error.HTTPError as error:
                status, page = error.code, error.read().decode()
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, ui.communicate()
                time.sleep(0.25)
        assert status == 503
        assert "is not an MLflow tracking database" in page, page
    finally:
        ui.send_signal(signal.SIGTERM)
        _, stderr = ui.communicate(timeout=30)
    assert "Cannot start the MLflow UI" in stderr


def test_a_new_store_is_made_as_a_notebook_makes_it_and_sigterm_ends_all(tmp_path):
    """No notebook has run: the UI creates the store, its Default experiment's artifacts in
    notebooks/mlruns (as notebook 01 prints), and ends with every process on SIGTERM (how
    jupyter-server-proxy stops it when JupyterLab stops)."""
    import mlflow

    course, port, ui = start_tile_ui(tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not answers_health(f"http://127.0.0.1:{port}"):
            assert ui.poll() is None and time.monotonic() < deadline, ui.communicate()
            time.sleep(0.5)
        tree = psutil.Process(ui.pid).children(recursive=True)
        assert any("mlflow" in p.cmdline()[1:3] for p in tree), [p.cmdline() for p in tree]
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.communicate(timeout=60)
    _, alive = psutil.wait_procs(tree, timeout=20)
    assert alive == [], [p.cmdline() for p in alive]
    client = mlflow.MlflowClient(f"sqlite:///{course / 'notebooks' / 'mlflow.db'}")
    default = client.get_experiment("0")
    assert Path(default.artifact_location) == course / "notebooks" / "mlruns" / "0"
    assert (tmp_path / "runtime" / "mlflow-ui.log").is_file(), "its log is Jupyter's, not a file"
    assert not list((course / "notebooks").glob("*.log")), "no log among the learner's files"


@contextlib.contextmanager
def chromium_as(host: str) -> Iterator[object]:
    """Debian's Chromium, in which ``host`` is this machine (as tests/browser.py's otherwise)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set COURSE_CHROMIUM")
    from playwright.sync_api import sync_playwright

    rules = f"--host-resolver-rules=MAP {host} 127.0.0.1"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the course where notebook 03 has run: (URL, token, process)."""
    folder = tmp_path_factory.mktemp("course")
    env = course_copy(folder)
    remote = ("--ServerApp.allow_remote_access=True",)  # what a remote JupyterLab needs
    with jupyter_lab(folder, args=remote, env=env) as (url, token):
        notebook = folder / "notebooks" / "03_start_run.ipynb"
        subprocess.run(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--stdout", notebook.name], cwd=notebook.parent, env={**os.environ, **env},
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        port = int(url.rsplit(":", 1)[1])
        [process] = listeners(port)
        yield f"http://{HOST}:{port}", token, process


def screenshot_tile(page, tile) -> None:
    """Save the launcher's *Notebook* row, the tile outlined, as docs' picture ``ui-tile.png``."""
    page.wait_for_timeout(1000)  # let the page settle before the picture
    tile.evaluate("e => { e.style.outline = '3px solid #e8590c'; e.style.outlineOffset = '2px'; }")
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    section = page.locator(".jp-Launcher-section").filter(has=tile)
    section.screenshot(path=str(folder / "ui-tile.png"))
    tile.evaluate("e => { e.style.outline = ''; e.style.outlineOffset = ''; }")


def test_the_picture_of_the_tile_exists():
    """Notebook 01 shows it (regenerate: COURSE_SCREENSHOTS=docs/images, this file's tests)."""
    size = (ROOT / "docs" / "images" / "ui-tile.png").stat().st_size
    assert 5_000 < size < 250_000, f"ui-tile.png: {size} bytes"


@pytest.mark.notebooks
def test_the_tile_opens_the_ui_with_the_runs_of_a_notebook(lab):
    url, token, _ = lab
    with chromium_as(HOST) as browser:
        context = browser.new_context(viewport=LAB_VIEWPORT)
        # Model training mode, as notebook 01 advises (the UI's storage is JupyterLab's too).
        context.add_init_script(f"localStorage.setItem('{MODE_KEY}', '\"machine_learning\"')")
        refused = []
        context.on(
            "response",
            lambda r: refused.append(f"{r.status} {r.url}") if r.status in (403, 500) else None,
        )
        page = context.new_page()
        page.goto(f"{url}/lab?token={token}")
        tile = page.locator(".jp-LauncherCard", has_text="MLflow UI")
        tile.wait_for(timeout=WAIT_MS)
        assert tile.locator("svg, img").count(), "the tile shows its icon"
        if SCREENSHOTS:  # notebook 01's picture of the tile
            screenshot_tile(page, tile)
        clicked = time.monotonic()
        with context.expect_page(timeout=WAIT_MS) as opened:
            tile.click()
        ui = opened.value
        ui.get_by_role("navigation").first.get_by_role("link", name="Experiments").wait_for(
            timeout=WAIT_MS
        )
        shown = time.monotonic() - clicked
        assert ui.url.startswith(f"{url}/mlflow/"), ui.url
        ui.get_by_role("navigation").first.get_by_role("link", name="Experiments").click()
        ui.locator(
            "a[data-testid=experiment-list-item-link]", has_text="nyc-taxi-experiment"
        ).click()
        ui.get_by_text("linear-regression-baseline", exact=True).first.wait_for(timeout=WAIT_MS)
        assert ui.get_by_text("a-failing-run", exact=True).first.is_visible()
        print(f"tile click to the UI's page: {shown:.1f} s")
        context.close()
    assert refused == []


def proxied(url: str, token: str, path: str, body: dict | None = None) -> bytes:
    """``path`` of the UI, through /mlflow/, as a page of ``url``'s origin asks for it."""
    port = url.rsplit(":", 1)[1]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/mlflow/{path}", data=body and json.dumps(body).encode(),
        headers={"Host": f"{HOST}:{port}", "Origin": url, "Content-Type": "application/json",
                 "Authorization": f"token {token}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def search_experiments(url: str, token: str, method: str = "POST") -> list[str]:
    """The UI's own experiment search (POST, as its page sends it, or GET), through /mlflow/."""
    path = "ajax-api/2.0/mlflow/experiments/search"
    if method == "POST":
        found = proxied(url, token, path, {"max_results": 100})
    else:
        found = proxied(url, token, f"{path}?max_results=100")
    return [e["name"] for e in json.loads(found)["experiments"]]


@pytest.mark.notebooks
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_api_answers_through_the_proxy_to_a_foreign_host(lab, method):
    url, token, _ = lab
    names = search_experiments(url, token, method)
    assert sorted(names) == ["Default", "nyc-taxi-experiment"]


@pytest.mark.notebooks
def test_a_runs_artifacts_show_through_the_proxy(lab):
    """Notebook 03's run lists its artifacts (in notebooks/mlruns), and the UI serves them."""
    url, token, _ = lab
    api = "ajax-api/2.0/mlflow"
    [experiment] = json.loads(
        proxied(url, token, f"{api}/experiments/get-by-name?experiment_name=nyc-taxi-experiment")
    ).values()
    search = {"experiment_ids": [experiment["experiment_id"]],
              "filter": "tags.mlflow.runName = 'linear-regression-baseline'"}  # fmt: skip
    [run] = json.loads(proxied(url, token, f"{api}/runs/search", search))["runs"]
    run_id = run["info"]["run_id"]
    listing = json.loads(proxied(url, token, f"{api}/artifacts/list?run_id={run_id}"))
    files = [f["path"] for f in listing["files"] if not f["is_dir"]]
    assert files, listing
    served = proxied(url, token, f"get-artifact?path={files[0]}&run_id={run_id}")
    run_folder = Path(run["info"]["artifact_uri"].removeprefix("file://"))
    assert served == (run_folder / files[0]).read_bytes()


@pytest.mark.notebooks
def test_the_ui_port_itself_still_refuses_a_foreign_host(lab):
    """MLflow's DNS-rebinding guard stays on: only JupyterLab's proxy is let through."""
    url, token, process = lab
    search_experiments(url, token)  # the UI runs
    [ui] = [p for p in process.children(recursive=True) if "mlflow" in p.cmdline()[1:3]]
    port = ui.cmdline()[ui.cmdline().index("--port") + 1]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=1",
        headers={"Host": f"{HOST}:{port}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403


@pytest.mark.notebooks
def test_nothing_outlives_a_killed_jupyterlab(lab):
    """``kill -9`` of JupyterLab: no hook runs, yet the UI and its watchdog end (the last test)."""
    url, token, process = lab
    search_experiments(url, token)  # the UI runs
    tree = process.children(recursive=True)
    assert any("helpers.ui_proxy" in p.cmdline() for p in tree), [p.cmdline() for p in tree]
    memory = sum(p.memory_info().rss for p in tree if "ipykernel" not in " ".join(p.cmdline()))
    print(f"the UI's processes: {len(tree)}, {memory / 2**20:.0f} MiB resident")
    process.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(tree, timeout=20)
    assert alive == [], [p.cmdline() for p in alive]
