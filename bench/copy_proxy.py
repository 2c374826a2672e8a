"""The least work any proxy that copies bytes can do: the ceiling for a download through a proxy.

    python -m bench.copy_proxy PORT UPSTREAM_PORT

Not a product: a thread per connection answers `GET /<path>` with the upstream's (moto's, on loopback:
path-style and unsigned) `GET /<path>`, copying the body with `recv_into` a reused 1 MiB buffer and
`sendall`, no framework, no parsing beyond the status line and Content-Length. On a 2-core machine the
extra hop costs CPU that moto, the proxy and the client share: the artifacts workload reports each
proxy's download as a share of this one too, so the table shows what a proxy could reach here at all.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

CHUNK = 1 << 20


def _head(sock: socket.socket, data: bytes = b"") -> tuple[bytes, bytes]:
    """Bytes up to the end of an HTTP head (`data`: what was already read), and what was read past it."""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the head")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("no Content-Length")


def _serve(client: socket.socket, upstream_port: int) -> None:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    pending = b""
    with client:
        while True:
            try:
                head, pending = _head(client, pending)
            except ConnectionError:
                return
            path = head.split(b"\r\n", 1)[0].split(b" ")[1]
            with socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
                upstream.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, upstream_port))
                up_head, body = _head(upstream)
                left = _content_length(up_head) - len(body)
                status = up_head.split(b"\r\n", 1)[0].split(b" ", 1)[1]
                client.sendall(
                    b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, left + len(body), body)
                )
                while left:
                    n = upstream.recv_into(view[: min(CHUNK, left)])
                    if not n:
                        return  # upstream stopped short: the client sees the connection close
                    client.sendall(view[:n])
                    left -= n


@contextmanager
def running(upstream_port: int) -> Iterator[tuple[str, int]]:
    """The copy proxy in a process of its own (not this one's GIL) for the block: (its URL, its pid)."""
    from modelyard.devstack.process import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.copy_proxy", str(port), str(upstream_port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("bench.copy_proxy did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    server = socket.create_server(("127.0.0.1", port))
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve, args=(client, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
