"""The composition root: the only place that picks implementations and wires them together.

`build_runtime(settings)` opens the database (migrating it), the blob store, the engines and
the services; `Runtime.start()` starts the worker threads and the housekeeping thread;
`build_app(runtime)` puts the HTTP API in front of it all.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from r2v.api import create_app
from r2v.api.services import ApiServices
from r2v.db.connect import Database, open_database
from r2v.db.keys import SqlKeyStore
from r2v.db.migrate import upgrade
from r2v.db.store import SqlStore
from r2v.db.webhooks import SqlWebhookStore
from r2v.engines.base import EngineRequest
from r2v.engines.compositor import CompositorEngine
from r2v.media.formats import sniff
from r2v.protocol import FAST_MODEL, STANDARD_MODEL, CreateVideoRequest
from r2v.refs.fetch import Fetcher, FetchLimits
from r2v.refs.intake import Intake
from r2v.refs.probe import Prober
from r2v.settings import Settings
from r2v.storage.local import LocalBlobStore
from r2v.tasks.files import FileService
from r2v.tasks.keys import CreatedKey, KeyService
from r2v.tasks.links import LinkSigner
from r2v.tasks.ports import KeyLimits
from r2v.tasks.service import TaskService
from r2v.webhooks import WebhookConfig, WebhookSender
from r2v.worker import Housekeeper, ModelRoute, Worker, WorkerConfig

log = logging.getLogger("r2v")

# Seconds the estimate adds for downloading and probing each reference.
FETCH_ESTIMATE_SECONDS = 2


def load_secret(settings: Settings) -> bytes:
    """The link-signing secret: from settings, else generated once into the data dir."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / "secret.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def sniff_kind(path: Path) -> tuple[str, str] | None:
    """(kind, format) of an allow-listed reference file, judged from its bytes."""
    found = sniff(path)
    return (found.kind, found.name) if found else None


def open_store(settings: Settings) -> tuple[Database, SqlStore]:
    """The task store, its schema migrated to the newest revision."""
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    return database, SqlStore(database)


def model_routes() -> dict[str, ModelRoute]:
    """Each model name's engine and preset: the compositor serves both for now."""
    compositor = CompositorEngine()
    return {
        STANDARD_MODEL: ModelRoute(compositor, "standard"),
        FAST_MODEL: ModelRoute(compositor, "fast"),
    }


@dataclass
class Runtime:
    """Everything one server process runs: services, worker threads, housekeeping."""

    settings: Settings
    database: Database
    tasks: TaskService
    keys: KeyService
    files: FileService
    workers: list[Worker]
    housekeeper: Housekeeper
    webhooks: WebhookSender
    wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the worker threads and the housekeeping thread."""
        self._stop.clear()
        for worker in self.workers:
            thread = threading.Thread(
                target=worker.run, args=(self._stop, self.wake), name=worker.owner, daemon=True
            )
            self._threads.append(thread)
        self._threads.append(
            threading.Thread(
                target=self.housekeeper.run,
                args=(
                    self._stop,
                    self.settings.reaper_interval_seconds,
                    self.settings.sweep_interval_seconds,
                ),
                name="housekeeping",
                daemon=True,
            )
        )
        self._threads.append(
            threading.Thread(
                target=self.webhooks.run, args=(self._stop,), name="webhooks", daemon=True
            )
        )
        for thread in self._threads:
            thread.start()
        log.info("started %d worker thread(s)", len(self.workers))

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every thread to stop; a render still running is left to the reaper."""
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        self.stop()
        self.database.dispose()

    def ensure_key(self) -> CreatedKey | None:
        """Create a first API key when there is no active one; None when there is."""
        if self.keys.has_active():
            return None
        return self.keys.create("default")


