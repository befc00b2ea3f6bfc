"""Zero-install starts: the GitHub Codespaces dev container and the Binder configuration.

Neither Codespaces, Binder nor Docker can run here, so what can run does. The files are parsed
the way their readers parse them (devcontainer.json is JSON with comments; repo2docker reads
``binder/``), and their install commands must be the README's. Then, in a copy of the course,
each install runs in a fresh environment made from the machine's Python 3.12 (the version both
use), and JupyterLab is started as each starts it and asked for what a learner opens, under a
host name that is not this machine's, as a Codespace's or Binder's address is.

The lock's ``pip install -r`` runs as ``uv pip install -r`` where uv is found (``COURSE_UV``,
which .ci/run sets, or PATH): the same pinned, hash-checked files in seconds instead of
minutes. Where the machine has no network, as in CI, uv installs them ``--offline`` from its
cache (.ci/run fills it when it installs the other Pythons), and pip, for the commands that
stay pip's (``--no-deps -e .``), gets no index (``PIP_NO_INDEX``) and builds with the
environment's own setuptools (``PIP_NO_BUILD_ISOLATION=0``). Without uv, every command runs
exactly as written, which needs the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from helpers.background import free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
BINDER = ROOT / "binder"
CODESPACE_HOST = "learner-{port}.app.github.dev"
"""How a browser addresses a Codespace's forwarded port: the server sees this Host header."""
BINDER_HOST = "hub.mybinder.example"
BINDER_BASE_URL = "/user/learner/"
"""Binder's JupyterHub serves a session under /user/<name>/, on its own host name."""
COURSE_FILES = ["README.md", "pyproject.toml", "requirements.txt", "helpers", "notebooks",
                "tools/dist", "binder", ".devcontainer"]  # fmt: skip
"""What the installs and JupyterLab read: the course as a clone has it, less the tests."""


def jsonc(text: str) -> dict:
    """Parse JSON with // and /* */ comments (devcontainer.json's format), strings kept whole."""
    token = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
    return json.loads(token.sub(lambda m: m[0] if m[0].startswith('"') else "", text))


def readme_commands(title: str) -> list[str]:
    """The commands of the README's fenced block under the bold line starting ``title``."""
    block = README.split(f"**{title}")[1].split("```bash\n")[1].split("```")[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def devcontainer() -> dict:
    return jsonc(DEVCONTAINER.read_text(encoding="utf-8"))


def postcreate_commands(config: dict) -> list[str]:
    command = config["postCreateCommand"]
    assert command[:2] == ["bash", "-c"] and len(command) == 3, command
    return command[2].split(" && ")


def lines_of(path: Path) -> list[str]:
    """The lines that are not comments or blank: what pip or bash runs."""
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]


# ---- The files, as their readers see them ----------------------------------------------------


def test_jsonc_reader_keeps_strings_and_drops_comments():
    text = '// top\n{"a": "http://x//y", /* b */ "c": [1, 2] // end\n}'
    assert jsonc(text) == {"a": "http://x//y", "c": [1, 2]}


def test_devcontainer_installs_the_readme_way():
    config = devcontainer()
    assert config["image"].startswith("mcr.microsoft.com/devcontainers/python:")
    assert config["image"].endswith("-3.12"), "the Python that binder/runtime.txt names too"
    assert postcreate_commands(config) == readme_commands("or pip and a virtual environment")
    settings = config["customizations"]["vscode"]["settings"]
    venv = readme_commands("or pip and a virtual environment")[0].split()[-1]
    assert (
        settings["python.defaultInterpreterPath"]
        == f"${{containerWorkspaceFolder}}/{venv}/bin/python"
    )
    assert {"ms-python.python", "ms-toolsai.jupyter"} <= set(
        config["customizations"]["vscode"]["extensions"]
    )
    assert config["customizations"]["codespaces"]["openFiles"] == ["notebooks/00_setup.ipynb"]


def test_devcontainer_forwards_jupyterlab_and_the_ui_with_labels():
    config = devcontainer()
    assert config["forwardPorts"] == [8888, 5000]
    labels = {port: attributes["label"] for port, attributes in config["portsAttributes"].items()}
    assert labels == {"8888": "JupyterLab", "5000": "MLflow UI"}
    assert "http://127.0.0.1:5000" in README  # the port the README's UI command takes


