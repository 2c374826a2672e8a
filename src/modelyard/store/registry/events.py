"""The registry's history: an append-only log of every change, written in the change's transaction.

MLflow keeps no history of stage or alias moves, so "which version was in Production on date X, who
moved the alias, how do I roll back?" has no answer there. Here every registry write appends one
event (or one per version it touches: archiving by `archive_existing_versions` is an event of each
archived version) through `record(session, ...)` inside the store's write transaction, so a change
that fails or rolls back leaves no event, and an event never exists without its change.

Reading: `list_events` pages newest first by `event_id` (keyset), for a model, a version or an
endpoint; `holders_at` replays a model's alias or stage events up to a time to say which version(s)
held it then. Who: `actor`, from the `current_actor` context variable the HTTP layer sets per request
(the authenticated user when there is one, the client's `user` otherwise), or None.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from modelyard.entities import ModelVersionStage, PagedList
from modelyard.exceptions import ModelyardException
from modelyard.store.search.paging import decode_position, next_keyset_page, query_fingerprint
from modelyard.store.sql.registry_schema import SqlRegistryEvent
from modelyard.store.webhooks import outbox

# --- kinds -------------------------------------------------------------------------------------
MODEL_CREATED = "model_created"
MODEL_RENAMED = "model_renamed"
MODEL_DELETED = "model_deleted"
MODEL_DESCRIPTION = "model_description_set"
MODEL_TAG_SET = "model_tag_set"
MODEL_TAG_DELETED = "model_tag_deleted"
VERSION_CREATED = "version_created"
VERSION_DELETED = "version_deleted"
VERSION_DESCRIPTION = "version_description_set"
VERSION_TAG_SET = "version_tag_set"
VERSION_TAG_DELETED = "version_tag_deleted"
STAGE_TRANSITIONED = "stage_transitioned"
ALIAS_SET = "alias_set"
ALIAS_DELETED = "alias_deleted"
DEPLOY_STARTED = "deploy_started"
DEPLOY_SUCCEEDED = "deploy_succeeded"
DEPLOY_FAILED = "deploy_failed"
DEPLOY_ROLLED_BACK = "deploy_rolled_back"
TRAFFIC_SHIFTED = "traffic_shifted"
ENDPOINT_DELETED = "endpoint_deleted"
#: The kinds a client may append itself (the deploy step reports its outcome); every other kind is
#: written only by the store, as a side effect of the change it records.
DEPLOY_KINDS = (DEPLOY_STARTED, DEPLOY_SUCCEEDED, DEPLOY_FAILED, DEPLOY_ROLLED_BACK, TRAFFIC_SHIFTED, ENDPOINT_DELETED)
ALL_KINDS = (
    MODEL_CREATED, MODEL_RENAMED, MODEL_DELETED, MODEL_DESCRIPTION, MODEL_TAG_SET, MODEL_TAG_DELETED,
    VERSION_CREATED, VERSION_DELETED, VERSION_DESCRIPTION, VERSION_TAG_SET, VERSION_TAG_DELETED,
    STAGE_TRANSITIONED, ALIAS_SET, ALIAS_DELETED, *DEPLOY_KINDS,
)  # fmt: skip

#: Registry kinds webhooks receive, under their webhook names (`modelyard.store.webhooks.outbox`).
WEBHOOK_KINDS = {
    VERSION_CREATED: outbox.MODEL_VERSION_CREATED,
    STAGE_TRANSITIONED: outbox.STAGE_TRANSITIONED,
    ALIAS_SET: outbox.ALIAS_SET,
    DEPLOY_SUCCEEDED: outbox.DEPLOY_FINISHED,
    DEPLOY_FAILED: outbox.DEPLOY_FINISHED,
    DEPLOY_ROLLED_BACK: outbox.DEPLOY_FINISHED,
}

MAX_EVENTS_PAGE = 1000
MAX_DETAILS_CHARS = 20_000

#: Who is making the current request's changes; the HTTP layer sets it (see `acting_as`).
current_actor: ContextVar[str | None] = ContextVar("modelyard_registry_actor", default=None)


@contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


#: What a `RegistryEvent` is built from (`RegistryEvent.from_columns`).
EVENT_COLUMNS = (
    SqlRegistryEvent.event_id,
    SqlRegistryEvent.event_time,
    SqlRegistryEvent.model_name,
    SqlRegistryEvent.kind,
    SqlRegistryEvent.version,
    SqlRegistryEvent.subject,
    SqlRegistryEvent.endpoint,
    SqlRegistryEvent.actor,
    SqlRegistryEvent.details,
)


@dataclass(frozen=True)
class RegistryEvent:
    event_id: int
    timestamp: int
    name: str
    kind: str
    version: str | None = None
    subject: str | None = None
    endpoint: str | None = None
    actor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": str(self.event_id),
            "timestamp": self.timestamp,
            "name": self.name,
            "kind": self.kind,
            "details": self.details,
        }
        for key in ("version", "subject", "endpoint", "actor"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        return out

    @classmethod
    def from_columns(cls, row: Sequence[Any]) -> RegistryEvent:
        """From a row of `EVENT_COLUMNS` (plain tuples: a page of 1,000 events builds in a fraction
        of the time ORM instances take)."""
        event_id, when, name, kind, version, subject, endpoint, actor, details = row
        return cls(
            event_id=event_id,
            timestamp=when,
            name=name,
            kind=kind,
            version=None if version is None else str(version),
            subject=subject,
            endpoint=endpoint,
            actor=actor,
            details=json.loads(details or "{}"),
        )


# --- writing -----------------------------------------------------------------------------------
def record(
    session: Session,
    kind: str,
    name: str,
    when: int,
    *,
    version: int | None = None,
    subject: str | None = None,
    endpoint: str | None = None,
    **details: Any,
) -> None:
    """Append one event in `session`'s transaction (the caller's change and this commit together),
    and queue it for the webhooks that want it (`WEBHOOK_KINDS`) in the same transaction."""
    kept = {k: v for k, v in details.items() if v is not None}
    body = json.dumps(kept, separators=(",", ":"))
    if len(body) > MAX_DETAILS_CHARS:
        raise ModelyardException.invalid_parameter(f"Event details exceed {MAX_DETAILS_CHARS} characters.")
    actor = current_actor.get()
    session.add(
        SqlRegistryEvent(
            event_time=when,
            model_name=name,
            version=version,
            kind=kind,
            subject=subject,
            endpoint=endpoint,
            actor=actor,
            details=body,
        )
    )
    if (hook_kind := WEBHOOK_KINDS.get(kind)) is not None:
        data = _webhook_data(kind, name, version, subject, endpoint, actor, kept)
        outbox.enqueue(session, hook_kind, data, when)


def _webhook_data(
    kind: str, name: str, version: int | None, subject: str | None, endpoint: str | None, actor: str | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """A webhook payload's `data`: the model and version, what moved where, who, and the details."""
    data: dict[str, Any] = {"name": name, "version": None if version is None else str(version), **details}
    if kind == ALIAS_SET:
        data["alias"] = subject
    elif kind == STAGE_TRANSITIONED:
        data["to_stage"] = subject
    elif kind in DEPLOY_KINDS:
        data["endpoint"] = endpoint
        data["outcome"] = kind.removeprefix("deploy_")
    if "from_version" in data and data["from_version"] is not None:
        data["from_version"] = str(data["from_version"])
    if actor is not None:
        data["actor"] = actor
    return {k: v for k, v in data.items() if v is not None}


