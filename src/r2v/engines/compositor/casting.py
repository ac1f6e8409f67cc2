"""Casting: which beats become shots, in what order, with what weight, and how long and
how wide the video is.

The beats come in prompt order (a picture named again later is shown again); pictures the
prompt never names follow, images before videos, each list in its own order; a beat pinned
to the first frame moves to the front and one pinned to the last frame to the end (the
request's own `first_frame` / `last_frame` pin in place of the prompt's wording). A video
beat asks for a shot as long as its clip at the pace asked (`clip_frames`); images share
what is left by their words. `duration: -1` and `adaptive` are resolved here too.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from r2v.engines.base import EngineRequest, nearest_aspect_ratio
from r2v.engines.compositor import timeline
from r2v.engines.compositor.playback import natural_frames
from r2v.engines.compositor.prompt import Beat, Pin, Reading
from r2v.protocol import AUTO_DURATION, FPS, MAX_DURATION, MIN_DURATION, FixedAspectRatio

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
    beats = _explicit_pins(request, beats)
    opener = next((n for n, b in enumerate(beats) if "first" in b.pins), None)
    closer = next((n for n, b in enumerate(beats) if "last" in b.pins and n != opener), None)
    if closer is None and opener is not None and "last" in beats[opener].pins:
        if len(beats) > 1:  # "@Image1 as the first and last frame": it opens and closes
            beats.append(replace(beats[opener], pins=frozenset({"last"}), audios=()))
            closer = len(beats) - 1
    middle = [
        replace(b, pins=frozenset()) for n, b in enumerate(beats) if n not in (opener, closer)
    ]
    ordered = middle
    if opener is not None:
        pins: frozenset[Pin] = frozenset({"first"})
        if closer is None and "last" in beats[opener].pins:
            pins = frozenset({"first", "last"})
        ordered = [replace(beats[opener], pins=pins)]
        ordered += middle
    if closer is not None:
        ordered.append(replace(beats[closer], pins=frozenset({"last"})))
    return _merge_repeats(ordered)


def _explicit_pins(request: EngineRequest, beats: list[Beat]) -> list[Beat]:
    """The request's pins in place of the prompt's for the same end: the first beat of the
    `first_frame` image opens the video, the last beat of the `last_frame` image closes it.

    Every image has a beat by now, named in the prompt or not.
    """
    ends: tuple[tuple[Pin, int | None], ...] = (
        ("first", request.first_frame),
        ("last", request.last_frame),
    )
    for pin, image in ends:
        if image is None:
            continue
        beats = [replace(b, pins=b.pins - {pin}) for b in beats]
        shown = [n for n, b in enumerate(beats) if (b.kind, b.index) == ("image", image)]
        at = shown[0] if pin == "first" else shown[-1]
        beats[at] = replace(beats[at], pins=beats[at].pins | {pin})
    return beats


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


def choose_ratio(request: EngineRequest, reading: Reading) -> FixedAspectRatio:
    """The request's ratio, with `adaptive` resolved as API.md says: the first picture
    mentioned, else the first image, else the first video, else 16:9."""
    if request.aspect_ratio != "adaptive":
        return request.aspect_ratio
    if reading.first_visual is not None:
        kind, index = reading.first_visual
        chosen = request.images[index] if kind == "image" else request.videos[index]
        return nearest_aspect_ratio(chosen.width, chosen.height)
    for pool in (request.images, request.videos):
        if pool:
            return nearest_aspect_ratio(pool[0].width, pool[0].height)
    return "16:9"
