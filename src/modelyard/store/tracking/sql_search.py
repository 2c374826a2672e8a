"""Compile run and experiment searches to one SELECT of ids per page.

The store compiles a run search with `plan_run_search` (or calls `search_run_ids` /
`search_experiment_ids`), then loads the page by id: on PostgreSQL the id SELECT becomes a CTE of the
one statement that also builds the page's JSON (`run_json`). Keeping the id query narrow lets the
planner drive it from indexes and the loader fetch params/metrics/tags for exactly the page.

How each part compiles (identically on SQLite and PostgreSQL):
- the filter: `sql_predicates` (metric / param / tag comparisons as semi-joins on the key/value tables,
  the terms of one key merged, and beyond the first few keys as probes that keep planning linear).
- order_by on a metric/param/tag: LEFT OUTER JOIN of that key; runs missing it sort last in either
  direction, NaN metrics after numbers and before missing (MLflow's order). Strings order bytewise
  (COLLATE "C" on PostgreSQL, whose default collation may be locale-aware; SQLite is bytewise).
- tie-breaks: after the requested keys, start_time DESC then run_uuid ASC (MLflow's rule);
  experiments: creation_time DESC, experiment_id ASC by default, experiment_id DESC as tie-break.
- paging: LIMIT max_results + 1; the extra row says whether there is more. Runs page by keyset (the
  token holds the last row's sort key, which the tie-breaks make unique; the next page is "sort key
  after it", NULLs last as in the ORDER BY); experiments by OFFSET.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    false,
    null,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from modelyard.entities import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import SEARCH_EXPERIMENTS_MAX_RESULTS, SEARCH_MAX_RESULTS_THRESHOLD
from modelyard.protocol.validation import is_experiment_id, validate_max_results
from modelyard.store.search import visibility
from modelyard.store.search.filter_parser import Node
from modelyard.store.search.kinds import EXPERIMENTS, RUNS
from modelyard.store.search.order_by import OrderBy
from modelyard.store.search.paging import (
    Position,
    decode_page_token,
    decode_position,
    next_keyset_page,
    next_page,
    query_fingerprint,
)
from modelyard.store.search.visibility import Visibility
from modelyard.store.tracking.sql_predicates import (
    EXPERIMENT_ATTRIBUTE_COLUMNS,
    RUN_ATTRIBUTE_COLUMNS,
    RUN_KEYED_TABLES,
    experiment_filter,
    experiments_t,
    run_filter,
    runs_t,
)

Executor = Session | Connection


# ---- runs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SortKey:
    """One ORDER BY term of a run search. `nullable` keys put NULLs last in either direction;
    `key_type` is how the value travels in a keyset page token (see paging.KeyType); `collation`
    applies to ordering and keyset comparisons alike (COLLATE "C" for strings on PostgreSQL)."""

    expr: ColumnElement[Any]
    ascending: bool
    nullable: bool
    key_type: str
    collation: str | None = None

    def order(self, expr: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
        """The ORDER BY term, on `expr` (the same key selected through a subquery) or its own."""
        term = self._collated(self.expr if expr is None else expr)
        term = term.asc() if self.ascending else term.desc()
        return term.nulls_last() if self.nullable else term

    def later(self, value: Any) -> ColumnElement[bool] | None:
        """Rows whose key sorts strictly after `value` (None: no row does, NULL is last)."""
        if value is None:
            return None
        term = self._collated(self.expr)
        test = term > value if self.ascending else term < value
        return or_(test, self.expr.is_(None)) if self.nullable else test

    def same(self, value: Any) -> ColumnElement[bool]:
        return self.expr.is_(None) if value is None else self._collated(self.expr) == value

    def _collated(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return expr.collate(self.collation) if self.collation else expr


@dataclass(frozen=True)
class RunSearch:
    """One page of a run search, compiled: `stmt` selects `run_uuid` and the sort keys (`k0`, `k1`,
    ...), filtered, ordered, positioned after the page token and limited to max_results + 1 rows.

    The statements are shared by every page of the same search whose token has the same shape
    (see `_RunSearchPlan`); where this page starts travels in `params`, the values of their bind
    parameters (`pos_0`, `pos_1`, ..., `pos_offset`), which every execution must pass."""

    stmt: Select[Any]
    keys: tuple[SortKey, ...]
    max_results: int
    fingerprint: str
    params: dict[str, Any]
    #: When the first order key is a metric and the page starts among the runs that have a number
    #: for it: the same page restricted to those runs and ordered by the metric's value, which
    #: PostgreSQL can read in order from idx_latest_metrics_key_value and stop after one page (the
    #: full SELECT evaluates the filter on every run before sorting: ~6x slower at 100,000 runs).
    numbers_first: Select[Any] | None = None
    #: With `numbers_first`: the runs whose first-ordered metric is NaN or missing, in order (they sort
    #: after every number). When the numbers run out before the page is full, the page is the numbers
    #: left plus the head of these; the full SELECT would sort every match after the page token again
    #: (the last page of the benchmark search: 12 ms for the full SELECT, 8 ms for this one).
    non_numbers: Select[Any] | None = None
    #: What a backend derives from these statements (PostgreSQL: the page query's compiled SQL),
    #: kept as long as the statements are: one dict per search and token shape.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def fetch(self, execute: Callable[[Select[Any]], Sequence[Any]], key_columns: slice) -> Sequence[Any]:
        """The page's rows (up to max_results + 1) through `execute`, which runs a SELECT with
        `params` (and may wrap it, as a CTE say, as long as it keeps its rows and their order; the sort
        keys are each row's `key_columns`). The numbers-first SELECT is tried first; if it cannot fill
        the page, the page crosses into NaN/missing values, which follow from the non-numbers SELECT."""
        if self.numbers_first is None or self.non_numbers is None:
            return execute(self.stmt)
        numbers = execute(self.numbers_first)
        if len(numbers) > self.max_results:
            return numbers
        # Two statements see two snapshots: a run whose metric turned NaN in between would come twice.
        run_id = (key_columns.start or 0) + next(
            i for i, k in enumerate(self.keys) if k.expr is runs_t.c.run_uuid
        )
        seen = {row[run_id] for row in numbers}
        rest = [row for row in execute(self.non_numbers) if row[run_id] not in seen]
        return [*numbers, *rest][: self.max_results + 1]

    def paginate(self, rows: Sequence[Any], key_columns: slice) -> tuple[list[Any], str | None]:
        """The page's rows and the next page's token, made from the last row's sort key (the
        `key_columns` of each row)."""
        return next_keyset_page(rows, self.max_results, self.fingerprint, lambda row: list(row[key_columns]))


def search_run_ids(
    session: Executor,
    experiment_ids: Sequence[str | int],
    filter_string: str | None,
    view_type: int | str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[str], str | None]:
    """One page of run ids matching the search, and the next page's token (None on the last page)."""
    search = plan_run_search(
        experiment_ids, filter_string, view_type, max_results, order_by, page_token, _dialect(session)
    )
    if search is None:
        return [], None
    plan_each_search(session)
    keys = slice(1, None)
    rows, token = search.paginate(
        search.fetch(lambda stmt: session.execute(stmt, search.params).all(), keys), keys
    )
    return [str(row[0]) for row in rows], token


