"""modelyard's gunicorn worker: uvicorn's, with Nagle's algorithm off on every connection.

A keep-alive client that sends a request while the previous response's last segment is still unacked
meets Nagle's algorithm on our side and delayed ACKs on its side: each request after the first stalls
about 40 ms. Linux copies TCP_NODELAY from a listening socket to the connections it accepts, so setting
it once on the inherited listeners covers every connection, whatever event loop or HTTP parser serves it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from uvicorn_worker import UvicornWorker as _BaseUvicornWorker


def set_nodelay(sockets: Iterable[Any]) -> int:
    """Set TCP_NODELAY on each TCP socket (Unix sockets have no Nagle); returns how many were set."""
    count = 0
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            count += 1
    return count


class UvicornWorker(_BaseUvicornWorker):
    """Picks the fastest loop and parser installed (uvloop, httptools), as uvicorn's `auto` does."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto"}

    def run(self) -> None:
        set_nodelay(self.sockets)
        super().run()
