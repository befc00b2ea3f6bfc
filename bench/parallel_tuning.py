"""Measure a shared Optuna search on one tracking server: 1, 2 and 4 workers, four storages.

The search of the tuning-at-scale lesson, for real: an ``mlflow server`` (SQLite, or
PostgreSQL, behind it), one parent run, and N ``python -m helpers.tune_worker`` processes
started by :class:`helpers.scale.Workers`, which share one study through its Optuna storage;
every trial is a child run on the server. The same search of ``--trials`` trials (40: one
worker 40, two 20 each, four 10 each) is run, each row on a new server with a new store:

1. the speedup: model ``forest`` (CPU-bound, about a second a trial), journal storage, a
   SQLite-backed server, with 1, 2 and 4 workers;
2. the storages, 4 workers, model ``ridge`` (fast trials: the storage's cost shows): journal,
   RDB on a SQLite file, RDB on PostgreSQL, and MlflowStorage (the study in the tracking
   server itself: slow, ``--skip-mlflow-storage`` leaves it out);
3. the tracking server's backend store, 4 workers, journal, ridge: SQLite or PostgreSQL.

What is measured, per row:

- **search phase**: from the first trial's start to the last trial's end, as the study records
  them (``max(datetime_complete) - min(datetime_start)``): the workers' imports and data
  loading are not in it, and no hook is added to the helpers. The slowest worker's own
  "trials in Y s" (the last line of its log) is shown beside it as a check;
- **wall**: from starting the workers to the last one ending, their start included;
- the study and MLflow must agree: as many COMPLETE trials as FINISHED child runs with an
  ``rmse``, for the same trials, with the same best; **lost** = trials - min(the two);
- **peak memory**: the sum of RSS of the tracking server's process tree and of the workers'
  trees, sampled every 0.5 s while the workers run (PostgreSQL itself is not counted).

    python bench/parallel_tuning.py                        # about 15 minutes on 2 cores
    python bench/parallel_tuning.py --skip-mlflow-storage  # without its 3+ minutes
    python bench/parallel_tuning.py --quick                # 8 trials, no PostgreSQL: 3 min
    python bench/parallel_tuning.py --write                # also into docs/PERFORMANCE.md

PostgreSQL (Debian's server programs) is started for the run in a scratch folder on
127.0.0.1, as tests/test_team_server_postgres.py does, with a random password that is only
ever in the environment (``PGPASSWORD``), never in a URI or a command line. Everything this
starts (servers, PostgreSQL, workers) is stopped at the end, on Ctrl+C and on ``kill`` too,
and the scratch folder is removed. Measured as a learner's Python runs: with bytecode caches
(``PYTHONDONTWRITEBYTECODE`` dropped, the packages compiled first; see run_benchmark.py).
Linux only (PostgreSQL's layout, ``runuser`` as root).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIB = 1024 * 1024
PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"
SECTION = "## Tuning at scale: many workers, one tracking server"
WORKER_LINE = re.compile(r"^(\S+): ready in ([\d.]+) s, trials in ([\d.]+) s\s*$", re.M)
"""The last line of a worker's log (helpers.tune_worker's main)."""
TIMEOUT = 900
"""Seconds a row's workers may take, start included (MlflowStorage: ``MLFLOW_TIMEOUT``)."""
MLFLOW_TIMEOUT = 3600
"""MlflowStorage took 188 s for 40 trivial trials elsewhere: an hour leaves room for a loaded
machine."""
SAMPLE_EVERY = 0.5
"""Seconds between two memory samples."""


# ---------------------------------------------------------------------------------------
# PostgreSQL, throw-away, on 127.0.0.1 (as tests/test_team_server_postgres.py starts it)


