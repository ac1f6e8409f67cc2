"""Webhooks: POST each finished task to its `callback_url`, signed per Standard Webhooks.

Deliveries come from the outbox the task store fills in the same transaction that ends a
task. The sender claims due deliveries, signs the task object with the owning key's secret
(`webhook-id`, `webhook-timestamp`, `webhook-signature`), posts it through the same SSRF
rules as reference downloads, and records every try. A non-2xx answer or a network error is
retried with exponential backoff until the attempts run out.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from standardwebhooks import Webhook

from r2v.errors import R2VError
from r2v.refs.fetch import Fetcher
from r2v.tasks.keys import KeyService
from r2v.tasks.ports import Delivery, DeliveryAttempt, WebhookStore
from r2v.tasks.service import TaskService

log = logging.getLogger("r2v.webhooks")

MAX_BACKOFF_SECONDS = 4 * 3600.0
CLAIM_LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class WebhookConfig:
    max_attempts: int = 8
    retry_base_seconds: float = 5.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0


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

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set."""
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception:
                log.exception("webhook delivery pass failed; trying again")
                sent = 0
            if not sent:
                stop.wait(self._config.poll_seconds)

    def run_once(self, limit: int = 10) -> int:
        """Try every due delivery (up to `limit`); how many were tried."""
        due = self._store.claim_deliveries(self._clock(), limit, CLAIM_LEASE_SECONDS)
        for delivery in due:
            self.deliver(delivery)
        return len(due)

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
