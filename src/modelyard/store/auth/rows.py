"""What the auth stores share: the engine, a read-only view of it, and the change hook every write runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelyard.store.sql.engine import READ_ONLY


def _nothing() -> None:
    pass


class AuthRows:
    def __init__(self, engine: Engine, on_change: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self._read = engine.execution_options(**READ_ONLY)
        #: Called after every change that may alter who may do what (the auth caches' invalidation),
        #: whether it committed or not (a failed change costs a cache refill, never a stale answer).
        self.on_change = on_change or _nothing

    @contextmanager
    def _changing(self) -> Iterator[Session]:
        """One write transaction, then `on_change`."""
        try:
            with Session(self.engine) as session, session.begin():
                yield session
        finally:
            self.on_change()
