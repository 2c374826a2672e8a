"""Opaque page tokens: URL-safe base64 of `{"offset": N, "query": <fingerprint>}`.

The fingerprint is a hash of everything that defines the result order (search kind, experiments,
filter, view type, order_by), so a token handed back with a different query is refused instead of
silently skipping or repeating rows. The page size is not part of it: changing max_results between
pages is legitimate with offset paging (MLflow allows it too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from modelyard.exceptions import ModelyardException

T = TypeVar("T")

# OFFSET must fit a BIGINT; no real result set comes near this.
MAX_OFFSET = 2**53


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
    if payload.get("query") != fingerprint:
        raise ModelyardException.invalid_parameter(
            f"Invalid page token '{_clip(token)}': it belongs to a different search (filter, "
            "order_by, view type or experiments changed). Start again without a page token."
        )
    return offset


def next_page(
    rows: Sequence[T], max_results: int, offset: int, fingerprint: str
) -> tuple[list[T], str | None]:
    """Given up to max_results + 1 rows fetched at `offset`, the page and the next page's token."""
    if len(rows) > max_results:
        return list(rows[:max_results]), encode_page_token(offset + max_results, fingerprint)
    return list(rows), None


def _decode(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > 1024:
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(str(token))}'.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}'.") from None
    if not isinstance(payload, dict):
        raise ModelyardException.invalid_parameter(f"Invalid page token '{_clip(token)}'.")
    return payload


def _clip(token: str) -> str:
    return token if len(token) <= 64 else token[:61] + "..."
