"""The one typed `Settings` of r2v: every knob, read from `R2V_*` environment variables.

Only this module reads the environment, and only when `Settings()` is called: nothing here
runs at import. The README's settings table is written from the field descriptions below.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from r2v.protocol import MODELS


def model_key(name: str) -> str:
    """A model name as a settings key: `seedance-2.0-reference-to-video` becomes
    `seedance_2_0_reference_to_video` (what `R2V_MODELS__SEEDANCE_2_0_…` spells)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


UpstreamApi = Literal["ark", "unified"]


class UpstreamSettings(BaseModel):
    """One further upstream, an item of `R2V_MODELS__<MODEL>__UPSTREAM_FALLBACKS`."""

    api: UpstreamApi
    url: str
    model: str | None = None
    api_key: SecretStr


class ModelSettings(BaseModel):
    """Which engine renders one model name, and how. Set one field with, e.g.,
    `R2V_MODELS__SEEDANCE_2_0_REFERENCE_TO_VIDEO__ENGINE=diffusers`."""

    engine: Literal["compositor", "diffusers", "upstream"] = Field(
        "compositor",
        description="`compositor` (any CPU), `diffusers` (a GPU and weights) or `upstream` "
        "(forward to a hosted service and mirror the result).",
    )
    preset: Literal["standard", "fast"] | None = Field(
        None, description="Quality preset; default: `fast` for the fast model, else `standard`."
    )
    weights_dir: Path | None = Field(
        None, description="diffusers: a local directory holding the pipeline (no hub access)."
    )
    steps: int | None = Field(None, ge=1, le=200, description="diffusers: denoising steps.")
    guidance: float | None = Field(None, ge=0, description="diffusers: classifier-free guidance.")
    shift: float | None = Field(None, gt=0, description="diffusers: flow scheduler shift.")
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="diffusers: weights and compute dtype."
    )
    device: str = Field("cuda", description="diffusers: torch device (`cuda`, `cuda:1`, `cpu`).")
    lora_dir: Path | None = Field(
        None, description="diffusers: a LoRA to load, e.g. a step-distilled one for fast."
    )
    lora_scale: float = Field(1.0, description="diffusers: the LoRA's weight.")
    attention_backend: str | None = Field(
        None, description="diffusers: attention backend (e.g. `flash`, `sage`, `native`)."
    )
    cache: str | None = Field(
        None,
        description="diffusers: a step cache, e.g. `first_block:0.05` (FirstBlockCache "
        "threshold) or `none`.",
    )
    offload: Literal["none", "model", "sequential"] = Field(
        "none", description="diffusers: CPU offload for GPUs short of memory."
    )
    compile: bool = Field(False, description="diffusers: torch.compile the transformer.")
    upstream_api: UpstreamApi | None = Field(
        None,
        description="upstream: `ark` (BytePlus ModelArk / Volcengine Ark) or `unified` (any "
        "server of this API, another r2v included).",
    )
    upstream_url: str | None = Field(
        None,
        description="upstream: base URL; for `ark` the one ending in `/api/v3`, for "
        "`unified` the server root.",
    )
    upstream_model: str | None = Field(
        None,
        description="upstream: the model id sent upstream; default: Ark's Seedance 2.0 id "
        "for this model (`doubao-…` on volces.com, else `dreamina-…`), or this model's name.",
    )
    upstream_api_key: SecretStr | None = Field(
        None, description="upstream: the Bearer key of the upstream (never logged or shown)."
    )
    upstream_fallbacks: list[UpstreamSettings] = Field(
        default_factory=list,
        description='upstream: JSON list of further upstreams, `[{"api":…,"url":…,'
        '"model":…,"api_key":…}]`, tried in order when a create is refused with 429/5xx or '
        "cannot be sent.",
    )
    upstream_rewrite_mentions: bool = Field(
        False,
        description="upstream: send `@Image1` as `Image 1` (`图片1` in a Chinese prompt), for "
        "upstreams that want words.",
    )


