"""Webhooks: POST each finished task to its `callback_url`, signed per Standard Webhooks.

Deliveries come from the outbox the task store fills in the same transaction that ends a
task. The sender claims due deliveries, signs the task object with the owning key's secret
(`webhook-id`, `webhook-timestamp`, `webhook-signature`), posts it through the same SSRF
rules as reference downloads, and records every try. A non-2xx answer or a network error is
retried with exponential backoff until the attempts run out.

Deliveries go out concurrently (`concurrency` at once), at most `per_host` to one receiving
host and port and half of them to one key's receivers, so a slow receiver slows only its
own deliveries: one due for a busy host (or key) is put back for a moment instead of taking
a slot. Every try ends by its timeout (every byte
of it), and a claim lasts longer than that, so two replicas never send one delivery at once.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from r2v.errors import R2VError
from r2v.refs.fetch import Fetcher
from r2v.tasks.keys import KeyService
from r2v.tasks.ports import Delivery, DeliveryAttempt, WebhookStore
from r2v.tasks.service import TaskService

log = logging.getLogger("r2v.webhooks")

MAX_BACKOFF_SECONDS = 4 * 3600.0


@dataclass(frozen=True)
class WebhookConfig:
    max_attempts: int = 8
    retry_base_seconds: float = 5.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0
    concurrency: int = 16
    per_host: int = 2

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery stays claimed: well past the end of its one try."""
        return 2 * self.timeout_seconds + 30.0

    @property
    def per_key(self) -> int:
        """Slots one key's deliveries may take at once: half, so others always find some."""
        return max(1, self.concurrency // 2)

    @property
    def busy_host_delay(self) -> float:
        """How far a delivery for a host with no free slot is put back (a second: its turn
        comes soon after a slot frees, at the cost of one write a second while it waits)."""
        return min(self.timeout_seconds, 1.0)


def _receiver(url: str) -> str:
    """The receiving end a delivery goes to (host and port), the unit slots are shared by."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{(parts.hostname or '').lower()}:{port}"


def backoff(attempt: int, base: float) -> float:
    """Seconds before try `attempt + 1`: base, then 4x longer each time, capped at 4 h."""
    return float(min(MAX_BACKOFF_SECONDS, base * 4 ** (attempt - 1)))


class WebhookSender:
    """Delivers the webhook outbox."""

    def __init__(
        self,
        store: WebhookStore,
        tasks: TaskService,
        keys: KeyService,
        fetcher: Fetcher,
        config: WebhookConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tasks = tasks
        self._keys = keys
        self._fetcher = fetcher
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._per_host: Counter[str] = Counter()
        self._per_key: Counter[str] = Counter()
        self._slot_freed = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set (then let the tries in flight end)."""
        config = self._config
        with ThreadPoolExecutor(config.concurrency, thread_name_prefix="r2v-webhook") as pool:
            while not stop.is_set():
                try:
                    started = self.dispatch(pool)
                except Exception:
                    log.exception("webhook delivery pass failed; trying again")
                    started = 0
                if not started:
                    self._slot_freed.wait(config.poll_seconds)
                    self._slot_freed.clear()

    def dispatch(self, pool: ThreadPoolExecutor) -> int:
        """Start a try of every due delivery there is a slot for; how many were started."""
        config = self._config
        with self._lock:
            free = config.concurrency - self._in_flight
        if free <= 0:
            return 0
        now = self._clock()
        due = self._store.claim_deliveries(now, free, config.lease_seconds)
        started = 0
        for delivery in due:
            host = _receiver(delivery.url)
            with self._lock:
                busy = (
                    self._per_host[host] >= config.per_host
                    or self._per_key[delivery.key_id] >= config.per_key
                )
                if not busy:
                    self._per_host[host] += 1
                    self._per_key[delivery.key_id] += 1
                    self._in_flight += 1
            if busy:  # its host (or its key) has slots enough in use: later, taking none
                self._store.postpone(delivery.id, now + config.busy_host_delay)
                continue
            pool.submit(self._deliver_in_slot, delivery, host)
            started += 1
        return started

    def _deliver_in_slot(self, delivery: Delivery, host: str) -> None:
        try:
            self.deliver(delivery)
        except Exception:  # recording the try failed: the claim lapses and it is retried
            log.exception("webhook %s: the try could not be recorded", delivery.id)
        finally:
            with self._lock:
                for counter, name in ((self._per_host, host), (self._per_key, delivery.key_id)):
                    counter[name] -= 1
                    if not counter[name]:
                        del counter[name]
                self._in_flight -= 1
            self._slot_freed.set()

    def deliver(self, delivery: Delivery) -> None:
        """Make one try of one delivery and record it."""
        attempt = delivery.attempts + 1
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            body, headers = self._signed(delivery)
            status_code = self._fetcher.post(
                delivery.url, body, headers, self._config.timeout_seconds
            )
            if not 200 <= status_code < 300:
                error = f"the receiver answered HTTP {status_code}"
        except R2VError as exc:
            error = exc.message
        except Exception as exc:  # a bug or a broken row must not stop other deliveries
            log.exception("webhook %s failed unexpectedly", delivery.id)
            error = f"{type(exc).__name__}: {exc}"
        now = self._clock()
        delivered = error is None
        give_up = not delivered and attempt >= self._config.max_attempts
        next_at = (
            None
            if delivered or give_up
            else now + backoff(attempt, self._config.retry_base_seconds)
        )
        self._store.record_attempt(
            DeliveryAttempt(
                delivery_id=delivery.id,
                attempt=attempt,
                at=now,
                status_code=status_code,
                error=error,
                duration_ms=int((time.monotonic() - started) * 1000),
            ),
            delivered=delivered,
            next_attempt_at=next_at,
        )
        if delivered:
            log.info("webhook %s delivered on try %d", delivery.id, attempt)
        elif give_up:
            log.warning("webhook %s given up after %d tries: %s", delivery.id, attempt, error)

    def _signed(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
        """The task object as the body, and the Standard Webhooks headers signing it."""
        key = self._keys.get(delivery.key_id)
        if key is None or not key.webhook_secret:
            raise R2VError("the API key that created the task has no webhook secret")
        task = self._tasks.task_for_webhook(delivery.task_id)
        payload = task.model_dump_json(exclude_none=True)
        sent_at = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        signature = Webhook(key.webhook_secret).sign(delivery.id, sent_at, payload)
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        return payload.encode(), headers
