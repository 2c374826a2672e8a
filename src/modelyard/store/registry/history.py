"""Reading the registry's history, rolling an alias or stage back, and recording deploy outcomes.

Functions over a `SqlRegistryStore`'s engine; the event log itself is `events`. A rollback is one
transaction that locks the model row (as every alias move and promotion does), reads the last move
of the alias or stage, undoes it and records the undo as new events carrying `rollback_of`, so
the history stays append-only and a second rollback undoes the first.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.entities import ModelVersion, ModelVersionStage, PagedList
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events
from modelyard.store.registry.events import RegistryEvent
from modelyard.store.registry.loading import load_versions
from modelyard.store.registry.validation import parse_version, validate_alias, validate_model_name
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.registry_schema import SqlModelVersion, SqlRegisteredModel, SqlRegisteredModelAlias

#: Names `events.record` takes itself: not allowed as keys of a deploy event's details.
_RESERVED_DETAIL_KEYS = frozenset({"session", "kind", "name", "when", "version", "subject", "endpoint"})


def _now_ms() -> int:
    return int(time.time() * 1000)


def list_events(
    engine: Engine,
    name: str | None = None,
    version: str | int | None = None,
    endpoint: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> PagedList[RegistryEvent]:
    if name is not None:
        validate_model_name(name)
    number = None if version in (None, "") else parse_version(version)  # type: ignore[arg-type]
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        return events.list_events(session, name, number, endpoint or None, max_results, page_token)


def deployed_endpoints(engine: Engine, name: str, version: str | int) -> list[str]:
    """Endpoints a deployment of version `version` of `name` succeeded on (sorted)."""
    validate_model_name(name)
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        return events.deployed_endpoints(session, name, parse_version(version))


def holders_at(engine: Engine, name: str, when: int, alias: str | None = None, stage: str | None = None) -> list[str]:
    """Which version(s) held the alias (or stage) of model `name` at `when` (ms since the epoch)."""
    validate_model_name(name)
    if alias is not None:
        validate_alias(alias)
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        return events.holders_at(session, name, when, alias=alias, stage=stage)


def rollback(engine: Engine, name: str, alias: str | None = None, stage: str | None = None) -> list[ModelVersion]:
    """Undo the last move of `alias` (point it back at the version it held before) or of `stage`
    (the version promoted into it goes back to its previous stage; the versions that promotion
    archived come back). Returns the versions that changed."""
    validate_model_name(name)
    if (alias is None) == (stage is None):
        raise ModelyardException.invalid_parameter("Give exactly one of alias and stage to roll back.")
    with Session(engine, expire_on_commit=False) as session, session.begin():
        model = session.scalars(
            select(SqlRegisteredModel).where(SqlRegisteredModel.name == name).with_for_update()
        ).one_or_none()
        if model is None:
            raise ModelyardException.not_found(f"Registered Model with name={name} not found")
        if alias is not None:
            validate_alias(alias)
            changed = _rollback_alias(session, name, alias)
        else:
            changed = _rollback_stage(session, name, ModelVersionStage.canonical(stage or ""))
        model.last_updated_time = _now_ms()
        session.flush()
        loaded = load_versions(session, [(name, v) for v in changed])
        return [loaded[(name, v)] for v in changed if (name, v) in loaded]


def _rollback_alias(session: Session, name: str, alias: str) -> list[int]:
    last = events.last_move(session, name, alias=alias)
    if last is None:
        raise ModelyardException.invalid_parameter(f"Alias '{alias}' of model '{name}' has no history to roll back.")
    details = events.details_of(last)
    target = details.get("from_version") if last.kind == events.ALIAS_SET else last.version
    if target is None:
        raise ModelyardException.invalid_parameter(
            f"Alias '{alias}' pointed at no version before version {last.version}: nothing to roll back to."
        )
    if session.get(SqlModelVersion, (name, int(target))) is None:
        raise ModelyardException.invalid_parameter(
            f"Alias '{alias}' held version {target} before, but that version has been deleted."
        )
    row = session.get(SqlRegisteredModelAlias, (name, alias))
    events.record(
        session,
        events.ALIAS_SET,
        name,
        _now_ms(),
        version=int(target),
        subject=alias,
        from_version=None if row is None else row.version,
        rollback_of=last.event_id,
    )
    if row is None:
        session.add(SqlRegisteredModelAlias(name=name, alias=alias, version=int(target)))
    else:
        row.version = int(target)
    return [int(target)]


def _rollback_stage(session: Session, name: str, stage: str) -> list[int]:
    last = events.last_move(session, name, stage=stage)
    if last is None or last.version is None:
        raise ModelyardException.invalid_parameter(f"Stage '{stage}' of model '{name}' has no history to roll back.")
    details = events.details_of(last)
    now = _now_ms()
    moves: list[tuple[int, str]] = [(last.version, details.get("from_stage", ModelVersionStage.NONE))]
    moves += [(int(v), stage) for v in details.get("archived", [])]
    changed: list[int] = []
    for number, to_stage in moves:
        row = session.get(SqlModelVersion, (name, number))
        if row is None or row.current_stage == to_stage:
            continue
        events.record(
            session,
            events.STAGE_TRANSITIONED,
            name,
            now,
            version=number,
            subject=to_stage,
            from_stage=row.current_stage,
            rollback_of=last.event_id,
        )
        row.current_stage = to_stage
        row.last_updated_time = now
        changed.append(number)
    if not changed:
        raise ModelyardException.invalid_parameter(
            f"The last move into '{stage}' (version {last.version}) has already been undone."
        )
    return changed


def record_deploy(
    engine: Engine, name: str, version: str | int, kind: str, endpoint: str, details: dict[str, Any] | None = None
) -> RegistryEvent:
    """A deploy outcome reported by the deploy step (the one kind of event a client appends)."""
    validate_model_name(name)
    number = parse_version(version)
    if kind not in events.DEPLOY_KINDS:
        raise ModelyardException.invalid_parameter(f"kind must be one of {', '.join(events.DEPLOY_KINDS)}.")
    if not endpoint or len(endpoint) > 256:
        raise ModelyardException.invalid_parameter("endpoint must be 1 to 256 characters.")
    extra = details or {}
    if not isinstance(extra, dict) or _RESERVED_DETAIL_KEYS & set(extra):
        raise ModelyardException.invalid_parameter(
            f"details must be a JSON object without the keys {', '.join(sorted(_RESERVED_DETAIL_KEYS))}."
        )
    with Session(engine) as session, session.begin():
        if session.get(SqlModelVersion, (name, number)) is None:
            raise ModelyardException.not_found(f"Model Version (name={name}, version={number}) not found")
        events.record(session, kind, name, _now_ms(), version=number, endpoint=endpoint, **extra)
        session.flush()
        page = events.list_events(session, name, number, endpoint, max_results=1)
        return page[0]