def build_runtime(settings: Settings) -> Runtime:
    """Open and wire everything the settings describe; starts no thread."""
    data = settings.data_dir
    database, store = open_store(settings)
    blobs = LocalBlobStore(data / "blobs")
    workspaces = data / "work"
    routes = model_routes()
    wake = threading.Event()

    def estimate(request: CreateVideoRequest) -> int:
        route = routes[request.model]
        sample = EngineRequest(
            model=request.model,
            preset=route.preset,
            prompt=request.prompt,
            resolution=request.resolution,
            aspect_ratio=request.aspect_ratio,
            duration=request.duration if request.duration > 0 else 10,
            generate_audio=request.generate_audio,
            seed=0,
        )
        references = len(request.image_urls) + len(request.video_urls) + len(request.audio_urls)
        return route.engine.estimate_seconds(sample) + FETCH_ESTIMATE_SECONDS * references

    fetcher = Fetcher(
        settings.fetch_allow_hosts,
        FetchLimits(
            connect_timeout=settings.fetch_connect_timeout_seconds,
            read_timeout=settings.fetch_read_timeout_seconds,
            deadline=settings.fetch_deadline_seconds,
        ),
    )
    files = FileService(
        store,
        blobs,
        sniff_kind,
        scratch_dir=data / "incoming",
        retention_seconds=settings.retention_seconds,
    )
    keys = key_service(settings, database)
    tasks = TaskService(
        store,
        blobs,
        LinkSigner(load_secret(settings), settings.link_ttl_seconds),
        estimate,
        limits_of=keys.limits,
        files=files,
        check_url=fetcher.refusal,
        check_callback=fetcher.callback_refusal,
        on_created=wake.set,
    )
    intake = Intake(fetcher, Prober(settings.probe_timeout_seconds), files)
    config = WorkerConfig(
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        render_timeout_seconds=settings.render_timeout_seconds,
        retention_seconds=settings.retention_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
    )
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    workers = [
        Worker(store, blobs, intake, routes, workspaces, config, owner=f"{owner}:{n}")
        for n in range(settings.workers)
    ]
    housekeeper = Housekeeper(
        store,
        blobs,
        workspaces,
        max_attempts=settings.max_attempts,
        stale_workspace_seconds=max(60.0, 2 * settings.lease_seconds),
        sweep_uploads=files.sweep,
    )
    return Runtime(
        settings=settings,
        database=database,
        tasks=tasks,
        keys=keys,
        files=files,
        workers=workers,
        housekeeper=housekeeper,
        webhooks=WebhookSender(
            SqlWebhookStore(database),
            tasks,
            keys,
            fetcher,
            WebhookConfig(
                max_attempts=settings.webhook_max_attempts,
                retry_base_seconds=settings.webhook_retry_base_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
                poll_seconds=settings.poll_interval_seconds,
            ),
        ),
        wake=wake,
    )


def build_app(runtime: Runtime) -> FastAPI:
    """The HTTP app over the runtime; its lifespan starts and stops the threads."""
    services = ApiServices(
        tasks=runtime.tasks,
        keys=runtime.keys,
        files=runtime.files,
        public_url=runtime.settings.public_url,
        max_body_bytes=runtime.settings.max_body_bytes,
        max_upload_bytes=runtime.settings.max_upload_bytes,
        sse_keepalive_seconds=runtime.settings.sse_keepalive_seconds,
    )
    return create_app(services, on_startup=runtime.start, on_shutdown=runtime.stop)


@contextmanager
def open_keys(settings: Settings) -> Iterator[KeyService]:
    """The key service alone, for `r2v keys …`, over a migrated database."""
    database, _store = open_store(settings)
    try:
        yield key_service(settings, database)
    finally:
        database.dispose()


def key_service(settings: Settings, database: Database) -> KeyService:
    """The key service over `database`, with the server's default limits."""
    defaults = KeyLimits(
        rate_per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        max_unfinished=settings.max_unfinished_tasks,
    )
    return KeyService(SqlKeyStore(database), defaults)
