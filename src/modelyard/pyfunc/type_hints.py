"""Type hints on `PythonModel.predict`, read as MLflow 3 reads them.

`def predict(self, model_input: list[str], params=None) -> list[str]` declares the model's signature:
saved without an explicit signature, the model gets the schema the hint describes (`list[T]` of str,
int, float, bool, bytes, datetime, `list[U]`, `dict[str, U]` or a pydantic model; the names mlflow
3.17 writes, with `is_signature_from_type_hint: true` in the MLmodel), and at predict time the input
is turned into what the hint says (a one-column DataFrame into its values, a DataFrame into records
for dicts and pydantic models, dicts into pydantic models) and checked element by element, instead
of the column-based schema enforcement. Hints this module cannot express (Any, DataFrame, ...) give
no signature and no conversion: the model gets its input as given, as before.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.schema import Array, ColSpec, DataType, Map, Object, Property, Schema, ValueType
from modelyard.models.signature import ModelSignature

#: The MLmodel keys mlflow writes for a signature that came from type hints.
FROM_TYPE_HINT_KEY = "is_signature_from_type_hint"
FROM_EXAMPLE_KEY = "type_hint_from_example"

_SCALARS: dict[Any, DataType] = {
    str: DataType.string,
    int: DataType.long,
    float: DataType.double,
    bool: DataType.boolean,
    bytes: DataType.binary,
    datetime.datetime: DataType.datetime,
}


def predict_hints(python_model: Any) -> tuple[Any, Any]:
    """(hint of model_input, hint of the return value) of the model's `predict`; None where absent."""
    method = getattr(type(python_model), "predict", None)
    if method is None:
        return None, None
    try:
        hints = typing.get_type_hints(method)
        names = [n for n in inspect.signature(method).parameters if n not in ("self", "context", "params")]
    except Exception:  # unresolvable forward references: no hints, as if none were written
        return None, None
    return (hints.get(names[0]) if names else None), hints.get("return")


def function_hints(func: Any) -> tuple[Any, Any]:
    """(input hint, return hint) of a function used as a model (its first parameter)."""
    try:
        hints = typing.get_type_hints(func)
        names = list(inspect.signature(func).parameters)
    except Exception:
        return None, None
    return (hints.get(names[0]) if names else None), hints.get("return")


def signature_from_hints(python_model: Any) -> ModelSignature | None:
    hints_of = getattr(python_model, "predict_type_hints", None)
    input_hint, output_hint = (
        (hints_of.input, hints_of.output) if hints_of is not None else predict_hints(python_model)
    )
    inputs = schema_of(input_hint)
    if inputs is None:
        return None
    return ModelSignature(inputs=inputs, outputs=schema_of(output_hint))


def schema_of(hint: Any) -> Schema | None:
    """The schema of a `list[T]` hint, or None when the hint is not one mlflow turns into a schema."""
    if typing.get_origin(hint) is not list or not typing.get_args(hint):
        return None
    item = value_type(typing.get_args(hint)[0])
    return Schema.of(ColSpec(item)) if item is not None else None


def value_type(hint: Any) -> ValueType | None:
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args:
        inner = value_type(args[0])
        return Array(inner) if inner is not None else None
    if origin is dict and len(args) == 2 and args[0] is str:
        inner = value_type(args[1])
        return Map(inner) if inner is not None else None
    if _is_pydantic_model(hint):
        properties = []
        for name, field_info in sorted(hint.model_fields.items()):
            annotation, required = _unwrap_optional(field_info.annotation)
            dtype = value_type(annotation)
            if dtype is None:
                return None
            properties.append(Property(name, dtype, required))
        return Object(tuple(properties))
    return None


