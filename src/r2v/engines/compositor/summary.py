"""What the compositor made of a request, in words: the storyboard a finished task reports.

`summarize` turns the plan into `task_info.storyboard` (each shot from cut to cut with what
it shows, its camera, grade and weather; each sound cue with its role) and
`task_info.warnings`: what the plan could not honour, or decided alone (pictures never
named or left out for want of room, clips trimmed or retimed, audio not heard or cut
short, an `adaptive` ratio or a `duration: -1` it could not decide as asked).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from r2v.engines.base import EngineRequest, RenderSummary, ShotSummary, SoundSummary
from r2v.engines.compositor import timeline
from r2v.engines.compositor.casting import cast, duration_basis, fit_count
from r2v.engines.compositor.playback import asked_speed
from r2v.engines.compositor.prompt import Beat, Reading, read_prompt
from r2v.engines.compositor.scenery import ABSTRACT_INSTEAD, shown_by
from r2v.engines.compositor.storyboard import Shot, SoundCue, Storyboard
from r2v.grammar import adaptive_picture
from r2v.protocol import AUTO_DURATION, FPS, MAX_DURATION, MIN_DURATION

# A clip or sound this much shorter than its source was trimmed (below: rounding, not a cut).
_TRIM_TOLERANCE = 0.1


def summarize(request: EngineRequest, board: Storyboard) -> RenderSummary:
    """The storyboard as a person reads it (a time range, a picture and a camera a shot;
    what each sound cue plays), and what the plan could not honour or decided alone."""
    reading = read_prompt(
        request.prompt, len(request.images), len(request.videos), len(request.audios)
    )
    shots = tuple(_shot_summary(request, board, n) for n in range(len(board.shots)))
    sounds = tuple(_sound_summary(cue, reading) for cue in board.sound.cues)
    warnings = (
        _picture_warnings(request, reading, board)
        + _sound_warnings(request, reading, board)
        + _shape_warnings(request, reading, board)
    )
    return RenderSummary(shots, sounds, tuple(warnings))


def _seconds(frame: int) -> float:
    return round(frame / FPS, 3)


def _shot_summary(request: EngineRequest, board: Storyboard, number: int) -> ShotSummary:
    # A shot's range runs from cut to cut (the middle of each dissolve), so the ranges
    # follow each other and cover the video exactly.
    shot = board.shots[number]
    start = 0 if number == 0 else shot.cut
    end = board.shots[number + 1].cut if number + 1 < len(board.shots) else board.frames
    words = shot.text or None
    grade, weather = shot.grade.name, shot.weather
    camera: str = shot.motion.kind if shot.motion is not None else "static"
    if shot.kind == "ambient":
        return ShotSummary(
            _seconds(start),
            _seconds(end),
            shown_by(shot.scene),
            camera,
            words=words,
            grade=grade,
            weather=weather,
        )
    if shot.kind == "video":
        shown = _clip_shown(request, shot)
        return ShotSummary(
            _seconds(start), _seconds(end), shot.label, "the clip's own", words=words,
            clip_from=round(shot.clip_start, 3), clip_to=round(shot.clip_start + shown, 3),
            clip_speed=round(shot.clip_speed, 3),
            grade=grade, weather=weather,
        )  # fmt: skip
    if camera == "transfer" and shot.camera_of is not None:
        camera = f"follows @Video{shot.camera_of + 1}"
    return ShotSummary(
        _seconds(start), _seconds(end), shot.label, camera, grade=grade, words=words,
        weather=weather,
    )  # fmt: skip


def _clip_shown(request: EngineRequest, shot: Shot) -> float:
    """Source seconds of a video shot's clip that play (it holds its last frame after)."""
    wanted = shot.length / FPS * shot.clip_speed
    return max(0.0, min(wanted, request.videos[shot.index].duration - shot.clip_start))


def _sound_summary(cue: SoundCue, reading: Reading) -> SoundSummary:
    role: Literal["background", "narration", "clip"] = (
        "clip" if cue.role == "shot" else "background"
    )
    if cue.source == "audio" and cue.index in reading.spoken:
        role = "narration"
    return SoundSummary(cue.label, _seconds(cue.start), _seconds(cue.end), role, loops=cue.loop)


def _picture_warnings(request: EngineRequest, reading: Reading, board: Storyboard) -> list[str]:
    """Pictures shown though never named, left out for want of room, played as filmed
    despite a camera move asked of them, stills asked to play slower or faster, and clips
    trimmed or retimed."""
    if not request.images and not request.videos:
        drawn = ["no reference was given: the scene is drawn from the words"]
        if any(shot.scene is None for shot in board.shots):
            drawn.append(ABSTRACT_INSTEAD)
        return drawn
    warnings: list[str] = []
    planned = cast(request, reading)
    shown = fit_count(planned, board.frames)  # as the storyboard did
    named = {(b.kind, b.index) for b in reading.beats}
    extra = [b for b in shown if (b.kind, b.index) not in named]
    camera_only = _labels(b for b in extra if b.kind == "video" and b.index in
                          reading.motion_sources)  # fmt: skip
    unnamed = [label for label in _labels(extra) if label not in camera_only]
    if unnamed and reading.first_visual is None:
        nothing = "picture" if reading.audios else "reference"
        warnings.append(
            f"no {nothing} was named in the prompt: {_listing(unnamed)} "
            f"{_verb(unnamed, 'is', 'are')} shown in the order given"
        )
    elif unnamed:
        warnings.append(
            f"{_listing(unnamed)} {_verb(unnamed, 'is', 'are')} not named in the prompt: "
            "shown after the named pictures"
        )
    if camera_only:
        warnings.append(
            f"{_listing(camera_only)} {_verb(camera_only, 'is', 'are')} named only for "
            "the camera, but shown too: there is no image to move"
        )
    dropped = [n for n in _labels(planned) if n not in _labels(shown)]
    room = f"a {board.seconds} s video has room for {timeline.max_shots(board.frames)} shots"
    if dropped:
        warnings.append(f"{_listing(dropped)} {_verb(dropped, 'was', 'were')} left out: {room}")
    elif len(shown) < len(planned):
        warnings.append(f"repeated showings of a picture were left out: {room}")
    for beat in shown:
        if beat.kind == "video" and beat.move is not None:
            warnings.append(
                f"{beat.label} plays as filmed: the camera move asked of it "
                f"({beat.move.kind}) moves images only"
            )
        if beat.kind == "image" and beat.pace is not None:
            pace = beat.pace.replace("_", " ")
            warnings.append(f"{beat.label} is a still: the {pace} asked of it plays clips only")
    warnings += [
        w for shot in board.shots if shot.kind == "video" for w in _clip_warning(request, shot)
    ]
    return warnings


