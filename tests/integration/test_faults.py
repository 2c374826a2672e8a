"""Fault scenario: an artifacts worker killed (SIGKILL) in the middle of an upload. Nothing
acknowledged is lost, nothing half-written becomes visible, and the service serves again at once
(gunicorn replaces the worker). The PostgreSQL restart, S3 outage and S3 freeze scenarios live next to
the code they exercise (test_query_budget.py, test_artifact_service.py)."""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
import requests
from tests.integration.artifact_helpers import API, artifacts_service

from modelyard.devstack.process import wait_until

pytestmark = pytest.mark.s3


def test_a_worker_killed_mid_upload_loses_nothing_acknowledged(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    kept = os.urandom(3 * 1024 * 1024 + 5)
    with artifacts_service(tmp_path, f"s3://{s3_bucket}/root", s3_endpoint, workers=1) as service:
        assert requests.put(f"{service.url}{API}/run/kept.bin", data=kept, timeout=60).status_code == 200
        (worker,) = psutil.Process(service.pid).children()

        address = urlparse(service.url)
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        conn.putrequest("PUT", f"{API}/run/cut.bin")
        conn.putheader("Content-Length", str(20 * 1024 * 1024))
        conn.endheaders()
        conn.send(os.urandom(4 * 1024 * 1024))  # well under way, far from done
        time.sleep(0.2)
        os.kill(worker.pid, signal.SIGKILL)
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.send(os.urandom(16 * 1024 * 1024))
            conn.getresponse().read()
        conn.close()

        # gunicorn starts a new worker; the service answers again within seconds.
        wait_until(lambda: requests.get(f"{service.url}/health", timeout=5).ok, timeout=30, what="a new worker")
        got = requests.get(f"{service.url}{API}/run/kept.bin", timeout=60)
        assert got.status_code == 200 and got.content == kept
        assert requests.get(f"{service.url}{API}/run/cut.bin", timeout=60).status_code == 404
        listed = requests.get(f"{service.url}{API}", params={"path": "run"}, timeout=60).json()
        assert [f["path"] for f in listed["files"]] == ["kept.bin"]
