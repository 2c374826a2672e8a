"""A param's or tag's `LIKE 'prefix%'` alone, in the default order, when few values have the prefix
(PostgreSQL).

The values with a prefix are one range of the (experiment_id, key, value prefix, start_time DESC NULLS
LAST, run_uuid) index, in value order: read in the page's order it would be sorted whole. But each
value (its first VALUE_PREFIX characters: its head) is a range of that index in the page's order. When
the prefix has HEAD_SLOTS heads or fewer (`tags.team LIKE 'team-3%'`, a param with a few named values),
the page reads those ranges merged (Merge Append), as a value's `=` or IN does
(`sql_anchors.in_page_order`), and stops with the page: its cost follows the page, not the prefix's runs.

Which heads there are is data: a probe reads them before the page (a skip scan, one index descent per
head, HEAD_SLOTS + 1 at most, ~0.3 ms), and the page's statement has HEAD_SLOTS ranges whose heads are
bind parameters (those not needed are NULL: empty ranges). The probe runs for every page, as the heads
decide what is on it; only "too many heads" is remembered (FACTS_SECONDS, like an anchor count: it
decides how the page is read, never what is on it). Past HEAD_SLOTS heads (a prefix of ids, each value
its own run's) the page walks the key's rows in its order instead (`prefix_walk_in_page_order`: an
index led by (experiment, key, start time), the value's prefix last, tested inside the index; either
is tried before the runs walk, also ahead of a counted anchor): at 1M
runs the page's ids cost 484 buffers and 0.6 ms there, against 5,050 and 8.1 ms for the runs walk
probing each run's param.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Select, String, func, literal, literal_column, select

from modelyard.store.search.filter_parser import Comparison
from modelyard.store.search.sql_ops import LIKE_ESCAPE
from modelyard.store.sql.experiment_ids import VALUE_PREFIX
from modelyard.store.tracking.sql_anchors import FACTS_SECONDS, read_in_page_order
from modelyard.store.tracking.sql_predicates import (
    RUN_KEYED_TABLES,
    anchor_rows,
    in_experiments,
    like_literal,
    like_prefix,
)
from modelyard.store.tracking.sql_sort_keys import SortKey, page_parameter
from modelyard.store.tracking.sql_walks import BUDGET, MAX_RANGES, Walking, using_operator

#: At most this many heads are read as ranges of their own (one experiment: MAX_RANGES).
HEAD_SLOTS = MAX_RANGES
#: The bind parameter of the i-th head's range.
HEAD = "prefix_head_{}"


@dataclass(frozen=True)
class PrefixHeads:
    """`probe` selects one row: the array of the prefix's heads, HEAD_SLOTS + 1 at most (NULL: none)."""

    probe: Select[Any]
    #: When the probe last found more than HEAD_SLOTS heads (monotonic time), if it did.
    too_many_at: list[float] = field(default_factory=list, compare=False, repr=False)

    def bind(self, params: dict[str, Any], count: Callable[[Select[Any]], Sequence[Any]]) -> bool:
        """Probe the heads (through `count(statement)`, which returns the statement's one row) and put
        them in `params`; False when there are too many (recently: not probed again) or none."""
        if self.too_many_at and time.monotonic() - self.too_many_at[0] < FACTS_SECONDS:
            return False
        heads = count(self.probe)[0] or []
        if len(heads) > HEAD_SLOTS:
            self.too_many_at[:] = [time.monotonic()]
            return False
        self.too_many_at.clear()
        params.update({HEAD.format(i): heads[i] if i < len(heads) else None for i in range(HEAD_SLOTS)})
        return bool(heads)


def prefix_term(walking: Walking) -> Comparison | None:
    """The filter when it is one param's or tag's `LIKE 'prefix%'` (a literal prefix shorter than the
    index's, then one `%`) over one experiment, in the default order; else None."""
    node = walking.node
    if walking.order_key is not None or len(walking.experiment_ids) != 1 or not isinstance(node, Comparison):
        return None
    if node.op != "LIKE" or node.entity not in ("param", "tag"):
        return None
    prefix, rest = like_prefix(str(node.value))
    # A head with the prefix passes the whole pattern: the ranges need no other test.
    return node if prefix and rest == "%" and len(prefix) < VALUE_PREFIX else None


