"""The compositor's light and look: colour grades, weather, and moves that end on the subject.

Every check renders a real MP4 at 480p, decodes it and measures the pixels against a render
of the same request without the words under test: a grade moves the frame's brightness,
balance and saturation the way its word says, weather adds what it should (streaks that
fall on a slant, flakes that drift down, fog that lifts the blacks), and a push-in ends
with the picture's subject in the middle of the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, ImageInput, LocalContext, VideoInput
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.motion import margin_at
from r2v.engines.compositor.shots import Plates, open_source
from r2v.engines.compositor.storyboard import build_storyboard
from r2v.engines.compositor.summary import summarize
from r2v.protocol import Storyboard as WireStoryboard
from tests.mediafiles import (
    decoded_frames,
    difference,
    engine_request,
    frame_hashes,
    make_video,
    pattern,
)

Frame = NDArray[np.uint8]
Floats = NDArray[np.float64]


def neutral_picture(width: int, height: int) -> Frame:
    """A softly coloured scene (a `pattern` mixed with a grey ramp): every grade shows on it,
    and no hue dominates before grading."""
    ramp = np.linspace(60, 200, width, dtype=np.float32)[None, :, None]
    grey = np.broadcast_to(ramp, (height, width, 3))
    mixed = 0.35 * pattern(width, height, seed=21).astype(np.float32) + 0.65 * grey
    return np.clip(mixed, 0, 255).astype(np.uint8)


def subject_picture(width: int, height: int) -> Frame:
    """One bright, finely detailed disc in the upper left, on a plain blue-grey ground."""
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = (70, 90, 110)
    detail = np.random.default_rng(1).integers(150, 256, (height, width, 3)).astype(np.uint8)
    disc = np.zeros((height, width), dtype=np.uint8)
    cv2.circle(disc, (width // 4, int(height * 0.3)), int(height * 0.16), 255, -1)
    picture[disc > 0] = detail[disc > 0]
    return picture


def product_picture(side: int) -> Frame:
    """A square studio shot: a plain red object, smooth, in the upper left of a soft grey
    gradient (nothing finely detailed anywhere)."""
    ramp = np.linspace(205, 170, side)[:, None, None] * np.ones((1, side, 3))
    picture = np.ascontiguousarray(ramp.astype(np.uint8))
    cv2.ellipse(picture, (side * 3 // 10, side * 3 // 10), (side // 6, side // 12), -15, 0, 360,
                (200, 30, 40), -1)  # fmt: skip
    return picture


def save(path: Path, picture: Frame) -> ImageInput:
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return ImageInput(path, picture.shape[1], picture.shape[0])


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("look")
    clip = make_video(root / "clip.mp4", 320, 180, seconds=2.0, audio=False, seed=22)
    return {
        "scene": save(root / "scene.png", neutral_picture(960, 540)),
        "other": save(root / "other.png", neutral_picture(960, 540)[:, ::-1]),
        "subject": save(root / "subject.png", subject_picture(960, 540)),
        "product": save(root / "product.png", product_picture(720)),
        "clip": VideoInput(clip, 320, 180, 2.0, 24.0, False),
    }


def request(refs: dict[str, Any], prompt: str, **changes: Any) -> EngineRequest:
    images = tuple(refs[name] for name in changes.pop("images", ("scene",)))
    videos = tuple(refs[name] for name in changes.pop("videos", ()))
    return engine_request(prompt, **({"seed": 3, "images": images, "videos": videos} | changes))


def render(req: EngineRequest, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return CompositorEngine().generate(req, LocalContext(folder)).path


def frames_of(refs: dict[str, Any], prompt: str, folder: Path, **changes: Any) -> list[Frame]:
    return decoded_frames(render(request(refs, prompt, **changes), folder))


def luma(frame: Frame) -> Floats:
    return frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def channels(frame: Frame) -> Floats:
    """Mean R, G, B."""
    return frame.reshape(-1, 3).mean(axis=0)  # type: ignore[no-any-return]


def saturation(frame: Frame) -> float:
    return float(cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)[..., 1].mean())


def variety(frame: Frame) -> float:
    """How much the colours differ from one another (the spread of Lab's a and b), whatever
    the cast they share."""
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    return float(np.hypot(lab[:, 1].std(), lab[:, 2].std()))


def mean_hue(frame: Frame) -> float:
    """The circular mean hue (degrees) of the frame's coloured pixels, weighted by saturation."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float64)
    angle, weight = hsv[:, 0] / 256 * 2 * np.pi, hsv[:, 1]
    return float(
        np.degrees(np.arctan2((weight * np.sin(angle)).sum(), (weight * np.cos(angle)).sum())) % 360
    )


# --- grades ----------------------------------------------------------------------------

Check = Callable[[Frame, Frame], None]


def night(graded: Frame, plain: Frame) -> None:
    red, _, blue = channels(graded)
    assert luma(graded).mean() < 0.65 * luma(plain).mean(), "dark"
    assert blue > red + 10, f"blue: {channels(graded)}"
    assert variety(graded) < 0.6 * variety(plain), "its colours crushed"


def black_and_white(graded: Frame, plain: Frame) -> None:
    spread = graded.max(axis=2).astype(int) - graded.min(axis=2)
    assert spread.max() < 3, f"truly grey: channels differ by up to {spread.max()}"
    assert luma(graded).std() > 0.8 * luma(plain).std(), "the picture is still there"


def golden_hour(graded: Frame, plain: Frame) -> None:
    red, _, blue = channels(graded)
    assert red > blue + 25, f"warm: {channels(graded)}"
    assert 15 <= mean_hue(graded) <= 50, f"orange: hue {mean_hue(graded):.0f}"
    assert luma(graded).mean() > luma(plain).mean(), "glowing, not darker"


def dawn(graded: Frame, plain: Frame) -> None:
    red, green, blue = channels(graded) - channels(plain)
    assert red > green + 8 and red > blue + 8, "pink-orange"
    assert luma(graded).std() < luma(plain).std(), "soft"


def dusk(graded: Frame, plain: Frame) -> None:
    red, green, blue = channels(graded) - channels(plain)
    assert red > blue > green + 5, "orange and magenta: red most, green least"
    assert luma(graded).mean() < luma(plain).mean(), "the light going"


def noon(graded: Frame, plain: Frame) -> None:
    assert luma(graded).mean() > luma(plain).mean(), "bright"
    assert luma(graded).std() > 1.15 * luma(plain).std(), "contrasty"


def morning(graded: Frame, plain: Frame) -> None:
    red, _, blue = channels(graded) - channels(plain)
    assert blue > red + 5, "slightly cool"
    assert luma(graded).mean() >= luma(plain).mean(), "fresh, not darker"


def vintage(graded: Frame, plain: Frame) -> None:
    dark, lifted = np.percentile(luma(plain), 1), np.percentile(luma(graded), 1)
    assert lifted > dark + 15, f"lifted blacks: {dark:.0f} -> {lifted:.0f}"
    assert saturation(graded) < 0.85 * saturation(plain), "faded"
    red, _, blue = channels(graded) - channels(plain)
    assert red > blue + 10, "a warm cast"


def neon(graded: Frame, plain: Frame) -> None:
    assert saturation(graded) > 1.3 * saturation(plain), "saturated"
    brightness = luma(plain)
    lights, shadows = (
        (brightness > np.percentile(brightness, 80)),
        (brightness < np.percentile(brightness, 20)),
    )
    red, green, blue = graded[lights].mean(axis=0) - plain[lights].mean(axis=0)
    assert red > green + 5 and blue > green + 20, f"magenta highlights: {red, green, blue}"
    red, green, blue = graded[shadows].mean(axis=0) - plain[shadows].mean(axis=0)
    assert blue > red + 20 and green > red, f"cyan shadows: {red, green, blue}"


def warm(graded: Frame, plain: Frame) -> None:
    red, _, blue = channels(graded) - channels(plain)
    assert red > 5 and blue < -10


def cold(graded: Frame, plain: Frame) -> None:
    red, _, blue = channels(graded) - channels(plain)
    assert blue > 5 and red < -10


GRADES: list[tuple[str, Check]] = [
    ("at night", night), ("夜晚", night), ("black and white", black_and_white),
    ("黑白", black_and_white), ("at golden hour", golden_hour), ("at dawn", dawn),
    ("at dusk", dusk), ("at noon", noon), ("on a fresh morning", morning),
    ("vintage film look", vintage), ("neon", neon), ("warm tones", warm),
    ("cold tones", cold),
]  # fmt: skip


@pytest.fixture(scope="module")
def plain(refs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[Frame]:
    """The ungraded render the graded ones are measured against."""
    return frames_of(refs, "@Image1，固定镜头", tmp_path_factory.mktemp("plain"))


@pytest.mark.parametrize(("words", "check"), GRADES, ids=[words for words, _ in GRADES])
def test_each_grade_changes_the_picture_as_its_word_says(
    refs: dict[str, Any], plain: list[Frame], tmp_path: Path, words: str, check: Check
) -> None:
    graded = frames_of(refs, f"@Image1，固定镜头，{words}", tmp_path)
    check(graded[48], plain[48])


def test_a_time_of_day_and_a_look_combine(
    refs: dict[str, Any], plain: list[Frame], tmp_path: Path
) -> None:
    graded = frames_of(refs, "A black and white night. @Image1, static camera.", tmp_path)[48]
    spread = graded.max(axis=2).astype(int) - graded.min(axis=2)
    assert spread.max() < 3, "grey"
    assert luma(graded).mean() < 0.65 * luma(plain[48]).mean(), "and dark as night"
    board = build_storyboard(request(refs, "A black and white night. @Image1, static camera."))
    assert board.shots[0].grade.name == "black_and_white night"


def test_a_video_shot_is_graded_too(refs: dict[str, Any], tmp_path: Path) -> None:
    graded = frames_of(refs, "@Video1 at night", tmp_path / "night", images=(), videos=("clip",))
    shown = frames_of(refs, "@Video1", tmp_path / "plain", images=(), videos=("clip",))
    night(graded[24], shown[24])


def test_a_clause_grades_only_its_own_shot(refs: dict[str, Any], tmp_path: Path) -> None:
    # Same word counts, so the same cuts and moves: only the grade differs.
    said = "Static camera. @Image1 at night. @Image2 at home."
    unsaid = "Static camera. @Image1 at rest. @Image2 at home."
    board = build_storyboard(request(refs, said, images=("scene", "other")))
    assert [shot.grade.name for shot in board.shots] == ["night", None]
    first, second = board.shots
    graded = frames_of(refs, said, tmp_path / "said", images=("scene", "other"))
    plain = frames_of(refs, unsaid, tmp_path / "unsaid", images=("scene", "other"))
    middle = (first.start + first.end) // 2
    night(graded[middle], plain[middle])
    later = range(second.start + second.fade_in + 2, second.end)
    assert max(difference(graded[n], plain[n]) for n in later) < 1.0, "the next shot is as shot"


def test_a_drawn_scene_keeps_its_own_light_but_takes_a_look(tmp_path: Path) -> None:
    lit = request({}, "A quiet night.", images=())
    board = build_storyboard(lit)
    assert board.shots[0].kind == "ambient" and board.shots[0].grade.name == "night"
    drawn = open_source(board.shots[0], lit, board, Plates(lit, board)).frame(30)
    rendered = decoded_frames(render(lit, tmp_path / "lit"))[30]
    assert difference(rendered, drawn) < 2, "the time of day is not graded over a drawn scene"
    grey = decoded_frames(render(request({}, "A quiet night, black and white.", images=()),
                                 tmp_path / "grey"))[30]  # fmt: skip
    spread = grey.max(axis=2).astype(int) - grey.min(axis=2)
    assert spread.max() < 3, "a look is"


def test_the_storyboard_reports_grade_and_weather_on_the_wire(refs: dict[str, Any]) -> None:
    req = request(refs, "Black and white. @Image1 at night in the rain. @Image2, 大雾。",
                  images=("scene", "other"))  # fmt: skip
    board = WireStoryboard.model_validate_json(summarize(req, build_storyboard(req)).to_json())
    assert [(s.grade, s.weather) for s in board.shots] == [
        ("black_and_white night", "rain"),
        ("black_and_white", "fog"),
    ]


# --- weather ---------------------------------------------------------------------------

WEATHER = {"rain": "in the rain", "snow": "snow falling", "fog": "in thick fog"}


@pytest.fixture(scope="module")
def weather(
    refs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, list[Frame]]]:
    """Each kind of weather over the still picture: the file and its frames."""
    made: dict[str, tuple[Path, list[Frame]]] = {}
    for kind, words in WEATHER.items():
        path = render(request(refs, f"@Image1，固定镜头，{words}"), tmp_path_factory.mktemp(kind))
        made[kind] = (path, decoded_frames(path))
    return made


def brighter(frame: Frame, plain: Frame, by: int) -> NDArray[np.bool_]:
    """Where `frame` is brighter than `plain` by more than `by` (of 255)."""
    return bool_mask(luma(frame) - luma(plain) > by)


def bool_mask(values: NDArray[np.bool_]) -> NDArray[np.bool_]:
    return np.asarray(values, dtype=bool)


def shapes(mask: NDArray[np.bool_], least: int) -> list[tuple[int, float, float]]:
    """The mask's blobs of `least` pixels or more: (area, elongation, slant), where the
    slant is the long axis's sideways step per step down."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    found: list[tuple[int, float, float]] = []
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < least:
            continue
        ys, xs = np.nonzero(labels == label)
        cov = np.cov(np.stack([xs, ys]).astype(np.float64))
        low, high = np.linalg.eigvalsh(cov)
        found.append((len(xs), float(np.sqrt(high / max(low, 0.05))), cov[0, 1] / cov[1, 1]))
    return found


def fall(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> tuple[float, float]:
    """How far the pattern of `a` moved to become `b` (pixels; right and down positive)."""
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32))
    return float(dx), float(dy)


def test_rain_falls_in_thin_bright_slanted_streaks(
    weather: dict[str, tuple[Path, list[Frame]]], plain: list[Frame]
) -> None:
    _, frames = weather["rain"]
    streaks = [brighter(frames[n], plain[n], 20) for n in (40, 41)]
    found = shapes(streaks[0], least=12)
    assert len(found) > 25, f"{len(found)} streaks"
    elongation = float(np.median([e for _, e, _ in found]))
    slant = float(np.median([s for _, _, s in found]))
    assert elongation > 4, f"thin streaks: {elongation:.1f} times longer than wide"
    assert 0.1 < abs(slant) < 0.45, f"slanted: {slant:.2f} sideways per step down"
    dx, dy = fall(*streaks)
    assert dy > 8, f"falling fast: {dy:.1f} px a frame"
    assert dx * slant > 0, "along their slant"
    assert luma(frames[40]).mean() < luma(plain[40]).mean(), "under a grey sky"


def test_snow_drifts_down_in_flakes_of_many_sizes(
    weather: dict[str, tuple[Path, list[Frame]]], plain: list[Frame]
) -> None:
    _, frames = weather["snow"]
    flakes = [brighter(frames[n], plain[n], 30) for n in (40, 44)]
    found = shapes(flakes[0], least=2)
    assert len(found) > 40, f"{len(found)} flakes"
    areas = [area for area, _, _ in found]
    assert np.percentile(areas, 90) >= 2.5 * np.percentile(areas, 10), f"sizes: {sorted(areas)}"
    assert np.median([e for _, e, _ in found]) < 2.0, "round flakes, not streaks"
    _, dy = fall(*flakes)
    assert 1 < dy < 30, f"drifting down: {dy:.1f} px in four frames"


def test_fog_lowers_contrast_and_lifts_blacks_and_drifts(
    weather: dict[str, tuple[Path, list[Frame]]], plain: list[Frame]
) -> None:
    _, frames = weather["fog"]
    foggy, clear = luma(frames[40]), luma(plain[40])
    assert foggy.std() < 0.75 * clear.std(), f"contrast {clear.std():.0f} -> {foggy.std():.0f}"
    dark, lifted = np.percentile(clear, 1), np.percentile(foggy, 1)
    assert lifted > dark + 30, f"blacks {dark:.0f} -> {lifted:.0f}"
    still = difference(plain[20], plain[80])  # the encoder's noise alone
    assert difference(frames[20], frames[80]) > still + 1.0, "the fog drifts"


@pytest.mark.parametrize("kind", list(WEATHER))
def test_weather_is_seeded(
    refs: dict[str, Any], weather: dict[str, tuple[Path, list[Frame]]], tmp_path: Path, kind: str
) -> None:
    path, _ = weather[kind]
    prompt = f"@Image1，固定镜头，{WEATHER[kind]}"
    again = render(request(refs, prompt), tmp_path / "again")
    assert again.read_bytes() == path.read_bytes(), "the same seed, the same bytes"
    other = render(request(refs, prompt, seed=4), tmp_path / "other")
    assert frame_hashes(other)[1:] != frame_hashes(path)[1:]
    differing = sum(a != b for a, b in zip(frame_hashes(other), frame_hashes(path), strict=True))
    assert differing > 90, f"another seed, other weather: {differing} frames differ"


def test_weather_falls_on_drawn_scenes_too(tmp_path: Path) -> None:
    def frame(prompt: str, folder: str) -> Frame:
        return decoded_frames(render(request({}, prompt, images=()), tmp_path / folder))[40]

    assert build_storyboard(request({}, "Rain over the sea.", images=())).shots[0].weather == "rain"
    streaks = shapes(
        brighter(frame("Rain over the sea.", "rain"), frame("Over the sea.", "dry"), 20), 12
    )
    assert len(streaks) > 25, f"{len(streaks)} streaks over the drawn sea"
    assert float(np.median([e for _, e, _ in streaks])) > 4, "thin streaks, not blotches"


# --- framing on the subject --------------------------------------------------------------


def subject_in(frame: Frame) -> NDArray[np.bool_]:
    """The bright disc's pixels (the ground is about 90 in luma, the disc 150-255)."""
    return bool_mask(cv2.medianBlur(frame, 5) @ np.array([0.299, 0.587, 0.114]) > 135)


def centre_of(mask: NDArray[np.bool_]) -> tuple[float, float]:
    """The mask's centroid, as a share of the frame's width and height."""
    ys, xs = np.nonzero(mask)
    return float(xs.mean() / mask.shape[1]), float(ys.mean() / mask.shape[0])


def test_a_push_in_ends_on_the_picture_s_subject(refs: dict[str, Any], tmp_path: Path) -> None:
    prompt = "@Image1, slowly push in"
    frames = frames_of(refs, prompt, tmp_path, images=("subject",))
    height, width = frames[-1].shape[:2]
    x, y = centre_of(subject_in(frames[-1]))
    assert abs(x - 0.5) < 0.06 and abs(y - 0.5) < 0.06, f"the subject ends at ({x:.2f}, {y:.2f})"
    middle = subject_in(frames[-1])[height // 2 - 10 : height // 2 + 10, width // 2 - 10 :][:, :20]
    assert middle.mean() > 0.9, "the frame's centre is on the subject"
    (shot,) = build_storyboard(request(refs, prompt, images=("subject",))).shots
    assert shot.motion is not None
    pushed = shot.motion.end.zoom / shot.motion.start.zoom
    assert 1.08 < pushed < 1.12, f"still slowly: {pushed:.3f}x across the shot"


def test_a_padded_picture_s_subject_is_found_inside_its_box(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    # A square picture in a 16:9 frame is padded with a blurred backdrop, whose edges must
    # not be taken for the subject: the push-in still ends on the red object.
    frames = frames_of(refs, "@Image1, slowly push in", tmp_path, images=("product",))
    red = frames[-1][..., 0].astype(int) - frames[-1][..., 1].astype(int) > 100
    x, y = centre_of(bool_mask(red))
    assert abs(x - 0.5) < 0.08 and abs(y - 0.5) < 0.1, f"the subject ends at ({x:.2f}, {y:.2f})"


def test_a_side_the_prompt_names_wins_over_the_subject(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    frames = frames_of(refs, "@Image1, push in on the right", tmp_path, images=("subject",))
    first, last = subject_in(frames[0]), subject_in(frames[-1])
    assert centre_of(first)[0] < 0.3
    assert not last.any() or centre_of(last)[0] < centre_of(first)[0], "the view went right"
    height, width = last.shape
    assert not last[height // 2 - 10 : height // 2 + 10, width // 2 - 10 : width // 2 + 10].any()
    (shot,) = build_storyboard(
        request(refs, "@Image1, push in on the right", images=("subject",))
    ).shots
    assert shot.motion is not None
    assert shot.motion.end.x == pytest.approx(margin_at(shot.motion.end.zoom)), "right over"


def test_a_pan_ends_as_near_the_subject_as_its_direction_allows(refs: dict[str, Any]) -> None:
    (shot,) = build_storyboard(
        request(refs, "@Image1, the camera pans left", images=("subject",))
    ).shots
    assert shot.motion is not None and shot.motion.kind == "pan_left"
    start, end = shot.motion.start, shot.motion.end
    assert end.x < start.x and abs(end.x - -0.25) < 0.02, "ends on the subject's column"
    assert abs(end.y - -0.2) < 0.03, "and its row"


def test_a_pinned_frame_stays_the_picture_itself_and_the_finish_eases_in(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    # A pinned first (last) frame may be where the previous (next) clip of a sequence ends
    # (begins): the grade and the weather fade in after it (out before it) instead.
    frames = frames_of(
        refs, "@Image1 as the first frame, at night in the rain. @Image1 as the last frame.",
        tmp_path, images=("scene",),
    )  # fmt: skip
    plain = frames_of(refs, "@Image1 as the first and last frame", tmp_path / "plain",
                      images=("scene",))  # fmt: skip
    assert difference(frames[0], plain[0]) < 1.5, "the first frame is the picture"
    assert difference(frames[-1], plain[-1]) < 1.5, "the last frame is the picture"
    darker = [luma(plain[n]).mean() - luma(frames[n]).mean() for n in (0, 6, 12, 24, 48)]
    assert darker[0] < 1 < darker[1] < darker[2] < darker[3], f"eased in: {darker}"
    assert darker[3] == pytest.approx(darker[4], abs=3), "then the whole night grade"
