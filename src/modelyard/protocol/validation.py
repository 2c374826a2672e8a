"""Input rules of the MLflow tracking API, as pure functions.

The SQL store calls them before it writes anything (a batch that fails here writes nothing) and the
REST client can call them to fail fast without a round trip. Every failure is a
`ModelyardException` with INVALID_PARAMETER_VALUE, the code MLflow answers with (HTTP 400).
"""

from __future__ import annotations

import numbers
import posixpath
import re
import sys
from collections.abc import Sequence
from typing import Any

from modelyard.entities import Metric, Param, RunTag
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits

# MLflow (non-Windows) accepts slashes, word characters, periods, dashes, spaces and colons.
_KEY_CHARS = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_EXPERIMENT_ID = re.compile(r"^[0-9]{1,18}$")
# Bigint range: a step or timestamp outside it cannot be stored.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Integers up to this magnitude convert to a finite double.
_FLOAT_INT_MAX = int(sys.float_info.max)

_KEY_CHARS_MESSAGE = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ),"
    " colon(:) and slashes (/)."
)


def _invalid(message: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(message)


def validate_key(key: Any, kind: str = "key") -> str:
    """A metric, param or tag name. Names become file paths in some stores, so a name that would
    normalise to a different path (`a/../b`, `/abs`, `./x`, `a//b`) is refused, as MLflow does."""
    if key is None or not isinstance(key, str):
        raise _invalid(f"Invalid {kind} name: {key!r}. A {kind} name must be a non-empty string.")
    if key == "":
        raise _invalid(f"Invalid {kind} name: ''. A {kind} name must be a non-empty string.")
    if len(key) > limits.MAX_ENTITY_KEY_LENGTH:
        raise _invalid(
            f"Invalid {kind} name: '{key[:100]}...' is {len(key)} characters long; the limit is "
            f"{limits.MAX_ENTITY_KEY_LENGTH}."
        )
    if not _KEY_CHARS.match(key):
        raise _invalid(f"Invalid {kind} name: '{key}'. {_KEY_CHARS_MESSAGE}")
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise _invalid(
            f"Invalid {kind} name: '{key}'. Names may be treated as files in certain cases, and must "
            f"not resolve to other names when treated as such. This name would resolve to '{norm}'."
        )
    return key


def _validate_int64(value: Any, what: str, key: str, *, non_negative: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _invalid(f"Invalid {what} for metric '{key}': {value!r}. It must be a 64-bit integer.")
    as_int = int(value)
    if not _INT64_MIN <= as_int <= _INT64_MAX or (non_negative and as_int < 0):
        sign = "nonnegative " if non_negative else ""
        raise _invalid(f"Invalid {what} for metric '{key}': {value!r}. It must be a {sign}64-bit integer.")
    return as_int


def validate_int64(value: Any, name: str) -> int:
    """An integer bound for a BIGINT column (start_time, end_time...): beyond 64 bits SQLite's
    driver raises OverflowError and PostgreSQL a DataError, so refuse it first, alike on both."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _invalid(f"Invalid value {value!r} for parameter '{name}': it must be a 64-bit integer.")
    as_int = int(value)
    if not _INT64_MIN <= as_int <= _INT64_MAX:
        raise _invalid(f"Invalid value {value!r} for parameter '{name}': it must be a 64-bit integer.")
    return as_int


def check_encodable(value: str, what: str) -> str:
    """A string the stores can write: UTF-8 encodable, i.e. without lone surrogates ("\\ud800"),
    which JSON escapes can carry and Python strings can hold but no database text column can."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _invalid(
                f"Invalid value for {what}: it contains a lone surrogate at character {exc.start + 1}; "
                "strings must be valid Unicode."
            ) from None
    return value


def validate_metric(metric: Metric) -> Metric:
    """Key rules, a real number value (NaN and +-inf allowed, bool refused), int64 timestamp/step."""
    validate_key(metric.key, "metric")
    value = metric.value
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real) or _overflows(value):
        raise _invalid(
            f"Invalid value {value!r} for metric '{metric.key}'. Please specify value as a valid double "
            "(64-bit floating point)."
        )
    _validate_int64(metric.timestamp, "timestamp", metric.key, non_negative=True)
    _validate_int64(metric.step, "step", metric.key)
    return metric


def _overflows(value: numbers.Real) -> bool:
    """An integer too large for a double (`float(10**400)` raises)."""
    try:
        float(value)
    except OverflowError:
        return True
    return False


def is_plain_double(value: Any) -> bool:
    """A float, or an int that converts to a finite double: the common case, checked by exact type
    (bool is not a number here), without the ABC isinstance checks the general case needs."""
    return type(value) is float or (type(value) is int and -_FLOAT_INT_MAX <= value <= _FLOAT_INT_MAX)


def _is_plain_metric(metric: Metric) -> bool:
    """The shape nearly every metric has (a plain double, int step and timestamp in range)."""
    timestamp, step = metric.timestamp, metric.step
    return (
        is_plain_double(metric.value)
        and type(timestamp) is int
        and type(step) is int
        and 0 <= timestamp <= _INT64_MAX
        and _INT64_MIN <= step <= _INT64_MAX
    )


