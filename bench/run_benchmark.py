"""Measure what a learner waits for: notebooks, tracking overhead, batching, memory.

One run, on one machine, so the numbers compare with each other:

1. each notebook in a fresh kernel in an empty scratch folder (median of ``--repeat`` runs),
   the whole course in order in one folder, and a *floor*: a notebook that only imports
   MLflow, sets the SQLite tracking URI and an experiment, and logs one run with one
   parameter and one metric. Every notebook's time is also given as a ratio to the floor;
2. the tracking overhead of a typical run (notebook 03's, without fit and predict), step by
   step, cold (first run of a process) and warm, and what ``log_model`` costs when it must
   infer the package requirements;
3. 1,000 metric values logged one call at a time against one batched call, on SQLite;
4. the peak memory of a notebook kernel and of the MLflow UI's process tree;
5. the notebooks that train, on months of real size (76,000 trips): time and kernel memory;
6. ``--targets``: the speed targets of docs/PERFORMANCE.md measured side by side in one run
   (the floor, each notebook alone, the whole course in one folder, a helper-started
   tracking server's ``/health``, and a learner's first minute with uv), each marked met or not.

    python bench/run_benchmark.py              # about 10 minutes on 2 cores
    python bench/run_benchmark.py --repeat 1   # quicker, noisier
    python bench/run_benchmark.py --real-size-only   # only 5, about 5 minutes
    python bench/run_benchmark.py --notebooks-only   # only 1, about 12 minutes
    python bench/run_benchmark.py --targets          # only 6, about 8 minutes (--repeat 1: 4)

Results are printed as Markdown; docs/PERFORMANCE.md holds the last measured ones.

Measured as a learner's Python runs: with bytecode caches. ``PYTHONDONTWRITEBYTECODE`` (set on
some machines) is dropped for everything measured, and the environment's packages are compiled
first, as ``pip install`` does (uv and conda learners get the same caches from their first
run on): without them each process compiles every module again, and a fresh kernel importing
MLflow takes 4.0 s instead of 1.4 s on the course's 2-core machine.
Linux (and macOS) only: peak memory comes from ``resource.getrusage``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MIB = 1024 * 1024
sys.path.insert(0, str(ROOT))

FLOOR_CODE = """\
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
mlflow.set_experiment("floor")
with mlflow.start_run():
    mlflow.log_param("p", 1)
    mlflow.log_metric("m", 1.0)
"""
PEAK_RSS_CODE = """\
import resource, sys
_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(_peak * (1 if sys.platform == "darwin" else 1024))
"""


# ---------------------------------------------------------------------------------------
# 1. Notebooks


def execute(nb: nbformat.NotebookNode, folder: Path) -> tuple[float, int]:
    """Run a notebook in a fresh kernel in ``folder``; return (seconds, kernel peak RSS)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a copy: never touch the original
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_RSS_CODE))
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    peak = int(nb.cells[-1].outputs[0]["text"].strip())
    return seconds, peak


