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
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from r2v.api import create_app
from r2v.api.services import ApiServices
from r2v.db.connect import Database, open_database
from r2v.db.keys import SqlKeyStore
from r2v.db.migrate import upgrade
from r2v.db.notify import TaskListener, listen_url
from r2v.db.store import SqlStore
from r2v.db.upstream import SqlUpstreamStore
from r2v.db.webhooks import SqlWebhookStore
from r2v.engines.base import Engine, EngineRequest, Loadable, Preset
from r2v.engines.compositor import CompositorEngine
from r2v.engines.upstream import UpstreamEngine, UpstreamTarget
from r2v.errors import ConfigurationError, EngineUnavailable, ServiceUnavailable
from r2v.gateway import Gateway, GatewayConfig
from r2v.media.formats import sniff
from r2v.metrics import Metrics
from r2v.protocol import FAST_MODEL, MODELS, CreateVideoRequest
from r2v.refs.fetch import Fetcher, FetchLimits
from r2v.refs.intake import Intake
from r2v.refs.probe import Prober
from r2v.settings import ModelSettings, Settings, model_key
from r2v.storage.local import LocalBlobStore
from r2v.tasks.files import FileService
from r2v.tasks.keys import CreatedKey, KeyService
from r2v.tasks.links import LinkSigner, callback_path
from r2v.tasks.ports import BlobStore, KeyLimits
from r2v.tasks.service import TaskService
from r2v.tasks.stills import Stills
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
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    """The task store, its schema migrated to the newest revision.

    Raises `ConfigurationError` for a URL this install cannot open, `ServiceUnavailable`
    when the database does not answer; each says what to do.
    """
    url = settings.resolved_database_url
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except sa_exc.ArgumentError as exc:
        raise ConfigurationError(
            "R2V_DATABASE_URL is not a database URL: write it as "
            "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB, or unset it for SQLite in the "
            "data dir"
        ) from exc
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"R2V_DATABASE_URL names {backend}, but r2v keeps its tasks in PostgreSQL "
            "(postgresql+psycopg://…) or SQLite (unset it for SQLite in the data dir)"
        )
    try:
        database = open_database(url, settings.db_pool_size, settings.db_max_overflow)
    except ImportError as exc:
        if backend == "postgresql" and parsed.get_driver_name() == "psycopg":
            raise ConfigurationError(
                "a PostgreSQL R2V_DATABASE_URL needs `pip install 'r2v[postgres]'` (psycopg)"
            ) from exc
        raise ConfigurationError(
            f"R2V_DATABASE_URL asks for the driver {parsed.get_driver_name()}, which is not "
            "installed: write postgresql+psycopg://… and `pip install 'r2v[postgres]'`"
        ) from exc
    except sa_exc.ArgumentError as exc:
        raise ConfigurationError(f"R2V_DATABASE_URL cannot be used: {exc}") from exc
    except OSError as exc:  # the SQLite file's directory cannot be made
        raise ConfigurationError(
            f"the SQLite database cannot be created at {parsed.database} ({exc.strerror}): "
            f"choose another {'R2V_DATABASE_URL' if settings.database_url else 'data dir'}"
        ) from exc
    try:
        upgrade(database)
    except sa_exc.OperationalError as exc:
        database.dispose()
        detail = (str(exc.orig).strip().splitlines() or ["no answer"])[0]
        if backend == "sqlite":
            raise ConfigurationError(
                f"the SQLite database {parsed.database} cannot be used ({detail}): check "
                "that its directory is yours and writable, or choose another"
            ) from exc
        raise ServiceUnavailable(
            f"the database {parsed.render_as_string(hide_password=True)} cannot be used "
            f"({detail}): check that it runs and that R2V_DATABASE_URL is right"
        ) from exc
    return database, SqlStore(database, max_running_per_key=settings.max_running_per_key)


def _preset(name: str, chosen: ModelSettings) -> Preset:
    return chosen.preset or ("fast" if name == FAST_MODEL else "standard")


def model_routes(settings: Settings) -> dict[str, ModelRoute]:
    """Each rendered model name's engine and preset, as the settings say (the compositor by
    default); models served by an upstream are `upstream_engines`' instead.

    Engines are built here but load nothing heavy yet: weights load when a worker starts.
    """
    compositor = CompositorEngine()
    routes: dict[str, ModelRoute] = {}
    for name in MODELS:
        chosen = settings.model(name)
        if chosen.engine == "upstream":
            continue
        preset = _preset(name, chosen)
        engine: Engine = compositor
        if chosen.engine == "diffusers":
            engine = diffusers_engine(chosen, preset)
        routes[name] = ModelRoute(engine, preset)
    return routes


