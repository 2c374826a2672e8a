"""Checking and converting predict-time input against a model's signature.

The rule is MLflow's: conversions that cannot lose information happen silently (int32 -> int64,
int -> double, float32 -> float64); anything else is an INVALID_PARAMETER_VALUE error that names the
column, raised before the model sees the data, so a bad request is a 400 and never a 500 from deep
inside a library.
"""

from __future__ import annotations

import datetime as _dt
import logging
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
    Schema,
    TensorSpec,
    ValueType,
)
from modelyard.models.signature import type_name

_log = logging.getLogger(__name__)


def _bad(message: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(message)


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Return `data` converted to what the schema promises the model, or raise naming the culprit."""
    if not schema.specs:
        return data
    if schema.is_tensor_spec:
        return _enforce_tensors(data, schema)
    if schema.has_names:
        return _enforce_named_columns(data, schema)
    return _enforce_unnamed_columns(data, schema)


# --- column-based schemas --------------------------------------------------------------------------


def _enforce_named_columns(data: Any, schema: Schema) -> Any:

    frame = _to_frame(data, schema)
    names = [str(c) for c in frame.columns]
    if list(frame.columns) != names:
        frame = frame.set_axis(names, axis=1)
    required = schema.required_input_names()
    missing = [n for n in required if n not in names]
    if missing:
        extra = [n for n in names if n not in schema.input_names()]
        hint = f" Note that there were extra inputs: {extra}." if extra else ""
        raise _bad(f"Model is missing inputs {missing}.{hint}")
    present = [s for s in schema.specs if s.name in names]
    ordered = [str(s.name) for s in present]
    result = frame if ordered == names else frame[ordered]
    converted = {}
    for spec in present:
        assert isinstance(spec, ColSpec) and spec.name is not None
        column = result[spec.name]
        checked = _enforce_column(column, spec.type, spec.name, spec.required)
        if checked is not column:
            converted[spec.name] = checked
    if not converted:
        return result
    # Only converted columns are replaced, on a copy: the caller's frame is never modified.
    result = result.copy(deep=False)
    for name, column in converted.items():
        result[name] = column
    return result


def _enforce_unnamed_columns(data: Any, schema: Schema) -> Any:
    import pandas as pd

    specs = schema.specs
    if len(specs) == 1 and not isinstance(data, pd.DataFrame):
        if isinstance(data, pd.Series):
            return _enforce_column(data, specs[0].type, "0", True)  # type: ignore[union-attr]
        values = data if isinstance(data, (list, tuple)) else [data]
        column = _enforce_column(pd.Series(list(values), dtype=object), specs[0].type, "0", True)  # type: ignore[union-attr]
        return column.tolist() if isinstance(data, (list, tuple)) else column.iloc[0]
    frame = _to_frame(data, None)
    if len(frame.columns) != len(specs):
        raise _bad(f"Model expects {len(specs)} unnamed input columns but got {len(frame.columns)}.")
    out = {}
    for position, (column, spec) in enumerate(zip(frame.columns, specs, strict=True)):
        out[column] = _enforce_column(frame[column], spec.type, str(position), True)  # type: ignore[union-attr]
    return pd.DataFrame(out, index=frame.index)


def _to_frame(data: Any, schema: Schema | None) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, dict):
        array_columns = set()
        if schema is not None:
            array_columns = {
                s.name for s in schema.specs if isinstance(s, ColSpec) and isinstance(s.type, Array)
            }
        if all(_is_scalar_value(v) or k in array_columns for k, v in data.items()):
            return pd.DataFrame([data])
        try:
            return pd.DataFrame(data)
        except ValueError as exc:
            raise _bad(f"Input dict cannot be read as columns: {exc}") from exc
    if isinstance(data, (list, tuple)):
        if all(isinstance(row, dict) for row in data):
            return pd.DataFrame(list(data))
        data = np.asarray(data, dtype=object)
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            data = data.reshape(-1, 1)
        if data.ndim != 2:
            raise _bad(f"Expected 2-D input for a column-based schema, got {data.ndim}-D")
        columns = schema.input_names() if schema is not None else list(range(data.shape[1]))
        if len(columns) != data.shape[1]:
            raise _bad(
                f"Model expects {len(columns)} input columns {columns} but got an array with {data.shape[1]} columns."
            )
        frame = pd.DataFrame(data, columns=columns)
        return frame.infer_objects()
    raise _bad(f"Unsupported input type {type(data).__name__} for a column-based schema")


def _is_scalar_value(value: Any) -> bool:
    return (
        not isinstance(value, (list, tuple, dict))
        and not hasattr(value, "__len__")
        or isinstance(value, (str, bytes))
    )


_NO_MISSING = (DataType.integer, DataType.long, DataType.boolean)


def _enforce_column(series: Any, dtype: ValueType, name: str, required: bool) -> Any:
    import numpy as np
    import pandas as pd

    kind = getattr(series.dtype, "kind", "O")
    if isinstance(dtype, (Array, Object, Map)):
        has_missing = bool(series.map(lambda v: v is None).any())
    else:
        # Integer and bool arrays cannot hold missing values, and NaN is a float like any other
        # (a float column bound for an integer type fails its conversion check instead).
        numpy_backed = isinstance(series.dtype, np.dtype)
        has_missing = not (numpy_backed and kind in "iubf") and bool(series.isna().any())
    # "required" means the column must be there (MLflow's meaning); a missing value inside it is
    # refused only where the type has no way to hold one.
    if has_missing and required and (not isinstance(dtype, DataType) or dtype in _NO_MISSING):
        raise _bad(f"Column '{name}' is required but has missing values.")
    if not isinstance(dtype, DataType):
        return series.map(lambda v: None if v is None else _enforce_value(v, dtype, name))
    if has_missing:
        present = series[series.notna()]
        converted = _enforce_scalar_column(present, dtype, name) if len(present) else present
        result = pd.Series([None] * len(series), index=series.index, dtype=object)
        result[present.index] = converted
        return result
    return _enforce_scalar_column(series, dtype, name)


def _enforce_scalar_column(series: Any, dtype: DataType, name: str) -> Any:
    import numpy as np
    import pandas as pd

    source = series.dtype
    kind = getattr(source, "kind", "O")
    if pd.api.types.is_extension_array_dtype(source) and not pd.api.types.is_string_dtype(source):
        if series.isna().any():
            raise _bad(f"Column '{name}' has missing values and cannot be converted to {dtype.value}.")
        numpy_dtype = getattr(source, "numpy_dtype", None)
        if numpy_dtype is not None:
            series = series.astype(numpy_dtype)
            source, kind = series.dtype, series.dtype.kind

    if isinstance(source, pd.StringDtype) and dtype is DataType.string:
        return series

    def incompatible(found: Any) -> ModelyardException:
        return _bad(
            f"Incompatible input types for column {name}. Can not safely convert {found} to {dtype.value}."
        )

    if dtype in (DataType.string, DataType.binary):
        wanted = str if dtype is DataType.string else (bytes, bytearray)
        if pd.api.types.is_string_dtype(source) and dtype is DataType.string and kind != "O":
            return series
        if kind == "O" and all(isinstance(v, wanted) for v in series.tolist()):
            return series
        raise incompatible(source)
    if dtype is DataType.datetime:
        if kind == "M":
            return series
        try:
            return pd.to_datetime(series)
        except (ValueError, TypeError) as exc:
            raise incompatible(source) from exc
    if dtype is DataType.boolean:
        if kind == "b":
            return series
        if kind == "O" and all(isinstance(v, (bool, np.bool_)) for v in series.tolist()):
            return series.astype(bool)
        raise incompatible(source)
    target = dtype.numpy_dtype
    if kind == "O":
        values = series.tolist()
        offending = [
            v for v in values if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number))
        ]
        if offending:
            raise incompatible(type(offending[0]).__name__)
        inferred = np.asarray(values).dtype
        if np.can_cast(inferred, target, "safe"):
            return series.astype(target)
        raise incompatible(inferred)
    if source == target:
        return series
    if kind in "iuf" and np.can_cast(source, target, "safe"):
        return series.astype(target)
    raise incompatible(source)


def _enforce_value(value: Any, dtype: ValueType, name: str) -> Any:
    """Nested (array/object/map) values are checked element by element; scalars inside are converted."""
    import numpy as np

    if isinstance(dtype, Array):
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise _bad(
                f"Column '{name}' expects an array of {type_name(dtype.items)}, got {type(value).__name__}."
            )
        return [_enforce_value(v, dtype.items, name) for v in value]
    if isinstance(dtype, Object):
        if not isinstance(value, dict):
            raise _bad(f"Column '{name}' expects an object, got {type(value).__name__}.")
        known = {p.name for p in dtype.properties}
        extra = set(value) - known
        if extra:
            raise _bad(f"Column '{name}' has unexpected keys {sorted(extra)}.")
        out = {}
        for prop in dtype.properties:
            if prop.name not in value or value[prop.name] is None:
                if prop.required:
                    raise _bad(f"Column '{name}' is missing required key '{prop.name}'.")
                continue
            out[prop.name] = _enforce_value(value[prop.name], prop.dtype, f"{name}.{prop.name}")
        return out
    if isinstance(dtype, Map):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _bad(f"Column '{name}' expects a map with string keys.")
        return {k: _enforce_value(v, dtype.values, name) for k, v in value.items()}
    return _convert_scalar(value, dtype, name)


def _convert_scalar(value: Any, dtype: DataType, name: str) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    ok = False
    if dtype is DataType.boolean:
        ok = isinstance(value, bool)
    elif dtype in (DataType.integer, DataType.long):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif dtype in (DataType.float, DataType.double):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif dtype is DataType.string:
        ok = isinstance(value, str)
    elif dtype is DataType.binary:
        ok = isinstance(value, (bytes, bytearray))
    elif dtype is DataType.datetime:
        if isinstance(value, str):
            try:
                value = _dt.datetime.fromisoformat(value)
            except ValueError:
                ok = False
        ok = isinstance(value, (_dt.datetime, _dt.date))
    if not ok:
        raise _bad(
            f"Incompatible input types for column {name}. Can not safely convert {type(value).__name__} to {dtype.value}."
        )
    return value


# --- tensor-based schemas --------------------------------------------------------------------------


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    if not schema.has_names:
        spec = schema.specs[0]
        assert isinstance(spec, TensorSpec)
        if isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        elif isinstance(data, (list, tuple)):
            data = np.asarray(data)
        if not isinstance(data, np.ndarray):
            raise _bad(f"Model expects a numpy array input, got {type(data).__name__}.")
        return _enforce_tensor(data, spec, "input")
    if isinstance(data, pd.DataFrame):
        data = {c: data[c].to_numpy() for c in data.columns}
    if not isinstance(data, dict):
        raise _bad(f"Model expects a dict of named tensors, got {type(data).__name__}.")
    missing = [s.name for s in schema.specs if s.name not in data]
    if missing:
        raise _bad(f"Model is missing inputs {missing}.")
    return {
        s.name: _enforce_tensor(np.asarray(data[s.name]), s, str(s.name))  # type: ignore[arg-type]
        for s in schema.specs
        if isinstance(s, TensorSpec)
    }


def _enforce_tensor(array: Any, spec: TensorSpec, name: str) -> Any:
    import numpy as np

    target = np.dtype(spec.dtype) if spec.dtype not in ("str", "bytes") else None
    if target is not None and array.dtype != target:
        if not np.can_cast(array.dtype, target, "safe"):
            raise _bad(
                f"dtype of input {array.dtype} does not match expected dtype {spec.dtype} for tensor '{name}' "
                "and cannot be converted safely."
            )
        array = array.astype(target)
    if len(array.shape) != len(spec.shape) or any(
        want != -1 and want != got for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        raise _bad(
            f"Shape of input {tuple(array.shape)} does not match expected shape {spec.shape} for tensor '{name}'."
        )
    return array


# --- params ----------------------------------------------------------------------------------------


def enforce_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any] | None:
    """Fill defaults and convert; params the model did not declare are dropped with a warning (MLflow's rule)."""
    if schema is None:
        if params:
            _log.warning("Ignoring params %s: the model signature declares no params.", sorted(params))
        return None
    given = dict(params or {})
    unknown = sorted(set(given) - {p.name for p in schema.params})
    if unknown:
        _log.warning("Ignoring params %s: not in the model signature.", unknown)
    return {p.name: _enforce_param(given[p.name], p) if p.name in given else p.default for p in schema.params}


def _enforce_param(value: Any, spec: ParamSpec) -> Any:
    if spec.shape is not None:
        if not isinstance(value, (list, tuple)) and not hasattr(value, "tolist"):
            raise _bad(f"Param '{spec.name}' must be a list of {spec.type.value}.")
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        try:
            return [_convert_scalar(v, spec.type, spec.name) for v in items]
        except ModelyardException as exc:
            raise _bad(f"Param '{spec.name}' must be a list of {spec.type.value}: {exc.message}") from None
    try:
        return _convert_scalar(value, spec.type, spec.name)
    except ModelyardException:
        raise _bad(
            f"Param '{spec.name}' must be of type {spec.type.value}, got {type(value).__name__} {value!r}."
        ) from None
