"""Reference clips play at their own speed: shots sized to their clips, trimmed when too
long; a change of speed, when unavoidable or asked for, blends frames and keeps the pitch.

The renders are real 480p MP4s decoded again; the clip is a ball crossing the frame at a
constant speed over a steady tone, so any change of speed shows in the picture (uneven
steps, repeated frames, blends of two positions) and in the sound (a shifted pitch).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, ImageInput, LocalContext, VideoInput
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.storyboard import Shot, Storyboard, build_storyboard
from r2v.engines.compositor.stretch import time_stretch
from r2v.engines.compositor.summary import summarize
from r2v.engines.compositor.timeline import GIVE_WAY_FRAMES
from r2v.media.fit import fit_frame
from r2v.protocol import FPS
from tests.mediafiles import (
    BALL_BACKGROUND,
    decoded_audio,
    decoded_frames,
    engine_request,
    make_ball_video,
    make_image,
)

RATE = 48000
TONE = 500.0
STEP = 4  # the ball's pixels a frame in the reference clip


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("clips")

    def ball(name: str, seconds: float) -> VideoInput:
        path = make_ball_video(root / f"{name}.mp4", seconds=seconds, step_px=STEP, tone_hz=TONE)
        return VideoInput(path, 320, 180, seconds, 24.0, True)

    return {
        "image": ImageInput(make_image(root / "still.jpg", 480, 270, seed=3), 480, 270),
        "ball2": ball("ball2", 2.0),
        "ball3": ball("ball3", 3.0),
        "ball1": ball("ball1", 1.0),
        "long": VideoInput(make_ball_video(root / "long.mp4", 640, 360, 8.0, step_px=1), 640,
                           360, 8.0, 24.0, True),
    }  # fmt: skip


def request(refs: dict[str, Any], prompt: str, *videos: str, **changes: Any) -> EngineRequest:
    defaults = {"generate_audio": True, "seed": 11, "videos": tuple(refs[name] for name in videos)}
    return engine_request(prompt, **(defaults | changes))


def render(req: EngineRequest, folder: Path) -> tuple[Storyboard, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    result = CompositorEngine().generate(req, LocalContext(folder))
    return build_storyboard(req), result.path


def video_shot(board: Storyboard) -> Shot:
    (shot,) = [shot for shot in board.shots if shot.kind == "video"]
    return shot


def ball_x(frame: NDArray[np.uint8]) -> float:
    """The ball's centre across the frame: the centroid of its bright pixels."""
    mass = np.clip(frame.mean(axis=2) - 128.0, 0.0, None)
    return float((mass.sum(axis=0) * np.arange(frame.shape[1])).sum() / mass.sum())


def dominant_hz(samples: NDArray[np.float32], start: float, end: float) -> float:
    """The strongest frequency of seconds `start` to `end`, refined between FFT bins."""
    piece = samples[:, round(start * RATE) : round(end * RATE)].mean(axis=0, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(piece * np.hanning(len(piece))))
    peak = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c)  # the parabola through the peak's three bins
    return float((peak + offset) * RATE / len(piece))


def level_db(samples: NDArray[np.float32], start: float, end: float) -> float:
    piece = samples[:, round(start * RATE) : round(end * RATE)].astype(np.float64)
    return 10 * math.log10(float(np.mean(piece**2)) + 1e-20)


# --- rendered clips ------------------------------------------------------------------------


