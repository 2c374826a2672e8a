"""Pages ordered by a run attribute most runs share (status, user_id), one value at a time (PostgreSQL).

The attribute's runs index (experiment_id, lifecycle_stage, attribute, start_time DESC NULLS LAST,
run_uuid; migration 0015) holds each value's runs in the tie-breaks' order. Read forward it is the
ascending page's order, but a keyset page deep inside a value starts its scan at the value's first run;
read backwards (descending) the ties come reversed, and PostgreSQL re-sorts a whole value's runs: at
1M runs, 900,000 FINISHED ones, a sort of the experiment (~1 s). So, with no filter, a page reads the
values one at a time in its order: a probe finds the next value (one index descent per range), and that
value's runs are a range of the index read forward, from the page token's start time and id within the
token's value (`sql_walks.walk` with the value as its group), until the page is full. Runs without a
value (user_id NULL, last either way) follow from the search's own statement of them. A page that spans
more than MAX_GROUPS values (few runs per value) hands over to the search's statements, for which
re-sorting one value's runs is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, String, select

from modelyard.store.tracking.sql_sort_keys import SortKey, page_parameter
from modelyard.store.tracking.sql_walks import GROUP_VALUE, Walking, merged, walk

#: At most this many values are read for one page (more: the search's statements answer).
MAX_GROUPS = 4


@dataclass(frozen=True)
class AttributeGroup:
    """One value (GROUP_VALUE) of the ordered attribute, for `sql_walks.walk`: its runs are a range of
    the attribute's index (`null_starts`: only those without a start time, the range's end).

    The value is bounded as `>= v AND <= v` and leads the ORDER BY, not `= v`: with an equality
    PostgreSQL drops the attribute from the order (a constant), and the default order's index, tested
    for the value, reads the same order; it chose that index by its estimate of the value's share of the
    whole database, which one experiment's runs need not follow (1 in 10 FAILED: 10x the rows). As a
    range leading the order, only the attribute's index gives the order without sorting the experiment."""

    key: SortKey
    null_starts: bool = False

    def in_range(self, runs: Any) -> list[ColumnElement[bool]]:
        ascending = replace(self.key, expr=runs.c[self.key.expr.name], ascending=True, nullable=False)
        value = page_parameter(GROUP_VALUE, String)
        out = [ascending.reached(value), replace(ascending, ascending=False).reached(value)]
        return [*out, runs.c.start_time.is_(None)] if self.null_starts else out

    def tests(self, run_uuid: Any) -> list[ColumnElement[bool]]:
        return []

    def lead_order(self, rows: Any) -> list[Any]:
        return [replace(self.key, expr=rows.c[self.key.expr.name], ascending=True, nullable=False).order()]


@dataclass(frozen=True)
class AttributeGroups:
    """The statements of one page shape: `first` selects the first value in the page's order (None:
    the page starts within its token's value, `pos_0`), `next` the first value after GROUP_VALUE (one
    row each, NULL when there is none); `opening` reads the first value's runs (after the page token
    within it), `opening_rest` those of the token's value without a start time (after a token among
    start times, which `opening` stops before; else None), `following` a later value's runs from its
    start; `nulls` the runs without a value, in order (None: the attribute is never NULL)."""

    first: Select[Any] | None
    next: Select[Any]
    opening: Select[Any]
    opening_rest: Select[Any] | None
    following: Select[Any]
    nulls: Select[Any] | None

    @property
    def walks(self) -> tuple[Select[Any], ...]:
        """The walks, whose rows come from runs subqueries (`RunSearch.group_walks`)."""
        out = (self.opening, self.opening_rest, self.following)
        return tuple(w for i, w in enumerate(out) if w is not None and all(w is not v for v in out[:i]))

    def read(
        self,
        params: dict[str, Any],
        execute: Callable[[Select[Any]], Sequence[Any]],
        count: Callable[[Select[Any]], Sequence[Any]],
        max_results: int,
        run_id: int,
    ) -> Sequence[Any] | None:
        """The page's rows (up to max_results + 1), or None when it spans more than MAX_GROUPS values.
        `params` are the page's bind parameters (GROUP_VALUE is set in them); `run_id` is the run id's
        column in a row."""
        if self.first is not None:
            value = count(self.first)[0]
            if value is None:  # no run has a value: the runs without one are the page
                return None
            params[GROUP_VALUE] = value
        else:
            params[GROUP_VALUE] = params["pos_0"]
        rows = list(execute(self.opening))
        if len(rows) <= max_results and self.opening_rest is not None:
            rows += execute(self.opening_rest)
        for _ in range(MAX_GROUPS - 1):
            if len(rows) > max_results:
                return rows[: max_results + 1]
            value = count(self.next)[0]
            if value is None:
                break
            params[GROUP_VALUE] = value
            rows += execute(self.following)
        else:
            if len(rows) > max_results:
                return rows[: max_results + 1]
            return None
        if self.nulls is not None:
            # Another statement, another snapshot: a run whose value turned NULL in between would come twice.
            seen = {row[run_id] for row in rows}
            rows += [row for row in execute(self.nulls) if row[run_id] not in seen]
        return rows[: max_results + 1]


def attribute_groups(
    walking: Walking,
    keys: Sequence[SortKey],
    max_results: int,
    token: Sequence[Any] | None,
    nulls: Select[Any] | None,
) -> tuple[AttributeGroups, tuple[Any, ...]]:
    """The `AttributeGroups` of a page ordered by `keys[0]` (a GROUPED_ATTRIBUTES column; then start_time
    and run_uuid) after `token` (its bind parameters; None on a first page; token[0] is not NULL), and
    the runs subqueries of its walks (in `walks`' order). `nulls`: the search's statement of the runs
    without a value."""
    key = replace(keys[0], nullable=False)
    column = key.expr
    tie_breaks = keys[1:]

    def value_after(bound: ColumnElement[bool] | None, name: str) -> Select[Any]:
        """One row: the first value in the page's order (after `bound`), of every range merged."""
        table = column.table
        ranges = [
            select(column.label("value"))
            .where(
                table.c.experiment_id == experiment_id,
                table.c.lifecycle_stage == stage,
                column.is_not(None),
                *([] if bound is None else [bound]),
            )
            .order_by(key.order())
            .limit(1)
            for experiment_id, stage in walking.ranges
        ]
        first = merged(ranges, lambda rows: [key.order(rows.c.value)], 1, name)
        return select(select(first.c.value).scalar_subquery())

    group = AttributeGroup(keys[0])
    following, following_source = walk(walking, tie_breaks, max_results, None, False, group)
    first = None
    rest = rest_source = None
    if token is None:
        first = value_after(None, "first_attribute_value")
        opening, opening_source = following, following_source
    elif token[1] is not None:  # among the token value's start times, then its runs without one
        opening, opening_source = walk(walking, tie_breaks, max_results, token[1:], True, group)
        null_starts = AttributeGroup(keys[0], null_starts=True)
        rest, rest_source = walk(walking, tie_breaks, max_results, None, False, null_starts)
    else:  # among the token value's runs without a start time
        opening, opening_source = walk(walking, tie_breaks, max_results, token[1:], False, group)
    groups = AttributeGroups(
        first,
        value_after(key.later(page_parameter(GROUP_VALUE, String)), "next_attribute_value"),
        opening,
        rest,
        following,
        nulls if keys[0].nullable else None,
    )
    sources = {id(opening): opening_source, id(following): following_source}
    if rest is not None:
        sources[id(rest)] = rest_source
    return groups, tuple(sources[id(w)] for w in groups.walks)
