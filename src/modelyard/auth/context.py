"""`AuthContext`: the auth store plus the per-worker caches every check goes through.

One per app (`app.state.auth`, set by `modelyard.auth.install`), or one per CLI command. Domain
functions (`accounts`, `tokens`, `sessions`, `grants`) take it, so every change that can take access
away also calls `changed()`, which empties the caches of every worker of this instance.

`permission_for(identity, resource_type, resource_id)` and `visibility(identity, resource_type)` are
the two questions routes ask; both answer from the user's cached `GrantProfile`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import Engine

from modelyard.auth.cache import CHANGES, SharedCounter, TtlCache
from modelyard.auth.identity import Identity
from modelyard.exceptions import ModelyardException
from modelyard.settings import Settings
from modelyard.store.auth import AuthStore, permissions
from modelyard.store.auth.permissions import GrantProfile, Permission
from modelyard.store.search.visibility import EVERYTHING, Visibility

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AuthConfig:
    default_permission: Permission = permissions.READ
    trusted_proxies: tuple[Network, ...] = ()
    user_header: str = "x-forwarded-user"
    groups_header: str = "x-forwarded-groups"
    cache_seconds: float = 3.0
    max_failed_logins: int = 10
    max_failed_logins_per_address: int = 50
    failed_login_window_seconds: int = 900
    lockout_seconds: int = 300
    session_seconds: float = 12 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        try:
            default = permissions.get_permission(settings.auth_default_permission.strip().upper())
        except ModelyardException as exc:
            raise ValueError(f"MODELYARD_AUTH_DEFAULT_PERMISSION: {exc.message}") from exc
        try:
            proxies = tuple(ipaddress.ip_network(c, strict=False) for c in settings.auth_trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"MODELYARD_AUTH_TRUSTED_PROXIES: {exc}") from exc
        return cls(
            default_permission=default,
            trusted_proxies=proxies,
            user_header=settings.auth_user_header.strip().lower(),
            groups_header=settings.auth_groups_header.strip().lower(),
            cache_seconds=settings.auth_cache_seconds,
            max_failed_logins=settings.auth_max_failed_logins,
            max_failed_logins_per_address=settings.auth_max_failed_logins_per_address,
            failed_login_window_seconds=settings.auth_failed_login_window_seconds,
            lockout_seconds=settings.auth_lockout_seconds,
            session_seconds=settings.auth_session_hours * 3600.0,
        )


class AuthContext:
    def __init__(
        self, store: AuthStore, config: AuthConfig | None = None, counter: SharedCounter = CHANGES
    ) -> None:
        self.store = store
        self.config = config or AuthConfig()
        self._counter = counter
        #: credential key -> the cached proof (see `modelyard.auth.identify`).
        self.credentials: TtlCache[object] = TtlCache(self.config.cache_seconds, counter)
        #: (user id, SSO groups) -> that user's grants.
        self._profiles: TtlCache[GrantProfile] = TtlCache(self.config.cache_seconds, counter)

    @classmethod
    def open(
        cls, engine: Engine, config: AuthConfig | None = None, counter: SharedCounter = CHANGES
    ) -> AuthContext:
        """A context over `engine` whose store reports every change to `counter` (all workers' caches)."""
        return cls(AuthStore(engine, on_change=counter.bump), config, counter)

    def changed(self) -> None:
        """Something that may take access away changed: every worker of this instance drops its caches."""
        self._counter.bump()

    # --- the questions routes ask -------------------------------------------------------------------
    def profile(self, identity: Identity) -> GrantProfile:
        key = (identity.user_id, identity.groups)
        profile, fresh = self._profiles.get(key)
        if profile is None or not fresh:
            profile = self.store.load_profile(identity.user_id, identity.is_admin, identity.groups)
            self._profiles.put(key, profile)
        return profile

    def permission_for(self, identity: Identity, resource_type: str, resource_id: str) -> Permission:
        """The caller's permission on one experiment (by id) or registered model (by name)."""
        if identity.is_admin:
            return permissions.MANAGE
        return self.profile(identity).permission_for(
            resource_type, resource_id, self.config.default_permission
        )

    def visibility(self, identity: Identity | None, resource_type: str) -> Visibility:
        """Which resources of a type the caller may read; stores filter searches with it."""
        if identity is None or identity.is_admin:
            return EVERYTHING
        return self.profile(identity).readable(resource_type, self.config.default_permission)