def postgres_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL server programs (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """A PostgreSQL server in ``folder`` on 127.0.0.1, user ``bench``, password in the
    environment only; :meth:`database` creates a database and returns its URI."""

    user = "bench"

    def __init__(self, folder: Path, password: str):
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL's server programs are not installed (apt-get install postgresql); "
                "or run with --skip-postgres."
            )
        from helpers.server import free_port

        self.bin, self.folder, self.password = bin_dir, folder, password
        self.as_owner: list[str] = []
        folder.mkdir()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(folder, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        password_file = folder / "password"
        password_file.write_text(password)
        if self.as_owner:
            shutil.chown(password_file, "postgres")
        self.data, self.port = folder / "data", free_port(55432)
        self.started = False
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "scram-sha-256",
                  f"--pwfile={password_file}")  # fmt: skip
        password_file.unlink()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(folder / "log"), "-w", "start",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {folder}")  # fmt: skip
        self.started = True

    def _run(self, program: str, *arguments: str) -> None:
        subprocess.run([*self.as_owner, str(self.bin / program), *arguments], check=True,
                       capture_output=True, text=True,
                       env={**os.environ, "PGPASSWORD": self.password})  # fmt: skip

    def database(self, name: str) -> str:
        """Create database ``name``; its SQLAlchemy URI (psycopg 3 named), no password."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
            password=self.password, autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            self.started = False
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


# ---------------------------------------------------------------------------------------
# One row: a new server, a study, N workers


@dataclass
class Row:
    workers: int
    model: str
    storage: str  # journal, sqlite, postgresql, mlflow
    backend: str  # sqlite, postgresql
    group: str  # speedup, storage, backend
    search: float = math.nan
    slowest_worker: float = math.nan
    wall: float = math.nan
    complete: int = 0
    finished: int = 0
    lost: int = 0
    peak_rss: int = 0
    agree: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return (f"{self.workers} worker{'s' if self.workers > 1 else ''}, {self.model}, "
                f"{self.storage} storage, {self.backend} backend")  # fmt: skip


STORAGE_NAMES = {
    "journal": "journal file",
    "sqlite": "RDB, SQLite file",
    "postgresql": "RDB, PostgreSQL",
    "mlflow": "MlflowStorage",
}


class MemorySampler(threading.Thread):
    """Sums the RSS of the given processes' trees every :data:`SAMPLE_EVERY` s; keeps the peak.

    Why the trees of known process ids, and not :meth:`Background.processes`: that one reads
    every process's environment on the machine, each time; this costs little while measured.
    """

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids, self.peak = pids, 0
        self.halt = threading.Event()

    def sample(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
        return total

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.sample())
            if self.halt.wait(SAMPLE_EVERY):
                return


class _Unwatched:
    """A study for :meth:`Workers.wait` to poll that reads nothing.

    Why: ``wait`` reads the whole study every 0.5 s, even with ``show=False``; on
    MlflowStorage that is a search and four requests a trial to the server being measured,
    every 0.5 s. The real study is read once, after the workers have ended.
    """

    @staticmethod
    def get_trials(deepcopy: bool = True, states: object = None) -> list:
        return []


def worker_seconds(folder: Path, count: int) -> list[float]:
    """Each worker's "trials in Y s", from the last line of its log (none if it failed)."""
    seconds = []
    for number in range(count):
        log = folder / f"worker-{number}.log"
        found = WORKER_LINE.findall(log.read_text(errors="replace")) if log.exists() else []
        if found:
            seconds.append(float(found[-1][2]))
    return seconds