def upstream_engines(settings: Settings) -> dict[str, UpstreamEngine]:
    """The models the settings send to an upstream, each with its upstreams in order."""
    engines: dict[str, UpstreamEngine] = {}
    for name in MODELS:
        chosen = settings.model(name)
        if chosen.engine != "upstream":
            continue
        variable = f"R2V_MODELS__{model_key(name).upper()}__UPSTREAM"
        for suffix, value in (
            ("API", chosen.upstream_api),
            ("URL", chosen.upstream_url),
            ("API_KEY", chosen.upstream_api_key),
        ):
            if not value:
                raise ConfigurationError(
                    f"{variable}_{suffix} is required when {variable.removesuffix('UPSTREAM')}"
                    "ENGINE=upstream"
                )
        assert chosen.upstream_api is not None and chosen.upstream_api_key is not None
        configured = [
            (chosen.upstream_api, chosen.upstream_url, chosen.upstream_model,
             chosen.upstream_api_key, f"{variable}_URL"),
            *((f.api, f.url, f.model, f.api_key, f"{variable}_FALLBACKS[{n}].url")
              for n, f in enumerate(chosen.upstream_fallbacks)),
        ]  # fmt: skip
        targets = tuple(
            UpstreamTarget(
                api=api,
                url=_upstream_url(str(url), where),
                model=model or default_upstream_model(name, api, str(url)),
                api_key=key.get_secret_value(),
                rewrite_mentions=chosen.upstream_rewrite_mentions,
            )
            for api, url, model, key, where in configured
        )
        engines[name] = UpstreamEngine(name, _preset(name, chosen), targets)
    return engines


