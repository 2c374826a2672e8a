"""Page tokens: opaque, tied to the query that produced them, and strict about garbage."""

from __future__ import annotations

import base64
import json

import pytest

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.store.search.paging import (
    MAX_OFFSET,
    MAX_TOKEN_CHARS,
    Position,
    decode_page_token,
    decode_position,
    encode_keyset_token,
    encode_page_token,
    next_keyset_page,
    next_page,
    query_fingerprint,
)

FP = query_fingerprint("runs", [1, 2], "metrics.a > 1", 1, ["metrics.a DESC"])


def raw_token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def assert_invalid(token: str, fingerprint: str = FP, match: str = "Invalid page token") -> None:
    with pytest.raises(ModelyardException, match=match) as info:
        decode_page_token(token, fingerprint)
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert info.value.http_status == 400


@pytest.mark.parametrize("offset", [0, 1, 100, 49999, MAX_OFFSET])
def test_round_trip(offset: int) -> None:
    token = encode_page_token(offset, FP)
    assert decode_page_token(token, FP) == offset
    # URL-safe: a GET query string carries it unchanged.
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_the_first_page(token: str | None) -> None:
    assert decode_page_token(token, FP) == 0


def test_token_with_padding_is_accepted() -> None:
    token = encode_page_token(7, FP)
    assert decode_page_token(token + "=" * (-len(token) % 4), FP) == 7


def test_token_from_another_query_is_refused() -> None:
    other = query_fingerprint("runs", [1, 2], "metrics.a > 2", 1, ["metrics.a DESC"])
    assert_invalid(encode_page_token(10, other), match="belongs to a different search")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "%%%%",
        "bm90IGpzb24",  # "not json"
        raw_token([1, 2]),
        raw_token("offset"),
        raw_token({"query": FP}),
        raw_token({"offset": -1, "query": FP}),
        raw_token({"offset": "10", "query": FP}),
        raw_token({"offset": 1.5, "query": FP}),
        raw_token({"offset": True, "query": FP}),
        raw_token({"offset": MAX_OFFSET + 1, "query": FP}),
        raw_token({"offset": 10}),  # MLflow's own token shape: no fingerprint
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
        "A" * 5000,
    ],
)
def test_garbage_tokens_are_refused(token: str) -> None:
    assert_invalid(token)


def test_error_message_clips_long_tokens() -> None:
    with pytest.raises(ModelyardException) as info:
        decode_page_token("B" * 900, FP)
    assert len(info.value.message) < 200


def test_fingerprint_is_stable_and_sensitive() -> None:
    assert FP == query_fingerprint("runs", [1, 2], "metrics.a > 1", 1, ["metrics.a DESC"])
    variants = [
        query_fingerprint("experiments", [1, 2], "metrics.a > 1", 1, ["metrics.a DESC"]),
        query_fingerprint("runs", [1], "metrics.a > 1", 1, ["metrics.a DESC"]),
        query_fingerprint("runs", [1, 2], "metrics.a > 1", 3, ["metrics.a DESC"]),
        query_fingerprint("runs", [1, 2], "metrics.a > 1", 1, ["metrics.a ASC"]),
        query_fingerprint("runs", [1, 2], "metrics.a > 1", 1, []),
    ]
    assert len({FP, *variants}) == len(variants) + 1


def test_next_page_uses_the_extra_row_to_detect_more() -> None:
    page, token = next_page(list(range(11)), 10, 20, FP)
    assert page == list(range(10))
    assert token is not None and decode_page_token(token, FP) == 30
    page, token = next_page(list(range(10)), 10, 20, FP)
    assert page == list(range(10)) and token is None
    assert next_page([], 10, 0, FP) == ([], None)


# ---- keyset tokens --------------------------------------------------------------------------------
TYPES = ("int", "float?", "str?", "str")


@pytest.mark.parametrize(
    "after",
    [
        [0, 0.5, "x", "run"],
        [2, None, None, "run"],
        [-(2**63), float("inf"), "y" * 20000, ""],
        [1, float("-inf"), "ü", "r"],
        [1, 3, "a", "r"],  # an integral float may travel as an int
    ],
)
def test_keyset_round_trip(after: list[object]) -> None:
    token = encode_keyset_token(after, FP)
    assert len(token) <= MAX_TOKEN_CHARS
    position = decode_position(token, FP, TYPES)
    assert position.offset == 0 and position.after == tuple(after)
    assert type(position.after[1]) in (float, type(None))


def test_keyset_readers_accept_offset_tokens_and_nothing() -> None:
    assert decode_position(encode_page_token(30, FP), FP, TYPES) == Position(offset=30)
    assert decode_position(None, FP, TYPES) == Position()
    assert decode_position("", FP, TYPES) == Position()


@pytest.mark.parametrize(
    "payload",
    [
        {"after": [0, 0.5, "x"], "query": FP},
        {"after": [0, 0.5, "x", "r", 1], "query": FP},
        {"after": "0,0.5", "query": FP},
        {"after": [True, 0.5, "x", "r"], "query": FP},
        {"after": [0.5, 0.5, "x", "r"], "query": FP},
        {"after": [None, 0.5, "x", "r"], "query": FP},
        {"after": [0, "0.5", "x", "r"], "query": FP},
        {"after": [0, 0.5, 1, "r"], "query": FP},
        {"after": [0, 0.5, "x", None], "query": FP},
        {"after": [2**63, 0.5, "x", "r"], "query": FP},
        {"after": [0, 0.5, "x", "r"]},
        {"after": [0, 0.5, "x", "r"], "query": "another"},
    ],
)
def test_bad_keyset_tokens_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(ModelyardException, match="Invalid page token") as info:
        decode_position(raw_token(payload), FP, TYPES)
    assert info.value.http_status == 400


def test_nan_in_a_keyset_token_is_refused() -> None:
    token = base64.urlsafe_b64encode(b'{"after":[0,NaN,"x","r"],"query":"' + FP.encode() + b'"}').decode()
    with pytest.raises(ModelyardException, match="bad sort key"):
        decode_position(token, FP, TYPES)


def test_next_keyset_page_tokens_the_last_row_of_the_page() -> None:
    rows = [(i, f"r{i}") for i in range(4)]
    page, token = next_keyset_page(rows, 3, FP, lambda row: [row[0], 0.0, None, row[1]])
    assert page == rows[:3] and token is not None
    assert decode_position(token, FP, TYPES).after == (2, 0.0, None, "r2")
    assert next_keyset_page(rows, 4, FP, lambda row: []) == (rows, None)


def test_a_token_nested_deeper_than_the_parser_goes_is_invalid_not_a_crash() -> None:
    """`json.loads` raises RecursionError (not ValueError) past ~1,000 levels: it was a 500."""
    assert_invalid(base64.urlsafe_b64encode(b"[" * 5000).decode())
    assert_invalid(base64.urlsafe_b64encode(b'{"a":' * 3000).decode())
