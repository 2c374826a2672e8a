"""Per-worker caches of verified credentials and permission profiles, and the shared change counter.

Checking a password (argon2id) costs tens of milliseconds; a client sending hundreds of requests a
second must not pay that per request. A worker keeps each credential it verified (keyed by a SHA-256
of the credential, never the credential itself) with the identity it proved, and trusts the entry for
`ttl` seconds; after that it re-checks it with one cheap query (the user's stored hash is unchanged,
the token is neither revoked nor expired) rather than run argon2 again. So a credential costs one
argon2 per worker, then a dictionary look-up per request and a query every `ttl` seconds.

Revocation: every change that can take access away (token revoked, password changed, user deleted or
demoted, grant changed, session ended) bumps `CHANGES`, a counter in memory shared by all workers of a
gunicorn master (created when the master imports this module, before it forks them, like the load
board in `modelyard.runtime.balance`). A worker that sees the counter move drops its caches before it
answers the next request, so a revocation is effective at once on every worker of the instance that
served it, and within `ttl` seconds on other replicas (or after a CLI change to the database).
"""

from __future__ import annotations

import hashlib
import mmap
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")

#: Entries kept per cache before the oldest are dropped (a bound on memory, not a tuning knob).
MAX_ENTRIES = 10_000


class SharedCounter:
    """Eight bytes of anonymous shared memory: bumped by any process forked after it was created,
    read by all. A torn read is impossible for an aligned 8-byte value on the platforms we run on,
    and a lost concurrent increment still changes the value, which is all readers look for."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, 8)  # MAP_SHARED | MAP_ANONYMOUS: shared across fork
        self._word = memoryview(self._page).cast("Q")  # read on every request: one C-level index

    def value(self) -> int:
        return self._word[0]

    def bump(self) -> None:
        self._word[0] = (self._word[0] + 1) % (1 << 64)


#: See the module docstring. Imported by `modelyard.runtime.gunicorn_conf`, so it exists before the fork.
CHANGES = SharedCounter()


def credential_key(*parts: str) -> bytes:
    """The cache key of a credential: a digest, so a memory dump of the cache shows no secret."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.digest()


@dataclass
class _Entry(Generic[V]):
    value: V
    checked_at: float


class TtlCache(Generic[V]):
    """A dict whose entries are fresh for `ttl` seconds and which empties when `CHANGES` moves.

    `get` answers (value, fresh): a stale entry is still returned so the caller can re-validate it
    cheaply instead of recomputing it from scratch; `touch` marks it fresh again."""

    def __init__(self, ttl: float, counter: SharedCounter = CHANGES) -> None:
        self.ttl = ttl
        self._counter = counter
        self._seen = counter.value()
        self._entries: dict[Hashable, _Entry[V]] = {}

    def _sync(self) -> None:
        seen = self._counter.value()
        if seen != self._seen:
            self._entries.clear()
            self._seen = seen

    def get(self, key: Hashable) -> tuple[V | None, bool]:
        self._sync()
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        return entry.value, time.monotonic() - entry.checked_at < self.ttl

    def put(self, key: Hashable, value: V) -> None:
        self._sync()
        if len(self._entries) >= MAX_ENTRIES:
            for old in list(self._entries)[: MAX_ENTRIES // 10]:
                del self._entries[old]
        self._entries[key] = _Entry(value, time.monotonic())

    def touch(self, key: Hashable) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.checked_at = time.monotonic()

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class ForeverCache(Generic[V]):
    """Facts that never change once true (a run's experiment, a logged model's experiment): kept
    until the bound is reached, then dropped wholesale. Misses are not cached."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, V] = {}

    def get(self, key: Hashable) -> V | None:
        return self._entries.get(key)

    def put(self, key: Hashable, value: V) -> None:
        if len(self._entries) >= MAX_ENTRIES * 10:
            self._entries.clear()
        self._entries[key] = value
