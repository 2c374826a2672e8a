"""The order of a run search: its sort keys and the keyset tests that start a page after a token.

A run search orders by the requested keys, then start_time DESC and run_uuid ASC (MLflow's tie-breaks),
so the order is total and a page token (the last row's sort key) says exactly where the next page
starts. A metric/param/tag key is an outer-joined row of its table; strings order bytewise (COLLATE "C"
on PostgreSQL, whose default collation may be locale-aware; SQLite is bytewise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, case, false, or_, true

from modelyard.store.search.order_by import OrderBy
from modelyard.store.sql.schema import ATTRIBUTE_ORDER_INDEXES
from modelyard.store.tracking.sql_predicates import (
    RUN_ATTRIBUTE_COLUMNS,
    RUN_KEYED_TABLES,
    in_experiments,
    runs_t,
)


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

    def reached(self, value: Any) -> ColumnElement[bool]:
        """Rows whose key is `value` or sorts after it and is not NULL: where an index scan in this
        order starts."""
        term = self._collated(self.expr)
        return term >= value if self.ascending else term <= value

    def differs(self, value: Any) -> ColumnElement[bool]:
        return self._collated(self.expr) != value

    def same(self, value: Any) -> ColumnElement[bool]:
        return self.expr.is_(None) if value is None else self._collated(self.expr) == value

    def _collated(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return expr.collate(self.collation) if self.collation else expr


def run_sort_keys(
    orders: Sequence[OrderBy], dialect: str, experiment_ids: Sequence[int] = ()
) -> tuple[Any, tuple[SortKey, ...], Any]:
    """The FROM clause (runs, outer-joined to each ordered metric/param/tag) and the sort keys:
    the requested ones, then start_time DESC and run_uuid ASC unless requested, so that the order
    is total (keyset paging needs that) and ties break as in MLflow. Third: the joined
    latest_metrics alias when the first order key is a metric (else None). On PostgreSQL a joined
    row is also asked to be of `experiment_ids` (always true of a run's row there), so that a page
    ordered by a metric can be read from (experiment_id, key, value) in order."""
    source: Any = runs_t
    keys: list[SortKey] = []
    ordered: set[tuple[str, str]] = set()
    first_metric = None
    for i, order in enumerate(orders):
        ordered.add((order.entity, order.key))
        if order.entity == "attribute":
            keys.append(column_key(RUN_ATTRIBUTE_COLUMNS[order.key], order.ascending, dialect))
            continue
        table = RUN_KEYED_TABLES[order.entity].alias(f"order_{i}")
        scope = [in_experiments(table, experiment_ids)] if dialect == "postgresql" and experiment_ids else []
        source = source.outerjoin(
            table, and_(table.c.run_uuid == runs_t.c.run_uuid, table.c.key == order.key, *scope)
        )
        if order.entity == "metric":
            if i == 0:
                first_metric = table
            # Numbers first, then NaN (stored as 0), then runs without the metric, in either direction.
            rank = case((table.c.run_uuid.is_(None), 2), (table.c.is_nan == true(), 1), else_=0)
            keys.append(SortKey(rank, True, False, "int"))
            keys.append(SortKey(table.c.value, order.ascending, True, "float?"))
        else:
            keys.append(column_key(table.c.value, order.ascending, dialect, nullable=True))
    if ("attribute", "start_time") not in ordered:
        keys.append(column_key(runs_t.c.start_time, False, dialect))
    if ("attribute", "run_id") not in ordered:
        keys.append(column_key(runs_t.c.run_uuid, True, dialect))
    return source, tuple(keys), first_metric


def column_key(column: Any, ascending: bool, dialect: str, nullable: bool | None = None) -> SortKey:
    """`nullable` overrides the column's own flag (an outer-joined column can be NULL). Strings
    order bytewise: COLLATE "C" on PostgreSQL, whose default collation may be locale-aware."""
    if nullable is None:
        nullable = bool(getattr(column, "nullable", True))
    string = is_string(column)
    kind = "str" if string else "int"
    collation = "C" if string and dialect == "postgresql" else None
    return SortKey(column, ascending, nullable, kind + "?" if nullable else kind, collation)


def in_attribute_index(key: SortKey, dialect: str) -> bool:
    """`key` is a run attribute with an index in its order (PostgreSQL: `schema.ATTRIBUTE_ORDER_INDEXES`,
    the attribute then start_time DESC NULLS LAST and run_uuid): its non-NULL values are one range of
    the index read forward (ascending) or backwards (descending), its NULLs (last in either direction)
    another range, already in the tie-breaks' order."""
    column = key.expr
    indexed = getattr(column, "table", None) is runs_t and column.name in ATTRIBUTE_ORDER_INDEXES
    return dialect == "postgresql" and indexed


def after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after the one whose sort key is `values`: (k0 later) OR (k0 same AND k1 later) OR ..."""
    alternatives: list[ColumnElement[bool]] = []
    same: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        later = key.later(value)
        if later is not None:
            alternatives.append(and_(*same, later))
        same.append(key.same(value))
    return or_(*alternatives) if alternatives else false()


def page_parameter(name: str, type_: Any = None) -> BindParameter[Any]:
    """A bind parameter for where a page starts (`RunSearch.params` holds its value). Not `required`:
    compiling with `render_postcompile` (to expand IN lists) needs every parameter to have a value."""
    return bindparam(name, None, type_=type_, required=False)


def is_string(column: Any) -> bool:
    try:
        return column.type.python_type is str
    except NotImplementedError:
        return False
