"""Spread keep-alive connections over gunicorn's workers: the least-loaded worker accepts first.

All workers of a service wait on gunicorn's one listening socket, and whichever wins the wake-up race
accepts (an awake uvloop even accepts every pending connection in one go). A keep-alive connection then
stays with that worker for its whole life, so with few long-lived clients one worker could hold 3 of 4
or 7 of 8 connections and do nearly all the work while the others idled.

Here each worker accepts by itself (`BalancedAcceptLoop.create_server`, which uvicorn calls with the
inherited socket) and publishes how many connections it holds on a shared board: an anonymous shared
memory page created when the gunicorn master imports this module, before it forks the workers. When a
connection is pending, a worker that holds no more than the least-loaded other worker accepts at once;
one that holds more waits `STEP_SECONDS` per connection of its lead (at most `MAX_DELAY_SECONDS`) and
accepts only if nobody took the connection meanwhile, so a busy less-loaded worker never leaves a client
waiting long. Once the workers are even, nobody waits. One connection is accepted per wake-up, so a
burst of connections is shared out as well. The socket stays shared (no SO_REUSEPORT), so connections
queued while a worker exits are accepted by the others, never reset.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import socket
from typing import Any

logger = logging.getLogger("modelyard.runtime")

#: Board slots; a worker's slot is its gunicorn age modulo this (ages are unique, so live workers only
#: share a slot when one outlived 64 restarts of others, which costs balance, never correctness).
SLOTS = 64
STEP_SECONDS = 0.002
MAX_DELAY_SECONDS = 0.01
#: Connections that close are noticed on the next accept or this often, whichever comes first.
PUBLISH_SECONDS = 0.25


class LoadBoard:
    """Per-worker open-connection counts in memory shared by the gunicorn master and its workers.

    A slot holds the count plus one, so that zero marks a slot no live worker uses.
    """

    def __init__(self, slots: int = SLOTS) -> None:
        self._page = mmap.mmap(-1, slots * 8)  # MAP_SHARED | MAP_ANONYMOUS: shared across fork
        self._counts = memoryview(self._page).cast("q")
        self.slot: int | None = None

    def join(self, age: int) -> None:
        """Called in the worker, before its event loop starts: take the slot for this worker."""
        self.slot = age % len(self._counts)
        self._counts[self.slot] = 1

    def leave(self, age: int | None = None) -> None:
        """Free a slot: the worker's own on shutdown, or a dead worker's (by age) from the master."""
        slot = self.slot if age is None else age % len(self._counts)
        if slot is not None:
            self._counts[slot] = 0

    def publish(self, held: int) -> None:
        if self.slot is not None:
            self._counts[self.slot] = held + 1

    def lead(self, held: int) -> int:
        """How many more connections this worker holds than the least-loaded other one (0 if alone)."""
        others = [count - 1 for i, count in enumerate(self._counts.tolist()) if count and i != self.slot]
        return held - min(others) if others else 0


#: The board of this gunicorn master's workers; see the module docstring.
BOARD = LoadBoard()


def accept_delay(lead: int) -> float:
    """Seconds a worker `lead` connections ahead of the least-loaded one leaves a connection to it."""
    return 0.0 if lead <= 0 else min(lead * STEP_SECONDS, MAX_DELAY_SECONDS)


class _Connections:
    """The connections one worker serves, over all its listeners: its live transports, plus the sockets
    it accepted whose transport is still being set up (that takes a later loop iteration; without them,
    a worker that just accepted would go on reporting its old count through a burst and take more)."""

    def __init__(self, board: LoadBoard) -> None:
        self.board = board
        self.transports: set[asyncio.BaseTransport] = set()
        self.starting = 0

    def held(self) -> int:
        self.transports = {t for t in self.transports if not t.is_closing()}
        return len(self.transports) + self.starting

    def publish(self) -> int:
        held = self.held()
        self.board.publish(held)
        return held


class BalancedListener:
    """Accepts from one inherited listening socket for uvicorn; stands in for the `asyncio.Server`
    that `create_server(sock=...)` returns (uvicorn only calls `close()` on it, at shutdown)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol_factory: Any, sock: socket.socket, conns: _Connections
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self._conns = conns
        self._closed = False
        self.sockets = (sock,)
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)
        self._tick = loop.call_later(PUBLISH_SECONDS, self._publish_tick)

    def _publish_tick(self) -> None:
        if not self._closed:
            self._conns.publish()
            self._tick = self._loop.call_later(PUBLISH_SECONDS, self._publish_tick)

    def _readable(self) -> None:
        delay = accept_delay(self._conns.board.lead(self._conns.publish()))
        if not delay:
            self._accept()
            return
        # Leave the connection to a less-loaded worker for a moment; take it if it is still there.
        self._loop.remove_reader(self._sock.fileno())
        self._loop.call_later(delay, self._accept_and_listen)

    def _accept_and_listen(self) -> None:
        if self._closed:
            return
        self._accept()
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._readable)

    def _accept(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        except OSError as exc:
            # Out of file descriptors and the like: back off instead of spinning on a readable socket.
            logger.error("accept() failed: %s", exc)
            self._loop.remove_reader(self._sock.fileno())
            self._loop.call_later(0.1, self._accept_and_listen)
            return
        conn.setblocking(False)
        self._conns.starting += 1
        self._conns.publish()
        self._loop.create_task(self._serve(conn))

    async def _serve(self, conn: socket.socket) -> None:
        try:
            transport, _ = await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError as exc:
            logger.warning("could not serve an accepted connection: %s", exc)
            conn.close()
            return
        finally:
            self._conns.starting -= 1
        self._conns.transports.add(transport)  # no await since the line above: the count never dips
        self._conns.publish()

    # -- the part of asyncio.Server uvicorn uses ------------------------------------------------------
    def close(self) -> None:
        """Stop accepting. The socket itself is gunicorn's (and uvicorn closes its copy afterwards)."""
        if self._closed:
            return
        self._closed = True
        self._tick.cancel()
        self._loop.remove_reader(self._sock.fileno())
        self._conns.board.leave()

    def is_serving(self) -> bool:
        return not self._closed

    async def wait_closed(self) -> None:
        return None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop


class BalancedAcceptMixin:
    """Event-loop mixin: `create_server(sock=...)` on a plain TCP listener returns a
    `BalancedListener`; everything else (host/port, Unix sockets, TLS) is the loop's own server."""

    _balanced_connections: _Connections | None = None

    async def create_server(self, protocol_factory: Any, *args: Any, **kwargs: Any) -> Any:
        sock = kwargs.get("sock")
        if (
            args
            or sock is None
            or kwargs.get("ssl") is not None
            or sock.family
            not in (
                socket.AF_INET,
                socket.AF_INET6,
            )
        ):
            return await super().create_server(protocol_factory, *args, **kwargs)  # type: ignore[misc]
        if self._balanced_connections is None:
            self._balanced_connections = _Connections(BOARD)
        return BalancedListener(self, protocol_factory, sock, self._balanced_connections)  # type: ignore[arg-type]


def _loop_class() -> type[asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return type("BalancedSelectorEventLoop", (BalancedAcceptMixin, asyncio.SelectorEventLoop), {})
    return type("BalancedUVLoop", (BalancedAcceptMixin, uvloop.Loop), {})


_LOOP_CLASS = _loop_class()


def balanced_event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's `loop` setting (`modelyard.runtime.balance:balanced_event_loop`): uvloop when it is
    installed, as uvicorn's `auto` picks, with balanced accepting."""
    return _LOOP_CLASS()