def rename(session: Session, name: str, new_name: str) -> None:
    """History follows its model to the new name."""
    session.execute(
        update(SqlRegistryEvent)
        .where(SqlRegistryEvent.model_name == name)
        .values(model_name=new_name)
        .execution_options(synchronize_session=False)
    )


def purge(session: Session, name: str) -> None:
    session.execute(delete(SqlRegistryEvent).where(SqlRegistryEvent.model_name == name))


# --- reading -----------------------------------------------------------------------------------
def list_events(
    session: Session,
    name: str | None = None,
    version: int | None = None,
    endpoint: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> PagedList[RegistryEvent]:
    """Events newest first, for a model (and one of its versions) or for an endpoint."""
    if name is None and endpoint is None:
        raise ModelyardException.invalid_parameter("Name a registered model or an endpoint.")
    if version is not None and name is None:
        raise ModelyardException.invalid_parameter("A version needs the registered model's name.")
    if not 1 <= max_results <= MAX_EVENTS_PAGE:
        raise ModelyardException.invalid_parameter(f"max_results must be between 1 and {MAX_EVENTS_PAGE}.")
    fingerprint = query_fingerprint("registry_events", name, version, endpoint)
    position = decode_position(page_token, fingerprint, ["int"])
    stmt = select(*EVENT_COLUMNS)
    if name is not None:
        stmt = stmt.where(SqlRegistryEvent.model_name == name)
    if version is not None:
        stmt = stmt.where(SqlRegistryEvent.version == version)
    if endpoint is not None:
        stmt = stmt.where(SqlRegistryEvent.endpoint == endpoint)
    if position.after is not None:
        stmt = stmt.where(SqlRegistryEvent.event_id < position.after[0])
    stmt = stmt.order_by(SqlRegistryEvent.event_id.desc()).offset(position.offset).limit(max_results + 1)
    rows = [RegistryEvent.from_columns(r) for r in session.execute(stmt)]
    page, token = next_keyset_page(rows, max_results, fingerprint, lambda e: [e.event_id])
    return PagedList(page, token)


def variant_versions(timeline: Sequence[RegistryEvent]) -> dict[str, tuple[str, str]]:
    """Which (model, version) each variant name of an endpoint serves, from its history (newest
    first, as `list_events` pages it): `deploy_succeeded` events name the variant they created."""
    versions: dict[str, tuple[str, str]] = {}
    for event in reversed(timeline):  # oldest first: a later deployment of a variant name wins
        variant = event.details.get("variant")
        if event.kind == DEPLOY_SUCCEEDED and variant and event.version:
            versions[str(variant)] = (event.name, event.version)
    return versions


def deployed_endpoints(session: Session, name: str, version: int) -> list[str]:
    """The endpoints a deployment of this version ever succeeded on, by name: where it may serve
    now (the version page's score box asks those, not the version's whole history)."""
    stmt = (
        select(SqlRegistryEvent.endpoint)
        .where(
            SqlRegistryEvent.model_name == name,
            SqlRegistryEvent.version == version,
            SqlRegistryEvent.kind == DEPLOY_SUCCEEDED,
            SqlRegistryEvent.endpoint.is_not(None),
        )
        .distinct()
        .order_by(SqlRegistryEvent.endpoint)
    )
    return [str(e) for e in session.scalars(stmt)]


def holders_at(
    session: Session, name: str, when: int, alias: str | None = None, stage: str | None = None
) -> list[str]:
    """The version(s) that held `alias` (at most one) or `stage` (any number) at time `when` (ms),
    by replaying the model's events up to then; newest version first."""
    if (alias is None) == (stage is None):
        raise ModelyardException.invalid_parameter("Give exactly one of alias and stage.")
    stmt = (
        select(SqlRegistryEvent)
        .where(SqlRegistryEvent.model_name == name, SqlRegistryEvent.event_time <= when)
        .order_by(SqlRegistryEvent.event_id)
    )
    if alias is not None:
        stmt = stmt.where(SqlRegistryEvent.kind.in_((ALIAS_SET, ALIAS_DELETED)), SqlRegistryEvent.subject == alias)
        holder: int | None = None
        for row in session.scalars(stmt):
            holder = row.version if row.kind == ALIAS_SET else None
        return [] if holder is None else [str(holder)]
    wanted = ModelVersionStage.canonical(stage or "")
    stmt = stmt.where(SqlRegistryEvent.kind.in_((STAGE_TRANSITIONED, VERSION_DELETED)))
    stages: dict[int, str | None] = {}
    for row in session.scalars(stmt):
        if row.version is None:
            continue
        stages[row.version] = None if row.kind == VERSION_DELETED else row.subject
    return [str(v) for v in sorted((v for v, s in stages.items() if s == wanted), reverse=True)]


def last_move(session: Session, name: str, alias: str | None = None, stage: str | None = None) -> SqlRegistryEvent | None:
    """The latest alias event of `alias`, or the latest transition *into* `stage` that was not
    itself the archiving side effect of another transition: what a rollback undoes."""
    stmt = select(SqlRegistryEvent).where(SqlRegistryEvent.model_name == name)
    if alias is not None:
        stmt = stmt.where(SqlRegistryEvent.kind.in_((ALIAS_SET, ALIAS_DELETED)), SqlRegistryEvent.subject == alias)
    else:
        stmt = stmt.where(
            SqlRegistryEvent.kind == STAGE_TRANSITIONED,
            SqlRegistryEvent.subject == ModelVersionStage.canonical(stage or ""),
            ~SqlRegistryEvent.details.contains('"archived_by"'),
        )
    return session.scalars(stmt.order_by(SqlRegistryEvent.event_id.desc()).limit(1)).first()


def details_of(row: SqlRegistryEvent) -> dict[str, Any]:
    return json.loads(row.details or "{}")
