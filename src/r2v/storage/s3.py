"""Finished videos and uploads in an S3-compatible bucket (AWS, SeaweedFS, MinIO, …).

Result links stay the API's own signed links; the API answers them with a redirect to a
presigned URL that lives only minutes, so the bucket itself never has to be public.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r2v.errors import ConfigurationError
from r2v.tasks.ports import BlobLocation


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    presign_endpoint_url: str | None = None
    presign_seconds: int = 300


def _client(config: S3Config, endpoint: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise ConfigurationError("R2V_STORAGE=s3 needs `pip install 'r2v[s3]'` (boto3)") from exc
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}),
    )


class S3BlobStore:
    """A `BlobStore` over one bucket; keys live under `prefix`."""

    def __init__(self, config: S3Config) -> None:
        self._config = config
        self._s3 = _client(config, config.endpoint_url)
        self._presigner = (
            _client(config, config.presign_endpoint_url)
            if config.presign_endpoint_url
            else self._s3
        )

    def _key(self, key: str) -> str:
        return self._config.prefix + key

    def put(self, key: str, source: Path) -> None:
        self._s3.upload_file(str(source), self._config.bucket, self._key(key))
        source.unlink(missing_ok=True)

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3.head_object(Bucket=self._config.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def locate(self, key: str) -> BlobLocation | None:
        if not self._exists(key):
            return None
        return BlobLocation(url=self._presign(key, self._config.presign_seconds))

    def share(self, key: str, seconds: int) -> str | None:
        return self._presign(key, seconds)

    def _presign(self, key: str, seconds: int) -> str:
        url = self._presigner.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._config.bucket, "Key": self._key(key)},
            ExpiresIn=seconds,
        )
        return str(url)

    def download(self, key: str, dest: Path) -> bool:
        if not self._exists(key):
            return False
        self._s3.download_file(self._config.bucket, self._key(key), str(dest))
        return True

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._config.bucket, Key=self._key(key))

    def check(self) -> None:
        self._s3.head_bucket(Bucket=self._config.bucket)
