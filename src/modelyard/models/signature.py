"""Model signatures and how they are inferred from example data.

Inference mirrors what MLflow writes for the same data (a DataFrame -> named column specs, a numpy array
-> one tensor spec with a free batch axis, a dict -> named columns, a list -> one unnamed column), so a
signature inferred by either library reads the same in the other.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.schema import (
    Array,
    ColSpec,
    DataType,
    Map,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
    TensorSpec,
    ValueType,
)


@dataclass(frozen=True)
class ModelSignature:
    inputs: Schema | None = None
    outputs: Schema | None = None
    params: ParamSchema | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The MLmodel `signature` block: each part a JSON string (MLflow's on-disk shape)."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        def part(key: str) -> Any:
            value = data.get(key)
            return value if value else None

        inputs, outputs, params = part("inputs"), part("outputs"), part("params")
        return cls(
            inputs=Schema.from_json(inputs) if inputs else None,
            outputs=Schema.from_json(outputs) if outputs else None,
            params=ParamSchema.from_json(params) if params else None,
        )


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: dict[str, Any] | None = None
) -> ModelSignature:
    return ModelSignature(
        inputs=infer_schema(model_input) if model_input is not None else None,
        outputs=infer_schema(model_output) if model_output is not None else None,
        params=infer_param_schema(params) if params else None,
    )


def infer_schema(data: Any) -> Schema:
    pd = _pandas()
    np = _numpy()
    if pd is not None and isinstance(data, pd.DataFrame):
        # A column with missing values in the example is optional, as MLflow infers it.
        return Schema(
            tuple(
                ColSpec(_infer_series_type(data[c]), str(c), not bool(data[c].isna().any()))
                for c in data.columns
            )
        )
    if pd is not None and isinstance(data, pd.Series):
        name = None if data.name is None else str(data.name)
        return Schema.of(ColSpec(_infer_series_type(data), name))
    if np is not None and isinstance(data, np.ndarray):
        return Schema.of(_tensor_spec(data, None))
    if isinstance(data, dict):
        return _infer_dict_schema(data)
    if isinstance(data, (list, tuple)):
        return _infer_list_schema(list(data))
    return Schema.of(ColSpec(_infer_value_type(data)))


def infer_param_schema(params: dict[str, Any]) -> ParamSchema:
    specs = []
    for name, value in params.items():
        if not isinstance(name, str):
            raise ModelyardException.invalid_parameter(f"Param names must be strings, got {name!r}")
        if _is_listlike(value):
            items = list(value)
            item_type = _infer_value_type(items[0]) if items else DataType.string
            if not isinstance(item_type, DataType):
                raise ModelyardException.invalid_parameter(
                    f"Param {name!r} must be a scalar or a list of scalars"
                )
            specs.append(ParamSpec(name, item_type, items, (-1,)))
        else:
            value_type = _infer_value_type(value)
            if not isinstance(value_type, DataType):
                raise ModelyardException.invalid_parameter(
                    f"Param {name!r} must be a scalar or a list of scalars"
                )
            specs.append(ParamSpec(name, value_type, value, None))
    return ParamSchema(tuple(specs))


def _infer_dict_schema(data: dict[str, Any]) -> Schema:
    np = _numpy()
    if data and np is not None and all(isinstance(v, np.ndarray) for v in data.values()):
        return Schema(tuple(_tensor_spec(v, str(k)) for k, v in data.items()))
    return Schema(tuple(ColSpec(_infer_value_type(v), str(k)) for k, v in data.items()))


def _infer_list_schema(items: list[Any]) -> Schema:
    if not items:
        raise ModelyardException.invalid_parameter("Cannot infer a schema from an empty list")
    if all(isinstance(i, dict) for i in items):
        names: list[str] = []
        for item in items:
            names.extend(str(k) for k in item if str(k) not in names)
        specs = []
        for name in names:
            present = [i[name] for i in items if name in i and i[name] is not None]
            dtype = _merge_types([_infer_value_type(v) for v in present]) if present else DataType.string
            specs.append(ColSpec(dtype, name, len(present) == len(items)))
        return Schema(tuple(specs))
    return Schema.of(ColSpec(_merge_types([_infer_value_type(i) for i in items])))


def _tensor_spec(array: Any, name: str | None) -> TensorSpec:
    if array.dtype.kind == "O":
        raise ModelyardException.invalid_parameter("Cannot infer a tensor spec from an object array")
    dtype = "str" if array.dtype.kind == "U" else "bytes" if array.dtype.kind == "S" else str(array.dtype)
    return TensorSpec(dtype, (-1, *array.shape[1:]), name)


def _infer_series_type(series: Any) -> ValueType:
    pd = _pandas()
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return DataType.boolean
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return DataType.datetime
    if pd.api.types.is_string_dtype(dtype) and dtype.kind != "O":
        return DataType.string
    if getattr(dtype, "kind", "O") == "O" or pd.api.types.is_string_dtype(dtype):
        values = [v for v in series.tolist() if v is not None and not _is_nan(v)]
        if not values:
            return DataType.string
        return _merge_types([_infer_value_type(v) for v in values])
    return _numpy_kind_type(_numpy().dtype(getattr(dtype, "numpy_dtype", dtype)))


def _numpy_kind_type(dtype: Any) -> DataType:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return DataType.boolean
    if kind == "i":
        return DataType.long if size > 4 else DataType.integer
    if kind == "u":
        if size >= 8:
            raise ModelyardException.invalid_parameter(
                "uint64 has no lossless MLflow type; cast to int64 or float64 first"
            )
        return DataType.long if size == 4 else DataType.integer
    if kind == "f":
        return DataType.double if size > 4 else DataType.float
    if kind == "U":
        return DataType.string
    if kind == "S":
        return DataType.binary
    if kind == "M":
        return DataType.datetime
    raise ModelyardException.invalid_parameter(f"Unsupported numpy dtype for a schema: {dtype}")


def _infer_value_type(value: Any) -> ValueType:
    np = _numpy()
    if isinstance(value, bool):
        return DataType.boolean
    if isinstance(value, int):
        return DataType.long
    if isinstance(value, float):
        return DataType.double
    if isinstance(value, str):
        return DataType.string
    if isinstance(value, (bytes, bytearray)):
        return DataType.binary
    if isinstance(value, (_dt.datetime, _dt.date)):
        return DataType.datetime
    if np is not None and isinstance(value, np.generic):
        return _numpy_kind_type(value.dtype)
    if isinstance(value, dict):
        if not value:
            return Map(DataType.string)
        return Object(tuple(Property(str(k), _infer_value_type(v)) for k, v in value.items()))
    if _is_listlike(value):
        items = [i for i in value if i is not None]
        if not items:
            raise ModelyardException.invalid_parameter("Cannot infer a type from an empty list")
        return Array(_merge_types([_infer_value_type(i) for i in items]))
    raise ModelyardException.invalid_parameter(
        f"Cannot infer a schema type for value of type {type(value).__name__}"
    )


def _merge_types(types: list[ValueType]) -> ValueType:
    """One type for a column of values: ints widen to doubles when mixed with floats, like pandas does."""
    unique = list(dict.fromkeys(types))
    if len(unique) == 1:
        return unique[0]
    numeric = {DataType.integer, DataType.long, DataType.float, DataType.double}
    if all(t in numeric for t in unique):
        return DataType.double
    raise ModelyardException.invalid_parameter(
        f"Cannot infer one type for values of mixed types: {sorted(str(type_name(t)) for t in unique)}"
    )


def type_name(dtype: ValueType) -> str:
    return dtype.value if isinstance(dtype, DataType) else str(dtype.to_dict())


def _is_listlike(value: Any) -> bool:
    np = _numpy()
    return isinstance(value, (list, tuple)) or (np is not None and isinstance(value, np.ndarray))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pandas is optional for the light client
        return None
    return pandas


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy
