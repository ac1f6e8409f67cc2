"""Explicit first/last-frame pins (`first_frame_image`, `last_frame_image`) through every
engine: the worker's translation, the compositor's plan and decoded render, the diffusers
engine's pins, and the bodies the upstream dialects send."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, ImageInput, LocalContext
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.motion import REST
from r2v.engines.compositor.storyboard import Storyboard, build_storyboard
from r2v.engines.diffusers.prompt import Pins, find_pins
from r2v.engines.upstream import UpstreamRequest, UpstreamTarget
from r2v.engines.upstream.ark import ArkDialect
from r2v.engines.upstream.unified import UnifiedDialect
from r2v.media.probe import probe
from r2v.protocol import OUTPUT_SIZES, CreateVideoRequest, TaskStatus
from r2v.refs.intake import Reference, References
from r2v.tasks.record import TaskRecord
from r2v.worker import build_engine_request
from tests import mediafiles
from tests.arkfake import check_create
from tests.mediafiles import decoded_frames, difference, make_image

Frame = NDArray[np.uint8]
SIZE = OUTPUT_SIZES["480p"]["16:9"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImageInput, ...]:
    root = tmp_path_factory.mktemp("pins")
    return tuple(
        ImageInput(make_image(root / f"{n}.jpg", 960, 540, seed=20 + n), 960, 540) for n in range(3)
    )


def request(images: tuple[ImageInput, ...], prompt: str, **changes: Any) -> EngineRequest:
    return mediafiles.engine_request(prompt, **({"images": images} | changes))


def ends(board: Storyboard) -> list[tuple[str, set[str]]]:
    return [(shot.label, set(shot.pins)) for shot in board.shots]


def fitted(image: ImageInput) -> Frame:
    """The reference cropped to the output's shape and resized: what a pinned frame shows."""
    return mediafiles.fitted(image.path, SIZE)


# --- the worker's translation ---------------------------------------------------------


def test_the_wire_s_1_based_pins_become_0_based_engine_indexes(tmp_path: Path) -> None:
    paths = [make_image(tmp_path / f"{n}.png", 64 + n, 48, "PNG", seed=n) for n in range(3)]
    refs = References(
        images=tuple(
            Reference("image", n + 1, f"https://a.example/{n}.png", p, p.stat().st_size, probe(p))
            for n, p in enumerate(paths)
        )
    )

    def engine_request(**pins: int) -> EngineRequest:
        wire = CreateVideoRequest(
            model="seedance-2.0-reference-to-video",
            prompt="@Image1 then @Image2",
            image_urls=[f"https://a.example/{n}.png" for n in range(3)],
            **pins,
        )
        record = TaskRecord(
            id="task-unified-1700000000-abcdefgh", key_id="k", model=wire.model,
            status=TaskStatus.PROCESSING, progress=0, request_json=wire.model_dump_json(),
            seed=5, video_duration=5, estimated_time=10, created_at=0.0, updated_at=0.0,
        )  # fmt: skip
        return build_engine_request(record, refs, "standard")

    pinned = engine_request(first_frame_image=3, last_frame_image=1)
    assert (pinned.first_frame, pinned.last_frame) == (2, 0)
    assert [image.width for image in pinned.images] == [64, 65, 66]
    plain = engine_request()
    assert (plain.first_frame, plain.last_frame) == (None, None)


def test_a_pin_must_name_one_of_the_images(images: tuple[ImageInput, ...]) -> None:
    with pytest.raises(ValueError, match="first_frame 3"):
        request(images, "x", first_frame=3)
    with pytest.raises(ValueError, match="last_frame"):
        request((), "x", last_frame=0)


# --- the compositor -------------------------------------------------------------------


def test_an_explicit_pin_wins_over_the_prompt_s_wording(images: tuple[ImageInput, ...]) -> None:
    prompt = "@Image1 as the first frame, @Image2 as the last frame."
    assert ends(build_storyboard(request(images, prompt))) == [
        ("@Image1", {"first"}), ("@Image3", set()), ("@Image2", {"last"}),
    ]  # fmt: skip
    # The field takes the position; the picture the prompt pinned there becomes a middle shot.
    assert ends(build_storyboard(request(images, prompt, first_frame=2))) == [
        ("@Image3", {"first"}), ("@Image1", set()), ("@Image2", {"last"}),
    ]  # fmt: skip
    assert ends(build_storyboard(request(images, prompt, last_frame=0))) == [
        ("@Image1", {"first"}), ("@Image2", set()), ("@Image3", set()), ("@Image1", {"last"}),
    ]  # fmt: skip


def test_an_image_the_prompt_never_names_can_be_pinned(images: tuple[ImageInput, ...]) -> None:
    board = build_storyboard(request(images, "@Image1 walks in, then @Image2.", last_frame=2))
    assert ends(board) == [("@Image1", set()), ("@Image2", set()), ("@Image3", {"last"})]
    motion = board.shots[-1].motion
    assert motion is not None and motion.at(1.0) == REST


def test_one_image_pinned_first_and_last_opens_and_closes(images: tuple[ImageInput, ...]) -> None:
    board = build_storyboard(request(images, "@Image1 and @Image3.", first_frame=1, last_frame=1))
    assert ends(board) == [
        ("@Image2", {"first"}), ("@Image1", set()), ("@Image3", set()), ("@Image2", {"last"}),
    ]  # fmt: skip
    alone = build_storyboard(request(images[:1], "a still", first_frame=0, last_frame=0))
    assert ends(alone) == [("@Image1", {"first", "last"})]
    path = alone.shots[0].motion
    assert path is not None and path.at(0.0) == REST and path.at(1.0) == REST


