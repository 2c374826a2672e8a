"""What each kind of search accepts: entity prefixes, keys, comparators, value types, orderable keys.

The parser (`filter_parser`) only knows the shape of the language; a `SearchKind` checks a parsed
filter against one search's rules and returns it normalised (attribute aliases resolved, values
coerced to the column's type). `RUNS` and `EXPERIMENTS` follow MLflow's documented rules, with
these additions: OR and parentheses; IN / NOT IN on every entity (MLflow: run_id only);
IS NULL / IS NOT NULL on nullable attributes too (MLflow: params and tags only). The registry's
searches build their own `SearchKind` the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from modelyard.store.search.filter_parser import (
    LIST_OPS,
    NULL_OPS,
    And,
    Comparison,
    FilterSyntaxError,
    Node,
    Or,
    Scalar,
    parse_filter,
)
from modelyard.store.search.limits import over_limit, search_limits
from modelyard.store.search.order_by import OrderBy, parse_order_by

ValueType = Literal["string", "number", "integer_id"]

STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", *LIST_OPS})
NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", *LIST_OPS})
ID_OPS = frozenset({"=", "!=", *LIST_OPS})

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Field:
    """A searchable value: its type, the comparators it takes, whether it can be missing (then
    IS NULL / IS NOT NULL apply) and whether results can be ordered by it."""

    type: ValueType
    ops: frozenset[str]
    nullable: bool = False
    orderable: bool = True

    @property
    def all_ops(self) -> frozenset[str]:
        return self.ops | frozenset(NULL_OPS) if self.nullable else self.ops


@dataclass(frozen=True)
class SearchKind:
    """The rules of one search. `attributes` describes the `attribute` entity key by key;
    `keyed` describes entities whose key is free-form (metric, param, tag): one Field per entity."""

    name: str
    entities: Mapping[str, str]
    default_entity: str | None
    attributes: Mapping[str, Field]
    keyed: Mapping[str, Field] = field(default_factory=dict)
    attribute_aliases: Mapping[str, str] = field(default_factory=dict)

    # ---- filters --------------------------------------------------------------------------------
    def parse_filter(self, text: str | None) -> Node | None:
        """Parse and check a filter string; None when it is empty."""
        node = parse_filter(text, self.entities, self.default_entity)
        return None if node is None else self._check(node, text or "")

    def _check(self, node: Node, text: str) -> Node:
        if isinstance(node, Comparison):
            return self._check_comparison(node, text)
        checked = tuple(self._check(child, text) for child in node.children)
        return And(checked) if isinstance(node, And) else Or(checked)

    def _check_comparison(self, comp: Comparison, text: str) -> Comparison:
        def fail(problem: str) -> FilterSyntaxError:
            return FilterSyntaxError(text, problem, comp.position)

        if comp.entity == "attribute":
            key = self.attribute_aliases.get(comp.key, comp.key)
            spec = self.attributes.get(key)
            if spec is None:
                valid = ", ".join(sorted(self.attributes))
                raise fail(f"invalid attribute key '{comp.key}'; valid keys are: {valid}")
            label = f"attribute '{key}'"
        else:
            key = comp.key
            found = self.keyed.get(comp.entity)
            if found is None:
                raise fail(f"entity type '{comp.entity}' cannot be used in a {self.name} filter")
            spec = found
            label = f"{comp.entity} '{key}'"
        if comp.op not in spec.all_ops:
            raise fail(
                f"comparator '{comp.op}' is not supported for {label}; "
                f"use one of: {', '.join(_op_order(spec.all_ops))}"
            )
        if comp.op in NULL_OPS:
            return replace(comp, key=key)
        if comp.op in LIST_OPS:
            assert isinstance(comp.value, tuple)
            value: Scalar | tuple[Scalar, ...] = tuple(_coerce(v, spec.type, label, fail) for v in comp.value)
        else:
            assert comp.value is not None and not isinstance(comp.value, tuple)
            value = _coerce(comp.value, spec.type, label, fail)
        return replace(comp, key=key, value=value)

    # ---- order_by -------------------------------------------------------------------------------
    def parse_order_by(self, clauses: Sequence[str] | None) -> list[OrderBy]:
        """Parse and check order_by clauses; a key may appear once."""
        check_order_by_count(clauses)
        out: list[OrderBy] = []
        seen: set[tuple[str, str]] = set()
        for clause in clauses or ():
            parsed = parse_order_by(clause, self.entities, self.default_entity)
            if parsed.entity == "attribute":
                key = self.attribute_aliases.get(parsed.key, parsed.key)
                spec = self.attributes.get(key)
                if spec is None or not spec.orderable:
                    valid = ", ".join(sorted(k for k, f in self.attributes.items() if f.orderable))
                    raise FilterSyntaxError(
                        clause,
                        f"invalid order_by attribute '{parsed.key}'; valid keys are: {valid}",
                        0,
                        "order_by clause",
                    )
            else:
                key = parsed.key
                keyed_spec = self.keyed.get(parsed.entity)
                if keyed_spec is None or not keyed_spec.orderable:
                    raise FilterSyntaxError(
                        clause,
                        f"cannot order {self.name} by entity type '{parsed.entity}'",
                        0,
                        "order_by clause",
                    )
            if (parsed.entity, key) in seen:
                raise FilterSyntaxError(
                    clause, f"order_by names {parsed.entity} '{key}' twice", 0, "order_by clause"
                )
            seen.add((parsed.entity, key))
            out.append(OrderBy(parsed.entity, key, parsed.ascending))
        return out


def check_order_by_count(clauses: Sequence[object] | None) -> None:
    """Refuse more order_by keys than the limit (each is a join and a sort key)."""
    limit = search_limits().max_order_by
    if clauses is not None and len(clauses) > limit:
        raise over_limit("the number of order_by keys", len(clauses), limit, "SEARCH_MAX_ORDER_BY")


def _coerce(value: Scalar, type_: ValueType, label: str, fail: Callable[[str], FilterSyntaxError]) -> Scalar:
    if type_ == "string":
        if not isinstance(value, str):
            raise fail(f"{label} takes a quoted string value, not {value!r}")
        return value
    if type_ == "number":
        if isinstance(value, str):
            raise fail(f"{label} takes a numeric value, not the string '{value}'")
        if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
            return float(value)  # beyond BIGINT: compare as a double rather than overflow a driver
        return value
    # integer_id: ids travel as strings on the wire; accept '12' and 12, nothing else.
    text = str(value)
    if isinstance(value, float) or not text.isdigit() or len(text) > 18:
        raise fail(f"{label} takes an integer id, not {value!r}")
    return int(text)


def _op_order(ops: frozenset[str]) -> list[str]:
    order = ["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
    return [op for op in order if op in ops]


# ---- the searches of the tracking API ------------------------------------------------------------
RUN_ENTITIES: Mapping[str, str] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

RUNS = SearchKind(
    name="runs",
    entities=RUN_ENTITIES,
    default_entity="attribute",
    attributes={
        "run_id": Field("string", STRING_OPS),
        "run_name": Field("string", STRING_OPS, nullable=True),
        "status": Field("string", STRING_OPS),
        "user_id": Field("string", STRING_OPS, nullable=True),
        "artifact_uri": Field("string", STRING_OPS, nullable=True),
        "lifecycle_stage": Field("string", STRING_OPS),
        "start_time": Field("number", NUMBER_OPS, nullable=True),
        "end_time": Field("number", NUMBER_OPS, nullable=True),
    },
    keyed={
        "metric": Field("number", NUMBER_OPS, nullable=True),
        "param": Field("string", STRING_OPS, nullable=True),
        "tag": Field("string", STRING_OPS, nullable=True),
    },
    # MLflow's UI column names.
    attribute_aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
    },
)

EXPERIMENTS = SearchKind(
    name="experiments",
    entities={
        "attribute": "attribute",
        "attributes": "attribute",
        "attr": "attribute",
        "tag": "tag",
        "tags": "tag",
    },
    default_entity="attribute",
    attributes={
        "name": Field("string", STRING_OPS),
        "experiment_id": Field("integer_id", ID_OPS),
        "creation_time": Field("number", NUMBER_OPS, nullable=True),
        "last_update_time": Field("number", NUMBER_OPS, nullable=True),
    },
    keyed={"tag": Field("string", STRING_OPS, nullable=True, orderable=False)},
)
