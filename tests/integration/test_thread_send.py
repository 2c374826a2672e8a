"""`runtime.thread_send`: bodies written to the socket by a copy thread, behind uvicorn's back.

A real uvicorn server (uvloop, httptools, `CoalescingHTTPProtocol`, as the gunicorn workers run it) on a
loopback port in this process, so the tests can look at the copy threads' count; real sockets throughout.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from modelyard.devstack.process import free_port
from modelyard.runtime import thread_send
from modelyard.runtime.thread_send import THREAD_SEND

DATA = os.urandom(6 * 1024 * 1024 + 11)


def _start(size: int) -> dict[str, Any]:
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]
    return {"type": "http.response.start", "status": 200, "headers": headers}


class App:
    """`/small` answers normally; `/body/<kind>` sends DATA through the copy thread, from `readinto`
    or from chunks; `/short` announces more than its source holds; `/huge` is 256 MiB of zeros."""

    def __init__(self) -> None:
        self.offered: list[bool] = []
        self.copied: list[bool] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        sender = scope.get("extensions", {}).get(THREAD_SEND)
        self.offered.append(sender is not None)
        path = scope["path"]
        if path == "/small" or sender is None:
            await send(_start(5))
            await send({"type": "http.response.body", "body": b"small"})
            return
        if path == "/body/readinto":
            copied = await sender.respond(send, _start(len(DATA)), len(DATA), [], io.BytesIO(DATA).readinto)
        elif path == "/body/chunks":
            chunks = [DATA[i : i + 700_000] for i in range(0, len(DATA), 700_000)]
            copied = await sender.respond(send, _start(len(DATA)), len(DATA), chunks)
        elif path == "/short":
            copied = await sender.respond(send, _start(len(DATA)), len(DATA), [DATA[:1000]])
        else:  # /huge
            size = 256 * 1024 * 1024
            copied = await sender.respond(send, _start(size), size, iter([bytes(1024 * 1024)] * 256))
        self.copied.append(copied)
        if not copied:  # every copy thread busy: the caller streams the body itself
            await send(_start(len(DATA)))
            await send({"type": "http.response.body", "body": DATA})


@pytest.fixture
def server() -> Iterator[tuple[App, int]]:
    app = App()
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", log_level="warning", lifespan="on",
        http="modelyard.runtime.coalesce:CoalescingHTTPProtocol",
    )  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield app, port
    running.should_exit = True
    thread.join(10)


def _connection(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str | None, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.getheader("Content-Length"), response.read()


def _wait_until_no_copy_runs() -> None:
    deadline = time.monotonic() + 10
    while thread_send.COPY_THREADS.in_flight:
        assert time.monotonic() < deadline, "a copy thread is still counted as busy"
        time.sleep(0.01)


@pytest.mark.parametrize("source", ["readinto", "chunks"])
def test_the_body_arrives_whole_and_the_connection_serves_the_next_request(
    server: tuple[App, int], source: str
) -> None:
    app, port = server
    conn = _connection(port)
    try:
        for _ in range(2):
            assert _get(conn, f"/body/{source}") == (200, str(len(DATA)), DATA)
            first = conn.sock
            assert _get(conn, "/small") == (200, "5", b"small")
            assert conn.sock is first
    finally:
        conn.close()
    assert app.offered == [True] * 4 and app.copied == [True, True]
    _wait_until_no_copy_runs()


def test_a_source_shorter_than_announced_cuts_the_connection(server: tuple[App, int]) -> None:
    app, port = server
    conn = _connection(port)
    try:
        conn.request("GET", "/short")
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()
    _wait_until_no_copy_runs()
    conn = _connection(port)
    try:
        assert _get(conn, "/body/readinto")[2] == DATA  # the server serves on
    finally:
        conn.close()


def test_a_client_that_leaves_mid_body_frees_its_copy_thread(server: tuple[App, int]) -> None:
    app, port = server
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert thread_send.COPY_THREADS.in_flight == 1  # 256 MiB cannot all be in the socket's buffers
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # with unread data and no linger: a reset
    _wait_until_no_copy_runs()
    conn = _connection(port)
    try:
        assert _get(conn, "/small") == (200, "5", b"small")
    finally:
        conn.close()
    assert app.copied == [True]


def test_with_every_copy_thread_busy_the_body_is_streamed_instead(
    server: tuple[App, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, port = server
    monkeypatch.setattr(thread_send.COPY_THREADS, "limit", 0)
    conn = _connection(port)
    try:
        assert _get(conn, "/body/readinto") == (200, str(len(DATA)), DATA)
    finally:
        conn.close()
    assert app.copied == [False]


def test_the_placeholder_reports_the_body_length_and_holds_no_bytes() -> None:
    placeholder = thread_send.Sized(12345)
    assert len(placeholder) == 12345 and bytes(placeholder) == b"" and isinstance(placeholder, bytes)


def test_copy_to_socket_refuses_a_source_longer_than_announced() -> None:
    """The chunk that would overrun is not written: the client gets less than announced and sees the
    body cut, never a complete-looking body that is not the file (nor stray bytes on its connection)."""
    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        with pytest.raises(OSError, match="more than the 3 bytes"):
            thread_send.copy_to_socket([b"ab", b"cd"], left.fileno(), 3)
        left.close()
        assert right.recv(16) == b"ab" and right.recv(16) == b""
    finally:
        left.close()
        right.close()


def test_a_cancelled_response_leaves_the_descriptor_to_its_copy_thread() -> None:
    """The copy thread closes its own descriptor: a task cancelled mid-copy (a server shutting down)
    must not close it under the thread, whose next write would then go to whatever reuses the number."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    release = threading.Event()

    def source() -> Iterator[bytes]:
        release.wait(10)
        yield b"after the cancel"

    class Transport:
        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str) -> Any:
            return ours if name == "socket" else None

        def close(self) -> None:
            pass

    async def scenario() -> None:
        async def send(message: dict[str, Any]) -> None:
            pass

        sender = thread_send.ThreadSend(Transport(), thread_send.CopyThreads(1))  # type: ignore[arg-type]
        task = asyncio.create_task(sender.respond(send, _start(16), 16, source()))
        await asyncio.sleep(0.2)  # the copy thread is waiting for the source
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    ours.close()  # the loop's descriptor goes; the copy thread's dup stays open until it is done
    release.set()
    peer.settimeout(10)
    assert peer.recv(100) == b"after the cancel"
    peer.close()
