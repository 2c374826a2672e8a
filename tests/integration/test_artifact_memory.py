"""Bounded memory: the artifacts service proxies a 200 MB upload and download to S3 (moto's server) while
its worker's resident memory stays within 64 MB of idle; the bytes round-trip exactly."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psutil
import pytest
from tests.integration.artifact_helpers import API, artifacts_service, random_file, sha256

from modelyard.artifact_repos.http import HttpArtifactRepository
from modelyard.devstack.s3 import S3Server

pytestmark = [pytest.mark.s3, pytest.mark.slow]

SIZE = 200 * 1024 * 1024
BUDGET = 64 * 1024 * 1024


class PeakRss:
    """Samples the summed RSS of a gunicorn master's workers in a background thread."""

    def __init__(self, master_pid: int) -> None:
        self.master = psutil.Process(master_pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        total = 0
        for child in self.master.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def test_200mb_upload_and_download_stay_within_64mb_of_idle(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plain streamed PUT, so every byte passes through the proxy (no presigned multipart).
    monkeypatch.setenv("MODELYARD_MULTIPART_UPLOAD_MIN_SIZE", str(10 * SIZE))
    bucket = f"mem-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    big = random_file(tmp_path / "big.bin", SIZE)
    small = random_file(tmp_path / "warm.bin", 12 * 1024 * 1024)
    with artifacts_service(tmp_path / "svc", f"s3://{bucket}/root", s3_server.endpoint, workers=1) as service:
        repo = HttpArtifactRepository(f"{service.url}{API}/1/run/artifacts")
        # Warm up: imports, boto3 client, thread pools; "idle" is measured after that.
        repo.log_artifact(str(small))
        repo.download_artifacts("warm.bin", str(tmp_path / "warm"))
        assert service.pid is not None
        sampler = PeakRss(service.pid)
        idle = sampler.current()
        with sampler:
            repo.log_artifact(str(big))
            downloaded = repo.download_artifacts("big.bin", str(tmp_path / "down"))
    growth = sampler.peak - idle
    with capsys.disabled():
        print(
            f"\nartifacts worker RSS: idle {idle / 2**20:.1f} MiB, peak {sampler.peak / 2**20:.1f} MiB, "
            f"growth {growth / 2**20:.1f} MiB for a 200 MB upload + download"
        )
    assert sha256(downloaded) == sha256(big)
    assert growth < BUDGET
