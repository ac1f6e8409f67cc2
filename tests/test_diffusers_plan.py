"""The diffusers engine without torch: planning, prompt reading, settings, and the extra.

None of these needs `r2v[diffusers]`: they check what the engine decides before it runs a
model, and that the default install never imports torch and says what to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from r2v.engines.base import AudioInput, EngineRequest, ImageInput, VideoInput
from r2v.engines.diffusers import DiffusersConfig, DiffusersEngine
from r2v.engines.diffusers.conditioning import Conditioning, reference_plate, segment_inputs
from r2v.engines.diffusers.config import (
    AREA_480P,
    AREA_720P,
    CacheSpec,
    GenerationLimits,
    generation_limits,
    parse_cache,
    sampling,
)
from r2v.engines.diffusers.flops import latent_tokens, step_cost
from r2v.engines.diffusers.plan import (
    Segment,
    choose_seconds,
    clip_frames,
    generation_size,
    make_plan,
    plan_segments,
)
from r2v.engines.diffusers.prompt import conditioning_video, find_pins, rewrite_prompt
from r2v.errors import EngineUnavailable
from r2v.protocol import FPS, OUTPUT_SIZES
from tests.mediafiles import engine_request

ROOT = Path(__file__).resolve().parent.parent
WAN_14B = {
    "num_attention_heads": 40, "attention_head_dim": 128, "ffn_dim": 13824, "num_layers": 40,
    "vace_layers": [0, 5, 10, 15, 20, 25, 30, 35],
}  # fmt: skip


def request(**changes: Any) -> EngineRequest:
    defaults: dict[str, Any] = {
        "model": "seedance-2.0-reference-to-video",
        "preset": "standard",
        "prompt": "A dog walks in the park",
        "duration": 5,
        "generate_audio": True,
        "seed": 1,
    }
    return engine_request(**(defaults | changes))


def image(n: int = 0) -> ImageInput:
    return ImageInput(Path(f"/nowhere/{n}.jpg"), 640, 480)


def test_every_output_size_is_generated_in_multiples_of_16_within_the_area() -> None:
    for sizes in OUTPUT_SIZES.values():
        for width, height in sizes.values():
            for area in (AREA_480P, AREA_720P, 64 * 48):
                w, h = generation_size((width, height), area)
                assert w % 16 == 0 and h % 16 == 0 and w * h <= area
                if width * height <= area:
                    assert (w, h) == (width, height)  # the API's sizes are multiples of 16
                # Nearly the output's shape (toy areas round coarsely).
                tolerance = 0.05 if area >= AREA_480P else 0.6
                assert abs(np.log(w / h) - np.log(width / height)) < tolerance
    assert generation_size((864, 496), AREA_480P) == (832, 480)


def test_frames_cover_the_duration_at_the_models_rate_in_4k_plus_1_passes() -> None:
    limits = GenerationLimits(max_area=AREA_480P, max_frames=81, fps=16)
    plan = make_plan(request(duration=5), limits, sampling(config(), "480p"), overlap=5)
    assert plan.frames == 5 * FPS
    assert plan.segments == (Segment(0, 81),)  # 5 s at 16 fps: Wan's native clip
    assert plan.source_frame(plan.frames - 1) == plan.gen_frames - 1 <= 80
    assert [plan.source_frame(i) for i in range(6)] == [0, 1, 1, 2, 3, 3]

    long = make_plan(request(duration=15), limits, sampling(config(), "480p"), overlap=5)
    assert long.frames == 360
    assert all(s.frames % 4 == 1 and s.frames <= 81 for s in long.segments)
    for before, after in zip(long.segments, long.segments[1:], strict=False):
        assert after.start == before.end - 5  # each later pass repeats 5 frames
    assert long.segments[-1].end >= long.gen_frames
    assert long.steps == 30 * len(long.segments)


def test_segments_and_clip_lengths() -> None:
    assert [clip_frames(n) for n in (1, 2, 5, 6, 64, 81)] == [1, 5, 5, 9, 65, 81]
    assert plan_segments(33, 17, 5) == (Segment(0, 17), Segment(12, 17), Segment(24, 9))
    assert plan_segments(17, 17, 5) == (Segment(0, 17),)


def test_duration_minus_one_follows_the_audio_then_the_video() -> None:
    wav = AudioInput(Path("/a.wav"), 7.4)
    clip = VideoInput(Path("/v.mp4"), 320, 240, 11.6, 24.0, False)
    assert choose_seconds(request(duration=-1)) == 5
    assert choose_seconds(request(duration=-1, audios=(wav,), images=(image(),))) == 7
    assert choose_seconds(request(duration=-1, videos=(clip,))) == 12
    short = AudioInput(Path("/b.wav"), 1.0)
    assert choose_seconds(request(duration=-1, audios=(short,), images=(image(),))) == 4
    # The mentioned clip, however spelled; a mention of no clip (`@Audio0`) falls back to
    # the first one, never to the last (an index of -1).
    both = {"audios": (wav, short), "images": (image(),), "duration": -1}
    assert choose_seconds(request(prompt="to @ audio 2", **both)) == 4
    assert choose_seconds(request(prompt="to @Audio0", **both)) == 7


def test_presets_have_defaults_and_settings_override_them() -> None:
    assert sampling(config(), "480p") == sampling(config(preset="standard"), "480p")
    standard = sampling(config(), "720p")
    assert (standard.steps, standard.guidance, standard.shift) == (30, 5.0, 5.0)
    fast = sampling(config(preset="fast"), "480p")
    assert fast.steps < standard.steps and fast.shift == 3.0
    distilled = sampling(config(preset="fast", lora_dir=Path("/lora")), "480p")
    assert (distilled.steps, distilled.guidance) == (4, 1.0)  # a step-distilled LoRA: no CFG
    mine = sampling(config(steps=7, guidance=2.5, shift=8.0), "480p")
    assert (mine.steps, mine.guidance, mine.shift) == (7, 2.5, 8.0)


def test_generation_limits_come_from_config_then_file_then_model(tmp_path: Path) -> None:
    assert generation_limits(config(tmp_path), 1536).max_area == AREA_480P  # the 1.3B class
    assert generation_limits(config(tmp_path), 5120).max_area == AREA_720P
    (tmp_path / "r2v.json").write_text(json.dumps({"max_area": 4096, "fps": 8}))
    assert generation_limits(config(tmp_path), 5120) == GenerationLimits(4096, 81, 8)
    assert generation_limits(config(tmp_path, fps=12), 5120).fps == 12
    with pytest.raises(EngineUnavailable, match="4k\\+1"):
        generation_limits(config(tmp_path, max_frames=80), 5120)
    (tmp_path / "r2v.json").write_text('{"max_area": "big"}')
    with pytest.raises(EngineUnavailable, match="whole numbers"):
        generation_limits(config(tmp_path), 5120)


def test_cache_settings_are_parsed_and_a_typo_fails_at_start_up() -> None:
    assert parse_cache(None) is None and parse_cache("none") is None
    assert parse_cache("first_block") == CacheSpec("first_block", 0.05)
    assert parse_cache("first_block:0.1") == CacheSpec("first_block", 0.1)
    with pytest.raises(EngineUnavailable, match="first_block"):
        DiffusersEngine(config(cache="teacache"))
    with pytest.raises(EngineUnavailable):
        parse_cache("first_block:-1")


def test_mentions_become_words_the_text_encoder_knows() -> None:
    two_images = (image(0), image(1))
    clip = VideoInput(Path("/v.mp4"), 320, 240, 3.0, 24.0, True)
    wav = AudioInput(Path("/a.wav"), 3.0)
    prompt = "@Image1 and @image 2 dance to @Audio1, moving like @Video1"
    rewritten = rewrite_prompt(
        request(prompt=prompt, images=two_images, videos=(clip,), audios=(wav,))
    )
    assert rewritten == (
        "the first reference image and the second reference image dance to the music, "
        "moving like the reference video"
    )
    chinese = rewrite_prompt(request(prompt="@Image1 中的狗在@Video1 里奔跑", images=two_images,
                                     videos=(clip,)))  # fmt: skip
    assert "@" not in chinese and "第1个参考图片" in chinese and "参考视频" in chinese


def test_first_and_last_frame_pins_are_read_per_clause() -> None:
    images = (image(0), image(1), image(2))
    pins = find_pins(request(prompt="@Image2 as the first frame, @Image3 as the last frame",
                             images=images))  # fmt: skip
    assert (pins.first, pins.last) == (1, 2)
    chinese = find_pins(request(prompt="@Image1作为首帧，@Image2作为尾帧", images=images))
    assert (chinese.first, chinese.last) == (0, 1)
    loose = find_pins(request(prompt="@Image1 walks. The last frame is dark", images=images))
    assert (loose.first, loose.last) == (None, None)  # the pinning sentence names no picture


def test_the_followed_video_is_the_first_mentioned() -> None:
    clips = tuple(VideoInput(Path(f"/v{n}.mp4"), 320, 240, 3.0, 24.0, True) for n in range(2))
    assert conditioning_video(request(videos=clips)) == 0
    assert conditioning_video(request(prompt="the camera of @Video2", videos=clips)) == 1
    assert conditioning_video(request(prompt="like @ video 2", videos=clips)) == 1
    assert conditioning_video(request(prompt="@Video0 and @视频2", videos=clips)) == 1
    assert conditioning_video(request()) is None


def test_reference_plates_are_centred_on_white() -> None:
    picture = np.zeros((100, 50, 3), dtype=np.uint8)
    plate = reference_plate(picture, (64, 48))
    assert plate.shape == (48, 64, 3)
    assert (plate[:, :8] == 255).all() and (plate[:, -8:] == 255).all()
    assert (plate[:, 24:40] == 0).all()


def test_a_later_segment_keeps_the_frames_it_carries_over() -> None:
    red = np.full((32, 64, 3), (255, 0, 0), dtype=np.uint8)
    whole = Conditioning(frames=[red] + [None] * 20, keep=[True] + [False] * 20)
    first = segment_inputs(whole, Segment(0, 9), carried=[])
    assert first is not None
    video, mask = first
    assert len(video) == len(mask) == 9
    assert np.asarray(video[0]).tolist() == red.tolist() and np.asarray(mask[0]).max() == 0
    assert np.asarray(video[1]).mean() == 128 and np.asarray(mask[1]).min() == 255
    assert segment_inputs(whole, Segment(9, 9), carried=[]) is None  # nothing to follow
    carried = segment_inputs(whole, Segment(9, 9), carried=[red, red])
    assert carried is not None
    assert [int(np.asarray(m).max()) for m in carried[1][:3]] == [0, 0, 255]


def test_flop_floor_of_the_14b_model() -> None:
    # 81 frames at 832x480: 21 latent frames x 30 x 52 patches.
    assert latent_tokens(81, 832, 480) == 21 * 30 * 52
    cost = step_cost(WAN_14B, 81, 832, 480, guided=True)
    params_per_token = 48 * (6 * 5120**2 + 2 * 5120 * 13824)
    assert cost.linear == pytest.approx(2 * params_per_token * cost.tokens, rel=0.05)
    assert cost.attention == pytest.approx(4 * cost.tokens**2 * 5120 * 48, rel=0.02)
    assert cost.total == pytest.approx(2 * (cost.linear + cost.attention))
    assert 3e15 < cost.total < 5e15  # about 4 PFLOP a guided step at 480p


def test_estimates_work_in_an_api_process_without_weights(tmp_path: Path) -> None:
    engine = DiffusersEngine(config(tmp_path / "absent"))
    assert (
        1
        <= engine.estimate_seconds(request())
        < engine.estimate_seconds(request(resolution="720p", duration=15))
    )


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_the_default_modules_never_import_torch(tmp_path: Path) -> None:
    result = run_python(f"""
        import sys
        import r2v.bootstrap, r2v.worker, r2v.api, r2v.engines.diffusers
        from r2v.bootstrap import model_routes
        from r2v.settings import Settings
        settings = Settings(models={{"seedance-2.0-fast-reference-to-video": {{
            "engine": "diffusers", "weights_dir": {str(tmp_path)!r}}}}})
        routes = model_routes(settings)
        print(routes["seedance-2.0-fast-reference-to-video"].engine.name)
        heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
        print("heavy:", heavy)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["diffusers", "heavy: []"]


def test_selecting_the_engine_without_torch_says_what_to_install(tmp_path: Path) -> None:
    # A real import failure: a finder that refuses torch, as if it were not installed.
    result = run_python(f"""
        import sys
        from importlib.abc import MetaPathFinder

        class NoTorch(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NoTorch())
        from pathlib import Path
        from r2v.engines.diffusers import DiffusersConfig, DiffusersEngine
        from r2v.errors import EngineUnavailable
        engine = DiffusersEngine(DiffusersConfig(weights_dir=Path({str(tmp_path)!r})))
        try:
            engine.load()
        except EngineUnavailable as error:
            print(error.message)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the diffusers engine needs `pip install 'r2v[diffusers]'`"), (
        result.stdout
    )
    assert "torch is not installed" in result.stdout


def config(weights: Path = Path("/weights"), **changes: Any) -> DiffusersConfig:
    return DiffusersConfig(weights_dir=weights, **changes)
