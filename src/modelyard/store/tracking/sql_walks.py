"""Walks: a page read in its order's index, each run tested, whatever the planner estimates (PostgreSQL).

PostgreSQL chooses between reading runs in the page's order and testing each (a page costs the page
divided by the filter's selectivity) and driving the search from the filter's indexes (it costs the
matches). It chooses from its estimate of the matches, which it cannot make for one experiment of
several: it divides by the whole database's run ids, so a 100,000-run experiment in a 1,100,000-run
database looked 10x more selective than it is, and its first page, driven and sorted, took 0.4 s
instead of 5 ms. So the search decides at run time, from facts it reads: a rare filter term drives the
page (`sql_anchors`); otherwise it is walked:

- **Walks.** The page reads the next runs in its order, from the runs index (the default order), the
  ordered metric's (experiment_id, key, value) index or the ordered param's or tag's (experiment_id,
  key, value prefix) index, and tests each through the key/value tables' primary keys
  (`sql_predicates.probing_run_filter`); filled within WALK_CANDIDATES (or WALK_CANDIDATES_PER_ROW
  per row) of them, the page is done; otherwise the filter is rare, and a counted anchor or the
  search's own statements (`sql_search`) answer.
- **Ties.** A metric's index does not hold the start time and id that order runs of equal value, and
  a value's holds them after its prefix only: the candidates end with a whole tie group (FETCH ...
  WITH TIES). A value many runs share (over GROUP_PAGES pages' worth) would be read whole: its runs
  are read in the default order from its own index range instead (`value_groups`,
  `sql_anchors.group_in_page_order`).
- **Ranges.** The order's index holds one range per experiment and lifecycle stage (runs) or per
  experiment (a key's values): a search of several experiments, or of every stage, reads each range in
  order and merges them (UNION ALL of ordered LIMITed scans: PostgreSQL's Merge Append), as one range
  is read, instead of sorting every run of those experiments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from modelyard.entities import LifecycleStage
from modelyard.store.search.filter_parser import Node
from modelyard.store.sql.experiment_ids import VALUE_PREFIX
from modelyard.store.tracking.sql_predicates import (
    RUN_KEYED_TABLES,
    in_experiments,
    latest_t,
    probing_run_filter,
    runs_t,
)
from modelyard.store.tracking.sql_sort_keys import SortKey, after, page_parameter

#: How many runs, at least, a walk reads before it gives up; and per row of a page.
WALK_CANDIDATES = 2_000
WALK_CANDIDATES_PER_ROW = 20
#: At most this many index ranges (experiments x lifecycle stages) are merged by a walk.
MAX_RANGES = 16
#: The bind parameter of a walk's budget: the runs it reads.
BUDGET = "walk_budget"


@dataclass(frozen=True)
class Walking:
    """What a search's walks and anchors need: the filter (None: none), the experiments and lifecycle
    stages searched (the ranges of the order's index), and the metric, param or tag the page is
    ordered by (`order_key`, of `order_entity`; None: the default order)."""

    node: Node | None
    experiment_ids: tuple[int, ...]
    stages: tuple[str, ...]
    order_key: str | None
    order_entity: str | None = None
    #: Every lifecycle stage is searched (ViewType.ALL): no condition on the stage.
    every_stage: bool = False

    def budget(self, max_results: int) -> int:
        return max(WALK_CANDIDATES, WALK_CANDIDATES_PER_ROW * (max_results + 1))

    @property
    def ranges(self) -> list[tuple[int, str]]:
        """The (experiment, stage) ranges of the runs index in the default order."""
        stages = (LifecycleStage.ACTIVE, LifecycleStage.DELETED) if self.every_stage else self.stages
        return [(e, s) for e in self.experiment_ids for s in stages]

    def scope(self, runs: Any) -> list[ColumnElement[bool]]:
        """The conditions on a row of `runs` (the table or a subquery of it) besides the filter."""
        ids = self.experiment_ids
        out = [runs.c.experiment_id == ids[0] if len(ids) == 1 else runs.c.experiment_id.in_(ids)]
        if not self.every_stage:
            stage = runs.c.lifecycle_stage
            out.append(stage == self.stages[0] if len(self.stages) == 1 else stage.in_(self.stages))
        return out


def budget_parameters(budget: int) -> dict[str, int]:
    return {BUDGET: budget}


# ---- walks --------------------------------------------------------------------------------------
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


def merged(parts: Sequence[Select[Any]], order: Any, limit: Any, name: str, with_ties: bool = False) -> Any:
    """The rows of `parts` (each ordered and limited: one range of an index read in order) merged in
    `order` (a function of the merged subquery's columns) and limited: a subquery. One part is itself."""
    if len(parts) == 1:
        return parts[0].subquery(name)
    merged = union_all(*parts).subquery(f"{name}_ranges")
    ordered = select(merged).order_by(*order(merged))
    return (ordered.fetch(limit, with_ties=True) if with_ties else ordered.limit(limit)).subquery(name)


def walk(
    walking: Walking,
    keys: Sequence[SortKey],
    max_results: int,
    token: Sequence[Any] | None,
    among_values: bool,
    group: Any = None,
) -> tuple[Select[Any], Any]:
    """The walk of a page in the default order (keys: start_time, run_uuid) after `token` (the page
    token's bind parameters, None on the first page; `among_values`: the token has a start_time), and
    the subquery of `runs` its rows come from. Without a filter its first max_results + 1 runs are the
    page (the budget: `budget_parameters(max_results + 1)`). `group`: the walk of one value of an
    attribute most runs share (`sql_attribute_groups`): its runs only (its `in_range` conditions bound each range read, its `tests`
    are tested on each run read, its `lead_order` goes before the keys'), that value (GROUP_VALUE) first
    in each row."""
    if token is not None and among_values:  # among the runs with a start_time: an index range
        first = keys[0]
        bounds = [first.reached(token[0]), or_(first.differs(token[0]), after(keys[1:], token[1:]))]
    elif token is not None:
        bounds = [after(keys, token)]
    else:
        bounds = []
    budget = page_parameter(BUDGET, Integer)
    in_range = [] if group is None else group.in_range(runs_t)

    def lead_order(rows: Any) -> list[Any]:
        return [] if group is None else group.lead_order(rows)

    parts = [
        select(runs_t)
        .where(runs_t.c.experiment_id == experiment_id, runs_t.c.lifecycle_stage == stage, *in_range, *bounds)
        .order_by(*lead_order(runs_t), *(k.order() for k in keys))
        .limit(budget)
        for experiment_id, stage in walking.ranges
    ]
    candidates = merged(
        parts, lambda rows: [*lead_order(rows), *(k.order(rows.c[k.expr.name]) for k in keys)], budget, "candidates"
    )
    walked = tuple(replace(k, expr=candidates.c[k.expr.name]) for k in keys)
    lead = () if group is None else (page_parameter(GROUP_VALUE, String),)
    columns = (
        candidates.c.run_uuid,
        *(k.label(f"k{i}") for i, k in enumerate((*lead, *(k.expr for k in walked)))),
    )
    tests = [] if group is None else group.tests(candidates.c.run_uuid)
    if walking.node is not None:
        tests.append(probing_run_filter(walking.node, walking.experiment_ids, candidates))
    statement = select(*columns).where(*tests).order_by(*lead_order(candidates), *(k.order() for k in walked))
    return statement.limit(max_results + 1), candidates


# ---- one value of a param or tag order (`walk_value`'s large groups) ------------------------------
#: A value shared by more runs than this many pages' worth (with a prefix shorter than the index's) is a
#: large group, read in the page's order from its own index range (a page's cost); a smaller one is
#: read whole by `walk_value` (with the values after it, up to the walk's budget and their ties).
GROUP_PAGES = 2
#: The bind parameters of the group walked: its value, and (group probe) where the value after the
#: page token starts.
GROUP_VALUE = "group_value"


@dataclass(frozen=True)
class ValueGroups:
    """For a page ordered by one param or tag (`walk_value`): `probe` selects the first value at or
    after the page token's in the page's order (its prefix) and how many runs of the experiments have
    it (up to `cap` + 1); a large group's (over `cap`) runs are read in the default order from the value's
    index range (`sql_anchors.group_in_page_order`), not whole."""

    entity: str
    key: str
    experiment_ids: tuple[int, ...]
    probe: Select[Any]
    cap: int


def value_groups(
    walking: Walking, ascending: bool, token: Sequence[Any] | None, max_results: int
) -> ValueGroups:
    """The `ValueGroups` of a page of `max_results` ordered by `walking`'s param or tag (after `token`,
    whose first value is the token's value, or from the first value)."""
    cap = GROUP_PAGES * (max_results + 1)
    assert walking.order_entity is not None and walking.order_key is not None
    table = RUN_KEYED_TABLES[walking.order_entity]
    operator = "~<~" if ascending else "~>~"

    def head(value: Any) -> Any:
        return func.left(value, literal_column(str(VALUE_PREFIX)))

    parts = []
    for experiment_id in walking.experiment_ids:
        rows = table.alias(f"first_value_{experiment_id}")
        bounds = []
        if token is not None:
            bound = "~>=~" if ascending else "~<=~"
            bounds = [head(rows.c.value).op(bound, is_comparison=True)(head(page_parameter("pos_0")))]
        parts.append(
            select(head(rows.c.value).label("head"))
            .where(rows.c.experiment_id == experiment_id, rows.c.key == walking.order_key, *bounds)
            .order_by(using_operator(head(rows.c.value), operator))
            .limit(1)
        )
    first = merged(parts, lambda rows: [using_operator(rows.c.head, operator)], 1, "first_value")
    first_head = select(first.c.head).scalar_subquery()
    sharing = (
        select(literal(1))
        .where(
            in_experiments(table, walking.experiment_ids),
            table.c.key == walking.order_key,
            head(table.c.value) == first_head,
        )
        .limit(cap + 1)
        .subquery("sharing")
    )
    probe = select(first_head, select(func.count()).select_from(sharing).scalar_subquery())
    return ValueGroups(walking.order_entity, walking.order_key, walking.experiment_ids, probe, cap)


def walk_metric(
    walking: Walking, keys: Sequence[SortKey], max_results: int, token: Sequence[Any] | None
) -> tuple[Select[Any], Any]:
    """The walk of a page ordered by one metric, among the runs with a number for it (keys: the
    metric's rank, its value, start_time, run_uuid), and the subquery of `runs` its rows come from.

    The candidates are the next budget of the experiments' rows of the metric in value order (an index
    range of (experiment_id, key, value) per experiment, merged; one table: nothing for the planner to
    misjudge), and every row tied with the last of them: runs tied on the value are ordered by start
    time and id, which the index does not hold, so a tie group must be whole (FETCH ... WITH TIES).
    The filter's probes are tested on each candidate's run id, and the run's row is read by its
    primary key for the candidates that pass (LATERAL: in that order, until the page is full)."""
    rest = (replace(keys[1], nullable=False), *keys[2:])
    ascending = rest[0].ascending

    def order(rows: Any) -> list[Any]:
        return [rows.c.value.asc() if ascending else rows.c.value.desc()]

    # The experiments' numbers for the metric from the page token on, in the page's order: the first
    # budget of them and every one tied with the last (WITH TIES), so a tie group is whole.
    budget = page_parameter(BUDGET, Integer)
    parts = []
    for experiment_id in walking.experiment_ids:
        rows = latest_t.alias(f"metric_candidates_{experiment_id}")
        bounds = []
        if token is not None:  # where the index scan starts: `value <= last` (DESC) / `>= last` (ASC)
            last = page_parameter("pos_1") if token[1] is not None else null()
            bounds = [rows.c.value >= last if ascending else rows.c.value <= last]
        parts.append(
            select(rows.c.run_uuid.label("run_uuid"), rows.c.value.label("value"))
            .where(
                rows.c.experiment_id == experiment_id,
                rows.c.key == walking.order_key,
                rows.c.is_nan == false(),
                *bounds,
            )
            .order_by(*order(rows))
            .fetch(budget, with_ties=True)
        )
    # A subquery, not a CTE: the outer query knows it is in value order and reads it lazily.
    candidates = merged(parts, order, budget, "metric_candidates", with_ties=True)
    run = run_of(walking, candidates)
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
    return _page_of_candidates(walking, candidates, run, columns, bounds, walked, max_results), run


def walk_value(
    walking: Walking, keys: Sequence[SortKey], max_results: int, token: Sequence[Any] | None
) -> tuple[Select[Any], Any]:
    """The walk of a page ordered by one param or tag, among the runs that have it (keys: its value,
    start_time, run_uuid), and the subquery of `runs` its rows come from: as `walk_metric`, from the
    (experiment_id, key, value prefix) index read in the prefix's order (text_pattern_ops, bytewise,
    as the search's COLLATE "C"), the first budget candidates and every one sharing the last one's
    prefix (values that share a prefix are ordered by the whole value, their runs by start time and
    id: the group must be whole). A value shared by many runs is one group: the page then reads
    all of its runs (a param with few distinct values costs its first value's runs)."""
    table = RUN_KEYED_TABLES[walking.order_entity or "param"]
    ascending = keys[0].ascending
    operator = "~<~" if ascending else "~>~"
    budget = page_parameter(BUDGET, Integer)

    def head(value: Any) -> Any:
        return func.left(value, literal_column(str(VALUE_PREFIX)))

    def order(rows: Any) -> list[Any]:
        return [using_operator(rows.c.head, operator)]

    parts = []
    for experiment_id in walking.experiment_ids:
        rows = table.alias(f"value_candidates_{experiment_id}")
        bounds = []
        if token is not None:  # where the index scan starts: the token's prefix, in the page's order
            last = head(page_parameter("pos_0"))
            bounds = [head(rows.c.value).op("~>=~" if ascending else "~<=~", is_comparison=True)(last)]
        parts.append(
            select(
                rows.c.run_uuid.label("run_uuid"),
                rows.c.value.label("value"),
                head(rows.c.value).label("head"),
            )
            .where(rows.c.experiment_id == experiment_id, rows.c.key == walking.order_key, *bounds)
            .order_by(using_operator(head(rows.c.value), operator))
            .fetch(budget, with_ties=True)
        )
    candidates = merged(parts, order, budget, "value_candidates", with_ties=True)
    run = run_of(walking, candidates)
    walked = (replace(keys[0], expr=candidates.c.value, nullable=False),)
    walked += tuple(replace(k, expr=run.c[k.expr.name]) for k in keys[1:])
    bounds = [] if token is None else [after(walked, token)]
    columns = (candidates.c.run_uuid, *(k.expr.label(f"k{i}") for i, k in enumerate(walked)))
    # The prefix first (the order the candidates come in, so the sort is incremental and stops with
    # the page), then the whole key: the same order, as a value's prefix sorts as the value does.
    return _page_of_candidates(
        walking, candidates, run, columns, bounds, walked, max_results, order(candidates)
    ), run


def run_of(walking: Walking, candidates: Any) -> Any:
    """The run of each candidate, in scope, by primary key (LATERAL: read in the candidates' order)."""
    rows = select(runs_t).where(runs_t.c.run_uuid == candidates.c.run_uuid, *walking.scope(runs_t))
    return rows.lateral("walked_run")


def _page_of_candidates(
    walking: Walking,
    candidates: Any,
    run: Any,
    columns: Sequence[Any],
    bounds: Sequence[ColumnElement[bool]],
    keys: Sequence[SortKey],
    max_results: int,
    lead: Sequence[Any] = (),
) -> Select[Any]:
    """The page among a key's candidates (run id and value, in order) joined to their runs (LATERAL
    `run`): after the page token (`bounds`), the filter's probes tested on the candidate's run id
    (PostgreSQL tests them before reading the run's row), in `lead` then `keys` order."""
    tests = []
    if walking.node is not None:
        tests = [probing_run_filter(walking.node, walking.experiment_ids, run, candidates.c.run_uuid)]
    return (
        select(*columns)
        .select_from(candidates.join(run, true()))
        .where(*bounds, *tests)
        .order_by(*lead, *(k.order() for k in keys))
        .limit(max_results + 1)
    )


def using_operator(expression: Any, operator: str) -> Any:
    """`expression USING operator` for ORDER BY (the text_pattern_ops order of a value prefix)."""
    return UnaryExpression(expression, modifier=custom_op(f"USING {operator}"))
