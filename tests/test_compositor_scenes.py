"""Scenes drawn from the words: real renders of prompts without references, decoded and
measured for what their words name (a sea at dawn is pink above and blue, streaked water
below; a city has upright edges; space is black with stars)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, LocalContext, RenderSummary
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.ambient import AmbientRenderer, make_scene
from r2v.engines.compositor.summary import summarize
from tests.mediafiles import decoded_frames, engine_request, frame_hashes

Frame = NDArray[np.uint8]


def render(req: EngineRequest, workspace: Path) -> tuple[Path, RenderSummary]:
    workspace.mkdir(parents=True, exist_ok=True)
    result = CompositorEngine().generate(req, LocalContext(workspace))
    assert result.summary is not None
    return result.path, result.summary


def middle_frame(path: Path) -> Frame:
    frames = decoded_frames(path, every=24)
    return frames[len(frames) // 2]


def luma(frame: Frame) -> NDArray[np.float64]:
    return frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def channel_means(region: Frame) -> tuple[float, float, float]:
    r, g, b = (float(region[..., c].mean()) for c in range(3))
    return r, g, b


def mean_hue(region: Frame) -> float:
    """The circular mean hue (degrees) of a region, each pixel weighted by its saturation."""
    hsv = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2HSV).astype(np.float64)
    angle = np.deg2rad(hsv[..., 0] * 2.0)
    weight = hsv[..., 1] / 255.0
    x, y = float((np.cos(angle) * weight).sum()), float((np.sin(angle) * weight).sum())
    return float(np.rad2deg(np.arctan2(y, x)) % 360.0)


def points(region: Frame, above: float = 30.0) -> int:
    """Small bright points: spots brighter than their neighbourhood, counted once each."""
    light = luma(region).astype(np.float32)
    spots = (light - cv2.blur(light, (9, 9)) > above).astype(np.uint8)
    count, _ = cv2.connectedComponents(spots)
    return count - 1


def edges(region: Frame) -> tuple[float, float]:
    """The energy of vertical edges (changes along x) and of horizontal ones (along y)."""
    light = luma(region)
    return float(np.abs(np.diff(light, axis=1)).mean()), float(
        np.abs(np.diff(light, axis=0)).mean()
    )


def horizon_step(frame: Frame) -> float:
    """How sharply the rows darken downward anywhere between 40% and 80% of the height:
    large where a bright sky meets the land, small in a smooth gradient."""
    rows = luma(frame).mean(axis=1)
    height = frame.shape[0]
    return max(
        float(rows[y - 4] - rows[y + 4]) for y in range(int(0.4 * height), int(0.8 * height))
    )


def shows(summary: RenderSummary) -> list[str]:
    return [shot.shows for shot in summary.shots]


def test_a_calm_sea_at_dawn(tmp_path: Path) -> None:
    path, summary = render(engine_request("a calm sea at dawn"), tmp_path / "a")
    assert shows(summary) == ["the words: a sea at dawn"]
    frame = middle_frame(path)
    height = frame.shape[0]
    sky, water = frame[: height // 3], frame[-height // 3 :]
    hue = mean_hue(sky)
    assert hue >= 300 or hue <= 50, f"the dawn sky's hue is {hue:.0f} degrees, not pink or orange"
    upper, lower = luma(sky[: height // 6]).mean(), luma(sky[height // 6 :]).mean()
    assert lower > upper + 5, "a dawn sky brightens toward the horizon"
    r, g, b = channel_means(water)
    assert b > r and b > g, f"the water is not blue: {(r, g, b)}"
    light = luma(water)
    along_rows, along_columns = light.var(axis=1).mean(), light.var(axis=0).mean()
    assert along_rows < 0.4 * along_columns, "water is streaked along the horizon"
    across, down = edges(water)
    assert down > across, "water's edges lie along the horizon"

    again = render(engine_request("a calm sea at dawn"), tmp_path / "b")[0]
    assert again.read_bytes() == path.read_bytes()


def test_the_water_moves_under_a_still_camera(tmp_path: Path) -> None:
    path, summary = render(engine_request("a calm sea at dawn, static camera"), tmp_path)
    assert [shot.camera for shot in summary.shots] == ["static"]
    frames = [f.astype(np.int16) for f in decoded_frames(path)[40:44]]
    height = frames[0].shape[0]
    # The horizon sits a little below the middle: the top fifth is sky, the bottom fifth water.
    sky = [f[: height // 5] for f in frames]
    water = [f[-height // 5 :] for f in frames]
    sky_steps = [np.abs(b - a).mean() for a, b in zip(sky, sky[1:], strict=False)]
    water_steps = [np.abs(b - a).mean() for a, b in zip(water, water[1:], strict=False)]
    assert min(water_steps) > 1.0, "waves roll every frame"
    assert max(sky_steps) < min(water_steps) / 2, "the sky holds nearly still"


def test_mountains_at_night(tmp_path: Path) -> None:
    path, summary = render(engine_request("mountains at night"), tmp_path)
    assert shows(summary) == ["the words: mountains at night"]
    frame = middle_frame(path)
    height = frame.shape[0]
    sky = frame[: height // 4]
    r, g, b = channel_means(sky)
    assert b > r and b > g and luma(sky).mean() < 60, f"not a dark blue sky: {(r, g, b)}"
    assert points(sky) >= 25, "the night sky has stars"
    # The ridge: each column's darkest step down from the sky, in the lower two thirds.
    light = cv2.GaussianBlur(luma(frame), (0, 0), 1.5)
    lower = light[height // 3 : height - 24]
    ridge = np.argmin(np.diff(lower, axis=0), axis=0) + height // 3
    below = np.array([light[y + 4 : y + 24, x].mean() for x, y in enumerate(ridge)])
    above = np.array([light[max(0, y - 24) : y - 3, x].mean() for x, y in enumerate(ridge)])
    assert float((below < above).mean()) > 0.9, "the land is darker than the sky above it"
    assert np.ptp(ridge) > height / 10, "the ridge rises and falls"
    assert np.abs(np.diff(ridge)).mean() > 0.3, "the ridge is jagged, not one smooth curve"
    assert luma(frame[-height // 5 :]).mean() < above.mean(), "the foot of the land is dark"


def test_a_city_skyline_at_dusk(tmp_path: Path) -> None:
    path, summary = render(engine_request("a city skyline at dusk"), tmp_path)
    assert shows(summary) == ["the words: a city skyline at dusk"]
    frame = middle_frame(path)
    height = frame.shape[0]
    across, down = edges(frame[height // 2 :])
    assert across > 1.3 * down, f"buildings stand upright: {across:.2f} vs {down:.2f}"
    top = channel_means(frame[: height // 6])
    r, _, b = channel_means(frame[height // 3 : height // 2])
    assert r > b and top[2] > top[0], "dusk: deep blue above, warm toward the horizon"


def test_a_forest_in_the_morning(tmp_path: Path) -> None:
    path, summary = render(engine_request("a forest in the morning"), tmp_path)
    assert shows(summary) == ["the words: a forest in the morning"]
    frame = middle_frame(path)
    height = frame.shape[0]
    r, g, b = channel_means(frame[-height // 3 :])
    assert g > r and g > b, f"the trees are not green: {(r, g, b)}"
    r, g, b = channel_means(frame[: height // 6])
    assert b > r and luma(frame[: height // 6]).mean() > 100, "a bright blue morning sky"


def test_a_desert_at_noon(tmp_path: Path) -> None:
    path, summary = render(engine_request("desert at noon"), tmp_path)
    assert shows(summary) == ["the words: a desert at noon"]
    frame = middle_frame(path)
    height = frame.shape[0]
    r, g, b = channel_means(frame[-height // 3 :])
    assert r > g > b and luma(frame[-height // 3 :]).mean() > 90, "bright warm sand"
    r, g, b = channel_means(frame[: height // 6])
    assert b > g > r, f"a blue noon sky: {(r, g, b)}"
    light = cv2.GaussianBlur(luma(frame), (0, 0), 5)
    assert np.unravel_index(np.argmax(light), light.shape)[0] < height // 3, "the sun is high"


def test_outer_space(tmp_path: Path) -> None:
    path, summary = render(engine_request("outer space"), tmp_path)
    assert shows(summary) == ["the words: outer space"]
    frame = middle_frame(path)
    light = luma(frame)
    assert np.median(light) < 40, "space is mostly dark"
    assert points(frame) >= 60, "and full of stars"
    bands = [
        light[i * light.shape[0] // 4 : (i + 1) * light.shape[0] // 4].mean() for i in range(4)
    ]
    assert np.ptp(bands) < 25 and horizon_step(frame) < 10, "no horizon"


def test_a_field_at_golden_hour(tmp_path: Path) -> None:
    path, summary = render(engine_request("a field at golden hour"), tmp_path)
    assert shows(summary) == ["the words: a field at golden hour"]
    frame = middle_frame(path)
    height = frame.shape[0]
    r, g, b = channel_means(frame[-height // 3 :])
    assert r > b and g > b, f"a warm green-gold field: {(r, g, b)}"
    assert horizon_step(frame) > 30, "the glowing sky meets the darker land at a horizon"
    hue = mean_hue(frame[height // 4 : height // 2])
    assert 15 <= hue <= 60, f"golden light toward the horizon, not {hue:.0f} degrees"


def test_chinese_words_draw_the_same_places(tmp_path: Path) -> None:
    path, summary = render(engine_request("黄昏的海边"), tmp_path / "sea")
    assert shows(summary) == ["the words: a sea at dusk"]
    frame = middle_frame(path)
    height = frame.shape[0]
    light = luma(frame[-height // 4 :])
    assert light.var(axis=1).mean() < 0.5 * light.var(axis=0).mean(), "streaked water"
    top, glow = channel_means(frame[: height // 8]), channel_means(frame[height // 3 : height // 2])
    assert top[2] > top[0] and glow[0] > glow[2], "dusk: indigo above, warm at the horizon"

    path, summary = render(engine_request("夜晚的城市"), tmp_path / "city")
    assert shows(summary) == ["the words: a city skyline at night"]
    frame = middle_frame(path)
    assert luma(frame[: height // 6]).mean() < 50, "a night sky"
    lower = frame[height // 2 :]
    assert points(lower, above=40) >= 20, "lit windows"
    across, down = edges(lower)
    assert across > 1.3 * down


def test_unknown_words_draw_the_abstract_scene(tmp_path: Path) -> None:
    req = engine_request("the feeling of a memory")
    path, summary = render(req, tmp_path)
    assert shows(summary) == ["the words: an abstract scene"]
    assert [shot.camera for shot in summary.shots] == ["static"]
    assert summary.warnings == (
        "no reference was given: the scene is drawn from the words",
        "no place that can be drawn was named (a sea, mountains, a city, a forest, a desert, "
        "a snowfield, space, a field): an abstract scene was drawn in its stead",
    )
    frames = decoded_frames(path, every=48)
    renderer = AmbientRenderer(
        make_scene(req.prompt, req.seed, 0), (864, 496), flags=cv2.INTER_LINEAR
    )
    for index, frame in zip((0, 48), frames, strict=True):
        drawn = renderer.frame(index / 24)
        assert np.abs(frame.astype(int) - drawn.astype(int)).mean() < 3


def test_seeds_give_different_scenes(tmp_path: Path) -> None:
    prompt = "mountains at dawn"
    one = render(engine_request(prompt), tmp_path / "a")[0]
    other = render(engine_request(prompt, seed=8), tmp_path / "b")[0]
    assert not set(frame_hashes(one)) & set(frame_hashes(other))
    a, b = middle_frame(one).astype(int), middle_frame(other).astype(int)
    assert np.abs(a - b).mean() > 8, "another seed draws other ridges, not the same ones moved"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("A calm sea at dawn. Mountains at night.", ["a sea at dawn", "mountains at night"]),
        ("雪原的早晨。夜晚的城市。", ["a snowfield in the morning", "a city skyline at night"]),
        # A sentence that names no place or time takes the prompt's.
        ("A sea at dawn. The sun climbs.", ["a sea at dawn", "a sea at dawn"]),
        ("Mountains. Night falls.", ["mountains at night", "mountains at night"]),
    ],
)
def test_each_sentence_draws_its_own_scene(prompt: str, expected: list[str]) -> None:
    req = engine_request(prompt, duration=6)
    summary = summarize(req, CompositorEngine().plan(req))
    assert shows(summary) == [f"the words: {scene}" for scene in expected]
    assert [shot.words for shot in summary.shots] == [
        s.strip() for s in prompt.replace("。", ".").split(".") if s.strip()
    ]


def test_a_drawn_scene_moves_its_camera_as_the_words_say() -> None:
    def cameras(prompt: str, seed: int = 7) -> list[str]:
        req = engine_request(prompt, seed=seed)
        return [shot.camera for shot in summarize(req, CompositorEngine().plan(req)).shots]

    assert cameras("a forest at dusk, the camera pans left") == ["pan_left"]
    assert cameras("城市的夜晚，固定镜头") == ["static"]
    seeded = {camera for seed in range(8) for camera in cameras("a desert at dusk", seed)}
    assert seeded == {"pan_left", "pan_right"}, "unasked, a drawn scene pans slowly across"
    assert cameras("mountains at dawn, slowly push in") == ["push_in"]


def test_neon_lights_a_city_at_night_and_weather_hides_the_sun(tmp_path: Path) -> None:
    path, summary = render(engine_request("A neon city skyline."), tmp_path / "neon")
    assert summary.shots[0].shows == "the words: a city skyline at night"
    assert luma(middle_frame(path)[: middle_frame(path).shape[0] // 3]).mean() < 60, "a dark sky"

    def brightest_in_sky(prompt: str, folder: str) -> float:
        frame = middle_frame(render(engine_request(prompt), tmp_path / folder)[0])
        return float(np.percentile(luma(frame[: frame.shape[0] // 2]), 99.9))

    sunny, rainy = (
        brightest_in_sky("A sea at noon.", "sun"),
        brightest_in_sky("A sea at noon in the rain.", "rain"),
    )
    assert sunny > 245, f"the noon sun is drawn ({sunny:.0f})"
    assert rainy < sunny - 25, f"behind the rain clouds it is not ({rainy:.0f})"