def _upstream_url(url: str, variable: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{variable} must be an http:// or https:// URL; got {url!r}")
    return url.rstrip("/")


def default_upstream_model(name: str, api: str, url: str) -> str:
    """The model id sent upstream when the settings name none: Ark's Seedance 2.0 id for
    this model (Volcengine's `doubao-…` on volces.com, else BytePlus' `dreamina-…`), or, for
    a unified upstream, this very model name."""
    if api != "ark":
        return name
    family = "doubao" if (urlsplit(url).hostname or "").endswith("volces.com") else "dreamina"
    return f"{family}-seedance-2-0{'-fast' if name == FAST_MODEL else ''}-260128"


def diffusers_engine(chosen: ModelSettings, preset: Preset) -> Engine:
    """The diffusers engine for one model's settings; says what to install if it cannot."""
    from r2v.engines.diffusers import DiffusersConfig, DiffusersEngine

    if chosen.weights_dir is None:
        raise EngineUnavailable(
            "the diffusers engine needs weights: set R2V_MODELS__<MODEL>__WEIGHTS_DIR to a "
            "local directory holding a Wan VACE diffusers pipeline"
        )
    return DiffusersEngine(
        DiffusersConfig(
            weights_dir=chosen.weights_dir,
            preset=preset,
            steps=chosen.steps,
            guidance=chosen.guidance,
            shift=chosen.shift,
            dtype=chosen.dtype,
            device=chosen.device,
            lora_dir=chosen.lora_dir,
            lora_scale=chosen.lora_scale,
            attention_backend=chosen.attention_backend,
            cache=chosen.cache,
            offload=chosen.offload,
            compile=chosen.compile,
        )
    )


@dataclass
class Runtime:
    """Everything one process runs: services, worker threads, housekeeping, webhooks."""

    settings: Settings
    database: Database
    store: SqlStore
    blobs: BlobStore
    tasks: TaskService
    keys: KeyService
    files: FileService
    workers: list[Worker]
    housekeeper: Housekeeper
    webhooks: WebhookSender
    metrics: Metrics
    gateway: Gateway | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    handback: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def served_models(self) -> list[str]:
        """The models this process renders or follows upstream."""
        rendered = list(self.workers[0].routes) if self.workers else []
        return rendered + (list(self.gateway.engines) if self.gateway is not None else [])

    def new_task(self) -> None:
        """Wake whatever in this process takes new tasks."""
        self.wake.set()
        if self.gateway is not None:
            self.gateway.wake()

    def upstream_news(self, task_id: str) -> None:
        """An upstream called back about `task_id`: tell the gateway that follows it."""
        if self.gateway is not None:
            self.gateway.hint(task_id)

    def load_engines(self) -> None:
        """Load the engines' weights, once a process, when this process renders at all."""
        if not self.workers:
            return
        engines = {id(route.engine): route.engine for route in self.workers[0].routes.values()}
        for engine in engines.values():
            if isinstance(engine, Loadable):
                engine.load()

    def _thread(self, name: str, target: Callable[..., None], *args: object) -> None:
        self._threads.append(threading.Thread(target=target, args=args, name=name, daemon=True))

    def start(self) -> None:
        """Load the engines, then start the worker, housekeeping and webhook threads."""
        self._stop.clear()
        self.handback.clear()
        self.load_engines()
        for worker in self.workers:
            self._thread(worker.owner, worker.run, self._stop, self.wake)
        settings = self.settings
        self._thread(
            "housekeeping",
            self.housekeeper.run,
            self._stop,
            settings.reaper_interval_seconds,
            settings.sweep_interval_seconds,
        )
        self._thread("webhooks", self.webhooks.run, self._stop)
        if self.gateway is not None:
            self._thread("gateway", self.gateway.run, self._stop)
        self._thread("key-revocations", self.keys.watch_revocations, self._stop)
        conninfo = listen_url(settings.resolved_database_url)
        if conninfo is not None:
            listener = TaskListener(
                conninfo, self.new_task, self.upstream_news, key_revoked=self.keys.forget
            )
            self._thread("listener", listener.run, self._stop)
        for thread in self._threads:
            thread.start()
        log.info(
            "started %d worker thread(s)%s",
            len(self.workers),
            " and the upstream gateway" if self.gateway is not None else "",
        )

    def stop(self, grace: float = 0.0) -> None:
        """Stop claiming; give running renders `grace` seconds, then hand them back.

        A task handed back is pending again at once, for this or another worker, rather
        than waiting out its lease.
        """
        self._stop.set()
        self.new_task()  # wake the idle, so they see the stop at once
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.handback.set()
        for thread in self._threads:
            thread.join(10.0)
        self._threads.clear()

    def ready(self) -> None:
        """Raise `ServiceUnavailable` unless the database and the storage answer."""
        try:
            self.store.ping()
        except Exception as exc:
            raise ServiceUnavailable(f"the database does not answer: {exc}") from exc
        try:
            self.blobs.check()
        except Exception as exc:
            raise ServiceUnavailable(f"the storage does not answer: {exc}") from exc

    def close(self) -> None:
        self.stop()
        self.database.dispose()

    def ensure_key(self) -> CreatedKey | None:
        """Create a first API key when there is no active one; None when there is."""
        if self.keys.has_active():
            return None
        return self.keys.create("default")


def open_blobs(settings: Settings) -> BlobStore:
    """The blob store the settings choose: the data dir, or an S3 bucket."""
    if settings.storage == "local":
        return LocalBlobStore(settings.data_dir / "blobs")
    if not settings.s3_bucket:
        raise ConfigurationError("R2V_STORAGE=s3 needs R2V_S3_BUCKET")
    from r2v.storage.s3 import S3BlobStore, S3Config

    return S3BlobStore(
        S3Config(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            presign_endpoint_url=settings.s3_presign_endpoint_url,
            presign_seconds=settings.s3_presign_seconds,
        )
    )


def build_runtime(settings: Settings, engines: Sequence[str] | None = None) -> Runtime:
    """Open and wire everything the settings describe; starts no thread.

    `engines` restricts the workers to the models those engines serve (`r2v worker
    --engines`); the API still knows every model.
    """
    data = settings.data_dir
    blobs = open_blobs(settings)  # first: a storage setting that cannot work fails at once
    database, store = open_store(settings)
    workspaces = data / "work"
    routes = model_routes(settings)
    upstreams = upstream_engines(settings)
    for name, upstream in upstreams.items():
        for line in upstream.describe():
            log.info("model %s: %s", name, line)
    wake = threading.Event()
    metrics = Metrics(counts=store.counts)
    gateway: Gateway | None = None

    def estimate(request: CreateVideoRequest) -> int:
        estimator: Engine | UpstreamEngine
        if request.model in upstreams:
            estimator = upstreams[request.model]
            preset = estimator.preset
        else:
            estimator, preset = routes[request.model].engine, routes[request.model].preset
        sample = EngineRequest(
            model=request.model,
            preset=preset,
            prompt=request.prompt,
            resolution=request.resolution,
            aspect_ratio=request.aspect_ratio,
            duration=request.duration if request.duration > 0 else 10,
            generate_audio=request.generate_audio,
            seed=0,
        )
        references = len(request.image_urls) + len(request.video_urls) + len(request.audio_urls)
        return estimator.estimate_seconds(sample) + FETCH_ESTIMATE_SECONDS * references

    upstream_store = SqlUpstreamStore(database)

    def upstream_news(task_id: str) -> None:
        runtime.upstream_news(task_id)  # this process's gateway
        upstream_store.hint(task_id)  # other processes' gateways, on PostgreSQL

    fetcher = Fetcher(
        settings.fetch_allow_hosts,
        FetchLimits(
            connect_timeout=settings.fetch_connect_timeout_seconds,
            read_timeout=settings.fetch_read_timeout_seconds,
            deadline=settings.fetch_deadline_seconds,
        ),
        on_bytes=metrics.fetch_bytes.inc,
    )
    signer = LinkSigner(load_secret(settings), settings.link_ttl_seconds)
    files = FileService(
        store,
        blobs,
        sniff_kind,
        scratch_dir=data / "incoming",
        retention_seconds=settings.retention_seconds,
        signer=signer,
        quota_bytes=settings.upload_quota_bytes,
        rate_per_minute=settings.upload_rate_per_minute,
    )
    keys = key_service(settings, database)
    tasks = TaskService(
        store,
        blobs,
        signer,
        estimate,
        limits_of=keys.limits,
        files=files,
        check_url=fetcher.refusal,
        check_callback=fetcher.callback_refusal,
        on_created=lambda: runtime.new_task(),  # the runtime is built below
        asset_models=frozenset(upstreams),
        on_upstream_news=upstream_news,
        stills=Stills(blobs, data / "stills"),
    )
    intake = Intake(fetcher, Prober(settings.probe_timeout_seconds), files)
    config = WorkerConfig(
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        render_timeout_seconds=settings.render_timeout_seconds,
        retention_seconds=settings.retention_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
    )
    served = {
        name: route
        for name, route in routes.items()
        if engines is None or route.engine.name in engines
    }
    followed = upstreams if engines is None or "upstream" in engines else {}
    if engines is not None and not served and not followed:
        raise ConfigurationError(
            f"no model is served by the engines {', '.join(engines)}: check --engines and "
            "R2V_MODELS__<MODEL>__ENGINE"
        )
    handback = threading.Event()
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    workers = [
        Worker(
            store,
            blobs,
            intake,
            served,
            workspaces,
            config,
            owner=f"{owner}:{n}",
            metrics=metrics,
            handback=handback,
        )
        for n in range(settings.workers if served else 0)
    ]
    if followed and settings.workers > 0:
        gateway = Gateway(
            store,
            upstream_store,
            blobs,
            intake,
            fetcher,
            followed,
            GatewayConfig(
                lease_seconds=settings.lease_seconds,
                heartbeat_seconds=settings.heartbeat_seconds,
                claim_interval_seconds=settings.poll_interval_seconds,
                render_timeout_seconds=settings.render_timeout_seconds,
                retention_seconds=settings.retention_seconds,
                poll_min_seconds=settings.upstream_poll_min_seconds,
                poll_max_seconds=max(
                    settings.upstream_poll_min_seconds, settings.upstream_poll_max_seconds
                ),
                max_in_flight=settings.upstream_max_in_flight,
                max_video_bytes=settings.upstream_max_video_bytes,
            ),
            workspaces=workspaces,
            owner=f"{owner}:gateway",
            share_upload=lambda key_id, file_id: files.share(key_id, file_id, settings.public_url),
            callback_url=lambda task_id: (
                settings.public_url.rstrip("/") + callback_path(signer.callback_token(task_id))
                if settings.public_url
                else None
            ),
            metrics=metrics,
        )
    housekeeper = Housekeeper(
        store,
        blobs,
        workspaces,
        max_attempts=settings.max_attempts,
        stale_workspace_seconds=max(60.0, 2 * settings.lease_seconds),
        sweep_uploads=files.sweep,
    )
    runtime = Runtime(
        settings=settings,
        database=database,
        store=store,
        blobs=blobs,
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
                concurrency=settings.webhook_concurrency,
                per_host=settings.webhook_per_host,
            ),
        ),
        metrics=metrics,
        gateway=gateway,
        wake=wake,
        handback=handback,
    )
    return runtime


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
        metrics=runtime.metrics,
        metrics_token=(
            runtime.settings.metrics_token.get_secret_value()
            if runtime.settings.metrics_token
            else None
        ),
        allowed_hosts=frozenset(runtime.settings.allowed_hosts),
        max_streams_per_key=runtime.settings.max_streams_per_key,
        ark_retry_window_seconds=runtime.settings.ark_retry_window_seconds,
        ready=runtime.ready,
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
    return KeyService(SqlKeyStore(database), defaults, cache_seconds=settings.key_cache_seconds)
