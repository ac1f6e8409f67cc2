"""Writing the output MP4: H.264 yuv420p at 24 fps, AAC 48 kHz stereo, +faststart.

Frames are pushed one at a time and handed through a short queue to an encoder thread, so
drawing the next frame overlaps with encoding the last one (both release the GIL) and
memory stays bounded whatever the length. The soundtrack, a small array, is handed over up
front and fed to the AAC encoder in step with the video, so the muxer interleaves the two
as it goes; on `close` the audio is cut or padded with silence to exactly the video's length.

Colour: RGB is converted with OpenCV's `RGB2YUV_I420`, which is BT.601 limited range
(black at Y=16, white at 235) and about ten times faster than swscale; the stream is tagged
to match (matrix SMPTE 170M, TV range) with BT.709 primaries and transfer, those of sRGB,
so players decode the same colours that were rendered.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import av
import av.error
import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.errors import GenerationFailed
from r2v.protocol import FPS

EncodePreset = Literal["fast", "standard"]

AUDIO_RATE = 48000
AUDIO_CHANNELS = 2

# "fast" uses x264 superfast: on a 2-core machine it brings a whole 720p render to about
# 1.1x the time veryfast alone needs to encode the same frames (veryfast: about 1.5x), for
# files about 1.6x larger at the same CRF; rendered pictures compress well either way.
_X264: dict[EncodePreset, dict[str, str]] = {
    "fast": {"preset": "superfast", "crf": "23"},
    "standard": {"preset": "medium", "crf": "19"},
}
# FFmpeg's "fast" AAC coder costs a third of the default "twoloop" at this bit rate, with
# a quality difference few ears find; the standard preset keeps the default.
_AAC: dict[EncodePreset, dict[str, str]] = {"fast": {"aac_coder": "fast"}, "standard": {}}
_GOP_SECONDS = 2  # a keyframe every two seconds keeps scrubbing in players snappy
_AAC_FRAME = 1024
_AAC_BIT_RATE = 160_000
_QUEUE_FRAMES = 4  # enough to absorb jitter between drawing and encoding, little memory
_MUX_OPTIONS = {"movflags": "+faststart"}

# AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic values.
_RANGE_TV = 1
_MATRIX_SMPTE170M = 6
_PRIMARIES_BT709 = 1
_TRANSFER_BT709 = 1


class Mp4Writer:
    """An MP4 file being written; use as a context manager, push frames with `write`.

    Leaving the `with` block normally finishes the file; leaving it through an exception
    stops the encoder thread, releases the encoder and deletes the partial file.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        *,
        preset: EncodePreset = "fast",
        audio: NDArray[np.float32] | None = None,
        fps: int = FPS,
    ) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"yuv420p needs an even, positive size; got {width}x{height}")
        if audio is not None and (audio.ndim != 2 or audio.shape[0] != AUDIO_CHANNELS):
            raise ValueError("audio must be float32 shaped (2, samples) at 48 kHz")
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.frames_queued = 0
        self.frames_written = 0
        self._audio = None if audio is None else np.ascontiguousarray(audio, dtype=np.float32)
        self._audio_sent = 0
        self._closed = False
        self._stopping = False
        self._failure: BaseException | None = None
        try:
            self._container = av.open(str(path), "w", format="mp4", options=_MUX_OPTIONS)
        except (av.error.FFmpegError, OSError) as error:
            raise GenerationFailed(f"cannot create the output file ({error})") from error
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p"
        self._video.gop_size = fps * _GOP_SECONDS
        self._video.options = dict(_X264[preset])
        context = self._video.codec_context
        context.time_base = Fraction(1, fps)
        context.color_range = _RANGE_TV
        context.colorspace = _MATRIX_SMPTE170M
        context.color_primaries = _PRIMARIES_BT709
        context.color_trc = _TRANSFER_BT709
        self._sound: av.AudioStream | None = None
        if self._audio is not None:
            self._sound = self._container.add_stream(
                "aac", rate=AUDIO_RATE, layout="stereo", options=dict(_AAC[preset])
            )
            self._sound.bit_rate = _AAC_BIT_RATE
        self._queue: queue.Queue[NDArray[np.uint8] | None] = queue.Queue(_QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._encode_loop, name="r2v-encode", daemon=True)
        self._thread.start()

    def write(self, frame: NDArray[np.uint8]) -> None:
        """Queue one uint8 frame of exactly the writer's size for encoding.

        The frame is HxWx3 RGB or HxWx4 RGBA (alpha ignored). Raises the encoder's failure
        (a GenerationFailed) if an earlier frame failed.
        """
        if frame.shape[:2] != (self.height, self.width) or frame.shape[2:] not in ((3,), (4,)):
            raise ValueError(
                f"frame is {frame.shape}, the writer expects ({self.height}, {self.width}, 3|4)"
            )
        if self._closed:
            raise ValueError("the writer is closed")
        if self._failure is not None:
            raise self._failure
        # Converted in the caller's thread: the new buffer also leaves the caller free to
        # reuse its frame at once.
        code = cv2.COLOR_RGB2YUV_I420 if frame.shape[2] == 3 else cv2.COLOR_RGBA2YUV_I420
        yuv = cv2.cvtColor(frame, code)
        self._queue.put(yuv)  # type: ignore[arg-type]
        self.frames_queued += 1

    @property
    def audio_samples_due(self) -> int:
        """Audio samples that cover the frames encoded so far (48000 / 24 = 2000 a frame)."""
        return self.frames_written * AUDIO_RATE // self.fps

    def _encode_loop(self) -> None:
        # The encoder thread. After a failure it keeps draining the queue, so the producer
        # never blocks on a full queue; the failure surfaces at the producer's next call.
        while True:
            yuv = self._queue.get()
            if yuv is None:
                return
            if self._failure is not None or self._stopping:
                continue
            try:
                self._encode(yuv)
            except av.error.FFmpegError as error:
                self._failure = GenerationFailed(f"the video encoder failed ({error})")
            except Exception as error:  # noqa: BLE001 - handed over to the producer thread
                self._failure = error

    def _encode(self, yuv: NDArray[np.uint8]) -> None:
        picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        picture.pts = self.frames_written
        picture.time_base = Fraction(1, self.fps)
        picture.color_range = _RANGE_TV
        picture.colorspace = _MATRIX_SMPTE170M
        self._container.mux(self._video.encode(picture))
        self.frames_written += 1
        self._feed_audio(final=False)

    def _feed_audio(self, *, final: bool) -> None:
        if self._audio is None or self._sound is None:
            return
        due = self.audio_samples_due
        while self._audio_sent < due:
            count = min(_AAC_FRAME, due - self._audio_sent)
            if count < _AAC_FRAME and not final:
                break  # wait for the next video frame rather than send a short AAC frame
            chunk = self._audio[:, self._audio_sent : self._audio_sent + count]
            if chunk.shape[1] < count:  # the soundtrack is shorter than the video: silence
                chunk = np.pad(chunk, ((0, 0), (0, count - chunk.shape[1])))
            samples = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout="stereo"
            )
            samples.sample_rate = AUDIO_RATE
            samples.pts = self._audio_sent
            samples.time_base = Fraction(1, AUDIO_RATE)
            self._container.mux(self._sound.encode(samples))
            self._audio_sent += count

    def _stop_thread(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        """Encode what is queued, flush the encoders and finish the file (index in front)."""
        if self._closed:
            return
        self._closed = True
        self._stop_thread()
        try:
            if self._failure is not None:
                raise self._failure
            if self.frames_written == 0:
                raise GenerationFailed("no frames were rendered, so no video was written")
            self._feed_audio(final=True)
            self._container.mux(self._video.encode(None))
            if self._sound is not None:
                self._container.mux(self._sound.encode(None))
            self._container.close()
        except av.error.FFmpegError as error:
            self._discard()
            raise GenerationFailed(f"finishing the video failed ({error})") from error
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        """Stop without finishing: drop queued frames, release the encoder, delete the file."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._stop_thread()
        self._discard()

    def _discard(self) -> None:
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass  # the file is deleted anyway; the first error is the one worth reporting
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
