"""One upstream task's life in the gateway: check → submit → follow → mirror → complete.

    1. check the references as a renderer would (the seed's limits before any upstream cost)
    2. record the intent, then create the task upstream (falling back on 429/5xx/no answer)
       and store its upstream id before waiting on anything
    3. poll it (at once when the upstream calls back), reporting status and progress
    4. download the video through the safe fetcher, check it, store it byte for byte

A task resumed after a crash starts at the step its row records: with an upstream id it
only polls; an Ark create that may have been sent is never sent again. Every write is fenced
by the attempt; a follow that loses its task stops, and cancels the upstream task when its
own task was cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import shutil
import time
from pathlib import Path

from r2v import logs
from r2v.engines.upstream import (
    Malformed,
    Transient,
    UpstreamEngine,
    UpstreamRequest,
    UpstreamStatus,
    UpstreamTarget,
)
from r2v.errors import (
    GenerationFailed,
    GenerationTimeout,
    HandingBack,
    LeaseLost,
    ReferenceFetchFailed,
    ReferenceInvalid,
    ServiceFailure,
    TaskFailure,
    UpstreamUnavailable,
)
from r2v.gateway.shared import Shared
from r2v.media.mp4 import Mp4Summary, summarize
from r2v.protocol import AUTO_SEED, TaskErrorCode, TaskStatus, is_asset_url, uploaded_file_id
from r2v.refs.intake import without_paths
from r2v.tasks.record import TaskRecord
from r2v.tasks.stills import result_key

log = logging.getLogger("r2v.gateway")

# Shares of the progress bar: checking references, then the upstream's work, then mirroring.
CHECK_SHARE = (0, 10)
UPSTREAM_SHARE = (10, 96)
PROGRESS_WRITE_INTERVAL = 0.5
MALFORMED_LIMIT = 3
MIRROR_TRIES = 3


class Follow:
    """Carries one claimed upstream task to completed or failed."""

    def __init__(self, shared: Shared, record: TaskRecord, engine: UpstreamEngine) -> None:
        self._shared = shared
        self._engine = engine
        self.record = record
        self.attempt = record.attempt
        self.claimed_at = time.monotonic()
        self.lost = False
        self._poke = asyncio.Event()
        self._since = record.upstream_since
        self._started = time.time()
        self._sent: tuple[UpstreamTarget, str] | None = None
        self._state = record.upstream_state
        self._written = record.progress
        self._written_at = 0.0
        self._workspace = shared.workspaces / record.id

    # signals from the gateway (all on its event loop) ------------------------------------

    def poke(self) -> None:
        """The upstream has news: poll now."""
        self._poke.set()

    def lose(self) -> None:
        """The task is no longer this gateway's (cancelled, or taken over): stop."""
        self.lost = True
        self._poke.set()

    # the steps -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the task to its end; never raises (but for cancellation of the gateway)."""
        logs.task_id.set(self.record.id)
        try:
            await self._outcome()
        except Exception:  # even the outcome could not be written: the lease will lapse
            log.exception("task %s: its outcome could not be recorded; it will be resumed "
                          "once its lease expires", self.record.id)  # fmt: skip
        finally:
            shutil.rmtree(self._workspace, ignore_errors=True)

    async def _outcome(self) -> None:
        try:
            await self._run()
        except HandingBack:
            released = await self._shared.db(
                self._shared.store.release, self.record.id, self.attempt, time.time()
            )
            log.info("task %s: handed back to the queue (%s)", self.record.id, released)
        except LeaseLost:
            await self._after_loss()
        except TaskFailure as failure:
            await self._fail(failure)
        except Exception:
            log.exception("task %s: following it upstream failed unexpectedly", self.record.id)
            await self._fail(
                GenerationFailed(
                    "following the task upstream failed unexpectedly; the server log has the "
                    f"details under {self.record.id}"
                )
            )

    async def _run(self) -> None:
        record = self.record
        target = self._engine.target(record.upstream_target) if record.upstream_target else None
        if record.upstream_target is not None and target is None:
            raise ServiceFailure(
                "this task was sent to an upstream that the server no longer has configured: "
                "create it again"
            )
        if record.upstream_ref is not None and target is not None:
            self._sent = (target, record.upstream_ref)  # resumed: it only needs polling
        else:
            # a create that may have reached the upstream before a crash (checks passed)
            resent = target if record.upstream_state == "submitting" else None
            if resent is not None and resent.api == "ark":
                raise ServiceFailure(
                    "the server stopped while sending this task to Ark and did not send it "
                    "again, so that it is not paid for twice: create it again"
                )
            if resent is None:
                await self._check_references()
            await self._submit(await self._upstream_request(), resent)
        assert self._sent is not None
        done = await self._poll(*self._sent)
        await self._mirror(self._sent[0], done)

    async def _check_references(self) -> None:
        """Step 1: every reference fetched and probed as a renderer would, then let go."""
        shared, record = self._shared, self.record
        self._workspace.mkdir(parents=True, exist_ok=True)
        await shared.work(
            shared.intake.gather,
            record.request,
            self._workspace,
            record.key_id,
            lambda fraction: self._progress_sync(CHECK_SHARE, fraction),
            check=self.check,
            skip=is_asset_url,
        )
        await shared.work(shutil.rmtree, self._workspace, True)

    async def _upstream_request(self) -> UpstreamRequest:
        """The task as it goes upstream: the URLs as given, uploads as shareable links."""
        record, shared = self.record, self._shared
        request = record.request

        def urls(kind: str, given: list[str]) -> tuple[str, ...]:
            shared_urls = []
            for position, url in enumerate(given):
                file_id = uploaded_file_id(url)
                if file_id is None:
                    shared_urls.append(url)
                    continue
                try:
                    shared_urls.append(shared.share_upload(record.key_id, file_id))
                except TaskFailure as exc:
                    raise type(exc)(f"{kind}_urls[{position}]: {exc.message}") from exc
            return tuple(shared_urls)

        def build() -> UpstreamRequest:
            return UpstreamRequest(
                task_id=record.id,
                model=record.model,
                prompt=request.prompt,
                resolution=request.resolution,
                aspect_ratio=request.aspect_ratio,
                duration=request.duration,
                generate_audio=request.generate_audio,
                seed=None if request.seed == AUTO_SEED else request.seed,
                image_urls=urls("image", request.image_urls),
                video_urls=urls("video", request.video_urls),
                audio_urls=urls("audio", request.audio_urls),
                first_frame_image=request.first_frame_image,
                last_frame_image=request.last_frame_image,
                return_last_frame=request.return_last_frame,
            )

        return await shared.db(build)

    async def _submit(self, request: UpstreamRequest, resume: UpstreamTarget | None) -> None:
        """Step 2: the first upstream that takes the task; its id stored before any wait."""
        shared, targets = self._shared, self._engine.targets
        first = targets.index(resume) if resume is not None else 0
        wait = shared.config.poll_min_seconds
        while True:
            hint: float | None = None
            for target in targets[first:]:
                self.check()
                # The intent is on the row before a byte leaves: after a crash here, Ark is
                # never asked twice, and a unified upstream gets the same Idempotency-Key.
                self._since = self._since or time.time()
                await self._write(state="submitting", target=target.identity, since=self._since)
                callback = shared.callback_url(request.task_id) if target.api == "ark" else None
                try:
                    ref = await shared.client.create(
                        target, dataclasses.replace(request, callback_url=callback)
                    )
                except Transient as exc:
                    log.warning("task %s: %s did not take it: %s", request.task_id, target.label,
                                exc.reason)  # fmt: skip
                    hint = exc.retry_after
                    continue
                self._sent = (target, ref)
                self._state = "queued"
                await self._write(state="queued", ref=ref)
                log.info("task %s: sent to %s as %s", request.task_id, target.label, ref)
                return
            first = 0
            await self._sleep(min(hint or wait, shared.config.poll_max_seconds))
            wait = min(wait * 2, shared.config.poll_max_seconds)

    async def _poll(self, target: UpstreamTarget, ref: str) -> UpstreamStatus:
        """Step 3: ask until the upstream's task ends; its final status when it succeeded."""
        config = self._shared.config
        interval = config.poll_min_seconds
        hint: float | None = None
        malformed = 0
        while True:
            # jittered, so that tasks created together do not poll together
            await self._sleep(hint if hint is not None else interval * random.uniform(0.9, 1.1))
            interval = min(interval * 1.5, config.poll_max_seconds)
            try:
                status = await self._shared.client.status(target, ref)
            except Transient as exc:
                hint = exc.retry_after
                continue
            except Malformed as exc:
                malformed += 1
                if malformed >= MALFORMED_LIMIT:
                    raise GenerationFailed(
                        f"{target.name} kept answering with something that is not a task "
                        f"({exc}): the task was given up"
                    ) from exc
                continue
            malformed, hint = 0, status.poll_after
            if status.state == "succeeded":
                return status
            if status.state == "failed":
                raise status.failure or GenerationFailed(f"{target.name} failed the task")
            await self._report(status)

    async def _mirror(self, target: UpstreamTarget, done: UpstreamStatus) -> None:
        """Step 4: the upstream's video, fetched with the usual checks and kept unchanged."""
        shared, record = self._shared, self.record
        assert done.video_url is not None
        for attempt in range(1, MIRROR_TRIES + 1):
            try:
                path, summary = await shared.work(self._download, done.video_url)
                break
            except ReferenceFetchFailed as exc:
                if attempt == MIRROR_TRIES:
                    raise GenerationFailed(
                        f"{target.name} finished the task, but its video could not be "
                        f"downloaded: {exc.message}"
                    ) from exc
                await self._sleep(2.0 * attempt)
            except ReferenceInvalid as exc:
                raise GenerationFailed(
                    f"{target.name} finished the task, but its video is unusable: {exc.message}"
                ) from exc
        key = result_key(record.id)
        await shared.work(shared.blobs.put, key, path)
        usage = json.dumps(done.usage, separators=(",", ":")) if done.usage else None
        await self._write(usage=usage, seed=done.seed)
        now = time.time()
        seconds = summary.duration
        duration = round(seconds) if seconds > 0 else max(record.video_duration, 1)
        completed = await shared.db(
            shared.store.complete,
            record.id,
            self.attempt,
            result_key=key,
            video_duration=max(duration, 1),
            now=now,
            result_expires_at=now + shared.config.retention_seconds,
            size=(summary.width, summary.height) if summary.width and summary.height else None,
        )
        if not completed:
            await shared.work(shared.blobs.delete, key)
            raise LeaseLost(f"lost the lease on {record.id} before completing")
        log.info("task %s completed in attempt %d (mirrored from %s)", record.id, self.attempt,
                 target.label)  # fmt: skip
        shared.count_finished("completed")
        reported = done.usage or {}
        tokens = reported.get("completion_tokens") or reported.get("total_tokens")
        if isinstance(tokens, int) and tokens > 0 and shared.metrics is not None:
            shared.metrics.upstream_tokens.labels(record.model, target.label).inc(tokens)

    def _download(self, url: str) -> tuple[Path, Mp4Summary]:
        """Fetch and check the upstream's video (in a worker thread): an MP4 with a picture.

        Its boxes are read, nothing is decoded: r2v keeps the file as it came.
        """
        shared = self._shared
        self._workspace.mkdir(parents=True, exist_ok=True)
        dest = self._workspace / "upstream.mp4"
        shared.fetcher.fetch(url, dest, shared.config.max_video_bytes, check=self.check)
        return dest, summarize(dest)

    # reporting ---------------------------------------------------------------------------

    async def _report(self, status: UpstreamStatus) -> None:
        """Write the upstream's state when it changes, and progress as it rises."""
        low, high = UPSTREAM_SHARE
        if status.progress is not None:
            fraction = status.progress / 100
        elif status.state == "running" and self._since is not None:
            # no progress from the upstream: approach the top along its typical time
            elapsed = max(0.0, time.time() - self._since)
            fraction = elapsed / (
                elapsed + self._engine.typical_seconds(self.record.video_duration)
            )
        else:
            fraction = 0.0
        percent = min(high - 1, int(low + (high - low) * fraction))
        changed = status.state != self._state
        due = time.monotonic() - self._written_at >= PROGRESS_WRITE_INTERVAL
        rises = percent > self._written and due
        if changed or rises:
            self._state = status.state
            await self._write(
                state=status.state if changed else None, progress=percent if rises else None
            )
            if rises:
                self._written, self._written_at = percent, time.monotonic()

    def _progress_sync(self, share: tuple[int, int], fraction: float) -> None:
        """Progress from a worker thread (the reference checks)."""
        low, high = share
        percent = int(low + (high - low) * min(max(fraction, 0.0), 1.0))
        if percent > self._written and time.monotonic() - self._written_at >= 0.2:
            if not self._shared.upstream.set_upstream(
                self.record.id, self.attempt, progress=percent
            ):
                raise LeaseLost(f"lost the lease on {self.record.id}")
            self._written, self._written_at = percent, time.monotonic()

    async def _write(self, **values: object) -> None:
        written = await self._shared.db(
            self._shared.upstream.set_upstream, self.record.id, self.attempt, **values
        )
        if not written:
            raise LeaseLost(f"lost the lease on {self.record.id}")

    # stopping ----------------------------------------------------------------------------

    @property
    def _deadline(self) -> float:
        return (self._since or self._started) + self._shared.config.render_timeout_seconds

    def check(self) -> None:
        """Raise when the follow must stop; safe to call from a worker thread."""
        if self.lost:
            raise LeaseLost(f"lost the lease on {self.record.id}")
        if self._shared.closing:
            raise HandingBack(f"shutting down: {self.record.id} goes back to the queue")
        if time.time() > self._deadline:
            raise GenerationTimeout(
                "the upstream did not finish the task within the server's time limit "
                f"({self._shared.config.render_timeout_seconds:.0f} s): create it again later"
            )

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds` (cut short by news from the upstream), then `check`."""
        seconds = max(0.05, min(seconds, self._deadline - time.time() + 0.01))
        try:
            await asyncio.wait_for(self._poke.wait(), seconds)
        except TimeoutError:
            pass
        self._poke.clear()
        try:
            self.check()
        except GenerationTimeout:
            if self._sent is not None:
                await self._shared.client.cancel(*self._sent)
            raise

    async def _after_loss(self) -> None:
        """The task was taken from us: if it was cancelled (or deleted), cancel it upstream
        too."""
        record = await self._shared.db(self._shared.store.get, self.record.id)
        cancelled = record is None or (
            record.status is TaskStatus.FAILED
            and record.error_code == TaskErrorCode.REQUEST_CANCELLED.value
        )
        if not cancelled:
            log.warning("task %s: attempt %d is no longer this gateway's; stopping",
                        self.record.id, self.attempt)  # fmt: skip
            return
        sent = self._sent
        if sent is None and record is not None and record.upstream_ref is not None:
            target = self._engine.target(record.upstream_target)
            sent = (target, record.upstream_ref) if target is not None else None
        if sent is not None:
            agreed = await self._shared.client.cancel(*sent)
            log.info("task %s: cancelled; %s %s cancelled it too", self.record.id,
                     sent[0].label, "has" if agreed else "has not")  # fmt: skip

    async def _fail(self, failure: TaskFailure) -> None:
        if isinstance(failure, UpstreamUnavailable):
            log.error(
                "task %s: the upstream of %s refused the operator's credentials or model (%s); "
                "check R2V_MODELS__<MODEL>__UPSTREAM_* settings",
                self.record.id,
                self.record.model,
                failure.message,
            )
        else:
            log.info("task %s failed: %s: %s", self.record.id, failure.code, failure.message)
        failed = await self._shared.db(
            self._shared.store.fail,
            self.record.id,
            self.attempt,
            code=failure.code,
            message=without_paths(failure.message, [self._shared.workspaces]),
            now=time.time(),
        )
        if failed:
            self._shared.count_finished("failed", failure.code)
        else:
            await self._after_loss()
