"""MLflow's scoring protocol: request bodies -> model input, predictions -> response JSON.

Accepted JSON bodies carry exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`,
plus optional `params`; `text/csv` bodies are a DataFrame with a header row. Anything else is a 400
(BAD_REQUEST) with a message, or a 415 for a content type we do not read, as `mlflow models serve` answers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import orjson

from modelyard import errors
from modelyard.exceptions import ModelyardException

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
INPUT_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")

REQUIRED_FORMAT_MESSAGE = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)


class UnsupportedContentType(Exception):
    """Answered with 415 and a plain-text body, as MLflow's scoring server does."""


@dataclass(frozen=True)
class ScoringRequest:
    data: Any
    params: dict[str, Any] | None


def bad_request(message: str) -> ModelyardException:
    return ModelyardException(message, errors.BAD_REQUEST)


def parse_request(
    body: bytes, content_type: str | None, column_names: list[str] | None = None, schema: Any = None
) -> ScoringRequest:
    """Decode one /invocations body. `column_names` (from the model's input schema) names the columns
    of positional `instances`/`inputs` rows, so a list of rows scores against a column-based model;
    numbers are read as the model's input `schema` types them (`read_as_schema`)."""
    mime, charset, extra = _split_content_type(content_type or CONTENT_TYPE_JSON)
    if charset != "utf-8":
        raise UnsupportedContentType("The scoring server only supports UTF-8")
    if extra:
        raise UnsupportedContentType(f"Unrecognized content type parameters: {', '.join(sorted(extra))}.")
    if mime == CONTENT_TYPE_CSV:
        return ScoringRequest(read_as_schema(_parse_csv(body), schema), None)
    if mime == CONTENT_TYPE_JSON:
        return parse_payload(decode_json(body), column_names, schema)
    raise UnsupportedContentType(
        f"This predictor only supports the following content types: {[CONTENT_TYPE_CSV, CONTENT_TYPE_JSON]}. "
        f"Got '{content_type}'."
    )


def _split_content_type(value: str) -> tuple[str, str, set[str]]:
    parts = [p.strip() for p in value.split(";")]
    params = dict(p.partition("=")[::2] for p in parts[1:] if p)
    charset = params.pop("charset", "utf-8").strip('"').lower()
    return parts[0].lower(), charset, set(params)


