"""Who is calling: the credential a request carries, checked (and cached) into an `Identity`.

In this order:
1. the trusted proxy's user header (single sign-on behind oauth2-proxy or an ingress' auth), honoured
   only when the request's peer address is in `MODELYARD_AUTH_TRUSTED_PROXIES`; anyone else's header
   is ignored. The user is created on first sight (no password; the default permission applies) and
   the proxy's groups header names their groups;
2. `Authorization: Basic` (what the mlflow client sends from MLFLOW_TRACKING_USERNAME/PASSWORD), with
   the user's password or one of their personal access tokens as the password;
3. `Authorization: Bearer <token>` (the mlflow client's MLFLOW_TRACKING_TOKEN);
4. the UI's session cookie (`modelyard.auth.sessions`).
No credential at all is anonymous (None); a wrong or unknown one is `Unauthenticated` (401).

Each verified credential is cached per worker under a digest of it (`modelyard.auth.cache`): fresh
for `MODELYARD_AUTH_CACHE_SECONDS`, then re-checked with one query (the password hash is unchanged,
the token is still active, the session still exists) before argon2 would ever run again.
Only `identify` awaits; the checks that query or hash run in the thread pool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from typing import Any

from starlette.concurrency import run_in_threadpool

from modelyard import errors
from modelyard.auth import accounts, rate_limit, sessions, tokens
from modelyard.auth.cache import credential_key
from modelyard.auth.context import AuthContext
from modelyard.auth.identity import BASIC, SESSION, SSO, TOKEN, Identity, client_address
from modelyard.entities.auth import SYSTEM, User
from modelyard.exceptions import ModelyardException
from modelyard.store.auth.users import validate_username

#: What MLflow's server answers a missing or wrong credential with.
UNAUTHENTICATED_MESSAGE = (
    "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html"
    "#authenticating-to-mlflow on how to authenticate."
)
MAX_GROUPS = 100


class Unauthenticated(ModelyardException):
    def __init__(self, message: str = UNAUTHENTICATED_MESSAGE) -> None:
        super().__init__(message, errors.UNAUTHENTICATED)


@dataclass(frozen=True)
class Proof:
    """A cached verification: the identity, and what its cheap re-check compares."""

    identity: Identity
    #: The password hash it was checked against, the token id, or the session digest.
    check: str | None


@dataclass(frozen=True)
class Credential:
    method: str
    username: str | None
    secret: str
    groups: tuple[str, ...] = ()

    def key(self) -> bytes:
        return credential_key(self.method, self.username or "", self.secret, *self.groups)


def credential_of(ctx: AuthContext, scope: dict[str, Any], headers: dict[bytes, bytes]) -> Credential | None:
    """The request's credential, unverified; None when it carries none. A malformed Authorization
    header is `Unauthenticated`."""
    config = ctx.config
    if config.trusted_proxies:
        user = headers.get(config.user_header.encode("latin-1"))
        if user and _from_trusted_proxy(ctx, scope):
            raw_groups = headers.get(config.groups_header.encode("latin-1"), b"").decode("utf-8", "replace")
            groups = tuple(sorted({g.strip() for g in raw_groups.split(",") if g.strip()}))[:MAX_GROUPS]
            return Credential(SSO, user.decode("utf-8", "replace").strip(), "", groups)
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, value = authorization.decode("latin-1").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
                raise Unauthenticated() from exc
            username, colon, password = decoded.partition(":")
            if not colon or not username:
                raise Unauthenticated()
            if tokens.looks_like_token(password):
                return Credential(TOKEN, username, password)
            return Credential(BASIC, username, password)
        if scheme == "bearer" and value.strip():
            return Credential(TOKEN, None, value.strip())
        raise Unauthenticated()
    cookie_header = headers.get(b"cookie")
    if cookie_header:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(cookie_header.decode("latin-1"))
        except Exception:  # noqa: BLE001 - an unparsable cookie header is no session
            return None
        morsel = cookie.get(sessions.COOKIE_NAME)
        if morsel is not None and morsel.value:
            return Credential(SESSION, None, morsel.value)
    return None


def _from_trusted_proxy(ctx: AuthContext, scope: dict[str, Any]) -> bool:
    address = client_address(scope)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in ctx.config.trusted_proxies)


def _raw_key(ctx: AuthContext, headers: dict[bytes, bytes]) -> bytes | None:
    """The cache key of a request's credential from its raw header, before any parsing: the common
    case (a cached Authorization header, no SSO proxy configured) costs one digest and one look-up."""
    if ctx.config.trusted_proxies:
        return None  # the proxy's headers take precedence: key on the parsed credential
    raw = headers.get(b"authorization") or headers.get(b"cookie")
    return hashlib.sha256(raw).digest() if raw is not None else None


async def identify(ctx: AuthContext, scope: dict[str, Any], headers: dict[bytes, bytes]) -> Identity | None:
    """The caller's identity; None when the request carries no credential."""
    key = _raw_key(ctx, headers)
    if key is not None:
        proof, fresh = ctx.credentials.get(key)
        if proof is not None and fresh:
            return proof.identity  # type: ignore[attr-defined, no-any-return]
    credential = credential_of(ctx, scope, headers)
    if credential is None:
        return None
    if key is None:
        key = credential.key()
    proof, fresh = ctx.credentials.get(key)
    if proof is not None and fresh:
        return proof.identity  # type: ignore[attr-defined, no-any-return]
    if proof is not None:
        renewed = await run_in_threadpool(_recheck, ctx, credential, proof)  # type: ignore[arg-type]
        if renewed is not None:
            ctx.credentials.put(key, renewed)
            return renewed.identity
        ctx.credentials.discard(key)
    verified = await run_in_threadpool(_verify, ctx, credential, client_address(scope))
    ctx.credentials.put(key, verified)
    return verified.identity


