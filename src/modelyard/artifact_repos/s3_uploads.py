"""Streamed writes to S3 (`S3ArtifactRepository.open_write`): a pipe-fed single PUT or a multipart upload.

A streamed write whose length is announced (Content-Length) and at least one part is sent as one PUT
while the body is still arriving, through a pipe of a few MiB; one of unknown length, or above
SINGLE_PUT_MAX, is a multipart upload with a few parts in flight, in memory bounded by (parts in flight
+ 1) x part size; a smaller one is buffered and PUT at commit. An upload that is aborted or cut off is
failed at S3 before its last byte (PUT) or aborted (multipart), so no partial object ever becomes visible.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from modelyard import errors
from modelyard.artifact_repos.base import (
    ArtifactWriter,
)
from modelyard.artifact_repos.s3_client import s3_errors
from modelyard.exceptions import ModelyardException

#: Parts uploaded concurrently by one streamed write; bounds its memory to (this + 1) parts.
PARTS_IN_FLIGHT = int(os.environ.get("MODELYARD_S3_PARTS_IN_FLIGHT") or 3)
#: Request bytes queued for a streamed PUT; what bounds its memory.
PIPE_BYTES = 2 * 1024 * 1024
MIN_PART = 5 * 1024 * 1024


class MultipartWriter(ArtifactWriter):
    """Request chunks are copied once, into the part being filled: a bytearray allocated whole, which
    becomes the `upload_part` body as is (botocore sends any buffer without copying it). There is no
    join per batch or per part; each of those copied every byte once more."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int, declared: int | None) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = max(part_size, MIN_PART)
        self._part = bytearray()
        self._filled = 0
        self._declared = declared  # Content-Length, if the client sent one
        self._written = 0
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[dict[str, Any]]] = []
        self._done = False

    def _start_multipart(self) -> None:
        with s3_errors(f"create multipart upload for {self._key}"):
            self._upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)[
                "UploadId"
            ]
        self._pool = ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="s3-part")

    def _upload_part(self, number: int, body: bytearray) -> dict[str, Any]:
        with s3_errors(f"upload part {number} of {self._key}"):
            response = self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _submit(self, body: bytearray) -> None:
        if self._upload_id is None:
            self._start_multipart()
        assert self._pool is not None
        # Wait for the oldest part when the window is full: this is what bounds memory.
        in_flight = [f for f in self._futures if not f.done()]
        if len(in_flight) >= PARTS_IN_FLIGHT:
            in_flight[0].result()
        for future in self._futures:
            if future.done():
                future.result()  # surface a failed part now, not at commit
        self._futures.append(self._pool.submit(self._upload_part, len(self._futures) + 1, body))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._filled == len(self._part):
                self._grow()
            n = min(len(view), len(self._part) - self._filled)
            self._part[self._filled : self._filled + n] = view[:n]
            self._filled += n
            self._written += n
            view = view[n:]
            if self._filled == self._part_size:
                # The filled part now belongs to its upload; never touch it again.
                part, self._part, self._filled = self._part, bytearray(), 0
                self._submit(part)

    def _grow(self) -> None:
        """Room for the rest of the part being filled, allocated once: growing it chunk by chunk would
        realloc-copy it over and over. Only what the client announced when that is less than a part
        (a 10 KB file gets a 10 KB buffer), the whole part when it sends more or announced nothing."""
        size = self._part_size
        if self._declared is not None:
            size = min(size, self._filled + max(self._declared - self._written, 0))
        if size <= len(self._part):
            size = self._part_size
        if self._part:
            self._part += bytes(size - len(self._part))
        else:
            self._part = bytearray(size)

    def _take_last(self) -> bytearray:
        """The part being filled, cut to what was written (in place: no copy)."""
        last, self._part, filled, self._filled = self._part, bytearray(), self._filled, 0
        del last[filled:]
        return last

    def commit(self) -> None:
        try:
            last = self._take_last()
            if self._upload_id is None:
                with s3_errors(f"put {self._key}"):
                    self._client.put_object(Bucket=self._bucket, Key=self._key, Body=last)
            else:
                if last:
                    self._submit(last)
                parts = [future.result() for future in self._futures]
                with s3_errors(f"complete multipart upload of {self._key}"):
                    self._client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._shutdown()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._take_last()
        for future in self._futures:
            future.cancel()
        self._shutdown()
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _UploadAborted(Exception):
    """Raised into a streamed PUT's body when the upload is abandoned, so S3 never completes it."""


