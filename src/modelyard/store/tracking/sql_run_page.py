"""One page of a run search, compiled (`sql_search`), and how it is read: the statements that may
answer it and the order they are tried in (`RunSearch.fetch`: a rare anchor's drive, a large value
group's read, an attribute's value-by-value read, the walk, then the search's own SELECTs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select

from modelyard.store.search.paging import next_keyset_page
from modelyard.store.sql.experiment_ids import VALUE_PREFIX
from modelyard.store.tracking.sql_anchors import Anchors
from modelyard.store.tracking.sql_attribute_groups import AttributeGroups
from modelyard.store.tracking.sql_predicates import runs_t
from modelyard.store.tracking.sql_prefix_heads import PrefixHeads
from modelyard.store.tracking.sql_sort_keys import SortKey
from modelyard.store.tracking.sql_walks import GROUP_VALUE, ValueGroups, budget_parameters


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
    #: PostgreSQL can read in order from idx_latest_metrics_experiment_key_value and stop after one
    #: page (the full SELECT evaluates the filter on every run before sorting: ~6x slower at 100,000
    #: runs). Likewise when the first key is a nullable attribute (start_time in the default order)
    #: and the page token is among its values: the runs with a value from the token on, a range of
    #: the experiment's runs index in the search's order.
    numbers_first: Select[Any] | None = None
    #: With `numbers_first`: the runs whose first-ordered metric is NaN or missing (or whose first key
    #: is NULL), in order (they sort after every number). When the numbers run out before the page is
    #: full, the page is the numbers left plus the head of these; the full SELECT would sort every match
    #: after the page token again (the last page of the benchmark search: 12 ms for the full SELECT,
    #: 8 ms for this one).
    non_numbers: Select[Any] | None = None
    #: In the default order or one metric's on PostgreSQL (a filter, or several experiments or
    #: lifecycle stages): the page among the next runs in that order, read from each experiment's (and
    #: stage's) range of the order's index and merged, the filter tested on each by probes
    #: (`sql_walks`). Tried first; when it cannot fill the page, the filter is selective and the
    #: statements above answer, which the planner may drive from the filter's indexes.
    walk: Select[Any] | None = None
    #: The rows `walk` reads (a subquery of `runs` with every column): where a run's columns come from.
    walk_source: Any = None
    #: How many runs the walk reads at most; whether what it returns is the page even when short (no
    #: filter in the default order: it read every run left).
    walk_budget: int = 0
    walk_complete: bool = False
    #: On PostgreSQL with a filter that has anchors (`sql_anchors`): the statement counting them, and
    #: per anchor the page driven from it.
    anchors: Anchors | None = None
    anchored: tuple[Select[Any], ...] = ()
    #: A page ordered by one param or tag (`sql_walks.ValueGroups`): the probe of the first value's
    #: group, and the walks of a large group's runs in the default order, from its start and after the
    #: page token (None on a first page), with the subqueries their rows come from.
    groups: ValueGroups | None = None
    group_walks: tuple[Select[Any] | None, ...] = (None, None)
    group_sources: tuple[Any, ...] = (None, None)
    #: A page ordered by status or user_id alone, with no filter (`sql_attribute_groups`): its values
    #: read one at a time (their walks are `group_walks`, with `group_sources`).
    attribute_groups: AttributeGroups | None = None
    #: Where each of `anchored`'s rows' `runs` columns come from (`runs`, or a subquery of it).
    anchored_sources: tuple[Any, ...] = ()
    #: A filter that is one param's or tag's `LIKE 'prefix%'` in the default order
    #: (`sql_prefix_heads`): the probe of the prefix's heads, and the page read from their ranges in
    #: the page's order, with the subquery its rows' `runs` columns come from.
    heads: PrefixHeads | None = None
    heads_walk: Select[Any] | None = None
    heads_source: Any = None
    #: The same prefix with too many heads: the key's rows walked in the page's order, the prefix
    #: tested inside their index (`sql_prefix_heads.prefix_walk_in_page_order`).
    prefix_walk: Select[Any] | None = None
    prefix_source: Any = None
    #: What a backend derives from these statements (PostgreSQL: the page query's compiled SQL),
    #: kept as long as the statements are: one dict per search and token shape.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def fetch(
        self,
        execute: Callable[[Select[Any]], Sequence[Any]],
        key_columns: slice,
        count: Callable[[Select[Any]], Sequence[Any]] | None = None,
    ) -> Sequence[Any]:
        """The page's rows (up to max_results + 1) through `execute`, which runs a SELECT with
        `params` (and may wrap it, as a CTE say, as long as it keeps its rows and their order; the sort
        keys are each row's `key_columns`); `count(statement)` runs the anchors' count as it is and
        returns its row (None: anchors are not used). A rare anchor drives the page; else a large
        value group's walk (a param/tag order), a prefix's heads' ranges, or the walk goes first, then a counted anchor; then the
        numbers-first SELECT: if it cannot fill the page, the page crosses into NaN/missing values,
        which follow from the non-numbers SELECT; else the full SELECT."""
        driven: Select[Any] | None = None
        may_walk = True
        if self.anchors is not None and count is not None:
            chosen, may_walk = self.anchors.choice(self.anchors.counted(count), self.max_results)
            driven = None if chosen is None else self.anchored[chosen]
        if self.groups is not None and count is not None and may_walk and driven is None:
            # A value shared by many runs would be read whole by the walk: its runs in the default
            # order instead (a group walk); when they cannot fill the page, the statements below.
            value, shared = count(self.groups.probe)
            if value is not None and shared > self.groups.cap and len(value) < VALUE_PREFIX:
                may_walk = False
                within = self.params.get("pos_0") == value and self.group_walks[1] is not None
                group_walk = self.group_walks[1] if within else self.group_walks[0]
                self.params.update(budget_parameters(self.walk_budget), **{GROUP_VALUE: value})
                assert group_walk is not None
                walked = execute(group_walk)
                if len(walked) > self.max_results:
                    return walked
        if self.attribute_groups is not None and count is not None:
            self.params.update(budget_parameters(self.walk_budget))
            read = self.attribute_groups.read(self.params, execute, count, self.max_results, self._run_id(key_columns))
            if read is not None:
                return read
        # Tried before a walk of the runs index wherever that may try (also ahead of a counted anchor):
        # both read only rows with the prefix, in the page's order.
        heads_walk = self.heads_walk if may_walk and count is not None else None
        if self.heads is not None and heads_walk is not None:
            # A prefix with few heads: their ranges in the page's order. Short, the prefix's other
            # characters or the budget may have cut it: the walk and the statements below answer.
            if self.heads.bind(self.params, count):  # type: ignore[arg-type]
                self.params.update(budget_parameters(self.walk_budget))
                walked = execute(heads_walk)
                if len(walked) > self.max_results:
                    return walked
            elif self.heads.too_many_at and self.prefix_walk is not None:
                # Too many heads: the key's rows in the page's order, the prefix tested in the index.
                self.params.update(budget_parameters(self.walk_budget))
                walked = execute(self.prefix_walk)
                if len(walked) > self.max_results:
                    return walked
        if self.walk is not None and may_walk:
            self.params.update(budget_parameters(self.walk_budget))
            walked = execute(self.walk)
            if len(walked) > self.max_results or self.walk_complete:
                return walked
        if driven is not None:
            return execute(driven)
        if self.numbers_first is None or self.non_numbers is None:
            return execute(self.stmt)
        numbers = execute(self.numbers_first)
        if len(numbers) > self.max_results:
            return numbers
        # Two statements see two snapshots: a run whose metric turned NaN in between would come twice.
        run_id = self._run_id(key_columns)
        seen = {row[run_id] for row in numbers}
        rest = [row for row in execute(self.non_numbers) if row[run_id] not in seen]
        return [*numbers, *rest][: self.max_results + 1]

    def _run_id(self, key_columns: slice) -> int:
        """The run id's column in a row whose sort keys are `key_columns`."""
        return (key_columns.start or 0) + next(i for i, k in enumerate(self.keys) if k.expr is runs_t.c.run_uuid)

    def source(self, stmt: Select[Any]) -> Any:
        """The table or subquery holding the `runs` columns of `stmt`'s rows."""
        if stmt is self.walk:
            return self.walk_source
        if stmt is self.heads_walk:
            return self.heads_source
        if stmt is self.prefix_walk:
            return self.prefix_source
        for group_walk, source in zip(self.group_walks, self.group_sources, strict=True):
            if stmt is group_walk:
                return source
        for driven, source in zip(self.anchored, self.anchored_sources, strict=True):
            if stmt is driven:
                return source
        return runs_t

    def paginate(self, rows: Sequence[Any], key_columns: slice) -> tuple[list[Any], str | None]:
        """The page's rows and the next page's token, made from the last row's sort key (the
        `key_columns` of each row)."""
        return next_keyset_page(rows, self.max_results, self.fingerprint, lambda row: list(row[key_columns]))