def _verify(ctx: AuthContext, credential: Credential, address: str | None) -> Proof:
    """The full check (the thread pool runs it): argon2 for a password, a look-up for the rest."""
    if credential.method == BASIC:
        username = credential.username or ""
        rate_limit.check(ctx, username, address)
        user = accounts.verify_password(ctx, username, credential.secret)
        if user is None:
            rate_limit.failed(ctx, username, address)
            raise Unauthenticated()
        return Proof(accounts.identity_of(ctx, user, BASIC), user.password_hash)
    if credential.method == TOKEN:
        found = tokens.verify(ctx, credential.secret)
        if found is None or (credential.username is not None and found[1].username != credential.username):
            raise Unauthenticated()
        token, user = found
        return Proof(accounts.identity_of(ctx, user, TOKEN, token.token_id), token.token_id)
    if credential.method == SESSION:
        user = sessions.verify(ctx, credential.secret)
        if user is None:
            raise Unauthenticated("Your session has ended; sign in again.")
        return Proof(accounts.identity_of(ctx, user, SESSION), None)
    return Proof(accounts.identity_of(ctx, _sso_user(ctx, credential.username or ""), SSO, sso_groups=credential.groups), None)


def _recheck(ctx: AuthContext, credential: Credential, proof: Proof) -> Proof | None:
    """The cheap re-validation of a cached proof: one or two queries, no hashing. None: verify again."""
    identity = proof.identity
    if credential.method == TOKEN:
        if not tokens.still_active(ctx, proof.check or ""):
            return None
        user = ctx.store.get_user_by_id(identity.user_id)
    elif credential.method == SESSION:
        user = sessions.verify(ctx, credential.secret)
    else:
        user = ctx.store.get_user_by_id(identity.user_id)
    if user is None or user.username != identity.username:
        return None
    if credential.method == BASIC and user.password_hash != proof.check:
        return None
    fresh = accounts.identity_of(ctx, user, identity.method, identity.token_id, credential.groups)
    return replace(proof, identity=fresh)


def _sso_user(ctx: AuthContext, username: str) -> User:
    """The proxy's user, created on first sight (no password: it signs in through the proxy only)."""
    try:
        validate_username(username)
    except ModelyardException as exc:
        raise Unauthenticated(f"The sign-in proxy sent an unusable user name: {exc.message}") from exc
    user = ctx.store.get_user(username)
    if user is not None:
        return user
    try:
        return accounts.create_user(ctx, username, None, SYSTEM, kind=accounts.SSO)
    except ModelyardException:  # created by a concurrent first request
        existing = ctx.store.get_user(username)
        if existing is None:
            raise
        return existing
