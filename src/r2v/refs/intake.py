"""Turning a request's reference URLs into checked files: fetch, sniff, probe, judge limits.

Every problem fails the task with `reference_fetch_failed` (could not download) or
`reference_invalid` (wrong type, undecodable, over a limit), naming the item, e.g.
`video_urls[1]`, so the user knows which one to change.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from r2v.errors import ReferenceFetchFailed, ReferenceInvalid, TaskFailure
from r2v.media.formats import sniff
from r2v.media.probe import MediaInfo
from r2v.protocol import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_TOTAL_BYTES,
    MAX_VIDEO_TOTAL_SECONDS,
    MIN_VIDEO_TOTAL_SECONDS,
    CreateVideoRequest,
    ReferenceKind,
    uploaded_file_id,
)
from r2v.refs.fetch import Fetcher, too_large
from r2v.refs.probe import Prober

# References probed at once, each in a child process (all of them download at once).
PARALLEL_PROBES = 4
# The byte cap of one reference of each kind ("under 50 MB" is for all videos together,
# checked once they are all in; one alone may not reach it either).
_CAPS: dict[str, int] = {
    "image": MAX_IMAGE_BYTES,
    "video": MAX_VIDEO_TOTAL_BYTES - 1,
    "audio": MAX_AUDIO_BYTES,
}
# Larger frames than 4K (DCI) are refused: decoding them costs more than any output needs.
MAX_VIDEO_SIDE = 4096
# Containers round durations (MP3 frames, AAC priming): this much over a limit still passes.
DURATION_TOLERANCE = 0.05

_ACCEPTED = {"image": "JPEG, PNG or WebP", "video": "MP4 or MOV", "audio": "MP3 or WAV"}


class Uploads(Protocol):
    """Files uploaded to r2v itself, read from storage instead of the network."""

    def copy_to(self, key_id: str, file_id: str, dest: Path) -> bool:
        """Put the key's upload at `dest`; False when unknown, expired or not its own."""
        ...


class NoUploads:
    """`Uploads` for a deployment that takes none."""

    def copy_to(self, key_id: str, file_id: str, dest: Path) -> bool:  # noqa: ARG002
        return False


@dataclass(frozen=True)
class Reference:
    """One fetched and probed reference; `index` is 1-based, as in `@Image1`."""

    kind: ReferenceKind
    index: int
    url: str
    path: Path
    size: int
    info: MediaInfo

    @property
    def label(self) -> str:
        return f"{self.kind}_urls[{self.index - 1}]"


@dataclass(frozen=True)
class References:
    images: tuple[Reference, ...] = ()
    videos: tuple[Reference, ...] = ()
    audios: tuple[Reference, ...] = ()


def _label(kind: ReferenceKind, position: int, url: str) -> str:
    shown = url if len(url) <= 80 else url[:77] + "..."
    return f"{kind}_urls[{position}] ({shown})"


