"""Opaque page tokens: URL-safe base64 of `{"offset": N, "query": <fingerprint>}` (offset paging)
or `{"after": [<sort key of the page's last row>], "query": <fingerprint>}` (keyset paging).

The fingerprint is a hash of everything that defines the result order (search kind, experiments,
filter, view type, order_by), so a token handed back with a different query is refused instead of
silently skipping or repeating rows. The page size is not part of it: changing max_results between
pages is legitimate (MLflow allows it too).

Keyset tokens (runs/search, metrics/get-history) carry the last row's full sort key, so the next
page is `WHERE (sort key) > after`: the database skips straight to it instead of re-reading every
earlier page (OFFSET), and rows inserted meanwhile neither repeat nor shift a row out of sight.
Readers of keyset tokens still accept offset tokens, so a client paging through a rolling upgrade
keeps going. A keyset token holds sort values (a tag value may be 8,000 characters), so tokens may be
longer than offset tokens; they stay below MAX_TOKEN_CHARS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from modelyard.exceptions import ModelyardException
from modelyard.protocol import text_parsing

T = TypeVar("T")

# OFFSET must fit a BIGINT; no real result set comes near this.
MAX_OFFSET = 2**53
#: Long enough for a keyset token over a few 8,000-character sort values.
MAX_TOKEN_CHARS = 65536
_INT64 = 2**63

#: Types of the values in a keyset token's sort key, checked when a token comes back (a forged token
#: must be a 400, never a database error): "int" (BIGINT), "float" (DOUBLE, +-Infinity allowed),
#: "str"; a trailing "?" allows None (NULL).
KeyType = str


@dataclass(frozen=True)
class Position:
    """Where a page starts: after the row whose sort key is `after`, or at `offset` rows."""

    offset: int = 0
    after: tuple[Any, ...] | None = None


def query_fingerprint(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def encode_page_token(offset: int, fingerprint: str) -> str:
    payload = json.dumps({"offset": offset, "query": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")


def decode_page_token(token: str | None, fingerprint: str) -> int:
    """The offset a token points at (0 for no token); INVALID_PARAMETER_VALUE for a token that is
    malformed or belongs to another query."""
    if token is None or token == "":
        return 0
    payload = _decode(token)
    offset = payload.get("offset")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}': bad offset.")
    _check_query(payload, token, fingerprint)
    return offset


def encode_keyset_token(after: Sequence[Any], fingerprint: str) -> str:
    payload = json.dumps({"after": list(after), "query": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")


def decode_position(token: str | None, fingerprint: str, key_types: Sequence[KeyType]) -> Position:
    """The start of the page a keyset (or older offset) token points at; INVALID_PARAMETER_VALUE for
    a token that is malformed, belongs to another query or whose sort key does not fit `key_types`."""
    if token is None or token == "":
        return Position()
    payload = _decode(token)
    if "after" not in payload:
        return Position(offset=decode_page_token(token, fingerprint))
    after = payload["after"]
    if not isinstance(after, list) or len(after) != len(key_types):
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}': bad sort key.")
    _check_query(payload, token, fingerprint)
    return Position(after=tuple(_key_value(v, t, token) for v, t in zip(after, key_types, strict=True)))


def next_keyset_page(
    rows: Sequence[T], max_results: int, fingerprint: str, sort_key: Any
) -> tuple[list[T], str | None]:
    """Given up to max_results + 1 rows, the page and the next page's keyset token, made from
    `sort_key(last row of the page)`."""
    if len(rows) > max_results:
        page = list(rows[:max_results])
        return page, encode_keyset_token(sort_key(page[-1]), fingerprint)
    return list(rows), None


def next_page(
    rows: Sequence[T], max_results: int, offset: int, fingerprint: str
) -> tuple[list[T], str | None]:
    """Given up to max_results + 1 rows fetched at `offset`, the page and the next page's token."""
    if len(rows) > max_results:
        return list(rows[:max_results]), encode_page_token(offset + max_results, fingerprint)
    return list(rows), None


def _decode(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(str(token))}'.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = text_parsing.loads_json(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}'.") from None
    if not isinstance(payload, dict):
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}'.")
    return payload


def _clip(token: str) -> str:
    return token if len(token) <= 64 else token[:61] + "..."


def _check_query(payload: dict[str, Any], token: str, fingerprint: str) -> None:
    if payload.get("query") != fingerprint:
        raise ModelyardException.invalid_parameter(
            f"Invalid page token '{_clip(token)}': it belongs to a different search (filter, "
            "order_by, view type or experiments changed). Start again without a page token."
        )


def _key_value(value: Any, key_type: KeyType, token: str) -> Any:
    kind, nullable = key_type.rstrip("?"), key_type.endswith("?")
    is_int = isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64
    if value is None and nullable:
        return None
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and is_int:
        return value
    if kind == "float" and (is_int or (isinstance(value, float) and not math.isnan(value))):
        return float(value)
    return _bad_key(token)


def _bad_key(token: str) -> Any:
    raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}': bad sort key.")