def plan_each_search(session: Executor) -> None:
    """On PostgreSQL, plan this transaction's statements for their actual values. psycopg prepares a
    statement run 5 times on a connection, and after 5 more PostgreSQL may switch to a generic plan,
    estimated without the filter's values: for the numbers-first SELECT at 100,000 runs that plan
    took ~280 ms instead of ~40 ms. Planning costs ~1-3 ms per page. (The one-statement JSON page,
    `run_json`, never prepares its statement instead, which saves this round trip.)"""
    if _dialect(session) == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def plan_run_search(
    experiment_ids: Sequence[str | int],
    filter_string: str | None,
    view_type: int | str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    dialect: str,
) -> RunSearch | None:
    """Validate a run search and compile its page; None when it names no experiment (an empty page).

    Paging is keyset: the token carries the last row's sort key and the page is `WHERE (sort key)
    after it` (offset tokens from before keyset paging are still honoured). Compiling is cached per
    worker (`_run_search_plan`): a UI or client paging through a search, or polling it, parses the
    filter and builds the statements once."""
    max_results = validate_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)
    view = ViewType.parse(view_type)
    exp_ids = tuple(_experiment_ids(experiment_ids))
    try:
        plan = _run_search_plan(
            exp_ids, filter_string or "", view, max_results, tuple(order_by or ()), dialect
        )
    except TypeError:  # an unhashable order_by item: not cacheable, and parse_order_by rejects it
        plan = _RunSearchPlan.build(
            exp_ids, filter_string or "", view, max_results, list(order_by or ()), dialect
        )
    position = decode_position(page_token, plan.fingerprint, [k.key_type for k in plan.keys])
    if not exp_ids:
        return None
    return plan.page(position)


