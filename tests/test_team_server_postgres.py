"""The team setup of notebook 09, for real: PostgreSQL, an MLflow server on it, a restart.

A PostgreSQL server (Debian's package, on 127.0.0.1 only, with a password that never
appears in a URI) is created in a scratch folder. An ``mlflow server`` runs against it with
proxied artifacts; runs, a model and a registered model with the ``champion`` alias are
logged over HTTP; the server is restarted and everything must still be there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import psycopg
import pytest
import sklearn
from sklearn.linear_model import LinearRegression

from helpers.server import MlflowServer, free_port

PASSWORD = "course-test-password"


def postgres_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL server programs (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres_uri():
    """Start a throw-away PostgreSQL on 127.0.0.1; yield a URI with no password in it."""
    if sys.platform != "linux":
        pytest.skip("the team-server test starts PostgreSQL the Linux way (Debian's layout)")
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server programs are not installed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="course-postgres-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    (folder / "password").write_text(PASSWORD)
    if as_owner:
        shutil.chown(folder / "password", "postgres")
    data, port = folder / "data", free_port(55432)

    def run(*command: str) -> None:
        subprocess.run([*as_owner, *command], check=True, capture_output=True, text=True,
                       env={**os.environ, "PGPASSWORD": PASSWORD})  # fmt: skip

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow", "-A", "scram-sha-256",
        f"--pwfile={folder / 'password'}")  # fmt: skip
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "start",
        "-o", f"-h 127.0.0.1 -p {port} -k {folder}")  # fmt: skip
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow")
        # The driver named, as the course teaches: SQLAlchemy 2.0 would pick psycopg2.
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def libpq_uri(uri: str) -> str:
    """The URI psycopg itself reads: libpq knows no `+driver` part."""
    return uri.replace("postgresql+psycopg://", "postgresql://", 1)


def start_server(uri: str, artifacts: Path) -> MlflowServer:
    return MlflowServer.start(
        uri,
        artifacts_destination=str(artifacts),
        port=free_port(5055),
        folder=artifacts.parent,
        env={"PGPASSWORD": PASSWORD},  # the password reaches the server, never the URI
    )


def test_runs_models_and_aliases_survive_a_server_restart(postgres_uri, tmp_path):
    artifacts = tmp_path / "artifacts"
    X = np.arange(20, dtype=float).reshape(10, 2)
    model = LinearRegression().fit(X, X.sum(axis=1) * 2 + 1)

    server = start_server(postgres_uri, artifacts)
    try:
        mlflow.set_tracking_uri(server.url)
        experiment_id = mlflow.set_experiment("team-experiment").experiment_id
        for alpha in (0.1, 1.0):
            with mlflow.start_run(run_name=f"alpha-{alpha}"):
                mlflow.set_tag("developer", "alice")
                mlflow.log_param("alpha", alpha)
                mlflow.log_metric("rmse", 5 + alpha)
        with mlflow.start_run(run_name="with-model") as model_run:
            info = mlflow.sklearn.log_model(
                model, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
            )
        client = mlflow.MlflowClient(server.url)
        client.create_registered_model("team-model")
        version = client.create_model_version(
            "team-model", source=info.model_uri, run_id=model_run.info.run_id,
            model_id=info.model_id,
        )  # fmt: skip
        client.set_registered_model_alias("team-model", "champion", version.version)
    finally:
        server.stop()
        mlflow.set_tracking_uri(None)
    assert server.processes() == [], "the server left processes behind"

    with psycopg.connect(libpq_uri(postgres_uri), password=PASSWORD) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runs WHERE experiment_id = %s", (experiment_id,))
            assert cursor.fetchone()[0] == 3, "the runs must be in PostgreSQL itself"

    with start_server(postgres_uri, artifacts) as restarted:
        client = mlflow.MlflowClient(restarted.url)
        runs = client.search_runs(
            [experiment_id], filter_string="tags.developer = 'alice'", order_by=["params.alpha"]
        )
        assert [(r.data.params["alpha"], r.data.metrics["rmse"]) for r in runs] == [
            ("0.1", 5.1),
            ("1.0", 6.0),
        ]
        champion = client.get_model_version_by_alias("team-model", "champion")
        assert champion.run_id == model_run.info.run_id
        mlflow.set_tracking_uri(restarted.url)
        try:
            # dst_path: without it MLflow downloads the model into a temporary folder it
            # never removes (the session's clean-up guard caught it).
            with tempfile.TemporaryDirectory() as download:
                loaded = mlflow.pyfunc.load_model("models:/team-model@champion", dst_path=download)
                np.testing.assert_allclose(loaded.predict(X), model.predict(X))
        finally:
            mlflow.set_tracking_uri(None)
    assert any(artifacts.rglob("MLmodel")), "artifacts are stored by the server (proxied)"