def validate_metrics(metrics: Sequence[Metric], valid_keys: set[str] | None = None) -> None:
    """`validate_metric` for each metric, in order, at a fraction of the cost for a big batch: a key
    is checked once per batch (a 1,000-metric batch usually has a handful; `valid_keys` carries the
    keys already checked across calls, the runs of one import), and plain values take a fast path.
    The first invalid metric raises the same error `validate_metric` gives."""
    if valid_keys is None:
        valid_keys = set()
    for metric in metrics:
        key = metric.key
        if type(key) is str and key in valid_keys and _is_plain_metric(metric):
            continue
        validate_metric(metric)
        valid_keys.add(key)


def validate_param(param: Param) -> Param:
    validate_key(param.key, "param")
    validate_string_value(param.value, f"param '{param.key}'", limits.MAX_PARAM_VALUE_LENGTH)
    return param


def validate_tag(tag: RunTag) -> RunTag:
    validate_key(tag.key, "tag")
    validate_string_value(tag.value, f"tag '{tag.key}'", limits.MAX_TAG_VALUE_LENGTH)
    return tag


def validate_experiment_tag(key: Any, value: Any) -> None:
    validate_key(key, "tag")
    validate_string_value(value, f"experiment tag '{key}'", limits.MAX_EXPERIMENT_TAG_VALUE_LENGTH)


def validate_string_value(value: Any, what: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise _invalid(f"Invalid value for {what}: {value!r}. It must be a string.")
    if len(value) > max_length:
        raise _invalid(
            f"Value for {what} is {len(value)} characters long, which exceeds the maximum length of "
            f"{max_length}."
        )
    return check_encodable(value, what)


def validate_batch_limits(metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]) -> None:
    """MLflow's per-request caps on log-batch (each kind, and all kinds together)."""
    checks = (
        ("metrics", len(metrics), limits.MAX_METRICS_PER_BATCH),
        ("params", len(params), limits.MAX_PARAMS_PER_BATCH),
        ("tags", len(tags), limits.MAX_TAGS_PER_BATCH),
    )
    for kind, count, limit in checks:
        if count > limit:
            raise _invalid(
                f"A batch logging request can contain at most {limit} {kind}. Got {count} {kind}. "
                "Please split up the request into multiple requests."
            )
    total = len(metrics) + len(params) + len(tags)
    if total > limits.MAX_ENTITIES_PER_BATCH:
        raise _invalid(
            f"A batch logging request can contain at most {limits.MAX_ENTITIES_PER_BATCH} metrics, params "
            f"and tags in total. Got {total}. Please split up the request into multiple requests."
        )


def validate_batch(metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]) -> None:
    """Everything that can be checked without the database, for a whole log-batch request.

    The same param key twice in one batch with different values is refused; an exact repeat is
    harmless (a retried client may send one).
    """
    validate_batch_limits(metrics, params, tags)
    validate_metrics(metrics)
    seen: dict[str, str] = {}
    for param in params:
        validate_param(param)
        previous = seen.setdefault(param.key, param.value)
        if previous != param.value:
            raise _invalid(
                f"Duplicate parameter keys have been submitted: ['{param.key}'] with different values "
                f"('{previous}' and '{param.value}'). Please ensure the request contains only one "
                "param value per param key."
            )
    for tag in tags:
        validate_tag(tag)


def validate_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or name.strip() == "":
        raise _invalid(f"Invalid experiment name: {name!r}. An experiment name must be a non-empty string.")
    if len(name) > limits.MAX_EXPERIMENT_NAME_LENGTH:
        raise _invalid(
            f"Experiment name is {len(name)} characters long, which exceeds the maximum length of "
            f"{limits.MAX_EXPERIMENT_NAME_LENGTH}."
        )
    return check_encodable(name, "experiment name")


def validate_run_name(name: Any) -> str:
    if not isinstance(name, str):
        raise _invalid(f"Invalid run name: {name!r}. A run name must be a string.")
    if len(name) > limits.MAX_RUN_NAME_LENGTH:
        raise _invalid(
            f"Run name is {len(name)} characters long, which exceeds the maximum length of "
            f"{limits.MAX_RUN_NAME_LENGTH}."
        )
    return check_encodable(name, "run name")


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise _invalid(f"Invalid value {run_id!r} for parameter 'run_id' supplied.")
    return run_id


def is_experiment_id(experiment_id: Any) -> bool:
    """Experiment ids are decimal integers on the wire (strings); anything else names nothing."""
    return (
        isinstance(experiment_id, str | int)
        and not isinstance(experiment_id, bool)
        and bool(_EXPERIMENT_ID.match(str(experiment_id)))
    )


def validate_max_results(max_results: Any, limit: int, what: str = "max_results") -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, numbers.Integral) or max_results < 1:
        raise _invalid(
            f"Invalid value {max_results!r} for parameter '{what}': it must be a positive integer."
        )
    if max_results > limit:
        raise _invalid(
            f"Invalid value {max_results} for parameter '{what}' supplied. It must be at most {limit}."
        )
    return int(max_results)
