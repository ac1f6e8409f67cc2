"""Compositor sound: loudness, onsets, and where each sound lands in the decoded output."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import AudioInput, EngineRequest, ImageInput, LocalContext, Preset, VideoInput
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.loudness import (
    CEILING,
    CODEC_HEADROOM_DB,
    integrated_loudness,
    limit,
    limit_for_codec,
    master,
    true_peak,
)
from r2v.engines.compositor.onsets import detect_onsets
from r2v.engines.compositor.references import ReferenceBank
from r2v.engines.compositor.sound import mix_soundtrack
from r2v.engines.compositor.storyboard import SAMPLES_PER_FRAME, build_storyboard
from r2v.media.aac import encode_aac
from r2v.media.decode import decode_audio
from r2v.media.encode import Mp4Writer
from r2v.protocol import FPS
from tests.mediafiles import (
    band_level,
    decoded_audio,
    decoded_frames,
    engine_request,
    make_beats_wav,
    make_bursts_wav,
    make_image,
    make_video,
    make_wav,
    true_peak_dbtp,
    write_wav,
)

RATE = 48000
VOICE_SPANS = [(0.8, 1.8), (3.0, 4.0)]
"""Seconds where the test narration speaks: a 300 Hz tone, music being a 2 kHz one."""
VOICE_BAND, MUSIC_BAND = (250.0, 350.0), (1900.0, 2100.0)
CLIP_BAND = (250.0, 450.0)  # the reference video's 330 Hz tone
BPM_120 = [0.25 + 0.5 * beat for beat in range(20)]


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sound")
    images = [make_image(root / f"i{n}.jpg", 480, 270, seed=20 + n) for n in range(3)]
    return {
        "images": tuple(ImageInput(path, 480, 270) for path in images),
        "clip": VideoInput(
            make_video(root / "clip.mp4", 320, 240, 2.0, seed=4), 320, 240, 2.0, 24.0, True
        ),
        "tone": AudioInput(make_wav(root / "tone.wav", 2.0, freq=440.0, rate=RATE), 2.0),
        "quiet": AudioInput(_scaled_wav(root / "quiet.wav", 0.01), 3.0),
        "loud": AudioInput(_scaled_wav(root / "loud.wav", 0.95), 3.0),
        "beats": AudioInput(make_beats_wav(root / "beats.wav", 5.0, [1.45, 3.2]), 5.0),
        "voice": AudioInput(make_bursts_wav(root / "voice.wav", 5.0, 300.0, VOICE_SPANS), 5.0),
        "music": AudioInput(make_wav(root / "music.wav", 5.0, freq=2000.0, rate=RATE), 5.0),
        "groove": AudioInput(make_beats_wav(root / "groove.wav", 10.0, BPM_120), 10.0),
        "drums": AudioInput(make_beats_wav(root / "drums.wav", 5.0, BPM_120[:10]), 5.0),
    }  # fmt: skip


def _scaled_wav(path: Path, amplitude: float) -> Path:
    """A 3 s, 220 Hz tone with some harmonics, peaking at `amplitude`."""
    t = np.arange(3 * RATE) / RATE
    tone = np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 660 * t)
    return write_wav(path, (tone / np.abs(tone).max() * amplitude * 32767).astype("<i2"), RATE)


def render(refs: dict[str, Any], prompt: str, folder: Path, **changes: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return CompositorEngine().generate(_request(refs, prompt, **changes), LocalContext(folder)).path


def rms(samples: NDArray[np.float32], start: float, end: float) -> float:
    """RMS level of seconds `start` to `end`."""
    piece = samples[:, round(start * RATE) : round(end * RATE)]
    return float(np.sqrt(np.mean(piece.astype(np.float64) ** 2)))


def dominant_hz(samples: NDArray[np.float32], start: float, end: float) -> float:
    piece = samples[:, round(start * RATE) : round(end * RATE)].mean(axis=0)
    spectrum = np.abs(np.fft.rfft(piece * np.hanning(len(piece))))
    return float(np.argmax(spectrum) * RATE / len(piece))


def purity(samples: NDArray[np.float32], start: float, end: float) -> float:
    """The share of the energy within 5 Hz of the strongest frequency: 1 for a pure tone."""
    piece = samples[:, round(start * RATE) : round(end * RATE)].mean(axis=0)
    power = np.abs(np.fft.rfft(piece * np.hanning(len(piece)))) ** 2
    peak, width = int(np.argmax(power)), max(1, round(5 * len(piece) / RATE))
    return float(power[max(0, peak - width) : peak + width + 1].sum() / power.sum())


# --- loudness and onsets ------------------------------------------------------------------


def test_loudness_matches_bs1770_reference_levels() -> None:
    t = np.arange(5 * RATE) / RATE
    sine = (0.1 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    # A 997 Hz sine at -20 dBFS (peak) in both channels reads -20 LUFS; in one, 3 dB less.
    assert integrated_loudness(np.stack([sine, sine])) == pytest.approx(-20.0, abs=0.05)
    assert integrated_loudness(np.stack([sine, 0 * sine])) == pytest.approx(-23.0, abs=0.05)
    assert integrated_loudness(np.zeros((2, RATE), np.float32)) == -np.inf


def test_master_normalises_loudness_and_never_clips() -> None:
    t = np.arange(4 * RATE) / RATE
    square = (1.5 * np.sign(np.sin(2 * np.pi * 110 * t))).astype(np.float32)
    mastered = master(np.stack([square, square]))
    assert float(np.abs(mastered).max()) <= CEILING + 1e-6
    assert integrated_loudness(mastered) == pytest.approx(-16.0, abs=0.5)
    spiky = np.zeros((2, RATE), np.float32)
    spiky[:, RATE // 2] = 4.0
    limited = limit(spiky)
    assert float(np.abs(limited).max()) <= CEILING + 1e-6 and limited[0, RATE // 2] > 0.5


def test_onsets_are_found_where_the_hits_are(refs: dict[str, Any]) -> None:
    samples = decode_audio(refs["beats"].path)
    found = [seconds for seconds, _ in detect_onsets(samples)]
    assert found == pytest.approx([1.45, 3.2], abs=0.015)
    t = np.arange(3 * RATE) / RATE
    steady = np.stack([np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32) * 0.3
    assert [s for s, _ in detect_onsets(steady) if 0.2 < s < 2.8] == []


# --- rendered soundtracks -----------------------------------------------------------------


def test_clip_named_with_a_picture_starts_under_its_shot(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    prompt = "@Image1 walks in. @Image2 with @Audio1."
    board = build_storyboard(dataclasses.replace(_request(refs, prompt), audios=(refs["tone"],)))
    cut = board.shots[1].cut / FPS
    samples, rate = decoded_audio(render(refs, prompt, tmp_path, audios=(refs["tone"],)))
    assert rate == RATE and samples.shape[0] == 2
    assert rms(samples, 0.0, cut - 0.1) < 0.002, "silent before its shot"
    assert rms(samples, cut + 0.1, cut + 1.5) > 0.05, "heard under its shot"
    assert dominant_hz(samples, cut + 0.1, cut + 1.5) == pytest.approx(440, abs=3)


def test_background_music_loops_under_the_whole_video(refs: dict[str, Any], tmp_path: Path) -> None:
    path = render(
        refs, "@Image1, @Image2. @Audio1 as background music.", tmp_path, audios=(refs["tone"],)
    )
    samples, _ = decoded_audio(path)
    assert abs(samples.shape[1] / RATE - 5.0) <= 1 / FPS
    levels = [rms(samples, s, s + 0.25) for s in np.arange(0.25, 4.25, 0.25)]
    assert min(levels) > 0.5 * max(levels), "the 2 s clip loops with no gap"
    assert float(np.abs(samples).max()) <= 1.0


def test_quiet_and_loud_clips_come_out_equally_loud(refs: dict[str, Any], tmp_path: Path) -> None:
    levels = []
    for name in ("quiet", "loud"):
        path = render(refs, "@Image1 with @Audio1", tmp_path / name, audios=(refs[name],))
        samples, _ = decoded_audio(path)
        levels.append(rms(samples, 0.5, 2.5))
        assert float(np.abs(samples).max()) < 1.0
    assert levels[0] == pytest.approx(levels[1], rel=0.1)
    assert 0.1 < levels[0] < 0.3  # about -16 LUFS for this tone


def test_video_sound_plays_under_its_shot_and_the_score_elsewhere(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    prompt = "@Video1 dances. @Image1 at night."
    request = dataclasses.replace(
        _request(refs, prompt), videos=(refs["clip"],), images=refs["images"][:1]
    )
    board = build_storyboard(request)
    video, image = board.shots
    path = render(refs, prompt, tmp_path, videos=(refs["clip"],), images=refs["images"][:1])
    samples, _ = decoded_audio(path)
    # The clip's 330 Hz tone, the clip playing at its own speed in a shot of its length.
    assert video.clip_speed == 1.0 and video.length == 2 * FPS
    heard_until = video.end / FPS
    assert dominant_hz(samples, 0.3, heard_until - 0.3) == pytest.approx(330, abs=3)
    assert rms(samples, image.cut / FPS + 0.5, 4.5) > 0.02, "the score plays under the still"
    assert purity(samples, 0.3, heard_until - 0.3) > 0.8  # one tone: the clip's
    assert purity(samples, image.cut / FPS + 0.5, 4.5) < 0.5  # a chord: the score


def test_score_when_there_is_nothing_to_use_is_seeded(refs: dict[str, Any], tmp_path: Path) -> None:
    first, _ = decoded_audio(render(refs, "@Image1, @Image2", tmp_path / "a"))
    again, _ = decoded_audio(render(refs, "@Image1, @Image2", tmp_path / "b"))
    other, _ = decoded_audio(render(refs, "@Image1, @Image2", tmp_path / "c", seed=6))
    assert rms(first, 1.0, 4.0) > 0.05
    digest = [hashlib.sha256(s.tobytes()).hexdigest() for s in (first, again, other)]
    assert digest[0] == digest[1] != digest[2]


def test_rendered_cuts_land_on_the_music_onsets(refs: dict[str, Any], tmp_path: Path) -> None:
    path = render(
        refs,
        "@Image1, @Image2, @Image3. @Audio1 as background music.",
        tmp_path,
        images=refs["images"],
        audios=(refs["beats"],),
    )
    frames = [f.astype(np.int16) for f in decoded_frames(path)]
    jumps = np.array([np.abs(b - a).mean() for a, b in zip(frames, frames[1:], strict=False)])
    cuts = sorted(int(i) + 1 for i in np.argsort(jumps)[-2:])  # the frames that change most
    samples, _ = decoded_audio(path)
    heard = [s for s, _ in detect_onsets(samples)]
    assert cuts == [round(1.45 * FPS), round(3.2 * FPS)]
    for cut in cuts:
        assert min(abs(cut / FPS - onset) for onset in heard) < 1.5 / FPS


def test_music_ducks_under_narration(refs: dict[str, Any], tmp_path: Path) -> None:
    path = render(
        refs,
        "@Image1, @Image2. Narration: @Audio1. @Audio2 as background music.",
        tmp_path,
        audios=(refs["voice"], refs["music"]),
    )
    samples, _ = decoded_audio(path)
    speaking = [(start + 0.15, end - 0.05) for start, end in VOICE_SPANS]
    silent = [(0.1, 0.65), (2.3, 2.9)]  # after the release, before the next attack

    def level(band: tuple[float, float], spans: list[tuple[float, float]]) -> float:
        return min(band_level(samples, RATE, a, b, *band) for a, b in spans)

    def loudest(band: tuple[float, float], spans: list[tuple[float, float]]) -> float:
        return max(band_level(samples, RATE, a, b, *band) for a, b in spans)

    assert level(VOICE_BAND, speaking) > loudest(VOICE_BAND, silent) + 30, "the voice speaks"
    dip = level(MUSIC_BAND, silent) - loudest(MUSIC_BAND, speaking)
    assert dip >= 10.0, f"the music dips only {dip:.1f} dB under the voice"
    # The dip follows the voice: back up within 0.4 s of its end, down as it starts.
    assert band_level(samples, RATE, 2.2, 2.9, *MUSIC_BAND) > level(MUSIC_BAND, silent) - 1.0
    assert band_level(samples, RATE, 3.0, 3.1, *MUSIC_BAND) < level(MUSIC_BAND, silent) - 8.0


def test_shown_clip_keeps_its_sound_over_background_music(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    prompt = "@Video1 dances. @Image1 at night. @Audio1 as background music."
    changes: dict[str, Any] = {
        "videos": (refs["clip"],), "images": refs["images"][:1], "audios": (refs["music"],)
    }  # fmt: skip
    board = build_storyboard(dataclasses.replace(_request(refs, prompt), **changes))
    video, image = board.shots
    samples, _ = decoded_audio(render(refs, prompt, tmp_path, **changes))
    heard_until = video.end / FPS
    under_clip = (0.2, heard_until - 0.2)
    under_still = (image.cut / FPS + 0.5, 4.4)
    clip_level = band_level(samples, RATE, *under_clip, *CLIP_BAND)
    rise = clip_level - band_level(samples, RATE, *under_still, *CLIP_BAND)
    assert rise > 30, f"the clip's sound stands only {rise:.1f} dB above silence"
    assert clip_level > band_level(samples, RATE, *under_clip, *MUSIC_BAND), "above the music"
    dip = band_level(samples, RATE, *under_still, *MUSIC_BAND) - band_level(
        samples, RATE, *under_clip, *MUSIC_BAND
    )
    assert dip >= 10.0, f"the music dips only {dip:.1f} dB under the clip's sound"
    assert [(cue.label, cue.role) for cue in board.sound.cues] == [
        ("@Audio1", "background"),
        ("@Video1", "shot"),
    ]
    assert video.clip_speed == 1.0, "played as filmed"


def test_looped_music_stays_on_the_beat(refs: dict[str, Any]) -> None:
    # 10 s of hits at 120 BPM looped under 15 s: every hit after the seam keeps the grid.
    request = dataclasses.replace(
        _request(refs, "@Image1, @Image2. @Audio1 as background music."),
        duration=15,
        audios=(refs["groove"],),
    )
    bank = ReferenceBank(request)
    mix = mix_soundtrack(build_storyboard(request, bank), bank)
    onsets = [seconds for seconds, _ in detect_onsets(mix)]
    late = [t for t in onsets if t > 7.0]
    assert len(late) >= 14, late  # nothing lost at the seam
    drift = [t - (0.25 + 0.5 * round((t - 0.25) / 0.5)) for t in onsets]
    worst = max(drift, key=abs)
    assert abs(worst) <= 0.010, f"a hit lands {1000 * worst:+.0f} ms off the beat"


def test_limiter_holds_the_true_peak() -> None:
    # A quarter-rate sine sampled between its crests: samples at -3 dB, true peak at 0 dB.
    n = np.arange(RATE)
    crest = np.stack([np.sin(np.pi / 2 * n + np.pi / 4)] * 2).astype(np.float32)
    assert true_peak_dbtp(crest) > -0.1
    assert true_peak_dbtp(limit(crest)) <= -1.0


@pytest.mark.parametrize("preset", ["fast", "standard"])
def test_soundtrack_true_peak_stays_under_minus_one_dbtp(
    refs: dict[str, Any], tmp_path: Path, preset: Preset
) -> None:
    # Drum hits: sharp transients the limiter holds at its ceiling, which AAC's default
    # coder rebuilds with overshoot.
    request = dataclasses.replace(
        _request(refs, "@Image1, @Image2. @Audio1 as background music."),
        audios=(refs["drums"],),
        preset=preset,
    )
    bank = ReferenceBank(request)
    mixed = mix_soundtrack(build_storyboard(request, bank), bank)
    assert true_peak_dbtp(mixed) <= -1.0, "the mix, before AAC"
    path = render(refs, request.prompt, tmp_path, audios=request.audios, preset=preset)
    decoded, _ = decoded_audio(path)
    peak = true_peak_dbtp(decoded)
    assert peak <= -1.0, f"the file as a player decodes it peaks at {peak:.2f} dBTP"


def _hot(material: str, seconds: float = 3.0) -> NDArray[np.float32]:
    """Full-scale stereo material limited as hard as `master` limits: every peak at the
    limiter's ceiling, far louder than a mastered soundtrack (about -4 LUFS)."""
    t = np.arange(round(seconds * RATE)) / RATE
    if material == "noise":
        wave = np.random.default_rng(3).standard_normal((2, t.size)) * 0.5
    else:  # square-ish chords clipped at full scale, like brickwalled music
        chord = sum(
            level * np.sign(np.sin(2 * np.pi * hz * t + phase))
            for level, hz, phase in ((0.7, 110, 0), (0.5, 165, 1), (0.3, 440, 2))
        )
        wave = np.stack([chord, np.roll(chord, 11)])
    full = np.clip(wave, -1.0, 1.0).astype(np.float32)
    return limit(full, CEILING * 10 ** (-CODEC_HEADROOM_DB / 20))


