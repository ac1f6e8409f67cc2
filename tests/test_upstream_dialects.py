"""The upstream dialects on their own: bodies, error mappings, and what is done to the text
an upstream sends back. The end-to-end tests (test_upstream_*.py) run them for real."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from r2v.bootstrap import build_runtime, default_upstream_model, upstream_engines
from r2v.engines.upstream import (
    UpstreamRequest,
    UpstreamTarget,
    ark_failure,
    rewrite_mentions,
    unified_failure,
)
from r2v.engines.upstream.ark import ArkDialect
from r2v.engines.upstream.request import Malformed, clean_message, clean_usage, poll_hint
from r2v.engines.upstream.unified import UnifiedDialect
from r2v.errors import ConfigurationError
from r2v.settings import Settings
from tests.upstreams import FAST, STANDARD, upstream_model

KEY = "sk-upstream-secret-0123456789"
ARK = UpstreamTarget("ark", "https://ark.example.com/api/v3", "dreamina-seedance-2-0-260128", KEY)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("OutputVideoSensitiveContentDetected", "content_policy_violation"),
        ("InputImageSensitiveContentDetected", "content_policy_violation"),
        ("InputTextSensitiveContentDetected.PolicyViolation", "content_policy_violation"),
        ("OutputVideoRiskDetection", "content_policy_violation"),
        ("ContentSecurityDetectionError", "content_policy_violation"),
        ("InvalidParameter", "invalid_parameters"),
        ("InvalidParameter.Ratio", "invalid_parameters"),
        ("MissingParameter", "invalid_parameters"),
        ("AuthenticationError", "upstream_unavailable"),
        ("AccessDenied", "upstream_unavailable"),
        ("AccountOverdueError", "upstream_unavailable"),
        ("ModelNotOpen", "upstream_unavailable"),
        ("InvalidEndpointOrModel.NotFound", "upstream_unavailable"),
        ("InternalServiceError", "generation_failed"),
        ("SomethingNew", "generation_failed"),
    ],
)
def test_ark_error_codes_map_to_stable_task_codes(code: str, expected: str) -> None:
    failure = ark_failure(code, "what Ark said")
    assert failure.code == expected
    assert code in failure.message and "what Ark said" in failure.message


def test_an_expired_or_cancelled_ark_task_is_a_timeout_or_a_failure() -> None:
    dialect = ArkDialect()
    expired = dialect.status(ARK, {"id": "cgt-1", "status": "expired"})
    assert expired.state == "failed" and expired.failure is not None
    assert expired.failure.code == "generation_timeout"
    cancelled = dialect.status(ARK, {"id": "cgt-1", "status": "cancelled"})
    assert cancelled.failure is not None and cancelled.failure.code == "generation_failed"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "InvalidParameter", "invalid_parameters"),
        (400, "InputTextSensitiveContentDetected", "content_policy_violation"),
        (401, "", "upstream_unavailable"),
        (403, "AccessDenied", "upstream_unavailable"),
        (404, "InvalidEndpointOrModel.NotFound", "upstream_unavailable"),
        (404, "", "upstream_unavailable"),
        (400, "", "generation_failed"),
    ],
)
def test_ark_refusals_map_like_failures(status: int, code: str, expected: str) -> None:
    data = {"error": {"code": code, "message": "no"}} if code else None
    failure = ArkDialect().refusal(ARK, status, data)
    assert failure.code == expected
    assert "refused" in failure.message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("content_policy_violation", "content_policy_violation"),
        ("invalid_parameters", "invalid_parameters"),
        ("reference_fetch_failed", "reference_fetch_failed"),
        ("reference_invalid", "reference_invalid"),
        ("generation_timeout", "generation_timeout"),
        ("upstream_unavailable", "upstream_unavailable"),
        ("request_cancelled", "generation_failed"),
        ("service_error", "generation_failed"),
        ("anything", "generation_failed"),
    ],
)
def test_unified_error_codes_keep_their_meaning(code: str, expected: str) -> None:
    failure = unified_failure(code, "from the other server")
    assert failure.code == expected
    assert code in failure.message and "from the other server" in failure.message


def request(**fields: object) -> UpstreamRequest:
    values: dict[str, object] = {
        "task_id": "task-unified-1700000000-abcdefgh",
        "model": FAST,
        "prompt": "@Image1 meets @Video1",
        "resolution": "480p",
        "aspect_ratio": "9:16",
        "duration": 7,
        "generate_audio": False,
        "seed": 42,
        "image_urls": ("https://a.example/1.png",),
        "video_urls": ("https://a.example/1.mp4",),
    }
    values.update(fields)
    return UpstreamRequest(**values)  # type: ignore[arg-type]


def test_a_unified_upstream_s_statuses_and_progress_are_read() -> None:
    target = UpstreamTarget("unified", "https://agg.example", FAST, KEY)
    dialect = UnifiedDialect()
    assert dialect.status(target, {"status": "pending"}).state == "queued"
    running = dialect.status(target, {"status": "processing", "progress": 40,
                                      "task_info": {"seed": 9}})  # fmt: skip
    assert (running.state, running.progress, running.seed) == ("running", 40, 9)
    odd = dialect.status(target, {"status": "processing", "progress": 400})
    assert odd.progress is None
    done = dialect.status(target, {"status": "completed", "results": ["https://x/v.mp4"],
                                   "usage": {"credits_reserved": 5}})  # fmt: skip
    assert (done.video_url, done.usage) == ("https://x/v.mp4", {"credits_reserved": 5})
    for data in ({"status": "completed"}, {"status": "completed", "results": []}, {"x": 1}):
        with pytest.raises(Malformed):
            dialect.status(target, data)


def test_the_ark_body_carries_ark_fields_only() -> None:
    call = ArkDialect().create(ARK, request(callback_url="https://r2v.example/cb"))
    assert call.method == "POST"
    assert call.url == "https://ark.example.com/api/v3/contents/generations/tasks"
    assert call.body == {
        "model": "dreamina-seedance-2-0-260128",
        "content": [
            {"type": "text", "text": "@Image1 meets @Video1"},
            {"type": "image_url", "image_url": {"url": "https://a.example/1.png"},
             "role": "reference_image"},
            {"type": "video_url", "video_url": {"url": "https://a.example/1.mp4"},
             "role": "reference_video"},
        ],
        "resolution": "480p",
        "ratio": "9:16",
        "duration": 7,
        "generate_audio": False,
        "watermark": False,
        "seed": 42,
        "callback_url": "https://r2v.example/cb",
    }  # fmt: skip
    assert KEY not in str(call)


def test_the_unified_body_is_this_api_with_the_task_id_as_idempotency_key() -> None:
    target = UpstreamTarget("unified", "https://agg.example", FAST, KEY)
    call = UnifiedDialect().create(target, request(seed=None, callback_url="https://x/cb"))
    assert call.url == "https://agg.example/v1/videos/generations"
    assert call.headers == {"Idempotency-Key": "task-unified-1700000000-abcdefgh"}
    assert call.body is not None
    assert call.body["seed"] == -1 and "callback_url" not in call.body
    assert call.body["image_urls"] == ["https://a.example/1.png"]


def test_mentions_become_words_in_the_prompt_s_language() -> None:
    assert rewrite_mentions("@Image1 and @image 2 dance to @Audio1") == (
        "Image 1 and Image 2 dance to Audio 1"
    )
    assert rewrite_mentions("@图片1 和 @Video2 一起") == "图片1 和 视频2 一起"
    assert rewrite_mentions("@照片1 和 @ Image2 在@图像3里") == "图片1 和 图片2 在图片3里"
    assert rewrite_mentions("@ image 2 waves") == "Image 2 waves"
    assert rewrite_mentions("no mentions here") == "no mentions here"


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "text",
        {"id": None},
        {"id": ""},
        {"id": "../../admin"},
        {"id": "cgt 1"},
        {"id": "x" * 300},
        {"id": 12},
    ],
)
def test_a_create_answer_without_a_usable_id_is_malformed(data: object) -> None:
    for dialect in (ArkDialect(), UnifiedDialect()):
        with pytest.raises(Malformed):
            dialect.created(data)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"status": "weird"},
        {"status": "succeeded"},
        {"status": "succeeded", "content": {"video_url": 5}},
        {"status": "succeeded", "content": "x"},
    ],
)
def test_an_ark_task_answer_that_is_not_one_is_malformed(data: object) -> None:
    with pytest.raises(Malformed):
        ArkDialect().status(ARK, data)


def test_upstream_text_is_bounded_one_line_and_never_holds_the_key() -> None:
    message = clean_message(f"bad key {KEY}\r\n\x00" + "x" * 1000, KEY)
    assert KEY not in message and "[redacted]" in message
    assert "\n" not in message and "\x00" not in message
    assert len(message) <= 300
    usage = clean_usage(
        {"completion_tokens": 5, "note": KEY, "nested": {"a": 1}, "big": 2**60, 7: 1}, KEY
    )
    assert usage == {"completion_tokens": 5, "note": "[redacted]"}
    assert clean_usage("nope", KEY) is None
    assert poll_hint({"openai-poll-after-ms": "1500"}) == 1.5
    assert poll_hint({"retry-after": "3"}) == 3.0
    assert poll_hint({"retry-after": "soon"}) is None


def test_default_upstream_models_follow_the_region() -> None:
    byteplus = "https://ark.ap-southeast.bytepluses.com/api/v3"
    volc = "https://ark.cn-beijing.volces.com/api/v3"
    assert default_upstream_model(STANDARD, "ark", byteplus) == "dreamina-seedance-2-0-260128"
    assert default_upstream_model(FAST, "ark", byteplus) == "dreamina-seedance-2-0-fast-260128"
    assert default_upstream_model(FAST, "ark", volc) == "doubao-seedance-2-0-fast-260128"
    assert default_upstream_model(FAST, "unified", "https://agg.example") == FAST


VARIABLE = "R2V_MODELS__SEEDANCE_2_0_FAST_REFERENCE_TO_VIDEO__UPSTREAM"


@pytest.mark.parametrize(
    ("model", "missing"),
    [
        ({"engine": "upstream", "upstream_api": "ark", "upstream_api_key": "k"}, "_URL"),
        ({"engine": "upstream", "upstream_api": "ark", "upstream_url": "https://a/api/v3"},
         "_API_KEY"),
        ({"engine": "upstream", "upstream_url": "https://a", "upstream_api_key": "k"}, "_API"),
        (upstream_model("ark", "ftp://a", "k"), "_URL"),
        (upstream_model("ark", "https://a/api/v3", "k", upstream_fallbacks=[
            {"api": "unified", "url": "not a url", "api_key": "k2"}]), "_FALLBACKS[0].url"),
    ],
)  # fmt: skip
def test_start_up_names_the_missing_or_wrong_upstream_setting(
    model: dict[str, object], missing: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        upstream_engines(Settings(models={FAST: model}))
    assert VARIABLE + missing in caught.value.message


def test_start_up_logs_each_upstream_without_its_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = {"api": "unified", "url": "https://agg.example/", "api_key": "fallback-secret"}
    settings = Settings(
        data_dir=tmp_path,
        models={
            FAST: upstream_model(
                "ark", "https://ark.example/api/v3/", KEY, upstream_fallbacks=[fallback]
            )
        },
    )
    with caplog.at_level(logging.INFO, logger="r2v"):
        runtime = build_runtime(settings)
    runtime.close()
    lines = [r.getMessage() for r in caplog.records if FAST in r.getMessage()]
    assert lines == [
        f"model {FAST}: upstream: ark https://ark.example/api/v3 model "
        "dreamina-seedance-2-0-fast-260128",
        f"model {FAST}: fallback 1: unified https://agg.example model {FAST}",
    ]
    assert KEY not in caplog.text and "fallback-secret" not in caplog.text
    assert KEY not in repr(settings) and KEY not in repr(upstream_engines(settings))
