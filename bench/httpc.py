"""A keep-alive HTTP/1.1 client with as little client-side work per request as Python allows.

Both servers are measured through the same code path, so client overhead is the same constant on
both sides; http.client is used rather than requests because requests adds ~0.3 ms of Python per
call, which would blur sub-millisecond server differences. One `Conn` per thread, like a real client
holding its own connection pool slot.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    def __init__(self, status: int, body: bytes, what: str) -> None:
        super().__init__(f"{what} -> HTTP {status}: {body[:500]!r}")
        self.status = status
        self.body = body


class Conn:
    def __init__(
        self, base_url: str, timeout: float = 300.0, blocksize: int = 8192, headers: dict[str, str] | None = None
    ) -> None:
        parts = urlsplit(base_url)
        self.blocksize = blocksize
        #: Sent with every request (credentials, for a server with auth on).
        self.headers = dict(headers or {})
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout, blocksize=self.blocksize
            )
            self._conn.connect()
            # The client side sets TCP_NODELAY as requests/urllib3 do; the server side is what we measure.
            assert self._conn.sock is not None
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request on the kept-alive connection; reconnects once if the server closed it."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        """JSON in, JSON out; any non-2xx is an error (a benchmark must not time failures)."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, data = self.request(method, path, body, headers)
        if not 200 <= status < 300:
            raise HttpError(status, data, f"{method} {path}")
        return json.loads(data) if data else {}

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
