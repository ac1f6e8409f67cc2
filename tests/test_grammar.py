"""One prompt grammar: validation, the compositor, the diffusers engine and the upstream
gateway find the same mentions and the same first/last-frame pins in a prompt, and every
engine follows the same picture for `adaptive`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient

from r2v.engines.base import (
    AudioInput,
    EngineRequest,
    ImageInput,
    LocalContext,
    VideoInput,
    output_size,
    resolve_aspect_ratio,
)
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.casting import cast
from r2v.engines.compositor.prompt import read_prompt
from r2v.engines.diffusers.prompt import Pins, find_pins, rewrite_prompt
from r2v.engines.upstream import rewrite_mentions
from r2v.errors import InvalidRequest
from r2v.grammar import KINDS, MENTION, find_mentions
from r2v.media.probe import probe
from r2v.protocol import CreateVideoRequest, FixedAspectRatio
from r2v.settings import Settings
from r2v.tasks.service import check_cross_field_rules
from tests import mediafiles
from tests.conftest import make_settings
from tests.mediafiles import decoded_frames, difference, make_image, make_video
from tests.refserver import RefServer

ROOT = Path(__file__).resolve().parent.parent
FAST = "seedance-2.0-fast-reference-to-video"
IMG = "https://example.com/a.jpg"
SPELLINGS = "@照片1 then @ Image2 and @图像1"
COUNTS = {"image": 3, "video": 1, "audio": 1}
"""The references every corpus prompt is read with."""


@pytest.fixture
def settings(tmp_path: Path, refserver: RefServer) -> Settings:
    return make_settings(tmp_path / "data", refserver, workers=0)


def test_every_spelling_is_a_mention_to_validation_and_to_the_compositor(
    api: TestClient, auth: dict[str, str]
) -> None:
    def create(images: int) -> tuple[int, dict[str, str]]:
        payload = {"model": FAST, "prompt": SPELLINGS, "image_urls": [IMG] * images}
        response = api.post("/v1/videos/generations", json=payload, headers=auth)
        return response.status_code, response.json().get("error", {})

    assert create(3)[0] == 200
    status, error = create(1)
    assert status == 400
    assert error["param"] == "prompt"
    assert "@Image2" in error["message"] and "1 image reference" in error["message"]
    beats = read_prompt(SPELLINGS, images=3, videos=0, audios=0).beats
    assert [beat.label for beat in beats] == ["@Image1", "@Image2", "@Image1"]


class Case(NamedTuple):
    prompt: str
    mentions: str
    """Every mention, canonically spelled, in the order written."""
    beats: str
    """The pictures the compositor features, in order (camera references are not shown)."""
    first: int | None
    """The image (1-based) pinned as the first frame."""
    last: int | None


CORPUS = [
    Case("@Image1 as the first frame, @Image2 as the last frame", "@Image1 @Image2", "", 1, 2),
    Case("the last frame is @Image2, the first frame is @Image3", "@Image2 @Image3", "", 3, 2),
    Case("以@Image1开头，@图片2作为尾帧", "@Image1 @Image2", "", 1, 2),
    Case("A dog runs, @图片2作为尾帧", "@Image2", "", None, 2),
    Case("starts with @Image1 and ends with @Image3", "@Image1 @Image3", "", 1, 3),
    Case("@Image3 as the first and last frame", "@Image3", "", 3, 3),
    Case("@image 2 walks in the rain, it becomes the first frame", "@Image2", "", 2, None),
    Case("首帧为@图像3，尾帧为@照片1", "@Image3 @Image1", "", 3, 1),
    Case("@ Image1 then @IMAGE2 and @Image 3 dance", "@Image1 @Image2 @Image3", "", None, None),
    Case("First frame: @Image2. Last frame: @Image1.", "@Image2 @Image1", "", 2, 1),
    Case("@Video1 dances, @Audio1 plays throughout", "@Video1 @Audio1", "@Video1", None, None),
    Case("@图片1 和 @图片2 一起跳舞，最后一帧是@图片3", "@Image1 @Image2 @Image3", "", None, 3),
    Case("Open on @Image2, then @Image1, end on @Image3", "@Image2 @Image1 @Image3", "", 2, 3),
    Case("@Image1作为首帧和尾帧", "@Image1", "", 1, 1),
    Case("The camera pushes in on @Image2 slowly", "@Image2", "", None, None),
    Case("@照片3 是起始帧，@Image1 is the final frame", "@Image3 @Image1", "", 3, 1),
    Case("Begin with @image1, finish with @image2", "@Image1 @Image2", "", 1, 2),
    Case("A city at night, rain on the windows", "", "", None, None),
    Case("@Image2 as the opening frame, with the camera of @Video1", "@Image2 @Video1",
         "@Image2", 2, None),
    Case("@Image1 as the last frame, then @Image2 as the first frame", "@Image1 @Image2", "", 2, 1),
    Case("开头是@图片3，结尾是@Image1", "@Image3 @Image1", "", 3, 1),
    Case("@IMAGE1 and @image 2 meet; 以@图片2结尾", "@Image1 @Image2 @Image2", "@Image1 @Image2",
         None, 2),
    Case("@Image2 作为首帧，@Video1 跳舞，@Image2 作为尾帧", "@Image2 @Video1 @Image2", "", 2, 2),
]  # fmt: skip
"""An empty `beats` means the pictures are the mentions themselves."""


def engine_request(prompt: str, **changes: Any) -> EngineRequest:
    """A request with `COUNTS` references; nothing here opens their files."""
    refs = {
        "images": tuple(ImageInput(Path(f"/nowhere/{n}.jpg"), 640, 480) for n in range(3)),
        "videos": (VideoInput(Path("/nowhere/v.mp4"), 320, 240, 3.0, 24.0, True),),
        "audios": (AudioInput(Path("/nowhere/a.wav"), 3.0),),
    }
    return mediafiles.engine_request(prompt, **(refs | changes))


def validate(prompt: str, **counts: int) -> str | None:
    """What validation says of the prompt: None if accepted, else its refusal."""
    have = COUNTS | counts
    wire = CreateVideoRequest(
        model=FAST,
        prompt=prompt,
        image_urls=[IMG] * have["image"],
        video_urls=["https://example.com/v.mp4"] * have["video"],
        audio_urls=["https://example.com/a.mp3"] * have["audio"],
    )
    try:
        check_cross_field_rules(wire)
    except InvalidRequest as refusal:
        assert refusal.param == "prompt"
        return str(refusal)
    return None


def label(image: int | None) -> str | None:
    return None if image is None else f"@Image{image}"


@pytest.mark.parametrize("case", CORPUS, ids=[case.prompt for case in CORPUS])
def test_validation_the_compositor_and_the_diffusers_engine_read_a_prompt_alike(
    case: Case,
) -> None:
    expected = case.mentions.split()
    assert [m.text for m in find_mentions(case.prompt)] == expected
    # Validation: accepted with every reference; one too few of a kind, and it names the
    # first mention of the highest number of that kind, however the prompt spells it.
    assert validate(case.prompt) is None
    for kind in COUNTS:
        numbers = [int(text[6:]) for text in expected if text.startswith(f"@{kind.title()}")]
        if numbers:
            refusal = validate(case.prompt, **{kind: max(numbers) - 1})
            assert refusal is not None and f"mentions @{kind.title()}{max(numbers)} " in refusal
    # The compositor: the pictures it features, and the shots that open and close.
    reading = read_prompt(case.prompt, **{f"{kind}s": n for kind, n in COUNTS.items()})
    pictures = case.beats or " ".join(m for m in expected if not m.startswith("@Audio"))
    assert " ".join(beat.label for beat in reading.beats) == pictures
    shots = cast(engine_request(case.prompt), reading)
    opener = next((shot.label for shot in shots if "first" in shot.pins), None)
    closer = next((shot.label for shot in reversed(shots) if "last" in shot.pins), None)
    assert (opener, closer) == (label(case.first), label(case.last))
    # The diffusers engine: the same pins, and every mention in words the encoder knows.
    index = {None: None} | {n: n - 1 for n in (1, 2, 3)}
    assert find_pins(engine_request(case.prompt)) == Pins(index[case.first], index[case.last])
    words = rewrite_prompt(engine_request(case.prompt))
    assert "@" not in words
    for kind, english, chinese in (
        ("Image", "reference image", "参考图片"),
        ("Video", "reference video", "参考视频"),
        ("Audio", "music", "音乐"),
    ):
        named = sum(text.startswith(f"@{kind}") for text in expected)
        assert words.count(english) + words.count(chinese) == named, words
    # The upstream gateway names the same references in words.
    upstream = rewrite_mentions(case.prompt)
    found = re.findall(r"(Image|Video|Audio) (\d+)|(图片|视频|音频)(\d+)", upstream)
    kinds = {"图片": "Image", "视频": "Video", "音频": "Audio"}
    spelled = [f"@{kind or kinds[zh]}{n or m}" for kind, n, zh, m in found]
    assert "@" not in upstream and spelled == expected


def test_the_playground_s_editor_reads_mentions_with_the_server_s_pattern() -> None:
    script = (ROOT / "src/r2v/api/playground/prompt.js").read_text()
    pattern = re.search(r"const MENTION = /(.+)/giu;", script)
    assert pattern is not None and pattern.group(1) == MENTION.pattern
    table = re.search(r"const KIND_OF = \{(.*?)\};", script, re.S)
    assert table is not None
    assert dict(re.findall(r"(\S+): \"(\w+)\"", table.group(1))) == dict(KINDS)


# --- the picture `adaptive` follows ------------------------------------------------------


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("grammar")
    return {
        "wide": ImageInput(make_image(root / "wide.jpg", 480, 270, seed=1), 480, 270),
        "tall": ImageInput(make_image(root / "tall.png", 270, 480, "PNG", seed=2), 270, 480),
        "square": ImageInput(make_image(root / "square.jpg", 300, 300, seed=3), 300, 300),
        "clip": VideoInput(
            make_video(root / "clip.mp4", 240, 240, 2.0, audio=False, seed=4),
            240, 240, 2.0, 24.0, False,
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("prompt", "ratio"),
    [
        ("@照片2 stands on a windy hill, then @Image1 and @ Video1", "9:16"),
        ("@ Video1 spins slowly, @Image2 watches", "1:1"),
    ],
)
def test_adaptive_follows_the_first_picture_however_it_is_spelled(
    pictures: dict[str, Any], tmp_path: Path, prompt: str, ratio: FixedAspectRatio
) -> None:
    req = engine_request(
        prompt,
        aspect_ratio="adaptive",
        images=(pictures["wide"], pictures["tall"]),
        videos=(pictures["clip"],),
        audios=(),
    )
    assert resolve_aspect_ratio(req) == ratio  # what the diffusers and upstream engines use
    engine = CompositorEngine()
    board = engine.plan(req)
    assert (board.width, board.height) == output_size("480p", ratio)
    result = engine.generate(req, LocalContext(tmp_path))
    info = probe(result.path)
    assert (info.width, info.height) == output_size("480p", ratio)


# --- pins, rendered ----------------------------------------------------------------------


def test_a_chinese_prompt_s_pinned_ends_are_the_rendered_ends(tmp_path: Path) -> None:
    images = tuple(
        ImageInput(make_image(tmp_path / f"{n}.jpg", 480, 270, seed=30 + n), 480, 270)
        for n in range(3)
    )
    req = engine_request("开头是@图片3，结尾是@Image1，中间是@照片2", images=images, videos=(),
                         audios=())  # fmt: skip
    assert find_pins(req) == Pins(2, 0)
    frames = decoded_frames(CompositorEngine().generate(req, LocalContext(tmp_path)).path)
    size = output_size("480p", "16:9")
    opening, closing = (mediafiles.fitted(image.path, size) for image in (images[2], images[0]))
    assert difference(frames[0], opening) < 4, "the opening frame is @图片3 itself"
    assert difference(frames[-1], closing) < 4, "the closing frame is @Image1 itself"
    assert difference(frames[0], closing) > 20 and difference(frames[-1], opening) > 20
