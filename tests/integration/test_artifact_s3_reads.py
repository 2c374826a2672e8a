"""Both S3 read paths of the artifact repository return the exact bytes, against moto's real S3 API."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelyard.artifacts import get_repository, s3

pytestmark = pytest.mark.s3


@pytest.mark.parametrize("ranged", [False, True], ids=["one-streamed-get", "ranged-gets"])
def test_streamed_read_returns_every_byte(
    ranged: bool, s3_endpoint: str, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setattr(s3, "RANGED_READS", ranged)
    data = os.urandom(9 * 1024 * 1024 + 123)  # more than two ranges, not a multiple of any chunk
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    repo = get_repository(f"s3://{s3_bucket}/root")
    repo.log_artifact(str(source), "dir")
    stream = repo.open_read("dir/blob.bin")
    try:
        assert stream.size == len(data)
        assert hashlib.sha256(b"".join(stream.chunks)).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        stream.close()
    with pytest.raises(Exception) as info:
        repo.open_read("dir/missing.bin")
    assert getattr(info.value, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"
