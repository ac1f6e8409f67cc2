"""Ark's door, driven by the official Ark SDKs (`byteplussdkarkruntime` and
`volcenginesdkarkruntime`) against a real uvicorn on loopback.

Two servers serve the module: `busy` renders (one worker, the compositor), `idle` has no
worker, so its tasks stay queued and tests that need no video cost no render. Each test makes
its own key, so every list total below counts that test's tasks only. Videos are checked by
decoding them; webhooks by verifying their signatures.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from standardwebhooks import Webhook

from r2v.bootstrap import Runtime, build_runtime
from r2v.protocol import OUTPUT_SIZES
from r2v.tasks.keys import CreatedKey
from tests import mediafiles
from tests.conftest import LiveServer, make_settings, wait_for
from tests.flakyproxy import FlakyProxy
from tests.mediafiles import decode_summary, decoded_frames, difference, make_image
from tests.refserver import RefServer
from tests.test_webhooks import Receiver

FAST = "seedance-2.0-fast-reference-to-video"
STANDARD = "seedance-2.0-reference-to-video"
FAST_ALIAS = "dreamina-seedance-2-0-fast-260128"
STANDARD_ALIAS = "doubao-seedance-2-0-260128"
TASKS = "/api/v3/contents/generations/tasks"
SIZE = OUTPUT_SIZES["480p"]["16:9"]  # (864, 496)
UNFINISHED = ("queued", "running")
SDK_NAMES = ("byteplussdkarkruntime", "volcenginesdkarkruntime")

Frame = NDArray[np.uint8]


# --- the two SDKs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sdk:
    """One official Ark SDK: its client class and its exception module."""

    name: str
    package: ModuleType
    errors: ModuleType

    def client(self, url: str, secret: str, **options: Any) -> Any:
        return self.package.Ark(base_url=url + "/api/v3", api_key=secret, timeout=30, **options)


def load_sdk(name: str) -> Sdk:
    return Sdk(name, importlib.import_module(name), importlib.import_module(f"{name}._exceptions"))


BYTEPLUS = load_sdk("byteplussdkarkruntime")


@pytest.fixture(params=SDK_NAMES)
def sdk(request: pytest.FixtureRequest) -> Sdk:
    return load_sdk(request.param)


# --- the servers ----------------------------------------------------------------------


@dataclass
class Site:
    """A live r2v and what the tests need of it."""

    runtime: Runtime
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url

    def key(self, name: str = "ark", **limits: int) -> CreatedKey:
        return self.runtime.keys.create(name, **limits)

    def ark(self, key: CreatedKey, sdk: Sdk = BYTEPLUS, **options: Any) -> Any:
        return sdk.client(self.url, key.secret, **options)

    def http(self, key: CreatedKey) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key.secret}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.shutdown()
    hooks.server_close()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RefServer]:
    """Two 16:9 pictures, clearly unlike each other, behind their own loopback server."""
    root = tmp_path_factory.mktemp("ark-pictures")
    make_image(root / "first.jpg", 960, 540, "JPEG", seed=41)
    make_image(root / "last.png", 960, 540, "PNG", seed=42)
    with RefServer(root) as server:
        yield server


@contextmanager
def site_of(
    tmp_path_factory: pytest.TempPathFactory, refserver: RefServer, **overrides: Any
) -> Iterator[Site]:
    """A runtime from conftest's settings (with `overrides`) under a live uvicorn."""
    runtime = build_runtime(
        make_settings(tmp_path_factory.mktemp("ark-data"), refserver, **overrides)
    )
    try:
        with LiveServer(runtime) as server:
            yield Site(runtime, server)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def busy(
    tmp_path_factory: pytest.TempPathFactory,
    refserver: RefServer,
    pictures: RefServer,
    receiver: Receiver,
) -> Iterator[Site]:
    """A server that renders (one worker) and may post webhooks to `receiver`."""
    with site_of(
        tmp_path_factory,
        refserver,
        fetch_allow_hosts=[refserver.host_port, pictures.host_port, receiver.host_port],
        webhook_retry_base_seconds=0.2,
        webhook_max_attempts=3,
    ) as site:
        yield site


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory, refserver: RefServer) -> Iterator[Site]:
    """A server with no worker: its tasks stay queued."""
    with site_of(tmp_path_factory, refserver, workers=0) as site:
        yield site


