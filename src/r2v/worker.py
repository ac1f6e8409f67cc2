"""The worker: claim → fetch references → generate → store → complete or fail.

A worker holds a lease on the task it renders and renews it from a heartbeat thread; every
write it makes names its attempt, so a worker that lost its lease (paused, partitioned,
presumed dead) can no longer touch the task. Housekeeping (the reaper that requeues tasks
whose worker died, and the retention sweep) runs beside the workers.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from r2v import logs
from r2v.engines.base import (
    AudioInput,
    Engine,
    EngineRequest,
    ImageInput,
    Preset,
    VideoInput,
)
from r2v.errors import GenerationTimeout, HandingBack, LeaseLost, TaskFailure
from r2v.metrics import Metrics
from r2v.protocol import FPS, TaskErrorCode
from r2v.refs.intake import Intake, References, without_paths
from r2v.tasks.ports import BlobStore, TaskStore
from r2v.tasks.record import TaskRecord
from r2v.tasks.stills import blob_keys, result_key

log = logging.getLogger("r2v.worker")

# Shares of the progress bar: fetching references, then rendering, then storing.
FETCH_SHARE = (0, 10)
RENDER_SHARE = (10, 97)
PROGRESS_WRITE_INTERVAL = 0.5


@dataclass(frozen=True)
class ModelRoute:
    """Which engine renders a model name, and with which preset."""

    engine: Engine
    preset: Preset


@dataclass(frozen=True)
class WorkerConfig:
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    render_timeout_seconds: float = 1800.0
    retention_seconds: float = 86400.0
    poll_interval_seconds: float = 1.0


def build_engine_request(record: TaskRecord, refs: References, preset: Preset) -> EngineRequest:
    """The one translation from a stored task and its checked references to an engine request."""
    request = record.request
    return EngineRequest(
        model=record.model,
        preset=preset,
        prompt=request.prompt,
        resolution=request.resolution,
        aspect_ratio=request.aspect_ratio,
        duration=request.duration,
        generate_audio=request.generate_audio,
        seed=record.seed,
        images=tuple(ImageInput(r.path, r.info.width, r.info.height) for r in refs.images),
        videos=tuple(
            VideoInput(
                r.path, r.info.width, r.info.height, r.info.duration, r.info.fps, r.info.has_audio
            )
            for r in refs.videos
        ),
        audios=tuple(AudioInput(r.path, r.info.duration) for r in refs.audios),
        # The wire numbers images from 1, as `@Image1` does; the engine indexes `images`.
        first_frame=None if request.first_frame_image is None else request.first_frame_image - 1,
        last_frame=None if request.last_frame_image is None else request.last_frame_image - 1,
    )


class Lease:
    """Renews a task's lease from a thread until stopped, and notices when it is lost.

    The lease is renewed every `heartbeat_seconds`; in between, twice a second, it checks that
    the task is still this attempt's, so a cancelled task stops rendering within a second.
    """

    CHECK_SECONDS = 0.5

    def __init__(self, store: TaskStore, record: TaskRecord, config: WorkerConfig) -> None:
        self._store = store
        self._record = record
        self._config = config
        self._stop = threading.Event()
        self._renew_until = time.time() + config.render_timeout_seconds + config.lease_seconds
        self.lost = False
        self._thread = threading.Thread(target=self._run, name=f"lease-{record.id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        task_id, attempt = self._record.id, self._record.attempt
        next_beat = time.monotonic() + self._config.heartbeat_seconds
        while not self._stop.wait(min(self.CHECK_SECONDS, self._config.heartbeat_seconds)):
            try:
                if time.monotonic() >= next_beat:
                    if time.time() > self._renew_until:
                        return  # a hung render stops renewing; the reaper takes the task back
                    expires = time.time() + self._config.lease_seconds
                    held = self._store.heartbeat(task_id, attempt, expires)
                    next_beat = time.monotonic() + self._config.heartbeat_seconds
                else:
                    held = self._store.owns(task_id, attempt)
            except Exception:  # a database hiccup: try again on the next beat
                log.warning("lease check of %s failed", task_id, exc_info=True)
                continue
            if not held:
                self.lost = True
                return


class TaskContext:
    """The `RenderContext` of one task: a workspace, progress writes, the reasons to stop."""

    def __init__(
        self,
        store: TaskStore,
        record: TaskRecord,
        lease: Lease,
        workspace: Path,
        deadline: float,
        handback: threading.Event,
    ) -> None:
        self._handback = handback
        self._store = store
        self._record = record
        self._lease = lease
        self._workspace = workspace
        self._deadline = deadline
        self._share = FETCH_SHARE
        # A retried task keeps the progress its lost attempt reached (the wire never goes
        # backwards): this attempt's whole bar is laid out above it, so it moves at once.
        self._floor = record.progress
        self._written = record.progress
        self._written_at = 0.0

    @property
    def workspace(self) -> Path:
        return self._workspace

    def stage(self, share: tuple[int, int]) -> TaskContext:
        """Map later `progress` fractions onto this share of the progress bar."""
        self._share = share
        return self

    def check(self) -> None:
        """Raise when the render must stop: lease lost, shutting down, or past the time limit."""
        if self._handback.is_set():
            raise HandingBack(f"shutting down: {self._record.id} goes back to the queue")
        if self._lease.lost:
            raise LeaseLost(f"lost the lease on {self._record.id}")
        if time.time() > self._deadline:
            raise GenerationTimeout(
                "the render ran past its time limit: ask for a shorter or smaller video"
            )

    def progress(self, fraction: float) -> None:
        self.check()
        low, high = self._share
        bar = low + (high - low) * min(max(fraction, 0.0), 1.0)
        percent = int(self._floor + bar * (100 - self._floor) / 100)
        now = time.monotonic()
        if percent > self._written and now - self._written_at >= PROGRESS_WRITE_INTERVAL:
            if not self._store.set_progress(self._record.id, self._record.attempt, percent):
                raise LeaseLost(f"lost the lease on {self._record.id}")
            self._written, self._written_at = percent, now


class Worker:
    """Claims tasks one at a time and carries each to completed or failed."""

    def __init__(
        self,
        store: TaskStore,
        blobs: BlobStore,
        intake: Intake,
        models: Mapping[str, ModelRoute],
        workspace_root: Path,
        config: WorkerConfig,
        *,
        owner: str,
        metrics: Metrics | None = None,
        handback: threading.Event | None = None,
    ) -> None:
        self._metrics = metrics
        self.handback = handback or threading.Event()
        self._store = store
        self._blobs = blobs
        self._intake = intake
        self.routes = models
        self._workspaces = workspace_root
        self._config = config
        self.owner = owner

    def run(self, stop: threading.Event, wake: threading.Event) -> None:
        """Work until `stop` is set; `wake` is set when a task may be waiting."""
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the store is unreachable: back off, never die
                log.exception("worker %s could not claim a task", self.owner)
                worked = False
            if not worked:
                wake.wait(self._config.poll_interval_seconds)
                wake.clear()

    def run_once(self) -> bool:
        """Claim and process one task; False when there was none."""
        now = time.time()
        record = self._store.claim(self.owner, self._config.lease_seconds, now, list(self.routes))
        if record is None:
            return False
        if self._metrics is not None:
            self._metrics.claim_latency.observe(max(0.0, now - record.created_at))
        token = logs.task_id.set(record.id)
        try:
            self.process(record)
        finally:
            logs.task_id.reset(token)
        return True

    def process(self, record: TaskRecord) -> None:
        """Render a claimed task and record its outcome (fenced by its attempt)."""
        log.info("task %s: attempt %d claimed by %s", record.id, record.attempt, self.owner)
        workspace = self._workspaces / record.id
        shutil.rmtree(workspace, ignore_errors=True)  # leftovers of a crashed attempt
        workspace.mkdir(parents=True)
        try:
            with Lease(self._store, record, self._config) as lease:
                deadline = time.time() + self._config.render_timeout_seconds
                context = TaskContext(
                    self._store, record, lease, workspace, deadline, self.handback
                )
                self._render(record, context)
        except HandingBack:
            handed = self._store.release(record.id, record.attempt, time.time())
            log.info("task %s: handed back to the queue (%s)", record.id, handed)
        except LeaseLost:
            log.warning(
                "task %s: attempt %d is no longer this worker's (cancelled or reassigned); "
                "stopping",
                record.id,
                record.attempt,
            )
        except TaskFailure as failure:
            log.info("task %s failed: %s: %s", record.id, failure.code, failure.message)
            self._fail(record, failure.code, failure.message)
            self._count("failed", failure.code)
        except Exception:
            log.exception("task %s: the render failed unexpectedly", record.id)
            self._fail(
                record,
                TaskErrorCode.GENERATION_FAILED.value,
                f"rendering failed unexpectedly; the server log has the details under {record.id}",
            )
            self._count("failed", TaskErrorCode.GENERATION_FAILED.value)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

    def _count(self, status: str, code: str = "") -> None:
        if self._metrics is not None:
            self._metrics.tasks_finished.labels(status, code).inc()

    def _render(self, record: TaskRecord, context: TaskContext) -> None:
        started = time.monotonic()
        route = self.routes[record.model]
        refs = self._intake.gather(
            record.request,
            context.workspace,
            record.key_id,
            context.stage(FETCH_SHARE).progress,
            check=context.check,
        )
        request = build_engine_request(record, refs, route.preset)
        result = route.engine.generate(request, context.stage(RENDER_SHARE))
        context.check()
        key = result_key(record.id)
        self._blobs.put(key, result.path)
        now = time.time()
        completed = self._store.complete(
            record.id,
            record.attempt,
            result_key=key,
            video_duration=round(result.frames / FPS),
            now=now,
            result_expires_at=now + self._config.retention_seconds,
            size=(result.width, result.height),
            summary=result.summary.to_json() if result.summary is not None else None,
        )
        if not completed:
            # Another attempt owns the task now (or the task was deleted); its result is the
            # one that counts.
            self._blobs.delete(key)
            raise LeaseLost(f"lost the lease on {record.id} before completing")
        log.info("task %s completed in attempt %d", record.id, record.attempt)
        self._count("completed")
        if self._metrics is not None:
            self._metrics.render_seconds.labels(route.engine.name, record.model).observe(
                time.monotonic() - started
            )

    def _fail(self, record: TaskRecord, code: str, message: str) -> None:
        message = without_paths(message, [self._workspaces])
        if not self._store.fail(
            record.id, record.attempt, code=code, message=message, now=time.time()
        ):
            log.warning(
                "task %s: failure not recorded, attempt %d is stale", record.id, record.attempt
            )


class Housekeeper:
    """The reaper and the retention sweep, run periodically beside the workers."""

    def __init__(
        self,
        store: TaskStore,
        blobs: BlobStore,
        workspace_root: Path,
        *,
        max_attempts: int,
        stale_workspace_seconds: float,
        sweep_uploads: Callable[[float], int] = lambda _now: 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sweep_uploads = sweep_uploads
        self._store = store
        self._blobs = blobs
        self._workspaces = workspace_root
        self._max_attempts = max_attempts
        self._stale_after = stale_workspace_seconds
        self._clock = clock

    def reap(self) -> None:
        """Requeue tasks whose worker stopped renewing its lease; fail those out of tries."""
        outcome = self._store.reap(self._clock(), self._max_attempts)
        for task_id in outcome.requeued:
            log.warning("task %s: its worker's lease expired; requeued", task_id)
        for task_id in outcome.failed:
            log.error("task %s: its workers stopped %d times; failed", task_id, self._max_attempts)

    def sweep(self, now: float | None = None) -> None:
        """Delete results and uploads past retention (as of `now`), and idle workspaces."""
        now = self._clock() if now is None else now
        while expired := self._store.expired_results(now):
            for task_id, key in expired:
                for owned in {key, *blob_keys(task_id)}:  # the video and its pictures
                    self._blobs.delete(owned)
                self._store.forget_result(task_id)
                log.info("task %s: result deleted after the retention period", task_id)
        if deleted := self._sweep_uploads(now):
            log.info("%d uploaded file(s) deleted after the retention period", deleted)
        if not self._workspaces.is_dir():
            return
        folders = [p for p in self._workspaces.iterdir() if p.is_dir()]
        statuses = self._store.statuses([p.name for p in folders])
        for folder in folders:
            status = statuses.get(folder.name)
            idle = now - folder.stat().st_mtime > self._stale_after
            if idle and status in (None, "completed", "failed"):
                shutil.rmtree(folder, ignore_errors=True)

    def run(self, stop: threading.Event, reap_every: float, sweep_every: float) -> None:
        """Reap and sweep on their intervals until `stop` is set."""
        next_sweep = 0.0
        while True:
            try:
                self.reap()
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + sweep_every
            except Exception:
                log.exception("housekeeping failed; trying again")
            if stop.wait(reap_every):
                return
