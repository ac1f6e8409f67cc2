"""The upstream engine against a contract-faithful Ark fake: r2v as a gateway to Seedance.

Every test runs the real server under uvicorn on loopback, talking HTTP to the fake, which
downloads references and the mirror is fetched back from it, as the hosted Ark would work.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path

import httpx
import pytest

from r2v.protocol import is_task_id
from tests.arkfake import FakeArk
from tests.conftest import METRICS_AUTH
from tests.mediafiles import decode_summary
from tests.refserver import RefServer
from tests.services import S3Server
from tests.upstreams import (
    FAST,
    STANDARD,
    ark_gateway,
    eventually,
    upstream_model,
    wait_task,
)


@pytest.fixture
def ark(media_dir: Path) -> FakeArk:
    with FakeArk(media_dir / "clip.mp4", run_seconds=0.3) as fake:
        yield fake


def create(client: httpx.Client, **fields: object) -> str:
    body = {"model": FAST, "prompt": "a quiet harbour at dawn", **fields}
    created = client.post("/v1/videos/generations", json=body)
    assert created.status_code == 200, created.text
    task_id: str = created.json()["id"]
    return task_id


def test_a_task_goes_to_ark_with_explicit_roles_and_comes_back_mirrored(
    tmp_path: Path, refserver: RefServer, ark: FakeArk
) -> None:
    images = [refserver.file_url("photo.jpg"), refserver.file_url("poster.png")]
    body = {
        "prompt": "@Image2 walks through @Video1 while @Audio1 plays, @Image1 behind",
        "image_urls": images,
        "video_urls": [refserver.file_url("clip.mp4")],
        "audio_urls": [refserver.file_url("tone.mp3")],
        "duration": -1,
        "callback_url": "https://hooks.example.com/r2v",
    }
    with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            task = wait_task(client, create(client, **body))
            assert task["status"] == "completed", task
            link = task["results"][0]
            metrics = client.get("/metrics", headers=METRICS_AUTH).text
            ark.shutdown()  # the upstream is gone: our copy must not care
            ark.server_close()
            video = httpx.get(link, timeout=30)
            again = client.get(f"/v1/tasks/{task['id']}").json()
    assert ark.creates == [
        {
            "model": "dreamina-seedance-2-0-fast-260128",
            "content": [
                {"type": "text", "text": body["prompt"]},
                {"type": "image_url", "image_url": {"url": images[0]}, "role": "reference_image"},
                {"type": "image_url", "image_url": {"url": images[1]}, "role": "reference_image"},
                {"type": "video_url", "video_url": {"url": refserver.file_url("clip.mp4")},
                 "role": "reference_video"},
                {"type": "audio_url", "audio_url": {"url": refserver.file_url("tone.mp3")},
                 "role": "reference_audio"},
            ],
            "resolution": "720p",
            "ratio": "adaptive",
            "duration": -1,
            "generate_audio": True,
            "watermark": False,
        }
    ]  # fmt: skip
    # byte for byte, still served once the upstream has stopped
    assert video.status_code == 200 and video.content == ark.video
    (tmp_path / "mirror.mp4").write_bytes(video.content)
    assert decode_summary(tmp_path / "mirror.mp4").video_frames == 48
    assert again["status"] == "completed"
    upstream_task = next(iter(ark.tasks.values()))
    assert task["task_info"]["seed"] == upstream_task.seed  # the seed the upstream used
    tokens = 1248 * 704 * 5 * 24 // 1024
    assert task["usage"]["upstream"] == {"completion_tokens": tokens, "total_tokens": tokens}
    assert task["task_info"]["video_duration"] == 2  # what the mirrored file holds
    assert (
        f'r2v_upstream_tokens_total{{model="{FAST}",upstream="ark:127.0.0.1"}} {float(tokens)}'
        in metrics
    )
    assert 'r2v_upstream_requests_total{outcome="create_ok",upstream="ark:127.0.0.1"} 1.0' in (
        metrics
    )


def test_seed_and_mention_words_go_as_asked(
    tmp_path: Path, refserver: RefServer, ark: FakeArk
) -> None:
    models = {
        FAST: upstream_model("ark", ark.url, ark.api_key),
        STANDARD: upstream_model(
            "ark",
            ark.url,
            ark.api_key,
            upstream_model="ep-20260101-abc",
            upstream_rewrite_mentions=True,
        ),
    }
    with ark_gateway(tmp_path / "data", refserver, ark, models=models) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            seeded = create(
                client, seed=1234, image_urls=[refserver.file_url("photo.jpg")],
                prompt="@Image1 in the rain", aspect_ratio="21:9", resolution="480p",
                generate_audio=False, duration=8,
            )  # fmt: skip
            worded = create(
                client, model=STANDARD, image_urls=[refserver.file_url("photo.jpg")],
                prompt="@图片1 在雨中",
            )  # fmt: skip
            assert wait_task(client, seeded)["task_info"]["seed"] == 1234
            assert wait_task(client, worded)["status"] == "completed"
    first, second = sorted(ark.creates, key=lambda body: body["model"])
    assert first["model"] == "dreamina-seedance-2-0-fast-260128"
    assert (first["seed"], first["ratio"], first["resolution"]) == (1234, "21:9", "480p")
    assert (first["duration"], first["generate_audio"]) == (8, False)
    assert first["content"][0]["text"] == "@Image1 in the rain"
    assert second["model"] == "ep-20260101-abc"
    assert "seed" not in second
    assert second["content"][0]["text"] == "图片1 在雨中"


FAILURES = {
    "[ark:fail=OutputVideoSensitiveContentDetected]": "content_policy_violation",
    "[ark:fail=InputImageRiskDetection]": "content_policy_violation",
    "[ark:fail=InvalidParameter.Duration]": "invalid_parameters",
    "[ark:fail=AccountOverdueError]": "upstream_unavailable",
    "[ark:fail=InternalServiceError]": "generation_failed",
    "[ark:expire]": "generation_timeout",
    "[ark:refuse=400:InvalidParameter]": "invalid_parameters",
    "[ark:refuse=400:InputTextSensitiveContentDetected]": "content_policy_violation",
    "[ark:refuse=403:AccessDenied]": "upstream_unavailable",
    "[ark:refuse=404:ModelNotOpen]": "upstream_unavailable",
    "[ark:refuse=402:PaymentRequired]": "generation_failed",
}


def test_every_upstream_failure_ends_the_task_with_a_stable_code(
    tmp_path: Path, refserver: RefServer, ark: FakeArk, caplog: pytest.LogCaptureFixture
) -> None:
    with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            with caplog.at_level(logging.INFO, logger="r2v"):
                ids = {marker: create(client, prompt=f"a storm {marker}") for marker in FAILURES}
                ended = {marker: wait_task(client, task_id) for marker, task_id in ids.items()}
    for marker, task in ended.items():
        code = re.search(r"(?:fail|refuse)=(?:\d+:)?([\w.]+)|\[ark:(expire)\]", marker)
        assert code is not None
        assert task["status"] == "failed", (marker, task)
        assert task["error"]["code"] == FAILURES[marker], (marker, task["error"])
        if "expire" not in marker:
            assert (code.group(1) or "") in task["error"]["message"]
    refused = sum(1 for marker in FAILURES if "refuse" in marker)
    assert len(ark.creates) == len(FAILURES) - refused  # refusals are not retried
    operator_errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(operator_errors) == 3  # AccountOverdueError, AccessDenied, ModelNotOpen


def test_a_wrong_key_or_model_is_the_operator_s_error(
    tmp_path: Path, refserver: RefServer, ark: FakeArk
) -> None:
    models = {
        FAST: upstream_model("ark", ark.url, "not-the-key"),
        STANDARD: upstream_model("ark", ark.url, ark.api_key, upstream_model="no-such-model"),
    }
    with ark_gateway(tmp_path / "data", refserver, ark, models=models) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            bad_key = wait_task(client, create(client))
            bad_model = wait_task(client, create(client, model=STANDARD))
    assert bad_key["error"]["code"] == "upstream_unavailable"
    assert "AuthenticationError" in bad_key["error"]["message"]
    assert bad_model["error"]["code"] == "upstream_unavailable"
    assert "InvalidEndpointOrModel.NotFound" in bad_model["error"]["message"]
    assert "not-the-key" not in str(bad_key)


def test_transient_503s_are_survived_and_fallbacks_take_over(
    tmp_path: Path, refserver: RefServer, ark: FakeArk, media_dir: Path
) -> None:
    with FakeArk(media_dir / "clip.mov", "other-key-" + "o" * 20, run_seconds=0.2) as backup:
        fallback = {"api": "ark", "url": backup.url, "api_key": backup.api_key}
        models = {FAST: upstream_model("ark", ark.url, ark.api_key, upstream_fallbacks=[fallback])}
        allow = {"fetch_allow_hosts": [refserver.host_port, ark.host_port, backup.host_port]}
        with ark_gateway(tmp_path / "data", refserver, ark, models=models, **allow) as (
            server,
            auth,
        ):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                # both refuse for now: the second round of the chain lands on the primary
                ark.create_statuses = [429]
                backup.create_statuses = [502]
                ark.get_statuses = [503, 503, 500]
                retried = wait_task(client, create(client, prompt="first"))
                assert retried["status"] == "completed", retried
                # the primary is down for this create: the backup takes it
                ark.create_statuses = [503]
                fell_back = wait_task(client, create(client, prompt="second"))
                assert fell_back["status"] == "completed", fell_back
                video = httpx.get(fell_back["results"][0], timeout=30).content
    assert [body["content"][0]["text"] for body in ark.creates] == ["first"]
    assert [body["content"][0]["text"] for body in backup.creates] == ["second"]
    assert backup.creates[0]["model"] == "dreamina-seedance-2-0-fast-260128"
    assert video == backup.video != ark.video
    assert ark.get_statuses == []  # every scripted failure was met, and survived


def test_cancel_is_forwarded_and_a_late_result_is_never_mirrored(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    with FakeArk(media_dir / "clip.mp4", queue_seconds=4.0, run_seconds=0.3) as ark:
        with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task_id = create(client)
                eventually(lambda: len(ark.creates) == 1 and ark.gets)
                pending = client.get(f"/v1/tasks/{task_id}").json()
                assert pending["status"] == "pending"  # queued upstream
                cancelled = client.delete(f"/v1/tasks/{task_id}")
                assert cancelled.status_code == 200
                assert cancelled.json()["error"]["code"] == "request_cancelled"
                eventually(lambda: ark.deletes == [next(iter(ark.tasks))], timeout=10)
                upstream_task = next(iter(ark.tasks.values()))
                eventually(
                    lambda: upstream_task.status(upstream_task.succeeds_at + 1) == "cancelled"
                )
                later = client.get(f"/v1/tasks/{task_id}").json()
            blobs = list((tmp_path / "data" / "blobs").rglob("*.mp4"))
    assert later["status"] == "failed" and later["error"]["code"] == "request_cancelled"
    assert blobs == []


def test_deleting_a_task_through_another_door_cancels_it_upstream(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    # OpenAI's DELETE cancels and then deletes the row: the gateway that held the task
    # finds it gone, and cancels what it sent upstream
    with FakeArk(media_dir / "clip.mp4", queue_seconds=4.0, run_seconds=0.3) as ark:
        with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task_id = create(client)
                eventually(lambda: len(ark.creates) == 1 and ark.gets)
                deleted = client.delete(f"/v1/videos/{task_id}")
                assert deleted.json() == {"id": task_id, "object": "video.deleted", "deleted": True}
                eventually(lambda: ark.deletes == [next(iter(ark.tasks))], timeout=10)
                gone = [client.get(path).status_code for path in (
                    f"/v1/tasks/{task_id}",
                    f"/v1/videos/{task_id}",
                    f"/api/v3/contents/generations/tasks/{task_id}",
                )]  # fmt: skip
                time.sleep(1.0)  # the upstream's (cancelled) task is never mirrored
            blobs = list((tmp_path / "data" / "blobs").rglob("*.mp4"))
    assert gone == [404, 404, 404]
    assert blobs == []


def test_pending_while_queued_upstream_then_processing_with_rising_progress(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    with FakeArk(media_dir / "clip.mp4", queue_seconds=2.0, run_seconds=2.0) as ark:
        with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task_id = create(client)
                eventually(lambda: ark.gets)  # queued upstream
                listed = {
                    status: [
                        t["id"] for t in client.get(f"/v1/tasks?status={status}").json()["data"]
                    ]
                    for status in ("pending", "processing")
                }
                assert listed == {"pending": [task_id], "processing": []}
                seen: list[tuple[str, int]] = []
                while True:
                    task = client.get(f"/v1/tasks/{task_id}").json()
                    seen.append((task["status"], task["progress"]))
                    if task["status"] in ("completed", "failed"):
                        break
    statuses = [status for status, _progress in seen]
    assert statuses[-1] == "completed"
    assert "pending" in statuses and "processing" in statuses
    # pending (r2v's checks, then Ark's queue), processing (Ark runs it), completed
    first_processing = statuses.index("processing")
    assert set(statuses[:first_processing]) == {"pending"}
    assert set(statuses[first_processing:-1]) == {"processing"}
    progress = [p for _status, p in seen]
    assert progress == sorted(progress)
    running = [p for status, p in seen if status == "processing"]
    assert running[-1] > running[0] and max(running) < 100


def test_fifty_upstream_tasks_are_in_flight_at_once_with_one_render_worker(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    with FakeArk(media_dir / "clip.mp4", run_seconds=2.0) as ark:
        with ark_gateway(tmp_path / "data", refserver, ark, workers=1) as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                ids = [create(client, prompt=f"wave {n}") for n in range(50)]
                ended = [wait_task(client, task_id, timeout=120) for task_id in ids]
    assert [task["status"] for task in ended] == ["completed"] * 50
    assert len(ark.creates) == 50
    # one render worker would have run them one after another; they overlapped instead
    assert ark.max_overlap() >= 40


def test_the_upstream_key_is_never_logged_or_shown(
    tmp_path: Path, refserver: RefServer, ark: FakeArk, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        with ark_gateway(tmp_path / "data", refserver, ark, log_level="debug") as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                ark.get_statuses = [503]
                echoed = wait_task(client, create(client, prompt="[ark:fail=X] [ark:echo-key]"))
                fine = wait_task(client, create(client))
                listed = client.get("/v1/tasks").text
                metrics = client.get("/metrics", headers=METRICS_AUTH).text
    assert "Bearer" in echoed["error"]["message"]  # the upstream did try to show it
    for text in (str(echoed), str(fine), listed, metrics, caplog.text):
        assert ark.api_key not in text
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").glob("r2v.db*"))
    assert ark.api_key.encode() not in stored


def test_ark_calls_back_and_r2v_polls_at_once_but_never_trusts_the_body(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    with FakeArk(media_dir / "clip.mp4", queue_seconds=2.0, run_seconds=1.0) as ark:
        slow_polls = {"upstream_poll_min_seconds": 60.0, "upstream_poll_max_seconds": 60.0}
        with ark_gateway(tmp_path / "data", refserver, ark, public=True, **slow_polls) as (
            server,
            auth,
        ):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task_id = create(client)
                eventually(lambda: len(ark.creates) == 1)
                callback = ark.creates[0]["callback_url"]
                assert callback.startswith(f"{server.url}/v1/upstream/ark/callback/{task_id}.")
                # a forged "succeeded" on the real callback URL is only a hint: r2v asks Ark,
                # which says queued
                forged = {"id": "cgt-x", "status": "succeeded",
                          "content": {"video_url": refserver.file_url("clip.mp4")}}  # fmt: skip
                assert httpx.post(callback, json=forged).status_code == 200
                assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "pending"
                # with polls a minute apart, only the callbacks can finish it this soon
                task = wait_task(client, task_id, timeout=20)
                assert task["status"] == "completed", task
                # another task's token, a tampered one, a stranger's: all 404
                other = callback.replace(task_id, "task-unified-1700000000-zzzzzzzz")
                for url in (other, callback[:-2] + "xx", f"{server.url}/v1/upstream/ark/callback/x",
                            f"{server.url}/v1/upstream/ark/callback/é.é"):  # fmt: skip
                    assert httpx.post(url, content=b"{}").status_code == 404
    assert ark.callback_answers[:3] == [200, 200, 200]
    assert sum(ark.gets.values()) <= 4  # polled on news, not on a timer


def test_uploads_reach_the_upstream_by_a_signed_link(
    tmp_path: Path, refserver: RefServer, ark: FakeArk, media_dir: Path
) -> None:
    photo = (media_dir / "photo.jpg").read_bytes()
    with ark_gateway(tmp_path / "data", refserver, ark, public=True) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            uploaded = client.post("/v1/files", files={"file": ("p.jpg", photo)}).json()
            task = wait_task(client, create(client, image_urls=[uploaded["url"]],
                                            prompt="@Image1 at night"))  # fmt: skip
            assert task["status"] == "completed", task
            sent = ark.creates[0]["content"][1]["image_url"]["url"]
            shared = httpx.get(sent)
            tampered = httpx.get(sent.replace("signature=", "signature=x"))
            other_file = httpx.get(sent.replace(uploaded["id"], "file-" + "a" * 24))
    assert sent.startswith(f"{server.url}/files/{uploaded['id']}/content?expires=")
    status, digest = ark.fetched[sent]
    assert status == 200 and digest == hashlib.sha256(photo).hexdigest()
    assert shared.headers["content-type"] == "image/jpeg"
    assert shared.headers["x-content-type-options"] == "nosniff"
    assert tampered.status_code == 403 and other_file.status_code == 403


def test_an_upload_without_a_public_url_fails_with_what_to_change(
    tmp_path: Path, refserver: RefServer, ark: FakeArk, media_dir: Path
) -> None:
    photo = (media_dir / "photo.jpg").read_bytes()
    with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            uploaded = client.post("/v1/files", files={"file": ("p.jpg", photo)}).json()
            task = wait_task(client, create(client, image_urls=[uploaded["url"]]))
    assert task["status"] == "failed"
    assert task["error"]["code"] == "reference_fetch_failed"
    assert "image_urls[0]" in task["error"]["message"]
    assert "R2V_PUBLIC_URL" in task["error"]["message"]
    assert ark.creates == []  # nothing was sent, nothing paid


def test_asset_ids_pass_through_untouched_and_only_upstream(
    tmp_path: Path, refserver: RefServer, ark: FakeArk
) -> None:
    models = {FAST: upstream_model("ark", ark.url, ark.api_key)}  # standard stays compositor
    with ark_gateway(tmp_path / "data", refserver, ark, models=models) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            task = wait_task(client, create(client, image_urls=["asset://asset-20260101-abc"],
                                            prompt="@Image1 smiles"))  # fmt: skip
            rendered = client.post(
                "/v1/videos/generations",
                json={"model": STANDARD, "prompt": "@Image1",
                      "image_urls": ["asset://asset-20260101-abc"]},
            )  # fmt: skip
            bad_form = client.post(
                "/v1/videos/generations",
                json={"model": FAST, "prompt": "x", "image_urls": ["asset://../etc"]},
            )
    assert task["status"] == "completed"
    assert ark.creates[0]["content"][1]["image_url"]["url"] == "asset://asset-20260101-abc"
    assert "asset://asset-20260101-abc" not in ark.fetched  # never fetched by anyone
    assert rendered.status_code == 400 and "image_urls[0]" in rendered.json()["error"]["message"]
    assert bad_form.status_code == 400


def test_a_hostile_upstream_ends_in_failed_tasks_and_the_server_goes_on(
    tmp_path: Path, refserver: RefServer, ark: FakeArk
) -> None:
    private = "http://10.11.12.13/video.mp4"
    cases = {
        "[ark:garbage-get]": "generation_failed",
        "[ark:huge-get]": "generation_failed",
        "[ark:bomb-get]": "generation_failed",
        "[ark:garbage-create]": "generation_failed",
        f"[ark:video={refserver.file_url('photo.jpg')}]": "generation_failed",
        f"[ark:video={refserver.file_url('tone.wav')}]": "generation_failed",
        f"[ark:video={refserver.file_url('broken.png')}]": "generation_failed",
        f"[ark:video={refserver.url('/status/404')}]": "generation_failed",
        f"[ark:video={private}]": "generation_failed",
        "[ark:video=ftp://example.com/v.mp4]": "generation_failed",
    }
    with ark_gateway(tmp_path / "data", refserver, ark) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            ids = {marker: create(client, prompt=f"hostile {marker}") for marker in cases}
            ended = {
                marker: wait_task(client, task_id, timeout=90) for marker, task_id in ids.items()
            }
            after = wait_task(client, create(client, prompt="a calm one"))
            health = client.get("/healthz").status_code
    for marker, task in ended.items():
        assert task["status"] == "failed", (marker, task)
        assert task["error"]["code"] == cases[marker], (marker, task["error"])
    assert (
        "not an MP4" in ended[f"[ark:video={refserver.file_url('photo.jpg')}]"]["error"]["message"]
    )
    assert "private" in ended[f"[ark:video={private}]"]["error"]["message"]
    for marker in ("[ark:garbage-get]", "[ark:huge-get]", "[ark:bomb-get]"):
        assert "not a task" in ended[marker]["error"]["message"], ended[marker]
    assert "answer is unusable" in ended["[ark:garbage-create]"]["error"]["message"]
    assert after["status"] == "completed" and health == 200


def test_a_restarted_gateway_resumes_the_same_upstream_task(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    # a graceful stop hands the task back; the next process polls the same upstream task
    data = tmp_path / "data"
    with FakeArk(media_dir / "clip.mp4", queue_seconds=0.5, run_seconds=2.0) as ark:
        with ark_gateway(data, refserver, ark) as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task_id = create(client)
                eventually(lambda: ark.gets)
        assert len(ark.creates) == 1
        with ark_gateway(data, refserver, ark) as (server, _new_auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task = wait_task(client, task_id)
    assert task["status"] == "completed", task
    assert len(ark.creates) == 1
    assert is_task_id(task_id)


def test_a_stranger_cannot_reach_other_files_through_the_shared_route(
    tmp_path: Path, refserver: RefServer, ark: FakeArk
) -> None:
    with ark_gateway(tmp_path / "data", refserver, ark, public=True) as (server, _auth):
        for path in (
            "/files/file-aaaaaaaaaaaaaaaaaaaaaaaa/content",
            "/files/file-aaaaaaaaaaaaaaaaaaaaaaaa/content?expires=9999999999&signature=é",
            "/files/..%2f..%2fr2v.db/content?expires=1&signature=x",
        ):
            answer = httpx.get(server.url + path)
            assert answer.status_code in (403, 404), (path, answer.status_code)


def test_uploads_kept_in_s3_reach_the_upstream_by_a_presigned_url(
    tmp_path: Path, refserver: RefServer, ark: FakeArk, media_dir: Path, s3_server: S3Server
) -> None:
    audio = (media_dir / "tone.mp3").read_bytes()
    with ark_gateway(tmp_path / "data", refserver, ark, **s3_server.settings()) as (server, auth):
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            uploaded = client.post("/v1/files", files={"file": ("t.mp3", audio)}).json()
            task = wait_task(
                client,
                create(
                    client,
                    image_urls=[refserver.file_url("photo.jpg")],
                    audio_urls=[uploaded["url"]],
                    prompt="@Image1 sings @Audio1",
                ),
            )
    assert task["status"] == "completed", task
    sent = ark.creates[0]["content"][2]["audio_url"]["url"]
    assert sent.startswith(s3_server.endpoint) and "X-Amz-Signature=" in sent
    assert ark.fetched[sent] == (200, hashlib.sha256(audio).hexdigest())
