"""A fake of Ark's content-generation task API, written from its public contract.

    POST   /api/v3/contents/generations/tasks        → {"id": "cgt-…"}
    GET    /api/v3/contents/generations/tasks/{id}   → the task object
    DELETE /api/v3/contents/generations/tasks/{id}   → {} (queued: cancelled; ended: deleted)
    GET    /videos/{id}.mp4                          → the finished video

It checks what Ark checks (the Bearer key, the model id, known fields only, `content[]`
with a text item first and explicit roles; a role-less image beside a reference video is
refused), runs each task through queued → running → succeeded on a clock, downloads every
reference it is given (as Ark must), and POSTs the task object to a `callback_url` at each
change. Markers in the prompt steer one task: `[ark:fail=CODE]`, `[ark:expire]`,
`[ark:refuse=STATUS:CODE]`, `[ark:run=S]`, `[ark:queue=S]`, `[ark:video=URL]`,
`[ark:echo-key]` (the error message repeats the caller's key), and hostile answers:
`[ark:garbage-get]` (HTML), `[ark:huge-get]` (2 MB of JSON), `[ark:bomb-get]` (a gzip body
that inflates to 200 MB), `[ark:garbage-create]` (HTML for the create's answer).
Attributes script the rest: `create_statuses` / `get_statuses` answer the next creates or
reads with those HTTP statuses.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

MODELS = {
    "dreamina-seedance-2-0-260128",
    "dreamina-seedance-2-0-fast-260128",
    "doubao-seedance-2-0-260128",
    "doubao-seedance-2-0-fast-260128",
}
CREATE_FIELDS = {
    "model", "content", "safety_identifier", "callback_url", "return_last_frame",
    "service_tier", "execution_expires_after", "priority", "generate_audio", "draft",
    "camera_fixed", "watermark", "seed", "resolution", "ratio", "duration", "frames", "tools",
    "output_format", "omni_reference_task_type",
}  # fmt: skip
ROLES = {
    "image_url": {"first_frame", "last_frame", "reference_image"},
    "video_url": {"reference_video"},
    "audio_url": {"reference_audio"},
}
SIZES = {"480p": (864, 496), "720p": (1248, 704), "1080p": (1920, 1088)}
_MARKER = re.compile(r"\[ark:([a-z-]+)(?:=([^\]]*))?\]")


@dataclass
class FakeTask:
    id: str
    body: dict[str, Any]
    created: float
    queue_seconds: float
    run_seconds: float
    markers: dict[str, str]
    seed: int
    cancelled_at: float | None = None
    deleted: bool = False
    callbacks: list[str] = field(default_factory=list)

    @property
    def succeeds_at(self) -> float:
        """Wall time at which the task turns succeeded (or fails/expires)."""
        return self.created + self.queue_seconds + self.run_seconds

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if now < self.created + self.queue_seconds:
            return "queued"
        if now < self.succeeds_at:
            return "running"
        if "fail" in self.markers:
            return "failed"
        if "expire" in self.markers:
            return "expired"
        return "succeeded"


class FakeArk(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        video: Path,
        api_key: str = "ark-test-key-" + "k" * 20,
        *,
        queue_seconds: float = 0.0,
        run_seconds: float = 1.0,
        fetch_references: bool = True,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.video = video.read_bytes()
        self.api_key = api_key
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.fetch_references = fetch_references
        self.lock = threading.Lock()
        self.tasks: dict[str, FakeTask] = {}
        self.creates: list[dict[str, Any]] = []
        self.create_statuses: list[int] = []
        self.get_statuses: list[int] = []
        self.gets: Counter[str] = Counter()
        self.get_times: dict[str, list[float]] = {}
        """Task id → the wall times it was read at."""
        self.deletes: list[str] = []
        self.fetched: dict[str, tuple[int, str]] = {}
        """Reference URL → (HTTP status, sha256 of the body) as the fake downloaded it."""
        self.callback_answers: list[int] = []
        self.video_downloads: dict[str, tuple[float, float]] = {}
        """Task id → (start, end) wall time of the last download of its video."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up are not news

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    @property
    def url(self) -> str:
        """The base URL, as r2v's UPSTREAM_URL takes it."""
        return f"http://{self.host_port}/api/v3"

    def __enter__(self) -> FakeArk:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()

    def max_overlap(self) -> int:
        """The most tasks that were in flight (created, not yet ended) at one moment."""
        events = []
        for task in self.tasks.values():
            events += [(task.created, 1), (task.succeeds_at, -1)]
        best = current = 0
        for _at, step in sorted(events):
            current += step
            best = max(best, current)
        return best

    # the task object --------------------------------------------------------------------

    def task_object(self, task: FakeTask, now: float) -> dict[str, Any]:
        status = task.status(now)
        body = task.body
        width, height = SIZES.get(body.get("resolution", "720p"), SIZES["720p"])
        seconds = body.get("duration", 5) if body.get("duration", 5) > 0 else 5
        tokens = width * height * seconds * 24 // 1024
        error = None
        if status == "failed":
            code = task.markers.get("fail") or "InternalServiceError"
            message = f"the request was refused: {code}"
            if "echo-key" in task.markers:
                message += f" (Authorization: Bearer {self.api_key})"
            error = {"code": code, "message": message}
        found: dict[str, Any] = {
            "id": task.id,
            "model": body["model"],
            "status": status,
            "error": error,
            "created_at": int(task.created),
            "updated_at": int(now),
            "seed": task.seed,
            "resolution": body.get("resolution", "720p"),
            "ratio": body.get("ratio", "adaptive"),
            "duration": seconds,
            "framespersecond": 24,
            "generate_audio": body.get("generate_audio", True),
            "service_tier": "default",
            "execution_expires_after": 172800,
        }
        if status == "succeeded":
            video = task.markers.get("video") or f"http://{self.host_port}/videos/{task.id}.mp4"
            found["content"] = {"video_url": video}
            found["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        return found

    def _callback(self, task: FakeTask) -> None:
        url = task.body.get("callback_url")
        if not url or task.deleted:
            return
        payload = self.task_object(task, time.time())
        task.callbacks.append(payload["status"])
        try:
            answer = httpx.post(url, json=payload, timeout=5)
            self.callback_answers.append(answer.status_code)
        except httpx.HTTPError:
            self.callback_answers.append(0)

    def schedule_callbacks(self, task: FakeTask) -> None:
        for delay in (0.0, task.queue_seconds, task.queue_seconds + task.run_seconds + 0.01):
            timer = threading.Timer(delay, self._callback, (task,))
            timer.daemon = True
            timer.start()


def _error(code: str, message: str, kind: str = "BadRequest") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": "", "type": kind}}


class _Handler(BaseHTTPRequestHandler):
    server: FakeArk
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_bomb(self) -> None:
        inflate = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip stream
        body = b"".join(inflate.compress(b"\0" * 1_000_000) for _ in range(200))
        body += inflate.flush()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.server.api_key}":
            return True
        self._send(401, _error("AuthenticationError", "the API key is missing or invalid",
                               "Unauthorized"))  # fmt: skip
        return False

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self._body()
        if self.path != "/api/v3/contents/generations/tasks":
            self._send(404, _error("NotFound", "no such route"))
            return
        if not self._authorized():
            return
        server = self.server
        with server.lock:
            scripted = server.create_statuses.pop(0) if server.create_statuses else None
        if scripted is not None:
            self._send(scripted, _error("ServerOverloaded", "try again later", "ServiceError"))
            return
        problem = check_create(body)
        if problem is not None:
            self._send(*problem)
            return
        prompt = body["content"][0]["text"]
        markers = {m.group(1): m.group(2) or "" for m in _MARKER.finditer(prompt)}
        if "refuse" in markers:
            status, _colon, code = markers["refuse"].partition(":")
            self._send(int(status), _error(code, f"refused by request: {code}"))
            return
        if "garbage-create" in markers:
            self._send(200, None, raw=b"<html>ok</html>")
            return
        if server.fetch_references:
            _fetch_references(server, body["content"])
        task = FakeTask(
            id=f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
            body=body,
            created=time.time(),
            queue_seconds=float(markers.get("queue") or server.queue_seconds),
            run_seconds=float(markers.get("run") or server.run_seconds),
            markers=markers,
            seed=body.get("seed", secrets.randbelow(2**31)),
        )
        with server.lock:
            server.creates.append(body)
            server.tasks[task.id] = task
        server.schedule_callbacks(task)
        self._send(200, {"id": task.id})

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        server = self.server
        if self.path.startswith("/videos/"):
            started = time.time()
            body = server.video
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            task_id = self.path.removeprefix("/videos/").removesuffix(".mp4")
            server.video_downloads[task_id] = (started, time.time())
            return
        task = self._task()
        if task is None:
            return
        with server.lock:
            server.gets[task.id] += 1
            server.get_times.setdefault(task.id, []).append(time.time())
            scripted = server.get_statuses.pop(0) if server.get_statuses else None
        if scripted is not None:
            self._send(scripted, _error("ServerOverloaded", "try again later", "ServiceError"))
        elif "garbage-get" in task.markers:
            self._send(200, None, raw=b"<html>gateway timeout</html>")
        elif "huge-get" in task.markers:
            padding = "x" * 2_000_000
            self._send(200, server.task_object(task, time.time()) | {"padding": padding})
        elif "bomb-get" in task.markers:
            self._send_bomb()
        else:
            self._send(200, server.task_object(task, time.time()))

    def do_DELETE(self) -> None:  # noqa: N802 - stdlib name
        self._body()  # the SDK sends `{}`
        task = self._task()
        if task is None:
            return
        server = self.server
        now = time.time()
        with server.lock:
            server.deletes.append(task.id)
            status = task.status(now)
            if status == "queued":
                task.cancelled_at = now
            elif status == "running":
                self._send(409, _error("InvalidAction", "a running task cannot be cancelled"))
                return
            else:
                task.deleted = True
        self._send(200, {})

    def _task(self) -> FakeTask | None:
        prefix = "/api/v3/contents/generations/tasks/"
        if not self.path.startswith(prefix):
            self._send(404, _error("NotFound", "no such route"))
            return None
        if not self._authorized():
            return None
        task = self.server.tasks.get(self.path.removeprefix(prefix))
        if task is None or task.deleted:
            self._send(404, _error("ResourceNotFound", "the task does not exist", "NotFound"))
            return None
        return task


