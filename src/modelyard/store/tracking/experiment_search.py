"""Experiment searches: a page of experiments, with their tags, in one statement on PostgreSQL.

A page of 100 experiments cost ~10 ms of CPU in the service, almost none of it in the database: the
search's SELECT was built afresh per request, 300 ORM objects hydrated (experiments and their tags),
and the page took four round trips (BEGIN, ids, experiments by id, tags by id, COMMIT). Now:
- the page's SELECT is built once per search (filter, view, order; cached per worker, the page's
  LIMIT and OFFSET bound as parameters) and selects the experiments' own columns, not just ids;
- on PostgreSQL it is the CTE of one statement that adds each experiment's tag keys and values as two
  arrays (in key order, one pass over its tags), compiled once, run on an autocommitted connection
  (one round trip, one snapshot; psycopg prepares it once it is repeated), its rows read by
  position in binary format (`store/sql/rows`);
- elsewhere (SQLite, in process) the page's rows come from the same SELECT and the tags from one
  query over the page's ids.
Either way the entities are built from plain tuples (`experiment_rows`).

Paging is by offset (the page token holds it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from modelyard.entities import Experiment, ViewType
from modelyard.protocol.limits import SEARCH_EXPERIMENTS_MAX_RESULTS
from modelyard.protocol.validation import validate_max_results
from modelyard.store.search import visibility
from modelyard.store.search.kinds import EXPERIMENTS
from modelyard.store.search.order_by import OrderBy
from modelyard.store.search.paging import decode_page_token, next_page, query_fingerprint
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.dialect import in_list_param, list_param
from modelyard.store.sql.rows import fetch_compiled
from modelyard.store.tracking.sql_predicates import (
    EXPERIMENT_ATTRIBUTE_COLUMNS,
    experiment_filter,
    experiment_tags_t,
    experiments_t,
)
from modelyard.store.tracking.sql_sort_keys import column_key, page_parameter

#: The columns of a page's rows, in this order (`experiment_rows` reads them by position).
COLUMNS = (
    experiments_t.c.experiment_id,
    experiments_t.c.name,
    experiments_t.c.artifact_location,
    experiments_t.c.lifecycle_stage,
    experiments_t.c.creation_time,
    experiments_t.c.last_update_time,
)

#: An experiment row (COLUMNS) and its tags.
Row = Sequence[Any]


@dataclass(frozen=True)
class ExperimentSearch:
    """A validated experiment search minus its page: `rows` selects COLUMNS of the matches in order,
    `LIMIT :page_limit OFFSET :page_offset`."""

    fingerprint: str
    rows: Select[Any]
    #: The ORDER BY of the page on a source of COLUMNS (the table, or a CTE of the page).
    order: Callable[[Any], list[Any]]
    #: PostgreSQL: the one-statement page's compiled SQL, by visibility (None: unrestricted).
    memo: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict, compare=False, repr=False)


def plan_experiment_search(
    view_type: int | str | None, filter_string: str | None, order_by: Sequence[str] | None, dialect: str
) -> ExperimentSearch:
    view = ViewType.parse(view_type)
    try:
        return _plan(view, filter_string or "", tuple(order_by or ()), dialect)
    except TypeError:  # an unhashable order_by item: not cacheable, and parse_order_by rejects it
        return _build(view, filter_string or "", list(order_by or ()), dialect)


@functools.lru_cache(maxsize=256)
def _plan(view: int, filter_string: str, order_by: tuple[str, ...], dialect: str) -> ExperimentSearch:
    """Per-worker cache of compiled experiment searches (parsing and building is ~0.5-1 ms)."""
    return _build(view, filter_string, order_by, dialect)


def _build(view: int, filter_string: str, order_by: Sequence[str], dialect: str) -> ExperimentSearch:
    node = EXPERIMENTS.parse_filter(filter_string)
    orders = EXPERIMENTS.parse_order_by(list(order_by))
    fingerprint = query_fingerprint("experiments", filter_string, view, list(order_by))
    conditions: list[ColumnElement[bool]] = []
    if view != ViewType.ALL:
        stages = ViewType.stages(view)
        column = experiments_t.c.lifecycle_stage
        conditions.append(column == stages[0] if len(stages) == 1 else column.in_(stages))
    if node is not None:
        conditions.append(experiment_filter(node, dialect))
    order = functools.partial(_order_clauses, tuple(orders), dialect)
    rows = (
        select(*COLUMNS)
        .where(*conditions)
        .order_by(*order(experiments_t.c))
        .limit(page_parameter("page_limit", Integer))
        .offset(page_parameter("page_offset", Integer))
    )
    return ExperimentSearch(fingerprint, rows, order)


def _order_clauses(orders: Sequence[OrderBy], dialect: str, columns: Any) -> list[Any]:
    """MLflow's default: newest first, the oldest id first among equals; requested keys get
    experiment_id DESC as the tie-break. `columns`: the experiments table's or a CTE's."""
    id_col = columns.experiment_id
    if not orders:
        return [columns.creation_time.desc().nulls_last(), id_col.asc()]
    clauses = []
    for o in orders:
        column = EXPERIMENT_ATTRIBUTE_COLUMNS[o.key]
        clauses.append(column_key(column, o.ascending, dialect).order(columns[column.name]))
    if not any(o.key == "experiment_id" for o in orders):
        clauses.append(id_col.desc())
    return clauses


def search_experiment_rows(
    execute: Callable[[ExperimentSearch, Select[Any], dict[str, Any]], Sequence[Row]],
    view_type: int | str | None,
    max_results: int,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    page_token: str | None,
    visible: Visibility | None,
    dialect: str,
) -> tuple[list[Row], str | None]:
    """One page of rows (COLUMNS, then whatever `execute` adds) of the experiments matching the search
    and visible to the caller, and the next page's token. `execute(search, statement, params)` runs
    the page's SELECT (or a statement built on it)."""
    max_results = validate_max_results(max_results, SEARCH_EXPERIMENTS_MAX_RESULTS)
    search = plan_experiment_search(view_type, filter_string, order_by, dialect)
    offset = decode_page_token(page_token, search.fingerprint)
    stmt = search.rows
    if (only_visible := visibility.condition(experiments_t.c.experiment_id, visible, int)) is not None:
        stmt = stmt.where(only_visible)
    rows = execute(search, stmt, {"page_limit": max_results + 1, "page_offset": offset})
    return next_page(list(rows), max_results, offset, search.fingerprint)


