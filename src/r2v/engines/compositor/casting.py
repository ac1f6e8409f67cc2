"""Casting: which beats become shots, in what order, with what weight, and how long and
how wide the video is.

The beats come in prompt order (a picture named again later is shown again); pictures the
prompt never names follow, images before videos, each list in its own order; a beat pinned
to the first frame moves to the front and one pinned to the last frame to the end (the
request's own `first_frame` / `last_frame` pin in place of the prompt's wording). A video
beat asks for a shot as long as its clip at the pace asked (`clip_frames`); images share
what is left by their words. `duration: -1` is resolved here too (`adaptive` is
`resolve_aspect_ratio`'s).
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from r2v.engines.base import EngineRequest
from r2v.engines.compositor import timeline
from r2v.engines.compositor.playback import natural_frames
from r2v.engines.compositor.prompt import Beat, Reading
from r2v.grammar import Pin, pinned_ends
from r2v.protocol import AUTO_DURATION, FPS, MAX_DURATION, MIN_DURATION

IMAGE_SHOT_SECONDS = 3.0
"""The seconds per image shot `duration: -1` assumes."""
TEXT_ONLY_SECONDS = 5
DEFAULT_WORDS = 8.0
"""The weight of a picture the prompt never names, when no beat sets a typical one."""


def cast(request: EngineRequest, reading: Reading) -> list[Beat]:
    """The beats in shot order: as written, then unnamed pictures, pinned ends in place;
    clips the prompt gives no pace of their own take the whole video's."""
    beats = [
        replace(b, pace=b.pace or reading.pace) if b.kind == "video" else b for b in reading.beats
    ]
    shown = {(b.kind, b.index) for b in beats}
    typical = statistics.median(b.words for b in beats) if beats else DEFAULT_WORDS
    for index in range(len(request.images)):
        if ("image", index) not in shown:
            beats.append(Beat("image", index, "", typical))
    # A video named only as a camera reference is not shown, unless nothing else would be.
    hidden = reading.motion_sources if any(b.kind == "image" for b in beats) else frozenset()
    for index in range(len(request.videos)):
        if ("video", index) not in shown and index not in hidden:
            beats.append(Beat("video", index, "", typical, pace=reading.pace))
    opener, closer = pinned_ends([b.pins for b in beats])
    if request.first_frame is not None:  # the request's pins win, end by end
        opener = next(n for n, b in enumerate(beats) if _is_image(b, request.first_frame))
    if request.last_frame is not None:
        closer = [n for n, b in enumerate(beats) if _is_image(b, request.last_frame)][-1]
    if opener is not None and closer == opener and len(beats) > 1:
        # "@Image1 as the first and last frame": it opens, and is shown again to close
        beats.append(replace(beats[opener], audios=()))
        closer = len(beats) - 1
    middle = [
        replace(b, pins=frozenset()) for n, b in enumerate(beats) if n not in (opener, closer)
    ]
    ordered = middle
    if opener is not None:
        pins: frozenset[Pin] = frozenset({"first", "last"} if closer == opener else {"first"})
        ordered = [replace(beats[opener], pins=pins), *middle]
    if closer is not None and closer != opener:
        ordered.append(replace(beats[closer], pins=frozenset({"last"})))
    return _merge_repeats(ordered)


def _is_image(beat: Beat, index: int) -> bool:
    """Whether the beat shows that image (every image has a beat by now, named or not)."""
    return (beat.kind, beat.index) == ("image", index)


def _merge_repeats(beats: list[Beat]) -> list[Beat]:
    """Neighbouring beats of the same picture become one shot."""
    merged: list[Beat] = []
    for beat in beats:
        last = merged[-1] if merged else None
        if last is not None and (last.kind, last.index) == (beat.kind, beat.index):
            merged[-1] = replace(
                last,
                text=", ".join(t for t in (last.text, beat.text) if t),
                words=last.words + beat.words,
                seconds=None if last.seconds is None and beat.seconds is None
                else (last.seconds or 0.0) + (beat.seconds or 0.0),
                move=last.move or beat.move,
                pace=last.pace or beat.pace,
                camera_of=last.camera_of if last.camera_of is not None else beat.camera_of,
                pins=last.pins | beat.pins,
                audios=tuple(dict.fromkeys(last.audios + beat.audios)),
            )  # fmt: skip
        else:
            merged.append(beat)
    return merged


def clip_frames(request: EngineRequest, beats: list[Beat]) -> list[int | None]:
    """The frames each video beat's shot needs to show its whole clip at the pace asked
    (None for images), so that clips play at their own speed where the video has room."""
    return [_clip_frames(request, b) if b.kind == "video" else None for b in beats]


def _clip_frames(request: EngineRequest, beat: Beat) -> int:
    return natural_frames(request.videos[beat.index].duration, beat.pace, beat.emphasis)


def fit_count(beats: list[Beat], frames: int) -> list[Beat]:
    """At most as many beats as the video has room for: repeats go first, then the last
    unpinned ones."""
    limit = timeline.max_shots(frames)
    beats = list(beats)
    while len(beats) > limit:
        seen: set[tuple[str, int]] = set()
        repeats = []
        for position, beat in enumerate(beats):
            if (beat.kind, beat.index) in seen and not beat.pins:
                repeats.append(position)
            seen.add((beat.kind, beat.index))
        droppable = repeats or [n for n, b in enumerate(beats) if not b.pins]
        if not droppable:
            break
        beats.pop(droppable[-1])
    return _merge_repeats(beats)


def choose_seconds(request: EngineRequest, reading: Reading, beats: list[Beat]) -> int:
    """The video's length in whole seconds: the request's, or for `duration: -1` what
    `duration_basis` wants, kept within 4-15 s."""
    if request.duration != AUTO_DURATION:
        return request.duration
    return timeline.clamp_seconds(
        duration_basis(request, reading, beats)[1], MIN_DURATION, MAX_DURATION
    )


def duration_basis(
    request: EngineRequest, reading: Reading, beats: list[Beat]
) -> tuple[str, float]:
    """What `duration: -1` takes the length from, in words, and the seconds it wants.

    In order: the prompt's own timing ("0-3s", or a length stated for every shot); the
    audio (the clips that span the video, else those named, else all); the videos shown
    (at the pace asked) plus three seconds an image; three seconds a shot (five for text
    only). Audio counts even without `generate_audio`: it still says how long the piece
    is meant to be.
    """
    if reading.timeline:
        return "the prompt's timing", reading.timeline
    if beats and all(b.seconds is not None for b in beats):
        return "the lengths the prompt states", sum(b.seconds or 0.0 for b in beats)
    if request.audios:
        chosen = reading.background or reading.audios or tuple(range(len(request.audios)))
        longest = max(chosen, key=lambda i: request.audios[i].duration)
        return f"the length of @Audio{longest + 1}", request.audios[longest].duration
    if any(b.kind == "video" for b in beats):
        seconds = sum(
            _clip_frames(request, b) / FPS if b.kind == "video" else IMAGE_SHOT_SECONDS
            for b in beats
        )
        return f"the videos shown and {IMAGE_SHOT_SECONDS:g} s for each image", seconds
    if beats:
        return f"{IMAGE_SHOT_SECONDS:g} s for each of {len(beats)} shots", (
            IMAGE_SHOT_SECONDS * len(beats)
        )
    return "the words alone", float(TEXT_ONLY_SECONDS)
