"""Creating tasks: every rule that needs no download is refused at create with the envelope.

The server here runs with no worker threads, so created tasks stay pending and nothing is
downloaded: these tests are about the API's judgement alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from r2v.settings import Settings
from tests.conftest import make_settings
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"
STANDARD = "seedance-2.0-reference-to-video"
IMG = "https://example.com/a.jpg"


@pytest.fixture
def settings(tmp_path: Path, refserver: RefServer) -> Settings:
    return make_settings(tmp_path / "data", refserver, workers=0)


def body(**fields: Any) -> dict[str, Any]:
    return {"model": FAST, "prompt": "A cat walks on @Image1", "image_urls": [IMG]} | fields


def create(api: TestClient, auth: dict[str, str], payload: Any) -> Any:
    return api.post("/v1/videos/generations", json=payload, headers=auth)


def assert_refused(response: Any, param: str | None, *fragments: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


def test_create_answers_a_pending_task_object(api: TestClient, auth: dict[str, str]) -> None:
    response = create(api, auth, body(duration=6, seed=42))
    assert response.status_code == 200, response.text
    task = response.json()
    assert re.fullmatch(r"task-unified-\d+-[a-z0-9]{8}", task["id"])
    assert list(task) == [
        "id",
        "object",
        "created",
        "model",
        "type",
        "status",
        "progress",
        "task_info",
        "usage",
    ]
    assert task["object"] == "video.generation.task"
    assert task["type"] == "video"
    assert task["status"] == "pending"
    assert task["progress"] == 0
    assert task["model"] == FAST
    info = task["task_info"]
    assert info["can_cancel"] is True
    assert info["video_duration"] == 6
    assert info["seed"] == 42
    assert info["estimated_time"] >= 1
    assert task["usage"] == {
        "billing_rule": "per_second",
        "credits_reserved": 6,
        "user_group": "default",
    }
    # non-terminal answers carry a poll hint
    assert int(response.headers["retry-after"]) >= 1
    assert int(response.headers["openai-poll-after-ms"]) >= 1000
    assert response.headers["x-request-id"]

    again = api.get(f"/v1/tasks/{task['id']}", headers=auth)
    assert again.status_code == 200
    assert again.json()["id"] == task["id"]
    assert "results" not in again.json() and "error" not in again.json()


def test_defaults_nulls_and_unknown_fields(api: TestClient, auth: dict[str, str]) -> None:
    payload = body(
        resolution=None,
        aspect_ratio=None,
        duration=None,
        seed=None,
        generate_audio=None,
        video_urls=None,
        audio_urls=None,
        callback_url=None,
        some_future_field={"x": 1},
    )
    response = create(api, auth, payload)
    assert response.status_code == 200, response.text
    info = response.json()["task_info"]
    assert info["video_duration"] == 5
    # seed -1 (the default) is drawn at creation and reported
    assert isinstance(info["seed"], int) and info["seed"] >= 0


def test_quality_is_an_alias_of_resolution(api: TestClient, auth: dict[str, str]) -> None:
    assert create(api, auth, body(quality="480p")).status_code == 200
    assert create(api, auth, body(quality="480p", resolution="480p")).status_code == 200
    assert_refused(create(api, auth, body(quality="1080p")), "resolution", "480p")
    assert_refused(create(api, auth, body(quality="480p", resolution="720p")), None, "alias")


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        ({"model": "seedance-3"}, "model", STANDARD),
        ({"model": None}, "model", "required"),
        ({"prompt": ""}, "prompt", "prompt"),
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": "x" * 5001}, "prompt", "5000"),
        ({"resolution": "1080p"}, "resolution", "480p"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio", "21:9"),
        ({"duration": 3}, "duration", "4 to 15"),
        ({"duration": 16}, "duration", "4 to 15"),
        ({"duration": 0}, "duration", "4 to 15"),
        ({"duration": 5.0}, "duration", "integer"),
        ({"duration": "5"}, "duration", "integer"),
        ({"duration": True}, "duration", "integer"),
        ({"generate_audio": "yes"}, "generate_audio", "boolean"),
        ({"generate_audio": 1}, "generate_audio", "boolean"),
        ({"seed": -2}, "seed", "-1"),
        ({"seed": 2**32}, "seed", "4294967295"),
        ({"seed": 1.5}, "seed", "integer"),
        ({"image_urls": [IMG] * 10}, "image_urls", "9"),
        ({"video_urls": ["https://e.com/v.mp4"] * 4}, "video_urls", "3"),
        ({"audio_urls": ["https://e.com/a.mp3"] * 4}, "audio_urls", "3"),
        ({"image_urls": ["ftp://example.com/a.jpg"]}, "image_urls", "http"),
        ({"image_urls": ["not a url"]}, "image_urls", "http"),
        ({"image_urls": ["https://" + "a" * 2050 + ".com/x.jpg"]}, "image_urls", "2048"),
        ({"image_urls": [42]}, "image_urls", "string"),
        ({"image_urls": IMG}, "image_urls", "list"),
        ({"callback_url": "file:///etc/passwd"}, "callback_url", "http"),
    ],
)
def test_field_rules(
    api: TestClient, auth: dict[str, str], fields: dict[str, Any], param: str, fragment: str
) -> None:
    assert_refused(create(api, auth, body(**fields)), param, fragment)


def test_limits_exactly_at_the_boundary_pass(api: TestClient, auth: dict[str, str]) -> None:
    mentions = " ".join(f"@Image{i}" for i in range(1, 10))
    payload = body(
        prompt="x" * (5000 - len(mentions) - 1) + " " + mentions,
        image_urls=[IMG] * 9,
        video_urls=["https://e.com/v.mp4"] * 3,
        duration=15,
        seed=2**32 - 1,
    )
    assert len(payload["prompt"]) == 5000
    assert create(api, auth, payload).status_code == 200
    assert create(api, auth, body(duration=4)).status_code == 200
    assert create(api, auth, body(duration=-1)).status_code == 200
    assert create(api, auth, body(seed=0)).status_code == 200


def test_at_most_twelve_references(api: TestClient, auth: dict[str, str]) -> None:
    payload = body(
        image_urls=[IMG] * 9,
        video_urls=["https://e.com/v.mp4"] * 3,
        audio_urls=["https://e.com/a.mp3"],
    )
    assert_refused(create(api, auth, payload), "image_urls", "12")


def test_audio_needs_a_visual_reference(api: TestClient, auth: dict[str, str]) -> None:
    payload = {"model": FAST, "prompt": "music", "audio_urls": ["https://e.com/a.mp3"]}
    assert_refused(create(api, auth, payload), "audio_urls", "image or video")


@pytest.mark.parametrize(
    ("prompt", "mention"),
    [
        ("@Image1 meets @Image3", "@Image3"),
        ("dance to @Video1", "@Video1"),
        ("with @Audio2 playing", "@Audio2"),
        ("starts from @Image0", "@Image0"),
        ("lowercase @image2 counts too", "@Image2"),
        ("中文的 @图片2 也算", "@Image2"),
        ("跟随 @视频1 的运镜", "@Video1"),
        ("a space after the at: @ Image2", "@Image2"),
        ("@照片1 和 @图像3", "@Image3"),
    ],
)
def test_dangling_mentions_are_named(
    api: TestClient, auth: dict[str, str], prompt: str, mention: str
) -> None:
    payload = body(prompt=prompt, image_urls=[IMG], audio_urls=["https://e.com/a.mp3"])
    assert_refused(create(api, auth, payload), "prompt", mention)


def test_body_that_is_not_a_json_object(api: TestClient, auth: dict[str, str]) -> None:
    broken = api.post(
        "/v1/videos/generations",
        content=b"{not json",
        headers=auth | {"Content-Type": "application/json"},
    )
    assert_refused(broken, None, "JSON")
    assert_refused(create(api, auth, [1, 2]), None, "JSON object")


def test_body_over_the_cap_is_413(api: TestClient, auth: dict[str, str]) -> None:
    response = create(api, auth, body(prompt="x" * 2_000_000))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large_error"


def test_chunked_body_over_the_cap_is_413(api: TestClient, auth: dict[str, str]) -> None:
    def chunks() -> Any:
        yield b'{"model": "' + FAST.encode() + b'", "prompt": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    response = api.post(
        "/v1/videos/generations",
        content=chunks(),
        headers=auth | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer wrong-key", "Basic dXNlcjpwYXNz", "r2v_no_scheme"],
)
def test_missing_or_unknown_key_is_401(api: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = api.post("/v1/videos/generations", json=body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert api.get("/v1/tasks/task-unified-1-abcdefgh", headers=headers).status_code == 401


def test_revoked_key_is_refused(api: TestClient, runtime: Any) -> None:
    created = runtime.keys.create("temp")
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert create(api, headers, body()).status_code == 200
    assert runtime.keys.revoke(created.key.id)
    assert create(api, headers, body()).status_code == 401


def test_a_key_sees_only_its_own_tasks(api: TestClient, auth: dict[str, str], runtime: Any) -> None:
    task_id = create(api, auth, body()).json()["id"]
    other = {"Authorization": f"Bearer {runtime.keys.create('other').secret}"}
    response = api.get(f"/v1/tasks/{task_id}", headers=other)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert api.get(f"/v1/tasks/{task_id}", headers=auth).status_code == 200


@pytest.mark.parametrize(
    "task_id",
    ["nope", "task-unified-abc-abcdefgh", "task-unified-1-ABCDEFGH", "task-unified-1-abc"],
)
def test_malformed_task_id_is_400(api: TestClient, auth: dict[str, str], task_id: str) -> None:
    response = api.get(f"/v1/tasks/{task_id}", headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_task_id"


def test_unknown_task_is_404(api: TestClient, auth: dict[str, str]) -> None:
    response = api.get("/v1/tasks/task-unified-1700000000-abcdefgh", headers=auth)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"


def test_unknown_route_uses_the_envelope(api: TestClient) -> None:
    response = api.get("/v2/whatever")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_healthz_needs_no_key(api: TestClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_documents_the_contract(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert "/v1/videos/generations" in schema["paths"]
    assert "/v1/tasks/{task_id}" in schema["paths"]
    fields = schema["components"]["schemas"]["CreateVideoRequest"]["properties"]
    assert {"model", "prompt", "resolution", "duration", "image_urls"} <= set(fields)
