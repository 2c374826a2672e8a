"""Users: create, verify a password, change it, promote, delete, and the start-up admin bootstrap.

There is no default password anywhere: the first admin comes from `modelyard users create --admin`
or from `MODELYARD_ADMIN_USERNAME` with `MODELYARD_ADMIN_PASSWORD` (or `_FILE`, a mounted secret),
and a service with auth on refuses to start while the database holds no admin.
"""

from __future__ import annotations

import logging
from pathlib import Path

from modelyard.auth import passwords
from modelyard.auth.context import AuthContext
from modelyard.auth.identity import Identity
from modelyard.entities.auth import SYSTEM, Actor, User
from modelyard.settings import Settings

log = logging.getLogger(__name__)

#: `kind` of users made by an admin or the CLI, of SSO users made on first sight, of service accounts.
PASSWORD, SSO, SERVICE = "password", "sso", "service"


class NoAdminError(RuntimeError):
    """Auth is on and the database has no admin: the service must not start."""


def create_user(
    ctx: AuthContext,
    username: str,
    password: str | None,
    by: Actor,
    *,
    is_admin: bool = False,
    kind: str = PASSWORD,
) -> User:
    """`password` None makes a user who can only sign in through the SSO proxy (or a token)."""
    password_hash = passwords.hash_password(password) if password is not None else None
    return ctx.store.create_user(username, password_hash, is_admin, kind, by)


def verify_password(ctx: AuthContext, username: str, password: str) -> User | None:
    """The user when `password` is theirs; None otherwise (an unknown user costs the same time)."""
    user = ctx.store.get_user(username)
    if passwords.verify(user.password_hash if user is not None else None, password):
        return user
    return None


def change_password(ctx: AuthContext, username: str, password: str, by: Actor) -> None:
    """Ends the user's UI sessions; cached proofs of the old password are dropped on every worker."""
    ctx.store.set_password_hash(username, passwords.hash_password(password), by)


def identity_of(
    ctx: AuthContext, user: User, method: str, token_id: str | None = None, sso_groups: tuple[str, ...] = ()
) -> Identity:
    """The identity a request proved: the user's groups are their memberships plus, for an SSO
    sign-in, the groups the trusted proxy named."""
    groups = tuple(sorted(set(ctx.store.group_names_of(user.user_id)) | set(sso_groups)))
    return Identity(user.user_id, user.username, user.is_admin, groups, method, token_id)


def admin_password(settings: Settings) -> str | None:
    if settings.admin_password:
        return settings.admin_password
    if settings.admin_password_file:
        return Path(settings.admin_password_file).read_text(encoding="utf-8").rstrip("\r\n")
    return None


def ensure_admin(ctx: AuthContext, settings: Settings) -> None:
    """Create the configured admin when missing (an existing user of that name is made admin, its
    password left alone), then refuse to go on when the database holds no admin at all."""
    if settings.admin_username:
        user = ctx.store.get_user(settings.admin_username)
        if user is None:
            password = admin_password(settings)
            if password is None:
                raise NoAdminError(
                    f"MODELYARD_ADMIN_USERNAME={settings.admin_username} has no password: set "
                    "MODELYARD_ADMIN_PASSWORD or MODELYARD_ADMIN_PASSWORD_FILE."
                )
            try:
                create_user(ctx, settings.admin_username, password, SYSTEM, is_admin=True)
                log.info("Created the admin user %r from the settings.", settings.admin_username)
            except Exception as exc:  # a sibling worker created it at the same moment
                if ctx.store.get_user(settings.admin_username) is None:
                    raise
                log.debug("admin created concurrently: %s", exc)
        elif not user.is_admin:
            ctx.store.set_admin(settings.admin_username, True, SYSTEM)
    if ctx.store.count_admins() == 0:
        raise NoAdminError(
            "MODELYARD_AUTH is on but there is no admin user: create one with `modelyard users create NAME "
            "--admin`, or set MODELYARD_ADMIN_USERNAME and MODELYARD_ADMIN_PASSWORD (or _FILE)."
        )
