"""Compile run searches to one SELECT of ids per page (experiments: `experiment_search`).

The store compiles a run search with `plan_run_search` (or calls `search_run_ids`), then loads the page by id: on PostgreSQL the id SELECT becomes a CTE of the
one statement that also builds the page's JSON (`run_json`). Keeping the id query narrow lets the
planner drive it from indexes and the loader fetch params/metrics/tags for exactly the page.

How each part compiles (identically on SQLite and PostgreSQL):
- the filter: `sql_predicates` (metric / param / tag comparisons as semi-joins on the key/value tables,
  the terms of one key merged, and beyond the first few keys as probes that keep planning linear).
- order_by on a metric/param/tag: LEFT OUTER JOIN of that key; runs missing it sort last in either
  direction, NaN metrics after numbers and before missing (MLflow's order). Strings order bytewise
  (COLLATE "C" on PostgreSQL, whose default collation may be locale-aware; SQLite is bytewise).
  Runs: `sql_sort_keys`.
- tie-breaks: after the requested keys, start_time DESC then run_uuid ASC (MLflow's rule).
- on PostgreSQL, a filtered page of one experiment in the default order or one metric's is first
  walked in its index's order (`sql_walks`).
- paging: LIMIT max_results + 1; the extra row says whether there is more. Runs page by keyset (the
  token holds the last row's sort key, which the tie-breaks make unique; the next page is "sort key
  after it", NULLs last as in the ORDER BY).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    false,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from modelyard.entities import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import SEARCH_MAX_RESULTS_THRESHOLD
from modelyard.protocol.validation import is_experiment_id, validate_max_results
from modelyard.store.search.filter_parser import Comparison, Node
from modelyard.store.search.kinds import RUNS
from modelyard.store.search.order_by import OrderBy
from modelyard.store.search.paging import (
    Position,
    decode_position,
    query_fingerprint,
)
from modelyard.store.sql.schema import GROUPED_ATTRIBUTES
from modelyard.store.tracking.sql_anchors import (
    Anchors,
    anchored,
    find_anchors,
    group_in_page_order,
    in_page_order,
    value_ranges,
)
from modelyard.store.tracking.sql_attribute_groups import AttributeGroups, attribute_groups
from modelyard.store.tracking.sql_predicates import (
    run_filter,
    runs_t,
)
from modelyard.store.tracking.sql_prefix_heads import (
    PrefixHeads,
    heads_in_page_order,
    prefix_heads,
    prefix_term,
    prefix_walk_in_page_order,
)
from modelyard.store.tracking.sql_run_page import RunSearch
from modelyard.store.tracking.sql_sort_keys import (
    SortKey,
    after,
    in_attribute_index,
    page_parameter,
    run_sort_keys,
)
from modelyard.store.tracking.sql_walks import (
    BUDGET,
    MAX_RANGES,
    ValueGroups,
    Walking,
    metric_after,
    value_groups,
    walk,
    walk_metric,
    walk_value,
)

Executor = Session | Connection


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
        search.fetch(
            lambda stmt: session.execute(stmt, search.params).all(),
            keys,
            lambda stmt: session.execute(stmt, search.params).one(),
        ),
        keys,
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
    worker (`run_search_plan`): a UI or client paging through a search, or polling it, parses the
    filter and builds the statements once."""
    max_results = validate_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)
    view = ViewType.parse(view_type)
    exp_ids = tuple(experiment_id_list(experiment_ids))
    try:
        plan = run_search_plan(
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
    walk: Select[Any] | None = None
    walk_source: Any = None
    anchored: tuple[Select[Any], ...] = ()
    walk_complete: bool = False
    groups: ValueGroups | None = None
    group_walks: tuple[Select[Any] | None, ...] = (None, None)
    group_sources: tuple[Any, ...] = (None, None)
    attribute_groups: AttributeGroups | None = None
    anchored_sources: tuple[Any, ...] = ()
    heads_walk: Select[Any] | None = None
    heads_source: Any = None
    prefix_walk: Select[Any] | None = None
    prefix_source: Any = None


@dataclass(frozen=True)
class _RunSearchPlan:
    """A validated run search minus its page token: what `plan_run_search` caches."""

    fingerprint: str
    keys: tuple[SortKey, ...]
    max_results: int
    base: Select[Any]
    conditions: tuple[ColumnElement[bool], ...]
    first_metric: Any
    #: The search's scope and filter for walks and anchors (PostgreSQL; see `sql_walks`), whether
    #: walks apply (the default order or one metric's, with a filter or several index ranges) and the
    #: filter's anchors.
    walking: Walking | None = None
    walks: bool = False
    anchors: Anchors | None = None
    #: The first key is an attribute with an index in its order (`sql_sort_keys.in_attribute_index`).
    indexed_first: bool = False
    #: The only key is an attribute most runs share (GROUPED_ATTRIBUTES) and there is no filter: its
    #: pages are read one value at a time (`sql_attribute_groups`).
    grouped: bool = False
    #: The filter is one param's or tag's `=` and the order the default one: the walk is the value's
    #: runs in that order (`sql_anchors.in_page_order`, within the walk's budget).
    by_value: bool = False
    #: The filter is one param's or tag's `LIKE 'prefix%'` over one experiment, in the default order:
    #: the probe of its heads (`sql_prefix_heads`), whose ranges a page reads in its order.
    heads: PrefixHeads | None = None
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
        source, keys, first_metric = run_sort_keys(orders, dialect, exp_ids)
        conditions = tuple(run_conditions(exp_ids, node, view, dialect)) if exp_ids else ()
        columns = (runs_t.c.run_uuid, *(k.expr.label(f"k{i}") for i, k in enumerate(keys)))
        base = select(*columns).select_from(source).limit(max_results + 1)
        walking = anchors = heads = None
        walks = by_value = False
        if dialect == "postgresql" and exp_ids:
            stages = ViewType.stages(view)
            by_key = len(orders) == 1 and orders[0].entity in ("metric", "param", "tag")
            key, entity = (orders[0].key, orders[0].entity) if by_key else (None, None)
            walking = Walking(node, tuple(exp_ids), stages, key, entity, every_stage=view == ViewType.ALL)
            # One range of an index in the page's order is read in order by the statements themselves;
            # past MAX_RANGES ranges, merging them would cost more to plan than sorting.
            ranges = len(exp_ids) * (2 if view == ViewType.ALL else len(stages))
            # A param or tag order has no other index in its order: its walks apply to one range too.
            walks = (not orders or by_key) and (node is not None or ranges > 1 or entity in ("param", "tag"))
            walks = walks and ranges <= MAX_RANGES
            # A filter that is one param's or tag's `=` or IN, in the default order: its walk is the
            # values' runs read in that order from its index (`sql_anchors.in_page_order`).
            by_value = not orders and ranges <= MAX_RANGES and 0 < value_ranges(node, exp_ids) <= MAX_RANGES
            anchors = find_anchors(walking)
            term = prefix_term(walking) if walks else None
            heads = None if term is None else prefix_heads(term, walking)
        indexed = bool(orders) and in_attribute_index(keys[0], dialect)
        grouped = indexed and len(orders) == 1 and orders[0].key in GROUPED_ATTRIBUTES and node is None
        grouped = grouped and walking is not None and len(walking.ranges) <= MAX_RANGES
        return cls(
            fingerprint, keys, max_results, base, conditions, first_metric, walking, walks, anchors, indexed,
            grouped, by_value, heads,
        )  # fmt: skip

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
            statements.walk,
            statements.walk_source,
            self._walk_budget(),
            statements.walk_complete,
            self.anchors,
            statements.anchored,
            statements.groups,
            statements.group_walks,
            statements.group_sources,
            statements.attribute_groups,
            statements.anchored_sources,
            self.heads,
            statements.heads_walk,
            statements.heads_source,
            statements.prefix_walk,
            statements.prefix_source,
            statements.memo,
        )

    def _walk_budget(self) -> int:
        if self.walking is None:
            return 0
        if self.walking.node is None and self.walking.order_key is None:
            return self.max_results + 1  # no filter: the page is the runs read
        return self.walking.budget(self.max_results)

    def _shape(self, position: Position) -> tuple[Any, ...]:
        """What the statements depend on besides the search: offset or keyset, which sort key
        values are NULL (IS NULL tests instead of comparisons), and whether the page can start
        among the numbers of a first-ordered metric (keys[0] is then its rank, 0 for numbers)."""
        if position.offset:
            return ("offset",)
        if position.after is None:
            return ("first", self.first_metric is not None or self.indexed_first)
        if self.first_metric is not None:
            numbers = position.after[0] == 0
        else:  # a nullable first key (start_time in the default order): is the page among its values?
            numbers = self.keys[0].nullable and position.after[0] is not None
        return ("after", tuple(v is None for v in position.after), numbers)

    def _statements(self, shape: tuple[Any, ...]) -> _PageStatements:
        keys = self.keys
        bounds: list[ColumnElement[bool]] = []
        values: list[Any] = []
        if shape[0] == "after":
            values = [None if null else page_parameter(f"pos_{i}") for i, null in enumerate(shape[1])]
            bounds = [after(keys, values)]
        stmt = self.base.where(*self.conditions, *bounds).order_by(*(k.order() for k in keys))
        if shape[0] == "offset":
            stmt = stmt.offset(page_parameter("pos_offset", Integer))
        numbers_first = non_numbers = None
        if shape[-1] is True and self.first_metric is None:
            # A nullable first key (start_time in MLflow's default order, newest first, NULLs last) and
            # a page token among its values: the runs with a value from the last one on, then those
            # without one. As one test (`start_time < last OR start_time IS NULL OR start_time = last AND
            # ...`) it bounds no index range: every page read the experiment's index from its start.
            # Split, each part is a range of the experiment's index in the search's order.
            # An indexed attribute's first page too (`sql_sort_keys.in_attribute_index`): its values
            # ordered without NULLS LAST (none is NULL) are its index read forward or backwards, its
            # NULLs the range after them, read forward (ordered ascending: the same order, all NULL).
            first = keys[0]
            among = [first.expr.is_not(None)]
            if shape[0] == "after":
                among = [first.reached(values[0]), or_(first.differs(values[0]), after(keys[1:], values[1:]))]
            order, nulls = keys, keys
            if self.indexed_first:
                order, nulls = (replace(first, nullable=False), *keys[1:]), (replace(first, ascending=True), *keys[1:])
            numbers_first = self.base.where(*self.conditions, *among).order_by(*(k.order() for k in order))
            non_numbers = self.base.where(*self.conditions, first.expr.is_(None)).order_by(
                *(k.order() for k in nulls)
            )
        elif self.indexed_first and shape[0] == "after" and shape[1][0]:
            # A page token among an indexed attribute's NULLs: the rest of them, read forward.
            nulls = (replace(keys[0], ascending=True), *keys[1:])
            stmt = self.base.where(*self.conditions, keys[0].expr.is_(None), after(keys[1:], values[1:]))
            stmt = stmt.order_by(*(k.order() for k in nulls))
        elif shape[-1] is True:
            # keys[0] is the metric's rank, 0 for numbers: fixed here, so it leaves ORDER BY and the
            # keyset test, and the strict tests on the joined metric turn the outer join into a join.
            # The value is then never NULL, and ordering it without NULLS LAST is what lets PostgreSQL
            # read it in index order (ASC forward, DESC backward).
            rest = (replace(keys[1], nullable=False), *keys[2:])
            # After a page token: where the index scan starts, and the rest (`sql_walks.metric_after`).
            numbers_after = metric_after(self.first_metric, keys, values) if shape[0] == "after" else []
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
        walked = walk_source = groups = value_pages = None
        group_walks: tuple[Select[Any] | None, ...] = (None, None)
        group_sources: tuple[Any, ...] = (None, None)
        token = values if shape[0] == "after" else None
        walking = self.walking
        if walking is not None and self.walks and shape[0] != "offset":
            if self.by_value:
                assert isinstance(walking.node, Comparison)
                budget = page_parameter(BUDGET, Integer)
                walked, walk_source = in_page_order(walking, walking.node, keys, token, self.max_results, budget)
            elif walking.order_key is None:
                walked, walk_source = walk(walking, keys, self.max_results, token, shape[-1] is True)
            elif self.first_metric is not None and shape[-1]:  # among the numbers (NaN/missing: no order)
                walked, walk_source = walk_metric(walking, keys, self.max_results, token)
            elif self.first_metric is None and (shape[0] == "first" or shape[-1] is True):  # among values
                walked, walk_source = walk_value(walking, keys, self.max_results, token)
                groups = value_groups(walking, keys[0].ascending, token, self.max_results)
                first, first_source = group_in_page_order(walking, groups, keys[1:], None, self.max_results)
                group_walks, group_sources = (first, None), (first_source, None)
                if token is not None:  # within the token's value: after its start time and id
                    after_token, after_source = group_in_page_order(
                        walking, groups, keys[1:], token[1:], self.max_results
                    )
                    group_walks, group_sources = (first, after_token), (first_source, after_source)
        among_values = shape[0] == "first" or (shape[0] == "after" and not shape[1][0])
        if self.grouped and walking is not None and among_values:  # a first page, or a token with a value
            value_pages, group_sources = attribute_groups(walking, keys, self.max_results, token, non_numbers)
            group_walks = value_pages.walks
        driven: tuple[Select[Any], ...] = ()
        driven_sources: tuple[Any, ...] = ()
        if self.walking is not None and self.anchors is not None and shape[0] != "offset":
            pairs = [
                anchored(self.walking, term, self.base, bounds, keys, token, self.max_results)
                for term in self.anchors.terms
            ]
            driven, driven_sources = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        heads_walk = heads_source = prefix_walk = prefix_source = None
        if walking is not None and self.heads is not None and shape[0] != "offset":
            assert isinstance(walking.node, Comparison)
            heads_walk, heads_source = heads_in_page_order(walking.node, walking, keys, token, self.max_results)
            prefix_walk, prefix_source = prefix_walk_in_page_order(
                walking.node, walking, keys, token, self.max_results
            )
        # Without a filter, a default-order walk short of a page read every run left, unless the
        # token is among the start times (the walk's range then stops before the runs without one).
        complete = walked is not None and walking is not None and walking.node is None
        complete = complete and walking is not None and walking.order_key is None and shape[-1] is not True
        return _PageStatements(
            stmt, numbers_first, non_numbers, {}, walked, walk_source, driven, complete, groups, group_walks,
            group_sources, value_pages, driven_sources, heads_walk, heads_source, prefix_walk, prefix_source,
        )  # fmt: skip


