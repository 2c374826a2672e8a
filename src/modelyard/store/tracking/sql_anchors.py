"""Anchors: a filter term that bounds the matches, counted to decide how a page is read (PostgreSQL).

A filter term every match must pass whose candidates are one range of an (experiment_id, key, value)
index (a param or tag `=`, IN, LIKE 'prefix%', a metric comparison: `sql_predicates.anchors`) bounds
the matches. One statement counts each anchor's index entries in the experiments searched, up to
ANCHOR_CAP + 1 (a few leaf pages for a metric, index-only; a param's or tag's reads each entry's row,
as PostgreSQL reads no expression index only, ~1,000 buffers at most). An anchor with fewer entries
than a page cannot fill one by a walk, and one that matches fewer than 1 in WALK_CANDIDATES_PER_ROW
of the runs with its key leaves a walk little hope: the page is driven from it (`anchored`: those
runs by primary key, the rest of the filter tested on each, sorted), at a cost that follows its
matches. Below the cap otherwise, a walk goes first (`sql_walks`) and the anchor drives the page if
the walk falls short: a walk and a drive cost about the same per run, so the page costs at most about
twice the cheaper of the two, without knowing the experiment's size. The count costs ~0.5-3 ms (a
common filter's walk is 5-20 ms): a search asked again within FACTS_SECONDS (paging, a page polled or
reloaded) reuses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    any_,
    case,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from modelyard.store.search.filter_parser import Comparison, Node
from modelyard.store.sql.experiment_ids import VALUE_PREFIX
from modelyard.store.tracking import sql_walks
from modelyard.store.tracking.sql_predicates import (
    RUN_KEYED_TABLES,
    anchor_rows,
    anchors,
    key_rows,
    probing_run_filter,
    runs_t,
    without,
)
from modelyard.store.tracking.sql_sort_keys import SortKey, after, page_parameter
from modelyard.store.tracking.sql_walks import GROUP_VALUE, ValueGroups, Walking

#: Anchors are counted up to this many index entries (the count is exact below it).
ANCHOR_CAP = 1_000
#: How long a search's anchor count is reused (per worker, while the search's plan is cached).
FACTS_SECONDS = 30.0


@dataclass(frozen=True)
class Anchors:
    """`counts` selects one row: for each anchor, its index entries in the experiments searched (up to
    ANCHOR_CAP + 1), then, when those are at most ANCHOR_CAP, the entries of its key (up to
    sql_walks.WALK_CANDIDATES_PER_ROW times as many, + 1; else NULL). `terms[i]` is anchor i's comparison."""

    counts: Select[Any]
    terms: tuple[Comparison, ...]
    #: The last count (monotonic time, row): a search asked again within FACTS_SECONDS (paging, a
    #: page polled or reloaded) reuses it. It only chooses how the page is read, never what is on it.
    last: list[tuple[float, Sequence[Any]]] = field(default_factory=list, compare=False, repr=False)

    def counted(self, count: Callable[[Select[Any]], Sequence[Any]]) -> Sequence[Any]:
        """The anchors' count, through `count(statement)`, or the last one if recent."""
        now = time.monotonic()
        if self.last and now - self.last[0][0] < FACTS_SECONDS:
            return self.last[0][1]
        row = count(self.counts)
        self.last[:] = [(now, row)]
        return row

    def choice(self, row: Sequence[Any], max_results: int) -> tuple[int | None, bool]:
        """From the counts: the anchor to drive a page from (None: none has at most ANCHOR_CAP
        entries) and whether a walk may fill the page first. An anchor with fewer entries than a page
        leaves nothing to walk for; one that matches fewer than 1 in sql_walks.WALK_CANDIDATES_PER_ROW runs
        having its key (the key's entries are capped there) leaves a walk little hope of filling a
        page within its budget."""
        matches = row[0::2]
        best = min(range(len(matches)), key=matches.__getitem__)
        found, keyed = matches[best], row[2 * best + 1]
        if found > ANCHOR_CAP:
            return None, True
        hopeless = found <= max_results or keyed > sql_walks.WALK_CANDIDATES_PER_ROW * found
        return best, not hopeless


