"""Signing webhook payloads, and the verification a receiver does (documented in docs/operations.md).

Each attempt carries `X-Modelyard-Timestamp` (Unix seconds when it was sent) and
`X-Modelyard-Signature: sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of
`f"{timestamp}.{body}"` (the raw body bytes). Signing the timestamp with the body lets a receiver
refuse a captured request replayed later: it checks the signature, then that the timestamp is within
its tolerance (5 minutes by default) of its own clock. Standard library only, so a receiver can use
`verify` from a bare `pip install modelyard`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Modelyard-Timestamp"
SIGNATURE_HEADER = "X-Modelyard-Signature"
EVENT_HEADER = "X-Modelyard-Event"
DELIVERY_HEADER = "X-Modelyard-Delivery"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(secret: str, body: bytes, kind: str, delivery_id: int | str, now: float | None = None) -> dict[str, str]:
    """The headers of one attempt (a retry gets a fresh timestamp and signature, same delivery id)."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: kind,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    request_headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when `body` was signed with `secret` within `tolerance_seconds` of now (the receiver's
    check). `request_headers` is looked up case-insensitively."""
    lowered = {k.lower(): v for k, v in request_headers.items()}
    raw_timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not raw_timestamp.isdigit() or not given:
        return False
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)
