"""Queueing webhook deliveries in the transaction of the change that caused the event.

`enqueue(session, kind, data)` adds one `webhook_deliveries` row per active webhook that wants `kind`,
in the caller's session: the delivery commits with the change or not at all, and the HTTP call that
caused it only pays for an INSERT; the delivery worker (`modelyard.webhooks.worker`) sends it later.

Most stacks have few webhooks and most events have none, so each process keeps, per database, the set
of kinds any active webhook wants, for `CACHE_SECONDS`: an event nobody wants costs no query at all.
When some webhook may want it, the active webhooks are read in the transaction, so a webhook deleted,
paused or narrowed a moment ago never gets it; only a webhook created (or widened) in another process
within the last `CACHE_SECONDS` may miss events in that window. Changes made in this process clear
its cache at once (`invalidate`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from modelyard.store.sql.webhook_schema import SqlWebhook, SqlWebhookDelivery

# --- kinds -------------------------------------------------------------------------------------
MODEL_VERSION_CREATED = "model_version.created"
STAGE_TRANSITIONED = "model_version.stage_transitioned"
ALIAS_SET = "registered_model.alias_set"
DEPLOY_FINISHED = "deploy.finished"
RUN_FINISHED = "run.finished"
#: Sent only by the test-fire action, to that one webhook.
TEST = "webhook.test"
KINDS = (MODEL_VERSION_CREATED, STAGE_TRANSITIONED, ALIAS_SET, DEPLOY_FINISHED, RUN_FINISHED)

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
STATUSES = (PENDING, SENDING, DELIVERED, FAILED)

#: Seconds a process trusts its list of the kinds active webhooks want (0: read it every time).
CACHE_SECONDS = 2.0

_cache: dict[Any, tuple[float, frozenset[str]]] = {}
_cache_lock = threading.Lock()
#: Set after a transaction that queued deliveries commits, so this process's worker sends at once.
wakeup = threading.Event()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _key(bind: Engine) -> Any:
    return bind.url


def invalidate(bind: Engine) -> None:
    with _cache_lock:
        _cache.pop(_key(bind), None)


def _wanted_kinds(session: Session) -> frozenset[str]:
    bind = session.get_bind()
    key = _key(bind)  # type: ignore[arg-type]
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    kinds: set[str] = set()
    for raw in session.scalars(select(SqlWebhook.events).where(SqlWebhook.active.is_(True))):
        kinds.update(json.loads(raw))
    wanted = frozenset(kinds)
    with _cache_lock:
        _cache[key] = (now, wanted)
    return wanted


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def enqueue(session: Session, kind: str, data: dict[str, Any], when: int | None = None) -> int:
    """Queue `kind` with `data` for every active webhook that wants it; returns how many rows."""
    if kind not in _wanted_kinds(session):
        return 0
    webhook_ids = [
        webhook_id
        for webhook_id, raw in session.execute(
            select(SqlWebhook.webhook_id, SqlWebhook.events).where(SqlWebhook.active.is_(True))
        )
        if kind in json.loads(raw)
    ]
    return _insert(session, webhook_ids, kind, data, when)


def enqueue_for(session: Session, webhook_id: str, kind: str, data: dict[str, Any]) -> int:
    """Queue one delivery to one webhook (the test-fire action); returns its delivery id."""
    row = SqlWebhookDelivery(**_rows([webhook_id], kind, data, None)[0])
    session.add(row)
    session.flush()
    _wake_after_commit(session)
    return row.delivery_id


def _insert(session: Session, webhook_ids: list[str], kind: str, data: dict[str, Any], when: int | None) -> int:
    if not webhook_ids:
        return 0
    session.execute(insert(SqlWebhookDelivery), _rows(webhook_ids, kind, data, when))
    _wake_after_commit(session)
    return len(webhook_ids)


def _rows(webhook_ids: list[str], kind: str, data: dict[str, Any], when: int | None) -> list[dict[str, Any]]:
    """One pending row per webhook, due now; the body (and its `event_id`) is the same for all."""
    now = _now_ms()
    event_id = uuid.uuid4().hex
    body = dumps({"event_id": event_id, "kind": kind, "timestamp": when or now, "data": data})
    common = {"event_id": event_id, "kind": kind, "payload": body, "status": PENDING, "attempts": 0}
    return [{**common, "webhook_id": w, "next_attempt_at": now, "creation_time": now} for w in webhook_ids]


def _wake_after_commit(session: Session) -> None:
    event.listen(session, "after_commit", _wake, once=True)


def _wake(_session: Session) -> None:
    wakeup.set()
