"""Pictures of a finished video, made on first request and kept beside it.

The doors other than `/v1` offer more than the MP4: OpenAI's a thumbnail and a sprite sheet,
Ark's a PNG of the last frame. Each is made from the stored video the first time someone
asks, stored under the task's `results/<id>/` prefix next to the video, and from then on
served like it. They go when the video goes (retention, or the task's deletion).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from r2v.errors import GenerationFailed, LinkExpired, NotFound
from r2v.media import stills
from r2v.protocol import TaskStatus
from r2v.tasks.ports import BlobLocation, BlobStore
from r2v.tasks.record import TaskRecord

Still = Literal["thumbnail", "spritesheet", "last_frame"]


@dataclass(frozen=True)
class StillKind:
    filename: str
    media_type: str
    make: Callable[[Path, Path], None]


KINDS: dict[Still, StillKind] = {
    "thumbnail": StillKind("thumbnail.jpg", "image/jpeg", stills.thumbnail),
    "spritesheet": StillKind("spritesheet.jpg", "image/jpeg", stills.sprite_sheet),
    "last_frame": StillKind("last_frame.png", "image/png", stills.last_frame),
}


def result_key(task_id: str) -> str:
    """Where a task's video is stored."""
    return f"results/{task_id}/video.mp4"


def still_key(task_id: str, still: Still) -> str:
    return f"results/{task_id}/{KINDS[still].filename}"


def blob_keys(task_id: str) -> list[str]:
    """Every object a task may own in the blob store: its video and its stills."""
    return [result_key(task_id)] + [still_key(task_id, still) for still in KINDS]


class Stills:
    """Finds, or makes and stores, the pictures of a completed task's video."""

    def __init__(self, blobs: BlobStore, scratch_dir: Path) -> None:
        self._blobs = blobs
        self._scratch = scratch_dir

    def locate(self, record: TaskRecord, still: Still) -> tuple[BlobLocation, str]:
        """Where the picture is, and its media type; made from the video if it is new."""
        if record.status is not TaskStatus.COMPLETED:
            raise NotFound(
                f"task {record.id} is {record.status.value}: its pictures exist once it has "
                "completed",
                code="result_not_found",
            )
        kind = KINDS[still]
        key = still_key(record.id, still)
        found = self._blobs.locate(key)
        if found is None:
            self._make(record, key, kind)
            found = self._blobs.locate(key)
        if found is None:
            raise video_deleted()
        return found, kind.media_type

    def _make(self, record: TaskRecord, key: str, kind: StillKind) -> None:
        if record.result_key is None:
            raise video_deleted()
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch, prefix="still-") as work:
            video = self._blobs.locate(record.result_key)
            if video is None:
                raise video_deleted()
            source = video.path
            if source is None:
                source = Path(work) / "video.mp4"
                if not self._blobs.download(record.result_key, source):
                    raise video_deleted()
            picture = Path(work) / kind.filename
            try:
                kind.make(source, picture)
            except GenerationFailed as exc:  # say, an upstream's video that boxes hid
                raise NotFound(
                    f"this video's {kind.filename} cannot be made: {exc.message}",
                    code="still_unavailable",
                ) from None
            self._blobs.put(key, picture)


def video_deleted() -> LinkExpired:
    """What asking for a video (or its pictures) that retention deleted raises."""
    return LinkExpired(
        "this video was deleted after the retention period: create the task again",
        code="result_deleted",
    )
