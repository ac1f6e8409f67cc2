"""What a media file holds: container, streams, size, duration, rate, codecs.

`probe` reads headers only (Pillow for images, PyAV for audio and video) and never decodes
the whole file. The server runs it in a child process, `python -m r2v.media.probe PATH`,
which prints one JSON line, so a decoder crash on a hostile file cannot take it down.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
from PIL import Image

from r2v.errors import ReferenceInvalid
from r2v.media.formats import PILLOW_FORMATS, Format, sniff


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` found. Sizes are as displayed (rotation applied); absent values are 0."""

    format_name: str
    """The sniffed allow-listed format: jpeg, png, webp, mp4 (also MOV), mp3 or wav."""
    container: str
    """The demuxer that read it (`mov`, `mp3`, `wav`), or Pillow's format name for images."""
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    duration: float = 0.0
    """Seconds; 0 for still images."""
    fps: float = 0.0
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_rate: int = 0
    audio_channels: int = 0

    @property
    def is_image(self) -> bool:
        """Whether this is a still image (JPEG, PNG or WebP)."""
        return self.format_name in ("jpeg", "png", "webp")

    def to_json(self) -> str:
        """One line of JSON, as the probe command prints it."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MediaInfo:
        """Parse what `to_json` (or the probe command) wrote."""
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def probe(path: Path) -> MediaInfo:
    """Describe an allow-listed image, video or audio file.

    Raises ReferenceInvalid when the content is not JPEG, PNG, WebP, MP4/MOV, MP3 or WAV
    (whatever the file is called), or cannot be parsed.
    """
    fmt = sniff(path)
    if fmt is None:
        raise ReferenceInvalid(
            f"{path.name} is not a supported format; send JPEG, PNG or WebP images,"
            " MP4 or MOV videos, and MP3 or WAV audio"
        )
    if fmt.kind == "image":
        return _probe_image(path, fmt)
    return _probe_av(path, fmt)


def _probe_image(path: Path, fmt: Format) -> MediaInfo:
    try:
        with Image.open(path, formats=list(PILLOW_FORMATS)) as image:
            width, height = image.size
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
            return MediaInfo(
                format_name=fmt.name,
                container=image.format or fmt.name.upper(),
                has_video=True,
                has_audio=False,
                width=width,
                height=height,
            )
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ReferenceInvalid(
            f"{path.name} could not be read as a {fmt.name.upper()} image ({error});"
            " send an intact JPEG, PNG or WebP"
        ) from error


def _probe_av(path: Path, fmt: Format) -> MediaInfo:
    try:
        with av.open(str(path), "r", format=fmt.demuxer) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            durations = [
                float(stream.duration * stream.time_base)
                for stream in (video, audio)
                if stream is not None and stream.duration and stream.time_base
            ]
            if not durations and container.duration:
                durations.append(container.duration / av.time_base)
            width = height = 0
            fps = 0.0
            if video is not None:
                width, height = video.codec_context.width, video.codec_context.height
                if _rotation(container, video) % 180 == 90:
                    width, height = height, width
                rate = video.average_rate or video.guessed_rate
                fps = float(rate) if rate else 0.0
            return MediaInfo(
                format_name=fmt.name,
                container=container.format.name,
                has_video=video is not None,
                has_audio=audio is not None,
                width=width,
                height=height,
                duration=max(durations, default=0.0),
                fps=fps,
                video_codec=video.codec_context.name if video is not None else None,
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_rate=audio.codec_context.sample_rate if audio is not None else 0,
                audio_channels=audio.codec_context.channels if audio is not None else 0,
            )
    except av.error.FFmpegError as error:
        raise ReferenceInvalid(
            f"{path.name} could not be read as {fmt.name.upper()} ({error});"
            " send an intact MP4/MOV video or MP3/WAV audio"
        ) from error


def _rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    # PyAV exposes the display matrix on decoded frames only, so the first frame is decoded:
    # that also proves the video is decodable at all, which headers alone cannot.
    for frame in container.decode(stream):
        return frame.rotation
    raise ReferenceInvalid(
        f"{Path(container.name).name} has no decodable video frames; send an intact MP4 or MOV"
    )


def main(argv: list[str]) -> int:
    """Print the MediaInfo of argv[0] as one JSON line; on failure, {"error": ...} and 1."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m r2v.media.probe PATH\n")
        return 2
    try:
        info = probe(Path(argv[0]))
    except ReferenceInvalid as error:
        sys.stdout.write(json.dumps({"error": error.message}) + "\n")
        return 1
    sys.stdout.write(info.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
