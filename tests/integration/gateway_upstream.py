"""An HTTP/1.1 upstream over a real loopback socket that misbehaves on purpose, for the gateway's tests.

The real services answer every request properly, and the ways they fail (a worker that dies after
answering, a last-resort plain-text 500) cannot be triggered on demand. This server answers:
- `/once`: 200, keep-alive by its headers, but it then stops reading and closes the connection after
  `CLOSE_DELAY` s, as uvicorn does after an unhandled exception: a pooled client that reuses the
  connection meanwhile gets no answer.
- `/plain500`: a plain-text 500.
- `/headers`: 200 with its own `date` and `server` and two `set-cookie` headers.
- anything else: 200 JSON `{"host": <Host header>, "target": <raw request target>, "headers": {name: value}}`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from modelyard.devstack.process import free_port

CLOSE_DELAY = 0.3


def _response(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            await reader.readexactly(int(headers.get("content-length", "0")))
            if target == "/once":
                writer.write(_response("200 OK", [("content-type", "application/json")], b"{}"))
                await writer.drain()
                await asyncio.sleep(CLOSE_DELAY)
                break
            if target == "/plain500":
                writer.write(_response("500 Internal Server Error", [("content-type", "text/plain")], b"boom"))
            elif target == "/headers":
                own = [("date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("server", "upstream"),
                       ("set-cookie", "a=1"), ("set-cookie", "b=2"), ("content-type", "text/plain")]  # fmt: skip
                writer.write(_response("200 OK", own, b"ok"))
            else:
                body = json.dumps({"host": headers.get("host"), "target": target, "headers": headers}).encode()
                writer.write(_response("200 OK", [("content-type", "application/json")], body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextmanager
def misbehaving_upstream() -> Iterator[str]:
    """Run the server on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def main() -> asyncio.Server:
        server = await asyncio.start_server(_serve, "127.0.0.1", port)
        started.set()
        return server

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(main(), loop).result(timeout=10)
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
