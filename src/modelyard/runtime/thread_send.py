"""A large response body written to the client's socket by the thread that reads it.

A proxied download used to read each chunk from S3 on a pool thread and hand it to the event loop's
thread, which wrote it to the client. On a small machine the two threads run on different cores, so
every byte was received into one core's cache and sent from the other's, into a new 4 MiB object per
chunk: the proxy's CPU per 200 MB was ~1.5x that of a bare copy loop doing the same two socket copies
on one thread (`bench/README.md`).

Here one copy thread reads the source into one reused buffer (`ArtifactStream.readinto`) and writes it
straight to the connection's socket, while the event loop only waits: the proxy then does what the bare
copy loop does. The HTTP bookkeeping stays uvicorn's: the response head is sent through it as usual, and
the body is announced to it by a `Sized` placeholder (an empty bytes object whose `len()` is the body's
length), so its Content-Length accounting and keep-alive handling see a normal response; the
placeholder reaches `CoalescingTransport.write`, which sends the held head and writes nothing else.

Offered (as the scope extension `THREAD_SEND`) only on plain-TCP connections served by uvicorn's
httptools protocol through `CoalescingHTTPProtocol` (TLS is terminated in front of the service, at the
ingress); anywhere else, and when every copy thread is busy, the body is streamed as before.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: The scope["extensions"] key; its value is the connection's `ThreadSend`.
THREAD_SEND = "modelyard.thread_send"
#: A client that takes no bytes for this long is given up on (the copy thread must not hang forever).
STALL_TIMEOUT_S = 120.0


class Sized(bytes):
    """An empty bytes object that reports `size` as its length: the body uvicorn accounts for."""

    size: int

    def __new__(cls, size: int) -> Sized:
        placeholder = super().__new__(cls)
        placeholder.size = size
        return placeholder

    def __len__(self) -> int:
        return self.size


class ClientGone(Exception):
    """The client closed its connection (or stopped reading) before the body was written."""


class CopyThreads:
    """The threads that copy bodies, per process: at most `limit` at once, so that slow clients of large
    downloads cannot take the thread pool every other request needs (Starlette's, ~40 threads); a
    response that finds them all busy is streamed by the event loop instead. Counted on the event loop's
    thread only, so the count needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:  # threads start on first use: an idle worker holds none
            self._executor = ThreadPoolExecutor(self.limit, thread_name_prefix="body-copy")
        return self._executor


COPY_THREADS = CopyThreads(32)


class ThreadSend:
    """Writes response bodies of one connection from a copy thread (see the module docstring)."""

    def __init__(self, transport: asyncio.Transport, threads: CopyThreads = COPY_THREADS) -> None:
        self._transport = transport
        self._threads = threads

    async def respond(
        self,
        send: Any,
        start: dict[str, Any],
        size: int,
        chunks: Iterable[bytes],
        readinto: Callable[[memoryview], int] | None = None,
    ) -> bool:
        """Send the response `start` (whose Content-Length is `size`) and, as its whole body, the source:
        `readinto` when given (filling one reused buffer), else `chunks`; either may block, it runs on
        the copy thread. Returns False, having sent nothing, when every copy thread is busy. A client that
        went away ends the response quietly, as it ends a streamed one."""
        threads = self._threads
        if threads.in_flight >= threads.limit:
            return False
        threads.in_flight += 1
        try:
            await send(start)
            await send({"type": "http.response.body", "body": Sized(size), "more_body": True})
            transport = self._transport
            while transport.get_write_buffer_size() and not transport.is_closing():
                await asyncio.sleep(0.001)  # bytes of an earlier response still queued: ours go after
            if not transport.is_closing():
                # Our own descriptor, closed by the copy thread when it is done with it: if the loop
                # closes its one meanwhile (the client reset), or this task is cancelled, the number may
                # be reused by another connection, which must never receive these bytes.
                fd = os.dup(transport.get_extra_info("socket").fileno())
                source = _filled(readinto) if readinto is not None else chunks
                loop = asyncio.get_running_loop()
                try:
                    await loop.run_in_executor(threads.executor(), _copy_and_close, source, fd, size)
                except ClientGone:
                    transport.close()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        finally:
            threads.in_flight -= 1


#: The reused buffer of a `readinto` source: what a bare copy loop uses (see bench/copy_proxy.py).
READ_BUFFER = 1024 * 1024


def _filled(readinto: Callable[[memoryview], int]) -> Iterator[memoryview]:
    """Views of one buffer, each valid until the next is taken (the copy writes each before that)."""
    view = memoryview(bytearray(READ_BUFFER))
    while n := readinto(view):
        yield view[:n]


def _copy_and_close(chunks: Iterable[bytes | memoryview], fd: int, size: int) -> None:
    try:
        copy_to_socket(chunks, fd, size)
    finally:
        os.close(fd)


def copy_to_socket(chunks: Iterable[bytes | memoryview], fd: int, size: int) -> None:
    """Write every chunk to the non-blocking socket `fd`, waiting for room as needed (blocking)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    written = 0
    for chunk in chunks:
        view = memoryview(chunk)
        if written + len(view) > size:  # checked before writing: the client must see the body cut short
            raise OSError(f"the source holds more than the {size} bytes announced")
        while view:
            try:
                sent = os.write(fd, view)
            except BlockingIOError:
                if not poller.poll(STALL_TIMEOUT_S * 1000):
                    raise ClientGone(f"the client took no bytes for {STALL_TIMEOUT_S:.0f} s") from None
                continue
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise ClientGone(str(exc)) from exc
            view = view[sent:]
            written += sent
    if written != size:
        raise OSError(f"the source ended after {written} of {size} bytes")