def _head(table: Any) -> Any:
    return func.left(table.c.value, literal_column(str(VALUE_PREFIX)))


def prefix_heads(term: Comparison, walking: Walking) -> PrefixHeads:
    """The probe of `term`'s heads in `walking`'s experiment: a recursive skip scan of its index range
    in value order (each step the next head after the last one found)."""
    table = RUN_KEYED_TABLES[term.entity]
    head = _head(table)
    in_range = anchor_rows(term, walking.experiment_ids, head)  # the heads' range: `head LIKE 'prefix%'`
    first = in_range.order_by(using_operator(head, "~<~")).limit(1).scalar_subquery()
    found = select(first.label("head"), literal(1, Integer).label("n")).cte("prefix_heads", recursive=True)
    following = (
        in_range.where(head.op("~>~", is_comparison=True)(found.c.head))
        .order_by(using_operator(head, "~<~"))
        .limit(1)
        .scalar_subquery()
    )
    found = found.union_all(
        select(following, found.c.n + 1).where(found.c.head.is_not(None), found.c.n <= HEAD_SLOTS)
    )
    probe = select(func.array_agg(found.c.head)).where(found.c.head.is_not(None))
    return PrefixHeads(probe)


def heads_in_page_order(
    term: Comparison,
    walking: Walking,
    keys: Sequence[SortKey],
    token: Sequence[Any] | None,
    max_results: int,
) -> tuple[Select[Any], Any]:
    """The page read from the ranges of the heads bound to HEAD (`PrefixHeads.bind`), in the default
    order, after `token`, within the walk's budget; with the subquery of `runs` its rows come from."""
    table = RUN_KEYED_TABLES[term.entity]
    head = _head(table)
    # Each range tests its head only (`prefix_term`): one condition the planner estimates from the
    # index's statistics. With the pattern's test too it multiplied two that say the same, estimated a
    # row per range, and sorted the ranges whole instead of merging them.
    ranges = [
        select(table.c.run_uuid, table.c.start_time).where(
            in_experiments(table, walking.experiment_ids),
            table.c.key == term.key,
            head == page_parameter(HEAD.format(i), String),
        )
        for i in range(HEAD_SLOTS)
    ]
    budget = page_parameter(BUDGET, Integer)
    return read_in_page_order(walking, table, ranges, keys, token, None, max_results, budget)


def prefix_walk_in_page_order(
    term: Comparison,
    walking: Walking,
    keys: Sequence[SortKey],
    token: Sequence[Any] | None,
    max_results: int,
) -> tuple[Select[Any], Any]:
    """The page for a prefix with too many heads: the key's rows read in the page's order from the
    (experiment_id, key, start_time DESC NULLS LAST, run_uuid, substr(value, 1, VALUE_PREFIX)) index
    (migration 0016), the prefix tested on each entry inside the index (`text_pattern_ops` bounds on
    its last column), so rows without it cost no table read and the page stops when full, within the
    walk's budget of rows with the prefix; with the subquery of `runs` its rows come from."""
    table = RUN_KEYED_TABLES[term.entity]
    prefix = like_prefix(str(term.value))[0]  # shorter than VALUE_PREFIX (`prefix_term`)
    walk_value = func.substr(table.c.value, 1, literal_column(str(VALUE_PREFIX)))  # the index's spelling
    rows = select(table.c.run_uuid, table.c.start_time).where(
        in_experiments(table, walking.experiment_ids),
        table.c.key == term.key,
        walk_value.like(like_literal(prefix) + "%", escape=LIKE_ESCAPE),
    )
    budget = page_parameter(BUDGET, Integer)
    return read_in_page_order(walking, table, [rows], keys, token, None, max_results, budget)