def floor_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(FLOOR_CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return nb


def time_alone(nb: nbformat.NotebookNode, repeat: int) -> tuple[float, int]:
    """Median seconds over ``repeat`` runs, each in a new empty folder; and the peak RSS."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            runs.append(execute(nb, Path(folder)))
    return statistics.median(s for s, _ in runs), max(p for _, p in runs)


def bench_notebooks(repeat: int) -> tuple[list[tuple[str, float, int]], float, float, Path]:
    floor, _ = time_alone(floor_notebook(), repeat)
    rows = []
    for path in NOTEBOOKS:
        seconds, peak = time_alone(nbformat.read(path, as_version=4), repeat)
        rows.append((path.stem, seconds, peak))
        print(f"  {path.stem:24} {seconds:6.1f} s", file=sys.stderr)
    course_folder = Path(tempfile.mkdtemp(prefix="bench-course-"))
    start = time.perf_counter()
    for path in NOTEBOOKS:
        execute(nbformat.read(path, as_version=4), course_folder)
    course = time.perf_counter() - start
    return rows, floor, course, course_folder


# ---------------------------------------------------------------------------------------
# 2. and 3. Tracking overhead and batching, in a fresh process each


OVERHEAD_SCRIPT = textwrap.dedent(
    """
    import json, logging, pickle, tempfile, time
    from pathlib import Path
    t0 = time.perf_counter()
    import mlflow, mlflow.sklearn, sklearn
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression
    from helpers.data import load_trips, prepare_features
    imports = time.perf_counter() - t0
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    t = time.perf_counter(); mlflow.set_experiment("overhead"); setup = time.perf_counter() - t

    df = prepare_features(load_trips("green", 2021, 1))
    dv = DictVectorizer()
    X = dv.fit_transform(df[["PU_DO", "trip_distance"]].to_dict(orient="records"))
    model = LinearRegression().fit(X, df["duration"].values)
    requirements = [f"scikit-learn=={sklearn.__version__}"]

    def one_run(infer):
        steps = {}
        def step(name, fn):
            t = time.perf_counter(); fn(); steps[name] = time.perf_counter() - t
        run = None
        def start():
            nonlocal run
            run = mlflow.start_run()
        step("start_run", start)
        step("log_params (4)", lambda: mlflow.log_params({"a": 1, "b": 2, "c": 3, "d": 4}))
        step("log_metrics (3)", lambda: mlflow.log_metrics({"rmse": 1.0, "mae": 2.0, "n": 3}))
        def artifact():
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "preprocessor.b"
                path.write_bytes(pickle.dumps(dv))
                mlflow.log_artifact(path, artifact_path="preprocessor")
        step("log_artifact (preprocessor)", artifact)
        def figure():
            fig, ax = plt.subplots()
            ax.plot([0, 1], [0, 1])
            mlflow.log_figure(fig, "figure.png")
            plt.close(fig)
        step("log_figure", figure)
        if infer:
            step("log_model, requirements inferred",
                 lambda: mlflow.sklearn.log_model(model, name="model", input_example=X[:5]))
        else:
            step("log_model, pip_requirements given",
                 lambda: mlflow.sklearn.log_model(model, name="model", input_example=X[:5],
                                                  pip_requirements=requirements))
        step("end_run", mlflow.end_run)
        return steps

    cold = one_run(infer=False)
    warm = one_run(infer=False)
    inferred = one_run(infer=True)

    client = mlflow.MlflowClient()
    from mlflow.entities import Metric
    with mlflow.start_run() as run:
        t = time.perf_counter()
        for i in range(1000):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        one_by_one = time.perf_counter() - t
    with mlflow.start_run() as run:
        now = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(1000)]
        t = time.perf_counter()
        client.log_batch(run.info.run_id, metrics=metrics)
        batched = time.perf_counter() - t
        stored = len(client.get_metric_history(run.info.run_id, "loss"))
    print(json.dumps({"imports": imports, "setup": setup, "cold": cold, "warm": warm,
                      "inferred": inferred, "one_by_one": one_by_one, "batched": batched,
                      "stored": stored}))
    """
)


def bench_tracking() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as folder:
        out = subprocess.run(
            [sys.executable, "-c", OVERHEAD_SCRIPT], cwd=folder, capture_output=True,
            text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# 4. The UI's memory


def bench_ui(store_folder: Path) -> tuple[float, int, int]:
    """Start the UI on the course's store, load its pages' API calls; (start s, peak, procs)."""
    from helpers.server import MlflowServer, free_port

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # its "MLflow UI: <url>" is not a result
        server = MlflowServer.start(ui=True, folder=store_folder, port=free_port(5000), workers=4)
    started = time.perf_counter() - start
    peak = processes = 0
    try:
        for path in ("/", "/ajax-api/2.0/mlflow/experiments/search?max_results=100",
                     "/api/2.0/mlflow/registered-models/search"):  # fmt: skip
            for _ in range(5):
                urllib.request.urlopen(server.url + path).read()
                tree = server.processes()
                processes = max(processes, len(tree))
                peak = max(peak, sum(_rss(p) for p in tree))
    finally:
        server.stop()
    return started, peak, processes


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


# ---------------------------------------------------------------------------------------
# 6. The speed targets, side by side

TARGETS = {"course": 90.0, "notebook": 3.0, "server notebook": 4.0, "first minute": 30.0,
           "health": 4.0}  # fmt: skip
"""Seconds (or times the floor) of each target of docs/PERFORMANCE.md."""
SERVER_NOTEBOOKS = ("09", "10", "11")
"""The notebooks that start servers: they may take up to 4x the floor instead of 3x."""

HEALTH_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import mlflow
    from helpers.server import MlflowServer, free_port
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment("health")  # the store exists, as in a notebook that starts a server
    seconds = []
    for _ in range(int(sys.argv[1])):
        start = time.perf_counter()
        server = MlflowServer.start("sqlite:///mlflow.db", port=free_port(5000))
        seconds.append(time.perf_counter() - start)
        server.stop()
    print(json.dumps(seconds))
    """
)


