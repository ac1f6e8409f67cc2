"""The routes: parse, call one service method, return a protocol model. Nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from r2v.api.docs import CREATE_EXAMPLES, CREATED, POLL_HINT, UPLOAD_TYPES, answers, file_answers
from r2v.api.polls import TASK_ROUTE, answer_poll, authenticate, authorization, hint_headers
from r2v.api.reads import TaskReads
from r2v.api.services import ApiServices
from r2v.api.streaming import StreamSlots, prefer_wait, task_events, wait_terminal
from r2v.errors import InvalidRequest
from r2v.metrics import CONTENT_TYPE
from r2v.protocol import EXTENSION, CreateVideoRequest, FileObject, TaskList, TaskObject
from r2v.tasks.links import CALLBACK_PATH
from r2v.tasks.ports import ApiKey, BlobLocation


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

v1 = APIRouter(prefix="/v1", tags=["Seedance 2.0 API"])
public = APIRouter()


def _poll_hint(response: Response, task: TaskObject) -> TaskObject:
    response.headers.update(hint_headers(task))
    return task


@v1.post(
    "/videos/generations",
    response_model_exclude_none=True,
    summary="Create a task",
    responses=answers(400, 401, 409, 413, 429, 503, ok=CREATED, creates=True),
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": CREATE_EXAMPLES}}}},
)
async def create_video(
    body: CreateVideoRequest,
    request: Request,
    response: Response,
    key: Key,
    svc: Services,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="The same key and body within 24 h: the same task (another body: 409).",
            examples=["3f1c2a9e-8d4b-4e57-9a1b-2c6d7e8f9a0b"],
            json_schema_extra=EXTENSION,
        ),
    ] = None,
    prefer: Annotated[
        str | None,
        Header(
            # no example: a tool that sends it (schemathesis) would wait on every create
            description="`wait=N` (e.g. `wait=30`) holds the answer up to N s (max 60) for "
            "the task to end.",
            json_schema_extra=EXTENSION,
        ),
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


@v1.get(
    "/tasks",
    response_model_exclude_none=True,
    summary="List tasks",
    responses=answers(400, 401, 503),
    openapi_extra=EXTENSION,
)
def list_tasks(
    request: Request,
    key: Key,
    svc: Services,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="The last id of the previous page.")] = None,
    status: Annotated[str | None, Query(description="Only tasks with this status.")] = None,
) -> TaskList:
    """The key's tasks, newest first, cursor paged."""
    return svc.tasks.page(key.id, svc.base_url(request.scope), limit, after, status)


@v1.delete(
    "/tasks/{task_id}",
    response_model_exclude_none=True,
    summary="Cancel a task",
    responses=answers(400, 401, 404, 409, 503),
    openapi_extra=EXTENSION,
)
def cancel_task(task_id: str, request: Request, key: Key, svc: Services) -> TaskObject:
    """Cancel a pending or processing task; it ends `failed` with `request_cancelled`."""
    return svc.tasks.cancel(key.id, task_id, svc.base_url(request.scope))


@v1.get(
    "/tasks/{task_id}/events",
    response_class=StreamingResponse,
    summary="Stream a task's events",
    responses=answers(400, 401, 404, 429, 503, ok={"content": {"text/event-stream": {}}}),
    openapi_extra=EXTENSION,
)
def task_event_stream(task_id: str, request: Request, key: Key, svc: Services) -> StreamingResponse:
    """Server-Sent Events of the task's status and progress, closing once it ends."""
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


@v1.get(
    TASK_ROUTE.removeprefix("/v1"),
    response_model=TaskObject,
    response_model_exclude_none=True,
    summary="Get a task",
    responses=answers(400, 401, 404, 503, ok=POLL_HINT),
)
async def get_task(task_id: str, request: Request) -> Response:
    """The task; `results` holds a freshly signed download link once completed."""
    # In this app `TaskPolls` answers polls ahead of the router; the route is declared for
    # the schema, and answers the same way should a request ever reach it.
    reads: TaskReads = request.app.state.reads
    body, headers = await answer_poll(services(request), reads, request.scope, task_id)
    return Response(body, headers=headers)


@v1.get(
    "/tasks/{task_id}/request",
    response_model_exclude_none=True,
    summary="Get a task's request",
    responses=answers(400, 401, 404, 503),
    openapi_extra=EXTENSION,
)
def get_task_request(task_id: str, key: Key, svc: Services) -> CreateVideoRequest:
    """The request the task was created with (references, settings, seed as sent), as
    `POST /v1/videos/generations` takes it: what a "run it again" needs."""
    return svc.tasks.record(key.id, task_id).request


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


@v1.post(
    "/files",
    response_model_exclude_none=True,
    summary="Upload a reference",
    responses=answers(400, 401, 413, 429, 503),
    openapi_extra={"requestBody": _UPLOAD_BODY} | EXTENSION,
)
async def upload_file(request: Request, key: Key, svc: Services) -> FileObject:
    """Upload a local reference; its `url` goes into image/video/audio_urls."""
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


@v1.get(
    "/files/{file_id}",
    response_model_exclude_none=True,
    summary="Get an upload",
    responses=answers(400, 401, 404, 503),
    openapi_extra=EXTENSION,
)
def get_file(file_id: str, request: Request, key: Key, svc: Services) -> FileObject:
    """An upload's record."""
    return svc.files.to_wire(svc.files.get(key.id, file_id), svc.base_url(request.scope))


def serve_blob(found: BlobLocation, media_type: str, filename: str | None = None) -> Response:
    # local disk: the file itself (with Range); object storage: a short presigned redirect
    if found.path is not None:
        return FileResponse(found.path, media_type=media_type, filename=filename)
    return RedirectResponse(str(found.url), status_code=307)


@v1.get(
    "/files/{file_id}/content",
    response_class=FileResponse,
    summary="Download an upload",
    responses=file_answers(*UPLOAD_TYPES) | answers(400, 401, 404, 503),
    openapi_extra=EXTENSION,
)
def get_file_content(file_id: str, key: Key, svc: Services) -> Response:
    """An upload's bytes, for the key that uploaded it (as the type its bytes are)."""
    return _serve_upload(*svc.files.content(key.id, file_id))


def _serve_upload(found: BlobLocation, media_type: str) -> Response:
    response = serve_blob(found, media_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@public.head("/results/{task_id}/video.mp4", include_in_schema=False)
@public.get(
    "/results/{task_id}/video.mp4",
    response_class=FileResponse,
    tags=["Seedance 2.0 API"],
    summary="Download a result",
    responses=file_answers("video/mp4") | answers(400, 403, 404, 410, 503),
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


@public.get("/healthz", tags=["Operations"], summary="Liveness", openapi_extra=EXTENSION)
def healthz() -> dict[str, str]:
    """Liveness: 200 once the server has started."""
    return {"status": "ok"}


@public.get(
    "/readyz",
    tags=["Operations"],
    summary="Readiness",
    responses=answers(503),
    openapi_extra=EXTENSION,
)
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
