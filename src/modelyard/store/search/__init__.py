"""The search language shared by every search endpoint: filter parser, order_by, page tokens, and
the per-search rules (`kinds`); `sql_ops` turns comparators into SQL. The SQL compilers for runs
and experiments live in `modelyard.store.tracking.sql_search`."""

from modelyard.store.search.filter_parser import (
    And,
    Comparison,
    FilterSyntaxError,
    Node,
    Or,
    iter_comparisons,
    parse_filter,
)
from modelyard.store.search.kinds import EXPERIMENTS, RUNS, Field, SearchKind
from modelyard.store.search.order_by import OrderBy, parse_order_by
from modelyard.store.search.paging import (
    decode_page_token,
    encode_page_token,
    next_page,
    query_fingerprint,
)

__all__ = [
    "EXPERIMENTS",
    "RUNS",
    "And",
    "Comparison",
    "Field",
    "FilterSyntaxError",
    "Node",
    "Or",
    "OrderBy",
    "SearchKind",
    "decode_page_token",
    "encode_page_token",
    "iter_comparisons",
    "next_page",
    "parse_filter",
    "parse_order_by",
    "query_fingerprint",
]