# --- helpers --------------------------------------------------------------------------


def text(prompt: str) -> dict[str, Any]:
    return {"type": "text", "text": prompt}


def image(url: str, role: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role is not None:
        item["role"] = role
    return item


def quick(prompt: str = "a calm sea at dawn", *items: dict[str, Any], **changes: Any) -> Any:
    """Create arguments for a fast 480p 4 s 16:9 video (about a second to render)."""
    return {
        "model": FAST_ALIAS,
        "content": [text(prompt), *items],
        "resolution": "480p",
        "ratio": "16:9",
        "duration": 4,
    } | changes


def finish(client: Any, task_id: str, timeout: float = 60.0) -> Any:
    """Poll `tasks.get` until the task leaves queued/running."""
    deadline = time.monotonic() + timeout
    while True:
        task = client.content_generation.tasks.get(task_id=task_id)
        if task.status not in UNFINISHED:
            return task
        assert time.monotonic() < deadline, f"{task_id} still {task.status} after {timeout} s"
        time.sleep(0.2)


def reach(client: Any, task_id: str, status: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while (task := client.content_generation.tasks.get(task_id=task_id)).status != status:
        assert time.monotonic() < deadline, f"{task_id} is {task.status}, never {status}"
        time.sleep(0.1)
    return task


def listed(client: Any, **filters: Any) -> tuple[int, list[str]]:
    page = client.content_generation.tasks.list(**filters)
    return page.total, [item.id for item in page.items]


def download(url: str, path: Path) -> Path:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def fitted(path: Path) -> Frame:
    """A picture as a pinned 480p 16:9 frame shows it."""
    return mediafiles.fitted(path, SIZE)


def refused(call: Callable[[], Any], error: type[Exception]) -> Any:
    """The SDK's exception raised by `call`, checked to be exactly `error`."""
    with pytest.raises(error) as caught:
        call()
    exc: Any = caught.value
    assert type(caught.value) is error
    # every error names its request: the id the SDK sent, echoed back
    assert exc.response.headers["x-request-id"] == exc.request_id != ""
    return exc


# --- the main flow, through each SDK --------------------------------------------------


@pytest.mark.slow
def test_create_poll_download_list_delete(
    busy: Site, sdk: Sdk, refserver: RefServer, tmp_path: Path
) -> None:
    key = busy.key()
    client = busy.ark(key, sdk)
    tasks = client.content_generation.tasks
    photo = image(refserver.file_url("photo.jpg"), "reference_image")
    made = tasks.create(**quick("@Image1 walks along the shore", photo, seed=11))
    assert made.id.startswith("task-unified-")

    task = finish(client, made.id)
    assert task.status == "succeeded", task.error
    assert task.model in (FAST, FAST_ALIAS)
    assert (task.resolution, task.ratio, task.duration) == ("480p", "16:9", 4)
    assert (task.frames, task.framespersecond, task.seed) == (96, 24, 11)
    assert task.usage.completion_tokens == SIZE[0] * SIZE[1] * 96 // 1024
    assert task.content.last_frame_url is None, "no last frame was asked for"
    assert task.error is None

    video = decode_summary(download(task.content.video_url, tmp_path / "video.mp4"))
    assert (video.width, video.height) == SIZE
    assert video.video_frames == 96
    assert video.video_duration == pytest.approx(4.0, abs=1 / 24)
    assert video.has_audio and video.audio_duration == pytest.approx(4.0, abs=0.1)

    assert listed(client) == (1, [made.id])
    assert listed(client, status="succeeded") == (1, [made.id])

    tasks.delete(made.id)  # Ark answers `{}`
    gone = refused(lambda: tasks.get(task_id=made.id), sdk.errors.ArkNotFoundError)
    assert gone.status_code == 404 and gone.code == "NotFound"
    assert made.id in gone.body["message"]
    assert httpx.get(task.content.video_url).status_code in (404, 410)
    assert listed(client) == (0, [])


# --- JSON nulls are absent fields -----------------------------------------------------


def test_the_sdk_s_nulls_are_absent_fields(idle: Site, sdk: Sdk) -> None:
    key = idle.key()
    sent: list[dict[str, Any]] = []

    def capture(request: httpx.Request) -> None:
        if request.method == "POST":
            sent.append(json.loads(request.content))

    with httpx.Client(event_hooks={"request": [capture]}) as transport:
        client = idle.ark(key, sdk, http_client=transport)
        made = client.content_generation.tasks.create(model=FAST_ALIAS, content=[text("fog")])
        task = client.content_generation.tasks.get(task_id=made.id)
    (body,) = sent
    nulls = {name for name, value in body.items() if value is None}
    assert set(body) - nulls == {"model", "content"}
    assert {"ratio", "duration", "resolution", "draft", "camera_fixed", "frames"} <= nulls
    # every unset field took its default
    assert task.status == "queued"
    assert (task.resolution, task.duration, task.ratio) == ("720p", 5, "adaptive")
    assert task.generate_audio is True


def test_a_body_with_every_ark_field_null_is_taken(idle: Site) -> None:
    key = idle.key()
    nulls = dict.fromkeys(
        (
            "resolution ratio duration frames seed generate_audio callback_url "
            "return_last_frame watermark service_tier execution_expires_after priority "
            "safety_identifier draft camera_fixed output_format omni_reference_task_type tools"
        ).split()
    )
    item = {"type": "text", "text": "a quiet harbour", "image_url": None, "video_url": None,
            "audio_url": None, "role": None}  # fmt: skip
    with idle.http(key) as http:
        created = http.post(TASKS, json={"model": FAST_ALIAS, "content": [item], **nulls})
        assert created.status_code == 200, created.text
        task = http.get(f"{TASKS}/{created.json()['id']}").json()
    assert task["status"] == "queued"
    assert (task["resolution"], task["duration"], task["seed"] >= 0) == ("720p", 5, True)


# --- the last frame -------------------------------------------------------------------


@pytest.mark.slow
def test_return_last_frame_serves_the_video_s_last_frame(busy: Site, tmp_path: Path) -> None:
    client = busy.ark(busy.key())
    made = client.content_generation.tasks.create(**quick("waves", return_last_frame=True))
    task = finish(client, made.id)
    assert task.status == "succeeded", task.error
    link = task.content.last_frame_url
    assert link.startswith(busy.url + f"/results/{made.id}/last_frame.png?")

    png = download(link, tmp_path / "last.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    picture = np.asarray(Image.open(png).convert("RGB"))
    frames = decoded_frames(download(task.content.video_url, tmp_path / "video.mp4"))
    assert picture.shape == frames[-1].shape == (SIZE[1], SIZE[0], 3)
    assert difference(picture, frames[-1]) < 1.5, "the PNG is the video's last frame"
    assert difference(picture, frames[0]) > difference(picture, frames[-1])

    path, _query = link.split("?")
    video_query = task.content.video_url.split("?")[1]
    for bad in (
        path,  # unsigned
        link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB"),  # signature altered
        f"{path}?{video_query}",  # the video's signature on the picture's path
    ):
        answer = httpx.get(bad)
        assert answer.status_code == 403, bad
        assert answer.content[:4] != b"\x89PNG"
    client.content_generation.tasks.delete(made.id)
    assert httpx.get(link).status_code in (404, 410), "a deleted task's picture is gone"


# --- first and last frame roles -------------------------------------------------------


@pytest.mark.slow
def test_first_and_last_frame_roles_pin_the_video_s_ends(
    busy: Site, pictures: RefServer, tmp_path: Path
) -> None:
    client = busy.ark(busy.key())
    first, last = pictures.root / "first.jpg", pictures.root / "last.png"
    made = client.content_generation.tasks.create(
        **quick(
            "the harbour at dusk",
            image(pictures.file_url("last.png"), "last_frame"),
            image(pictures.file_url("first.jpg"), "first_frame"),
        )
    )
    task = finish(client, made.id)
    assert task.status == "succeeded", task.error
    frames = decoded_frames(download(task.content.video_url, tmp_path / "pinned.mp4"))
    assert difference(frames[0], fitted(first)) < 4, "the video opens on the first_frame"
    assert difference(frames[-1], fitted(last)) < 4, "the video ends on the last_frame"
    assert difference(frames[0], fitted(last)) > 20
    assert difference(frames[-1], fitted(first)) > 20


@pytest.mark.slow
def test_an_image_without_a_role_is_the_first_frame(
    busy: Site, pictures: RefServer, tmp_path: Path
) -> None:
    client = busy.ark(busy.key())
    made = client.content_generation.tasks.create(
        **quick(
            "the harbour",
            image(pictures.file_url("last.png"), "reference_image"),
            image(pictures.file_url("first.jpg")),
        )
    )
    task = finish(client, made.id)
    assert task.status == "succeeded", task.error
    frames = decoded_frames(download(task.content.video_url, tmp_path / "roleless.mp4"))
    first = fitted(pictures.root / "first.jpg")
    assert difference(frames[0], first) < 4, "a role-less image opens the video"
    assert difference(frames[0], fitted(pictures.root / "last.png")) > 20


# --- resends --------------------------------------------------------------------------


@pytest.fixture
def proxy(idle: Site) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(idle.url)
    yield flaky
    flaky.shutdown()
    flaky.server_close()


@pytest.mark.parametrize("trouble", ["fail_next", "drop_next"])
def test_a_create_resent_after_a_lost_answer_is_one_task(
    idle: Site, proxy: FlakyProxy, trouble: str
) -> None:
    # the create reaches r2v and is stored; the SDK sees a 502 (or a cut connection) and
    # sends the same body again, which must answer the stored task
    key = idle.key()
    getattr(proxy, trouble)[("POST", TASKS)] = 1
    client = BYTEPLUS.client(proxy.url, key.secret)
    made = client.content_generation.tasks.create(**quick("a lighthouse"))
    assert proxy.forwarded.count(("POST", TASKS)) == 2, "the SDK resent the create"
    assert listed(idle.ark(key)) == (1, [made.id])
    with idle.http(key) as http:
        stored = http.get("/v1/tasks").json()["data"]
    assert [task["id"] for task in stored] == [made.id]


def test_identical_creates_within_the_window_are_one_task(idle: Site) -> None:
    key = idle.key()
    tasks = idle.ark(key).content_generation.tasks
    body = quick("a red kite")
    first, again = tasks.create(**body).id, tasks.create(**body).id
    assert again == first
    assert tasks.create(**quick("a blue kite")).id != first, "another body is another task"
    # an Idempotency-Key overrides the window: distinct keys, distinct tasks
    keyed = [tasks.create(**body, extra_headers={"Idempotency-Key": k}).id for k in "aab"]
    assert keyed[0] == keyed[1] != keyed[2]
    assert first not in keyed
    assert listed(idle.ark(key))[0] == 4


def test_without_a_window_identical_creates_are_two_tasks(
    tmp_path_factory: pytest.TempPathFactory, refserver: RefServer
) -> None:
    with site_of(tmp_path_factory, refserver, workers=0, ark_retry_window_seconds=0) as site:
        key = site.key()
        tasks = site.ark(key).content_generation.tasks
        body = quick("a red kite")
        assert tasks.create(**body).id != tasks.create(**body).id
        same = [tasks.create(**body, extra_headers={"Idempotency-Key": "k1"}).id for _ in "ab"]
        assert same[0] == same[1]
        assert listed(site.ark(key))[0] == 3


# --- errors ---------------------------------------------------------------------------

CREATE_ERRORS: list[tuple[str, dict[str, Any], str, str, tuple[str, ...]]] = [
    # (case, create arguments, Ark code, param, words the message carries)
    ("unknown model", quick(model="seedance-1-0-pro-250528"), "InvalidParameter", "model",
     ("seedance-1-0-pro-250528", FAST, STANDARD, FAST_ALIAS)),
    ("bad ratio", quick(ratio="5:4"), "InvalidParameter", "ratio", ("ratio", "16:9")),
    ("1080p", quick(resolution="1080p"), "InvalidParameter", "resolution", ("480p", "720p")),
    ("no text", quick(content=[image("https://example.com/a.png", "reference_image")]),
     "MissingParameter", "content", ("text",)),
    ("two texts", quick(content=[text("a"), text("b")]), "InvalidParameter", "content",
     ("exactly one text item", "got 2")),
    ("data url", quick("x", image("data:image/png;base64,iVBORw0KGgo=", "reference_image")),
     "InvalidParameter", "content[1].image_url.url", ("data URL", "/v1/files")),
    ("draft", quick(draft=True), "InvalidParameter", "draft", ("draft",)),
    ("camera_fixed", quick(camera_fixed=True), "InvalidParameter", "camera_fixed",
     ("camera",)),
    ("frames", quick(frames=100), "InvalidParameter", "frames", ("24",)),
    ("tools", quick(extra_body={"tools": [{"type": "web_search"}]}), "InvalidParameter",
     "tools", ("tools",)),
    ("role", quick("x", image("https://example.com/a.png", "reference_video")),
     "InvalidParameter", "content[1].role", ("reference_video", "first_frame")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "code", "param", "words"),
    [case[1:] for case in CREATE_ERRORS],
    ids=[case[0] for case in CREATE_ERRORS],
)
def test_refused_creates_raise_the_sdk_s_bad_request(
    idle: Site, sdk: Sdk, arguments: dict[str, Any], code: str, param: str, words: tuple[str, ...]
) -> None:
    client = idle.ark(idle.key(), sdk, max_retries=0)
    exc = refused(
        lambda: client.content_generation.tasks.create(**arguments),
        sdk.errors.ArkBadRequestError,
    )
    assert (exc.status_code, exc.code, exc.param, exc.type) == (400, code, param, "BadRequest")
    for word in words:
        assert word in exc.body["message"], exc.body
    assert listed(client) == (0, []), "nothing refused was stored"


SOUND = {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"},
         "role": "reference_audio"}  # fmt: skip
THIRTEEN = (
    [image(f"https://example.com/{n}.png", "reference_image") for n in range(9)]
    + [{"type": "video_url", "video_url": {"url": f"https://example.com/{n}.mp4"},
        "role": "reference_video"} for n in range(3)]
    + [SOUND]
)  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        (quick("x", image("http://10.0.0.1/a.png", "reference_image")), "content[1]"),
        (quick("x", *THIRTEEN), "content"),
        (quick("x", SOUND), "content"),
    ],
    ids=["private address", "13 references", "audio alone"],
)
def test_refusals_of_the_references_name_ark_s_fields(
    idle: Site, arguments: dict[str, Any], param: str
) -> None:
    # rules the task service checks (a private address, the total of references, audio
    # needing a picture) must still speak of the Ark body's `content`, not of /v1's
    # `image_urls`, which an Ark client never sent
    client = idle.ark(idle.key(), max_retries=0)
    exc = refused(
        lambda: client.content_generation.tasks.create(**arguments),
        BYTEPLUS.errors.ArkBadRequestError,
    )
    assert exc.code == "InvalidParameter"
    assert "_urls" not in exc.body["message"], exc.body
    assert exc.param is not None and exc.param.startswith(param), exc.body
    assert listed(client) == (0, [])


def test_a_wrong_key_and_bad_ids_raise_their_sdk_errors(idle: Site, sdk: Sdk) -> None:
    key = idle.key()
    stranger = sdk.client(idle.url, "r2v_not-a-key", max_retries=0)
    for call in (
        lambda: stranger.content_generation.tasks.create(**quick()),
        lambda: stranger.content_generation.tasks.get(task_id="task-unified-1700000000-abcdefgh"),
        lambda: stranger.content_generation.tasks.list(),
    ):
        exc = refused(call, sdk.errors.ArkAuthenticationError)
        assert (exc.status_code, exc.code, exc.type) == (401, "AuthenticationError", "Unauthorized")
        assert exc.body["message"]

    tasks = idle.ark(key, sdk, max_retries=0).content_generation.tasks
    malformed = refused(lambda: tasks.get(task_id="not-a-task"), sdk.errors.ArkBadRequestError)
    assert (malformed.code, malformed.param) == ("InvalidParameter", "task_id")
    assert "task-unified-" in malformed.body["message"]
    unknown = "task-unified-1700000000-abcdefgh"
    missing = refused(lambda: tasks.get(task_id=unknown), sdk.errors.ArkNotFoundError)
    assert missing.code == "NotFound" and unknown in missing.body["message"]
    refused(lambda: tasks.delete(unknown), sdk.errors.ArkNotFoundError)


def test_the_rate_limit_raises_the_sdk_s_rate_limit_error(idle: Site, sdk: Sdk) -> None:
    key = idle.key("slow", rate_per_minute=1)  # a burst of one
    tasks = idle.ark(key, sdk, max_retries=0).content_generation.tasks
    tasks.create(**quick("one"))
    exc = refused(lambda: tasks.create(**quick("two")), sdk.errors.ArkRateLimitError)
    assert (exc.status_code, exc.code, exc.type) == (429, "RateLimitExceeded", "TooManyRequests")
    assert 1 <= int(exc.response.headers["retry-after"]) <= 60
    assert exc.body["message"]
    assert listed(idle.ark(key))[0] == 1


# --- across doors and keys ------------------------------------------------------------


@pytest.mark.slow
def test_v1_tasks_show_through_ark_and_ark_tasks_through_v1(
    busy: Site, refserver: RefServer
) -> None:
    key = busy.key()
    client = busy.ark(key)
    with busy.http(key) as http:
        v1 = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}
        done = http.post("/v1/videos/generations", json=v1).json()["id"]
        broken = http.post(
            "/v1/videos/generations",
            json=v1 | {"prompt": "@Image1", "image_urls": [refserver.file_url("page.jpg")]},
        ).json()["id"]
        assert wait_for(http, done, {})["status"] == "completed"
        assert wait_for(http, broken, {})["status"] == "failed"
        made = client.content_generation.tasks.create(**quick("a calm lake"))
        ark_done = finish(client, made.id)
        seen = http.get(f"/v1/tasks/{made.id}").json()
    succeeded = client.content_generation.tasks.get(task_id=done)
    assert succeeded.status == "succeeded" and succeeded.content.video_url
    assert (succeeded.ratio, succeeded.duration, succeeded.frames) == ("16:9", 4, 96)
    failed = client.content_generation.tasks.get(task_id=broken)
    assert failed.status == "failed" and failed.error.code == "reference_invalid"
    assert failed.error.message
    assert ark_done.status == "succeeded"
    assert seen["status"] == "completed" and seen["results"]


