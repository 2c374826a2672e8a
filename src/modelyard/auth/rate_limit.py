"""Failed sign-ins, limited per user name and per client address: a clear 429, in MLflow's error shape.

Counted in the database (`auth_login_failures`), so the limit holds across workers and replicas. A
request is checked before its password is verified, and only when its credential is not already in
the worker's cache of verified credentials: a client that signed in keeps working while someone
else guesses its password.

Per key ("user:<name>", "addr:<ip>"): failures are counted in a window of `failed_login_window_seconds`
from the first one; the `max_failed_logins`-th failure (`..._per_address` for an address) locks the
key for `lockout_seconds` from that moment. While locked, every attempt (the right password too) is
answered 429 with Retry-After, without checking the password; then the count starts again.
"""

from __future__ import annotations

import time

from modelyard import errors
from modelyard.auth.context import AuthContext
from modelyard.exceptions import ModelyardException


class TooManyAttempts(ModelyardException):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-in attempts; try again in {retry_after} seconds.", errors.REQUEST_LIMIT_EXCEEDED
        )
        self.retry_after = retry_after


def _limits(ctx: AuthContext, username: str, address: str | None) -> dict[str, int]:
    limits = {f"user:{username[:256]}": ctx.config.max_failed_logins}
    if address:
        limits[f"addr:{address}"] = ctx.config.max_failed_logins_per_address
    return limits


def _now_ms() -> int:
    return int(time.time() * 1000)


def check(ctx: AuthContext, username: str, address: str | None) -> None:
    """Raise `TooManyAttempts` while this user name or address is locked out."""
    limits = _limits(ctx, username, address)
    now, lockout_ms = _now_ms(), ctx.config.lockout_seconds * 1000
    for key, (start, count) in ctx.store.failures(list(limits)).items():
        if count >= limits[key] and now < start + lockout_ms:
            raise TooManyAttempts(max(1, (start + lockout_ms - now + 999) // 1000))


def failed(ctx: AuthContext, username: str, address: str | None) -> None:
    limits = _limits(ctx, username, address)
    now = _now_ms()
    window_ms, lockout_ms = ctx.config.failed_login_window_seconds * 1000, ctx.config.lockout_seconds * 1000
    for key, limit in limits.items():

        def step(row: tuple[int, int] | None, limit: int = limit) -> tuple[int, int]:
            if row is None:
                return (now, 1)
            start, count = row
            expired = now >= start + (lockout_ms if count >= limit else window_ms)
            if expired:
                return (now, 1)
            count += 1
            return (now, count) if count >= limit else (start, count)  # a lockout runs from now

        ctx.store.add_failure([key], step)
