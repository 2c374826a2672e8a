"""modelyard's gunicorn worker: uvicorn's, with Nagle's algorithm off on every connection and keep-alive
connections spread over the workers.

A keep-alive client that sends a request while the previous response's last segment is still unacked
meets Nagle's algorithm on our side and delayed ACKs on its side: each request after the first stalls
about 40 ms. Linux copies TCP_NODELAY from a listening socket to the connections it accepts, so setting
it once on the inherited listeners covers every connection, whatever event loop or HTTP parser serves it.

Accepting is done by `modelyard.runtime.balance` (the least-loaded worker accepts first), through
uvicorn's custom-loop setting; the worker takes its slot on the shared load board before the loop starts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from uvicorn_worker import UvicornWorker as _BaseUvicornWorker

# Imported in the gunicorn master (it loads the worker class before forking), so the shared memory of
# the load board and of the warm-up flag exists before the workers do and is inherited by all of them.
from modelyard.runtime import warmup  # noqa: F401
from modelyard.runtime.balance import BOARD


def set_nodelay(sockets: Iterable[Any]) -> int:
    """Set TCP_NODELAY on each TCP socket (Unix sockets have no Nagle); returns how many were set."""
    count = 0
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            count += 1
    return count


class UvicornWorker(_BaseUvicornWorker):
    """uvloop when installed (as uvicorn's `auto` picks) with balanced accepting; httptools when installed."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "modelyard.runtime.balance:balanced_event_loop",
        "http": "modelyard.runtime.coalesce:CoalescingHTTPProtocol",
    }

    def run(self) -> None:
        set_nodelay(self.sockets)
        BOARD.join(self.age)
        super().run()
