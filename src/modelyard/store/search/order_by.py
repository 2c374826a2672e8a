"""order_by clauses: `<identifier> [ASC|DESC]`, e.g. `metrics.rmse`, ``params.`a b` DESC``.

Identifiers follow the filter language (same entity prefixes, same quoting), so the caller passes
the same entity map it passes to `parse_filter`; which keys may be ordered on is checked per search
kind (`modelyard.store.search.kinds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelyard.store.search.filter_parser import FilterSyntaxError, Parser


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool = True


def parse_order_by(
    clause: str,
    entities: Mapping[str, str],
    default_entity: str | None = None,
) -> OrderBy:
    if not isinstance(clause, str) or not clause.strip():
        raise FilterSyntaxError(str(clause), "empty order_by clause", 0, "order_by clause")
    parser = Parser(clause, entities, default_entity, "order_by clause")
    ident = parser.parse_identifier()
    ascending = True
    if parser.is_keyword("ASC") or parser.is_keyword("DESC"):
        ascending = parser.advance().text.upper() == "ASC"
    if parser.tok.kind != "EOF":
        raise parser.fail(f"expected ASC, DESC or end of input, found {parser.describe(parser.tok)}")
    return OrderBy(ident.entity, ident.key, ascending)


def parse_order_by_list(
    clauses: list[str] | tuple[str, ...] | None,
    entities: Mapping[str, str],
    default_entity: str | None = None,
) -> list[OrderBy]:
    return [parse_order_by(c, entities, default_entity) for c in clauses or ()]