def _clip_warning(request: EngineRequest, shot: Shot) -> list[str]:
    """What became of a video shot's clip when it could not play whole at the speed asked:
    trimmed, slowed to fill its shot, or run out with its last frame holding."""
    clip = request.videos[shot.index]
    shown = _clip_shown(request, shot)
    held = shot.length / FPS - shown / shot.clip_speed
    speed = f"{shot.clip_speed:.2g}x"
    pitch = ["its sound's pitch kept"] if request.generate_audio and clip.has_audio else []
    if clip.duration - shown > _TRIM_TOLERANCE:
        cut = (
            f"{shot.label} was trimmed from {clip.duration:.1f} s to {shown:.1f} s to fit its shot"
        )
        if shot.clip_start > 0:
            cut += ", from its start so that it ends on its last frame"
        if shot.clip_speed != 1.0:
            cut += f" ({', '.join([f'played at {speed}', *pitch])})"
        return [cut]
    if held > _TRIM_TOLERANCE:
        kept = f" ({pitch[0]})" if pitch else ""
        return [
            f"{shot.label} ({clip.duration:.1f} s) ran out {held:.1f} s before its shot "
            f"ended, even at {speed}{kept}: its last frame holds"
        ]
    if abs(shot.clip_speed - asked_speed(shot.pace)) > 1e-6:
        return [
            f"{shot.label} ({clip.duration:.1f} s) plays at {speed} to fill its "
            f"{shot.length / FPS:.1f} s shot ({', '.join(['frames blended', *pitch])})"
        ]
    return []


def _sound_warnings(request: EngineRequest, reading: Reading, board: Storyboard) -> list[str]:
    """Audio clips not heard, or cut short."""
    clips = [f"@Audio{n + 1}" for n in range(len(request.audios))]
    if not clips:
        return []
    if not request.generate_audio:
        return [f"generate_audio is false: {_listing(clips)} {_verb(clips, 'is', 'are')} not heard"]
    warnings: list[str] = []
    if not reading.audios:
        warnings.append(
            f"no audio was named in the prompt: {_listing(clips)} "
            f"{_verb(clips, 'plays', 'play')} under the whole video"
        )
    heard = {cue.index for cue in board.sound.cues if cue.source == "audio"}
    unheard = [clip for n, clip in enumerate(clips) if n not in heard]
    if unheard:
        warnings.append(
            f"{_listing(unheard)} {_verb(unheard, 'is', 'are')} not named in the prompt, "
            "so not heard"
        )
    cues = board.sound.cues
    for cue in cues:
        if cue.source != "audio":
            continue
        length = request.audios[cue.index].duration - cue.offset
        played = (cue.end - cue.start) / FPS
        if length - played <= _TRIM_TOLERANCE:
            continue
        later = [c.label for c in cues if c.role == "shot" and c.start == cue.end]
        why = f"{later[0]} starts there" if later and cue.end < board.frames else "the video ends"
        warnings.append(f"{cue.label} was cut from {length:.1f} s to {played:.1f} s: {why}")
    return warnings


def _shape_warnings(request: EngineRequest, reading: Reading, board: Storyboard) -> list[str]:
    """Where `adaptive` or `duration: -1` could not be decided as asked: no picture to follow,
    or a length the references want that the API's range cuts (a decision made as asked is
    no warning: the storyboard and the task say what it became)."""
    warnings: list[str] = []
    if request.aspect_ratio == "adaptive":
        if adaptive_picture(request.prompt, request.images, request.videos) is None:
            warnings.append(f"aspect_ratio adaptive: {board.aspect_ratio}, no picture to follow")
    if request.duration == AUTO_DURATION:
        basis, wanted = duration_basis(request, reading, cast(request, reading))
        if math.floor(wanted + 0.5) != board.seconds:
            warnings.append(
                f"duration -1: {board.seconds} s, from {basis} ({wanted:.1f} s, kept within "
                f"{MIN_DURATION}-{MAX_DURATION} s)"
            )
    return warnings


def _labels(beats: Iterable[Beat]) -> list[str]:
    """The pictures' names, each once, in order."""
    return list(dict.fromkeys(beat.label for beat in beats))


def _listing(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _verb(labels: list[str], one: str, many: str) -> str:
    return one if len(labels) == 1 else many