def run_row(row: Row, trials: int, folder: Path, postgres: Postgres | None, number: int) -> None:
    """Run ``row``'s search in ``folder`` and fill in its measures."""
    import mlflow
    import optuna
    from optuna.trial import TrialState

    from helpers.scale import Workers, worker_arguments
    from helpers.server import MlflowServer, free_port
    from helpers.tune_worker import open_storage

    folder.mkdir()
    if row.backend == "postgresql":
        backend_uri = postgres.database(f"mlflow_{number}")
    else:
        backend_uri = f"sqlite:///{folder / 'mlflow.db'}"
    storage_url = {
        "journal": f"journal:{folder / 'journal.log'}",
        "sqlite": f"sqlite:///{folder / 'optuna.db'}",
        "mlflow": "mlflow",
    }.get(row.storage) or (postgres.database(f"optuna_{number}") if postgres else "")
    env = {"PGPASSWORD": postgres.password} if postgres else {}
    server = workers = storage = None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # "Port 5000 is in use..." is no result
            server = MlflowServer.start(
                backend_uri, artifacts_destination=str(folder / "artifacts"),
                port=free_port(5600), folder=folder, env=env,
            )  # fmt: skip
        mlflow.set_tracking_uri(server.url)
        client = mlflow.MlflowClient(server.url)
        experiment_id = client.create_experiment(f"parallel-tuning-{number}")
        parent = client.create_run(experiment_id, run_name="search").info.run_id
        study_name = f"search-{number}"
        storage = open_storage(storage_url, experiment_id)
        optuna.create_study(study_name=study_name, storage=storage, direction="minimize")

        arguments = worker_arguments(
            study_name, storage_url, server.url, parent, trials // row.workers, row.model
        )
        timeout = MLFLOW_TIMEOUT if row.storage == "mlflow" else TIMEOUT
        started = time.perf_counter()
        workers = Workers(row.workers, arguments, folder)
        sampler = MemorySampler([server.process.pid, *(w.process.pid for w in workers.workers)])
        sampler.start()
        try:  # wait prints a failed worker's log tail: to stderr, the table is stdout's
            with contextlib.redirect_stdout(sys.stderr):
                workers.wait(_Unwatched(), trials, timeout=timeout, show=False)
        finally:
            sampler.halt.set()
            sampler.join()
        row.wall = time.perf_counter() - started
        row.peak_rss = sampler.peak
        codes = {w.worker_name: w.exit_code() for w in workers.workers}
        row.problems += [f"{name} ended with code {code}" for name, code in codes.items() if code]

        study = optuna.load_study(study_name=study_name, storage=storage)
        measure(row, trials, study.get_trials(deepcopy=False), client, experiment_id, parent)
        spans = worker_seconds(folder, row.workers)
        row.slowest_worker = max(spans) if spans else math.nan
        if len(spans) < row.workers:
            row.problems.append(f"{row.workers - len(spans)} worker(s) printed no timing line")
        left = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if left:
            row.problems.append(f"trials left RUNNING: {left}")
        client.set_terminated(parent, "FINISHED")
    finally:
        if workers is not None:
            workers.stop()
        if server is not None:
            server.stop()
        engine = getattr(storage, "engine", None)  # RDBStorage: close its connections
        if engine is not None:
            engine.dispose()
        mlflow.set_tracking_uri(None)


def measure(row: Row, trials: int, found: list, client, experiment_id: str, parent: str) -> None:
    """The search phase, and whether the study and MLflow agree, into ``row``."""
    from optuna.trial import TrialState

    complete = [t for t in found if t.state == TrialState.COMPLETE]
    row.complete = len(complete)
    if complete:
        first = min(t.datetime_start for t in complete)
        last = max(t.datetime_complete for t in complete)
        row.search = (last - first).total_seconds()
    # Every child run of the parent, in every experiment: they belong in the parent's, and
    # a worker that puts them elsewhere (tune_worker before f773e51: in Default) is a problem.
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs, token = [], None
    while True:  # page by page
        page = client.search_runs(
            experiments, filter_string=f"tags.mlflow.parentRunId = '{parent}'",
            max_results=1000, page_token=token,
        )  # fmt: skip
        runs += page
        token = page.token
        if not token:
            break
    elsewhere = sorted({r.info.experiment_id for r in runs} - {experiment_id})
    if elsewhere:
        row.problems.append(
            f"child runs in experiment(s) {elsewhere}, not in their parent's ({experiment_id})"
        )
    scored = [r for r in runs if r.info.status == "FINISHED" and "rmse" in r.data.metrics]
    row.finished = len(scored)
    row.lost = trials - min(row.complete, row.finished)
    others = sorted({r.info.status for r in runs} - {"FINISHED"})
    if others:
        counts = {s: sum(r.info.status == s for r in runs) for s in others}
        row.problems.append(f"child runs not FINISHED: {counts}")
    trial_numbers = sorted(t.number for t in complete)
    run_numbers = sorted(int(r.data.tags.get("optuna.trial", -1)) for r in scored)
    problems = []
    if trial_numbers != run_numbers:
        problems.append(f"trials {trial_numbers} but runs of trials {run_numbers}")
    if complete and scored:
        best_trial = min(complete, key=lambda t: t.value)
        best_run = min(scored, key=lambda r: r.data.metrics["rmse"])
        if not math.isclose(best_trial.value, best_run.data.metrics["rmse"], rel_tol=1e-9):
            problems.append(
                f"best trial {best_trial.number} rmse {best_trial.value:.6f}, best run "
                f"{best_run.data.tags.get('optuna.trial')} rmse "
                f"{best_run.data.metrics['rmse']:.6f}"
            )
        with_run = client.get_run(best_trial.user_attrs.get("mlflow_run_id", best_run.info.run_id))
        if not math.isclose(with_run.data.metrics.get("rmse", math.nan), best_trial.value):
            problems.append(f"best trial {best_trial.number}'s own run has another rmse")
    elif complete or scored:
        problems.append("one side has no result")
    row.agree = not problems and row.complete == row.finished
    row.problems += problems


