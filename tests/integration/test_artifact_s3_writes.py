"""The S3 writers behind the artifacts service's streamed PUT, against moto's real S3 API.

Two paths: a body announced at one part or more (up to SINGLE_PUT_MAX) streams to S3 as one PUT while it
arrives; a smaller one is buffered and PUT at commit, and a body of unknown length (or above the maximum)
is copied into part-sized buffers and uploaded as multipart parts. These tests cross every boundary the
copying can get wrong, and every way a client can break its promise (more or fewer bytes than announced,
hanging up), on both paths: the bytes arrive exactly, or nothing is stored and nothing is left pending.
"""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.artifact_repos import get_repository, s3, s3_client, s3_uploads
from modelyard.artifact_repos.s3 import S3ArtifactRepository
from modelyard.devstack.process import free_port
from modelyard.exceptions import ModelyardException

pytestmark = pytest.mark.s3

PART = 5 * 1024 * 1024  # S3's minimum part size, the smallest the writer accepts


@pytest.fixture(params=["single-put", "multipart"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "multipart":
        monkeypatch.setattr(s3, "SINGLE_PUT_MAX", 0)
    return str(request.param)


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


def _nothing_left(repo: S3ArtifactRepository) -> None:
    assert repo.client.list_multipart_uploads(Bucket=repo.bucket, Prefix="root/").get("Uploads", []) == []
    assert repo.client.list_objects_v2(Bucket=repo.bucket, Prefix="root/").get("Contents", []) == []


SIZES = [
    (0, 65536),
    (10_000, 65536),
    (PART - 1, 65536),
    (PART, 65536),
    (PART, 7 * 1024 * 1024),  # one chunk larger than a part
    (2 * PART + 123, 65536),
    (2 * PART + 123, 3 * 1024 * 1024 + 7),  # chunks that straddle part boundaries
    (3 * PART, 11 * 1024 * 1024),  # one chunk filling two parts and half of a third
]


@pytest.mark.parametrize(("size", "chunk"), SIZES)
@pytest.mark.parametrize("announced", [True, False], ids=["announced", "unannounced"])
def test_streamed_write_stores_every_byte(
    repo: S3ArtifactRepository, mode: str, size: int, chunk: int, announced: bool
) -> None:
    data = os.urandom(size)
    writer = repo.open_write("w/blob.bin", size if announced else None)
    writer.writelines(_chunks(data, chunk))
    writer.commit()
    stored, etag = _stored(repo, "w/blob.bin")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    # One PUT below a part, and from a part on when announced (single-put mode); else multipart
    # (ETag "<md5>-<parts>").
    parts = 0 if size < PART or (announced and mode == "single-put") else -(-size // PART)
    assert etag.endswith(f"-{parts}") if parts else "-" not in etag
    assert repo.client.list_multipart_uploads(Bucket=repo.bucket, Prefix="root/").get("Uploads", []) == []


def test_more_bytes_than_announced(repo: S3ArtifactRepository, mode: str) -> None:
    """Over HTTP the proxy cannot receive more than Content-Length; a writer told a length it then
    exceeds refuses when it streams (the PUT's length is already on the wire) and stores nothing, or,
    buffering, keeps every byte (the proxy refuses such a body after the fact anyway)."""
    data = os.urandom(2 * PART + 1_000_000)
    writer = repo.open_write("more.bin", PART + 1)
    if mode == "single-put":
        with pytest.raises(ModelyardException) as info:
            writer.writelines(_chunks(data, 100_000))
        assert info.value.error_code == "BAD_REQUEST"
        writer.abort()
        _nothing_left(repo)
    else:
        writer.writelines(_chunks(data, 100_000))
        writer.commit()
        assert _stored(repo, "more.bin")[0] == data


@pytest.mark.parametrize("announced", [1, 10_000])
def test_more_bytes_than_a_small_announced_size_are_all_kept(
    repo: S3ArtifactRepository, announced: int
) -> None:
    """Below a part the body is buffered whatever it announced: its buffer grows past the announcement."""
    data = os.urandom(2 * PART + 1_000_000)
    writer = repo.open_write("more.bin", announced)
    writer.writelines(_chunks(data, 100_000))
    writer.commit()
    stored, _ = _stored(repo, "more.bin")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


def test_fewer_bytes_than_announced(repo: S3ArtifactRepository, mode: str) -> None:
    data = os.urandom(PART + 10)
    writer = repo.open_write("less.bin", 4 * PART)
    writer.writelines(_chunks(data, 65536))
    if mode == "single-put":
        with pytest.raises(ModelyardException) as info:
            writer.commit()
        assert info.value.error_code == "BAD_REQUEST"
        _nothing_left(repo)
    else:
        writer.commit()
        assert _stored(repo, "less.bin")[0] == data


def test_abort_after_bytes_reached_s3_leaves_nothing(repo: S3ArtifactRepository, mode: str) -> None:
    writer = repo.open_write("aborted.bin", 4 * PART)
    writer.writelines(_chunks(os.urandom(2 * PART + 1), 65536))
    if mode == "multipart":
        uploads = repo.client.list_multipart_uploads(Bucket=repo.bucket, Prefix="root/").get("Uploads", [])
        assert [u["Key"] for u in uploads] == ["root/aborted.bin"]
    else:
        # The pipe holds at most PIPE_BYTES: everything else has been sent to S3 already.
        assert s3_uploads.PIPE_BYTES < 2 * PART
    writer.abort()
    _nothing_left(repo)


def test_a_streamed_put_waits_for_its_body_without_holding_it(repo: S3ArtifactRepository) -> None:
    """The single PUT sends bytes as they are written: a writer blocked on a full pipe unblocks only
    because S3 reads, and at no time is more than the pipe (plus one chunk) held in memory."""
    size = 6 * PART
    writer = repo.open_write("piped.bin", size)
    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        for _ in range(size // 65536):
            block = os.urandom(65536)
            digest.update(block)
            writer.write(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    writer.commit()
    assert peak < s3_uploads.PIPE_BYTES + 4 * 1024 * 1024
    stored, etag = _stored(repo, "piped.bin")
    assert hashlib.sha256(stored).digest() == digest.digest() and "-" not in etag


def test_a_failing_put_fails_the_writer_promptly(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 failing the PUT before reading its body (here: nothing listens) must surface in write/commit
    as a 503, not leave the writer blocked on a pipe that nobody reads."""
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(s3_client, "_CLIENTS", {})
    writer = get_repository("s3://bucket/root", chunk_size=PART).open_write("x.bin", 4 * PART)
    outcome: list[BaseException] = []

    def feed() -> None:
        try:
            writer.writelines(_chunks(os.urandom(4 * PART), 65536))
            writer.commit()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the writer hung on a PUT that had already failed"
    assert outcome and isinstance(outcome[0], ModelyardException), outcome
    assert outcome[0].error_code == "TEMPORARILY_UNAVAILABLE"


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


@pytest.mark.parametrize("signing", [False, True], ids=["unsigned-payload", "signed-payload"])
def test_payload_signing_follows_the_setting(
    signing: bool, s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default bodies are sent as UNSIGNED-PAYLOAD (no SHA-256 pass over every byte);
    MODELYARD_S3_PAYLOAD_SIGNING=true puts the body's SHA-256 back into the signature (and, since a
    streamed body cannot be hashed before it is sent, uploads bigger than a part go multipart)."""
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setattr(s3_client, "PAYLOAD_SIGNING", signing)
    monkeypatch.setattr(s3_client, "_CLIENTS", {})
    repository = get_repository(f"s3://{s3_bucket}/root", chunk_size=PART)
    assert isinstance(repository, S3ArtifactRepository)
    seen: dict[str, set[str]] = {}

    def capture(request: Any, **kwargs: Any) -> None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        seen.setdefault(operation, set()).add(request.headers["x-amz-content-sha256"].decode())

    repository.client.meta.events.register("before-send.s3", capture)
    small, big = os.urandom(1000), os.urandom(PART + 10)
    for name, data in (("small.bin", small), ("big.bin", big)):
        writer = repository.open_write(name, len(data))
        writer.write(data)
        writer.commit()
        assert _stored(repository, name)[0] == data
    if signing:
        assert seen["PutObject"] == {hashlib.sha256(small).hexdigest()}
        assert seen["UploadPart"] == {
            hashlib.sha256(big[:PART]).hexdigest(),
            hashlib.sha256(big[PART:]).hexdigest(),
        }
    else:
        assert seen["PutObject"] == {"UNSIGNED-PAYLOAD"}
        assert "UploadPart" not in seen
