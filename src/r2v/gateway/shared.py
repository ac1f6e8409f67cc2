"""What every follow of one gateway shares: the stores, the client, the thread pools."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from r2v.engines.upstream import UpstreamClient
from r2v.metrics import Metrics
from r2v.refs.fetch import Fetcher
from r2v.refs.intake import Intake
from r2v.tasks.ports import BlobStore, TaskStore, UpstreamStore

T = TypeVar("T")


@dataclass(frozen=True)
class GatewayConfig:
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    check_seconds: float = 0.5
    """How often the gateway checks that it still holds its tasks (cancellations)."""
    claim_interval_seconds: float = 1.0
    render_timeout_seconds: float = 1800.0
    retention_seconds: float = 86400.0
    poll_min_seconds: float = 2.0
    poll_max_seconds: float = 15.0
    max_in_flight: int = 1000
    max_video_bytes: int = 500_000_000
    work_threads: int = 8
    """Threads for the blocking steps: reference checks, mirror downloads, storage."""


@dataclass
class Shared:
    """The collaborators of every follow, and the pools their blocking calls run in."""

    store: TaskStore
    upstream: UpstreamStore
    blobs: BlobStore
    intake: Intake
    fetcher: Fetcher
    share_upload: Callable[[str, str], str]
    """(key id, file id) → a URL the upstream can read the upload at; raises TaskFailure."""
    callback_url: Callable[[str], str | None]
    """Task id → where Ark may call back about it, or None (no public URL)."""
    client: UpstreamClient
    config: GatewayConfig
    workspaces: Path
    metrics: Metrics | None = None
    closing: bool = False
    _db_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="r2v-gw-db")
    )
    _work_pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self._work_pool = ThreadPoolExecutor(
            self.config.work_threads, thread_name_prefix="r2v-gw-work"
        )

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a short store call in the database pool (never behind a slow download)."""
        return await _in(self._db_pool, fn, *args, **kwargs)

    async def work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking step (fetch, probe, copy) in the work pool."""
        assert self._work_pool is not None
        return await _in(self._work_pool, fn, *args, **kwargs)

    def count_finished(self, status: str, code: str = "") -> None:
        if self.metrics is not None:
            self.metrics.tasks_finished.labels(status, code).inc()

    def close(self) -> None:
        self._db_pool.shutdown(wait=False, cancel_futures=True)
        if self._work_pool is not None:
            self._work_pool.shutdown(wait=False, cancel_futures=True)


async def _in(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # the caller's context (its task id for the logs) goes along into the thread
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)