def _parse_csv(body: bytes) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except Exception as exc:  # pandas raises many types for bad CSV
        raise bad_request(
            f"Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted "
            f"Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        ) from exc


def input_tensor_dtype(schema: Any) -> str | None:
    """The numeric dtype of a model's one unnamed input tensor, else None."""
    specs = getattr(schema, "specs", ())
    if len(specs) != 1 or not schema.is_tensor_spec or specs[0].name is not None:
        return None
    return _numeric(specs[0].dtype)


def read_as_schema(data: Any, schema: Any) -> Any:
    """Numbers as the model's input schema types them. JSON has one kind of number: MLflow's scoring
    server casts what it parsed to the signature's types, so a `float32` model takes JSON numbers
    (enforcement would refuse float64 -> float32 as an unsafe cast). Only numeric casts of the same
    kind or wider (float64 -> float32, int -> float), never float -> int: anything else is left to
    enforcement, which answers its own error."""
    import numpy as np
    import pandas as pd

    tensor = input_tensor_dtype(schema)
    if isinstance(data, np.ndarray):
        return data.astype(tensor) if tensor and _castable(data.dtype, tensor) else data
    if not isinstance(data, pd.DataFrame) or schema is None:
        return data
    if tensor:
        targets = dict.fromkeys(data.columns, tensor)
    elif schema.has_names and not schema.is_tensor_spec:
        types = {spec.name: _numeric(getattr(spec.type, "value", spec.type)) for spec in schema.specs}
        targets = {name: dtype for name, dtype in types.items() if dtype and name in data.columns}
    else:
        return data
    casts = {name: dtype for name, dtype in targets.items() if _castable(data[name].dtype, dtype)}
    return data.astype(casts) if casts else data


def _numeric(type_name: Any) -> str | None:
    """A numpy dtype name for a numeric or boolean schema type (`float`, `float32`, `long`...)."""
    import numpy as np

    name = {"integer": "int32", "long": "int64", "float": "float32", "double": "float64", "boolean": "bool"}.get(
        str(type_name), str(type_name)
    )
    try:
        return name if np.dtype(name).kind in "biuf" else None
    except TypeError:
        return None


def _castable(current: Any, dtype: str) -> bool:
    """Whether numbers of `current` dtype become `dtype` by a cast numpy calls of the same kind (or safe)."""
    import numpy as np

    numeric = getattr(current, "kind", None) in ("b", "i", "u", "f")  # not pandas' extension dtypes
    return numeric and current != dtype and np.can_cast(current, dtype, "same_kind")


def is_plain_json(content_type: str | None) -> bool:
    """Whether `parse_request` reads this content type as JSON with nothing to check first."""
    return content_type is None or content_type == CONTENT_TYPE_JSON


def decode_json(body: bytes) -> Any:
    """The JSON document of a body, or the general path's 400 for one that is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: '{exc}'"
        ) from exc


def parse_payload(payload: Any, column_names: list[str] | None, schema: Any = None) -> ScoringRequest:
    """A decoded JSON body -> model input, as described in the module docstring."""
    if not isinstance(payload, dict):
        raise bad_request(f"{REQUIRED_FORMAT_MESSAGE}. Received a JSON {type(payload).__name__}.")
    formats = [k for k in payload if k in INPUT_FORMATS]
    if len(formats) != 1:
        raise bad_request(
            f"{REQUIRED_FORMAT_MESSAGE}. Received dictionary with input fields: {list(payload)}."
        )
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise bad_request("'params' must be a JSON object.")
    fmt = formats[0]
    value = payload[fmt]
    if fmt == "dataframe_split":
        data = _dataframe_split(value)
    elif fmt == "dataframe_records":
        data = _dataframe_records(value)
    else:
        data = _tensor_input(fmt, value, column_names)
    return ScoringRequest(read_as_schema(data, schema), params)


def _dataframe_split(value: Any) -> Any:
    import pandas as pd

    if not isinstance(value, dict) or "data" not in value:
        raise bad_request("'dataframe_split' must be an object with 'data' (and usually 'columns').")
    data, columns, index = value["data"], value.get("columns"), value.get("index")
    if not isinstance(data, list) or (columns is not None and not isinstance(columns, list)):
        raise bad_request(
            "'dataframe_split' needs 'data' as a list of rows and 'columns' as a list of names."
        )
    try:
        return pd.DataFrame(data=data, columns=columns, index=index)
    except (ValueError, TypeError) as exc:
        raise bad_request(f"Could not build a DataFrame from 'dataframe_split': {exc}") from exc


def _dataframe_records(value: Any) -> Any:
    import pandas as pd

    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise bad_request("'dataframe_records' must be a list of objects, one per row.")
    return pd.DataFrame.from_records(value)


def _tensor_input(fmt: str, value: Any, column_names: list[str] | None) -> Any:
    """`instances`/`inputs`: rows of objects and objects of columns become DataFrames; a list of
    positional rows becomes a DataFrame when the model declares its columns, else a numpy array."""
    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        try:
            return pd.DataFrame(value) if _all_lists(value.values()) else pd.DataFrame([value])
        except ValueError as exc:
            raise bad_request(f"Could not build a DataFrame from '{fmt}': {exc}") from exc
    if not isinstance(value, list):
        raise bad_request(f"'{fmt}' must be a list of rows or an object of columns.")
    if value and all(isinstance(r, dict) for r in value):
        return pd.DataFrame.from_records(value)
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise bad_request(f"'{fmt}' rows must all have the same shape: {exc}") from exc
    if array.dtype == object:
        raise bad_request(f"'{fmt}' rows must all have the same length and scalar values.")
    if column_names and array.ndim == 2 and array.shape[1] == len(column_names):
        return pd.DataFrame(array, columns=column_names)
    return array


def _all_lists(values: Any) -> bool:
    return all(isinstance(v, list) for v in values)


def predictions_to_json(predictions: Any) -> bytes:
    """`{"predictions": ...}` with DataFrames as records and numpy values as plain JSON."""
    # Non-string keys: a DataFrame with numbered columns (a tensor model's output) answers {"0": ...}, as json does.
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.dumps({"predictions": _jsonable(predictions)}, option=option, default=_default)


def _default(value: Any) -> Any:
    """What orjson cannot write natively: object arrays (strings), numpy scalars of odd types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _jsonable(value: Any) -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - serving always has pandas
        return value
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series):
        return value.tolist()
    if getattr(value, "dtype", None) in _NARROW_FLOATS:
        # orjson writes a float32 as its shortest float32 text (-0.12033105); MLflow writes the float64
        # it widens to (-0.1203310489654541), and a client reads that text as a float64.
        return value.astype("float64")
    return value


#: numpy dtypes whose values are written as the float64 they widen to (compared as dtypes: no numpy import).
_NARROW_FLOATS = ("float16", "float32")
