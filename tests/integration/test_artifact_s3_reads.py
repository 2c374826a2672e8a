"""Both S3 read paths of the artifact repository return the exact bytes, against moto's real S3 API."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import psutil
import pytest
import requests
from tests.integration.artifact_helpers import API, artifacts_service

from modelyard.artifact_repos import get_repository, s3
from modelyard.devstack.process import wait_until

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


def test_a_streamed_read_fills_a_reused_buffer_with_the_same_bytes(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy's copy thread reads a GetObject body into one buffer through http.client, reached via
    botocore's and urllib3's private attributes (`s3.direct_readinto`): this fails if an upgrade of
    either moves them, instead of the proxy silently losing that path."""
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    data = os.urandom(3 * 1024 * 1024 + 77)
    (tmp_path / "blob.bin").write_bytes(data)
    repo = get_repository(f"s3://{s3_bucket}/reused")
    repo.log_artifact(str(tmp_path / "blob.bin"))
    stream = repo.open_read("blob.bin")
    try:
        assert stream.readinto is not None, "botocore/urllib3 no longer expose http.client's response"
        buffer = memoryview(bytearray(256 * 1024))
        read = bytearray()
        while n := stream.readinto(buffer):
            read += buffer[:n]
        assert bytes(read) == data
    finally:
        stream.close()


def test_once_one_worker_built_its_s3_client_the_others_build_theirs(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    """An idle service never loads boto3 (~38 MB per worker); after the first artifact request (served by
    one worker) every worker builds its client in the background, so no later request waits for it."""
    with artifacts_service(tmp_path / "svc", f"s3://{s3_bucket}/root", s3_endpoint, workers=2) as service:
        service.wait_all_workers()  # the health check proves one; the other may still be importing
        workers = psutil.Process(service.pid).children()
        assert len(workers) == 2
        idle = {w.pid: w.memory_info().rss for w in workers}
        time.sleep(1.0)  # several of the workers' flag checks: nothing is built while nobody asks
        assert all(w.memory_info().rss - idle[w.pid] < 8 * 2**20 for w in workers)

        response = requests.get(f"{service.url}{API}/missing.bin", timeout=30)  # one worker, via S3
        assert response.status_code == 404

        def everyone_built_a_client() -> bool:
            return all(w.memory_info().rss - idle[w.pid] > 15 * 2**20 for w in workers)

        wait_until(everyone_built_a_client, timeout=30, what="every worker's S3 client")