def find_anchors(walking: Walking) -> Anchors | None:
    if walking.node is None:
        return None
    terms = tuple(anchors(walking.node))
    if not terms:
        return None
    counts = []
    for i, term in enumerate(terms):
        entries = (
            anchor_rows(term, walking.experiment_ids, literal(1)).limit(ANCHOR_CAP + 1).subquery(f"a{i}")
        )
        counts.append(select(func.count()).select_from(entries).scalar_subquery().label(f"m{i}"))
    # OFFSET 0: counted once (a subquery pulled up would repeat each count where it is used).
    found = select(*counts).offset(literal_column("0")).subquery("found")
    columns: list[Any] = []
    for i, term in enumerate(terms):
        matches = found.c[f"m{i}"]
        # Read only when the anchor is rare, and no further than the walk could go.
        keyed = (
            key_rows(term, walking.experiment_ids)
            .limit(matches * sql_walks.WALK_CANDIDATES_PER_ROW + 1)
            .subquery(f"k{i}")
        )
        count = select(func.count()).select_from(keyed).scalar_subquery()
        columns += [matches, case((matches <= ANCHOR_CAP, count), else_=null())]
    return Anchors(select(*columns).select_from(found), terms)


def anchored(
    walking: Walking,
    term: Comparison,
    base: Select[Any],
    bounds: Sequence[ColumnElement[bool]],
    keys: Sequence[SortKey],
    token: Sequence[Any] | None,
    max_results: int,
) -> tuple[Select[Any], Any]:
    """The page driven from an anchor, and the table or subquery its rows' `runs` columns come from.
    In the default order, a param's or tag's `=` or IN: its index ranges in that order (`in_page_order`).
    Otherwise the runs whose rows pass it (`run_uuid = ANY(ARRAY(...))`, an index scan of the runs'
    primary key whatever the planner estimates), in scope and after the page token (`bounds`), the rest
    of the filter tested on each by probes, sorted. `base` selects the page's columns from `runs` and
    the order's joins; `token`: the page token's bind parameters (None on a first page), `max_results`
    the page's size."""
    assert walking.node is not None
    if _default_order(keys) and 0 < value_ranges(term, walking.experiment_ids) <= sql_walks.MAX_RANGES:
        return in_page_order(walking, term, keys, token, max_results)
    rows = anchor_rows(term, walking.experiment_ids, exact=True)
    named = runs_t.c.run_uuid == any_(func.array(rows.scalar_subquery(), type_=ARRAY(String)))
    rest = without(walking.node, term)
    tests = [] if rest is None else [probing_run_filter(rest, walking.experiment_ids, runs_t)]
    stmt = base.where(*walking.scope(runs_t), named, *bounds, *tests).order_by(*(k.order() for k in keys))
    return stmt, runs_t


def _default_order(keys: Sequence[SortKey]) -> bool:
    """The keys are the default order's: start_time DESC (NULLS LAST), run_uuid."""
    return len(keys) == 2 and keys[0].expr is runs_t.c.start_time and not keys[0].ascending


def value_ranges(node: Node | None, experiment_ids: Sequence[int]) -> int:
    """How many index ranges `in_page_order` reads for a filter that is one param's or tag's `=` or
    IN (a range per experiment and value); 0 for any other filter."""
    if not isinstance(node, Comparison) or node.entity not in ("param", "tag") or node.op not in ("=", "IN"):
        return 0
    values = 1 if node.op == "=" else len(node.value)  # type: ignore[arg-type]
    return len(experiment_ids) * values