def test_devcontainer_machine_holds_the_course_at_its_peak():
    performance = (ROOT / "docs" / "PERFORMANCE.md").read_text(encoding="utf-8")
    section = performance.split("## Peak memory of the course")[1].split("\n## ")[0]
    peak_mib = int(re.search(r"\*\*([\d,]+) MiB\*\*", section)[1].replace(",", ""))
    requirements = devcontainer()["hostRequirements"]
    memory_gb = int(re.fullmatch(r"(\d+)gb", requirements["memory"])[1])
    # a quarter to spare beside the course's peak: VS Code's server and the system
    assert memory_gb * 1000**3 >= 1.25 * peak_mib * 1024**2, (memory_gb, peak_mib)
    assert requirements["cpus"] == 2, "the machine the course is timed on (docs/PERFORMANCE.md)"
    assert f"{memory_gb} GB" in section and f"{requirements['cpus']}-core" in section


def test_binder_folder_is_what_repo2docker_reads():
    # repo2docker uses binder/ (or .binder/, not both) and then ignores the files at the top.
    assert BINDER.is_dir() and not (ROOT / ".binder").exists()
    assert sorted(p.name for p in BINDER.iterdir()) == [
        "postBuild",
        "requirements.txt",
        "runtime.txt",
    ]
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    # repo2docker's format is name-version; a Python older than 3.11 stops the lock's install.
    assert re.fullmatch(r"python-3\.1[1-3]", runtime), runtime
    assert runtime == "python-" + devcontainer()["image"].rsplit("-", 1)[1]
    assert lines_of(BINDER / "requirements.txt") == ["-r ../requirements.txt"]  # the lock itself


def test_binder_postbuild_is_the_readme_command_and_runs():
    post_build = BINDER / "postBuild"
    assert post_build.read_text(encoding="utf-8").startswith("#!/bin/bash\n")
    assert post_build.stat().st_mode & stat.S_IXUSR, "repo2docker runs ./binder/postBuild"
    helpers_command = readme_commands("or pip and a virtual environment")[-1]
    assert lines_of(post_build) == ["set -euo pipefail", helpers_command]
    git_mode = subprocess.run(["git", "ls-files", "--stage", "binder/postBuild"], cwd=ROOT,
                              capture_output=True, text=True).stdout  # fmt: skip
    assert not git_mode or git_mode.startswith("100755"), "a clone must get it executable"


def readme_links() -> dict[str, str]:
    section = README.split("## Start without installing anything")[1].split("\n## ")[0]
    return dict(re.findall(r"^\[(codespaces|binder)\]: (\S+)$", section, re.MULTILINE))


def test_readme_buttons_open_this_course():
    links = readme_links()
    codespaces = re.fullmatch(r"https://codespaces\.new/([\w.-]+/[\w.-]+)\?quickstart=1",
                              links["codespaces"])  # fmt: skip
    binder = re.fullmatch(
        r"https://mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/HEAD\?urlpath=lab/tree/(notebooks/\S+)",
        links["binder"],
    )
    assert codespaces and binder, links
    assert codespaces[1] == binder[1], "both buttons open the same repository"
    assert binder[2] == "notebooks/00_setup.ipynb" and (ROOT / binder[2]).is_file()
    assert (
        "[![Open in GitHub Codespaces](https://github.com/codespaces/badge.svg)][codespaces]"
        in README
    )
    assert "[![Launch Binder](https://mybinder.org/badge_logo.svg)][binder]" in README


# ---- The installs, run in a fresh environment, and JupyterLab started as each starts it -----