# ---------------------------------------------------------------------------------------
# The plan, the table, the section of docs/PERFORMANCE.md


def plan(quick: bool, skip_postgres: bool, skip_mlflow_storage: bool) -> list[Row]:
    rows = [Row(n, "forest", "journal", "sqlite", "speedup") for n in (1, 2, 4)]
    storages = ["journal", "sqlite", "postgresql", "mlflow"]
    if skip_postgres:
        storages.remove("postgresql")
    if skip_mlflow_storage:
        storages.remove("mlflow")
    rows += [Row(4, "ridge", storage, "sqlite", "storage") for storage in storages]
    if not skip_postgres:  # the SQLite backend's row is the journal row above
        rows.append(Row(4, "ridge", "journal", "postgresql", "backend"))
    return rows


def seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| workers | model | storage | backend | search phase s | slowest worker s | wall s "
        "| trials COMPLETE | child runs FINISHED | lost | study = MLflow | peak memory |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.workers} | {row.model} | {STORAGE_NAMES[row.storage]} | {row.backend} "
            f"| {seconds(row.search)} | {seconds(row.slowest_worker)} | {seconds(row.wall)} "
            f"| {row.complete} | {row.finished} | {row.lost} | {'yes' if row.agree else '**no**'} "
            f"| {row.peak_rss / MIB:,.0f} MiB |"
        )
    return "\n".join(lines)


def speedup_line(rows: list[Row]) -> str:
    forest = {row.workers: row.search for row in rows if row.group == "speedup"}
    one, two = forest.get(1, math.nan), forest.get(2, math.nan)
    lost = sum(row.lost for row in rows)
    return (f"speedup 2 workers: {one / two:.2f}x (1 worker {one:.1f} s, 2 workers {two:.1f} s), "
            f"lost {lost}")  # fmt: skip


def machine() -> str:
    import mlflow
    import optuna
    import sklearn

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    return (
        f"{cores} cores (nproc), {psutil.virtual_memory().total / 2**30:.1f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"MLflow {mlflow.__version__}, Optuna {optuna.__version__}, scikit-learn "
        f"{sklearn.__version__}; load average before the run {load}"
    )


def section(rows: list[Row], trials: int, command: str, facts: str) -> str:
    forest = {row.workers: row.search for row in rows if row.group == "speedup"}
    four = forest.get(1, math.nan) / forest.get(4, math.nan)
    seen: dict[str, list[str]] = {}  # a problem, and the rows it was seen on
    for row in rows:
        for problem in row.problems:
            seen.setdefault(problem, []).append(row.label)
    problems = [
        f"- {'every row' if len(labels) == len(rows) else '; '.join(labels)}: {problem}"
        for problem, labels in seen.items()
    ]
    skipped = [name for name in ("postgresql", "mlflow")
               if not any(row.storage == name for row in rows)]  # fmt: skip
    text = [
        SECTION,
        "",
        f"`{command}` ({datetime.date.today().isoformat()}; {facts}) runs the search of the "
        f"tuning-at-scale lesson for real: {trials} trials shared by 1, 2 or 4 "
        "`python -m helpers.tune_worker` processes (`helpers.scale.Workers`, trials split "
        "evenly), each trial a child run on an `mlflow server` (one uvicorn worker) that has a "
        "new store for each row. The **search phase** is the study's own record, from the "
        "first trial's start to the last trial's end (the workers' imports and data are not "
        'in it); the slowest worker\'s own "trials in" is beside it; **wall** includes '
        "starting the workers. **Lost** is the trials missing from the study or from MLflow "
        "(COMPLETE trials against FINISHED child runs with an `rmse`); on every row the two "
        "must hold the same trials with the same best. **Peak memory** is the sum of RSS of "
        "the server's process tree and the workers', sampled every 0.5 s (PostgreSQL not "
        "counted).",
        "",
        table(rows),
        "",
        f"`{speedup_line(rows)}`; 4 workers on the 2 cores: {four:.2f}x.",
        "",
        "The forest rows give the speedup (a second of CPU a trial: two workers use the two "
        "cores, four share them). The ridge rows, whose trials take milliseconds, show what "
        "the storage and the tracking server cost per trial.",
    ]
    if skipped:
        text += ["", "Not measured in this run: " + ", ".join(skipped) + " (skipped)."]
    if problems:
        text += ["", "Problems seen:", "", *problems]
    return "\n".join(text) + "\n"


