"""The course's peak memory, all of it at once: what the smallest machine must hold.

Why: a cloud machine (a Codespace, a Binder session) is chosen by its memory, and the course's
heaviest moment is not one kernel but everything a learner has running together: JupyterLab,
the MLflow UI started the README's way, and the notebook whose servers are up (09 starts
``mlflow server``, 10 two of them and an S3 store, 11 a model server, 12 a server and its
tuning workers). This starts JupyterLab
and the UI in a scratch copy of the notebooks, runs 09 to 12 one after the other, each in
a fresh kernel (nbclient), and samples every 0.2 s the memory of this process's whole tree:
the sum of RSS (what ``top`` shows; shared pages counted once per process) and of PSS (shared
pages divided between the processes that share them: what the machine really gives).

    python bench/peak_memory.py             # about 2 minutes on 2 cores; Linux only (PSS)
    python bench/peak_memory.py --no-ui     # without the UI: JupyterLab and the notebooks
    python bench/peak_memory.py --no-ui 12_tuning_at_scale   # one notebook
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.server import free_port  # noqa: E402

MIB = 1024 * 1024
NOTEBOOKS = [
    "09_tracking_server", "10_mlflow_in_practice", "11_serving_and_alternatives",
    "12_tuning_at_scale",
]  # fmt: skip


class Sampler(threading.Thread):
    """Samples the RSS and PSS sums of this process's tree until stopped; keeps the peaks."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.phase = "start"
        self.peak_rss: dict[str, int] = {}
        self.peak_pss: dict[str, int] = {}

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(0.2):
            rss = pss = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    info = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss, pss = rss + info.rss, pss + info.pss
            self.peak_rss[self.phase] = max(self.peak_rss.get(self.phase, 0), rss)
            self.peak_pss[self.phase] = max(self.peak_pss.get(self.phase, 0), pss)


def wait_for(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ui", action="store_true", help="do not start the MLflow UI")
    parser.add_argument("notebooks", nargs="*", default=NOTEBOOKS, help="default: 09 to 12")
    arguments = parser.parse_args()
    with_ui = not arguments.no_ui
    sampler = Sampler()
    sampler.start()
    folder = Path(tempfile.mkdtemp(prefix="peak-memory-"))
    notebooks = folder / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bin_dir = Path(sys.executable).parent
    lab_port, ui_port, token = free_port(8888), free_port(5000), secrets.token_hex(16)
    lab = subprocess.Popen(
        [bin_dir / "jupyter", "lab", "--no-browser", "--port", str(lab_port),
         f"--IdentityProvider.token={token}", "--allow-root"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ui = subprocess.Popen(
        [bin_dir / "mlflow", "ui", "--backend-store-uri", "sqlite:///mlflow.db",
         "--port", str(ui_port)],
        cwd=notebooks, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) if with_ui else None  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{lab_port}/api/status?token={token}")
        if ui:
            wait_for(f"http://127.0.0.1:{ui_port}/health")
        sampler.phase = "JupyterLab and the UI, idle" if ui else "JupyterLab, idle"
        time.sleep(5)
        for name in arguments.notebooks:
            sampler.phase = name
            started = time.monotonic()
            notebook = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
            NotebookClient(
                notebook, timeout=600, kernel_name="python3",
                resources={"metadata": {"path": str(notebooks)}},
            ).execute()  # fmt: skip
            print(f"{name}: ran in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        sampler.stop.set()
        sampler.join()
        for server in [s for s in (ui, lab) if s]:
            for child in psutil.Process(server.pid).children(recursive=True):
                child.terminate()
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    print("\n| while | peak RSS sum | peak PSS sum |\n|---|---:|---:|")
    for phase, rss in sampler.peak_rss.items():
        if phase != "start":
            print(f"| {phase} | {rss / MIB:,.0f} MiB | {sampler.peak_pss[phase] / MIB:,.0f} MiB |")
    overall = max(sampler.peak_pss.values()) / MIB
    print(f"\nPeak of the whole course (PSS): {overall:,.0f} MiB; "
          f"RSS: {max(sampler.peak_rss.values()) / MIB:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