def test_queued_and_cancelled_v1_tasks_show_through_ark(idle: Site) -> None:
    key = idle.key()
    client = idle.ark(key)
    with idle.http(key) as http:
        v1 = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}
        waiting, stopped = (http.post("/v1/videos/generations", json=v1 | {"seed": s}).json()
                            for s in (1, 2))  # fmt: skip
        assert http.delete(f"/v1/tasks/{stopped['id']}").status_code == 200
        made = client.content_generation.tasks.create(**quick())
        seen = http.get(f"/v1/tasks/{made.id}")
    assert client.content_generation.tasks.get(task_id=waiting["id"]).status == "queued"
    cancelled = client.content_generation.tasks.get(task_id=stopped["id"])
    assert cancelled.status == "cancelled" and cancelled.error.code == "request_cancelled"
    assert seen.status_code == 200 and seen.json()["status"] == "pending"
    assert seen.json()["model"] == FAST


def test_one_key_never_reaches_another_s_tasks(idle: Site) -> None:
    owner, other = idle.key("a"), idle.key("b")
    mine = idle.ark(owner).content_generation.tasks.create(**quick()).id
    theirs = idle.ark(other, max_retries=0).content_generation.tasks
    not_found = BYTEPLUS.errors.ArkNotFoundError
    refused(lambda: theirs.get(task_id=mine), not_found)
    refused(lambda: theirs.delete(mine), not_found)
    assert listed(idle.ark(other)) == (0, [])
    assert listed(idle.ark(other), task_ids=[mine]) == (0, [])
    with idle.http(other) as http:
        assert http.get(f"/v1/tasks/{mine}").status_code == 404
        assert http.delete(f"/v1/tasks/{mine}").status_code == 404
        assert http.get("/v1/tasks").json()["data"] == []
    # the owner's task is untouched by all that
    assert idle.ark(owner).content_generation.tasks.get(task_id=mine).status == "queued"