@dataclass(frozen=True)
class _PageStatements:
    stmt: Select[Any]
    numbers_first: Select[Any] | None
    non_numbers: Select[Any] | None
    memo: dict[str, Any]


@dataclass(frozen=True)
class _RunSearchPlan:
    """A validated run search minus its page token: what `plan_run_search` caches."""

    fingerprint: str
    keys: tuple[SortKey, ...]
    max_results: int
    base: Select[Any]
    conditions: tuple[ColumnElement[bool], ...]
    first_metric: Any
    #: Statements per token shape (see `_shape`), built on first use. A plan has a handful of
    #: shapes at most (2 ** number of nullable sort keys, plus the first page and offset tokens).
    shapes: dict[tuple[Any, ...], _PageStatements] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        exp_ids: Sequence[int],
        filter_string: str,
        view: int,
        max_results: int,
        order_by: Sequence[str],
        dialect: str,
    ) -> _RunSearchPlan:
        node = RUNS.parse_filter(filter_string)
        orders = RUNS.parse_order_by(list(order_by))
        fingerprint = query_fingerprint("runs", sorted(exp_ids), filter_string, view, list(order_by))
        source, keys, first_metric = _run_sort_keys(orders, dialect)
        conditions = tuple(_run_conditions(exp_ids, node, view, dialect)) if exp_ids else ()
        columns = (runs_t.c.run_uuid, *(k.expr.label(f"k{i}") for i, k in enumerate(keys)))
        base = select(*columns).select_from(source).limit(max_results + 1)
        return cls(fingerprint, keys, max_results, base, conditions, first_metric)

    def page(self, position: Position) -> RunSearch:
        shape = self._shape(position)
        statements = self.shapes.get(shape)
        if statements is None:
            statements = self.shapes.setdefault(shape, self._statements(shape))
        params: dict[str, Any] = {}
        if position.offset:
            params["pos_offset"] = position.offset
        elif position.after is not None:
            params.update((f"pos_{i}", v) for i, v in enumerate(position.after) if v is not None)
        return RunSearch(
            statements.stmt,
            self.keys,
            self.max_results,
            self.fingerprint,
            params,
            statements.numbers_first,
            statements.non_numbers,
            statements.memo,
        )

    def _shape(self, position: Position) -> tuple[Any, ...]:
        """What the statements depend on besides the search: offset or keyset, which sort key
        values are NULL (IS NULL tests instead of comparisons), and whether the page can start
        among the numbers of a first-ordered metric (keys[0] is then its rank, 0 for numbers)."""
        if position.offset:
            return ("offset",)
        if position.after is None:
            return ("first", self.first_metric is not None)
        numbers = self.first_metric is not None and position.after[0] == 0
        return ("after", tuple(v is None for v in position.after), numbers)

    def _statements(self, shape: tuple[Any, ...]) -> _PageStatements:
        keys = self.keys
        after: list[ColumnElement[bool]] = []
        values: list[Any] = []
        if shape[0] == "after":
            values = [None if null else _position(f"pos_{i}") for i, null in enumerate(shape[1])]
            after = [_after(keys, values)]
        stmt = self.base.where(*self.conditions, *after).order_by(*(k.order() for k in keys))
        if shape[0] == "offset":
            stmt = stmt.offset(_position("pos_offset", Integer))
        numbers_first = non_numbers = None
        if shape[-1] is True:
            # keys[0] is the metric's rank, 0 for numbers: fixed here, so it leaves ORDER BY and the
            # keyset test, and the strict tests on the joined metric turn the outer join into a join.
            # The value is then never NULL, and ordering it without NULLS LAST is what lets PostgreSQL
            # read it in index order (ASC forward, DESC backward).
            rest = (replace(keys[1], nullable=False), *keys[2:])
            numbers_after: list[ColumnElement[bool]] = []
            if shape[0] == "after":
                # The keyset test as `value >= last (ASC) / <= last (DESC)`, where the index scan
                # starts, AND `(value <> last OR the rest of the key is after)`. Spelled as
                # `_after(rest)` (`value < last OR value = last AND ...`) next to the bound, PostgreSQL
                # counts the range twice: deep pages were estimated at fewer rows than the page, and
                # planned as a hash join over every run (50 ms instead of 5 on page 11 of 14).
                last = _position("pos_1") if values[1] is not None else null()
                value = self.first_metric.c.value
                numbers_after = [
                    value >= last if rest[0].ascending else value <= last,
                    or_(value != last, _after(rest[1:], values[2:])),
                ]
            numbers_first = self.base.where(
                *self.conditions,
                self.first_metric.c.run_uuid.is_not(None),
                self.first_metric.c.is_nan == false(),
                *numbers_after,
            ).order_by(*(k.order() for k in rest))
            # Every run without a number sorts after the page token, which is among the numbers.
            non_numbers = self.base.where(
                *self.conditions,
                or_(self.first_metric.c.run_uuid.is_(None), self.first_metric.c.is_nan == true()),
            ).order_by(*(k.order() for k in keys))
        return _PageStatements(stmt, numbers_first, non_numbers, {})


