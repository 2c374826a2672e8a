"""One send per small response: the HTTP head waits for the body's first write and leaves with it.

uvicorn writes a response's status line and headers, then its body, as two `transport.write` calls, and
uvloop sends each at once: two syscalls and two TCP segments per answer (TCP_NODELAY is on, see
`worker.py`), where a small JSON answer fits in one. On loopback or a fast LAN the send is a large part
of a small request's CPU (the kernel runs the receiving side's TCP work in the sender's call), so the
second one cost ~10% of a log-metric.

`CoalescingTransport` holds back one small write (the head) until the next write, which then goes out
together with it in one `writelines` (one writev); if no write follows within the current event-loop
iteration (a streamed body whose first chunk is not ready), the held bytes are sent at the end of the
iteration. At most one small buffer is ever held, so flow control and memory are uvloop's as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from modelyard.runtime.thread_send import THREAD_SEND, Sized, ThreadSend

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn serves with h11, and bodies are written by the loop
    HttpToolsProtocol = ()  # type: ignore[assignment, misc]

#: Writes up to this size may be held back; anything bigger goes out at once (after what is held).
MAX_HELD_BYTES = 16 * 1024


class CoalescingTransport:
    """Wraps the connection's transport; everything but writing and closing is passed through."""

    __slots__ = ("_transport", "_loop", "_held", "_flush_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_pending = False

    def write(self, data: bytes) -> None:
        if type(data) is Sized:  # a body the copy thread writes (`thread_send`): only the head goes now
            self.flush()
            return
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif len(data) <= MAX_HELD_BYTES and data:
            self._held = bytes(data)
            if not self._flush_pending:
                self._flush_pending = True
                self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        """Send what is held now; a connection that was lost meanwhile drops it, as uvicorn drops
        whatever a disconnected client would have been sent (uvloop refuses writes to a closed one)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def _flush(self) -> None:
        self._flush_pending = False
        self.flush()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol (httptools when installed, else h11) over a `CoalescingTransport`;
    uvicorn's `http` setting (`modelyard.runtime.coalesce:CoalescingHTTPProtocol`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(wrapped)
        # Bodies written from a pool thread need the raw socket and uvicorn's httptools protocol (its
        # Content-Length accounting is what `Sized` feeds); TLS connections stream as before.
        plain_tcp = (
            transport.get_extra_info("sslcontext") is None and transport.get_extra_info("socket") is not None
        )
        self._extensions: dict[str, object] = (
            {THREAD_SEND: ThreadSend(wrapped)} if plain_tcp and isinstance(self, HttpToolsProtocol) else {}  # type: ignore[arg-type]
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._extensions:
            self.scope["extensions"] = {**self.scope.get("extensions", {}), **self._extensions}
