"""Artifacts in S3 or anything that speaks its API (MinIO, LocalStack, moto's server), via boto3.

Configuration comes from the environment so the same code runs against AWS and a laptop stack:
`MODELYARD_S3_ENDPOINT_URL` (else MLflow's `MLFLOW_S3_ENDPOINT_URL`, else boto3's own
`AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`), `MODELYARD_S3_ADDRESSING_STYLE` (path-style by default
when an endpoint is set, which is what local S3 servers want), region and credentials from boto3's
usual chain. Connect timeouts are short and retries bounded so an unreachable S3 turns into
TEMPORARILY_UNAVAILABLE (503) within seconds instead of a hung request.

A streamed write whose length is announced (Content-Length) and at least one part is sent as one PUT
while the body is still arriving, through a pipe of a few MiB; one of unknown length, or above
SINGLE_PUT_MAX, is a multipart upload with a few parts in flight, in memory bounded by (parts in flight
+ 1) x part size; a smaller one is buffered and PUT at commit. An upload that is aborted or cut off is
failed at S3 before its last byte (PUT) or aborted (multipart), so no partial object ever becomes visible.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlparse

from modelyard import errors
from modelyard.artifact_repos.base import (
    DEFAULT_CHUNK_SIZE,
    ArtifactRepository,
    ArtifactStream,
    ArtifactWriter,
    FileInfo,
    MultipartCredential,
    MultipartUpload,
    PresignedDownload,
)
from modelyard.artifact_repos.paths import join, relative_to, safe_relative_path
from modelyard.exceptions import ModelyardException

#: Parts uploaded concurrently by one streamed write; bounds its memory to (this + 1) parts.
PARTS_IN_FLIGHT = int(os.environ.get("MODELYARD_S3_PARTS_IN_FLIGHT") or 3)
#: Ranges fetched ahead by one streamed read, and their size: memory is bounded by their product.
RANGES_IN_FLIGHT = 4
RANGE_SIZE = 4 * 1024 * 1024


def _flag(name: str) -> bool:
    return (os.environ.get(name) or "false").strip().lower() in {"1", "true", "yes", "on"}


#: Read through parallel ranged GETs (high-latency links to real S3) instead of one streamed GET.
RANGED_READS = _flag("MODELYARD_S3_RANGED_READS")
#: SHA-256 every request body into its SigV4 signature. Off by default: hashing was the largest CPU cost
#: per uploaded byte in the proxy (~1/4 of it). The headers (credentials, key, length) are signed either
#: way; the body is protected by TLS against AWS, and boto3's own defaults do not hash bodies over HTTPS.
PAYLOAD_SIGNING = _flag("MODELYARD_S3_PAYLOAD_SIGNING")
#: A streamed write whose Content-Length is above one part and at most this goes to S3 as one streamed PUT
#: (no part buffers, half of an S3 server's work per byte when it stores parts and then joins them: moto
#: spends 2x the CPU on a multipart upload); bigger or unannounced bodies go multipart, where a failed
#: part is retried alone. S3 takes single PUTs up to 5 GiB.
SINGLE_PUT_MAX = int(os.environ.get("MODELYARD_S3_SINGLE_PUT_MAX") or 1024**3)
#: Request bytes queued for a streamed PUT; what bounds its memory.
PIPE_BYTES = 2 * 1024 * 1024
#: Bytes read from S3 and handed to the server per write of a streamed read. Each chunk is one thread
#: hop and one drain of the client socket: 4 MiB reached ~85% of a direct GET's speed on moto where 1 MiB
#: reached ~75% (and 256 KiB ~70%); a download holds about two chunks.
STREAM_CHUNK = 4 * 1024 * 1024

_MIN_PART = 5 * 1024 * 1024
_CLIENT_LOCK = threading.Lock()
_CLIENTS: dict[tuple[Any, ...], Any] = {}


def direct_readinto(body: Any) -> Callable[[memoryview], int] | None:
    """The `readinto` of the http.client response under a GetObject body, or None.

    botocore's body reads through urllib3, which returns a new bytes object per read (urllib3's own
    `readinto` copies one of those); http.client fills a caller's buffer straight from the socket, so a
    proxied download can reuse one buffer (`ArtifactStream.readinto`). It is reached through two private
    attributes (botocore's `_raw_stream`, urllib3's `_fp`), so it is used only when both are what they
    are today, and `tests/integration/test_artifact_s3_reads.py` fails if a dependency upgrade changes
    that.
    The bytes are the same: botocore reads with urllib3's content decoding off, and http.client still
    checks Content-Length (a connection that ends early reads as 0: the proxy then finds the body short).
    Afterwards urllib3 no longer knows where the response stands, so the body must be closed (the
    stream's closer does), which closes that S3 connection instead of pooling it: one connection per
    download of more than `artifact_proxy.streaming.INLINE_MAX`.
    """
    raw = getattr(body, "_raw_stream", None)
    response = getattr(raw, "_fp", None)
    if not isinstance(response, http.client.HTTPResponse) or getattr(raw, "decode_content", True):
        return None
    return response.readinto


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


def s3_client_config() -> tuple[str | None, str | None, float, float]:
    """Endpoint, addressing style, connect and read timeouts. The read timeout bounds how long S3
    may stay silent on an open connection: a frozen S3 (accepting connections, never answering)
    then fails a request within seconds (x2 with the one retry) instead of hanging as long as S3 does."""
    endpoint = _env("MODELYARD_S3_ENDPOINT_URL") or _env("MLFLOW_S3_ENDPOINT_URL")
    style = _env("MODELYARD_S3_ADDRESSING_STYLE")
    if style is None and (endpoint or _env("AWS_ENDPOINT_URL_S3") or _env("AWS_ENDPOINT_URL")):
        style = "path"
    connect_timeout = float(_env("MODELYARD_S3_CONNECT_TIMEOUT") or 3)
    read_timeout = float(_env("MODELYARD_S3_READ_TIMEOUT") or 10)
    return endpoint, style, connect_timeout, read_timeout


def get_s3_client(endpoint_url: str | None = None) -> Any:
    """One boto3 client per configuration per process (boto3 clients are thread-safe). `endpoint_url`
    replaces the configured endpoint: presigned URLs are signed for the address clients will GET."""
    import boto3
    from botocore.config import Config

    endpoint, *rest = s3_client_config()
    key = (endpoint_url or endpoint, *rest, os.getpid(), _env("AWS_ACCESS_KEY_ID"), _env("AWS_DEFAULT_REGION"))
    with _CLIENT_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            endpoint, style, connect_timeout, read_timeout = key[0], key[1], key[2], key[3]
            config = Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={
                    "payload_signing_enabled": PAYLOAD_SIGNING,
                    **({"addressing_style": style} if style else {}),
                },
                max_pool_connections=32,
                # Presigned URLs (multipart parts, downloads) in SigV4, which every AWS region accepts; left
                # alone, botocore signs them in SigV2 for a custom endpoint or an unset region.
                signature_version="s3v4",
                # moto and older S3 clones reject the newer default checksum trailers on presigned parts.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
            _CLIENTS[key] = client
        return client


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ModelyardException.invalid_parameter(f"Not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.strip("/")


#: S3 error codes that blame what the client sent (parts of a multipart upload, mostly), not the server's
#: configuration: a 400 for the client, never a 500.
_REQUEST_FAULTS = frozenset(
    {
        "InvalidPart",
        "InvalidPartOrder",
        "EntityTooSmall",
        "InvalidArgument",
        "MalformedXML",
        "KeyTooLongError",
    }
)


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """botocore errors -> ModelyardException with the code the client should see."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404 and code != "NoSuchBucket":
            raise ModelyardException.not_found(f"{what}: not found") from exc
        if code == "NoSuchUpload":
            raise ModelyardException.invalid_parameter(f"{what}: unknown upload id") from exc
        if code in _REQUEST_FAULTS:
            raise ModelyardException.invalid_parameter(f"{what}: S3 refused the request ({code})") from exc
        if status is not None and int(status) >= 500 or code in ("SlowDown", "ServiceUnavailable"):
            raise ModelyardException(
                f"{what}: S3 unavailable ({code})", errors.TEMPORARILY_UNAVAILABLE
            ) from exc
        raise ModelyardException(f"{what}: S3 error {code}", errors.INTERNAL_ERROR) from exc
    except (ConnectionError, HTTPClientError) as exc:
        raise ModelyardException(f"{what}: S3 unreachable ({exc})", errors.TEMPORARILY_UNAVAILABLE) from exc
    except BotoCoreError as exc:
        raise ModelyardException(f"{what}: S3 client error ({exc})", errors.TEMPORARILY_UNAVAILABLE) from exc


class _S3Writer(ArtifactWriter):
    """Request chunks are copied once, into the part being filled: a bytearray allocated whole, which
    becomes the `upload_part` body as is (botocore sends any buffer without copying it). There is no
    join per batch or per part; each of those copied every byte once more."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int, declared: int | None) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = max(part_size, _MIN_PART)
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


class _S3StreamWriter(ArtifactWriter):
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


class S3ArtifactRepository(ArtifactRepository):
    def __init__(self, artifact_uri: str, chunk_size: int = DEFAULT_CHUNK_SIZE, client: Any = None) -> None:
        super().__init__(artifact_uri)
        self.bucket, self.prefix = parse_s3_uri(artifact_uri)
        self.chunk_size = max(chunk_size, _MIN_PART)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = get_s3_client()
        return self._client

    @property
    def needs_warm_up(self) -> bool:
        return self._client is None

    def warm_up(self) -> None:
        _ = self.client

    def _key(self, path: str | None) -> str:
        return join(self.prefix, path)

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.chunk_size, multipart_chunksize=self.chunk_size, max_concurrency=8
        )

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        key = self._key(join("", artifact_path, os.path.basename(local_file)))
        with s3_errors(f"upload {key}"):
            self.client.upload_file(local_file, self.bucket, key, Config=self._transfer_config())

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        rel = safe_relative_path(path)
        prefix = self._key(rel)
        prefix = prefix + "/" if prefix else ""
        infos: list[FileInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with s3_errors(f"list {prefix}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    infos.append(FileInfo(relative_to(common["Prefix"].rstrip("/"), self.prefix), True, None))
                for obj in page.get("Contents", []):
                    if obj["Key"] == prefix:
                        continue  # a "folder marker" object some tools create
                    infos.append(FileInfo(relative_to(obj["Key"], self.prefix), False, int(obj["Size"])))
        return sorted(infos, key=lambda i: i.path)

    def _download_file(self, remote_path: str, local_path: str) -> None:
        key = self._key(remote_path)
        with s3_errors(f"download {key}"):
            self.client.download_file(self.bucket, key, local_path, Config=self._transfer_config())

    def delete_artifacts(self, path: str | None = None) -> None:
        """Everything under `path`, a listed page (at most 1,000 keys) per DeleteObjects call, so
        memory stays flat however many objects the prefix holds."""
        key = self._key(path)
        paginator = self.client.get_paginator("list_objects_v2")
        with s3_errors(f"delete {key}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key + "/" if key else ""):
                batch = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if batch:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if key:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key}], "Quiet": True}
                )

    def walk(self, path: str | None = None) -> Iterator[FileInfo]:
        """One flat listing of the prefix (no per-folder round trips)."""
        key = self._key(safe_relative_path(path))
        paginator = self.client.get_paginator("list_objects_v2")
        with s3_errors(f"list {key}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key + "/" if key else ""):
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith("/"):
                        yield FileInfo(relative_to(obj["Key"], self.prefix), False, int(obj["Size"]))

    def open_read(self, path: str) -> ArtifactStream:
        rel = safe_relative_path(path)
        if not rel:
            raise ModelyardException.not_found("The artifact root is a directory")
        key = self._key(rel)
        if RANGED_READS:
            with s3_errors(f"read {rel}"):
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            size = int(head["ContentLength"])
            return ArtifactStream(size, self._ranges(key, size, head.get("ETag")))
        # One streamed GET: no HEAD round trip (small files), and S3 servers that answer a ranged GET by
        # reading the whole object (moto) stream it once instead of once per range.
        with s3_errors(f"read {rel}"):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        body = response["Body"]
        return ArtifactStream(
            int(response["ContentLength"]), self._stream(key, body), body.close, direct_readinto(body)
        )

    @staticmethod
    def _stream(key: str, body: Any) -> Iterator[bytes]:
        try:
            with s3_errors(f"read {key}"):
                yield from body.iter_chunks(STREAM_CHUNK)
        finally:
            body.close()  # a client that hung up must not leave the connection half-read

    def _ranges(self, key: str, size: int, etag: str | None) -> Iterator[bytes]:
        """The object as consecutive ranged GETs, a few fetched ahead: throughput of parallel
        transfers with memory bounded by RANGES_IN_FLIGHT chunks. `If-Match` pins every range to the
        version we started with, so a concurrent overwrite fails the download instead of mixing bytes."""
        if size == 0:
            return
        step = RANGE_SIZE
        starts = list(range(0, size, step))

        def fetch(start: int) -> bytes:
            end = min(start + step, size) - 1
            extra = {"IfMatch": etag} if etag else {}
            with s3_errors(f"read {key}"):
                body = self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}", **extra
                )
                return body["Body"].read()

        with ThreadPoolExecutor(max_workers=RANGES_IN_FLIGHT, thread_name_prefix="s3-range") as pool:
            pending: list[Future[bytes]] = []
            next_index = 0
            try:
                while next_index < len(starts) or pending:
                    while next_index < len(starts) and len(pending) < RANGES_IN_FLIGHT:
                        pending.append(pool.submit(fetch, starts[next_index]))
                        next_index += 1
                    data = pending.pop(0).result()
                    # Hand the range out in slices so the server writes smoothly.
                    view = memoryview(data)
                    for offset in range(0, len(data), 1024 * 1024):
                        yield bytes(view[offset : offset + 1024 * 1024])
            finally:
                for future in pending:
                    future.cancel()

    def open_write(self, path: str, content_length: int | None = None) -> ArtifactWriter:
        rel = safe_relative_path(path)
        if not rel:
            raise ModelyardException.invalid_parameter("An artifact path is required")
        key = self._key(rel)
        # Below one part the body is buffered and PUT at commit; a signed payload would need the whole
        # body hashed before its first byte is sent, so it (like a body of unknown length) goes multipart.
        if (
            content_length is not None
            and self.chunk_size <= content_length <= SINGLE_PUT_MAX
            and not PAYLOAD_SIGNING
        ):
            return _S3StreamWriter(self.client, self.bucket, key, content_length)
        return _S3Writer(self.client, self.bucket, key, self.chunk_size, content_length)

    # ---- multipart with presigned part URLs (MLflow's proxy protocol) ---------------------------
    @property
    def supports_multipart(self) -> bool:
        return True

    def create_multipart_upload(self, path: str, num_parts: int) -> MultipartUpload:
        rel = safe_relative_path(path)
        if not rel:
            raise ModelyardException.invalid_parameter("An artifact path is required")
        if not 1 <= num_parts <= 10000:
            raise ModelyardException.invalid_parameter("num_parts must be between 1 and 10000")
        key = self._key(rel)
        with s3_errors(f"create multipart upload for {rel}"):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            credentials = [
                MultipartCredential(
                    url=self.client.generate_presigned_url(
                        "upload_part",
                        Params={
                            "Bucket": self.bucket,
                            "Key": key,
                            "UploadId": upload_id,
                            "PartNumber": number,
                        },
                        ExpiresIn=3600,
                    ),
                    part_number=number,
                )
                for number in range(1, num_parts + 1)
            ]
        return MultipartUpload(upload_id, credentials)

    def complete_multipart_upload(self, path: str, upload_id: str, parts: Sequence[dict[str, Any]]) -> None:
        key = self._key(safe_relative_path(path))
        try:
            s3_parts = [{"PartNumber": int(p["part_number"]), "ETag": str(p["etag"])} for p in parts]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelyardException.invalid_parameter("Each part needs part_number and etag") from exc
        with s3_errors(f"complete multipart upload of {path}"):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": s3_parts}
            )

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        key = self._key(safe_relative_path(path))
        with s3_errors(f"abort multipart upload of {path}"):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # ---- presigned downloads (MLflow's `/mlflow-artifacts/presigned/<path>`) ----------------------
    @property
    def supports_presigned_downloads(self) -> bool:
        return True

    def presigned_download(self, path: str, expires_in: int, endpoint_url: str | None = None) -> PresignedDownload:
        """A HEAD for the size (and to answer 404 for a missing file or a folder), then a GetObject URL.

        Signing is local (no request); the URL carries `response-content-disposition: attachment` inside
        its signature, so a browser opening it saves the file instead of rendering HTML or SVG an
        uploader wrote, on the bucket's origin."""
        rel = safe_relative_path(path)
        if not rel:
            raise ModelyardException.not_found("The artifact root is a directory")
        key = self._key(rel)
        with s3_errors(f"read {rel}"):
            size = int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        signer = get_s3_client(endpoint_url) if endpoint_url else self.client
        name = quote(rel.rsplit("/", 1)[-1], safe="")
        with s3_errors(f"sign {rel}"):
            url = signer.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f"attachment; filename*=UTF-8''{name}",
                },
                ExpiresIn=expires_in,
            )
        return PresignedDownload(url, size)
