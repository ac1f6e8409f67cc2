"""The references a render reads more than once, decoded or analysed on first use and kept.

Planning needs some of them (the music's onsets place the cuts, a reference video's camera
motion becomes image shots' moves, a picture's subject is where its moves end) and
rendering needs them again (the soundtrack), so one `ReferenceBank` per render holds the
decoded audio, the camera tracks and the subjects. Pictures are not kept here: plates are
prepared when their shot begins and dropped after their last shot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from r2v.engines.base import EngineRequest
from r2v.engines.compositor.clips import Audio, audible
from r2v.engines.compositor.loudness import match_loudness
from r2v.engines.compositor.onsets import detect_onsets, loop_on_beats
from r2v.engines.compositor.saliency import subject_point, thumbnail_size
from r2v.engines.compositor.transfer import CameraTrack, estimate_camera
from r2v.errors import ReferenceInvalid
from r2v.media.aac import AUDIO_CHANNELS, AUDIO_RATE
from r2v.media.decode import decode_audio, load_image
from r2v.protocol import MAX_DURATION

CLIP_LUFS = -20.0
"""The loudness every clip is brought to before mixing, so none drowns the others."""


class ReferenceBank:
    """Decoded audio, camera tracks and pictures' subjects of one request's references, each
    computed once."""

    def __init__(
        self, request: EngineRequest, checkpoint: Callable[[], None] = lambda: None
    ) -> None:
        """`checkpoint` is called now and then during long work; it may raise to stop it."""
        self.request = request
        self._checkpoint = checkpoint
        self._audio: dict[tuple[str, int], Audio] = {}
        self._cameras: dict[int, CameraTrack] = {}
        self._subjects: dict[tuple[int, tuple[int, int]], tuple[float, float] | None] = {}

    def audio(self, index: int) -> Audio:
        """`@Audio{index+1}` at 48 kHz stereo, brought to `CLIP_LUFS`."""
        return self._cached(
            self._audio, ("audio", index), f"@Audio{index + 1}",
            lambda: decode_audio(
                self.request.audios[index].path, AUDIO_RATE, AUDIO_CHANNELS,
                max_seconds=MAX_DURATION,
            ),
        )  # fmt: skip

    def video_audio(self, index: int) -> Audio:
        """The sound of `@Video{index+1}` (no samples if it has none), at `CLIP_LUFS`."""
        return self._cached(
            self._audio, ("video", index), f"@Video{index + 1}",
            lambda: decode_audio(
                self.request.videos[index].path, AUDIO_RATE, AUDIO_CHANNELS,
                max_seconds=MAX_DURATION,
            ),
        )  # fmt: skip

    def camera(self, index: int) -> CameraTrack:
        """The camera motion of `@Video{index+1}`."""
        if index not in self._cameras:
            try:
                self._cameras[index] = estimate_camera(
                    self.request.videos[index].path, checkpoint=self._checkpoint
                )
            except ReferenceInvalid as error:
                raise ReferenceInvalid(f"@Video{index + 1}: {error.message}") from error
        return self._cameras[index]

    def subject(self, index: int, shape: tuple[int, int]) -> tuple[float, float] | None:
        """Where `@Image{index+1}`'s subject is once fitted to a frame of `shape` (width,
        height), as offsets from its centre (see `saliency.subject_point`); None if nothing
        stands out. The picture is decoded at a small size (twice the thumbnail's)."""
        key = (index, shape)
        if key not in self._subjects:
            width, height = thumbnail_size(shape)
            try:
                picture = load_image(
                    self.request.images[index].path, draft_size=(2 * width, 2 * height)
                )
            except ReferenceInvalid as error:
                raise ReferenceInvalid(f"@Image{index + 1}: {error.message}") from error
            self._subjects[key] = subject_point(picture, shape)
        return self._subjects[key]

    def onsets(self, indices: Sequence[int], length: int) -> list[tuple[float, float]]:
        """Onsets (seconds, strength) of the audio clips `indices` looped to `length`
        samples and mixed, as they will play under the whole video."""
        # looped as they will play: on the beat (see `onsets.loop_on_beats`)
        layers = [loop_on_beats(self.audio(i), length) for i in indices]
        layers = [layer for layer in layers if audible(layer)]
        if not layers:
            return []
        return detect_onsets(np.sum(layers, axis=0, dtype=np.float32))

    @staticmethod
    def _cached(
        store: dict[tuple[str, int], Audio],
        key: tuple[str, int],
        label: str,
        load: Callable[[], Audio],
    ) -> Audio:
        if key not in store:
            try:
                decoded = load()
            except ReferenceInvalid as error:
                raise ReferenceInvalid(f"{label}: {error.message}") from error
            store[key] = match_loudness(decoded, CLIP_LUFS) if audible(decoded) else decoded
        return store[key]
