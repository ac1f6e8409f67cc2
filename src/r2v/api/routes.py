"""The routes: parse, call one service method, return a protocol model. Nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from r2v.api.polls import (
    TASK_ROUTE,
    authenticate,
    authorization,
    hint_headers,
    read_task,
    task_json,
)
from r2v.api.reads import TaskReads
from r2v.api.services import ApiServices
from r2v.api.streaming import StreamSlots, prefer_wait, task_events, wait_terminal
from r2v.errors import InvalidRequest
from r2v.metrics import CONTENT_TYPE
from r2v.protocol import CreateVideoRequest, ErrorBody, FileObject, TaskList, TaskObject
from r2v.tasks.links import CALLBACK_PATH
from r2v.tasks.ports import ApiKey, BlobLocation

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 409, 413, 429, 500)
}


def services(request: Request) -> ApiServices:
    found: ApiServices = request.app.state.services
    return found


async def api_key(request: Request) -> ApiKey:
    """The caller's key, from `Authorization: Bearer <key>` (the database only on a miss)."""
    return await authenticate(services(request).keys, request.scope)


async def _services(request: Request) -> ApiServices:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread
    return services(request)


Services = Annotated[ApiServices, Depends(_services)]
Key = Annotated[ApiKey, Depends(api_key)]

v1 = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
public = APIRouter()


def _poll_hint(response: Response, task: TaskObject) -> TaskObject:
    response.headers.update(hint_headers(task))
    return task


@v1.post("/videos/generations", response_model_exclude_none=True)
async def create_video(
    body: CreateVideoRequest,
    request: Request,
    response: Response,
    key: Key,
    svc: Services,
    idempotency_key: Annotated[
        str | None, Header(description="EXT: the same key and body within 24 h: the same task.")
    ] = None,
    prefer: Annotated[
        str | None, Header(description="EXT: `wait=N` holds the answer up to N s (max 60).")
    ] = None,
) -> TaskObject:
    """Create a reference-to-video task; poll `GET /v1/tasks/{id}` until it ends."""
    base_url = svc.base_url(request.scope)
    task = await run_in_threadpool(
        lambda: svc.tasks.create(key, body, idempotency_key=idempotency_key, base_url=base_url)
    )
    wait = prefer_wait(prefer)
    if wait is not None:
        task = await wait_terminal(task, lambda: svc.tasks.get(key.id, task.id, base_url), wait)
        response.headers["Preference-Applied"] = f"wait={wait}"
    return _poll_hint(response, task)


@v1.get("/tasks", response_model_exclude_none=True)
def list_tasks(
    request: Request,
    key: Key,
    svc: Services,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="The last id of the previous page.")] = None,
    status: Annotated[str | None, Query(description="Only tasks with this status.")] = None,
) -> TaskList:
    """EXT: the key's tasks, newest first, cursor paged."""
    return svc.tasks.page(key.id, svc.base_url(request.scope), limit, after, status)


@v1.delete("/tasks/{task_id}", response_model_exclude_none=True)
def cancel_task(task_id: str, request: Request, key: Key, svc: Services) -> TaskObject:
    """EXT: cancel a pending or processing task; it ends `failed` / `request_cancelled`."""
    return svc.tasks.cancel(key.id, task_id, svc.base_url(request.scope))


@v1.get(
    "/tasks/{task_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def task_event_stream(task_id: str, request: Request, key: Key, svc: Services) -> StreamingResponse:
    """EXT: Server-Sent Events of the task's status and progress, closing once it ends."""
    base_url = svc.base_url(request.scope)
    svc.tasks.get(key.id, task_id, base_url)  # a 404 or 400 now, not inside the stream
    streams: StreamSlots = request.app.state.streams
    streams.take(key.id)
    events = task_events(
        lambda: svc.tasks.get(key.id, task_id, base_url),
        request.is_disconnected,
        svc.sse_keepalive_seconds,
    )
    return StreamingResponse(
        streams.held(key.id, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@v1.get(TASK_ROUTE.removeprefix("/v1"), response_model=TaskObject, response_model_exclude_none=True)
async def get_task(task_id: str, request: Request) -> Response:
    """The task; `results` holds a freshly signed download link once completed."""
    # In this app `TaskPolls` answers polls ahead of the router; the route is declared for
    # the schema, and answers the same way should a request ever reach it.
    reads: TaskReads = request.app.state.reads
    task = await read_task(services(request), reads, request.scope, task_id)
    return Response(task_json(task), media_type="application/json", headers=hint_headers(task))


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A JPEG/PNG/WebP, MP4/MOV or MP3/WAV file.",
                    }
                },
            }
        }
    },
}