def check_create(body: Any) -> tuple[int, dict[str, Any]] | None:
    """Ark's refusals of a create body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return 400, _error("InvalidParameter", "the body is not a JSON object")
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        return 400, _error("InvalidParameter", f"unknown parameter {sorted(unknown)[0]}")
    model = body.get("model")
    if not isinstance(model, str) or not (model in MODELS or model.startswith("ep-")):
        return 404, _error("InvalidEndpointOrModel.NotFound", f"the model {model} does not exist",
                           "NotFound")  # fmt: skip
    content = body.get("content")
    if not isinstance(content, list) or not content or content[0].get("type") != "text":
        return 400, _error("InvalidParameter", "content must start with a text item")
    roles = [item.get("role") for item in content[1:]]
    for item in content[1:]:
        kind = item.get("type")
        if kind not in ROLES or not isinstance(item.get(kind), dict):
            return 400, _error("InvalidParameter", f"unknown content type {kind}")
        role = item.get("role")
        if role is None and kind == "image_url" and "reference_video" in roles:
            return 400, _error("InvalidParameter", "first_frame cannot be used with videos")
        if role is not None and role not in ROLES[kind]:
            return 400, _error("InvalidParameter", f"role {role} is not valid for {kind}")
    if body.get("ratio", "adaptive") not in {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9",
                                             "adaptive"}:  # fmt: skip
        return 400, _error("InvalidParameter.Ratio", "ratio is not valid")
    duration = body.get("duration", 5)
    if not isinstance(duration, int) or not (4 <= duration <= 15 or duration == -1):
        return 400, _error("InvalidParameter.Duration", "duration is not valid")
    return None


def _fetch_references(server: FakeArk, content: list[dict[str, Any]]) -> None:
    for item in content[1:]:
        url = item[item["type"]]["url"]
        if not url.startswith(("http://", "https://")):
            continue
        try:
            answer = httpx.get(url, timeout=10, follow_redirects=True)
            server.fetched[url] = (answer.status_code, hashlib.sha256(answer.content).hexdigest())
        except httpx.HTTPError:
            server.fetched[url] = (0, "")
