"""Webhook subscriptions: create, read, update, delete, and the test-fire action.

A webhook is a URL (http or https), the event kinds it wants, and a secret that signs every payload
(`modelyard.webhooks.signing`). The secret is returned once, by create (or by update with
`rotate_secret`), and never again: what a listing shows can be pasted anywhere.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from modelyard.exceptions import ModelyardException
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.webhook_schema import SqlWebhook, SqlWebhookDelivery
from modelyard.store.webhooks import outbox

MAX_URL_CHARS = 2000
MAX_NAME_CHARS = 256
MAX_DESCRIPTION_CHARS = 5000
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 256
MAX_WEBHOOKS = 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    active: bool
    creation_time: int
    last_updated_time: int
    description: str | None = None
    #: Only on the answer to create / rotate; None everywhere else.
    secret: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.webhook_id,
            "name": self.name,
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "creation_timestamp": self.creation_time,
            "last_updated_timestamp": self.last_updated_time,
        }
        if self.description is not None:
            out["description"] = self.description
        if self.secret is not None:
            out["secret"] = self.secret
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Webhook:
        return cls(
            webhook_id=d["id"],
            name=d["name"],
            url=d["url"],
            events=tuple(d.get("events") or ()),
            active=bool(d.get("active", False)),
            creation_time=int(d.get("creation_timestamp", 0)),
            last_updated_time=int(d.get("last_updated_timestamp", 0)),
            description=d.get("description"),
            secret=d.get("secret"),
        )

    @classmethod
    def from_row(cls, row: SqlWebhook, secret: str | None = None) -> Webhook:
        return cls(
            webhook_id=row.webhook_id,
            name=row.name,
            url=row.url,
            events=tuple(json.loads(row.events)),
            active=bool(row.active),
            creation_time=row.creation_time,
            last_updated_time=row.last_updated_time,
            description=row.description,
            secret=secret,
        )


# --- validation --------------------------------------------------------------------------------
def validate_url(url: Any, allow_private: bool = False) -> str:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise ModelyardException.invalid_parameter(f"url must be a string of 1 to {MAX_URL_CHARS} characters.")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ModelyardException.invalid_parameter(f"url '{url}' is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelyardException.invalid_parameter(f"url must be an http:// or https:// URL with a host, got '{url}'.")
    if any(c.isspace() or ord(c) < 32 for c in url) or parts.fragment:
        raise ModelyardException.invalid_parameter("url must not contain whitespace, control characters or a #fragment.")
    from modelyard.store.webhooks.targets import TargetRefused, check_url

    try:
        check_url(url, allow_private)
    except TargetRefused as exc:
        raise ModelyardException.invalid_parameter(f"url '{url}' is not an allowed webhook target: {exc}.") from exc
    return url


def validate_events(events: Any) -> tuple[str, ...]:
    if not isinstance(events, (list, tuple)) or not events or not all(isinstance(e, str) for e in events):
        raise ModelyardException.invalid_parameter(f"events must be a non-empty list of: {', '.join(outbox.KINDS)}.")
    unknown = sorted(set(events) - set(outbox.KINDS))
    if unknown:
        raise ModelyardException.invalid_parameter(
            f"Unknown event kind(s) {', '.join(unknown)}; known: {', '.join(outbox.KINDS)}."
        )
    return tuple(k for k in outbox.KINDS if k in events)


def _validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ModelyardException.invalid_parameter(f"name must be 1 to {MAX_NAME_CHARS} characters.")
    return name


def _validate_description(description: Any) -> str | None:
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS):
        raise ModelyardException.invalid_parameter(f"description must be at most {MAX_DESCRIPTION_CHARS} characters.")
    return description


def _validate_secret(secret: Any) -> str:
    if secret is None:
        return "whsec_" + secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS or not secret.isprintable():
        raise ModelyardException.invalid_parameter(
            f"secret must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} printable characters."
        )
    return secret


def not_found(webhook_id: str) -> ModelyardException:
    return ModelyardException.not_found(f"Webhook '{webhook_id}' not found.")


# --- operations --------------------------------------------------------------------------------
def create(
    engine: Engine,
    name: str,
    url: str,
    events: Sequence[str] | None = None,
    description: str | None = None,
    secret: str | None = None,
    active: bool = True,
    allow_private: bool = False,
) -> Webhook:
    """A new webhook; the answer carries its secret (generated unless given), the only time it does.
    `events` None means every kind; `allow_private`: the URL may name a private address
    (`store.webhooks.targets`)."""
    _validate_name(name)
    validate_url(url, allow_private)
    kinds = outbox.KINDS if events is None else validate_events(events)
    _validate_description(description)
    key = _validate_secret(secret)
    now = _now_ms()
    row = SqlWebhook(
        webhook_id=uuid.uuid4().hex,
        name=name,
        url=url,
        events=json.dumps(list(kinds)),
        secret=key,
        active=bool(active),
        description=description,
        creation_time=now,
        last_updated_time=now,
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if len(session.scalars(select(SqlWebhook.webhook_id).limit(MAX_WEBHOOKS)).all()) >= MAX_WEBHOOKS:
            raise ModelyardException.invalid_parameter(f"A stack holds at most {MAX_WEBHOOKS} webhooks.")
        session.add(row)
    outbox.invalidate(engine)
    return Webhook.from_row(row, secret=key)


def get(engine: Engine, webhook_id: str) -> Webhook:
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        row = session.get(SqlWebhook, webhook_id)
        if row is None:
            raise not_found(webhook_id)
        return Webhook.from_row(row)


def list_all(engine: Engine) -> list[Webhook]:
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        rows = session.scalars(select(SqlWebhook).order_by(SqlWebhook.creation_time, SqlWebhook.webhook_id))
        return [Webhook.from_row(r) for r in rows]


def update(
    engine: Engine,
    webhook_id: str,
    *,
    name: str | None = None,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    rotate_secret: bool = False,
    allow_private: bool = False,
) -> Webhook:
    """Change the given fields (None leaves one as it is); `rotate_secret` makes a new secret and
    returns it, once. Deliveries already queued are signed with the secret current when they go."""
    if name is not None:
        _validate_name(name)
    if url is not None:
        validate_url(url, allow_private)
    kinds = None if events is None else validate_events(events)
    _validate_description(description)
    new_secret = _validate_secret(None) if rotate_secret else None
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.get(SqlWebhook, webhook_id, with_for_update=True)
        if row is None:
            raise not_found(webhook_id)
        if name is not None:
            row.name = name
        if url is not None:
            row.url = url
        if kinds is not None:
            row.events = json.dumps(list(kinds))
        if description is not None:
            row.description = description
        if active is not None:
            row.active = bool(active)
        if new_secret is not None:
            row.secret = new_secret
        row.last_updated_time = _now_ms()
    outbox.invalidate(engine)
    return Webhook.from_row(row, secret=new_secret)


def delete_webhook(engine: Engine, webhook_id: str) -> None:
    """The webhook and its delivery log; queued deliveries are dropped."""
    with Session(engine) as session, session.begin():
        if session.get(SqlWebhook, webhook_id) is None:
            raise not_found(webhook_id)
        session.execute(delete(SqlWebhookDelivery).where(SqlWebhookDelivery.webhook_id == webhook_id))
        session.execute(delete(SqlWebhook).where(SqlWebhook.webhook_id == webhook_id))
    outbox.invalidate(engine)


def fire_test(engine: Engine, webhook_id: str) -> int:
    """Queue a `webhook.test` delivery to this webhook (paused or not); returns the delivery id, whose
    outcome shows in the delivery log."""
    with Session(engine) as session, session.begin():
        row = session.get(SqlWebhook, webhook_id)
        if row is None:
            raise not_found(webhook_id)
        data = {"webhook_id": webhook_id, "name": row.name, "message": "Test delivery from modelyard."}
        return outbox.enqueue_for(session, webhook_id, outbox.TEST, data)
