"""Where a tracking server's SQLite backend store stops being enough: many writers at once.

Each writer is what a tuning worker does per trial, as fast as it can: open a child run, log
its parameters and its metric, end it. The writers are threads of this process (cheap, so
there can be many; the server cannot tell them from processes: each request is an HTTP call).
For each backend store (SQLite, and PostgreSQL if its programs are installed) and each number
of server processes (``mlflow server --workers``), it counts the runs made per second, the
errors, and the "database is locked" lines in the server's log.

    python bench/server_writers.py                    # prints the table
    python bench/server_writers.py --write            # and puts it into docs/PERFORMANCE.md
    python bench/server_writers.py --quick            # a short check of the script

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
import platform
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import mlflow  # noqa: E402

from helpers.server import MlflowServer, free_port  # noqa: E402

PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"
HEADING = "## The tracking server under many writers"


def write_runs(client: mlflow.MlflowClient, experiment_id: str, parent_id: str, count: int,
               errors: list[str]) -> int:  # fmt: skip
    """One writer: ``count`` child runs, each as a trial logs it. Returns the runs made."""
    made = 0
    for number in range(count):
        try:
            run = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent_id})
            client.log_batch(
                run.info.run_id,
                params=[mlflow.entities.Param("alpha", str(number)),
                        mlflow.entities.Param("features", "route")],
                metrics=[mlflow.entities.Metric("rmse", 6.0 + number, 0, 0)],
            )  # fmt: skip
            client.set_terminated(run.info.run_id, "FINISHED")
            made += 1
        except Exception as error:  # noqa: BLE001 - counted: an error is a result here
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
    return made


def measure(url: str, writers: int, runs_each: int) -> dict:
    """``writers`` threads of ``runs_each`` runs against the server at ``url``."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # an error must show, not be retried
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    client = mlflow.MlflowClient(url)
    name = f"writers-{writers}-{time.monotonic_ns()}"
    experiment_id = client.create_experiment(name)
    parent = client.create_run(experiment_id, run_name="search")
    errors: list[str] = []
    lock = threading.Barrier(writers)

    def writer() -> int:
        lock.wait()  # all start at once
        return write_runs(client, experiment_id, parent.info.run_id, runs_each, errors)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        made = sum(pool.map(lambda _: writer(), range(writers)))
    seconds = time.monotonic() - started
    client.set_terminated(parent.info.run_id, "FINISHED")
    found = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=5000
    )
    finished = sum(
        1 for run in found if run.info.status == "FINISHED" and "rmse" in run.data.metrics
    )
    return {"runs": made, "finished": finished, "seconds": seconds, "errors": errors}


def postgres_available() -> bool:
    from parallel_tuning import postgres_bin  # noqa: PLC0415 - the bench's PostgreSQL helper

    return postgres_bin() is not None


def run(quick: bool) -> list[dict]:
    rows = []
    writer_counts = (4, 16) if quick else (1, 8, 24, 48)
    runs_each = 5
    backends = ["sqlite"] + ([] if quick or not postgres_available() else ["postgresql"])
    for backend in backends:
        for server_workers in (1, 4):
            with tempfile.TemporaryDirectory() as folder, backend_store(backend, folder) as store:
                uri, env = store
                server = MlflowServer.start(
                    uri, artifacts_destination=f"{folder}/artifacts", port=free_port(5070),
                    folder=folder, workers=server_workers, env=env,
                )  # fmt: skip
                try:
                    for writers in writer_counts:
                        result = measure(server.url, writers, runs_each)
                        log = Path(folder, "mlflow-server.log").read_text(errors="replace")
                        locked = len(re.findall(r"database is locked", log))
                        rows.append({"backend": backend, "server_workers": server_workers,
                                     "writers": writers, "locked": locked, **result})  # fmt: skip
                        print(row_text(rows[-1]), flush=True)
                finally:
                    server.stop()
    return rows


class backend_store:  # noqa: N801 - used as a context manager, like a function
    """A backend store URI for ``backend``: a SQLite file, or a throwaway PostgreSQL."""

    def __init__(self, backend: str, folder: str):
        self.backend, self.folder, self.postgres = backend, folder, None

    def __enter__(self) -> tuple[str, dict[str, str]]:
        if self.backend == "sqlite":
            return f"sqlite:///{Path(self.folder, 'server.db').as_posix()}", {}
        from parallel_tuning import Postgres  # noqa: PLC0415

        self.postgres = Postgres(Path(self.folder) / "pg", secrets.token_hex(12))
        return self.postgres.database("mlflow"), {"PGPASSWORD": self.postgres.password}

    def __exit__(self, *exc: object) -> None:
        if self.postgres is not None:
            self.postgres.stop()


def row_text(row: dict) -> str:
    rate = row["runs"] / row["seconds"] if row["seconds"] else 0
    return (
        f"| {row['backend']} | {row['server_workers']} | {row['writers']} | {row['runs']} | "
        f"{row['finished']} | {row['seconds']:.1f} | {rate:.0f} | {len(row['errors'])} | "
        f"{row['locked']} |"
    )


def table(rows: list[dict]) -> str:
    head = (
        "| backend store | server processes | writers | runs made | runs FINISHED with rmse | "
        'seconds | runs/s | client errors | "database is locked" in the server\'s log |\n'
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    return "\n".join([head, *(row_text(row) for row in rows)])


def section(rows: list[dict]) -> str:
    errors = sorted({e for row in rows for e in row["errors"]})[:5]
    return "\n".join([
        HEADING,
        "",
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, MLflow {mlflow.__version__}, with "
        "`python bench/server_writers.py --write`. Each writer is a thread that makes child runs "
        "as a tuning worker does (create, log params and metric in one batch, end), as fast as "
        "it can; the server is `mlflow server` started by `helpers.server` (`--workers` N).",
        "",
        table(rows),
        "",
        "Client errors seen: " + ("; ".join(f"`{e}`" for e in errors) if errors else "none."),
        "",
    ])  # fmt: skip


def write(rows: list[dict]) -> None:
    text = PERFORMANCE.read_text(encoding="utf-8")
    new = section(rows)
    if HEADING in text:
        start = text.index(HEADING)
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + new + (text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new
    PERFORMANCE.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short check of the script")
    parser.add_argument("--write", action="store_true", help=f"write into {PERFORMANCE.name}")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(table(rows))
    if args.write:
        write(rows)
        print(f"wrote the section into {PERFORMANCE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
