"""Request parsing for MLflow-style endpoints: JSON bodies, query strings and typed field getters.

MLflow's handlers read POST/PATCH/DELETE parameters from a JSON body and GET parameters from the query
string (a list is a repeated key: `experiment_ids=1&experiment_ids=2`); both land here as one mapping,
`Args`, and endpoints pull typed fields out of it with the getters below. Every getter raises MLflow's
INVALID_PARAMETER_VALUE naming the field, so a malformed request is a 400 and never reaches a store.
Proto3 JSON sends int64 as strings and non-finite doubles as "NaN"/"Infinity"; both are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import Depends
from starlette.requests import Request

from modelyard import errors
from modelyard.entities import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.settings import Settings

Args = Mapping[str, Any]

_INT_STRING = re.compile(r"-?\d+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Nesting depth orjson's parser accepts (its own fixed limit; deeper bodies are a 400).
MAX_JSON_DEPTH = 1024
_BARE_NON_FINITE = re.compile(rb"NaN|Infinity")
#: A JSON string (left as it is) or a bare non-finite token outside strings (group 1).
_BARE_NON_FINITE_OR_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?Infinity|NaN)')
_DOCS_HINT = " See the API docs for more information about request parameters."


class QueryArgs(dict[str, list[str]]):
    """GET parameters: each name maps to all its values, in order (a scalar field reads the first)."""


# --- reading a request -----------------------------------------------------------------------------
#: Where the auth middleware leaves a JSON body it already parsed (with `json_args`, as below), so the
#: route does not parse it again.
PARSED_BODY = "modelyard.json_args"


async def read_args(request: Request) -> Args:
    """The request's parameters: the query string for a GET that has one, else the JSON body."""
    if request.method in ("GET", "HEAD") and request.url.query:
        return read_query(request)
    parsed = request.scope.get(PARSED_BODY)
    if parsed is not None:
        return parsed  # type: ignore[no-any-return]
    return await read_json(request)


