"""Personal access tokens: made by their owner (or an admin), shown once, stored as a SHA-256.

A token is `myt_` followed by 43 URL-safe characters (256 random bits). It is sent as a bearer token
(`Authorization: Bearer ...`, what the mlflow client sends from MLFLOW_TRACKING_TOKEN) or as the
password of basic auth with its owner's name. A hash of such a secret needs no slow hash: nobody can
guess 256 bits, so the SHA-256 is looked up directly. Tokens may expire; revoking one is immediate on
every worker of the instance (see `modelyard.auth.cache`).
"""

from __future__ import annotations

import hashlib
import secrets

from modelyard.auth.context import AuthContext
from modelyard.entities.auth import Actor, Token, User
from modelyard.exceptions import ModelyardException
from modelyard.store.auth.audit import now_ms

PREFIX = "myt_"
MAX_NAME_CHARS = 256
#: Seconds between two writes of a token's last-used time (reading it does not need more precision).
LAST_USED_RESOLUTION_MS = 60_000


def looks_like_token(secret: str) -> bool:
    return secret.startswith(PREFIX) and len(secret) == len(PREFIX) + 43


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create(ctx: AuthContext, user: User, name: str, by: Actor, expiry_time: int | None = None) -> Token:
    """A new token for `user`; the returned `Token.secret` is the only copy there will ever be."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ModelyardException.invalid_parameter(
            f"name must be a string of 1 to {MAX_NAME_CHARS} characters."
        )
    if expiry_time is not None and expiry_time <= now_ms():
        raise ModelyardException.invalid_parameter(
            "expiry_time must be in the future (milliseconds since the epoch)."
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    return ctx.store.insert_token(secrets.token_hex(8), user, name, digest(secret), expiry_time, secret, by)


def verify(ctx: AuthContext, secret: str) -> tuple[Token, User] | None:
    """The token and its owner, when the token exists, is not revoked and has not expired."""
    if not looks_like_token(secret):
        return None
    found = ctx.store.find_token(digest(secret))
    if found is None or not found[0].active(now_ms()):
        return None
    token, user = found
    now = now_ms()
    if token.last_used_time is None or now - token.last_used_time > LAST_USED_RESOLUTION_MS:
        ctx.store.touch_token(token.token_id, now)
    return token, user


def still_active(ctx: AuthContext, token_id: str) -> bool:
    """The cheap re-check of a cached token: one primary-key read."""
    token = ctx.store.get_token(token_id)
    return token is not None and token.active(now_ms())


def list_for(ctx: AuthContext, user: User | None) -> list[Token]:
    """One user's tokens, or every token (`user` None: admins)."""
    return ctx.store.list_tokens(user.user_id if user is not None else None)


def revoke(ctx: AuthContext, token_id: str, by: Actor) -> None:
    ctx.store.revoke_token(token_id, by)
