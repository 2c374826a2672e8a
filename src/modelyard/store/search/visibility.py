"""Which resources a search may return: the caller's readable set, applied in SQL.

With auth on, a search answers only what its caller may read (`modelyard.auth` computes the set from
the caller's grants). The filter is part of the one statement that selects a page, so results, totals
and page tokens are all computed over the visible rows: a page token never skips or reveals a hidden
row. `None` (auth off, or an admin) adds nothing to the query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client imports `Visibility` (store ABCs) and must not pay for SQLAlchemy
    from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class Visibility:
    """Everything, everything but `excluded`, or `only` these ids (experiment ids or model names)."""

    everything: bool
    only: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()

    def allows(self, resource_id: str) -> bool:
        if self.everything:
            return True
        if self.only is not None:
            return resource_id in self.only
        return resource_id not in self.excluded

    @property
    def unrestricted(self) -> bool:
        return self.everything or (self.only is None and not self.excluded)


EVERYTHING = Visibility(everything=True)


def condition(
    column: Any, visible: Visibility | None, convert: Callable[[str], Any] = str
) -> ColumnElement[bool] | None:
    """The WHERE condition limiting `column` to the visible ids (`convert` maps an id to the column's
    type, e.g. `int` for experiment ids; ids that do not convert match nothing); None: no limit."""
    if visible is None or visible.unrestricted:
        return None
    from sqlalchemy import false, true

    if visible.only is not None:
        ids = _converted(visible.only, convert)
        return column.in_(sorted(ids)) if ids else false()
    ids = _converted(visible.excluded, convert)
    return column.not_in(sorted(ids)) if ids else true()


def _converted(ids: frozenset[str], convert: Callable[[str], Any]) -> set[Any]:
    out = set()
    for value in ids:
        try:
            out.add(convert(value))
        except (TypeError, ValueError):
            continue
    return out
