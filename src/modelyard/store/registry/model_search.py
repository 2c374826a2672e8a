"""Registered-model searches: a page of models with their tags, aliases and latest versions, in one
statement on PostgreSQL.

A page of 100 models cost ~6-9 ms of CPU in the service, little of it in the database: the search's
SELECT was built afresh per request, and the page took ten round trips (BEGIN, the page's names, then
models, their tags, aliases, latest version numbers, those versions, their tags and aliases by name,
COMMIT), each through SQLAlchemy's ORM execution. Now:
- the page's SELECT is built once per search (filter and order; cached per worker, LIMIT and OFFSET
  bound as parameters) and selects the models' own columns, not just names;
- on PostgreSQL it is the CTE of one statement (`PAGE`) that adds each model's tags and aliases as
  arrays, and joins its latest version per stage with that version's tags as arrays: one row per
  (model, latest version), in the page's order. Compiled once per search, run on an autocommitted
  connection (one round trip, one snapshot), its rows read by position in binary format
  (`store/sql/rows`) and the entities built from the tuples (`models_from_rows`). A version's
  aliases are its model's aliases that point at it, so they are not read twice;
- elsewhere (SQLite, in process) the page's names come from the same SELECT and `loading.load_models`
  reads the rest.
Tried and not kept: the whole page as JSON text built by PostgreSQL (moved ~4 ms of CPU per page onto
the database). Paging is by offset (the page token holds it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Integer, Select, and_, func, select, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by

from modelyard.entities import ModelVersionStage, RegisteredModel, RegisteredModelAlias
from modelyard.store.registry import search
from modelyard.store.registry.loading import version_from_row
from modelyard.store.search.order_by import OrderBy
from modelyard.store.search.paging import query_fingerprint
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
    SqlRegisteredModelTag,
)
from modelyard.store.sql.rows import fetch_compiled
from modelyard.store.tracking.sql_sort_keys import page_parameter

_models = SqlRegisteredModel.__table__
_model_tags = SqlRegisteredModelTag.__table__
_aliases = SqlRegisteredModelAlias.__table__
_versions = SqlModelVersion.__table__
_version_tags = SqlModelVersionTag.__table__

#: A page's model columns, in this order (rows are read by position).
COLUMNS = (
    _models.c.name,
    _models.c.creation_time,
    _models.c.last_updated_time,
    _models.c.description,
)
#: A latest version's columns, after the model's COLUMNS and its four tag and alias arrays.
VERSION_COLUMNS = (
    "name",
    "version",
    "creation_time",
    "last_updated_time",
    "description",
    "user_id",
    "current_stage",
    "source",
    "run_id",
    "status",
    "status_message",
    "run_link",
    "model_id",
)
#: Where a row's version tag arrays start: the model's 4 columns and 4 arrays, then VERSION_COLUMNS.
_VERSION_TAGS = 8 + len(VERSION_COLUMNS)
_STAGE_RANK = {stage: i for i, stage in enumerate(ModelVersionStage.ALL)}


@dataclass(frozen=True)
class ModelSearch:
    """A validated registered-model search minus its page: `rows` selects COLUMNS of the matches in
    order, `LIMIT :page_limit OFFSET :page_offset`."""

    fingerprint: str
    rows: Select[Any]
    #: The ORDER BY of the page on a source of COLUMNS (the table, or a CTE of the page).
    order: Callable[[Any], list[Any]]
    #: PostgreSQL: the one-statement page's compiled SQL (while the caller's visibility is unrestricted).
    memo: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict, compare=False, repr=False)


def plan_model_search(filter_string: str | None, order_by: Sequence[str] | None, dialect: str) -> ModelSearch:
    try:
        return _plan(filter_string or "", tuple(order_by or ()), dialect)
    except TypeError:  # an unhashable order_by item: not cacheable, and parse_order_by rejects it
        return _build(filter_string or "", list(order_by or ()), dialect)


@functools.lru_cache(maxsize=256)
def _plan(filter_string: str, order_by: tuple[str, ...], dialect: str) -> ModelSearch:
    """Per-worker cache of compiled searches (parsing and building a SELECT is ~0.5-1 ms)."""
    return _build(filter_string, order_by, dialect)


def _build(filter_string: str, order_by: Sequence[str], dialect: str) -> ModelSearch:
    node = search.REGISTERED_MODELS.parse_filter(filter_string or None)
    orders = search.REGISTERED_MODELS.parse_order_by(list(order_by) or None)
    fingerprint = query_fingerprint("registered_models", filter_string, list(order_by))
    condition = search.registered_model_condition(node, dialect)
    order = functools.partial(_order_clauses, tuple(orders))
    rows = select(*COLUMNS)
    if condition is not None:
        rows = rows.where(condition)
    rows = (
        rows.order_by(*order(_models.c))
        .limit(page_parameter("page_limit", Integer))
        .offset(page_parameter("page_offset", Integer))
    )
    return ModelSearch(fingerprint, rows, order)


def _order_clauses(orders: Sequence[OrderBy], columns: Any) -> list[Any]:
    """The requested keys, then the name (unique) among equals. `columns`: the table's or a CTE's."""
    clauses = []
    for o in orders:
        column = columns[search.MODEL_COLUMNS[o.key].name]
        clauses.append(column.asc() if o.ascending else column.desc())
    if not any(o.key == "name" for o in orders):
        clauses.append(columns.name.asc())
    return clauses


def page_rows(
    connection: Connection, model_search: ModelSearch, stmt: Select[Any], params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """PostgreSQL: the page's models (`stmt`, a `rows` SELECT) with their tags and aliases, one row
    per latest version (or one row without a version), in one statement."""
    cached = stmt is model_search.rows
    sql = model_search.memo.get("page") if cached else None
    if sql is None:
        compiled = _page_statement(model_search, stmt).compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        sql = (compiled.string, {k: v for k, v in compiled.params.items() if not k.startswith("page_")})
        if cached:
            model_search.memo["page"] = sql
    return fetch_compiled(connection, sql[0], {**sql[1], **params})


def _page_statement(model_search: ModelSearch, stmt: Select[Any]) -> Select[Any]:
    """The page (a CTE), its models' tags and aliases and their latest versions' tags (each grouped
    once over the page's names, MATERIALIZED), joined to it. Materialized, a grouping runs once
    whatever join PostgreSQL picks: while freshly written tables have no statistics it estimates a
    page of 1 row and joins by nested loop, which re-ran an inlined grouping for every row (15-20 ms
    of its CPU per page instead of ~2). LATERAL subqueries per row were no better once the tables
    were analysed (a small table is scanned whole per row)."""
    page = stmt.cte("page")
    names = select(page.c.name)
    tags = _materialized(
        _arrays(_model_tags, _model_tags.c.name.in_(names), _model_tags.c.name).group_by(_model_tags.c.name),
        "tags",
    )
    aliases = _materialized(
        select(
            _aliases.c.name,
            func.array_agg(aggregate_order_by(_aliases.c.alias, _aliases.c.alias)).label("aliases"),
            func.array_agg(aggregate_order_by(_aliases.c.version, _aliases.c.alias)).label("versions"),
        )
        .where(_aliases.c.name.in_(names))
        .group_by(_aliases.c.name),
        "aliases",
    )
    latest = _materialized(
        select(_versions.c.name, func.max(_versions.c.version).label("version"))
        .where(_versions.c.name.in_(names))
        .group_by(_versions.c.name, _versions.c.current_stage),
        "latest",
    )
    version_tags = _materialized(
        _arrays(
            _version_tags,
            tuple_(_version_tags.c.name, _version_tags.c.version).in_(select(latest.c.name, latest.c.version)),
            _version_tags.c.name,
            _version_tags.c.version,
        ).group_by(_version_tags.c.name, _version_tags.c.version),
        "version_tags",
    )
    version = _versions.alias("v")
    joined = (
        page.outerjoin(tags, tags.c.name == page.c.name)
        .outerjoin(aliases, aliases.c.name == page.c.name)
        .outerjoin(latest, latest.c.name == page.c.name)
        .outerjoin(version, and_(version.c.name == latest.c.name, version.c.version == latest.c.version))
        .outerjoin(
            version_tags,
            and_(version_tags.c.name == latest.c.name, version_tags.c.version == latest.c.version),
        )
    )
    return (
        select(
            page,
            tags.c["keys"],
            tags.c["values"],
            aliases.c.aliases,
            aliases.c.versions,
            *(version.c[name] for name in VERSION_COLUMNS),
            version_tags.c["keys"],
            version_tags.c["values"],
        )
        .select_from(joined)
        # The CTE keeps the page's order only inside it: order the outer SELECT the same way (the
        # name breaks every tie, so a model's rows stay together).
        .order_by(*model_search.order(page.c))
    )


def _materialized(stmt: Select[Any], name: str) -> Any:
    return stmt.cte(name).prefix_with("MATERIALIZED")


def _arrays(table: Any, where: Any, *keys: Any) -> Select[Any]:
    """`keys`, then the keys and values of the tags in `table` matching `where` as two arrays in key order."""
    return select(
        *keys,
        func.array_agg(aggregate_order_by(table.c.key, table.c.key)).label("keys"),
        func.array_agg(aggregate_order_by(func.coalesce(table.c.value, ""), table.c.key)).label("values"),
    ).where(where)


def models_from_rows(rows: Sequence[Sequence[Any]]) -> list[RegisteredModel]:
    """Entities from `page_rows`' rows: a model per run of rows with its name, its latest versions
    in stage order (None, Staging, Production, Archived), as `loading.load_models` gives them."""
    models: list[RegisteredModel] = []
    model: RegisteredModel | None = None
    aliases: list[tuple[str, int]] = []
    for row in rows:
        name, created, updated, description, tag_keys, tag_values, alias_names, alias_versions = row[:8]
        if model is None or model.name != name:
            aliases = list(zip(alias_names, alias_versions, strict=True)) if alias_names else []
            model = RegisteredModel(
                name=name,
                creation_timestamp=created,
                last_updated_timestamp=updated,
                description=description,
                tags=dict(zip(tag_keys, tag_values, strict=True)) if tag_keys else {},
                aliases=[RegisteredModelAlias(alias, str(v)) for alias, v in aliases],
            )
            models.append(model)
        if row[8] is None:  # no versions
            continue
        number, version_tag_keys, version_tag_values = row[9], row[_VERSION_TAGS], row[_VERSION_TAGS + 1]
        model.latest_versions.append(
            version_from_row(
                row[8:_VERSION_TAGS],
                dict(zip(version_tag_keys, version_tag_values, strict=True)) if version_tag_keys else {},
                [alias for alias, v in aliases if v == number],
            )
        )
    for model in models:
        if len(model.latest_versions) > 1:
            model.latest_versions.sort(key=lambda mv: _STAGE_RANK.get(mv.current_stage, 9))
    return models