def test_a_clip_plays_at_its_own_speed_in_a_shot_sized_to_it(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    # A 2 s clip after a still in 5 s: sharing the video by weight gave it 2.25 s (0.89x).
    req = request(refs, "@Image1 then @Video1", "ball2", duration=5, images=(refs["image"],))
    board, path = render(req, tmp_path)
    shot = video_shot(board)
    assert shot.clip_speed == 1.0, f"played at {shot.clip_speed:.3f}x"
    assert shot.length == 2 * FPS, "its shot is as long as the clip"
    frames = decoded_frames(path)
    shown = range(shot.start + shot.fade_in, shot.end)  # after the dissolve
    steps = np.diff([ball_x(frames[n]) for n in shown])
    scale = board.width / 320
    assert min(steps) > 0.5 * STEP * scale, f"a frame repeats: steps {np.round(steps, 2)}"
    assert np.ptp(steps) < 0.5, f"the ball's steps vary: {np.round(steps, 2)}"
    assert float(np.median(steps)) == pytest.approx(STEP * scale, rel=0.03)
    samples, _ = decoded_audio(path)
    heard = dominant_hz(samples, shot.cut / FPS + 0.3, shot.end / FPS - 0.3)
    assert heard == pytest.approx(TONE, rel=0.01), f"the tone came out at {heard:.1f} Hz"


def test_an_unavoidable_slow_down_blends_frames_and_keeps_the_pitch(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    # The only reference is a 3 s clip and the video is 4 s: it must play at 0.75x.
    board, path = render(request(refs, "@Video1", "ball3"), tmp_path)
    (shot,) = board.shots
    assert shot.clip_speed == pytest.approx(0.75)
    output = [frame.astype(np.float32) for frame in decoded_frames(path)]
    source = [
        fit_frame(f, board.size).astype(np.float32) for f in decoded_frames(refs["ball3"].path)
    ]
    top, bottom = board.height // 2 - 40, board.height // 2 + 40  # the ball's band
    band = slice(top, bottom)
    moves = [np.abs(b[band] - a[band]).mean() for a, b in zip(output, output[1:], strict=False)]
    assert min(moves) > 0.3, f"two frames in a row are the same ({min(moves):.2f})"
    halves = 0
    for index, frame in enumerate(output):
        position = shot.clip_time(index) * FPS
        before = min(int(position + 1e-6), len(source) - 1)
        weight = position - before if before + 1 < len(source) else 0.0
        after = min(before + 1, len(source) - 1)
        mix = (1 - weight) * source[before] + weight * source[after]
        ball = np.maximum(source[before], source[after]).mean(axis=2) > BALL_BACKGROUND + 15
        error = np.abs(frame - mix)[ball].mean()
        assert error < 3, f"frame {index} is not the mix of its neighbours ({error:.2f})"
        if 0.4 < weight < 0.6:
            nearest = min(np.abs(frame - source[n])[ball].mean() for n in (before, after))
            assert nearest > 10 * error, f"frame {index} repeats a source frame"
            grey = frame[band].mean(axis=2)
            faint = (grey > BALL_BACKGROUND + 60) & (grey < 200)
            bright = grey >= 200
            assert faint.sum() > 0.25 * bright.sum(), "the ball shows faintly at two places"
            halves += 1
    assert halves >= 20
    samples, _ = decoded_audio(path)
    heard = dominant_hz(samples, 0.3, 3.4)
    assert heard == pytest.approx(TONE, rel=0.01), f"the tone came out at {heard:.1f} Hz"
    # The sound lasts as long as the picture: as loud at the end as in the middle.
    assert level_db(samples, 3.1, 3.5) > level_db(samples, 1.0, 2.0) - 1.5


# --- planning ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "speed"),
    [
        ("@Video1 in slow motion", 0.5),
        ("@Video1, slow-mo", 0.5),
        ("@视频1 慢动作", 0.5),
        ("@Video1, sped up", 2.0),
        ("Fast forward through @Video1", 2.0),
        ("@视频1 快进", 2.0),
        ("A time-lapse of @Video1", 4.0),
        ("@视频1 延时摄影", 4.0),
        ("@Image1. Everything in slow motion.", 0.5),
    ],
)
def test_the_prompt_can_ask_for_slow_motion_or_speed(
    refs: dict[str, Any], prompt: str, speed: float
) -> None:
    board = build_storyboard(request(refs, prompt, "long", duration=8, images=(refs["image"],)))
    shot = video_shot(board)
    assert shot.clip_speed == pytest.approx(speed)
    natural = round(8.0 / speed * FPS)  # the clip's frames at that speed
    if natural <= 6 * FPS:
        assert shot.length == natural, "a shot as long as the clip at that speed"
    else:
        assert 6 * FPS < shot.length < natural, "trimmed: the image keeps a little"


def test_a_slow_motion_clip_sizes_its_shot_and_duration(refs: dict[str, Any]) -> None:
    req = request(refs, "@Video1 in slow motion", "ball2", duration=-1)
    board = build_storyboard(req)
    assert board.seconds == 4 and board.shots[0].clip_speed == pytest.approx(0.5)
    summary = summarize(req, board)
    assert summary.shots[0].clip_speed == pytest.approx(0.5)
    assert summary.warnings == (), "slowed as asked: nothing to warn about"


def test_a_pace_asked_of_a_still_is_said_to_apply_to_clips_only(refs: dict[str, Any]) -> None:
    req = request(refs, "@Image1 in slow motion, then @Video1", "ball2", images=(refs["image"],))
    board = build_storyboard(req)
    assert video_shot(board).clip_speed == 1.0, "the clip was asked nothing"
    assert summarize(req, board).warnings == (
        "@Image1 is a still: the slow motion asked of it plays clips only",
    )


def test_a_long_clip_is_trimmed_at_its_own_speed(refs: dict[str, Any]) -> None:
    req = request(refs, "@Image1 then @Video1", "long", duration=4, images=(refs["image"],))
    board = build_storyboard(req)
    shot = video_shot(board)
    assert (shot.clip_speed, shot.clip_start) == (1.0, 0.0)
    assert board.shots[1].cut == GIVE_WAY_FRAMES, "the image gives way, down to a second"
    shown = shot.length / FPS
    assert summarize(req, board).warnings == (
        f"@Video1 was trimmed from 8.0 s to {shown:.1f} s to fit its shot",
    )
    closing = dataclasses.replace(req, prompt="@Image1, then @Video1 as the last frame")
    last = video_shot(build_storyboard(closing))
    assert last.clip_speed == 1.0
    assert last.clip_time(last.end - 1) == pytest.approx(8.0 - 1 / FPS), "it ends on its end"


def test_stated_lengths_and_the_duration_still_win(refs: dict[str, Any]) -> None:
    req = request(
        refs, "@Video1 for 1.5 seconds, then @Image1", "ball3", duration=5, images=(refs["image"],)
    )
    board = build_storyboard(req)
    assert board.shots[1].cut == round(1.5 * FPS)
    assert board.shots[0].clip_speed == 1.0
    pair = build_storyboard(request(refs, "@Video1 then @Video2", "ball3", "ball3", duration=4))
    assert board.frames == 5 * FPS and pair.frames == 4 * FPS
    assert [shot.clip_speed for shot in pair.shots] == [1.0, 1.0], "both trimmed, not sped up"


def test_a_clip_too_short_even_when_slowed_holds_and_says_so(refs: dict[str, Any]) -> None:
    req = request(refs, "@Video1", "ball1")
    board = build_storyboard(req)
    assert board.shots[0].clip_speed == pytest.approx(0.5)
    summary = summarize(req, board)
    assert summary.shots[0].clip_speed == pytest.approx(0.5)
    assert summary.warnings == (
        "@Video1 (1.0 s) ran out 2.0 s before its shot ended, even at 0.5x (its sound's "
        "pitch kept): its last frame holds",
    )
    slowed = request(refs, "@Video1", "ball3")
    assert summarize(slowed, build_storyboard(slowed)).warnings == (
        "@Video1 (3.0 s) plays at 0.75x to fill its 4.0 s shot (frames blended, its sound's "
        "pitch kept)",
    )


# --- the time-stretch ----------------------------------------------------------------------


def tone(seconds: float, freq: float, channels: int = 2) -> NDArray[np.float32]:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.repeat((0.5 * np.sin(2 * np.pi * freq * t))[None, :], channels, 0).astype(np.float32)


@pytest.mark.parametrize("speed", [0.5, 0.75, 1.25, 2.0])
def test_time_stretch_scales_the_length_and_keeps_the_pitch(speed: float) -> None:
    source = tone(2.0, 440.0)
    stretched = time_stretch(source, speed, RATE)
    assert stretched.shape == (2, round(source.shape[1] / speed))
    assert stretched.dtype == np.float32
    end = stretched.shape[1] / RATE
    assert dominant_hz(stretched, 0.1, end - 0.1) == pytest.approx(440.0, rel=0.002)
    # No clicks: no step between samples much beyond the tone's own largest.
    inner = stretched[:, : -RATE // 20]  # the last frames fade: the input ends there
    assert np.abs(np.diff(inner)).max() <= 1.1 * np.abs(np.diff(source)).max()
    # The level holds: no dips where frames join.
    blocks = inner[0, : inner.shape[1] // 480 * 480].reshape(-1, 480)
    rms = np.sqrt((blocks.astype(np.float64) ** 2).mean(axis=1))
    assert rms.min() > 0.97 * rms.max()


def test_time_stretch_keeps_a_chord_clean_and_words_in_time() -> None:
    chord = tone(2.0, 220.0) + tone(2.0, 277.2) + tone(2.0, 329.6)  # A minor-ish, not periodic
    slowed = time_stretch(chord, 0.8, RATE)
    piece = slowed[0, RATE // 10 : -RATE // 10].astype(np.float64)
    power = np.abs(np.fft.rfft(piece * np.hanning(len(piece)))) ** 2
    freqs = np.fft.rfftfreq(len(piece), 1 / RATE)
    near = sum(power[np.abs(freqs - f) < 6].sum() for f in (220.0, 277.2, 329.6))
    assert near / power.sum() > 0.97, "only the chord's notes are heard"
    # Bursts like words: each starts where the time map puts it (output = input / speed).
    t = np.arange(3 * RATE) / RATE
    starts = [0.3, 1.1, 2.0]
    gate = sum(((t >= s) & (t < s + 0.4)).astype(float) for s in starts)
    voice = (gate * np.sin(2 * np.pi * 180 * t) * 0.5).astype(np.float32)[None, :]
    for speed in (0.7, 1.5):
        out = time_stretch(voice, speed, RATE)[0]
        loud = np.abs(out) > 0.25
        found = [i / RATE for i in np.flatnonzero(loud[1:] & ~loud[:-1]) + 1]
        onsets = [found[0]] + [b for a, b in zip(found, found[1:], strict=False) if b - a > 0.1]
        assert onsets == pytest.approx([s / speed for s in starts], abs=0.015)


def test_time_stretch_keeps_a_gliding_voice_on_its_pitch() -> None:
    # A voice-like buzz (24 harmonics, a formant near 700 Hz) gliding from 120 to 180 Hz:
    # stretched, its pitch at each moment is the source's at the moment the time map plays.
    t = np.arange(3 * RATE) / RATE
    phase = 2 * np.pi * np.cumsum(120 + 20 * t) / RATE
    buzz = sum(
        np.sin(k * phase) / k * (1 + 0.8 * np.exp(-((((k * (120 + 20 * t)) - 700) / 300) ** 2)))
        for k in range(1, 25)
    )
    voice = (0.3 * buzz / np.abs(buzz).max()).astype(np.float32)[None, :]

    def pitch(signal: NDArray[np.float32], at: float) -> float:
        piece = signal[0, round((at - 0.02) * RATE) : round((at + 0.02) * RATE)]
        piece = piece.astype(np.float64) - piece.mean()
        correlation = np.correlate(piece, piece, "full")[len(piece) - 1 :]
        low, high = RATE // 300, RATE // 80
        return RATE / (low + int(np.argmax(correlation[low:high])))

    for speed in (0.6, 1.6):
        out = time_stretch(voice, speed, RATE)
        for at in np.arange(0.1, out.shape[1] / RATE - 0.1, 0.1):
            assert pitch(out, at) == pytest.approx(120 + 20 * at * speed, rel=0.01)


def test_time_stretch_is_deterministic_and_leaves_1x_alone() -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((2, RATE)).astype(np.float32) * 0.1
    assert time_stretch(noise, 0.8, RATE).tobytes() == time_stretch(noise, 0.8, RATE).tobytes()
    assert np.array_equal(time_stretch(noise, 1.0, RATE), noise)
