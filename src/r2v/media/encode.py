"""Writing the output MP4: H.264 yuv420p at 24 fps, AAC 48 kHz stereo, +faststart.

Frames are pushed one at a time and handed through a short queue to an encoder thread, so
drawing the next frame overlaps with encoding the last one (both release the GIL) and
memory stays bounded whatever the length. The soundtrack (a small array, or a `Future` of
one still being computed while the first frames are drawn) is encoded to AAC on a thread
of its own as soon as it is there; the encoder thread muxes its packets in step with the
video, so the muxer interleaves the two as it goes. On `close` the audio is padded with
silence to the video's length, or cut at the last AAC frame that starts within it. A
soundtrack already coded (an `AacTrack`, see `r2v.media.aac`) is muxed as it is: cut the
same way, but never padded.

Colour: RGB is converted with OpenCV's `RGB2YUV_I420`, which is BT.601 limited range
(black at Y=16, white at 235) and about ten times faster than swscale; the stream is tagged
to match (matrix SMPTE 170M, TV range) with BT.709 primaries and transfer, those of sRGB,
so players decode the same colours that were rendered.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self, cast

import av
import av.error
import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.errors import GenerationFailed
from r2v.media.aac import (
    AAC_BIT_RATE,
    AAC_FRAME,
    AAC_OPTIONS,
    AUDIO_RATE,
    AacTrack,
    EncodePreset,
    Soundtrack,
    audio_frame,
    checked,
)
from r2v.protocol import FPS

# "fast" is x264's fastest preset, ultrafast, with CABAC and the deblocking filter back on:
# on a 2-core machine they cost no measurable time (CABAC writes fewer bits, which saves
# about what its arithmetic costs) and give files a quarter smaller, without the blocking
# plain ultrafast shows. It encodes 720p in about a third of veryfast's time, leaving the
# rest of the budget to drawing. "standard" is superfast, the next preset up, at CRF 24:
# its B-frames, 4x4 and 8x8 intra partitions and weighted prediction make files 10-50%
# smaller than fast's at a higher PSNR and SSIM on every kind of content measured
# (bench/presets.py), for 1.5x ultrafast's encoding time. Trellis quantization adds
# 0.1-0.2 dB for a few percent more time. Adaptive quantization is off: it moves bits to
# flat areas, and on the soft gradients of a scene drawn from words it made files twice
# the size of fast's for PSNR already above 52 dB. Slower presets give a little more per
# byte (veryfast about 0.2 dB, medium 0.5 dB) for two to eight times the encoding time,
# more than standard's budget (twice fast's time) allows.
# Macroblock-tree rate control is off: with it, x264 on several threads (as PyAV's FFmpeg
# runs it) does not give the same bytes for the same frames from run to run, and the same
# request must decode to the same frames; neither preset uses it by default.
_X264: dict[EncodePreset, dict[str, str]] = {
    "fast": {"preset": "ultrafast", "crf": "23", "x264-params": "cabac=1:deblock=0,0"},
    "standard": {
        "preset": "superfast",
        "crf": "24",
        "x264-params": "mbtree=0:aq-mode=0:trellis=1",
    },
}
_GOP_SECONDS = 2  # a keyframe every two seconds keeps scrubbing in players snappy
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
    stops the encoder threads, releases the encoders and deletes the partial file.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        *,
        preset: EncodePreset = "fast",
        audio: Soundtrack | AacTrack | Future[Soundtrack] | Future[AacTrack] | None = None,
        fps: int = FPS,
    ) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"yuv420p needs an even, positive size; got {width}x{height}")
        if isinstance(audio, np.ndarray):
            checked(audio)
        self.preset = preset
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0
        self._closed = False
        self._stopping = False
        self._failure: BaseException | None = None
        self._audio_failure: BaseException | None = None
        self._audio: Soundtrack | None = None
        self._audio_packets: deque[av.Packet[av.AudioStream]] = deque()
        self._audio_encoded = 0  # samples the audio thread has handed to the AAC encoder
        self._audio_coded = False  # whether the soundtrack came coded, packets and all
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
        if audio is not None:
            self._sound = self._container.add_stream(
                "aac", rate=AUDIO_RATE, layout="stereo", options=dict(AAC_OPTIONS[preset])
            )
            self._sound.bit_rate = AAC_BIT_RATE
        try:
            # Both encoders open here, before the threads start: the muxer needs the AAC
            # configuration for the header, and each encoder is then used by one thread.
            self._video.codec_context.open()
            if self._sound is not None:
                self._sound.codec_context.open()
        except av.error.FFmpegError as error:
            self._discard()
            raise GenerationFailed(f"cannot start the encoders ({error})") from error
        self._audio_thread: threading.Thread | None = None
        if audio is not None:
            self._audio_thread = threading.Thread(
                target=self._encode_audio, args=(audio,), name="r2v-audio", daemon=True
            )
            self._audio_thread.start()
        self._queue: queue.Queue[NDArray[np.uint8] | None] = queue.Queue(_QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._encode_loop, name="r2v-encode", daemon=True)
        self._thread.start()

    def write(self, frame: NDArray[np.uint8]) -> None:
        """Queue one uint8 frame of exactly the writer's size for encoding.

        The frame is HxWx3 RGB or HxWx4 RGBA (alpha ignored). Raises the encoders' failure
        (a GenerationFailed, or whatever computing the soundtrack raised) if one failed.
        """
        if frame.shape[:2] != (self.height, self.width) or frame.shape[2:] not in ((3,), (4,)):
            raise ValueError(
                f"frame is {frame.shape}, the writer expects ({self.height}, {self.width}, 3|4)"
            )
        if self._closed:
            raise ValueError("the writer is closed")
        if self._failure is not None:
            raise self._failure
        if self._audio_failure is not None:
            raise self._audio_failure
        # Converted in the caller's thread: the new buffer also leaves the caller free to
        # reuse its frame at once.
        code = cv2.COLOR_RGB2YUV_I420 if frame.shape[2] == 3 else cv2.COLOR_RGBA2YUV_I420
        yuv = cv2.cvtColor(frame, code)
        self._queue.put(yuv)  # type: ignore[arg-type]

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
        self._mux_audio(self.audio_samples_due)

    def _encode_audio(
        self, source: Soundtrack | AacTrack | Future[Soundtrack] | Future[AacTrack]
    ) -> None:
        # The audio thread: wait for the soundtrack, then encode every whole AAC frame of it;
        # `close` encodes the rest once the video's length is known. A coded one is queued.
        try:
            soundtrack = source.result() if isinstance(source, Future) else source
            if isinstance(soundtrack, AacTrack):
                self._take_coded(soundtrack)
                return
            samples = checked(soundtrack)
            self._audio = samples
            whole = samples.shape[1] // AAC_FRAME * AAC_FRAME
            for start in range(0, whole, AAC_FRAME):
                if self._stopping or self._sound is None:
                    return
                chunk = samples[:, start : start + AAC_FRAME]
                self._audio_packets.extend(self._sound.encode(audio_frame(chunk, start)))
                self._audio_encoded = start + AAC_FRAME
        except av.error.FFmpegError as error:
            self._audio_failure = GenerationFailed(f"the audio encoder failed ({error})")
        except BaseException as error:  # noqa: BLE001 - handed over to the producer thread
            self._audio_failure = error

    def _take_coded(self, track: AacTrack) -> None:
        if track.preset != self.preset:
            raise ValueError(f"a soundtrack coded for {track.preset} in a {self.preset} file")
        if self._sound is None:
            return
        # Copies: muxing hands a packet's data over to the muxer, and the track is the
        # caller's to decode again.
        for packet in track.packets:
            copy = cast("av.Packet[av.AudioStream]", av.Packet(bytes(packet)))
            copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
            copy.time_base = packet.time_base
            copy.stream = self._sound
            self._audio_packets.append(copy)
        self._audio_encoded = track.samples
        self._audio_coded = True

    def _mux_audio(self, due: int) -> None:
        """Mux the encoded audio that starts before sample `due`, in order."""
        while self._audio_packets:
            packet = self._audio_packets[0]
            if packet.pts is not None and packet.time_base is not None:
                if packet.pts * packet.time_base * AUDIO_RATE >= due:
                    return
            self._container.mux(self._audio_packets.popleft())

    def _finish_audio(self) -> None:
        """Encode the soundtrack's rest up to the video's length (silence past its end),
        flush the AAC encoder and mux what starts within the video."""
        if self._sound is None:
            return
        due = self.audio_samples_due
        if self._audio_coded:
            self._mux_audio(due)
            self._audio_packets.clear()  # what remains starts after the video's end
            return
        samples = self._audio if self._audio is not None else np.zeros((2, 0), np.float32)
        position = self._audio_encoded
        while position < due:
            count = min(AAC_FRAME, due - position)
            chunk = samples[:, position : position + count]
            if chunk.shape[1] < count:  # the soundtrack is shorter than the video
                chunk = np.pad(chunk, ((0, 0), (0, count - chunk.shape[1])))
            self._audio_packets.extend(self._sound.encode(audio_frame(chunk, position)))
            position += count
        self._audio_packets.extend(self._sound.encode(None))
        self._mux_audio(due)
        self._audio_packets.clear()  # what remains starts after the video's end

    def _stop_threads(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._audio_thread is not None:
            self._audio_thread.join()

    def close(self) -> None:
        """Encode what is queued, flush the encoders and finish the file (index in front)."""
        if self._closed:
            return
        self._closed = True
        self._stop_threads()
        try:
            if self._failure is not None:
                raise self._failure
            if self._audio_failure is not None:
                raise self._audio_failure
            if self.frames_written == 0:
                raise GenerationFailed("no frames were rendered, so no video was written")
            self._finish_audio()
            self._container.mux(self._video.encode(None))
            self._container.close()
        except av.error.FFmpegError as error:
            self._discard()
            raise GenerationFailed(f"finishing the video failed ({error})") from error
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        """Stop without finishing: drop queued frames, release the encoders, delete the file."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._stop_threads()
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