class Settings(BaseSettings):
    """Server, worker and engine settings; `R2V_<FIELD>` in the environment sets each one."""

    model_config = SettingsConfigDict(env_prefix="R2V_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(
        Path("r2v-data"),
        description="Where the embedded mode keeps its SQLite database, results and workspaces.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the task store; default: SQLite in the data dir."
    )
    db_pool_size: int = Field(
        20, ge=1, le=200, description="Connections each process keeps open to PostgreSQL."
    )
    db_max_overflow: int = Field(
        20, ge=0, le=500, description="Extra connections a process may open under load."
    )
    storage: Literal["local", "s3"] = Field(
        "local", description="Where videos and uploads live: the data dir, or an S3 bucket."
    )
    s3_bucket: str | None = Field(None, description="s3: the bucket.")
    s3_prefix: str = Field("", description="s3: a key prefix inside the bucket (e.g. `r2v/`).")
    s3_endpoint_url: str | None = Field(
        None, description="s3: the endpoint (SeaweedFS, MinIO, …); default: AWS."
    )
    s3_region: str = Field("us-east-1", description="s3: the region.")
    s3_access_key_id: str | None = Field(
        None, description="s3: access key id (default: boto3's own lookup)."
    )
    s3_secret_access_key: str | None = Field(None, description="s3: secret access key.")
    s3_presign_endpoint_url: str | None = Field(
        None,
        description="s3: the endpoint clients reach for downloads, when it differs from "
        "`R2V_S3_ENDPOINT_URL` (say, an internal address).",
    )
    s3_presign_seconds: int = Field(
        300,
        ge=1,
        le=604800,
        description="s3: life of the presigned URL a result link redirects to.",
    )
    host: str = Field("127.0.0.1", description="Address `r2v serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `r2v serve` listens on.")
    workers: int = Field(
        1, ge=0, le=64, description="Render threads in the server process (0: API only)."
    )
    public_url: str | None = Field(
        None,
        description="Base URL clients reach this server at, for result links "
        "(e.g. `https://r2v.example.com`); default: taken from each request. Upstreams use "
        "it too: Ark calls back there, and uploads go upstream as signed links on it.",
    )
    secret_key: str | None = Field(
        None,
        description="Secret that signs result links; default: generated once into the data "
        "dir. Set the same value on every replica in scale-out.",
    )
    link_ttl_seconds: int = Field(86400, ge=1, description="How long a result link is valid.")
    retention_seconds: int = Field(
        86400, ge=60, description="How long a finished video is kept after completion."
    )
    sweep_interval_seconds: float = Field(
        300.0, gt=0, description="How often expired results and stale workspaces are deleted."
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a worker's claim on a task lasts without a heartbeat."
    )
    heartbeat_seconds: float = Field(
        5.0, gt=0, description="How often a rendering worker renews its lease."
    )
    reaper_interval_seconds: float = Field(
        5.0, gt=0, description="How often expired leases are looked for and requeued."
    )
    max_attempts: int = Field(
        5, ge=1, le=100, description="Claims a task gets before lost workers fail it."
    )
    poll_interval_seconds: float = Field(
        1.0, gt=0, description="How often an idle worker looks for new tasks."
    )
    render_timeout_seconds: float = Field(
        1800.0,
        gt=0,
        description="A render (or an upstream task, from its submission) running longer fails "
        "with `generation_timeout`.",
    )
    upstream_max_in_flight: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Upstream tasks one process follows at once (they hold no render slot).",
    )
    upstream_poll_min_seconds: float = Field(
        2.0, gt=0, description="First wait before asking an upstream how its task is doing."
    )
    upstream_poll_max_seconds: float = Field(
        15.0, gt=0, description="Longest wait between two polls of an upstream task."
    )
    upstream_max_video_bytes: int = Field(
        500_000_000, ge=1_000_000, description="Largest video r2v mirrors from an upstream."
    )
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `host:port` entries that reference fetching may reach "
        "even though they are private or loopback addresses.",
    )
    fetch_connect_timeout_seconds: float = Field(
        10.0, gt=0, description="Connect timeout of one reference download."
    )
    fetch_read_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest silence while reading a reference download."
    )
    fetch_deadline_seconds: float = Field(
        120.0, gt=0, description="Overall time limit of one reference download."
    )
    probe_timeout_seconds: float = Field(
        30.0, gt=0, description="Time limit of probing one reference in a child process."
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest JSON body `POST /v1/videos/generations` takes."
    )
    max_upload_bytes: int = Field(
        51_000_000,
        ge=1024,
        description="Largest multipart body `POST /v1/files` takes (a 50 MB video and the "
        "form around it).",
    )
    key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a replica trusts a key it has checked; a key revoked on another "
        "replica stops working within this time.",
    )
    rate_limit_per_minute: int = Field(
        60, ge=1, description="Tasks a key may create a minute, unless the key sets its own."
    )
    rate_limit_burst: int = Field(
        20, ge=1, description="Creates a key may make at once before the rate applies."
    )
    max_unfinished_tasks: int = Field(
        120,
        ge=1,
        description="Pending and processing tasks a key may have, unless it sets its own.",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=30, description="Tries of one webhook delivery before it is given up."
    )
    webhook_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        description="Wait before the second try of a webhook; each next waits 4x longer "
        "(at most 4 h).",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Time limit of one webhook delivery attempt."
    )
    webhook_concurrency: int = Field(
        16, ge=1, le=256, description="Webhook deliveries one process makes at once."
    )
    webhook_per_host: int = Field(
        2,
        ge=1,
        le=64,
        description="Webhook deliveries in flight to one receiving host at once, so that a "
        "slow receiver only slows its own.",
    )
    sse_keepalive_seconds: float = Field(
        15.0, gt=0, description="Interval of keep-alive comments on `GET /v1/tasks/{id}/events`."
    )
    shutdown_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, how long a worker may finish its task before it "
        "hands the task back to the queue.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port of `R2V_HOST`, apart from the API "
        "(`r2v serve` and `r2v worker`).",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token that opens /metrics on the API's own port; without it, the "
        "API port does not serve /metrics (it shows every tenant's counts).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host names (optionally `host:port`) the API answers to; "
        "other `Host` headers get a 400. Empty: any, which is why production sets "
        "`R2V_PUBLIC_URL`, so links never follow the `Host` header.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A connection must send a request's complete headers within this long "
        "(from connecting, or from its previous answer), or it is closed.",
    )
    min_body_bytes_per_second: int = Field(
        8000,
        ge=1,
        description="A request body must arrive at least this fast on average (after a first "
        "`R2V_HEADER_TIMEOUT_SECONDS`), or the connection is closed.",
    )
    max_streams_per_key: int = Field(
        10, ge=1, description="Event streams (`GET /v1/tasks/{id}/events`) a key may hold open."
    )
    ark_retry_window_seconds: float = Field(
        120.0,
        ge=0,
        description="On the Ark door, a create with the same body as one of the key's last "
        "this many seconds answers that task: the Ark SDKs resend a create after a 5xx or a "
        "timeout, with nothing that tells the resend apart. 0: every create is a new task "
        "(an `Idempotency-Key` header always works).",
    )
    max_running_per_key: int | None = Field(
        None,
        ge=1,
        description="Renders one key may have running at once across all workers; default: "
        "no cap (idle slots are never left unused), with claims favouring the keys that "
        "have the fewest running.",
    )
    upload_quota_bytes: int = Field(
        1_000_000_000,
        ge=1,
        description="Bytes of unexpired uploads one key may keep stored (`POST /v1/files`).",
    )
    upload_rate_per_minute: int = Field(
        60, ge=1, description="Uploads a key may make a minute (a burst of as many)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the server and workers."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object a line, with task and request ids."
    )

    models: dict[str, ModelSettings] = Field(
        default_factory=dict,
        description="Per model: `R2V_MODELS__<MODEL>__<FIELD>`, e.g. "
        "`R2V_MODELS__SEEDANCE_2_0_REFERENCE_TO_VIDEO__ENGINE=diffusers`; see below.",
    )

    @field_validator("models", mode="before")
    @classmethod
    def _model_keys(cls, value: object) -> object:
        if isinstance(value, dict):
            return {model_key(str(name)): config for name, config in value.items()}
        return value

    def model(self, name: str) -> ModelSettings:
        """How the model `name` is rendered: its own settings, else the compositor."""
        return self.models.get(model_key(name)) or ModelSettings()

    @field_validator("fetch_allow_hosts", "allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _host_port_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            host, sep, port = entry.rpartition(":")
            if not sep or not host or not (port.isascii() and port.isdigit()):
                raise ValueError(f"{entry!r} is not host:port (e.g. 127.0.0.1:9000)")
            if ":" in host and not (host.startswith("[") and host.endswith("]")):
                # `::1:9000` reads as host ::1, port 9000, but could never match: say so
                raise ValueError(
                    f"{entry!r} can never match: write an IPv6 host in brackets, "
                    f"as in [{host}]:{port}"
                )
        return [entry.lower() for entry in value]

    @field_validator("allowed_hosts")
    @classmethod
    def _host_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            host, sep, port = entry.rpartition(":") if not entry.endswith("]") else ("", "", "")
            if sep and ":" in host and not host.endswith("]"):
                raise ValueError(f"{entry!r}: write an IPv6 host in brackets, as in [::1]:8000")
            if sep and not (port.isascii() and port.isdigit()):
                raise ValueError(f"{entry!r} is not a host or host:port (e.g. r2v.example.com)")
        return [entry.lower() for entry in value]

    @property
    def resolved_database_url(self) -> str:
        """The task store's URL: `database_url`, or the SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'r2v.db').resolve()}"


# Read by the client side (`r2v generate`, the SDK), so never a typo of a setting.
CLIENT_VARIABLES = frozenset({"R2V_BASE_URL", "R2V_API_KEY"})


def variable_names() -> list[str]:
    """Every `R2V_…` variable a setting reads, each model's settings spelled for that model
    (`R2V_MODELS__SEEDANCE_2_0_REFERENCE_TO_VIDEO__ENGINE`)."""
    names = [f"R2V_{name.upper()}" for name in Settings.model_fields]
    for model in MODELS:
        prefix = f"R2V_MODELS__{model_key(model).upper()}"
        names.append(prefix)
        names += [f"{prefix}__{field.upper()}" for field in ModelSettings.model_fields]
    return names


def _spelled(variable: str) -> str:
    """A variable as the settings read it: upper case, a model's name as its settings key."""
    upper = variable.upper()
    head, sep, rest = upper.partition("R2V_MODELS__")
    if head or not sep:
        return upper
    model, sep, field = rest.partition("__")
    return f"R2V_MODELS__{model_key(model).upper()}{sep}{field}"


def unknown_variables() -> list[str]:
    """A warning for each `R2V_…` variable in the environment that no setting reads (a typo,
    say, which would otherwise be ignored in silence), naming the nearest real one."""
    known = variable_names()
    accepted = set(known) | CLIENT_VARIABLES
    warnings = []
    for variable in sorted(os.environ):
        spelled = _spelled(variable)
        if not spelled.startswith("R2V_") or spelled in accepted:
            continue
        # compared without the prefix all share, so that only a close name is offered
        nearest = difflib.get_close_matches(spelled[4:], [n[4:] for n in known], 1, 0.7)
        hint = f"; did you mean R2V_{nearest[0]}?" if nearest else ""
        warnings.append(f"{variable} is not an r2v setting, so it is ignored{hint}")
    return warnings


def variable_of(location: Sequence[str | int]) -> str:
    """The environment variable a validation error's location names: `('models', 'x',
    'engine')` is `R2V_MODELS__X__ENGINE`; the place inside a JSON value follows it, as in
    `R2V_MODELS__X__UPSTREAM_FALLBACKS[0].api`."""
    names: list[str] = []
    inside = ""
    for part in location:
        if isinstance(part, int):
            inside += f"[{part}]"
        elif inside:
            inside += f".{part}"
        else:
            names.append(part.upper())
    return "R2V_" + "__".join(names) + inside