def _position(name: str, type_: Any = None) -> BindParameter[Any]:
    """A bind parameter for where a page starts (`RunSearch.params` holds its value). Not `required`:
    compiling with `render_postcompile` (to expand IN lists) needs every parameter to have a value."""
    return bindparam(name, None, type_=type_, required=False)


@functools.lru_cache(maxsize=256)
def _run_search_plan(
    exp_ids: tuple[int, ...],
    filter_string: str,
    view: int,
    max_results: int,
    order_by: tuple[str, ...],
    dialect: str,
) -> _RunSearchPlan:
    """Per-worker cache of compiled run searches (parsing the filter and building the statements is
    ~1-2 ms per page; a cached page ~0.1 ms). Bounded: at most 256 searches, each with a few token
    shapes."""
    return _RunSearchPlan.build(exp_ids, filter_string, view, max_results, order_by, dialect)


def run_search_conditions(
    experiment_ids: Sequence[str | int], filter_string: str | None, view_type: int | str | None, dialect: str
) -> tuple[ColumnElement[bool], ...] | None:
    """The WHERE of a run search (experiments, lifecycle view, filter), compiled and cached as its pages
    are, for callers that count the whole set (`run_table.count_runs`); None when it names no experiment."""
    view = ViewType.parse(view_type)
    exp_ids = tuple(_experiment_ids(experiment_ids))
    if not exp_ids:
        return None
    return _run_search_plan(exp_ids, filter_string or "", view, 1, (), dialect).conditions


def build_run_ids_query(
    experiment_ids: Sequence[int],
    node: Node | None,
    view_type: int,
    orders: Sequence[OrderBy],
    dialect: str,
) -> Select[tuple[str]]:
    """The SELECT of run ids, in order, without paging (exposed for EXPLAIN and tests)."""
    source, keys, _ = _run_sort_keys(orders, dialect)
    return (
        select(runs_t.c.run_uuid)
        .select_from(source)
        .where(*_run_conditions(experiment_ids, node, view_type, dialect))
        .order_by(*(k.order() for k in keys))
    )


def _run_conditions(
    experiment_ids: Sequence[int], node: Node | None, view_type: int, dialect: str
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_in_or_eq(runs_t.c.experiment_id, experiment_ids)]
    if view_type != ViewType.ALL:
        conditions.append(_in_or_eq(runs_t.c.lifecycle_stage, ViewType.stages(view_type)))
    if node is not None:
        conditions.append(run_filter(node, dialect))
    return conditions


def _run_sort_keys(orders: Sequence[OrderBy], dialect: str) -> tuple[Any, tuple[SortKey, ...], Any]:
    """The FROM clause (runs, outer-joined to each ordered metric/param/tag) and the sort keys:
    the requested ones, then start_time DESC and run_uuid ASC unless requested, so that the order
    is total (keyset paging needs that) and ties break as in MLflow. Third: the joined
    latest_metrics alias when the first order key is a metric (else None)."""
    source: Any = runs_t
    keys: list[SortKey] = []
    ordered: set[tuple[str, str]] = set()
    first_metric = None
    for i, order in enumerate(orders):
        ordered.add((order.entity, order.key))
        if order.entity == "attribute":
            keys.append(_column_key(RUN_ATTRIBUTE_COLUMNS[order.key], order.ascending, dialect))
            continue
        table = RUN_KEYED_TABLES[order.entity].alias(f"order_{i}")
        source = source.outerjoin(
            table, and_(table.c.run_uuid == runs_t.c.run_uuid, table.c.key == order.key)
        )
        if order.entity == "metric":
            if i == 0:
                first_metric = table
            # Numbers first, then NaN (stored as 0), then runs without the metric, in either direction.
            rank = case((table.c.run_uuid.is_(None), 2), (table.c.is_nan == true(), 1), else_=0)
            keys.append(SortKey(rank, True, False, "int"))
            keys.append(SortKey(table.c.value, order.ascending, True, "float?"))
        else:
            keys.append(_column_key(table.c.value, order.ascending, dialect, nullable=True))
    if ("attribute", "start_time") not in ordered:
        keys.append(_column_key(runs_t.c.start_time, False, dialect))
    if ("attribute", "run_id") not in ordered:
        keys.append(_column_key(runs_t.c.run_uuid, True, dialect))
    return source, tuple(keys), first_metric


