"""The S3 writer behind the artifacts service's streamed PUT, against moto's real S3 API.

It copies request chunks straight into part-sized buffers, sized from the announced Content-Length, so
these tests cross every boundary the copying can get wrong: chunks spanning parts, a body of exactly one
part, an empty body, no Content-Length, and a client that sends more or fewer bytes than it announced.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.artifacts import get_repository, s3
from modelyard.artifacts.s3 import S3ArtifactRepository

pytestmark = pytest.mark.s3

PART = 5 * 1024 * 1024  # S3's minimum part size, the smallest the writer accepts


@pytest.fixture
def repo(s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3ArtifactRepository:
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    repository = get_repository(f"s3://{s3_bucket}/root", chunk_size=PART)
    assert isinstance(repository, S3ArtifactRepository)
    return repository


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _stored(repo: S3ArtifactRepository, rel: str) -> tuple[bytes, str]:
    obj = repo.client.get_object(Bucket=repo.bucket, Key=f"root/{rel}")
    return obj["Body"].read(), obj["ETag"].strip('"')


def _pending_uploads(repo: S3ArtifactRepository) -> list[dict[str, Any]]:
    return repo.client.list_multipart_uploads(Bucket=repo.bucket, Prefix="root/").get("Uploads", [])


@pytest.mark.parametrize(
    ("size", "chunk", "parts"),
    [
        (0, 65536, 0),
        (10_000, 65536, 0),
        (PART - 1, 65536, 0),
        (PART, 65536, 1),
        (PART, 7 * 1024 * 1024, 1),  # one chunk larger than a part
        (2 * PART + 123, 65536, 3),
        (2 * PART + 123, 3 * 1024 * 1024 + 7, 3),  # chunks that straddle part boundaries
        (3 * PART, 11 * 1024 * 1024, 3),  # one chunk filling two parts and half of a third
    ],
)
@pytest.mark.parametrize("announced", ["exact", "none"])
def test_streamed_write_stores_every_byte(
    repo: S3ArtifactRepository, size: int, chunk: int, parts: int, announced: str
) -> None:
    data = os.urandom(size)
    writer = repo.open_write("w/blob.bin", size if announced == "exact" else None)
    writer.writelines(_chunks(data, chunk))
    writer.commit()
    stored, etag = _stored(repo, "w/blob.bin")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    # One PUT up to a part, a multipart upload (ETag "<md5>-<parts>") from a full part on.
    assert etag.endswith(f"-{parts}") if parts else "-" not in etag
    assert _pending_uploads(repo) == []


def test_a_small_announced_body_gets_a_small_buffer(repo: S3ArtifactRepository) -> None:
    """Part buffers are allocated whole (no realloc copies as they fill), so their size must come from
    Content-Length: a 10 KB file must not cost a 5 MiB buffer (zero-filled, page by page)."""
    data = os.urandom(10_000)
    repo.open_write("warm.bin", len(data)).abort()  # imports and client set-up are not the writer's
    tracemalloc.start()
    try:
        writer = repo.open_write("small.bin", len(data))
        writer.write(data)
        _, peak = tracemalloc.get_traced_memory()
        writer.commit()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024
    assert _stored(repo, "small.bin")[0] == data


@pytest.mark.parametrize("announced", [1, 10_000, PART + 1, 2 * PART + 500_000])
def test_a_client_sending_more_than_it_announced_loses_nothing(
    repo: S3ArtifactRepository, announced: int
) -> None:
    """The proxy refuses such a body after the fact (400); the writer must still not drop or mix bytes."""
    data = os.urandom(2 * PART + 1_000_000)
    writer = repo.open_write("more.bin", announced)
    writer.writelines(_chunks(data, 100_000))
    writer.commit()
    stored, _ = _stored(repo, "more.bin")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


def test_a_client_sending_less_than_it_announced_loses_nothing(repo: S3ArtifactRepository) -> None:
    data = os.urandom(PART + 10)
    writer = repo.open_write("less.bin", 4 * PART)
    writer.writelines(_chunks(data, 65536))
    writer.commit()
    stored, _ = _stored(repo, "less.bin")
    assert stored == data


def test_abort_after_parts_were_sent_leaves_nothing(repo: S3ArtifactRepository) -> None:
    writer = repo.open_write("aborted.bin", 4 * PART)
    writer.writelines(_chunks(os.urandom(2 * PART + 1), 65536))
    assert [u["Key"] for u in _pending_uploads(repo)] == ["root/aborted.bin"]
    writer.abort()
    assert _pending_uploads(repo) == []
    listed = repo.client.list_objects_v2(Bucket=repo.bucket, Prefix="root/").get("Contents", [])
    assert listed == []


@pytest.mark.parametrize("signing", [False, True], ids=["unsigned-payload", "signed-payload"])
def test_payload_signing_follows_the_setting(
    signing: bool, s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default bodies are sent as UNSIGNED-PAYLOAD (no SHA-256 pass over every byte);
    MODELYARD_S3_PAYLOAD_SIGNING=true puts the body's SHA-256 back into the signature. S3 takes both."""
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setattr(s3, "PAYLOAD_SIGNING", signing)
    monkeypatch.setattr(s3, "_CLIENTS", {})
    repository = get_repository(f"s3://{s3_bucket}/root", chunk_size=PART)
    assert isinstance(repository, S3ArtifactRepository)
    seen: dict[str, str] = {}

    def capture(request: Any, **kwargs: Any) -> None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        seen[operation] = request.headers["x-amz-content-sha256"].decode()

    repository.client.meta.events.register("before-send.s3", capture)
    small, big = os.urandom(1000), os.urandom(PART + 10)
    for name, data in (("small.bin", small), ("big.bin", big)):
        writer = repository.open_write(name, len(data))
        writer.write(data)
        writer.commit()
        assert _stored(repository, name)[0] == data
    if signing:
        assert seen["PutObject"] == hashlib.sha256(small).hexdigest()
        assert seen["UploadPart"] in {
            hashlib.sha256(big[:PART]).hexdigest(),
            hashlib.sha256(big[PART:]).hexdigest(),
        }
    else:
        assert seen["PutObject"] == seen["UploadPart"] == "UNSIGNED-PAYLOAD"
