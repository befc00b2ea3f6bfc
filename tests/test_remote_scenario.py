"""Scenario 3 of notebook 10, for real: PostgreSQL, an S3 object store, an MLflow server.

A throw-away PostgreSQL (as in test_team_server_postgres.py) holds the metadata; rclone's S3
server (helpers.object_store, on 127.0.0.1) holds the artifacts. The client of each test
has no cloud credentials at all. With proxied artifacts it still logs a model, which must
then be in the bucket and load back through the server; with direct access it fails with
NoCredentialsError until the store's address and keys are in its environment.
"""

from __future__ import annotations

import os
import tempfile

import mlflow
import numpy as np
import psycopg
import pytest
import sklearn
import test_team_server_postgres as team
from botocore.exceptions import NoCredentialsError
from sklearn.linear_model import LinearRegression

from helpers.object_store import ObjectStore, forget_cloud_credentials
from helpers.server import MlflowServer, free_port

PASSWORD = team.PASSWORD
postgres_uri = team.postgres_uri  # the same throw-away PostgreSQL, as a fixture of this module
X = np.arange(20, dtype=float).reshape(10, 2)
MODEL = LinearRegression().fit(X, X.sum(axis=1) * 2 + 1)
MODEL_FILES = ["MLmodel", "conda.yaml", "model.skops", "python_env.yaml", "requirements.txt"]


@pytest.fixture
def store(tmp_path):
    with ObjectStore.start(tmp_path / "store", port=free_port(9010)) as running:
        running.create_bucket("mlflow")
        yield running
    assert running.processes() == [], "the object store left processes behind"


@pytest.fixture
def keyless_client():
    """This process, as a client with no S3 credentials (then its environment as before)."""
    saved = dict(os.environ)
    forget_cloud_credentials()
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.clear()
        os.environ.update(saved)


def log_model(experiment: str) -> mlflow.models.model.ModelInfo:
    mlflow.set_experiment(experiment)
    with mlflow.start_run():
        return mlflow.sklearn.log_model(
            MODEL, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
        )


def files_in_bucket(store: ObjectStore, prefix: str, model_id: str) -> list[str]:
    return [k.rsplit("/", 1)[1] for k in store.keys("mlflow", prefix) if f"/{model_id}/" in k]


def assert_loads_back(model_uri: str) -> None:
    with tempfile.TemporaryDirectory() as download:  # MLflow leaves its own download folder
        loaded = mlflow.sklearn.load_model(model_uri, dst_path=download)
    np.testing.assert_allclose(loaded.predict(X), MODEL.predict(X))


def runs_in_postgres(uri: str, experiment_id: str) -> int:
    with psycopg.connect(team.libpq_uri(uri), password=PASSWORD) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runs WHERE experiment_id = %s", (experiment_id,))
            return cursor.fetchone()[0]


def test_proxied_artifacts_need_no_keys_on_the_client(
    postgres_uri, store, keyless_client, tmp_path
):
    with MlflowServer.start(
        postgres_uri, artifacts_destination="s3://mlflow/proxied", port=free_port(5060),
        folder=tmp_path, env={"PGPASSWORD": PASSWORD, **store.environment()},
    ) as server:  # fmt: skip
        mlflow.set_tracking_uri(server.url)
        info = log_model("proxied")
        assert info.artifact_path.startswith("mlflow-artifacts:/")
        assert files_in_bucket(store, "proxied/", info.model_id) == MODEL_FILES
        assert_loads_back(info.model_uri)
        experiment_id = mlflow.get_experiment_by_name("proxied").experiment_id
    assert server.processes() == []
    assert runs_in_postgres(postgres_uri, experiment_id) == 1, "the run is in PostgreSQL"
    assert not (tmp_path / "mlartifacts").exists(), "nothing is stored on the server's disk"


def test_direct_access_needs_the_keys_on_every_client(
    postgres_uri, store, keyless_client, tmp_path
):
    with MlflowServer.start(
        postgres_uri, default_artifact_root="s3://mlflow/direct", serve_artifacts=False,
        port=free_port(5061), folder=tmp_path, env={"PGPASSWORD": PASSWORD},
    ) as server:  # fmt: skip
        assert "--no-serve-artifacts" in server.command
        mlflow.set_tracking_uri(server.url)
        with pytest.raises(NoCredentialsError):
            log_model("direct")
        with store.credentials_in_environment():
            info = log_model("direct")
            assert_loads_back(info.model_uri)
        assert not set(store.environment()) & set(os.environ), "the keys are gone again"
        with pytest.raises(NoCredentialsError):  # and so is access
            assert_loads_back(info.model_uri)
        experiment_id = mlflow.get_experiment_by_name("direct").experiment_id
    assert info.artifact_path.startswith(f"s3://mlflow/direct/{experiment_id}/")
    assert files_in_bucket(store, "direct/", info.model_id) == MODEL_FILES
    assert runs_in_postgres(postgres_uri, experiment_id) == 2, "the failed run is recorded too"