def write_section(text: str, path: Path = PERFORMANCE) -> None:
    """Replace the section in ``path`` (up to the next ``## `` heading), or append it."""
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        body = "".join(lines).rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))  # fmt: skip
        after = "".join(lines[end:])
        body = "".join(lines[:start]) + text + ("\n" + after if after else "")
    path.write_text(body)


# ---------------------------------------------------------------------------------------


class Stopped(KeyboardInterrupt):
    """``kill`` or a closed terminal: stopped as Ctrl+C is, with every ``finally`` run."""


def _stop_on_signals() -> None:
    def stop(signum: int, frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), stop)
    # Ctrl+C raises KeyboardInterrupt even when started from a shell that ignores SIGINT
    # for background jobs (``... &``): ``kill -INT`` stops it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, help="trials of each search (default 40, --quick 8); a multiple of 4"
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="8 trials, without PostgreSQL and MlflowStorage: checks the script",
    )  # fmt: skip
    parser.add_argument(
        "--skip-mlflow-storage", action="store_true",
        help="leave out MlflowStorage (its row takes minutes)",
    )  # fmt: skip
    parser.add_argument(
        "--skip-postgres", action="store_true",
        help="leave out the PostgreSQL rows (no server programs installed)",
    )  # fmt: skip
    parser.add_argument(
        "--write", action="store_true",
        help=f"write the section into {PERFORMANCE.relative_to(ROOT)}",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = 8 if args.quick else 40
    if args.trials < 4 or args.trials % 4:
        parser.error(f"--trials must be a multiple of 4 (1, 2 and 4 workers), not {args.trials}")
    if args.quick:
        args.skip_postgres = args.skip_mlflow_storage = True
    if args.write and args.quick:
        parser.error("--write records the full benchmark: run it without --quick")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    from first_minute import as_a_learner_runs  # bench/ is on the path: run as a script
    from run_benchmark import compile_packages

    _stop_on_signals()
    as_a_learner_runs()
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # no "View run" links
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    compile_packages()
    facts = machine()
    print(f"Benchmarking on {facts}", file=sys.stderr)
    rows = plan(args.quick, args.skip_postgres, args.skip_mlflow_storage)
    scratch = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    scratch.chmod(0o755)  # PostgreSQL's user must reach its folder inside
    password = secrets.token_urlsafe(18)
    had_password = os.environ.get("PGPASSWORD")
    postgres = None
    try:
        if not args.skip_postgres:
            postgres = Postgres(scratch / "postgres", password)
            os.environ["PGPASSWORD"] = password  # for the workers' and this process's psycopg
        for number, row in enumerate(rows):
            print(f"  {row.label} ...", file=sys.stderr, flush=True)
            try:
                run_row(row, args.trials, scratch / f"row-{number}", postgres, number)
            except Exception as error:  # noqa: BLE001 - one failed row, said; the others run
                lines = str(error).strip().splitlines() or [""]
                row.problems.append(f"failed: {type(error).__name__}: {lines[0][:300]}")
                row.lost, row.agree = args.trials, False
            print(f"  {row.label}: search {seconds(row.search)} s, wall {seconds(row.wall)} s, "
                  f"lost {row.lost}{'' if row.agree else ', study and MLflow DISAGREE'}"
                  + "".join(f"\n    {p}" for p in row.problems),
                  file=sys.stderr, flush=True)  # fmt: skip
    except KeyboardInterrupt as error:
        print(f"Stopped ({str(error) or 'Ctrl+C'}): stopping everything.", file=sys.stderr)
        return 130
    finally:
        if had_password is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = had_password
        with contextlib.suppress(Exception):
            if postgres is not None:
                postgres.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    flags = ["--quick"] if args.quick else ["--write"]
    if args.trials != (8 if args.quick else 40):
        flags.append(f"--trials {args.trials}")
    if args.skip_mlflow_storage and not args.quick:
        flags.append("--skip-mlflow-storage")
    if args.skip_postgres and not args.quick:
        flags.append("--skip-postgres")
    command = " ".join(["python bench/parallel_tuning.py", *flags])
    text = section(rows, args.trials, command, facts)
    print(text)
    if args.write:
        write_section(text)
        print(f"written to {PERFORMANCE.relative_to(ROOT)}", file=sys.stderr)
    print(speedup_line(rows))
    return 0 if all(row.agree and not row.problems for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