class _BodyPipe:
    """The body of a streamed PUT: request chunks written by the proxy, read by botocore's sending thread.

    At most `limit` bytes wait in the pipe (writers block, which slows the client down through TCP);
    chunks are handed on as memoryviews of the request's own bytes, never copied. `fail` makes the
    next read raise, which aborts the PUT mid-body: S3 stores nothing from a PUT that did not send
    its whole Content-Length. The pipe can rewind only before its first byte was read (a retry of a
    failed connect), so botocore never resends a partial body.
    """

    def __init__(self, limit: int) -> None:
        self._cond = threading.Condition()
        self._chunks: deque[memoryview] = deque()
        self._queued = 0
        self._limit = limit
        self._eof = False
        self._error: BaseException | None = None
        self._reader_done = False
        self._current = memoryview(b"")
        self._consumed = 0

    # -- the proxy's side ---------------------------------------------------------------------------
    def put(self, data: bytes) -> bool:
        """Queue `data`; False when the PUT has already ended (its outcome says why)."""
        with self._cond:
            while self._queued >= self._limit and not self._reader_done:
                self._cond.wait()
            if self._reader_done:
                return False
            self._chunks.append(memoryview(data))
            self._queued += len(data)
            self._cond.notify_all()
            return True

    def finish(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def reader_done(self) -> None:
        with self._cond:
            self._reader_done = True
            self._chunks.clear()
            self._queued = 0
            self._cond.notify_all()

    # -- botocore's side (a file-like body) ---------------------------------------------------------
    def read(self, size: int = -1) -> memoryview | bytes:
        if not self._current:
            with self._cond:
                while not self._chunks and not self._eof and self._error is None:
                    self._cond.wait()
                if self._error is not None:
                    raise self._error
                if not self._chunks:
                    return b""
                self._current = self._chunks.popleft()
                self._queued -= len(self._current)
                self._cond.notify_all()
        size = len(self._current) if size is None or size < 0 else size
        out, self._current = self._current[:size], self._current[size:]
        self._consumed += len(out)
        return out

    def tell(self) -> int:
        return self._consumed

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if offset == 0 and whence == io.SEEK_SET and self._consumed == 0:
            return 0
        raise io.UnsupportedOperation("a streamed request body cannot be rewound")


class StreamedPutWriter(ArtifactWriter):
    """One streamed PUT of exactly `length` bytes, sent while the request body is still arriving.

    The PUT runs in its own thread, reading from a bounded pipe; commit waits for its answer. A body
    that stops short or runs over its announced length, and an abort, fail the PUT before its last
    byte, so no object (and no pending multipart upload) is ever left behind.
    """

    def __init__(self, client: Any, bucket: str, key: str, length: int) -> None:
        self._key = key
        self._length = length
        self._written = 0
        self._pipe = _BodyPipe(PIPE_BYTES)
        self._outcome: Future[None] = Future()
        self._closed = False

        def put() -> None:
            try:
                with s3_errors(f"put {key}"):
                    client.put_object(Bucket=bucket, Key=key, Body=self._pipe, ContentLength=length)
            except BaseException as exc:
                self._outcome.set_exception(exc)
            else:
                self._outcome.set_result(None)
            finally:
                self._pipe.reader_done()

        self._thread = threading.Thread(target=put, name="s3-put", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        self._written += len(data)
        if self._written > self._length:
            self.abort()
            raise ModelyardException(
                f"{self._key}: more bytes than the announced {self._length}", errors.BAD_REQUEST
            )
        if data and not self._pipe.put(data):
            self._closed = True
            self._outcome.result()  # the PUT ended early: raise why
            raise ModelyardException(f"put {self._key}: S3 stopped reading the body", errors.INTERNAL_ERROR)

    def commit(self) -> None:
        if self._written != self._length:
            self.abort()
            raise ModelyardException(
                f"{self._key}: {self._written} of the announced {self._length} bytes", errors.BAD_REQUEST
            )
        self._pipe.finish()
        self._thread.join()
        self._closed = True
        self._outcome.result()

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pipe.fail(_UploadAborted(f"upload of {self._key} abandoned"))
        self._thread.join()
