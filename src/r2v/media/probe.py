"""What a media file holds: container, streams, size, duration, rate, codecs.

`probe` reads the headers (Pillow for images, PyAV for audio and video). `probe(deep=True)`
also decodes every frame of the first video and audio streams, so the duration comes from
the frames themselves rather than from a header that may lie, and a file that would break
the decoder breaks it here. The server runs the deep probe in a child process,
`python -m r2v.media.probe --deep PATH`, which prints one JSON line, so a decoder crash or
hang on a hostile file costs one task, never the server.
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
from r2v.media.formats import PILLOW_FORMATS, Format, open_untrusted, sniff

MAX_IMAGE_PIXELS = 50_000_000
"""Larger pictures are refused before decoding (decompression bombs): 50 megapixels."""


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


def probe(path: Path, *, deep: bool = False) -> MediaInfo:
    """Describe an allow-listed image, video or audio file; `deep` decodes all of it.

    Raises ReferenceInvalid when the content is not JPEG, PNG, WebP, MP4/MOV, MP3 or WAV
    (whatever the file is called), or cannot be decoded.
    """
    fmt = sniff(path)
    if fmt is None:
        raise ReferenceInvalid(
            "the file is not a supported format; send JPEG, PNG or WebP images,"
            " MP4 or MOV videos, and MP3 or WAV audio"
        )
    if fmt.kind == "image":
        return _probe_image(path, fmt, deep)
    return _probe_av(path, fmt, deep)


def _probe_image(path: Path, fmt: Format, deep: bool) -> MediaInfo:
    try:
        with Image.open(path, formats=list(PILLOW_FORMATS)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ReferenceInvalid(
                    f"the image is {width}x{height}, over the limit of "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels; send a smaller image"
                )
            if deep:
                image.load()
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
    except Image.DecompressionBombError as error:
        raise ReferenceInvalid(
            f"the image is over the limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels;"
            " send a smaller image"
        ) from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ReferenceInvalid(
            f"the file could not be read as a {fmt.name.upper()} image "
            f"({_reason(error, path)}); send an intact JPEG, PNG or WebP"
        ) from error


def _probe_av(path: Path, fmt: Format, deep: bool) -> MediaInfo:
    try:
        with open_untrusted(path, fmt) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            width = height = 0
            fps = 0.0
            if video is not None:
                width, height = video.codec_context.width, video.codec_context.height
                if _rotation(container, video) % 180 == 90:
                    width, height = height, width
                rate = video.average_rate or video.guessed_rate
                fps = float(rate) if rate else 0.0
            if deep:
                duration = _decoded_duration(path, fmt)
            else:
                duration = _declared_duration(container, video, audio)
            return MediaInfo(
                format_name=fmt.name,
                container=container.format.name,
                has_video=video is not None,
                has_audio=audio is not None,
                width=width,
                height=height,
                duration=duration,
                fps=fps,
                video_codec=video.codec_context.name if video is not None else None,
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_rate=audio.codec_context.sample_rate if audio is not None else 0,
                audio_channels=audio.codec_context.channels if audio is not None else 0,
            )
    except av.error.FFmpegError as error:
        raise ReferenceInvalid(
            f"the file could not be read as {fmt.name.upper()} ({_reason(error, path)});"
            " send an intact MP4/MOV video or MP3/WAV audio"
        ) from error


def _reason(error: Exception, path: Path) -> str:
    """What went wrong, without the server's path to the file (FFmpeg and Pillow name it)."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).replace(str(path), "the file").replace(path.name, "the file")


def _declared_duration(
    container: av.container.InputContainer,
    video: av.VideoStream | None,
    audio: av.AudioStream | None,
) -> float:
    durations = [
        float(stream.duration * stream.time_base)
        for stream in (video, audio)
        if stream is not None and stream.duration and stream.time_base
    ]
    if not durations and container.duration:
        durations.append(container.duration / av.time_base)
    return max(durations, default=0.0)


def _decoded_duration(path: Path, fmt: Format) -> float:
    """Seconds the decoded frames cover: the video stream's, else the audio stream's."""
    spans: dict[str, tuple[float, float]] = {}
    with open_untrusted(path, fmt) as container:
        video = container.streams.video[:1]
        audio = container.streams.audio[:1]
        rate = video[0].average_rate if video else None
        frame_length = 1 / float(rate) if rate else 0.0
        for frame in container.decode(*video, *audio):
            if isinstance(frame, av.AudioFrame):
                kind, length = "audio", frame.samples / (frame.sample_rate or 1)
            elif isinstance(frame, av.VideoFrame):
                kind, length = "video", frame_length
            else:
                continue
            previous_end = spans.get(kind, (0.0, 0.0))[1]
            start = float(frame.time) if frame.time is not None else previous_end
            low, high = spans.get(kind, (start, start))
            spans[kind] = (min(low, start), max(high, start + length))
    span = spans.get("video") or spans.get("audio")
    if span is None:
        raise ReferenceInvalid("the file has no decodable frames; send an intact file")
    return span[1] - span[0]


def _rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    # PyAV exposes the display matrix on decoded frames only, so the first frame is decoded:
    # that also proves the video is decodable at all, which headers alone cannot.
    for frame in container.decode(stream):
        return frame.rotation
    raise ReferenceInvalid("the video has no decodable frames; send an intact MP4 or MOV")


def main(argv: list[str]) -> int:
    """Print the MediaInfo of the file as one JSON line; on failure, {"error": ...} and 1."""
    deep = "--deep" in argv
    paths = [arg for arg in argv if arg != "--deep"]
    if len(paths) != 1:
        sys.stderr.write("usage: python -m r2v.media.probe [--deep] PATH\n")
        return 2
    try:
        info = probe(Path(paths[0]), deep=deep)
    except ReferenceInvalid as error:
        sys.stdout.write(json.dumps({"error": error.message}) + "\n")
        return 1
    sys.stdout.write(info.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
