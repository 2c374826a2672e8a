"""The registry's two searches, on the shared filter language (`modelyard.store.search`).

Registered models: `name` (=, !=, LIKE, ILIKE, IN) and `tags.<key>`; order by name,
creation_timestamp, last_updated_timestamp. Model versions: `name`, `run_id`, `source_path`,
`version_number` (numeric comparators), `current_stage`, `tags.<key>`; order by name,
version_number, creation_timestamp, last_updated_timestamp. OR and parentheses work as in run search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, or_

from modelyard.store.registry.validation import parse_version
from modelyard.store.search.filter_parser import And, Comparison, Node
from modelyard.store.search.kinds import NUMBER_OPS, STRING_OPS, Field, SearchKind
from modelyard.store.search.order_by import OrderBy
from modelyard.store.search.sql_ops import compare
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelTag,
)

_ENTITIES = {"attribute": "attribute", "attributes": "attribute", "tag": "tag", "tags": "tag"}
_TAG = Field("string", STRING_OPS, nullable=True, orderable=False)

REGISTERED_MODELS = SearchKind(
    name="registered models",
    entities=_ENTITIES,
    default_entity="attribute",
    attributes={
        "name": Field("string", STRING_OPS),
        "creation_timestamp": Field("number", NUMBER_OPS),
        "last_updated_timestamp": Field("number", NUMBER_OPS),
    },
    keyed={"tag": _TAG},
    attribute_aliases={"timestamp": "last_updated_timestamp"},
)

MODEL_VERSIONS = SearchKind(
    name="model versions",
    entities=_ENTITIES,
    default_entity="attribute",
    attributes={
        "name": Field("string", STRING_OPS),
        "version_number": Field("number", NUMBER_OPS),
        "run_id": Field("string", STRING_OPS, nullable=True),
        "source_path": Field("string", STRING_OPS, nullable=True),
        "current_stage": Field("string", STRING_OPS),
        "creation_timestamp": Field("number", NUMBER_OPS),
        "last_updated_timestamp": Field("number", NUMBER_OPS),
    },
    keyed={"tag": _TAG},
    attribute_aliases={
        "version": "version_number",
        "source": "source_path",
        "timestamp": "last_updated_timestamp",
    },
)

MODEL_COLUMNS: Mapping[str, Any] = {
    "name": SqlRegisteredModel.name,
    "creation_timestamp": SqlRegisteredModel.creation_time,
    "last_updated_timestamp": SqlRegisteredModel.last_updated_time,
}
_VERSION_COLUMNS: Mapping[str, Any] = {
    "name": SqlModelVersion.name,
    "version_number": SqlModelVersion.version,
    "run_id": SqlModelVersion.run_id,
    "source_path": SqlModelVersion.source,
    "current_stage": SqlModelVersion.current_stage,
    "creation_timestamp": SqlModelVersion.creation_time,
    "last_updated_timestamp": SqlModelVersion.last_updated_time,
}


def registered_model_condition(node: Node | None, dialect: str) -> ColumnElement[bool] | None:
    def tag_exists(comp: Comparison) -> ColumnElement[bool]:
        base = [SqlRegisteredModelTag.name == SqlRegisteredModel.name, SqlRegisteredModelTag.key == comp.key]
        return _tag_condition(comp, SqlRegisteredModelTag.value, base, dialect)

    return _compile(node, MODEL_COLUMNS, tag_exists, dialect)


def model_version_condition(node: Node | None, dialect: str) -> ColumnElement[bool] | None:
    def tag_exists(comp: Comparison) -> ColumnElement[bool]:
        base = [
            SqlModelVersionTag.name == SqlModelVersion.name,
            SqlModelVersionTag.version == SqlModelVersion.version,
            SqlModelVersionTag.key == comp.key,
        ]
        return _tag_condition(comp, SqlModelVersionTag.value, base, dialect)

    return _compile(node, _VERSION_COLUMNS, tag_exists, dialect)


def version_order_clauses(order: list[OrderBy]) -> list[Any]:
    """A model-version search's ORDER BY (a registered-model page orders in `model_search`)."""
    return [_VERSION_COLUMNS[o.key].asc() if o.ascending else _VERSION_COLUMNS[o.key].desc() for o in order]


def _tag_condition(comp: Comparison, value_column: Any, base: list[Any], dialect: str) -> ColumnElement[bool]:
    if comp.op == "IS NULL":
        return not_(exists().where(*base))
    if comp.op == "IS NOT NULL":
        return exists().where(*base)
    if comp.op in ("!=", "NOT IN"):
        # Unlike run search, a model without the tag matches `tags.k != 'v'`: MLflow's registry does
        # this, and its client relies on it (every search adds `tag.mlflow.prompt.is_prompt != 'true'`).
        positive = "=" if comp.op == "!=" else "IN"
        return not_(exists().where(*base, compare(value_column, positive, comp.value, dialect)))
    return exists().where(*base, compare(value_column, comp.op, comp.value, dialect))


def _compile(
    node: Node | None, columns: Mapping[str, Any], tag_exists: Any, dialect: str
) -> ColumnElement[bool] | None:
    if node is None:
        return None
    if isinstance(node, Comparison):
        if node.entity == "tag":
            return tag_exists(node)  # type: ignore[no-any-return]
        column = columns[node.key]
        value = node.value
        if node.key == "version_number" and node.op not in ("IS NULL", "IS NOT NULL"):
            value = tuple(parse_version(v) for v in value) if isinstance(value, tuple) else value
        if node.op == "IS NULL":
            return column.is_(None)  # type: ignore[no-any-return]
        if node.op == "IS NOT NULL":
            return column.is_not(None)  # type: ignore[no-any-return]
        return compare(column, node.op, value, dialect)
    parts = [_compile(child, columns, tag_exists, dialect) for child in node.children]
    clauses = [p for p in parts if p is not None]
    return and_(*clauses) if isinstance(node, And) else or_(*clauses)


__all__ = [
    "MODEL_VERSIONS",
    "REGISTERED_MODELS",
    "model_version_condition",
    "version_order_clauses",
    "registered_model_condition",
]
