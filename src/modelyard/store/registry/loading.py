"""Loading registry rows into entities: a page of models or versions in a few queries, whatever its size.

A page of 100 registered models is ~600 rows over seven queries, and the Python around the queries
cost far more than the database did (~35 ms of CPU per search). So the queries are built once per
dialect (`_Queries`; building a SELECT is ~0.5 ms of Python each time), select plain columns read by
position (no ORM instances, no per-attribute Row lookups), and on PostgreSQL a list of names or of
(name, version) keys is one text parameter read as an array and joined as `unnest(...)`
(`store/sql/dialect.pg_array_literal`): the statement's text is the same for every page, so psycopg
converts and prepares it once, and no parameter per value is rendered, converted and planned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from modelyard.entities import ModelVersion, ModelVersionStage, RegisteredModel, RegisteredModelAlias
from modelyard.store.sql.dialect import in_list_param, list_param, pg_array_literal
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
    SqlRegisteredModelTag,
)

_STAGE_RANK = {stage: i for i, stage in enumerate(ModelVersionStage.ALL)}


class _Queries:
    """The loading statements for one dialect, with `names` / `key_names` + `key_versions` parameters."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        model_tag, alias, version, version_tag = (
            SqlRegisteredModelTag,
            SqlRegisteredModelAlias,
            SqlModelVersion,
            SqlModelVersionTag,
        )
        self.models = select(
            SqlRegisteredModel.name,
            SqlRegisteredModel.creation_time,
            SqlRegisteredModel.last_updated_time,
            SqlRegisteredModel.description,
        ).where(self._named(SqlRegisteredModel.name))
        self.model_tags = (
            select(model_tag.name, model_tag.key, model_tag.value)
            .where(self._named(model_tag.name))
            .order_by(model_tag.key)
        )
        self.model_aliases = (
            select(alias.name, alias.alias, alias.version).where(self._named(alias.name)).order_by(alias.alias)
        )
        self.latest = (
            select(version.name, func.max(version.version))
            .where(self._named(version.name))
            .group_by(version.name, version.current_stage)
        )
        self.versions: Select[Any] = select(
            version.name,
            version.version,
            version.creation_time,
            version.last_updated_time,
            version.description,
            version.user_id,
            version.current_stage,
            version.source,
            version.run_id,
            version.status,
            version.status_message,
            version.run_link,
            version.model_id,
        ).where(self._keyed(version.name, version.version))
        self.version_tags = (
            select(version_tag.name, version_tag.version, version_tag.key, version_tag.value)
            .where(self._keyed(version_tag.name, version_tag.version))
            .order_by(version_tag.key)
        )
        self.version_aliases = (
            select(alias.name, alias.version, alias.alias)
            .where(self._keyed(alias.name, alias.version))
            .order_by(alias.alias)
        )

    def _named(self, column: Any) -> ColumnElement[bool]:
        return in_list_param(column, "names", String, self.postgres)

    def _keyed(self, name: Any, version: Any) -> ColumnElement[bool]:
        if self.postgres:
            pairs = (
                func.unnest(
                    cast(bindparam("key_names", type_=Text), ARRAY(String)),
                    cast(bindparam("key_versions", type_=Text), ARRAY(Integer)),
                )
                .table_valued("name", "version")
                .render_derived()
            )
            return tuple_(name, version).in_(select(pairs.c.name, pairs.c.version))
        return tuple_(name, version).in_(bindparam("keys", expanding=True))

    def names(self, names: list[str]) -> dict[str, Any]:
        return {"names": list_param(names, str, self.postgres)}

    def keys(self, keys: list[tuple[str, int]]) -> dict[str, Any]:
        if self.postgres:
            return {
                "key_names": pg_array_literal([k[0] for k in keys], str),
                "key_versions": pg_array_literal([k[1] for k in keys], int),
            }
        return {"keys": keys}


_QUERIES = {True: _Queries(postgres=True), False: _Queries(postgres=False)}


def _queries(session: Session) -> _Queries:
    return _QUERIES[session.get_bind().dialect.name == "postgresql"]


def version_from_row(row: Sequence[Any], tags: dict[str, str], aliases: list[str]) -> ModelVersion:
    """A version from a row of `_Queries.versions`' columns, in that order."""
    (name, number, created, updated, description, user_id, stage, source, run_id, status, status_message,
     run_link, model_id) = row  # fmt: skip
    return ModelVersion(
        name=name,
        version=str(number),
        creation_timestamp=created,
        last_updated_timestamp=updated,
        description=description,
        user_id=user_id,
        current_stage=stage,
        source=source,
        run_id=run_id,
        status=status,
        status_message=status_message,
        tags=tags,
        run_link=run_link,
        aliases=aliases,
        model_id=model_id,
    )


def load_versions(
    session: Session, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], ModelVersion]:
    if not keys:
        return {}
    queries = _queries(session)
    params = queries.keys(list(dict.fromkeys(keys)))
    rows = session.execute(queries.versions, params).all()
    tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    for name, number, key, value in session.execute(queries.version_tags, params):
        tags[(name, number)][key] = value or ""
    aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
    for name, number, alias in session.execute(queries.version_aliases, params):
        aliases[(name, number)].append(alias)
    out = {}
    for row in rows:
        key = (row[0], row[1])
        out[key] = version_from_row(row, tags.get(key, {}), aliases.get(key, []))
    return out


def load_models(session: Session, names: Sequence[str]) -> list[RegisteredModel]:
    if not names:
        return []
    queries = _queries(session)
    wanted = list(dict.fromkeys(names))
    params = queries.names(wanted)
    rows = session.execute(queries.models, params).all()
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for name, key, value in session.execute(queries.model_tags, params):
        tags[name][key] = value or ""
    aliases: dict[str, list[RegisteredModelAlias]] = defaultdict(list)
    for name, alias, number in session.execute(queries.model_aliases, params):
        aliases[name].append(RegisteredModelAlias(alias, str(number)))
    latest_keys = [(name, number) for name, number in session.execute(queries.latest, params)]
    versions = load_versions(session, latest_keys)
    latest: dict[str, list[ModelVersion]] = defaultdict(list)
    for (name, _), mv in sorted(versions.items(), key=lambda kv: _STAGE_RANK.get(kv[1].current_stage, 9)):
        latest[name].append(mv)
    by_name = {
        name: RegisteredModel(
            name=name,
            creation_timestamp=created,
            last_updated_timestamp=updated,
            description=description,
            latest_versions=latest.get(name, []),
            tags=tags.get(name, {}),
            aliases=aliases.get(name, []),
        )
        for name, created, updated, description in rows
    }
    return [by_name[n] for n in wanted if n in by_name]
