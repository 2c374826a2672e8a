"""Failed sign-ins, limited per user name and per client address: a clear 429, in MLflow's error shape.

Counted in the database (`auth_login_failures`), so the limit holds across workers and replicas. A
request is checked before its password is verified, and only when its credential is not already in
the worker's cache of verified credentials: a client that signed in keeps working while someone
else guesses its password. After `max_failed_logins` failures for a user name (or
`max_failed_logins_per_address` from one address) within `lockout_seconds`, every attempt is
answered 429 until that window ends; then the right password works again.
"""

from __future__ import annotations

import time

from modelyard.auth.context import AuthContext
from modelyard.exceptions import ModelyardException
from modelyard.protocol import errors


class TooManyAttempts(ModelyardException):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-in attempts; try again in {retry_after} seconds.", errors.REQUEST_LIMIT_EXCEEDED
        )
        self.retry_after = retry_after


def _keys(username: str, address: str | None) -> list[str]:
    keys = [f"user:{username[:256]}"]
    if address:
        keys.append(f"addr:{address}")
    return keys


def check(ctx: AuthContext, username: str, address: str | None) -> None:
    """Raise `TooManyAttempts` while this user name or address is locked out."""
    config = ctx.config
    now = int(time.time() * 1000)
    window_start = now - config.lockout_seconds * 1000
    counts = ctx.store.failures(_keys(username, address), window_start)
    over_user = counts.get(f"user:{username[:256]}", 0) >= config.max_failed_logins
    over_address = address is not None and counts.get(f"addr:{address}", 0) >= config.max_failed_logins_per_address
    if over_user or over_address:
        raise TooManyAttempts(config.lockout_seconds)


def failed(ctx: AuthContext, username: str, address: str | None) -> None:
    now = int(time.time() * 1000)
    ctx.store.add_failure(_keys(username, address), now, now - ctx.config.lockout_seconds * 1000)
