"""Uploaded references (`POST /v1/files`): stored, checked, usable by the key that sent them.

An upload's URL, `<server>/v1/files/<id>/content`, goes into `image_urls`, `video_urls` or
`audio_urls` like any other; the worker reads it from the blob store instead of the network,
and only for the key that uploaded it. Uploads expire after the retention period.
"""

from __future__ import annotations

import secrets
import string
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from r2v.errors import InvalidRequest, NotFound, PayloadTooLarge, ReferenceFetchFailed
from r2v.protocol import (
    FILE_ID_PATTERN,
    MAX_AUDIO_BYTES,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_TOTAL_BYTES,
    FileObject,
)
from r2v.tasks.links import LinkSigner, shared_file_path
from r2v.tasks.ports import BlobLocation, BlobStore, FileRecord, FileStore

Sniffer = Callable[[Path], "tuple[str, str] | None"]
"""Tells (kind, format) of a file from its bytes, or None when it is no allowed format."""

# Largest upload of each kind: the per-reference limits of the API ("under 50 MB" for video).
MAX_UPLOAD_BYTES = {
    "image": MAX_IMAGE_BYTES,
    "video": MAX_VIDEO_TOTAL_BYTES - 1,
    "audio": MAX_AUDIO_BYTES,
}
MEDIA_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
}
"""The Content-Type an upload is served with: its sniffed format's, never the client's."""
# A presigned S3 URL lives at most a week (SigV4).
MAX_PRESIGN_SECONDS = 7 * 86400
_ALPHABET = string.ascii_lowercase + string.digits
_COPY_CHUNK = 1024 * 1024


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def quota_message(stored: int, adding: int, quota: int) -> str:
    """Why an upload does not fit in the key's quota, and what to do instead."""
    return (
        f"this API key's upload quota is {_size(quota)} and its unexpired uploads take "
        f"{_size(stored)}: {_size(adding)} more does not fit; reference files by URL, or wait "
        "for uploads to expire"
    )


def new_file_id() -> str:
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


