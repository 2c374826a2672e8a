"""Page tokens: opaque, tied to the query that produced them, and strict about garbage."""

from __future__ import annotations

import base64
import json

import pytest

from modelyard.exceptions import ModelyardException
from modelyard.protocol import errors
from modelyard.store.search.paging import (
    MAX_OFFSET,
    decode_page_token,
    encode_page_token,
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
