"""schemathesis against `/openapi.json` of the tracking (SQLite and PostgreSQL) and artifacts (S3) services
under real gunicorn: every documented operation gets a bounded number of generated requests, valid and
invalid, and none may be answered with a server error.

The examples per operation are few (the whole module stays well under 3 minutes on 2 cores) and the seed
is fixed, so a run is repeatable; raise MODELYARD_FUZZ_EXAMPLES locally to search harder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.support.services import start_service, start_tracking_server

from modelyard.devstack.services import ARTIFACTS

EXAMPLES = os.environ.get("MODELYARD_FUZZ_EXAMPLES", "8")

#: The artifacts API answers 501 where MLflow's does, and the mlflow client relies on it to fall back:
#: no presigned downloads (`MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS` off, the default), and (`MODELYARD_ARTIFACTS_MULTIPART_UPLOAD=false` or a local destination)
#: no multipart uploads.
MLFLOW_501 = """
[[operations]]
include-path-regex = "/mlflow-artifacts/(presigned|mpu)/"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "501"]
"""
def logged_exceptions(log: str) -> set[str]:
    """The exception types whose tracebacks a service log holds (an answered 500 logs one)."""
    return set(re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception))\b", log, re.MULTILINE)) if "Traceback" in log else set()


def fuzz(base_url: str, workdir: Path, config: str = "") -> None:
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config)
    schema = httpx.get(f"{base_url}/openapi.json").json()
    assert schema["openapi"] == "3.1.0" and schema["paths"]
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run",
        f"{base_url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", EXAMPLES,
        "--seed", "15", "--workers", "1", "--no-shrink", "--request-timeout", "30",
    ]  # fmt: skip
    # cwd: schemathesis keeps its example database and reports in the working directory.
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    operations = sum(len(ops) for ops in schema["paths"].values())
    assert f"Tested: {operations}" in output, output[-5000:]


def test_tracking_api(db_uri: str, tmp_path: Path) -> None:
    # The artifacts API is fuzzed on its own service below. Webhooks the fuzzer registers point at made-up
    # hosts: the delivery worker stays off, so nothing is ever sent to them.
    env = {"MODELYARD_SERVE_ARTIFACTS": "false", "MODELYARD_WEBHOOK_DELIVERY": "false"}
    with start_tracking_server(tmp_path / "tracking", db_uri, env=env) as tracking:
        fuzz(tracking.url, tmp_path)
        assert logged_exceptions(tracking.log()) == set()


def test_artifacts_api(s3_bucket: str, s3_endpoint: str, sqlite_uri: str, tmp_path: Path) -> None:
    from tests.support.services import migrate

    migrate(sqlite_uri)
    env = {
        "MODELYARD_ARTIFACTS_DESTINATION": f"s3://{s3_bucket}/artifacts",
        "MODELYARD_S3_ENDPOINT_URL": s3_endpoint,
        "MODELYARD_BACKEND_STORE_URI": sqlite_uri,  # run ownership checks, as in the team stack
    }
    with start_service(ARTIFACTS, tmp_path / "artifacts", env=env) as artifacts:
        fuzz(artifacts.url, tmp_path, MLFLOW_501)
        assert logged_exceptions(artifacts.log()) == set()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