# --- listing --------------------------------------------------------------------------


def test_list_pages_newest_first_and_filters_by_id_and_model(idle: Site) -> None:
    key = idle.key()
    client = idle.ark(key)
    tasks = client.content_generation.tasks
    models = [FAST_ALIAS, STANDARD_ALIAS, FAST_ALIAS, STANDARD, FAST]
    ids = [tasks.create(**quick(f"scene {n}", model=m)).id for n, m in enumerate(models)]
    newest = ids[::-1]

    pages = [listed(client, page_num=n, page_size=2) for n in (1, 2, 3, 4)]
    assert [total for total, _ in pages] == [5, 5, 5, 5]
    assert [page for _, page in pages] == [newest[0:2], newest[2:4], newest[4:], []]
    assert listed(client, page_size=500) == (5, newest)

    assert listed(client, task_ids=[ids[0], ids[3]]) == (2, [ids[3], ids[0]])
    assert listed(client, task_ids=ids[1]) == (1, [ids[1]])
    assert listed(client, task_ids=[ids[1]], status="succeeded") == (0, [])
    fast = [i for i, m in zip(ids, models, strict=True) if m in (FAST, FAST_ALIAS)][::-1]
    standard = [i for i in newest if i not in fast]
    assert listed(client, model=FAST_ALIAS) == (3, fast)
    assert listed(client, model="doubao-seedance-2-0-fast-260128") == (3, fast)
    assert listed(client, model=FAST) == (3, fast)
    assert listed(client, model=STANDARD_ALIAS) == (2, standard)
    assert listed(client, model="dreamina-seedance-2-0-260128") == (2, standard)
    assert listed(client, model="seedance-1-0-pro-250528") == (0, [])
    assert listed(client, status="queued") == (5, newest)


