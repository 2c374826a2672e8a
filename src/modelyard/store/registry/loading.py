"""Loading registry rows into entities: a page of models or versions in a few queries, whatever its size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from modelyard.entities import ModelVersion, ModelVersionStage, RegisteredModel, RegisteredModelAlias
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
    SqlRegisteredModelTag,
)


def load_versions(
    session: Session, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], ModelVersion]:
    if not keys:
        return {}
    wanted = list(dict.fromkeys(keys))
    key_cols = tuple_(SqlModelVersion.name, SqlModelVersion.version)
    rows = session.scalars(select(SqlModelVersion).where(key_cols.in_(wanted))).all()
    tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    for tag in session.scalars(
        select(SqlModelVersionTag)
        .where(tuple_(SqlModelVersionTag.name, SqlModelVersionTag.version).in_(wanted))
        .order_by(SqlModelVersionTag.key)
    ):
        tags[(tag.name, tag.version)][tag.key] = tag.value or ""
    aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
    for alias in session.scalars(
        select(SqlRegisteredModelAlias)
        .where(tuple_(SqlRegisteredModelAlias.name, SqlRegisteredModelAlias.version).in_(wanted))
        .order_by(SqlRegisteredModelAlias.alias)
    ):
        aliases[(alias.name, alias.version)].append(alias.alias)
    out = {}
    for row in rows:
        key = (row.name, row.version)
        out[key] = ModelVersion(
            name=row.name,
            version=str(row.version),
            creation_timestamp=row.creation_time,
            last_updated_timestamp=row.last_updated_time,
            description=row.description,
            user_id=row.user_id,
            current_stage=row.current_stage,
            source=row.source,
            run_id=row.run_id,
            status=row.status,
            status_message=row.status_message,
            tags=tags.get(key, {}),
            run_link=row.run_link,
            aliases=aliases.get(key, []),
            model_id=row.model_id,
        )
    return out

def load_models(session: Session, names: Sequence[str]) -> list[RegisteredModel]:
    if not names:
        return []
    wanted = list(dict.fromkeys(names))
    rows = session.scalars(select(SqlRegisteredModel).where(SqlRegisteredModel.name.in_(wanted))).all()
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for tag in session.scalars(
        select(SqlRegisteredModelTag)
        .where(SqlRegisteredModelTag.name.in_(wanted))
        .order_by(SqlRegisteredModelTag.key)
    ):
        tags[tag.name][tag.key] = tag.value or ""
    aliases: dict[str, list[RegisteredModelAlias]] = defaultdict(list)
    for alias in session.scalars(
        select(SqlRegisteredModelAlias)
        .where(SqlRegisteredModelAlias.name.in_(wanted))
        .order_by(SqlRegisteredModelAlias.alias)
    ):
        aliases[alias.name].append(RegisteredModelAlias(alias.alias, str(alias.version)))
    latest_keys = [
        (name, version)
        for name, _stage, version in session.execute(
            select(SqlModelVersion.name, SqlModelVersion.current_stage, func.max(SqlModelVersion.version))
            .where(SqlModelVersion.name.in_(wanted))
            .group_by(SqlModelVersion.name, SqlModelVersion.current_stage)
        ).all()
    ]
    versions = load_versions(session, latest_keys)
    latest: dict[str, list[ModelVersion]] = defaultdict(list)
    stage_rank = {stage: i for i, stage in enumerate(ModelVersionStage.ALL)}
    for (name, _), mv in sorted(versions.items(), key=lambda kv: stage_rank.get(kv[1].current_stage, 9)):
        latest[name].append(mv)
    by_name = {
        row.name: RegisteredModel(
            name=row.name,
            creation_timestamp=row.creation_time,
            last_updated_timestamp=row.last_updated_time,
            description=row.description,
            latest_versions=latest.get(row.name, []),
            tags=tags.get(row.name, {}),
            aliases=aliases.get(row.name, []),
        )
        for row in rows
    }
    return [by_name[n] for n in wanted if n in by_name]
