"""Signed result links: HMAC over path and expiry."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from r2v.api.app import create_app
from r2v.api.services import ApiServices
from r2v.bootstrap import Runtime
from r2v.errors import LinkExpired, LinkInvalid
from r2v.protocol import FAST_MODEL, CreateVideoRequest
from r2v.tasks.links import LinkSigner, result_path
from r2v.tasks.service import TaskService
from r2v.tasks.stills import result_key

PATH = result_path("task-unified-1700000000-abcdefgh")


def parts(link: str) -> tuple[str, str, str]:
    split = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    return split.path, query["expires"], query["signature"]


def test_a_signed_link_verifies_until_it_expires() -> None:
    signer = LinkSigner(b"s" * 32, ttl_seconds=86400)
    path, expires, signature = parts(signer.sign(PATH, now=1000))
    assert path == PATH
    assert int(expires) == 1000 + 86400
    signer.verify(path, expires, signature, now=1000 + 86400)
    with pytest.raises(LinkExpired):
        signer.verify(path, expires, signature, now=1000 + 86401)


@pytest.mark.parametrize("field", ["path", "expires", "signature", "secret"])
def test_tampering_with_any_part_is_refused(field: str) -> None:
    signer = LinkSigner(b"s" * 32, ttl_seconds=60)
    path, expires, signature = parts(signer.sign(PATH, now=1000))
    if field == "path":
        path = result_path("task-unified-1700000000-zzzzzzzz")
    elif field == "expires":
        expires = str(int(expires) + 3600)
    elif field == "signature":
        signature = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    else:
        signer = LinkSigner(b"t" * 32, ttl_seconds=60)
    with pytest.raises(LinkInvalid):
        signer.verify(path, expires, signature, now=1000)


@pytest.mark.parametrize(("expires", "signature"), [(None, "x"), ("1", None), ("abc", "x")])
def test_unsigned_links_are_refused(expires: str | None, signature: str | None) -> None:
    with pytest.raises(LinkInvalid):
        LinkSigner(b"s" * 32, 60).verify(PATH, expires, signature, now=0)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        LinkSigner(b"short", 60)


def test_a_result_link_answers_until_its_expiry_then_410(runtime: Runtime, tmp_path: Path) -> None:
    # a clock of our own: a link signed at 1000.9 with a 1 s lifetime expires at 1001, so
    # it lives 0.1 s (expiries are whole seconds); no sleeping test could rely on that
    now = [1000.9]
    tasks = TaskService(
        runtime.store,
        runtime.blobs,
        LinkSigner(b"s" * 32, ttl_seconds=1),
        lambda _request: 10,
        limits_of=runtime.keys.limits,
        clock=lambda: now[0],
    )
    key = runtime.keys.create("links")
    request = CreateVideoRequest(model=FAST_MODEL, prompt="fog")
    task_id = tasks.create(key.key, request).id
    record = runtime.store.claim("w", 30, now[0])
    assert record is not None and record.id == task_id
    video = tmp_path / "video.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    runtime.blobs.put(result_key(task_id), video)
    assert runtime.store.complete(
        task_id, 1, result_key=result_key(task_id), video_duration=4, now=now[0],
        result_expires_at=now[0] + 86400,
    )  # fmt: skip
    app = create_app(ApiServices(tasks=tasks, keys=runtime.keys, files=runtime.files))
    with TestClient(app) as api:
        auth = {"Authorization": f"Bearer {key.secret}"}
        link = api.get(f"/v1/tasks/{task_id}", headers=auth).json()["results"][0]
        assert parts(link)[1] == "1001"
        for at, status in ((1000.9, 200), (1001.0, 200), (1001.01, 410)):
            now[0] = at
            answer = api.get(link)
            assert answer.status_code == status, at
        assert "expired" in answer.json()["error"]["message"]
