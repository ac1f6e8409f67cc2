"""The gateway: one event loop per process following every upstream task in flight.

An upstream task spends minutes waiting on someone else's GPU, so it holds no render slot:
the gateway claims the tasks of upstream models in batches (up to `max_in_flight`), runs
each as a coroutine (`Follow`), and keeps all their leases with one write per heartbeat.
Twice a second it reads which tasks it still holds; a task that is no longer its (cancelled,
or taken over after a stall) is let go at once. Blocking steps run in thread pools, so a
slow reference download never holds up a poll.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from r2v.engines.upstream import UpstreamClient, UpstreamEngine
from r2v.gateway.follow import Follow
from r2v.gateway.shared import GatewayConfig, Shared
from r2v.metrics import Metrics
from r2v.refs.fetch import Fetcher
from r2v.refs.intake import Intake
from r2v.tasks.ports import BlobStore, TaskStore, UpstreamStore

log = logging.getLogger("r2v.gateway")

CLAIM_BATCH = 25
SHUTDOWN_SECONDS = 60.0
"""How long a stopping gateway waits for creates in flight to be answered and recorded."""


class Gateway:
    """Follows the tasks of `engines`' models from claim to completion, all at once."""

    def __init__(
        self,
        store: TaskStore,
        upstream: UpstreamStore,
        blobs: BlobStore,
        intake: Intake,
        fetcher: Fetcher,
        engines: Mapping[str, UpstreamEngine],
        config: GatewayConfig,
        *,
        workspaces: Path,
        owner: str,
        share_upload: Callable[[str, str], str],
        callback_url: Callable[[str], str | None],
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._blobs = blobs
        self._intake = intake
        self._fetcher = fetcher
        self.engines = engines
        self._config = config
        self._workspaces = workspaces
        self.owner = owner
        self._share_upload = share_upload
        self._callback_url = callback_url
        self._metrics = metrics
        self._follows: dict[str, Follow] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # thread-safe entry points --------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Follow tasks until `stop` is set, then hand back those still in flight."""
        asyncio.run(self._main(stop))

    def wake(self) -> None:
        """A task may be waiting: claim now rather than at the next interval."""
        self._call_soon(lambda: self._wake.set() if self._wake else None)

    def hint(self, task_id: str) -> None:
        """The upstream called back about `task_id`: poll it now, if this gateway has it."""

        def poke() -> None:
            follow = self._follows.get(task_id)
            if follow is not None:
                follow.poke()

        self._call_soon(poke)

    @property
    def in_flight(self) -> int:
        """How many upstream tasks this gateway follows right now."""
        return len(self._follows)

    def _call_soon(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:
                pass  # the loop closed in between: nothing left to wake

    # the loop ----------------------------------------------------------------------------

    async def _main(self, stop: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        async with UpstreamClient(
            max_connections=min(1000, max(10, self._config.max_in_flight)),
            on_outcome=self._count_request,
        ) as client:
            shared = Shared(
                store=self._store,
                upstream=self._upstream,
                blobs=self._blobs,
                intake=self._intake,
                fetcher=self._fetcher,
                share_upload=self._share_upload,
                callback_url=self._callback_url,
                client=client,
                config=self._config,
                workspaces=self._workspaces,
                metrics=self._metrics,
            )
            keeper = asyncio.create_task(self._keep(shared))
            running: set[asyncio.Task[None]] = set()
            try:
                await self._claim_until(stop, shared, running)
            finally:
                shared.closing = True
                for follow in self._follows.values():
                    follow.poke()
                if running:
                    await asyncio.wait(running, timeout=SHUTDOWN_SECONDS)
                keeper.cancel()
                shared.close()
        self._loop = None

    async def _claim_until(
        self, stop: threading.Event, shared: Shared, running: set[asyncio.Task[None]]
    ) -> None:
        config, models = self._config, list(self.engines)
        assert self._wake is not None
        while not stop.is_set():
            self._wake.clear()  # before the claim: a wake-up during it is not lost
            room = config.max_in_flight - len(self._follows)
            claimed = []
            if room > 0:
                batch = min(room, CLAIM_BATCH)
                try:
                    claimed = await shared.db(
                        self._upstream.claim_upstream,
                        self.owner,
                        config.lease_seconds,
                        time.time(),
                        models,
                        batch,
                    )
                except Exception:
                    log.exception("the gateway could not claim tasks; trying again")
                for record in claimed:
                    self._start(Follow(shared, record, self.engines[record.model]), running)
                if len(claimed) == batch:
                    continue  # more may be waiting
            # wake on a new task, else look again at the interval (and notice `stop`)
            try:
                await asyncio.wait_for(self._wake.wait(), min(config.claim_interval_seconds, 0.5))
            except TimeoutError:
                pass

    def _start(self, follow: Follow, running: set[asyncio.Task[None]]) -> None:
        record = follow.record
        if self._metrics is not None:
            self._metrics.claim_latency.observe(max(0.0, time.time() - record.created_at))
        self._follows[record.id] = follow
        task = asyncio.create_task(follow.run(), name=f"follow-{record.id}")
        running.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            running.discard(finished)
            self._follows.pop(record.id, None)
            if self._wake is not None:
                self._wake.set()  # room for another

        task.add_done_callback(done)

    async def _keep(self, shared: Shared) -> None:
        """Renew every lease each heartbeat; between, notice the tasks no longer ours."""
        config = self._config
        next_renewal = time.monotonic() + config.heartbeat_seconds
        while True:
            await asyncio.sleep(config.check_seconds)
            if not self._follows:
                continue
            asked = time.monotonic()
            try:
                if asked >= next_renewal:
                    held = await shared.db(
                        self._upstream.renew, self.owner, time.time() + config.lease_seconds
                    )
                    next_renewal = asked + config.heartbeat_seconds
                else:
                    held = await shared.db(self._upstream.held, self.owner)
            except Exception:  # a database hiccup: the leases outlast a few missed beats
                log.warning("the gateway could not check its leases", exc_info=True)
                continue
            for task_id, follow in list(self._follows.items()):
                # a task claimed after the question was asked may not be in the answer yet
                if follow.claimed_at < asked and held.get(task_id) != follow.attempt:
                    follow.lose()

    def _count_request(self, upstream: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.upstream_requests.labels(upstream, outcome).inc()
