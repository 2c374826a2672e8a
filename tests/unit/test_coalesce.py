"""`CoalescingTransport`: a small response head leaves with the body in one write, nothing is reordered,
lost or held past the current event-loop iteration."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from modelyard.runtime.coalesce import MAX_HELD_BYTES, CoalescingHTTPProtocol, CoalescingTransport
from modelyard.runtime.thread_send import Sized


class FakeTransport:
    """Records each send the way the kernel would see it: one entry per write / writelines call."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False
        self.eof = False
        self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sends.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        assert not self.closed
        self.sends.append(b"".join(chunks))

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True


def run(scenario: Any) -> Any:
    return asyncio.run(scenario())


def test_head_and_body_leave_in_one_send() -> None:
    async def scenario() -> list[bytes]:
        raw = FakeTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert raw.sends == []
        transport.write(b"{}")
        await asyncio.sleep(0)
        return raw.sends

    assert run(scenario) == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


def test_a_lone_head_is_sent_at_the_end_of_the_loop_iteration() -> None:
    async def scenario() -> list[list[bytes]]:
        raw = FakeTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        before = list(raw.sends)
        await asyncio.sleep(0)
        return [before, raw.sends]

    assert run(scenario) == [[], [b"HTTP/1.1 204 No Content\r\n\r\n"]]


def test_a_body_placeholder_sends_the_held_head_and_nothing_else() -> None:
    # `thread_send.Sized` stands for bytes a copy thread writes to the socket itself: the transport
    # underneath must never be asked to send it (its len() is the body's, its buffer is empty).
    async def scenario() -> list[bytes]:
        raw = FakeTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 9000000\r\n\r\n")
        transport.write(Sized(9_000_000))
        transport.write(Sized(1))  # nothing held: nothing sent
        await asyncio.sleep(0)
        return raw.sends

    assert run(scenario) == [b"HTTP/1.1 200 OK\r\ncontent-length: 9000000\r\n\r\n"]


def test_big_writes_are_not_held_and_order_is_kept() -> None:
    async def scenario() -> list[bytes]:
        raw = FakeTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        big = b"x" * (MAX_HELD_BYTES + 1)
        transport.write(big)  # nothing held: straight out
        assert raw.sends == [big]
        transport.write(b"head")
        transport.write(big)  # goes out with the held head, head first
        transport.write(b"tail")
        await asyncio.sleep(0)
        return raw.sends

    big = b"x" * (MAX_HELD_BYTES + 1)
    assert run(scenario) == [big, b"head" + big, b"tail"]


def test_close_and_eof_send_what_is_held_first() -> None:
    async def scenario() -> tuple[FakeTransport, FakeTransport]:
        loop = asyncio.get_running_loop()
        closing, ending = FakeTransport(), FakeTransport()
        first = CoalescingTransport(closing, loop)  # type: ignore[arg-type]
        first.write(b"bye")
        first.close()
        second = CoalescingTransport(ending, loop)  # type: ignore[arg-type]
        second.write(b"last")
        second.write_eof()
        await asyncio.sleep(0)  # the scheduled flush finds nothing more to send
        return closing, ending

    closing, ending = run(scenario)
    assert closing.sends == [b"bye"] and closing.closed
    assert ending.sends == [b"last"] and ending.eof


def test_a_head_held_when_the_connection_is_lost_is_dropped() -> None:
    async def scenario() -> FakeTransport:
        raw = FakeTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        raw.closed = True  # the peer went away before the end of the iteration
        await asyncio.sleep(0)  # the scheduled flush must not write to the closed transport
        return raw

    assert run(scenario).sends == []


def test_everything_else_reaches_the_real_transport() -> None:
    async def scenario() -> FakeTransport:
        raw = FakeTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.pause_reading()
        assert not transport.is_closing()
        transport.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        return raw

    raw = run(scenario)
    assert raw.paused
    assert raw.sends == [b"ab"]


def test_the_worker_serves_http_over_the_coalescing_transport() -> None:
    from uvicorn.config import Config

    from modelyard.runtime.worker import UvicornWorker

    async def scenario() -> Any:
        config = Config(app=None, http=UvicornWorker.CONFIG_KWARGS["http"])  # type: ignore[arg-type]
        config.load()
        assert config.http_protocol_class is CoalescingHTTPProtocol
        protocol = CoalescingHTTPProtocol(config=config, server_state=_ServerState(), app_state={})
        raw = FakeTransport()
        raw.get_extra_info = lambda name, default=None: default  # type: ignore[attr-defined]
        protocol.connection_made(raw)  # type: ignore[arg-type]
        return protocol.transport

    assert isinstance(run(scenario), CoalescingTransport)


def test_the_copy_thread_is_offered_on_plain_tcp_only() -> None:
    from uvicorn.config import Config

    from modelyard.runtime.thread_send import THREAD_SEND, ThreadSend

    def offered(extra: dict[str, Any]) -> Any:
        async def scenario() -> Any:
            config = Config(app=None, http="modelyard.runtime.coalesce:CoalescingHTTPProtocol")  # type: ignore[arg-type]
            config.load()
            protocol = CoalescingHTTPProtocol(config=config, server_state=_ServerState(), app_state={})
            raw = FakeTransport()
            raw.get_extra_info = lambda name, default=None: extra.get(name, default)  # type: ignore[attr-defined]
            protocol.connection_made(raw)  # type: ignore[arg-type]
            protocol.on_message_begin()
            return protocol.scope.get("extensions", {}).get(THREAD_SEND)

        return run(scenario)

    sock = socket.socket()  # never connected: uvicorn only asks it for addresses
    assert isinstance(offered({"socket": sock}), ThreadSend)
    assert offered({"socket": sock, "sslcontext": object()}) is None  # TLS: the bytes need encrypting
    assert offered({}) is None  # no socket to write to
    sock.close()


class _ServerState:
    def __init__(self) -> None:
        self.total_requests = 0
        self.connections: set[Any] = set()
        self.tasks: set[Any] = set()
        self.default_headers: list[Any] = []