def bench_server_health(repeat: int) -> list[float]:
    """Seconds from ``MlflowServer.start`` to ``/health`` answering, in a warm process.

    Warm: MLflow is imported and the store exists, as in notebooks 09 and 10 when they start
    their servers; a first start of the machine (cold disk cache) is not what is measured.
    """
    with tempfile.TemporaryDirectory(prefix="bench-health-") as folder:
        out = subprocess.run(
            [sys.executable, "-c", HEALTH_SCRIPT, str(repeat + 1)], cwd=folder,
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])[1:]  # the first start warms the disk cache


def print_targets(rows: list, floor: float, course: float, health: list[float],
                  first_minute: dict[str, float] | None) -> None:  # fmt: skip
    """The targets table: what each target asks, what was measured, and whether it is met."""

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    print("## Targets, measured side by side in one run\n")
    print("| target | measured | met? |")
    print("|---|---|---|")
    print(f"| the whole course in one folder under {TARGETS['course']:.0f} s | {course:.1f} s "
          f"| {met(course < TARGETS['course'])} |")  # fmt: skip
    for name, seconds, _ in rows:
        limit = TARGETS["server notebook" if name[:2] in SERVER_NOTEBOOKS else "notebook"]
        ratio = seconds / floor
        print(f"| {name} at most {limit:.0f}x the floor ({floor:.1f} s) | {seconds:.1f} s, "
              f"{ratio:.1f}x | {met(ratio <= limit)} |")  # fmt: skip
    median = statistics.median(health)
    print(
        f"| a helper-started tracking server answers `/health` within {TARGETS['health']:.0f} s "
        f"| {median:.1f} s (median of {len(health)}) | {met(median <= TARGETS['health'])} |"
    )
    if first_minute is not None:
        total = sum(first_minute.values())
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in first_minute.items())
        print(
            f"| a learner's first minute with uv (warm cache) under {TARGETS['first minute']:.0f}"
            f" s | {total:.1f} s ({steps}) | {met(total < TARGETS['first minute'])} |"
        )
    print()


# ---------------------------------------------------------------------------------------
# 5. A month of real size


REAL_SIZE_NOTEBOOKS = ("03", "04", "05", "06", "07", "08", "13")
"""The notebooks that train on the trip data; the others do not load it."""


def bench_real_size(
    prefixes: tuple[str, ...] = REAL_SIZE_NOTEBOOKS,
) -> list[tuple[str, float, int]]:
    """Each data notebook once, alone, on sample months of a real month's size.

    A learner with ``COURSE_DATA_SOURCE=tlc`` trains on about 76,000 trips a month, six times
    the sample; the kernel inherits ``COURSE_SAMPLE_TRIPS`` and generates months that big.
    """
    from helpers.data import REAL_MONTH_TRIPS

    rows = []
    os.environ["COURSE_SAMPLE_TRIPS"] = str(REAL_MONTH_TRIPS)
    try:
        for path in NOTEBOOKS:
            if path.name.startswith(prefixes):
                seconds, peak = time_alone(nbformat.read(path, as_version=4), 1)
                rows.append((path.stem, seconds, peak))
                print(f"  real size {path.stem:24} {seconds:6.1f} s", file=sys.stderr)
    finally:
        del os.environ["COURSE_SAMPLE_TRIPS"]
    return rows


def print_real_size(rows: list[tuple[str, float, int]]) -> None:
    from helpers.data import REAL_MONTH_TRIPS

    print(f"## A month of real size ({REAL_MONTH_TRIPS:,} trips a month, each notebook once)\n")
    print("| notebook | seconds | kernel peak memory |")
    print("|---|---:|---:|")
    for name, seconds, peak in rows:
        print(f"| {name} | {seconds:.1f} | {peak / MIB:.0f} MiB |")
    print()


# ---------------------------------------------------------------------------------------


def print_notebooks(rows: list, floor: float, course: float, repeat: int) -> None:
    """Section 1's table: each notebook alone, against the floor, and the course in order."""
    print(f"## Notebooks (median of {repeat}, each alone in a fresh kernel and folder)\n")
    print("| notebook | seconds | x floor | kernel peak memory |")
    print("|---|---:|---:|---:|")
    print(f"| floor (import, URI, experiment, 1 run) | {floor:.1f} | 1.0 | |")
    for name, seconds, peak in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / floor:.1f} | {peak / MIB:.0f} MiB |")
    print(f"\nSum of the notebooks alone: {sum(s for _, s, _ in rows):.1f} s. "
          f"The whole course in order in one folder: **{course:.1f} s**.\n")  # fmt: skip


