"""Walks: a filtered page read in an index's order, each run tested by probes (PostgreSQL).

PostgreSQL chooses between reading runs in the page's order and testing each (a page costs the page
divided by the filter's selectivity) and driving the search from the filter's indexes (it costs the
matches). It chooses from its estimate of the matches, which it cannot make for one experiment of
several: it divides by the whole database's run ids, so a 100,000-run experiment in a 1,100,000-run
database looked 10x more selective than it is, and its first page, driven and sorted, took 0.4 s
instead of 5 ms. A walk decides at run time instead: it reads the next WALK_CANDIDATES (or
WALK_CANDIDATES_PER_ROW per row of the page) runs in order, from the runs index (the default order) or
the ordered metric's (experiment_id, key, value) index, and tests each through the key/value tables'
primary keys (`sql_predicates.probing_run_filter`). Filled within its candidates, the page is done;
otherwise the filter matches fewer than 1 run in WALK_CANDIDATES_PER_ROW, and the search's own
statements follow (`sql_search.RunSearch.fetch`). It applies to one experiment and one lifecycle
stage (one range of an index in the page's order) with a filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, false, func, literal, null, or_, select, true

from modelyard.store.search.filter_parser import Node
from modelyard.store.tracking.sql_predicates import latest_t, probing_run_filter, runs_t
from modelyard.store.tracking.sql_sort_keys import SortKey, after, page_parameter

#: How many runs, at least, a walk reads before it gives up; and per row of a page.
WALK_CANDIDATES = 2_000
WALK_CANDIDATES_PER_ROW = 20


@dataclass(frozen=True)
class Walking:
    """What a search's walks need: the filter, the experiment, the conditions on runs without the
    filter (experiment, lifecycle stage), and the metric the page is ordered by (None: the default
    order)."""

    node: Node
    experiment_ids: tuple[int, ...]
    scope: tuple[ColumnElement[bool], ...]
    metric_key: str | None

    def budget(self, max_results: int) -> int:
        return max(WALK_CANDIDATES, WALK_CANDIDATES_PER_ROW * (max_results + 1))


def metric_after(metric: Any, keys: Sequence[SortKey], values: Sequence[Any]) -> list[ColumnElement[bool]]:
    """A metric-first page's keyset test among the numbers, after the token `values` (keys[0] is the
    metric's rank, keys[1] its value): `value >= last (ASC) / <= last (DESC)`, where the index scan
    starts, AND `(value <> last OR the rest of the key is after)`. Spelled as `after(rest)` (`value <
    last OR value = last AND ...`) next to the bound, PostgreSQL counts the range twice: deep pages
    were estimated at fewer rows than the page, and planned as a hash join over every run (50 ms
    instead of 5 on page 11 of 14)."""
    rest = keys[1:]
    last = page_parameter("pos_1") if values[1] is not None else null()
    value = metric.c.value
    return [
        value >= last if rest[0].ascending else value <= last,
        or_(value != last, after(rest[1:], values[2:])),
    ]


def walk(
    walking: Walking,
    keys: Sequence[SortKey],
    max_results: int,
    token: Sequence[Any] | None,
    among_values: bool,
) -> tuple[Select[Any], Any]:
    """The walk of a page in the default order (keys: start_time, run_uuid) after `token` (the page
    token's bind parameters, None on the first page; `among_values`: the token has a start_time), and
    the subquery of `runs` its rows come from."""
    if token is not None and among_values:  # among the runs with a start_time: an index range
        first = keys[0]
        bounds = [first.reached(token[0]), or_(first.differs(token[0]), after(keys[1:], token[1:]))]
    elif token is not None:
        bounds = [after(keys, token)]
    else:
        bounds = []
    candidates = (
        select(runs_t)
        .where(*walking.scope, *bounds)
        .order_by(*(k.order() for k in keys))
        .limit(walking.budget(max_results))
    ).subquery("candidates")
    walked = tuple(replace(k, expr=candidates.c[k.expr.name]) for k in keys)
    columns = (candidates.c.run_uuid, *(k.expr.label(f"k{i}") for i, k in enumerate(walked)))
    statement = (
        select(*columns)
        .where(probing_run_filter(walking.node, walking.experiment_ids, candidates))
        .order_by(*(k.order() for k in walked))
        .limit(max_results + 1)
    )
    return statement, candidates


def walk_metric(
    walking: Walking, keys: Sequence[SortKey], max_results: int, token: Sequence[Any] | None
) -> tuple[Select[Any], Any]:
    """The walk of a page ordered by one metric, among the runs with a number for it (keys: the
    metric's rank, its value, start_time, run_uuid), and the subquery of `runs` its rows come from.

    The candidates are the next budget + 1 of the experiment's rows of the metric in value order (an
    index range of (experiment_id, key, value), one table: nothing for the planner to misjudge), each
    run read by its primary key (LATERAL: in that order, until the page is full). Runs tied on the
    value are ordered by start time and id, which the index does not hold: the candidates whose value
    the first one left out shares are left out too (a tie group is whole or absent), and a page they
    would have filled comes from the search's own statements."""
    budget = walking.budget(max_results)
    experiment_id = walking.experiment_ids[0]
    rest = (replace(keys[1], nullable=False), *keys[2:])
    ascending = rest[0].ascending

    def in_order(rows: Any, *columns: Any) -> Select[Any]:
        """The experiment's numbers for the metric from the page token on, in the page's order."""
        bounds = []
        if token is not None:  # where the index scan starts: `value <= last` (DESC) / `>= last` (ASC)
            last = page_parameter("pos_1") if token[1] is not None else null()
            bounds = [rows.c.value >= last if ascending else rows.c.value <= last]
        return (
            select(*(columns or (rows.c.run_uuid, rows.c.value)))
            .where(
                rows.c.experiment_id == experiment_id,
                rows.c.key == walking.metric_key,
                rows.c.is_nan == false(),
                *bounds,
            )
            .order_by(rows.c.value.asc() if ascending else rows.c.value.desc())
        )

    # A subquery, not a CTE: the outer query knows it is in value order and reads it lazily.
    candidates = in_order(latest_t.alias("walked_metric")).limit(budget).subquery("metric_candidates")
    # The value of the first candidate left out (NULL: none was); its ties are left out too.
    left_out_rows = latest_t.alias("left_out")
    left_out = in_order(left_out_rows, left_out_rows.c.value).offset(budget).limit(1).scalar_subquery()
    run = (
        select(runs_t).where(runs_t.c.run_uuid == candidates.c.run_uuid, *walking.scope).lateral("walked_run")
    )
    walked = (replace(rest[0], expr=candidates.c.value),)
    walked += tuple(replace(k, expr=run.c[k.expr.name]) for k in rest[1:])
    bounds = []
    if token is not None:
        last = page_parameter("pos_1") if token[1] is not None else null()
        bounds = [or_(candidates.c.value != last, after(walked[1:], token[2:]))]
    columns = (
        candidates.c.run_uuid,
        literal(0, Integer).label("k0"),
        *(k.expr.label(f"k{i + 1}") for i, k in enumerate(walked)),
    )
    statement = (
        select(*columns)
        .select_from(candidates.join(run, true()))
        .where(
            func.coalesce(candidates.c.value != left_out, true()),
            *bounds,
            probing_run_filter(walking.node, walking.experiment_ids, run),
        )
        .order_by(*(k.order() for k in walked))
        .limit(max_results + 1)
    )
    return statement, run