def in_page_order(
    walking: Walking,
    term: Comparison,
    keys: Sequence[SortKey],
    token: Sequence[Any] | None,
    max_results: int,
    budget: Any = None,
) -> tuple[Select[Any], Any]:
    """The page driven from a param's or tag's `=` (or IN: one index range per value) in the default
    order: the value's rows read from the (experiment_id, key, value prefix, start_time DESC NULLS
    LAST, run_uuid) index in that order (each experiment's range, merged), from the page token on, each
    run's row read by primary key (LATERAL, in scope: its lifecycle stage) and the rest of the filter
    tested, until the page is full. Its cost follows the page, not the value's runs (migration 0015:
    the rows carry their run's start time). `budget` (a walk's: a value too common for an anchor)
    limits the rows read, which also has PostgreSQL plan the range read in order: without a limit it
    planned reading all 250,000 runs of a common value and sorting them. Without it (an anchor's
    range, ANCHOR_CAP entries at most) a deep page may read the range from its start (the token's test
    is not a range of it)."""
    assert walking.node is not None
    table = RUN_KEYED_TABLES[term.entity]
    values = [term] if term.op == "=" else [replace(term, op="=", value=v) for v in term.value]  # type: ignore[union-attr]
    ranges = [
        anchor_rows(value, [experiment_id], table.c.run_uuid, table.c.start_time, exact=True)
        for experiment_id in walking.experiment_ids
        for value in values
    ]
    return read_in_page_order(walking, table, ranges, keys, token, without(walking.node, term), max_results, budget)


def group_in_page_order(
    walking: Walking,
    groups: ValueGroups,
    keys: Sequence[SortKey],
    token: Sequence[Any] | None,
    max_results: int,
) -> tuple[Select[Any], Any]:
    """A page within one value of the param or tag the page is ordered by, a value many runs share
    (`sql_walks.value_groups`; the value, shorter than the index's prefix, is GROUP_VALUE): its rows
    read from the (experiment_id, key, value prefix, start_time DESC NULLS LAST, run_uuid) index in the
    default order (`keys`), after `token`, within the walk's budget, the filter tested on each, the
    value first in each row. Its cost follows the page, not the share of runs that have the value (a
    walk of every run testing the value read 7x the page for a value 1 run in 7 has)."""
    table = RUN_KEYED_TABLES[groups.entity]
    value = page_parameter(GROUP_VALUE, String)
    head = func.left(table.c.value, literal_column(str(VALUE_PREFIX)))
    ranges = [
        select(table.c.run_uuid, table.c.start_time).where(
            table.c.experiment_id == experiment_id, table.c.key == groups.key, head == value
        )
        for experiment_id in walking.experiment_ids
    ]
    budget = page_parameter(sql_walks.BUDGET, Integer)
    return read_in_page_order(walking, table, ranges, keys, token, walking.node, max_results, budget, (value,))


def read_in_page_order(
    walking: Walking,
    table: Any,
    ranges: Sequence[Select[Any]],
    keys: Sequence[SortKey],
    token: Sequence[Any] | None,
    rest: Node | None,
    max_results: int,
    budget: Any = None,
    lead: Sequence[Any] = (),
) -> tuple[Select[Any], Any]:
    """The page among the rows `ranges` select (run_uuid and start_time of a key/value `table`, each
    one range of its (experiment_id, key, value prefix, start_time DESC NULLS LAST, run_uuid) index)
    read in the default order (`keys`) and merged, after `token`, `rest` (a filter, or None) tested on
    each; `lead`: columns before the keys' in each row (a value group's value). With the subquery of
    `runs` its rows come from."""
    on_rows = [replace(k, expr=table.c[k.expr.name]) for k in keys]
    bounds = [] if token is None else [after(on_rows, token)]
    parts = []
    for rows in ranges:
        part = rows.where(*bounds).order_by(*(k.order() for k in on_rows))
        parts.append(part if budget is None else part.limit(budget))
    candidates = sql_walks.merged(
        parts, lambda rows: [k.order(rows.c[k.expr.name]) for k in keys], budget, "anchor_candidates"
    )
    run = sql_walks.run_of(walking, candidates)
    walked = [replace(k, expr=candidates.c[k.expr.name]) for k in keys]
    tests = [] if rest is None else [probing_run_filter(rest, walking.experiment_ids, run, candidates.c.run_uuid)]
    columns = (*lead, *(k.expr for k in walked))
    stmt = (
        select(candidates.c.run_uuid, *(c.label(f"k{i}") for i, c in enumerate(columns)))
        .select_from(candidates.join(run, true()))
        .where(*tests)
        .order_by(*(k.order() for k in walked))
        .limit(max_results + 1)
    )
    return stmt, run