@pytest.mark.parametrize(
    ("name", "value"),
    [("page_size", 0), ("page_size", 501), ("page_num", 0), ("filter.status", "done")],
)
def test_list_refuses_values_out_of_range_naming_the_parameter(
    idle: Site, name: str, value: str | int
) -> None:
    key = idle.key()
    with idle.http(key) as http:
        answer = http.get(TASKS, params={name: value})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["type"]) == ("InvalidParameter", "BadRequest")
    assert name in error["message"], error
    assert error["param"] == name, error
    if name == "page_size" and value:  # the SDK skips a page_size of 0 (falsy)
        tasks = idle.ark(key, max_retries=0).content_generation.tasks
        exc = refused(lambda: tasks.list(page_size=value), BYTEPLUS.errors.ArkBadRequestError)
        assert (exc.code, exc.param) == ("InvalidParameter", "page_size")


@pytest.mark.slow
def test_list_filters_by_each_status(busy: Site, refserver: RefServer) -> None:
    key = busy.key()
    client = busy.ark(key)
    tasks = client.content_generation.tasks
    done = tasks.create(**quick("sunrise")).id
    broken = tasks.create(**quick("@Image1", image(refserver.file_url("page.jpg")))).id
    assert finish(client, done).status == "succeeded"
    assert finish(client, broken).status == "failed"
    # a reference that arrives a byte every 0.2 s holds the one worker: the next one waits
    slow = image(refserver.url("/drip?seconds=30"), "reference_image")
    running = tasks.create(**quick("@Image1 drifts", slow)).id
    reach(client, running, "running")
    queued = tasks.create(**quick("dusk")).id
    assert tasks.get(task_id=queued).status == "queued"

    assert listed(client) == (4, [queued, running, broken, done])
    for status, expected in (("succeeded", [done]), ("failed", [broken]),
                             ("running", [running]), ("queued", [queued]),
                             ("cancelled", []), ("expired", [])):  # fmt: skip
        assert listed(client, status=status) == (len(expected), expected), status

    # DELETE of an unfinished task cancels it, and it stays readable
    tasks.delete(queued)
    tasks.delete(running)
    for task_id in (queued, running):
        cancelled = tasks.get(task_id=task_id)
        assert cancelled.status == "cancelled", task_id
        assert cancelled.error.code == "request_cancelled"
    assert listed(client, status="cancelled") == (2, [queued, running])
    assert listed(client, status="failed") == (1, [broken])
    time.sleep(1.5)  # the worker lets go of the cancelled render within a second
    assert tasks.get(task_id=running).status == "cancelled"
    night = finish(client, tasks.create(**quick("night")).id)
    assert night.status == "succeeded"

    # past the retention period the videos are deleted: succeeded tasks become expired
    busy.runtime.housekeeper.sweep(now=time.time() + busy.runtime.settings.retention_seconds + 60)
    assert listed(client, status="expired") == (2, [night.id, done])
    assert listed(client, status="succeeded") == (0, [])
    expired = tasks.get(task_id=done)
    assert expired.status == "expired" and expired.content is None
    assert httpx.get(night.content.video_url).status_code in (404, 410)