class FileService:
    """Takes uploads, shows them to their key, and resolves their URLs for the worker."""

    def __init__(
        self,
        store: FileStore,
        blobs: BlobStore,
        sniff: Sniffer,
        *,
        scratch_dir: Path,
        retention_seconds: float,
        signer: LinkSigner | None = None,
        quota_bytes: int | None = None,
        rate_per_minute: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._quota = quota_bytes
        self._rate = rate_per_minute
        self._signer = signer
        self._store = store
        self._blobs = blobs
        self._sniff = sniff
        self._scratch = scratch_dir
        self._retention = retention_seconds
        self._clock = clock

    def admit(self, key_id: str) -> None:
        """Let the key start an upload, before any of its bytes are read: `RateLimited` when
        it uploads too often, `PayloadTooLarge` when its stored uploads fill its quota."""
        now = self._clock()
        if self._rate is not None:
            self._store.take_upload_token(key_id, self._rate, now)
        if self._quota is not None and self._store.stored_bytes(key_id, now) >= self._quota:
            raise PayloadTooLarge(
                f"this API key's uploads fill its upload quota of {_size(self._quota)}: "
                "reference files by URL, or wait for uploads to expire",
                param="file",
                code="upload_quota_exceeded",
            )

    def upload(self, key_id: str, stream: BinaryIO, filename: str | None) -> FileRecord:
        """Store an uploaded reference after checking its real type and size (and, with a
        quota, that it fits in what the key may keep)."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._scratch, delete=False) as out:
            partial = Path(out.name)
            size = 0
            while chunk := stream.read(_COPY_CHUNK):
                size += len(chunk)
                if size > max(MAX_UPLOAD_BYTES.values()):
                    break
                out.write(chunk)
        try:
            sniffed = self._sniff(partial) if size else None
            if sniffed is None:
                raise InvalidRequest(
                    "the file is not a supported reference: upload a JPEG, PNG or WebP image, "
                    "an MP4 or MOV video, or an MP3 or WAV audio file",
                    param="file",
                )
            kind, fmt = sniffed
            if size > MAX_UPLOAD_BYTES[kind]:
                raise PayloadTooLarge(
                    f"a {kind} reference may be at most {MAX_UPLOAD_BYTES[kind] / 1e6:.0f} MB",
                    param="file",
                )
            now = self._clock()
            record = FileRecord(
                id=new_file_id(),
                key_id=key_id,
                kind=kind,
                format=fmt,
                bytes=size,
                filename=(filename or None) and Path(filename).name[:200],
                created_at=now,
                expires_at=now + self._retention,
            )
            self._store.insert_file(record, quota_bytes=self._quota)
            try:
                self._blobs.put(record.blob_key, partial)
            except Exception:
                self._store.forget_file(record.id, now)
                raise
            return record
        finally:
            partial.unlink(missing_ok=True)

    def get(self, key_id: str, file_id: str) -> FileRecord:
        """The key's upload, while it has not expired."""
        record = self._store.get_file(file_id, key_id) if FILE_ID_PATTERN.match(file_id) else None
        if record is None or record.deleted_at is not None or record.expires_at < self._clock():
            raise NotFound(f"no uploaded file {file_id} for this API key", code="file_not_found")
        return record

    def content(self, key_id: str, file_id: str) -> tuple[BlobLocation, str]:
        """Where the stored bytes of the key's upload are, and their (sniffed) media type."""
        return self._located(self.get(key_id, file_id))

    def _located(self, record: FileRecord) -> tuple[BlobLocation, str]:
        found = self._blobs.locate(record.blob_key)
        if found is None:
            raise NotFound(f"the content of {record.id} is gone", code="file_not_found")
        return found, MEDIA_TYPES.get(record.format, "application/octet-stream")

    def share(self, key_id: str, file_id: str, public_url: str | None) -> str:
        """A URL anyone holding it can read the key's upload at until the upload expires:
        a presigned one from object storage, else a signed link on this server.

        Raises `ReferenceFetchFailed` when the upload is gone, or when only a link on this
        server would do and the server has no public URL.
        """
        try:
            record = self.get(key_id, file_id)
        except NotFound as exc:
            raise ReferenceFetchFailed(
                f"the uploaded file {file_id} has expired or belongs to another key: "
                "upload it again"
            ) from exc
        seconds = min(MAX_PRESIGN_SECONDS, max(60, int(record.expires_at - self._clock())))
        presigned = self._blobs.share(record.blob_key, seconds)
        if presigned is not None:
            return presigned
        if not public_url or self._signer is None:
            raise ReferenceFetchFailed(
                f"the uploaded file {file_id} cannot be handed to this model's upstream: the "
                "server has no public URL (its operator sets R2V_PUBLIC_URL); send the file "
                "by a public URL instead"
            )
        path = shared_file_path(file_id)
        return public_url.rstrip("/") + self._signer.sign_until(path, int(record.expires_at))

    def shared(
        self, file_id: str, expires: str | None, signature: str | None
    ) -> tuple[BlobLocation, str]:
        """Where the bytes behind a signed upload link are, and their media type."""
        if self._signer is None:
            raise NotFound("uploads are not shared by this server", code="file_not_found")
        self._signer.verify(shared_file_path(file_id), expires, signature, self._clock())
        record = self._store.get_file(file_id) if FILE_ID_PATTERN.match(file_id) else None
        if record is None or record.deleted_at is not None or record.expires_at < self._clock():
            raise NotFound(f"no uploaded file {file_id}", code="file_not_found")
        return self._located(record)

    def copy_to(self, key_id: str, file_id: str, dest: Path) -> bool:
        """Put the key's upload at `dest` for the worker; False when it is not usable."""
        try:
            record = self.get(key_id, file_id)
        except NotFound:
            return False
        return self._blobs.download(record.blob_key, dest)

    def problem(self, key_id: str, file_id: str, kind: str) -> str | None:
        """Why the key may not use this upload as a `kind` reference, or None."""
        try:
            record = self.get(key_id, file_id)
        except NotFound as exc:
            return exc.message + " (uploads expire after the retention period)"
        if record.kind != kind:
            article = "an" if record.kind[0] in "aeiou" else "a"
            return f"{file_id} is {article} {record.kind} file: put it in {record.kind}_urls"
        return None

    def discard(self, record: FileRecord) -> None:
        """Delete an upload at once (one that came with a create that was then refused)."""
        self._blobs.delete(record.blob_key)
        self._store.forget_file(record.id, self._clock())

    def sweep(self, now: float | None = None) -> int:
        """Delete uploads past their expiry (as of `now`); how many were deleted."""
        now = self._clock() if now is None else now
        count = 0
        while expired := self._store.expired_files(now):
            for record in expired:
                self._blobs.delete(record.blob_key)
                self._store.forget_file(record.id, now)
                count += 1
        return count

    @staticmethod
    def to_wire(record: FileRecord, base_url: str) -> FileObject:
        """The one translation from a file record to the wire file object."""
        return FileObject(
            id=record.id,
            url=f"{base_url.rstrip('/')}/v1/files/{record.id}/content",
            bytes=record.bytes,
            filename=record.filename,
            kind=record.kind,
            created_at=int(record.created_at),
            expires_at=int(record.expires_at),
        )
