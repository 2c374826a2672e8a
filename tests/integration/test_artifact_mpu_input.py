"""Multipart-upload requests with parts or upload ids that S3 would refuse (or choke on) are the client's
mistake: 400 in MLflow's shape, never a 5xx the mlflow client would retry (found by schemathesis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from tests.integration.artifact_helpers import artifacts_service

from modelyard.devstack.s3 import S3Server

pytestmark = [pytest.mark.s3]
MPU = "/api/2.0/mlflow-artifacts/mpu"


@pytest.fixture(scope="module")
def url(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    s3_server.create_bucket("mpu-input")
    with artifacts_service(tmp_path_factory.mktemp("mpu"), "s3://mpu-input/root", s3_server.endpoint) as service:
        yield service.url


def _upload_id(url: str) -> str:
    created = requests.post(f"{url}{MPU}/create/dir", json={"path": "f.bin", "num_parts": 1})
    assert created.status_code == 200, created.text
    return str(created.json()["upload_id"])


def _assert_400(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("upload_id", ["\x12abc", "©ä!", "has space", "x" * 2000])
def test_an_upload_id_no_server_hands_out_is_refused(url: str, upload_id: str) -> None:
    _assert_400(requests.post(f"{url}{MPU}/complete/dir", json={"path": "f.bin", "upload_id": upload_id, "parts": []}))
    _assert_400(requests.post(f"{url}{MPU}/abort/dir", json={"path": "f.bin", "upload_id": upload_id}))


def test_an_unknown_upload_is_a_404(url: str) -> None:
    response = requests.post(f"{url}{MPU}/abort/dir", json={"path": "f.bin", "upload_id": "no-such-upload"})
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "parts",
    [[{"part_number": 0, "etag": "e"}], [{"part_number": 10001, "etag": "e"}], [{"part_number": "x", "etag": "e"}],
     [{"part_number": 1}], [{"part_number": 1, "etag": "bad etag\n"}], ["part"], [{"part_number": True, "etag": "e"}]],
)  # fmt: skip
def test_malformed_parts_are_refused(url: str, parts: list[object]) -> None:
    body = {"path": "f.bin", "upload_id": _upload_id(url), "parts": parts}
    _assert_400(requests.post(f"{url}{MPU}/complete/dir", json=body))


def test_a_part_s3_never_received_is_refused(url: str) -> None:
    body = {"path": "f.bin", "upload_id": _upload_id(url), "parts": [{"part_number": 1, "etag": '"0123abcd"'}]}
    _assert_400(requests.post(f"{url}{MPU}/complete/dir", json=body))