class Intake:
    """Fetches and checks all references of a request into a workspace."""

    def __init__(self, fetcher: Fetcher, prober: Prober, uploads: Uploads | None = None) -> None:
        self._fetcher = fetcher
        self._prober = prober
        self._uploads = uploads or NoUploads()

    def gather(
        self,
        request: CreateVideoRequest,
        workspace: Path,
        key_id: str,
        on_progress: Callable[[float], None] = lambda _fraction: None,
        *,
        check: Callable[[], None] = lambda: None,
        skip: Callable[[str], bool] = lambda _url: False,
    ) -> References:
        """Every reference of the request, downloaded into `workspace` and checked.

        `check` is called while downloading and may raise to stop (say, on cancellation).
        References whose URL `skip` accepts are left out (an upstream's own asset ids).
        """
        lists: tuple[tuple[ReferenceKind, list[str]], ...] = (
            ("image", request.image_urls),
            ("video", request.video_urls),
            ("audio", request.audio_urls),
        )
        jobs = [
            (kind, position, url)
            for kind, urls in lists
            for position, url in enumerate(urls)
            if not skip(url)
        ]
        found: dict[ReferenceKind, list[Reference]] = {"image": [], "video": [], "audio": []}
        if not jobs:
            return References()
        # Every download at once, under one deadline for them all: a slow reference costs
        # the task one deadline, never one per reference. Probes (a child process each)
        # take turns a few at a time. The first failure in request order is the one
        # reported; the rest are abandoned.
        deadline = time.monotonic() + self._fetcher.limits.deadline
        probes = threading.BoundedSemaphore(PARALLEL_PROBES)
        with ThreadPoolExecutor(len(jobs), thread_name_prefix="r2v-ref") as pool:
            futures = [
                pool.submit(
                    self._one, kind, position, url, workspace, key_id, check, deadline, probes
                )
                for kind, position, url in jobs
            ]
            try:
                for done, (future, (kind, position, url)) in enumerate(
                    zip(futures, jobs, strict=True), start=1
                ):
                    try:
                        found[kind].append(future.result())
                    except TaskFailure as exc:
                        label = _label(kind, position, url)
                        raise type(exc)(f"{label}: {exc.message}") from exc
                    on_progress(done / len(jobs))
            finally:
                for future in futures:
                    future.cancel()
        _check_videos(found["video"])
        return References(tuple(found["image"]), tuple(found["video"]), tuple(found["audio"]))

    def _one(
        self,
        kind: ReferenceKind,
        position: int,
        url: str,
        workspace: Path,
        key_id: str,
        check: Callable[[], None],
        deadline: float,
        probes: threading.BoundedSemaphore,
    ) -> Reference:
        check()
        dest = workspace / f"{kind}-{position + 1}.ref"
        size = self._obtain(url, dest, key_id, _CAPS[kind], check, deadline)
        fmt = sniff(dest)
        if fmt is None or fmt.kind != kind:
            article = "an" if fmt and fmt.kind[0] in "aeiou" else "a"
            what = f"{article} {fmt.kind} ({fmt.name.upper()})" if fmt else "not a supported format"
            raise ReferenceInvalid(f"the file is {what}; {kind}_urls takes {_ACCEPTED[kind]}")
        with probes:
            check()
            info = self._prober.probe(dest)
        if kind == "video" and not info.has_video:
            raise ReferenceInvalid("the file has no video stream; send an MP4 or MOV video")
        if kind == "video" and max(info.width, info.height) > MAX_VIDEO_SIDE:
            raise ReferenceInvalid(
                f"the video is {info.width}x{info.height}; send one at most "
                f"{MAX_VIDEO_SIDE} pixels on its longer side"
            )
        if kind == "audio":
            if not info.has_audio:
                raise ReferenceInvalid("the file has no audio stream; send MP3 or WAV audio")
            if info.duration > MAX_AUDIO_SECONDS + DURATION_TOLERANCE:
                raise ReferenceInvalid(
                    f"the clip is {info.duration:.2f} s long; each audio reference may be at "
                    f"most {MAX_AUDIO_SECONDS:.0f} s: trim it"
                )
        return Reference(kind, position + 1, url, dest, size, info)

    def _obtain(
        self,
        url: str,
        dest: Path,
        key_id: str,
        cap: int,
        check: Callable[[], None],
        deadline: float,
    ) -> int:
        """Put the reference's bytes at `dest`: from storage for uploads, else the network."""
        file_id = uploaded_file_id(url)
        if file_id is None:
            return self._fetcher.fetch(url, dest, cap, check=check, deadline=deadline).size
        if not self._uploads.copy_to(key_id, file_id, dest):
            raise ReferenceFetchFailed(
                f"the uploaded file {file_id} has expired or belongs to another key: "
                "upload it again"
            )
        size = dest.stat().st_size
        if size > cap:
            raise ReferenceInvalid(too_large(size, cap))
        return size


_REFERENCE_FILE = re.compile(r"(image|video|audio)-(\d+)\.ref\b")


def without_paths(message: str, roots: Iterable[Path]) -> str:
    """A task's error message made fit to show: paths under `roots` (the workspaces, the
    data directory) become what they stand for, `@Video1` for a reference's file."""
    for root in {str(root) for root in roots} | {str(root.resolve()) for root in roots}:
        pattern = re.escape(root) + r"""[^\s'"),;]*"""
        message = re.sub(pattern, lambda found: _stands_for(found.group()), message)
    # a working file's own name (`video-1.ref`) is the server's business too
    return _REFERENCE_FILE.sub(lambda found: _stands_for(found.group()), message)


def _stands_for(path: str) -> str:
    found = _REFERENCE_FILE.search(path)
    return f"@{found.group(1).capitalize()}{found.group(2)}" if found else "a working file"


def _check_videos(videos: list[Reference]) -> None:
    """The limits on all videos together: under 50 MB, 2-15 s."""
    if not videos:
        return
    size = sum(video.size for video in videos)
    if size > _CAPS["video"]:
        raise ReferenceInvalid(
            f"video_urls: the videos are {size / 1e6:.1f} MB in all; together they must "
            "stay under 50 MB: send shorter or smaller clips"
        )
    total = sum(video.info.duration for video in videos)
    if total < MIN_VIDEO_TOTAL_SECONDS - DURATION_TOLERANCE:
        raise ReferenceInvalid(
            f"video_urls: the videos last {total:.2f} s in all; they must last at least "
            f"{MIN_VIDEO_TOTAL_SECONDS:.0f} s together: send a longer clip"
        )
    if total > MAX_VIDEO_TOTAL_SECONDS + DURATION_TOLERANCE:
        raise ReferenceInvalid(
            f"video_urls: the videos last {total:.2f} s in all; they may last at most "
            f"{MAX_VIDEO_TOTAL_SECONDS:.0f} s together: trim them or send fewer"
        )
