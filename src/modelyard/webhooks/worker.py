"""The delivery worker: a background thread in each tracking-service worker process that sends
queued webhook deliveries, so no API call ever waits on a receiver.

It claims due rows from `webhook_deliveries` (`store.webhooks.deliveries.claim`: safe with many
processes on one database), sends each from its own short-lived daemon thread with a timeout (at most
`concurrency` at once, so a receiver that hangs holds one slot, not the queue), and records the
outcome: delivered on a 2xx; otherwise retried after an exponential backoff until `max_attempts`,
then failed. Redirects are not followed (a 3xx is a failed attempt). It wakes when a transaction in
this process queued something (`outbox.wakeup`), and polls every `poll_interval` seconds for work
queued elsewhere and for retries that came due.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import requests
from sqlalchemy import Engine

from modelyard.store.webhooks import deliveries, outbox
from modelyard.store.webhooks.deliveries import Claimed
from modelyard.version import __version__
from modelyard.webhooks import signing

log = logging.getLogger(__name__)
#: Bytes of a failing receiver's answer kept in the delivery log.
ERROR_BODY_BYTES = 300


@dataclass(frozen=True)
class WorkerOptions:
    poll_interval: float = 2.0
    timeout: float = 10.0
    max_attempts: int = 8
    backoff_seconds: float = 10.0
    concurrency: int = 4

    @property
    def lease_ms(self) -> int:
        """How long a claim holds a row: past this a worker is presumed dead and the row is retried."""
        return int((2 * self.timeout + 30) * 1000)


def send(claimed: Claimed, timeout: float) -> tuple[int | None, str | None, int]:
    """POST one signed attempt: (status code or None, error or None, latency in ms)."""
    body = claimed.payload.encode("utf-8")
    headers = signing.headers(claimed.secret, body, claimed.kind, claimed.delivery_id)
    headers["User-Agent"] = f"modelyard-webhooks/{__version__}"
    started = time.monotonic()
    try:
        with requests.post(
            claimed.url, data=body, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
        ) as response:
            latency = int((time.monotonic() - started) * 1000)
            if 200 <= response.status_code < 300:
                return response.status_code, None, latency
            text = response.raw.read(ERROR_BODY_BYTES, decode_content=True).decode("utf-8", "replace")
            return response.status_code, f"HTTP {response.status_code}: {text}".strip(), latency
    except (requests.RequestException, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}", int((time.monotonic() - started) * 1000)


class DeliveryWorker:
    def __init__(self, engine: Engine, options: WorkerOptions) -> None:
        self.engine = engine
        self.options = options
        self._stop = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelyard-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; attempts in flight finish or are retried after their lease."""
        self._stop.set()
        outbox.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            outbox.wakeup.clear()
            with self._lock:
                free = self.options.concurrency - self._busy
            if free > 0:
                try:
                    claimed = deliveries.claim(self.engine, free, self.options.lease_ms)
                except Exception:  # the database is away: try again at the next poll
                    log.warning("Could not claim webhook deliveries", exc_info=True)
                    claimed = []
                for item in claimed:
                    with self._lock:
                        self._busy += 1
                    threading.Thread(target=self._deliver, args=(item,), name="modelyard-webhook-send", daemon=True).start()
            outbox.wakeup.wait(self.options.poll_interval)

    def _deliver(self, claimed: Claimed) -> None:
        try:
            status_code, error, latency = send(claimed, self.options.timeout)
            outcome = deliveries.record(
                self.engine,
                claimed,
                status_code=status_code,
                error=error,
                latency_ms=latency,
                max_attempts=self.options.max_attempts,
                backoff_seconds=self.options.backoff_seconds,
            )
            log.info("webhook delivery %s attempt %s: %s", claimed.delivery_id, claimed.attempts, outcome or "superseded")
        except Exception:  # recorded nowhere: the lease expires and the attempt is made again
            log.warning("Webhook delivery %s failed unexpectedly", claimed.delivery_id, exc_info=True)
        finally:
            with self._lock:
                self._busy -= 1
            outbox.wakeup.set()
