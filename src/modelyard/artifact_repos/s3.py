"""Artifacts in S3 or anything that speaks its API (MinIO, LocalStack, moto's server), via boto3.

Reads (one streamed GET, or parallel ranged GETs), listing, deletes, multipart uploads and presigned
URLs live here; the boto3 client, its configuration and the mapping of S3 errors are in `s3_client`,
streamed writes in `s3_uploads`.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from modelyard.artifact_repos import s3_client, s3_folders
from modelyard.artifact_repos.base import (
    DEFAULT_CHUNK_SIZE,
    ArtifactRepository,
    ArtifactStream,
    ArtifactWriter,
    FileInfo,
    FolderListing,
    MultipartCredential,
    MultipartUpload,
    PresignedDownload,
)
from modelyard.artifact_repos.paths import join, relative_to, safe_relative_path
from modelyard.artifact_repos.s3_client import env_flag, get_s3_client, parse_s3_uri, s3_errors
from modelyard.artifact_repos.s3_uploads import MIN_PART, MultipartWriter, StreamedPutWriter
from modelyard.exceptions import ModelyardException

#: Ranges fetched ahead by one streamed read, and their size: memory is bounded by their product.
RANGES_IN_FLIGHT = 4
RANGE_SIZE = 4 * 1024 * 1024



#: Read through parallel ranged GETs (high-latency links to real S3) instead of one streamed GET.
RANGED_READS = env_flag("MODELYARD_S3_RANGED_READS")
#: A streamed write whose Content-Length is above one part and at most this goes to S3 as one streamed PUT
#: (no part buffers, half of an S3 server's work per byte when it stores parts and then joins them: moto
#: spends 2x the CPU on a multipart upload); bigger or unannounced bodies go multipart, where a failed
#: part is retried alone. S3 takes single PUTs up to 5 GiB.
SINGLE_PUT_MAX = int(os.environ.get("MODELYARD_S3_SINGLE_PUT_MAX") or 1024**3)
#: Bytes read from S3 and handed to the server per write of a streamed read. Each chunk is one thread
#: hop and one drain of the client socket: 4 MiB reached ~85% of a direct GET's speed on moto where 1 MiB
#: reached ~75% (and 256 KiB ~70%); a download holds about two chunks.
STREAM_CHUNK = 4 * 1024 * 1024


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



class S3ArtifactRepository(ArtifactRepository):
    def __init__(self, artifact_uri: str, chunk_size: int = DEFAULT_CHUNK_SIZE, client: Any = None) -> None:
        super().__init__(artifact_uri)
        self.bucket, self.prefix = parse_s3_uri(artifact_uri)
        self.chunk_size = max(chunk_size, MIN_PART)
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

    def at_root(self, path: str) -> tuple[ArtifactRepository, str]:
        return S3ArtifactRepository(f"s3://{self.bucket}", client=self._client), self._key(safe_relative_path(path))

    def list_folders(self, paths: Sequence[str]) -> FolderListing:
        """A few key ranges instead of a listing per folder (`s3_folders`)."""
        keys = [self._key(safe_relative_path(path)) for path in paths]
        return s3_folders.list_folders(self.client, self.bucket, keys, paths)

    def delete_listed(self, listing: FolderListing) -> None:
        """Exactly the keys the listing found, 1,000 per DeleteObjects call across its folders."""
        if listing.keys is None:
            super().delete_listed(listing)
        else:
            s3_folders.delete_keys(self.client, self.bucket, listing.keys)

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
            and not s3_client.PAYLOAD_SIGNING  # read at call time: tests switch it
        ):
            return StreamedPutWriter(self.client, self.bucket, key, content_length)
        return MultipartWriter(self.client, self.bucket, key, self.chunk_size, content_length)

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