@v1.post("/files", response_model_exclude_none=True, openapi_extra={"requestBody": _UPLOAD_BODY})
async def upload_file(request: Request, key: Key, svc: Services) -> FileObject:
    """EXT: upload a local reference; its `url` goes into image/video/audio_urls."""
    # the key's rate and quota are checked before a byte of the body is read
    await run_in_threadpool(svc.files.admit, key.id)
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("send the file as the multipart form field 'file'", param="file")
        record = await run_in_threadpool(svc.files.upload, key.id, upload.file, upload.filename)
    finally:
        await form.close()
    return svc.files.to_wire(record, svc.base_url(request.scope))


@v1.get("/files/{file_id}", response_model_exclude_none=True)
def get_file(file_id: str, request: Request, key: Key, svc: Services) -> FileObject:
    """EXT: an upload's record."""
    return svc.files.to_wire(svc.files.get(key.id, file_id), svc.base_url(request.scope))


def serve_blob(found: BlobLocation, media_type: str, filename: str | None = None) -> Response:
    # local disk: the file itself (with Range); object storage: a short presigned redirect
    if found.path is not None:
        return FileResponse(found.path, media_type=media_type, filename=filename)
    return RedirectResponse(str(found.url), status_code=307)


@v1.get("/files/{file_id}/content", response_class=FileResponse)
def get_file_content(file_id: str, key: Key, svc: Services) -> Response:
    """EXT: an upload's bytes, for the key that uploaded it (as the type its bytes are)."""
    return _serve_upload(*svc.files.content(key.id, file_id))


def _serve_upload(found: BlobLocation, media_type: str) -> Response:
    response = serve_blob(found, media_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@public.head("/results/{task_id}/video.mp4", include_in_schema=False)
@public.get(
    "/results/{task_id}/video.mp4",
    response_class=FileResponse,
    responses={403: {"model": ErrorBody}, 410: {"model": ErrorBody}},
)
def download_result(
    task_id: str,
    svc: Services,
    expires: str | None = None,
    signature: str | None = None,
) -> Response:
    """The finished video behind a signed link (HTTP Range supported)."""
    found = svc.tasks.result_location(task_id, expires, signature)
    return serve_blob(found, "video/mp4", f"{task_id}.mp4")


@public.head("/results/{task_id}/last_frame.png", include_in_schema=False)
@public.get(
    "/results/{task_id}/last_frame.png", response_class=FileResponse, include_in_schema=False
)
def download_last_frame(
    task_id: str,
    svc: Services,
    expires: str | None = None,
    signature: str | None = None,
) -> Response:
    """The PNG of a video's last frame behind a signed link (Ark's `return_last_frame`)."""
    found, media_type = svc.tasks.shared_last_frame(task_id, expires, signature)
    return serve_blob(found, media_type, f"{task_id}-last-frame.png")


@public.head("/files/{file_id}/content", include_in_schema=False)
@public.get("/files/{file_id}/content", response_class=FileResponse, include_in_schema=False)
def shared_file(
    file_id: str,
    svc: Services,
    expires: str | None = None,
    signature: str | None = None,
) -> Response:
    """An upload behind a signed link: how an upstream reads a reference uploaded here."""
    return _serve_upload(*svc.files.shared(file_id, expires, signature))


@public.post(CALLBACK_PATH, include_in_schema=False)
def upstream_callback(token: str, svc: Services) -> dict[str, str]:
    """Ark's callback about a task sent upstream: a hint to poll it now (the body is unread)."""
    svc.tasks.upstream_callback(token)
    return {}


@public.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: 200 once the server has started."""
    return {"status": "ok"}


@public.get("/readyz", responses={503: {"model": ErrorBody}})
def readyz(svc: Services) -> dict[str, str]:
    """Readiness: 200 when the database and the storage answer, else 503."""
    svc.ready()
    return {"status": "ready"}


@public.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(request: Request, svc: Services) -> Response:
    """Prometheus metrics of this process (and the task counts of the whole database), for
    the holder of `R2V_METRICS_TOKEN` (else on `R2V_METRICS_PORT` only)."""
    svc.check_metrics_access(authorization(request.scope))
    assert svc.metrics is not None
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