def read_query(request: Request) -> QueryArgs:
    args = QueryArgs()
    for key, value in request.query_params.multi_items():
        args.setdefault(key, []).append(value)
    return args


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is `{}` (MLflow treats it as no parameters).

    Limits, checked at the edge before anything reaches a store: the body's size
    (`Settings.max_request_body_bytes`; the announced Content-Length is refused before a byte is
    read), and nesting depth (orjson's parser stops at `MAX_JSON_DEPTH` levels without recursing on
    the C stack). orjson also refuses invalid UTF-8 and lone surrogates (`"\\ud800"`), which the
    stores cannot encode. There is deliberately no second, recursive parser behind it.
    """
    raw = await read_body(request, _max_body_bytes(request))
    return json_args(raw, request.headers.get("content-type"))


def json_args(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """A JSON body's parameters, as `read_json` reads them (also what the auth middleware reads
    a resource id from, so both see the same value)."""
    if content_type and content_type.split(";", 1)[0].strip().lower() not in ("application/json", ""):
        raise ModelyardException.invalid_parameter(
            "Bad Request. Content-Type must be one of ['application/json']."
        )
    if not raw.strip():
        return {}
    body = _loads(raw)
    if isinstance(body, str):
        # Old clients double-encode the body as a JSON string; MLflow decodes it a second time.
        body = _loads(body.encode())
    if not isinstance(body, dict):
        raise ModelyardException(
            f"The request body must be a JSON object, got {type(body).__name__}.", errors.MALFORMED_REQUEST
        )
    return body


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 400 once it is over `limit` bytes (by its Content-Length when
    announced, else as it streams in), so an oversized body is never buffered whole."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise _body_too_large(int(announced), limit)
    if announced is not None:
        return await request.body()  # the server stops reading at the announced length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _body_too_large(size, limit, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _max_body_bytes(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None) if "app" in request.scope else None
    return int(getattr(settings, "max_request_body_bytes", None) or Settings.max_request_body_bytes)


def _body_too_large(size: int, limit: int, at_least: bool = False) -> ModelyardException:
    shown = f"at least {size}" if at_least else str(size)
    return ModelyardException.invalid_parameter(
        f"The request body is {shown} bytes, over the limit of {limit} bytes (MODELYARD_MAX_REQUEST_BODY_BYTES)."
    )


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error: orjson.JSONDecodeError = exc
    # Python clients write non-finite doubles as bare NaN / Infinity tokens, which JSON lacks: read
    # them as the strings proto JSON uses for them ("NaN", "-Infinity"), which `to_float` accepts.
    if _BARE_NON_FINITE.search(raw) is not None:
        try:
            return orjson.loads(_BARE_NON_FINITE_OR_STRING.sub(_quote_non_finite, raw))
        except orjson.JSONDecodeError as exc:
            error = exc
    raise ModelyardException(f"Malformed JSON in request body: {error}", errors.MALFORMED_REQUEST)


def _quote_non_finite(match: re.Match[bytes]) -> bytes:
    token = match.group(1)
    return match.group() if token is None else b'"' + token + b'"'


# --- field getters ---------------------------------------------------------------------------------
def _raw(args: Args, name: str) -> Any:
    value = args.get(name)
    if isinstance(args, QueryArgs) and value is not None:
        return value[0]
    return value


def _missing(name: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(f"Missing value for required parameter '{name}'.{_DOCS_HINT}")


def _invalid(name: str, value: Any, expected: str) -> ModelyardException:
    shown = _shown(value)
    return ModelyardException.invalid_parameter(
        f"Invalid value {shown} for parameter '{name}' supplied: expected {expected}, "
        f"got {type(value).__name__}.{_DOCS_HINT}"
    )


def _shown(value: Any, limit: int = 200) -> str:
    """`value` as JSON for an error message, cut to `limit` characters (a request's value can be
    megabytes long, or nested a thousand levels deep, beyond what json.dumps can recurse into)."""
    try:
        shown = orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[:limit] + "..."


def get_str(args: Args, name: str, default: str | None = None, *, prefix: str = "") -> str | None:
    """`prefix` places a nested field in error messages (`metrics[3].`); so for every getter."""
    value = _raw(args, name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid(prefix + name, value, "a string")
    return value


def require_str(args: Args, name: str, *, prefix: str = "") -> str:
    """A required string; like MLflow, an empty string counts as missing."""
    value = get_str(args, name, prefix=prefix)
    if value is None or value == "":
        raise _missing(prefix + name)
    return value


def require_run_id(args: Args) -> str:
    """`run_id`, or the `run_uuid` older clients send instead."""
    value = get_str(args, "run_id") or get_str(args, "run_uuid")
    if not value:
        raise _missing("run_id")
    return value


def get_int(args: Args, name: str, default: int | None = None, *, prefix: str = "") -> int | None:
    value = _raw(args, name)
    if value is None:
        return default
    return to_int(prefix + name, value)


def require_int(args: Args, name: str, *, prefix: str = "") -> int:
    value = get_int(args, name, prefix=prefix)
    if value is None:
        raise _missing(prefix + name)
    return value


def to_int(name: str, value: Any) -> int:
    """An int64 as proto JSON carries it: a number, an integral float, or a decimal string."""
    if isinstance(value, bool):
        raise _invalid(name, value, "an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) < 64 and _INT_STRING.fullmatch(value.strip()):
        number = int(value)
    else:
        raise _invalid(name, value, "an integer")
    if not _INT64_MIN <= number <= _INT64_MAX:
        # Every integer of MLflow's API is an int64 (or narrower): beyond that no column holds it.
        raise _invalid(name, value, "a 64-bit integer")
    return number


def require_float(args: Args, name: str, *, prefix: str = "") -> float:
    value = _raw(args, name)
    if value is None:
        raise _missing(prefix + name)
    return to_float(prefix + name, value)


def to_float(name: str, value: Any) -> float:
    """A double as proto JSON carries it: a number, or a string such as "1.5", "NaN", "-Infinity"."""
    if isinstance(value, bool):
        raise _invalid(name, value, "a number")
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)
    except (ValueError, OverflowError):  # "abc"; an integer beyond a double's range
        pass
    raise _invalid(name, value, "a number")


def get_bool(args: Args, name: str, default: bool = False) -> bool:
    value = _raw(args, name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid(name, value, "a boolean")


def get_list(args: Args, name: str) -> list[Any]:
    """A repeated field: a JSON array, or every occurrence of the key in a query string."""
    value = args.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(name, value, "a list")
    return value


def get_str_list(args: Args, name: str) -> list[str]:
    values = get_list(args, name)
    for value in values:
        if not isinstance(value, str):
            raise _invalid(name, values, "a list of strings")
    return values


def get_object_list(args: Args, name: str) -> list[dict[str, Any]]:
    values = get_list(args, name)
    for value in values:
        if not isinstance(value, dict):
            raise _invalid(name, values, "a list of objects")
    return values


def get_key_values(args: Args, name: str, value_required: bool = False) -> list[tuple[str, str]]:
    """A repeated `{key, value}` message (tags, params): keys required, values strings ("" if unset)."""
    pairs = []
    for index, item in enumerate(get_object_list(args, name)):
        key = item.get("key")
        if key is None or key == "":
            raise _missing(f"{name}[{index}].key")
        if not isinstance(key, str):
            raise _invalid(f"{name}[{index}].key", key, "a string")
        value = item.get("value")
        if value is None:
            if value_required:
                raise _missing(f"{name}[{index}].value")
            value = ""
        if not isinstance(value, str):
            raise _invalid(f"{name}[{index}].value", value, "a string")
        pairs.append((key, value))
    return pairs


def get_view_type(args: Args, name: str) -> int:
    """MLflow's ViewType by name (`ACTIVE_ONLY`) or number; absent means ACTIVE_ONLY."""
    value = _raw(args, name)
    if isinstance(value, bool) or not isinstance(value, str | int | None):
        raise _invalid(name, value, "one of ACTIVE_ONLY, DELETED_ONLY, ALL")
    return ViewType.parse(value)


def get_page_size(args: Args, name: str, default: int, maximum: int) -> int:
    """A `max_results`: a positive integer no larger than the endpoint's documented maximum."""
    value = get_int(args, name, default)
    assert value is not None
    if value < 1 or value > maximum:
        raise ModelyardException.invalid_parameter(
            f"Invalid value {value} for parameter '{name}' supplied: it must be between 1 and {maximum}."
        )
    return value


#: The request's parameters (JSON body, or query string for GET) as a FastAPI dependency.
ArgsDep = Annotated[Args, Depends(read_args)]