@pytest.mark.parametrize("preset", ["fast", "standard"])
@pytest.mark.parametrize("material", ["noise", "clipped"])
def test_loud_material_stays_under_minus_one_dbtp_through_aac(
    tmp_path: Path, preset: Preset, material: str
) -> None:
    hot = _hot(material)
    held = limit_for_codec(hot, functools.partial(encode_aac, preset=preset))
    path = tmp_path / "hot.mp4"
    with Mp4Writer(path, 64, 64, preset=preset, audio=held) as writer:
        for _ in range(round(hot.shape[1] / SAMPLES_PER_FRAME)):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    decoded, _ = decoded_audio(path)
    peak = 20 * math.log10(true_peak(decoded))
    assert peak <= -1.0, f"the file as a player decodes it peaks at {peak:.2f} dBTP"
    # Turned down no more than the coder's overshoot asks (plus a little): as loud as the
    # hot track coded as it is, less what that went over by.
    alone = encode_aac(hot, preset).heard()
    overshoot = max(0.0, 20 * math.log10(true_peak(alone) / CEILING))
    assert integrated_loudness(decoded) >= integrated_loudness(alone) - overshoot - 0.5


def _request(refs: dict[str, Any], prompt: str, **changes: Any) -> EngineRequest:
    defaults = {"duration": 5, "generate_audio": True, "seed": 5, "images": refs["images"][:2]}
    return engine_request(prompt, **(defaults | changes))
