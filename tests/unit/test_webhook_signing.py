"""Webhook signatures and retry backoff: pure logic (the end-to-end checks are in
tests/integration/test_webhooks.py)."""

from __future__ import annotations

import hashlib
import hmac

from modelyard.store.webhooks.deliveries import MAX_BACKOFF_MS, backoff_ms
from modelyard.webhooks import signing

BODY = b'{"kind":"run.finished"}'


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    headers = signing.headers("secret-0123456789", BODY, "run.finished", 7, now=1_700_000_000)
    expected = hmac.new(b"secret-0123456789", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers[signing.SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[signing.TIMESTAMP_HEADER] == "1700000000"
    assert (headers[signing.EVENT_HEADER], headers[signing.DELIVERY_HEADER]) == ("run.finished", "7")


def test_verify_refuses_tampering_other_keys_and_old_or_future_timestamps() -> None:
    headers = signing.headers("secret-0123456789", BODY, "run.finished", 1, now=1_000_000)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert signing.verify("secret-0123456789", lowered, BODY, now=1_000_000 + 300)
    assert not signing.verify("secret-0123456789", headers, BODY, now=1_000_000 + 301)
    assert not signing.verify("secret-0123456789", headers, BODY, now=1_000_000 - 301)
    assert not signing.verify("secret-0123456789", headers, BODY + b" ", now=1_000_000)
    assert not signing.verify("another-secret-xyz", headers, BODY, now=1_000_000)
    assert not signing.verify("secret-0123456789", {**headers, signing.TIMESTAMP_HEADER: "1000001"}, BODY, now=1_000_000)
    assert not signing.verify("secret-0123456789", {}, BODY, now=1_000_000)


def test_backoff_doubles_from_the_base_up_to_an_hour() -> None:
    assert [backoff_ms(n, 10) for n in (1, 2, 3, 4)] == [10_000, 20_000, 40_000, 80_000]
    assert backoff_ms(30, 10) == MAX_BACKOFF_MS
