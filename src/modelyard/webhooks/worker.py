"""The delivery worker: a background thread in each tracking-service worker process that sends
queued webhook deliveries, so no API call ever waits on a receiver.

It claims due rows from `webhook_deliveries` (`store.webhooks.deliveries.claim`: safe with many
processes on one database), sends each from its own short-lived daemon thread with a timeout (at most
`concurrency` at once, so a receiver that hangs holds one slot, not the queue), and records the
outcome: delivered on a 2xx; otherwise retried after an exponential backoff until `max_attempts`,
then failed. Redirects are not followed (a 3xx is a failed attempt). Each attempt connects only to
an address `store.webhooks.targets` allows (no link-local or metadata addresses; private ones only when
allowed). It wakes when a transaction in this process queued something (`outbox.wakeup`), and polls
every `poll_interval` seconds for work queued elsewhere and for retries that came due. About once an
hour it prunes the finished part of the delivery log (`deliveries.prune`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import Engine

from modelyard.store.webhooks import deliveries, outbox, targets
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
    allow_private: bool = False
    #: The delivery log's bounds (`deliveries.prune`; 0 turns a rule off) and how often to apply them.
    log_days: float = 30.0
    log_rows: int = 10_000
    prune_every_seconds: float = 3600.0

    @property
    def lease_ms(self) -> int:
        """How long a claim holds a row: past this a worker is presumed dead and the row is retried."""
        return int((2 * self.timeout + 30) * 1000)


class PinnedTLS(HTTPAdapter):
    """HTTPS to the checked address while TLS names (SNI) and verifies the host name of the URL."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def send(claimed: Claimed, timeout: float, allow_private: bool = False) -> tuple[int | None, str | None, int]:
    """POST one signed attempt: (status code or None, error or None, latency in ms)."""
    body = claimed.payload.encode("utf-8")
    headers = signing.headers(claimed.secret, body, claimed.kind, claimed.delivery_id)
    headers["User-Agent"] = f"modelyard-webhooks/{__version__}"
    started = time.monotonic()
    try:
        target = targets.resolve(claimed.url, allow_private)
    except targets.TargetRefused as exc:
        return None, f"Refused: {exc}", 0
    headers["Host"] = target.host
    try:
        with requests.Session() as session:
            session.trust_env = False  # never through a proxy: the address checked is the one reached
            session.mount("https://", PinnedTLS(target.hostname))
            with session.post(
                target.url, data=body, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
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
        next_prune = time.monotonic() + min(60.0, self.options.prune_every_seconds)
        while not self._stop.is_set():
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + self.options.prune_every_seconds
                self._prune()
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

    def _prune(self) -> None:
        try:
            removed = deliveries.prune(self.engine, self.options.log_days, self.options.log_rows)
            if removed:
                log.info("pruned %s finished webhook deliveries from the log", removed)
        except Exception:  # the database is away or busy: the next round prunes
            log.warning("Could not prune the webhook delivery log", exc_info=True)

    def _deliver(self, claimed: Claimed) -> None:
        try:
            status_code, error, latency = send(claimed, self.options.timeout, self.options.allow_private)
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
