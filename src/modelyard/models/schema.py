"""Column and tensor specs, in MLflow's JSON column-spec format.

MLmodel stores `signature.inputs`/`outputs`/`params` as JSON *strings* of these dicts, so `to_dict()` /
`from_dict()` here must match MLflow's keys exactly (`type`, `name`, `required`, `tensor-spec`, `items`,
`properties`, `values`, `default`, `shape`): models move between the two systems both ways.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.protocol import text_parsing


class DataType(str, Enum):
    """MLflow's scalar column types; the value is the name written to JSON."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"

    @property
    def numpy_dtype(self) -> Any:
        import numpy as np

        return {
            "boolean": np.dtype("bool"),
            "integer": np.dtype("int32"),
            "long": np.dtype("int64"),
            "float": np.dtype("float32"),
            "double": np.dtype("float64"),
            "string": np.dtype("object"),
            "binary": np.dtype("object"),
            "datetime": np.dtype("datetime64[ns]"),
        }[self.value]


@dataclass(frozen=True)
class Array:
    """A list-valued column; `items` is a scalar type or another nested type."""

    items: ValueType

    def to_dict(self) -> dict[str, Any]:
        return {"type": "array", "items": type_to_dict(self.items)}


@dataclass(frozen=True)
class Property:
    name: str
    dtype: ValueType
    required: bool = True


@dataclass(frozen=True)
class Object:
    """A dict-valued column with known keys."""

    properties: tuple[Property, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                p.name: {**type_to_dict(p.dtype), "required": p.required} for p in self.properties
            },
        }


@dataclass(frozen=True)
class Map:
    """A dict-valued column with string keys and values of one type."""

    values: ValueType

    def to_dict(self) -> dict[str, Any]:
        return {"type": "map", "values": type_to_dict(self.values)}


ValueType = DataType | Array | Object | Map


def type_to_dict(dtype: ValueType) -> dict[str, Any]:
    if isinstance(dtype, DataType):
        return {"type": dtype.value}
    return dtype.to_dict()


def type_from_dict(data: dict[str, Any]) -> ValueType:
    kind = data.get("type")
    if kind == "array":
        return Array(type_from_dict(data["items"]))
    if kind == "object":
        props = tuple(
            Property(name, type_from_dict(spec), bool(spec.get("required", True)))
            for name, spec in data.get("properties", {}).items()
        )
        return Object(props)
    if kind == "map":
        return Map(type_from_dict(data["values"]))
    try:
        return DataType(kind)
    except ValueError:
        raise ModelyardException.invalid_parameter(f"Unsupported data type in schema: {kind!r}") from None


@dataclass(frozen=True)
class ColSpec:
    """One column of a column-based schema; unnamed specs describe a list or a single-column output."""

    type: ValueType
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = type_to_dict(self.type)
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass(frozen=True)
class TensorSpec:
    """An n-dimensional array with a numpy dtype; -1 in `shape` is a free dimension (the batch axis)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        out["type"] = "tensor"
        out["tensor-spec"] = {"dtype": self.dtype, "shape": list(self.shape)}
        return out


Spec = ColSpec | TensorSpec


def spec_from_dict(data: dict[str, Any]) -> Spec:
    if data.get("type") == "tensor":
        tensor = data.get("tensor-spec") or {}
        return TensorSpec(
            str(tensor.get("dtype")), tuple(int(d) for d in tensor.get("shape") or ()), data.get("name")
        )
    return ColSpec(type_from_dict(data), data.get("name"), bool(data.get("required", True)))


@dataclass(frozen=True)
class Schema:
    """An ordered list of all-ColSpec or all-TensorSpec inputs (or outputs); never mixed, as in MLflow."""

    specs: tuple[Spec, ...]

    def __post_init__(self) -> None:
        kinds = {type(s) for s in self.specs}
        if len(kinds) > 1:
            raise ModelyardException.invalid_parameter("A schema cannot mix column specs and tensor specs")
        names = [s.name for s in self.specs]
        if any(n is not None for n in names) and any(n is None for n in names):
            raise ModelyardException.invalid_parameter(
                "Either all or none of the schema's entries must be named"
            )

    @classmethod
    def of(cls, *specs: Spec) -> Schema:
        return cls(tuple(specs))

    @property
    def is_tensor_spec(self) -> bool:
        return bool(self.specs) and isinstance(self.specs[0], TensorSpec)

    @property
    def has_names(self) -> bool:
        return bool(self.specs) and self.specs[0].name is not None

    def input_names(self) -> list[str]:
        return [s.name for s in self.specs if s.name is not None]

    def required_input_names(self) -> list[str]:
        return [s.name for s in self.specs if s.name is not None and getattr(s, "required", True)]

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.specs]

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> Schema:
        return cls(tuple(spec_from_dict(item) for item in items))

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.from_list(text_parsing.loads_json(text))


@dataclass(frozen=True)
class ParamSpec:
    """An inference parameter: a scalar (shape None) or a 1-D list (shape (-1,)) with a default."""

    name: str
    type: DataType
    default: Any = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": _jsonable(self.default),
            "shape": list(self.shape) if self.shape is not None else None,
            "type": self.type.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamSpec:
        shape = data.get("shape")
        return cls(
            name=str(data["name"]),
            type=DataType(data["type"]),
            default=data.get("default"),
            shape=tuple(shape) if shape is not None else None,
        )


@dataclass(frozen=True)
class ParamSchema:
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps([p.to_dict() for p in self.params])

    @classmethod
    def from_json(cls, text: str) -> ParamSchema:
        return cls(tuple(ParamSpec.from_dict(p) for p in text_parsing.loads_json(text)))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
