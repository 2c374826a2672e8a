"""Presigned downloads (`MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS`): MLflow's `/mlflow-artifacts/presigned/
<path>` answered with an S3 GET URL the client reads itself, on moto's S3 server, in process (TestClient).

Off by default and for a local destination (501 with MLflow's message, `/server-info` says so); on, the
URL reads the file's bytes (Range requests, as the mlflow client sends them) and is signed for the public
endpoint when one is set. The permission check before a URL is handed out is in
test_auth_enforcement.py; the real mlflow client following the URL in tests/compat/test_artifacts_mlflow.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from fastapi.testclient import TestClient

from modelyard.artifact_repos.base import PRESIGNED_DOWNLOAD_UNSUPPORTED
from modelyard.devstack.s3 import S3Server
from modelyard.settings import Settings

pytestmark = [pytest.mark.s3]

ART = "/api/2.0/mlflow-artifacts"
FOLDER = "1/run1/artifacts"


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The services' S3 endpoint, as the artifacts service reads it."""
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_server.endpoint)
    return s3_server.endpoint


@contextmanager
def artifacts_app(settings: Settings) -> Iterator[TestClient]:
    from modelyard.artifact_proxy.app import create_app

    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client


def _put(client: TestClient, path: str, data: bytes) -> None:
    assert client.put(f"{ART}/artifacts/{path}", content=data).status_code == 200


def _not_supported(client: TestClient, path: str) -> None:
    r = client.get(f"{ART}/presigned/{path}")
    assert r.status_code == 501
    assert r.json() == {"error_code": "NOT_IMPLEMENTED", "message": PRESIGNED_DOWNLOAD_UNSUPPORTED}
    assert client.get("/api/3.0/mlflow/server-info").json()["multipart_downloads_enabled"] is False


def test_off_by_default_and_for_a_local_destination(s3_env: str, s3_bucket: str, tmp_path: Path) -> None:
    with artifacts_app(Settings(artifacts_destination=f"s3://{s3_bucket}/root")) as client:
        _put(client, f"{FOLDER}/a.txt", b"a")
        _not_supported(client, f"{FOLDER}/a.txt")
        assert client.get(f"{ART}/artifacts/{FOLDER}/a.txt").content == b"a"  # the proxy still serves it
    local = Settings(artifacts_destination=str(tmp_path / "local"), artifacts_presigned_downloads=True)
    with artifacts_app(local) as client:
        _put(client, f"{FOLDER}/a.txt", b"a")
        _not_supported(client, f"{FOLDER}/a.txt")


def test_a_presigned_url_reads_the_file_straight_from_s3(s3_env: str, s3_bucket: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    settings = Settings(artifacts_destination=f"s3://{s3_bucket}/root", artifacts_presigned_downloads=True)
    with artifacts_app(settings) as client:
        _put(client, f"{FOLDER}/model/data.bin", data)
        _put(client, f"{FOLDER}/empty.txt", b"")
        assert client.get("/api/3.0/mlflow/server-info").json()["multipart_downloads_enabled"] is True
        for prefix in (ART, "/ajax-api/2.0/mlflow-artifacts"):
            answer = client.get(f"{prefix}/presigned/{FOLDER}/model/data.bin")
            assert answer.status_code == 200, answer.text
            link = answer.json()
            assert set(link) == {"url", "headers", "file_size"} and link["file_size"] == len(data)
        url = urlsplit(link["url"])
        assert f"{url.scheme}://{url.netloc}" == s3_env
        assert url.path == f"/{s3_bucket}/root/{FOLDER}/model/data.bin"
        # What the mlflow client does: Range GETs on the URL with the answer's headers.
        half = len(data) // 2
        parts = [
            requests.get(link["url"], headers={**link["headers"], "Range": f"bytes={a}-{b}"}, timeout=30)
            for a, b in ((0, half - 1), (half, len(data) - 1))
        ]
        assert [p.status_code for p in parts] == [206, 206]
        assert parts[0].content + parts[1].content == data
        whole = requests.get(link["url"], timeout=30)
        assert whole.content == data
        # A browser opening the URL saves the file (the disposition is part of the signed query).
        assert whole.headers["content-disposition"] == "attachment; filename*=UTF-8''data.bin"

        assert client.get(f"{ART}/presigned/{FOLDER}/empty.txt").json()["file_size"] == 0
        for missing in (f"{FOLDER}/nope.bin", f"{FOLDER}/model", f"{FOLDER}/model/"):
            r = client.get(f"{ART}/presigned/{missing}")
            assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", (
                missing,
                r.text,
            )
        r = client.get(f"{ART}/presigned/{FOLDER}/%2E%2E/%2E%2E/x")
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_urls_are_signed_for_the_public_endpoint(s3_env: str, s3_bucket: str) -> None:
    """Clients reach S3 by another name than the services do: the URL names (and is signed for) that one."""
    public = s3_env.replace("127.0.0.1", "localhost")
    settings = Settings(
        artifacts_destination=f"s3://{s3_bucket}/root",
        artifacts_presigned_downloads=True,
        s3_public_endpoint_url=public,
        artifacts_presigned_ttl=60,
    )
    with artifacts_app(settings) as client:
        _put(client, f"{FOLDER}/f.txt", b"hello")
        link = client.get(f"{ART}/presigned/{FOLDER}/f.txt").json()
    assert link["url"].startswith(f"{public}/{s3_bucket}/root/{FOLDER}/f.txt?")
    assert "X-Amz-Expires=60" in link["url"]
    assert requests.get(link["url"], timeout=30).content == b"hello"


def test_a_tracking_service_beside_an_artifacts_service_advertises_presigned_downloads(
    s3_env: str, s3_bucket: str, tmp_path: Path
) -> None:
    """The Helm chart's layout: tracking does not serve the artifacts API, but clients ask it /server-info."""
    from modelyard.tracking.app import create_app

    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
        default_artifact_root="mlflow-artifacts:/",
        serve_artifacts=False,
        artifacts_destination=f"s3://{s3_bucket}/root",
        artifacts_presigned_downloads=True,
        webhook_delivery=False,
    )
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        info = client.get("/api/3.0/mlflow/server-info").json()
        assert info["multipart_downloads_enabled"] is True
        assert info["multipart_uploads_enabled"] is False
        assert client.get(f"{ART}/presigned/{FOLDER}/f.txt").status_code == 404  # served by the other service
