"""The auth store: users, tokens, sessions and failed-login counters (`users.py`), groups and grants
(`grants.py`), the audit log (`audit.py`), over the tracking database (tables in
`store/sql/auth_schema.py`, migration 0010). `AuthStore` is the one object the services hold."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from modelyard.store.auth.grants import GrantStore
from modelyard.store.auth.users import UserStore


class AuthStore(UserStore, GrantStore):
    """`on_change` runs after every change that may alter who may do what; the services pass the
    bump of the workers' shared change counter (`modelyard.auth.cache.CHANGES`)."""

    def __init__(self, engine: Engine, on_change: Callable[[], None] | None = None) -> None:
        UserStore.__init__(self, engine, on_change or _nothing)
        GrantStore.__init__(self, engine, on_change or _nothing)


def _nothing() -> None:
    pass


__all__ = ["AuthStore"]