def test_rendered_ends_are_the_explicitly_pinned_pictures(
    images: tuple[ImageInput, ...], tmp_path: Path
) -> None:
    # The prompt pins @Image1 first; the fields pin @Image2 first and (never named) @Image3 last.
    req = request(images, "@Image1 as the first frame. @Image2 walks in.", first_frame=1,
                  last_frame=2)  # fmt: skip
    result = CompositorEngine().generate(req, LocalContext(tmp_path))
    frames = decoded_frames(result.path)
    assert len(frames) == 4 * 24
    first, last, worded = fitted(images[1]), fitted(images[2]), fitted(images[0])
    assert difference(frames[0], first) < 4, "the opening frame is @Image2 itself"
    assert difference(frames[-1], last) < 4, "the closing frame is @Image3 itself"
    assert difference(frames[0], worded) > 20, "the prompt's own pin yields"
    assert difference(frames[12], frames[0]) > 1, "the camera moves off the pinned frame"


def test_rendered_video_opens_and_closes_on_one_pinned_picture(
    images: tuple[ImageInput, ...], tmp_path: Path
) -> None:
    req = request(images, "@Image1 then @Image2", first_frame=2, last_frame=2)
    frames = decoded_frames(CompositorEngine().generate(req, LocalContext(tmp_path)).path)
    pinned = fitted(images[2])
    assert difference(frames[0], pinned) < 4 and difference(frames[-1], pinned) < 4
    assert min(difference(frames[n], pinned) for n in range(36, 60)) > 20, "others in between"


# --- the diffusers engine -------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "fields", "pins"),
    [
        ("@Image1 as the first frame, @Image2 as the last frame", {}, Pins(0, 1)),
        ("@Image1 as the first frame, @Image2 as the last frame", {"first_frame": 2}, Pins(2, 1)),
        ("@Image1 as the first frame, @Image2 as the last frame", {"last_frame": 0}, Pins(0, 0)),
        ("@Image1 作为首帧", {"first_frame": 1, "last_frame": 2}, Pins(1, 2)),
        ("A dog in @Image1", {"last_frame": 1}, Pins(None, 1)),
        ("A dog in @Image1", {}, Pins(None, None)),
    ],
)
def test_diffusers_pins_prefer_the_fields_position_by_position(
    prompt: str, fields: dict[str, int], pins: Pins
) -> None:
    refs = tuple(ImageInput(Path(f"/nowhere/{n}.jpg"), 640, 480) for n in range(3))
    assert find_pins(request(refs, prompt, **fields)) == pins


# --- the upstream dialects ------------------------------------------------------------

ARK = UpstreamTarget("ark", "https://ark.example.com/api/v3", "dreamina-seedance-2-0-260128", "k")
UNIFIED = UpstreamTarget("unified", "https://agg.example", "seedance-2.0-reference-to-video", "k")
IMAGES = ("https://a.example/1.png", "https://a.example/2.png", "https://a.example/3.png")


def upstream(**changes: Any) -> UpstreamRequest:
    base = UpstreamRequest(
        task_id="task-unified-1700000000-abcdefgh",
        model="seedance-2.0-reference-to-video",
        prompt="@Image1 meets @Image2 and @Image3 in @Video1",
        resolution="720p",
        aspect_ratio="16:9",
        duration=5,
        generate_audio=True,
        seed=None,
        image_urls=IMAGES,
        video_urls=("https://a.example/1.mp4",),
    )
    return dataclasses.replace(base, **changes)


def items(body: dict[str, Any] | None) -> list[tuple[str, str]]:
    assert body is not None
    return [(item[item["type"]]["url"], item["role"]) for item in body["content"][1:]]


def test_ark_sends_pinned_images_as_frames_in_their_place() -> None:
    call = ArkDialect().create(
        ARK, upstream(first_frame_image=3, last_frame_image=1, return_last_frame=True)
    )
    assert items(call.body) == [
        (IMAGES[0], "last_frame"), (IMAGES[1], "reference_image"), (IMAGES[2], "first_frame"),
        ("https://a.example/1.mp4", "reference_video"),
    ]  # fmt: skip
    assert call.body is not None and call.body["return_last_frame"] is True
    assert check_create(call.body) is None, "the fake Ark, written from Ark's contract, takes it"


def test_ark_sends_an_image_pinned_at_both_ends_twice() -> None:
    call = ArkDialect().create(ARK, upstream(first_frame_image=2, last_frame_image=2))
    # After the other images, so @Image3 is still Ark's third image item.
    assert items(call.body) == [
        (IMAGES[0], "reference_image"), (IMAGES[1], "first_frame"),
        (IMAGES[2], "reference_image"), (IMAGES[1], "last_frame"),
        ("https://a.example/1.mp4", "reference_video"),
    ]  # fmt: skip
    assert call.body is not None and "return_last_frame" not in call.body


def test_ark_without_pins_sends_references_only() -> None:
    call = ArkDialect().create(ARK, upstream())
    assert {role for _, role in items(call.body)} == {"reference_image", "reference_video"}
    assert call.body is not None and "return_last_frame" not in call.body


def test_unified_passes_the_extensions_through_only_when_set() -> None:
    dialect = UnifiedDialect()
    plain = dialect.create(UNIFIED, upstream()).body
    assert plain is not None
    assert not {"first_frame_image", "last_frame_image", "return_last_frame"} & set(plain)
    pins = {"first_frame_image": 1, "last_frame_image": 3, "return_last_frame": True}
    assert dialect.create(UNIFIED, upstream(**pins)).body == {**plain, **pins}
    only_last = dialect.create(UNIFIED, upstream(last_frame_image=2)).body
    assert only_last == {**plain, "last_frame_image": 2}