def search_experiment_ids(
    session: Session,
    view_type: int | str | None,
    max_results: int,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    page_token: str | None,
    visible: Visibility | None = None,
) -> tuple[list[int], str | None]:
    """One page of experiment ids matching the search (and visible to the caller), and the next page's token."""
    rows, token = search_experiment_rows(
        lambda _search, stmt, params: session.execute(stmt, params).all(),
        view_type,
        max_results,
        filter_string,
        order_by,
        page_token,
        visible,
        session.get_bind().dialect.name,
    )
    return [int(row[0]) for row in rows], token


def page_with_tags(
    connection: Connection, search: ExperimentSearch, stmt: Select[Any], params: dict[str, Any]
) -> Sequence[Row]:
    """PostgreSQL: the page's rows with each experiment's tag keys and values (two arrays, or NULL),
    in one statement (compiled once per search while the caller's visibility is
    unrestricted)."""
    cached = stmt is search.rows
    sql = search.memo.get("page") if cached else None
    if sql is None:
        page = stmt.cte("page")
        # Each experiment's tags as two arrays in key order, grouped from the page's tag rows (a
        # correlated subquery per experiment scanned the whole of a small tags table each time),
        # MATERIALIZED so that the grouping runs once whatever join PostgreSQL picks: inlined, while
        # a freshly filled experiments table had no statistics it estimated a page of 1 row and
        # re-ran the grouping per row in a nested loop (~15 ms of its CPU per page instead of <1).
        t = experiment_tags_t.alias("t")
        tags = (
            select(
                t.c.experiment_id,
                func.array_agg(aggregate_order_by(t.c.key, t.c.key)).label("tag_keys"),
                func.array_agg(aggregate_order_by(func.coalesce(t.c.value, ""), t.c.key)).label("tag_values"),
            )
            .where(t.c.experiment_id.in_(select(page.c.experiment_id)))
            .group_by(t.c.experiment_id)
            .cte("tags")
            .prefix_with("MATERIALIZED")
        )
        full = (
            select(page, tags.c.tag_keys, tags.c.tag_values)
            .select_from(page.outerjoin(tags, tags.c.experiment_id == page.c.experiment_id))
            # The CTE keeps the page's order only inside it: order the outer SELECT the same way.
            .order_by(*search.order(page.c))
        )
        compiled = full.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
        sql = (compiled.string, {k: v for k, v in compiled.params.items() if not k.startswith("page_")})
        if cached:
            search.memo["page"] = sql
    return fetch_compiled(connection, sql[0], {**sql[1], **params})


def tags_of(session: Session, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """The tags of experiments `ids`, each experiment's in key order (one query)."""
    if not ids:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = _tags_query(postgres)
    tags: dict[int, dict[str, str]] = {}
    for experiment_id, key, value in session.execute(stmt, {"ids": list_param(list(ids), int, postgres)}):
        tags.setdefault(experiment_id, {})[key] = value or ""
    return tags


@functools.cache
def _tags_query(postgres: bool) -> Select[Any]:
    tag = experiment_tags_t
    return (
        select(tag.c.experiment_id, tag.c.key, tag.c.value)
        .where(in_list_param(tag.c.experiment_id, "ids", Integer, postgres))
        .order_by(tag.c.experiment_id, tag.c.key)
    )


def experiment_rows(
    rows: Sequence[Row], tags: Callable[[Row], dict[str, str]], location: Callable[[Row], str]
) -> list[Experiment]:
    """Entities from rows of COLUMNS; `tags(row)` and `location(row)` give each one's tags and
    artifact location."""
    return [
        Experiment(
            experiment_id=str(row[0]),
            name=row[1],
            artifact_location=location(row),
            lifecycle_stage=row[3],
            tags=tags(row),
            creation_time=row[4],
            last_update_time=row[5],
        )
        for row in rows
    ]


def tags_from_arrays(row: Row) -> dict[str, str]:
    """A `page_with_tags` row's tags."""
    keys, values = row[len(COLUMNS)], row[len(COLUMNS) + 1]
    return dict(zip(keys, values, strict=True)) if keys else {}