# --- DELETE: cancel, then delete ------------------------------------------------------


def test_delete_cancels_a_queued_task_then_deletes_it(idle: Site) -> None:
    key = idle.key()
    tasks = idle.ark(key, max_retries=0).content_generation.tasks
    made = tasks.create(**quick()).id
    tasks.delete(made)
    cancelled = tasks.get(task_id=made)
    assert cancelled.status == "cancelled" and cancelled.error.code == "request_cancelled"
    with idle.http(key) as http:
        seen = http.get(f"/v1/tasks/{made}").json()
        assert (seen["status"], seen["error"]["code"]) == ("failed", "request_cancelled")
        # as the SDKs send it, with a `{}` body
        raw = http.request("DELETE", f"{TASKS}/{made}", json={})
        assert raw.status_code == 200 and raw.json() == {}
    refused(lambda: tasks.get(task_id=made), BYTEPLUS.errors.ArkNotFoundError)
    refused(lambda: tasks.delete(made), BYTEPLUS.errors.ArkNotFoundError)
    assert listed(idle.ark(key)) == (0, [])


# --- webhooks -------------------------------------------------------------------------


@pytest.mark.slow
def test_callback_url_gets_a_signed_webhook(busy: Site, receiver: Receiver) -> None:
    key = busy.key("hooks")
    client = busy.ark(key)
    receiver.arrived.clear()
    hook = f"http://{receiver.host_port}/ark-hook"
    made = client.content_generation.tasks.create(**quick("a kite", callback_url=hook))
    assert finish(client, made.id).status == "succeeded"
    assert receiver.arrived.wait(20), "the webhook never arrived"
    (headers, body), *_ = [(h, b) for h, b in receiver.received if made.id.encode() in b]
    payload: Any = Webhook(key.webhook_secret).verify(body, headers)
    assert payload["id"] == made.id
    assert payload["status"] in ("completed", "succeeded")
    assert headers["webhook-id"] == f"msg_{made.id}"
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(busy.key("other").webhook_secret).verify(body, headers)