def _column_key(column: Any, ascending: bool, dialect: str, nullable: bool | None = None) -> SortKey:
    """`nullable` overrides the column's own flag (an outer-joined column can be NULL). Strings
    order bytewise: COLLATE "C" on PostgreSQL, whose default collation may be locale-aware."""
    if nullable is None:
        nullable = bool(getattr(column, "nullable", True))
    is_string = _is_string(column)
    kind = "str" if is_string else "int"
    collation = "C" if is_string and dialect == "postgresql" else None
    return SortKey(column, ascending, nullable, kind + "?" if nullable else kind, collation)


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after the one whose sort key is `values`: (k0 later) OR (k0 same AND k1 later) OR ..."""
    alternatives: list[ColumnElement[bool]] = []
    same: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        later = key.later(value)
        if later is not None:
            alternatives.append(and_(*same, later))
        same.append(key.same(value))
    return or_(*alternatives) if alternatives else false()


# ---- experiments --------------------------------------------------------------------------------
def search_experiment_ids(
    session: Executor,
    view_type: int | str | None,
    max_results: int,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    page_token: str | None,
    visible: Visibility | None = None,
) -> tuple[list[int], str | None]:
    """One page of experiment ids matching the search (and visible to the caller), and the next page's token."""
    max_results = validate_max_results(max_results, SEARCH_EXPERIMENTS_MAX_RESULTS)
    view = ViewType.parse(view_type)
    node = EXPERIMENTS.parse_filter(filter_string)
    orders = EXPERIMENTS.parse_order_by(order_by)
    fingerprint = query_fingerprint("experiments", filter_string or "", view, list(order_by or ()))
    offset = decode_page_token(page_token, fingerprint)
    stmt = build_experiment_ids_query(node, view, orders, _dialect(session))
    if (only_visible := visibility.condition(experiments_t.c.experiment_id, visible, int)) is not None:
        stmt = stmt.where(only_visible)
    rows = session.execute(stmt.limit(max_results + 1).offset(offset)).scalars().all()
    return next_page([int(r) for r in rows], max_results, offset, fingerprint)


def build_experiment_ids_query(
    node: Node | None, view_type: int, orders: Sequence[OrderBy], dialect: str
) -> Select[tuple[int]]:
    conditions: list[ColumnElement[bool]] = []
    if view_type != ViewType.ALL:
        conditions.append(_in_or_eq(experiments_t.c.lifecycle_stage, ViewType.stages(view_type)))
    if node is not None:
        conditions.append(experiment_filter(node, dialect))
    id_col = experiments_t.c.experiment_id
    if not orders:
        # MLflow's default: newest first, oldest id first among equals.
        order_clauses = [experiments_t.c.creation_time.desc().nulls_last(), id_col.asc()]
    else:
        order_clauses = [_ordered(EXPERIMENT_ATTRIBUTE_COLUMNS[o.key], o.ascending, dialect) for o in orders]
        if not any(o.key == "experiment_id" for o in orders):
            order_clauses.append(id_col.desc())
    return select(id_col).where(*conditions).order_by(*order_clauses)


# ---- shared pieces ------------------------------------------------------------------------------
def _ordered(column: Any, ascending: bool, dialect: str, nullable: bool | None = None) -> ColumnElement[Any]:
    return _column_key(column, ascending, dialect, nullable).order()


def _is_string(column: Any) -> bool:
    try:
        return column.type.python_type is str
    except NotImplementedError:
        return False


def _in_or_eq(column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    values = list(values)
    return column == values[0] if len(values) == 1 else column.in_(values)


def _experiment_ids(experiment_ids: Sequence[str | int]) -> list[int]:
    if isinstance(experiment_ids, str | int):
        experiment_ids = [experiment_ids]
    out: list[int] = []
    for exp_id in experiment_ids or ():
        if not is_experiment_id(exp_id):
            raise ModelyardException.invalid_parameter(
                f"Invalid value {exp_id!r} for parameter 'experiment_ids': experiment ids are integers."
            )
        out.append(int(exp_id))
    return sorted(set(out))


def _dialect(session: Executor) -> str:
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.dialect.name
