"""The request-parsing layer: MLflow's proto-JSON leniencies accepted, everything else a named 400."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from starlette.requests import Request

from modelyard import errors
from modelyard.entities import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import (
    QueryArgs,
    get_bool,
    get_int,
    get_key_values,
    get_list,
    get_object_list,
    get_page_size,
    get_str,
    get_str_list,
    get_view_type,
    read_args,
    read_body,
    require_float,
    require_int,
    require_run_id,
    require_str,
)


def make_request(
    method: str = "POST", body: bytes = b"", query: str = "", content_type: str | None = "application/json"
) -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    scope = {
        "type": "http",
        "method": method,
        "path": "/api/2.0/mlflow/x",
        "query_string": query.encode(),
        "headers": headers,
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def parse(**kwargs: Any) -> Any:
    return asyncio.run(read_args(make_request(**kwargs)))


def assert_invalid(exc_info: pytest.ExceptionInfo[ModelyardException], *fragments: str) -> None:
    assert exc_info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert exc_info.value.http_status == 400
    for fragment in fragments:
        assert fragment in exc_info.value.message


# --- reading ---------------------------------------------------------------------------------------
def test_json_body_is_read_as_a_dict() -> None:
    assert parse(body=b'{"name": "exp", "tags": [{"key": "a", "value": "b"}]}') == {
        "name": "exp",
        "tags": [{"key": "a", "value": "b"}],
    }


def test_empty_body_means_no_parameters() -> None:
    assert parse(body=b"") == {}
    assert parse(body=b"  \n") == {}


def test_bare_nan_and_infinity_tokens_are_accepted() -> None:
    # Read as proto JSON's strings for them, which the number getters take.
    body = parse(body=b'{"value": NaN, "other": -Infinity, "text": "NaN Infinity"}')
    assert math.isnan(require_float(body, "value")) and require_float(body, "other") == -math.inf
    assert body["text"] == "NaN Infinity"


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_json_nested_too_deep_is_a_400_without_recursing(depth: int) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"a": NaN, "b": ' + b"[" * depth + b"]" * depth + b"}"):
        with pytest.raises(ModelyardException) as exc_info:
            parse(body=body)
        assert exc_info.value.http_status == 400


def test_a_body_over_the_size_limit_is_refused_before_it_is_read() -> None:
    request = make_request(body=b"{}")
    request.scope["headers"].append((b"content-length", b"999999999999"))
    with pytest.raises(ModelyardException) as exc_info:
        asyncio.run(read_json_limited(request, 1000))
    assert_invalid(exc_info, "999999999999 bytes", "limit of 1000", "MODELYARD_MAX_REQUEST_BODY_BYTES")
    streamed = make_request(body=b'{"a": "' + b"x" * 2000 + b'"}')
    with pytest.raises(ModelyardException) as exc_info:
        asyncio.run(read_json_limited(streamed, 1000))
    assert_invalid(exc_info, "at least", "limit of 1000")


async def read_json_limited(request: Request, limit: int) -> bytes:
    return await read_body(request, limit)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, str(2**64), 1e30])
def test_integers_beyond_64_bits_are_refused(value: Any) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        require_int({"start_time": value}, "start_time")
    assert_invalid(exc_info, "'start_time'", "64-bit integer")


def test_an_invalid_value_is_shown_cut_short() -> None:
    with pytest.raises(ModelyardException) as exc_info:
        require_str({"name": [[[["x" * 100_000]]]]}, "name")
    assert len(exc_info.value.message) < 400


def test_double_encoded_json_is_decoded_like_mlflow_does() -> None:
    assert parse(body=b'"{\\"name\\": \\"exp\\"}"') == {"name": "exp"}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"a": 1',
        b"\xff\xfe",
        # lone surrogates, which no store can encode: escaped, escaped next to a bare NaN, raw
        b'{"name": "\\ud800"}',
        b'{"name": "\\udfff x", "v": NaN}',
        b'{"n": "\xed\xa0\x80"}',
    ],
)
def test_malformed_json_is_a_malformed_request(body: bytes) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        parse(body=body)
    assert exc_info.value.error_code == errors.MALFORMED_REQUEST
    assert exc_info.value.http_status == 400


@pytest.mark.parametrize("body", [b"[1, 2]", b"3", b"null"])
def test_a_body_that_is_not_an_object_is_a_malformed_request(body: bytes) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        parse(body=body)
    assert exc_info.value.error_code == errors.MALFORMED_REQUEST


def test_non_json_content_type_is_rejected() -> None:
    with pytest.raises(ModelyardException) as exc_info:
        parse(body=b"name=x", content_type="application/x-www-form-urlencoded")
    assert_invalid(exc_info, "Content-Type")


def test_missing_content_type_and_charset_parameter_are_accepted() -> None:
    assert parse(body=b'{"a": "b"}', content_type=None) == {"a": "b"}
    assert parse(body=b'{"a": "b"}', content_type="application/json; charset=utf-8") == {"a": "b"}


def test_get_reads_the_query_string_with_repeated_keys_as_lists() -> None:
    args = parse(method="GET", query="experiment_ids=1&experiment_ids=2&max_results=5", content_type=None)
    assert isinstance(args, QueryArgs)
    assert get_str_list(args, "experiment_ids") == ["1", "2"]
    assert get_int(args, "max_results") == 5


def test_get_without_query_string_falls_back_to_a_json_body() -> None:
    assert parse(method="GET", body=b'{"run_id": "r"}') == {"run_id": "r"}


# --- getters ---------------------------------------------------------------------------------------
def test_required_string_missing_uses_mlflows_wording() -> None:
    with pytest.raises(ModelyardException) as exc_info:
        require_str({}, "name")
    assert_invalid(exc_info, "Missing value for required parameter 'name'")


def test_empty_string_counts_as_missing() -> None:
    with pytest.raises(ModelyardException) as exc_info:
        require_str({"name": ""}, "name")
    assert_invalid(exc_info, "'name'")


@pytest.mark.parametrize("value", [5, 1.5, ["a"], {"a": 1}, True])
def test_a_string_field_of_another_type_is_rejected_naming_the_field(value: Any) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        get_str({"name": value}, "name")
    assert_invalid(exc_info, "'name'", "a string")


def test_run_uuid_is_accepted_for_run_id() -> None:
    assert require_run_id({"run_uuid": "abc"}) == "abc"
    assert require_run_id({"run_id": "x", "run_uuid": "y"}) == "x"
    with pytest.raises(ModelyardException) as exc_info:
        require_run_id({})
    assert_invalid(exc_info, "'run_id'")


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7), ("7", 7), ("-3", -3), (7.0, 7), ("1700000000000", 1700000000000)]
)
def test_int64_fields_accept_numbers_and_decimal_strings(value: Any, expected: int) -> None:
    assert get_int({"n": value}, "n") == expected


@pytest.mark.parametrize("value", ["abc", "1.5", 1.5, True, [1], ""])
def test_int_fields_reject_non_integers(value: Any) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        get_int({"timestamp": value}, "timestamp")
    assert_invalid(exc_info, "'timestamp'", "an integer")


def test_required_int_missing() -> None:
    with pytest.raises(ModelyardException) as exc_info:
        require_int({}, "timestamp", prefix="metrics[2].")
    assert_invalid(exc_info, "Missing value for required parameter 'metrics[2].timestamp'")


@pytest.mark.parametrize(
    ("value", "check"),
    [
        (1, lambda v: v == 1.0),
        (2.5, lambda v: v == 2.5),
        ("2.5", lambda v: v == 2.5),
        ("NaN", math.isnan),
        ("Infinity", lambda v: v == math.inf),
        ("-Infinity", lambda v: v == -math.inf),
    ],
)
def test_double_fields_accept_numbers_and_proto_json_strings(value: Any, check: Any) -> None:
    assert check(require_float({"value": value}, "value"))


@pytest.mark.parametrize("value", ["abc", True, [1.0], {"v": 1}, 10**400, "1e999x"])
def test_double_fields_reject_other_values(value: Any) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        require_float({"value": value}, "value")
    assert_invalid(exc_info, "'value'", "a number")


def test_bool_fields() -> None:
    assert get_bool({}, "flag") is False
    assert get_bool({"flag": True}, "flag") is True
    assert get_bool(QueryArgs(flag=["true"]), "flag") is True
    assert get_bool(QueryArgs(flag=["False"]), "flag") is False
    with pytest.raises(ModelyardException):
        get_bool({"flag": "yes"}, "flag")


def test_lists_must_be_json_arrays_in_bodies() -> None:
    assert get_list({}, "order_by") == []
    assert get_str_list({"order_by": ["name DESC"]}, "order_by") == ["name DESC"]
    with pytest.raises(ModelyardException) as exc_info:
        get_str_list({"order_by": "name DESC"}, "order_by")
    assert_invalid(exc_info, "'order_by'", "a list")
    with pytest.raises(ModelyardException) as exc_info:
        get_str_list({"experiment_ids": ["1", 2]}, "experiment_ids")
    assert_invalid(exc_info, "'experiment_ids'")


def test_object_lists_reject_scalars() -> None:
    with pytest.raises(ModelyardException) as exc_info:
        get_object_list({"metrics": [1, 2]}, "metrics")
    assert_invalid(exc_info, "'metrics'", "objects")


def test_key_values_need_keys_and_string_values() -> None:
    assert get_key_values({"tags": [{"key": "a", "value": "1"}, {"key": "b"}]}, "tags") == [
        ("a", "1"),
        ("b", ""),
    ]
    with pytest.raises(ModelyardException) as exc_info:
        get_key_values({"tags": [{"value": "1"}]}, "tags")
    assert_invalid(exc_info, "'tags[0].key'")
    with pytest.raises(ModelyardException) as exc_info:
        get_key_values({"params": [{"key": "a", "value": 3}]}, "params")
    assert_invalid(exc_info, "'params[0].value'", "a string")


def test_view_type_by_name_or_number() -> None:
    assert get_view_type({}, "view_type") == ViewType.ACTIVE_ONLY
    assert get_view_type({"view_type": "ALL"}, "view_type") == ViewType.ALL
    assert get_view_type({"view_type": 2}, "view_type") == ViewType.DELETED_ONLY
    assert get_view_type(QueryArgs(view_type=["DELETED_ONLY"]), "view_type") == ViewType.DELETED_ONLY
    for bad in ("SOME", True, [1]):
        with pytest.raises(ModelyardException) as exc_info:
            get_view_type({"view_type": bad}, "view_type")
        assert exc_info.value.error_code == errors.INVALID_PARAMETER_VALUE


def test_page_size_defaults_and_bounds() -> None:
    assert get_page_size({}, "max_results", 1000, 50000) == 1000
    assert get_page_size({"max_results": "50000"}, "max_results", 1000, 50000) == 50000
    for bad in (0, -1, 50001):
        with pytest.raises(ModelyardException) as exc_info:
            get_page_size({"max_results": bad}, "max_results", 1000, 50000)
        assert_invalid(exc_info, "'max_results'")


@pytest.mark.parametrize(
    "message",
    [
        {"key": "m", "value": 0.5, "timestamp": 7, "step": 3},
        {"key": "m", "value": 2, "timestamp": 7},
        {"key": "m", "value": 2, "timestamp": 7, "step": None},
        {"key": "m", "value": "NaN", "timestamp": "7", "step": "3"},
        {"key": "m", "value": "-Infinity", "timestamp": 7.0, "step": 3},
    ],
)
def test_metric_messages_parse_alike_on_the_fast_and_general_paths(message: dict[str, Any]) -> None:
    from modelyard.tracking.routers.runs import parse_metric

    metric = parse_metric(message)
    general = (
        require_str(message, "key"),
        require_float(message, "value"),
        require_int(message, "timestamp"),
        get_int(message, "step", 0) or 0,
    )
    assert (metric.key, metric.timestamp, metric.step) == (general[0], general[2], general[3])
    assert metric.value == general[1] or (math.isnan(metric.value) and math.isnan(general[1]))
    assert type(metric.value) is float and type(metric.step) is int


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"key": "", "value": 1.0, "timestamp": 1}, "metrics[4].key"),
        ({"key": "m", "value": True, "timestamp": 1}, "metrics[4].value"),
        ({"key": "m", "value": 10**400, "timestamp": 1}, "metrics[4].value"),
        ({"key": "m", "value": 1.0}, "metrics[4].timestamp"),
        ({"key": "m", "value": 1.0, "timestamp": True}, "metrics[4].timestamp"),
        ({"key": "m", "value": 1.0, "timestamp": 1, "step": 1.5}, "metrics[4].step"),
    ],
)
def test_bad_metric_messages_name_the_field(message: dict[str, Any], field: str) -> None:
    from modelyard.tracking.routers.runs import parse_metric

    with pytest.raises(ModelyardException) as exc_info:
        parse_metric(message, "metrics[4].")
    assert exc_info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert f"'{field}'" in exc_info.value.message