# --- hostile bodies -------------------------------------------------------------------


def test_hostile_bodies_are_refused_and_nothing_is_stored(idle: Site) -> None:
    key = idle.key()
    base = {"model": FAST_ALIAS, "resolution": "480p", "duration": 4}
    bodies: list[tuple[str, Any]] = [
        ("content not a list", base | {"content": "a calm sea"}),
        ("content an object", base | {"content": {"type": "text", "text": "a calm sea"}}),
        ("33 items", base | {"content": [text("a")] + [image("https://example.com/a.png")] * 32}),
        ("huge text", base | {"content": [text("x" * 5001)]}),
        ("no content", base),
        ("no model", {"content": [text("a calm sea")]}),
        ("an array", [base]),
        ("a string", "create a video"),
        ("an item not an object", base | {"content": ["a calm sea"]}),
        ("a url not a string", base | {"content": [text("a"), image(42)]}),  # type: ignore[arg-type]
    ]
    with idle.http(key) as http:
        for case, body in bodies:
            answer = http.post(TASKS, json=body)
            assert answer.status_code == 400, (case, answer.text)
            error = answer.json()["error"]
            assert error["code"] in ("InvalidParameter", "MissingParameter"), case
            assert error["message"] and "Traceback" not in answer.text, case
            assert answer.headers["x-request-id"], case
        raw: list[tuple[str, bytes, int]] = [
            ("not JSON", b"{not json", 400),
            ("truncated JSON", b'{"model": "' + FAST_ALIAS.encode(), 400),
            ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 400),
            ("over the body cap", json.dumps(base | {"content": [text("x" * 1_100_000)]})
             .encode(), 413),
        ]  # fmt: skip
        for case, content, status in raw:
            headers = {"Content-Type": "application/json"}
            answer = http.post(TASKS, content=content, headers=headers)
            assert answer.status_code == status, (case, answer.text[:300])
            assert answer.json()["error"]["code"] == "InvalidParameter", case
        assert http.get(TASKS).json() == {"total": 0, "items": []}, "nothing was stored"
        # and the server still answers
        assert http.get("/healthz").status_code == 200
        created = http.post(TASKS, json=base | {"content": [text("a calm sea")]})
        assert created.status_code == 200, created.text
        assert http.get(TASKS).json()["total"] == 1