def convert_input(data: Any, hint: Any) -> Any:
    """`data` as the `list[T]` the hint declares, each element checked; other hints leave it as is."""
    if schema_of(hint) is None:
        return data
    item_hint = typing.get_args(hint)[0]
    items = _as_list(data, item_hint)
    converted, invalid = [], []
    for value in items:
        try:
            converted.append(_convert(value, item_hint))
        except (TypeError, ValueError) as exc:
            invalid.append((str(value), str(exc)))
    if invalid:
        raise ModelyardException.invalid_parameter(
            f"Failed to validate data against type hint `{_name(hint)}`, invalid elements: {invalid[:10]}"
        )
    return converted


def _as_list(data: Any, item_hint: Any) -> list[Any]:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with every model extra
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        records = item_hint not in _SCALARS and typing.get_origin(item_hint) is not list
        if records:
            return data.to_dict(orient="records")
        if item_hint is str:  # mlflow's rule: the first column of strings
            for column in data.columns:
                values = data[column].tolist()
                if all(isinstance(v, str) for v in values):
                    return values
            raise ModelyardException.invalid_parameter(
                "Expected model input to contain at least one string column"
            )
        if len(data.columns) != 1:
            raise ModelyardException.invalid_parameter(
                f"A DataFrame for type hint `list[{_name(item_hint)}]` must have one column, got {list(data.columns)}"
            )
        return data.iloc[:, 0].tolist()
    if pd is not None and isinstance(data, pd.Series):
        return data.tolist()
    if hasattr(data, "tolist") and not isinstance(data, (str, bytes)):
        return list(data.tolist())
    if isinstance(data, dict):
        return [data]
    if isinstance(data, (list, tuple)):
        return list(data)
    raise ModelyardException.invalid_parameter(
        f"Input of type {type(data).__name__} does not match type hint `list[{_name(item_hint)}]`"
    )


def _convert(value: Any, hint: Any) -> Any:
    if hint in _SCALARS:
        # bool is an int in Python; MLflow refuses True for int and 1 for bool, and so do we.
        ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise TypeError(f"Expected type {hint.__name__}, but got {type(value).__name__}")
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if not isinstance(value, (list, tuple)) and not hasattr(value, "tolist"):
            raise TypeError(f"Expected a list, but got {type(value).__name__}")
        return [_convert(v, args[0]) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"Expected a dict with string keys, but got {type(value).__name__}")
        return {k: _convert(v, args[1]) for k, v in value.items()}
    if _is_pydantic_model(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"Expected a dict for {hint.__name__}, but got {type(value).__name__}")
        try:
            return hint.model_validate(value)
        except Exception as exc:  # pydantic's ValidationError
            raise ValueError(str(exc).splitlines()[0]) from None
    return value


def wrap_predict(predict: Callable[..., Any]) -> Callable[..., Any]:
    """`predict` converting and checking its input against its own hint, as MLflow wraps the `predict`
    of every PythonModel subclass: the model behaves the same under any loader, mlflow's included."""
    if getattr(predict, "_modelyard_type_hint_wrapped", False):
        return predict
    try:
        names = list(inspect.signature(predict).parameters)
        hint = typing.get_type_hints(predict).get(
            next(n for n in names if n not in ("self", "context", "params"))
        )
    except Exception:  # no input parameter, or hints that cannot be resolved here
        return predict
    if schema_of(hint) is None:
        return predict
    position = names.index(next(n for n in names if n not in ("self", "context", "params")))
    input_name = names[position]

    @functools.wraps(predict)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if input_name in kwargs:
            kwargs[input_name] = convert_input(kwargs[input_name], hint)
        elif len(args) > position:
            args = (*args[:position], convert_input(args[position], hint), *args[position + 1 :])
        return predict(*args, **kwargs)

    wrapper._modelyard_type_hint_wrapped = True  # type: ignore[attr-defined]
    return wrapper


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    if is_union and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), False
    return annotation, True


def _is_pydantic_model(hint: Any) -> bool:
    return inspect.isclass(hint) and hasattr(hint, "model_fields") and hasattr(hint, "model_validate")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) if not typing.get_args(hint) else str(hint).replace("typing.", "")
