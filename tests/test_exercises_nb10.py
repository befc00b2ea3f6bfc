"""Notebook 10's checkers: a file through the proxying server, and one the client writes itself.

Real parts, as in the notebook: rclone's S3 store on 127.0.0.1 and two MLflow servers on one
SQLite store, one proxying artifacts, one sending clients to the bucket.
"""

from __future__ import annotations

import os

import mlflow
import pytest
from botocore.exceptions import NoCredentialsError
from exercise_support import ODD_INPUTS, correct, hint, verdict

from helpers.exercises.nb10 import check_direct_upload, check_proxied_upload
from helpers.object_store import ObjectStore, forget_cached_clients, forget_cloud_credentials
from helpers.server import MlflowServer, free_port


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The bucket and both servers of scenario 3, for every test of this module."""
    folder = tmp_path_factory.mktemp("scenario-3")
    store_uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    with ObjectStore.start(folder / "bucket", port=free_port(9000)) as store:
        store.create_bucket("mlflow")
        with (
            MlflowServer.start(
                store_uri,
                artifacts_destination="s3://mlflow/proxied",
                port=free_port(5010),
                folder=folder,
                log=folder / "proxied.log",
                env=store.environment(),
            ) as proxied,
            MlflowServer.start(
                store_uri,
                default_artifact_root="s3://mlflow/direct",
                serve_artifacts=False,
                port=free_port(5011),
                folder=folder,
                log=folder / "direct.log",
            ) as direct,
        ):
            yield store, proxied, direct
    mlflow.set_tracking_uri(None)


def log_file(url: str, experiment: str, credentials=None, log=True) -> str:
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        if log:
            if credentials is None:
                mlflow.log_text("hello", "notes/hello.txt")
            else:
                with credentials():
                    mlflow.log_text("hello", "notes/hello.txt")
    return run.info.run_id


def test_proxied_upload_accepts_the_solution_and_refuses_what_only_looks_right(capsys, scenario):
    store, proxied, direct = scenario
    right = log_file(proxied.url, "scenario-3-proxied")
    assert correct(verdict(capsys, check_proxied_upload, right, store))
    assert hint(verdict(capsys, check_proxied_upload, None, store), "put the id of the run")
    empty = log_file(proxied.url, "scenario-3-proxied", log=False)  # no file logged
    assert hint(verdict(capsys, check_proxied_upload, empty, store), "no file in the bucket yet")
    through_direct = log_file(direct.url, "scenario-3-direct", store.credentials_in_environment)
    out = verdict(capsys, check_proxied_upload, through_direct, store)  # the other server
    assert hint(out, "do not go through a server")
    mlflow.set_tracking_uri(proxied.url)
    mlflow.MlflowClient().delete_run(right)
    assert hint(verdict(capsys, check_proxied_upload, right, store), "that run was deleted")
    out = verdict(capsys, check_proxied_upload, right, proxied)  # the server, not the store
    assert hint(out, "pass the object store too")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_proxied_upload, odd, store)), odd


def test_direct_upload_accepts_the_solution_and_refuses_what_only_looks_right(capsys, scenario):
    store, proxied, direct = scenario
    right = log_file(direct.url, "scenario-3-direct", store.credentials_in_environment)
    assert correct(verdict(capsys, check_direct_upload, right, store))
    assert hint(verdict(capsys, check_direct_upload, None, store), "put the id of the run")
    through_proxy = log_file(proxied.url, "scenario-3-proxied")
    out = verdict(capsys, check_direct_upload, through_proxy, store)
    assert hint(out, "do not go straight to the bucket")
    mlflow.set_tracking_uri(direct.url)
    mlflow.set_experiment("scenario-3-direct")
    with mlflow.start_run() as nothing_written:  # no keys: no file, the run still recorded
        pass
    out = verdict(capsys, check_direct_upload, nothing_written.info.run_id, store)
    assert hint(out, "the run has no file in the bucket")
    os.environ.update(store.environment())  # keys for everything after: left in the notebook
    try:
        leaky = log_file(direct.url, "scenario-3-direct")
        out = verdict(capsys, check_direct_upload, leaky, store)
    finally:
        for name in store.environment():
            os.environ.pop(name, None)
        forget_cached_clients()  # boto3 would keep them: no later test may find them
    assert hint(out, "stayed in the notebook's environment")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_direct_upload, odd, store)), odd
        assert hint(verdict(capsys, check_direct_upload, right, odd)), odd


def test_keys_given_for_a_block_are_gone_after_it(scenario, monkeypatch):
    """The solution's promise: the client holds the keys only while it logs (boto3 would
    otherwise keep the first keys it found for the life of the kernel)."""
    store, _, direct = scenario
    monkeypatch.setattr(os, "environ", dict(os.environ))  # this test's own environment
    forget_cloud_credentials()
    mlflow.set_tracking_uri(direct.url)
    mlflow.set_experiment("scenario-3-direct")
    with store.credentials_in_environment(), mlflow.start_run():
        mlflow.log_text("with keys", "notes/with-keys.txt")
    with pytest.raises(NoCredentialsError), mlflow.start_run():
        mlflow.log_text("without keys", "notes/without-keys.txt")
