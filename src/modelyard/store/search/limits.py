"""How big a search may be: filter length, comparisons, parenthesis depth, IN-list values, order_by keys.

Why here, in the store layer, and not in the routers: every caller of a search (the REST routers, the
UI, in-process clients on a SQL URI) parses filters through `SearchKind`, so one check covers them
all, before anything is compiled. Each limit protects something concrete:
- depth: the parser and SQLAlchemy's compiler recurse per parenthesis level (thousands -> RecursionError);
- comparisons: each is a semi-join; SQLite refuses an expression tree deeper than 1,000
  ("Expression tree is too large"), and the planner's work grows with their number;
- IN values: each is a bind parameter (PostgreSQL allows 65,535 per statement, SQLite 32,766);
- order_by keys: each is an outer join and a sort key (1,000 -> RecursionError in SQLAlchemy);
- filter length: bounds the lexer's work before any of the above is counted.
A search over a limit is refused with 400 INVALID_PARAMETER_VALUE naming the limit, its value and its
setting, the same on every backend.

The limits are process-wide: read from `MODELYARD_SEARCH_*` (via `Settings`) on first use, or set
by the service from its `Settings` (`configure`).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.exceptions import ModelyardException
from modelyard.settings import Settings


@dataclass(frozen=True)
class SearchLimits:
    """The values live in `Settings` (their defaults and their variables are documented there)."""

    max_filter_length: int
    max_terms: int
    max_depth: int
    max_in_values: int
    max_order_by: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchLimits:
        return cls(
            max_filter_length=settings.search_max_filter_length,
            max_terms=settings.search_max_terms,
            max_depth=settings.search_max_depth,
            max_in_values=settings.search_max_in_values,
            max_order_by=settings.search_max_order_by,
        )


_current: SearchLimits | None = None


def search_limits() -> SearchLimits:
    """The limits in force: set by `configure`, else read once from the environment."""
    global _current
    if _current is None:
        _current = SearchLimits.from_settings(Settings.from_env())
    return _current


def configure(limits: SearchLimits) -> None:
    global _current
    _current = limits


def over_limit(what: str, count: int, limit: int, variable: str) -> ModelyardException:
    """The error for a search over one of its limits: which limit, its value, how to change it."""
    return ModelyardException.invalid_parameter(
        f"Invalid search: {what} is {count}, over the limit of {limit} (MODELYARD_{variable}); "
        "split the search or simplify it."
    )