@functools.lru_cache(maxsize=256)
def run_search_plan(
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


def build_run_ids_query(
    experiment_ids: Sequence[int],
    node: Node | None,
    view_type: int,
    orders: Sequence[OrderBy],
    dialect: str,
) -> Select[tuple[str]]:
    """The SELECT of run ids, in order, without paging (exposed for EXPLAIN and tests)."""
    source, keys, _ = run_sort_keys(orders, dialect, experiment_ids)
    return (
        select(runs_t.c.run_uuid)
        .select_from(source)
        .where(*run_conditions(experiment_ids, node, view_type, dialect))
        .order_by(*(k.order() for k in keys))
    )


def run_conditions(
    experiment_ids: Sequence[int], node: Node | None, view_type: int, dialect: str, for_count: bool = False
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_in_or_eq(runs_t.c.experiment_id, experiment_ids)]
    if view_type != ViewType.ALL:
        conditions.append(_in_or_eq(runs_t.c.lifecycle_stage, ViewType.stages(view_type)))
    if node is not None:
        conditions.append(run_filter(node, dialect, experiment_ids, for_count))
    return conditions


# ---- shared pieces ------------------------------------------------------------------------------
def _in_or_eq(column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    values = list(values)
    return column == values[0] if len(values) == 1 else column.in_(values)


def experiment_id_list(experiment_ids: Sequence[str | int]) -> list[int]:
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
