"""The auth store: users, tokens, sessions and failed-login counters (`users.py`), groups and grants
(`grants.py`), the audit log (`audit.py`), over the tracking database (tables in
`store/sql/auth_schema.py`, migration 0010). `AuthStore(engine, on_change)` is the one object the
services hold; `on_change` runs after every change that may alter who may do what (the services
pass the bump of the workers' shared change counter, `modelyard.auth.cache.CHANGES`)."""

from __future__ import annotations

from modelyard.store.auth.grants import GrantStore
from modelyard.store.auth.users import UserStore


class AuthStore(UserStore, GrantStore):
    pass


__all__ = ["AuthStore"]
