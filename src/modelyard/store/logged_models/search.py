"""Logged-model search: the shared filter language with this search's fields.

Attributes: name, model_id, model_type, status, source_run_id, creation_timestamp,
last_updated_timestamp (also `creation_time` / `last_updated_time`); `params.<key>`, `tags.<key>`.
Ordering follows MLflow's client: `{"field_name": ..., "ascending": ...}` objects on attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, or_

from modelyard.entities import LoggedModelStatus
from modelyard.exceptions import ModelyardException
from modelyard.store.search.filter_parser import And, Comparison, Node
from modelyard.store.search.kinds import NUMBER_OPS, STRING_OPS, Field, SearchKind, check_order_by_count
from modelyard.store.search.sql_ops import compare
from modelyard.store.sql.logged_model_schema import (
    SqlLoggedModel,
    SqlLoggedModelMetric,
    SqlLoggedModelParam,
    SqlLoggedModelTag,
)

LOGGED_MODELS = SearchKind(
    name="logged models",
    entities={
        "attribute": "attribute",
        "attributes": "attribute",
        "tag": "tag",
        "tags": "tag",
        "param": "param",
        "params": "param",
    },
    default_entity="attribute",
    attributes={
        "name": Field("string", STRING_OPS),
        "model_id": Field("string", STRING_OPS),
        "model_type": Field("string", STRING_OPS, nullable=True),
        "status": Field("string", STRING_OPS),
        "source_run_id": Field("string", STRING_OPS, nullable=True),
        "creation_timestamp": Field("number", NUMBER_OPS),
        "last_updated_timestamp": Field("number", NUMBER_OPS),
    },
    keyed={
        "tag": Field("string", STRING_OPS, nullable=True, orderable=False),
        "param": Field("string", STRING_OPS, nullable=True, orderable=False),
    },
    attribute_aliases={
        "creation_time": "creation_timestamp",
        "last_updated_time": "last_updated_timestamp",
        "run_id": "source_run_id",
    },
)

COLUMNS: Mapping[str, Any] = {
    "name": SqlLoggedModel.name,
    "model_id": SqlLoggedModel.model_id,
    "model_type": SqlLoggedModel.model_type,
    "status": SqlLoggedModel.status,
    "source_run_id": SqlLoggedModel.source_run_id,
    "creation_timestamp": SqlLoggedModel.creation_timestamp_ms,
    "last_updated_timestamp": SqlLoggedModel.last_updated_timestamp_ms,
}
_KEYED = {"tag": SqlLoggedModelTag, "param": SqlLoggedModelParam}


def condition(node: Node | None, dialect: str) -> ColumnElement[bool] | None:
    if node is None:
        return None
    if isinstance(node, Comparison):
        if node.entity in _KEYED:
            return _keyed(node, dialect)
        column = COLUMNS[node.key]
        if node.op == "IS NULL":
            return column.is_(None)  # type: ignore[no-any-return]
        if node.op == "IS NOT NULL":
            return column.is_not(None)  # type: ignore[no-any-return]
        value = node.value
        if node.key == "status" and node.op in ("=", "!=", "IN", "NOT IN"):
            value = (
                tuple(LoggedModelStatus.parse(v) for v in value)
                if isinstance(value, tuple)
                else LoggedModelStatus.parse(value)
            )
        return compare(column, node.op, value, dialect)
    parts = [p for p in (condition(child, dialect) for child in node.children) if p is not None]
    return and_(*parts) if isinstance(node, And) else or_(*parts)


def _keyed(comp: Comparison, dialect: str) -> ColumnElement[bool]:
    table = _KEYED[comp.entity]
    base = [table.model_id == SqlLoggedModel.model_id, table.key == comp.key]
    if comp.op == "IS NULL":
        return not_(exists().where(*base))
    if comp.op == "IS NOT NULL":
        return exists().where(*base)
    if comp.op in ("!=", "NOT IN"):
        positive = "=" if comp.op == "!=" else "IN"
        return and_(
            exists().where(*base),
            not_(exists().where(*base, compare(table.value, positive, comp.value, dialect))),
        )
    return exists().where(*base, compare(table.value, comp.op, comp.value, dialect))


def order_clauses(order_by: Sequence[Mapping[str, Any]] | None) -> list[Any]:
    """MLflow's default is newest first; model_id breaks ties so pages are stable."""
    check_order_by_count(order_by)
    clauses: list[Any] = []
    for item in order_by or ():
        field_name = item.get("field_name") if isinstance(item, Mapping) else None
        if not isinstance(field_name, str) or not field_name:
            raise ModelyardException.invalid_parameter(
                f"Invalid order_by entry {item!r}: field_name is required."
            )
        key = LOGGED_MODELS.attribute_aliases.get(field_name, field_name)
        key = key.split(".", 1)[1] if key.startswith(("attribute.", "attributes.")) else key
        column = COLUMNS.get(key)
        if column is None:
            raise ModelyardException.invalid_parameter(
                f"Invalid order_by field '{field_name}' for logged models; valid fields are: "
                f"{', '.join(sorted(COLUMNS))}."
            )
        ascending = item.get("ascending", True)
        clauses.append(column.asc() if ascending in (True, None, "true", "True") else column.desc())
    if not clauses:
        clauses.append(SqlLoggedModel.creation_timestamp_ms.desc())
    clauses.append(SqlLoggedModel.model_id.asc())
    return clauses


def datasets_condition(datasets: Sequence[Mapping[str, Any]] | None) -> ColumnElement[bool] | None:
    """MLflow's `datasets` clause: a model matches when it has a metric logged on one of the datasets
    (name, and digest as given: a clause without a digest matches metrics logged without one)."""
    if not datasets:
        return None
    alternatives = []
    for item in datasets:
        name = item.get("dataset_name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ModelyardException.invalid_parameter(
                "`dataset_name` in the `datasets` clause must be specified."
            )
        digest = item.get("dataset_digest") or None
        metric = SqlLoggedModelMetric
        alternatives.append(
            exists().where(
                metric.model_id == SqlLoggedModel.model_id,
                metric.dataset_name == name,
                metric.dataset_digest.is_(None) if digest is None else metric.dataset_digest == str(digest),
            )
        )
    return or_(*alternatives)