def compile_packages() -> None:
    """Compile the environment's packages to bytecode once, as ``pip install`` does (a no-op
    for what is compiled already): a learner's imports read those caches, not the sources."""
    import sysconfig

    start = time.perf_counter()
    # check=False: a package's odd test file that does not compile is not what is measured.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", sysconfig.get_paths()["purelib"]],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"packages compiled to bytecode ({time.perf_counter() - start:.0f} s)", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per notebook (median)")
    parser.add_argument(
        "--real-size-only", action="store_true", help="only section 5: months of real size"
    )
    parser.add_argument(
        "--notebooks-only", action="store_true", help="only section 1: the notebooks' times"
    )
    parser.add_argument(
        "--targets", action="store_true", help="only section 6: the speed targets, met or not"
    )
    parser.add_argument("--no-first-minute", action="store_true", help="with --targets: skip it")
    args = parser.parse_args()
    from first_minute import as_a_learner_runs  # bench/ is on the path: run as a script

    as_a_learner_runs()
    compile_packages()
    if args.targets:
        rows, floor, course, course_folder = bench_notebooks(args.repeat)
        shutil.rmtree(course_folder, ignore_errors=True)
        health = bench_server_health(args.repeat)
        first = None
        if not args.no_first_minute:
            from first_minute import first_minute

            first_minute("uv")  # warms uv's cache, as on a learner's second course or laptop
            first = first_minute("uv")
        print_targets(rows, floor, course, health, first)
        print_notebooks(rows, floor, course, args.repeat)
        return 0
    if args.real_size_only:
        print_real_size(bench_real_size())
        return 0

    print(f"Benchmarking on {platform.platform()}, {psutil.cpu_count()} CPUs, "
          f"Python {platform.python_version()}", file=sys.stderr)  # fmt: skip
    rows, floor, course, course_folder = bench_notebooks(args.repeat)
    if args.notebooks_only:
        shutil.rmtree(course_folder, ignore_errors=True)
        print_notebooks(rows, floor, course, args.repeat)
        return 0
    tracking = bench_tracking()
    ui_start, ui_peak, ui_processes = bench_ui(course_folder)
    shutil.rmtree(course_folder, ignore_errors=True)
    real_size = bench_real_size()
    print_notebooks(rows, floor, course, args.repeat)
    print("## Tracking overhead of a typical run (notebook 03's, without fit and predict)\n")
    print("| step | cold (first run) | warm | requirements inferred |")
    print("|---|---:|---:|---:|")
    for step in tracking["cold"]:
        inferred_step = step.replace("pip_requirements given", "requirements inferred")
        inferred = tracking["inferred"].get(inferred_step, tracking["inferred"].get(step))
        print(f"| {step} | {tracking['cold'][step]:.3f} | {tracking['warm'][step]:.3f} "
              f"| {inferred:.3f} |")  # fmt: skip
    totals = {k: sum(tracking[k].values()) for k in ("cold", "warm", "inferred")}
    print(f"| **total** | **{totals['cold']:.2f}** | **{totals['warm']:.2f}** "
          f"| **{totals['inferred']:.2f}** |")  # fmt: skip
    print(f"\nImporting MLflow, scikit-learn, matplotlib and the helpers: "
          f"{tracking['imports']:.1f} s; first `set_experiment` (creates the database): "
          f"{tracking['setup']:.2f} s.\n")  # fmt: skip

    print("## 1,000 metric values on SQLite\n")
    ratio = tracking["one_by_one"] / tracking["batched"]
    print(f"- one `mlflow.log_metric` call each: {tracking['one_by_one']:.2f} s")
    print(f"- one `MlflowClient.log_batch` call: {tracking['batched']:.3f} s "
          f"({ratio:.0f}x faster; {tracking['stored']} values stored)\n")  # fmt: skip

    print("## The MLflow UI\n")
    print(f"- `mlflow ui --workers 4` answers after {ui_start:.1f} s, as {ui_processes} "
          f"processes using {ui_peak / MIB:.0f} MiB together at peak.\n")  # fmt: skip
    print_real_size(real_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
