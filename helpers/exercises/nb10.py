"""Checkers for notebook 10 (MLflow in practice: scenario 3 with a real S3 store)."""

from __future__ import annotations

import os

from helpers.exercises import checker, learner_run, require
from helpers.object_store import ObjectStore


def _objects_of(run_id: str, store: ObjectStore, folder: str) -> list[str]:
    """The bucket's objects under a run's artifacts, in ``folder`` (proxied/ or direct/)."""
    return [k for k in store.keys("mlflow", f"{folder}/") if f"/{run_id}/artifacts/" in k]


@checker
def check_proxied_upload(run_id: object, store: ObjectStore) -> str:
    """A run of the proxying server, with a file that the server put in the bucket."""
    require(
        isinstance(store, ObjectStore),
        "pass the object store too: `store`, as the cell above does.",
    )
    run = learner_run(run_id, "the run you logged through the proxying server")
    require(
        run.info.artifact_uri.startswith("mlflow-artifacts:"),
        "this run's artifacts do not go through a server: point the client at the proxying "
        "server (`mlflow.set_tracking_uri(server.url)`) before starting the run.",
    )
    require(
        _objects_of(run.info.run_id, store, "proxied"),
        "the run has no file in the bucket yet: log one inside the run, e.g. with "
        "`mlflow.log_text(text, 'notes/hello.txt')`.",
    )
    return (
        "the run logged a file through the server, which stored it in the bucket under "
        "proxied/: the client needed no S3 keys."
    )


@checker
def check_direct_upload(run_id: object, store: ObjectStore) -> str:
    """A run of the direct-access server whose file is in the bucket, and no keys left over."""
    require(
        isinstance(store, ObjectStore),
        "pass the object store too: `store`, as the cell above does.",
    )
    run = learner_run(run_id, "the run you logged through the direct-access server")
    require(
        run.info.artifact_uri.startswith("s3://mlflow/direct/"),
        "this run's artifacts do not go straight to the bucket: point the client at the "
        "direct-access server (`mlflow.set_tracking_uri(direct.url)`) before the run.",
    )
    require(
        _objects_of(run.info.run_id, store, "direct"),
        "the run has no file in the bucket: the client writes it itself in this mode, so it "
        "needs the store's address and keys while it logs (which helper sets them?).",
    )
    left = [name for name in store.environment() if name in os.environ]
    require(
        not left,
        f"the file is there, but {', '.join(left)} stayed in the notebook's environment: give "
        "the keys to the logging code only (a `with` block), not to everything after it.",
    )
    return "the client wrote the file to the bucket itself, with keys it held only while logging."