def python312() -> str:
    """The machine's Python 3.12, found as .ci/run finds the other Pythons."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    found = sorted(Path(root).glob("versions/3.12.*/bin/python3")) if root else []
    path = str(found[-1]) if found else shutil.which("python3.12")
    if not path:
        pytest.skip("needs Python 3.12 (pyenv install 3.12), the dev container's and Binder's")
    return path


def has_network() -> bool:
    """True if an interface other than loopback is up (CI's network namespace has only ``lo``)."""
    return any(up.isup for name, up in psutil.net_if_stats().items() if name != "lo")


def lock_installer() -> str:
    """A bash function in front of ``pip``: the lock's ``install -r`` by uv, the rest as is."""
    uv = os.environ.get("COURSE_UV") or shutil.which("uv")
    if not uv:
        assert has_network(), "offline, the lock installs from uv's cache: set COURSE_UV"
        return ""
    offline = "" if has_network() else " --offline"
    return (
        f'pip() {{ if [ "$1 $2" = "install -r" ]; then shift; {shlex.quote(uv)} pip install'
        f'{offline} "$@"; else command pip "$@"; fi; }}; '
    )


def run(command: list[str], folder: Path, env: dict[str, str]) -> None:
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of the course, and the environment its installs run with (no index if offline)."""
    folder = tmp_path_factory.mktemp("clone") / "course"
    for name in COURSE_FILES:
        source, target = ROOT / name, folder / name
        if source.is_dir():
            shutil.copytree(
                source,
                target,
                ignore=shutil.ignore_patterns(
                    "__pycache__", "*.egg-info", "*.db", "mlruns", ".ipynb_*"
                ),
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(UV_PYTHON_DOWNLOADS="never", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if not has_network():
        env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0")
    return folder, env


@pytest.fixture(scope="module")
def codespace(course) -> tuple[Path, dict[str, str]]:
    """The dev container's postCreateCommand, run as written in the copy, `python` being 3.12."""
    folder, env = course
    image_bin = folder.parent / "image-bin"  # the image's /usr/local/bin: `python` is 3.12
    image_bin.mkdir()
    (image_bin / "python").symlink_to(python312())
    env = {**env, "PATH": f"{image_bin}{os.pathsep}{env['PATH']}"}
    command = devcontainer()["postCreateCommand"]
    run([*command[:2], lock_installer() + command[2]], folder, env)
    return folder, env


@pytest.fixture(scope="module")
def binder(course) -> tuple[Path, dict[str, str], Path]:
    """repo2docker's steps: ``pip install -r binder/requirements.txt``, then ``./binder/postBuild``.

    Into a fresh environment outside the course's folder, as repo2docker's ${NB_PYTHON_PREFIX},
    where JupyterLab and the kernel both run (Python 3.7 or newer: one environment).
    """
    folder, env = course
    prefix = folder.parent / "binder-env"
    run([python312(), "-m", "venv", str(prefix)], folder, env)
    env = {**env, "PATH": f"{prefix / 'bin'}{os.pathsep}{env['PATH']}", "VIRTUAL_ENV": str(prefix)}
    # repo2docker's command, less its --no-cache-dir (a cache is what makes this one offline)
    run(["bash", "-c", lock_installer() + "pip install -r binder/requirements.txt"], folder, env)
    run(["./binder/postBuild"], folder, env)
    return folder, env, prefix


@contextlib.contextmanager
def jupyter_lab(
    bin_dir: Path, folder: Path, env: dict[str, str], *options: str
) -> Iterator[tuple[str, str]]:
    """``jupyter lab`` of ``bin_dir`` started in ``folder``; yields (URL, token). Stops its tree."""
    port, token = free_port(8888), secrets.token_hex(16)
    command = [str(bin_dir / "jupyter"), "lab", "--no-browser", "--port", str(port),
               f"--IdentityProvider.token={token}", *options]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; a Codespace's or Binder's user is not
    private = Path(tempfile.mkdtemp(prefix="jupyter-", dir=folder.parent))  # this run's files
    env = {**env, "JUPYTERLAB_SETTINGS_DIR": str(private / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(private / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(private / "runtime")}  # fmt: skip
    with open(private / "jupyterlab.log", "wb") as log:
        server = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            base = next((o.split("=", 1)[1] for o in options if "base_url" in o), "/")
            wait_for(f"{url}{base}api/status", token, server, private / "jupyterlab.log")
            yield url, token
        finally:
            stop_tree(server)


def wait_for(url: str, token: str | None, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(errors="replace")
        if get(url, "127.0.0.1", token, timeout=2)[0] == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in 180 s: {log.read_text(errors='replace')}")


def stop_tree(server: subprocess.Popen) -> None:
    """Stop ``server`` and every process it started (the tile's MLflow UI, kernels, workers)."""
    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=15)
    for child in alive:
        child.kill()


def get(url: str, host: str, token: str | None = None, timeout: float = 300) -> tuple[int, str]:
    """GET ``url`` as a browser that reached it as ``host``: (status, body); 0 if no answer."""
    headers = {"Host": host} | ({"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        ) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError:
        return 0, ""


def test_codespace_jupyterlab_answers_on_its_forwarded_address(codespace):
    folder, env = codespace
    env = {**env, **container_env(folder)}
    host = CODESPACE_HOST.format(port=8888)
    with jupyter_lab(folder / ".venv" / "bin", folder, env) as (
        url,
        token,
    ):  # README's `jupyter lab`
        status, page = get(f"{url}/lab/tree/notebooks/00_setup.ipynb", host, token)
        assert status == 200 and "JupyterLab" in page, (status, page[:300])
        specs = json.loads(get(f"{url}/api/kernelspecs", host, token)[1])["kernelspecs"]
        assert specs["python3"]["spec"]["argv"][0] in (
            "python",
            str(folder / ".venv" / "bin" / "python"),
        )


def container_env(folder: Path) -> dict[str, str]:
    environment = devcontainer()["containerEnv"]
    return {
        k: v.replace("${containerWorkspaceFolder}", str(folder)) for k, v in environment.items()
    }


def test_codespace_ui_answers_on_its_forwarded_address_and_refuses_a_forged_one(codespace):
    folder, env = codespace
    env = {
        **env,
        **container_env(folder),
        "PATH": f"{folder / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
    }
    cd, command = readme_commands("Open the MLflow UI")
    assert cd == "cd notebooks"
    port = free_port(5000)
    log_path = folder.parent / "mlflow-ui.log"
    # As written, the README's UI runs MLflow's job runner, whose store leaves a lock file
    # (db_init_lock-...) in the temporary folder: MLflow's, harmless, and kept in this test's.
    (folder.parent / "ui-tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(folder.parent / "ui-tmp")
    with open(log_path, "wb") as log:
        # One worker instead of four: each checks the Host header alike, and four starting
        # at once on a busy 2-core machine can miss uvicorn's start-up deadline.
        ui = subprocess.Popen([*command.split(), "--port", str(port), "--workers", "1"],
                              cwd=folder / "notebooks", env=env, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for(f"http://127.0.0.1:{port}/health", None, ui, log_path)
            status, page = get(f"http://127.0.0.1:{port}/", CODESPACE_HOST.format(port=5000))
            assert status == 200 and "<title>MLflow</title>" in page, (status, page[:300])
            assert get(f"http://127.0.0.1:{port}/", "attacker.example.com")[0] == 403
        finally:
            stop_tree(ui)


@pytest.fixture(scope="module")
def binder_lab(binder) -> Iterator[tuple[str, str]]:
    """JupyterLab as Binder's JupyterHub starts it: under /user/<name>/, reached by a hub name."""
    folder, env, prefix = binder
    options = (f"--ServerApp.base_url={BINDER_BASE_URL}", "--ServerApp.allow_remote_access=True")
    with jupyter_lab(prefix / "bin", folder, env, *options) as (url, token):
        yield url + BINDER_BASE_URL.rstrip("/"), token


def test_binder_opens_the_setup_notebook(binder_lab):
    url, token = binder_lab
    launch = readme_links()["binder"].split("?urlpath=")[1]
    status, page = get(f"{url}/{launch}", BINDER_HOST, token)
    assert status == 200 and "JupyterLab" in page, (status, page[:300])
    notebook = launch.removeprefix("lab/tree/")
    status, model = get(f"{url}/api/contents/{notebook}", BINDER_HOST, token)
    assert status == 200 and json.loads(model)["type"] == "notebook"


def test_binder_launcher_has_the_mlflow_ui_tile_and_it_opens(binder_lab):
    url, token = binder_lab
    status, info = get(f"{url}/server-proxy/servers-info", BINDER_HOST, token)
    assert status == 200, (status, info[:300])
    servers = {s["name"]: s for s in json.loads(info)["server_processes"]}
    assert "mlflow" in servers, f"no MLflow UI tile among {sorted(servers)}"
    assert servers["mlflow"]["launcher_entry"]["enabled"]
    assert "MLflow" in servers["mlflow"]["launcher_entry"]["title"]
    status, page = get(f"{url}/mlflow/", BINDER_HOST, token)  # the tile's address
    assert status == 200 and "<title>MLflow</title>" in page, (status, page[:300])
