"""Moving bytes between an HTTP request/response and an artifact repository in bounded memory.

The event loop only shuffles chunks; every repository call (disk or S3, both blocking) runs in the
thread pool. Request chunks from the server (~64 KiB) are batched to `WRITE_BATCH` before they are
handed to the writer in one call, to keep thread hops per megabyte low; the batch is a list, not a
joined copy (the writer copies each chunk once, into its file or its multipart part).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from modelyard import errors
from modelyard.artifact_proxy.headers import download_headers
from modelyard.artifact_repos.base import ArtifactRepository, ArtifactStream
from modelyard.exceptions import ModelyardException
from modelyard.runtime.thread_send import THREAD_SEND

WRITE_BATCH = 1024 * 1024


class UploadCutOff(Exception):
    """The client went away (or sent fewer bytes than it announced) before the body ended."""


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise ModelyardException("Invalid Content-Length header", errors.BAD_REQUEST) from exc
    if value < 0:
        raise ModelyardException("Invalid Content-Length header", errors.BAD_REQUEST)
    return value


async def receive_into(repo: ArtifactRepository, path: str, request: Request) -> int:
    """Stream the request body to `path`; the object appears only if the whole body arrived.

    Returns the number of bytes stored. On a disconnect, a short body, or any failure the writer is
    aborted (temp file removed / multipart upload aborted) before the error propagates.
    """
    declared = _declared_length(request)
    writer = await run_in_threadpool(repo.open_write, path, declared)
    received = 0
    batch: list[bytes] = []
    batched = 0
    try:
        try:
            async for chunk in request.stream():
                received += len(chunk)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH:
                    await run_in_threadpool(writer.writelines, batch)
                    batch, batched = [], 0
        except ClientDisconnect as exc:
            raise UploadCutOff(f"client disconnected after {received} bytes") from exc
        if batch:
            await run_in_threadpool(writer.writelines, batch)
            batch = []
        if declared is not None and received != declared:
            raise UploadCutOff(f"received {received} of {declared} bytes")
        await run_in_threadpool(writer.commit)
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise
    return received


#: Files up to this size are read whole in the thread call that opens them and answered as one body:
#: a small file then costs one thread hop instead of three, and no streaming machinery per request.
INLINE_MAX = 1024 * 1024


def open_for_response(repo: ArtifactRepository, path: str) -> ArtifactStream | bytes:
    """Open `path` for a download (blocking: run it in the thread pool): its bytes when it is small, else
    the open stream for `stream_response`."""
    stream = repo.open_read(path)
    if stream.size is None or stream.size > INLINE_MAX:
        return stream
    try:
        return b"".join(stream.chunks)
    finally:
        stream.close()


def download_response(opened: ArtifactStream | bytes, path: str) -> Response:
    """The download of the artifact at `path`, with the headers the server decides (`headers.py`)."""
    if isinstance(opened, bytes):
        return Response(opened, headers=download_headers(path))
    return stream_response(opened, path)


def stream_response(stream: ArtifactStream, path: str) -> Response:
    headers = download_headers(path)
    if stream.size is not None:
        headers["Content-Length"] = str(stream.size)
    return _StreamResponse(stream, headers=headers)


class _StreamResponse(Response):
    """An open stream as the body: written by the thread that reads it where the server offers that
    (`runtime.thread_send`: one core touches each byte), else streamed by Starlette (chunks read in the
    thread pool, written by the event loop)."""

    def __init__(self, stream: ArtifactStream, headers: dict[str, str]) -> None:
        super().__init__(None, headers=headers)
        del self.headers["content-length"]  # Response() set 0 for the empty content; ours comes back below
        if stream.size is not None:
            self.headers["content-length"] = str(stream.size)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = scope.get("extensions", {}).get(THREAD_SEND)
        if sender is not None and self.stream.size is not None and scope["method"] != "HEAD":
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            try:
                sent = await sender.respond(
                    send, start, self.stream.size, self.stream.chunks, self.stream.readinto
                )
            except BaseException:
                await run_in_threadpool(self.stream.close)
                raise
            if sent:
                await run_in_threadpool(self.stream.close)
                return
        body: AsyncIterator[bytes] = iterate_in_threadpool(_closing(self.stream))
        await StreamingResponse(body, headers=dict(self.headers))(scope, receive, send)


def _closing(stream: ArtifactStream) -> Iterator[bytes]:
    try:
        yield from stream.chunks
    finally:
        stream.close()
