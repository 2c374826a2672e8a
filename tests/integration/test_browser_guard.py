"""Browser-origin attacks against the real services (gunicorn), directly and through the gateway: every
refused write leaves nothing behind; non-browser clients (no Origin) are untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.services import start_service, start_tracking_server

from modelyard.devstack.services import ARTIFACTS, GATEWAY

CREATE = "/api/2.0/mlflow/experiments/create"
SEARCH = "/api/2.0/mlflow/experiments/search"


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Base URLs: the tracking service (serving artifacts too), the artifacts service, and the gateway."""
    base = tmp_path_factory.mktemp("guard")
    art_env = {"MODELYARD_ARTIFACTS_DESTINATION": str(base / "artifact-root")}
    with (
        start_tracking_server(base / "tracking", workers=1) as tracking,
        start_service(ARTIFACTS, base / "artifacts", env=art_env, workers=1) as artifacts,
    ):
        env = {"MODELYARD_GATEWAY_TRACKING_URL": tracking.url, "MODELYARD_GATEWAY_ARTIFACTS_URL": artifacts.url}
        with start_service(GATEWAY, base / "gateway", env=env, workers=1) as gateway:
            yield {"tracking": tracking.url, "artifacts": artifacts.url, "gateway": gateway.url}


@pytest.fixture(params=["tracking", "gateway"])
def api(request: pytest.FixtureRequest, bases: dict[str, str]) -> str:
    return bases[request.param]


def _names(base: str) -> set[str]:
    response = httpx.get(base + SEARCH, params={"max_results": 1000})
    assert response.status_code == 200, response.text
    return {e["name"] for e in response.json().get("experiments", [])}


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_simple_cross_site_post_creates_nothing(api: str) -> None:
    # What a cross-site form or no-cors fetch can send without a preflight.
    for headers in ({}, {"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}):
        _refused(httpx.post(api + CREATE, content=b'{"name": "csrf"}', headers=headers), 400, "INVALID_PARAMETER_VALUE")
    _refused(httpx.post(api + "/api/2.0/mlflow/runs/create", headers={"content-length": "0"}), 400, "INVALID_PARAMETER_VALUE")
    assert "csrf" not in _names(api)


@pytest.mark.parametrize(
    "headers",
    [{"origin": "http://evil.example"}, {"origin": "null"}, {"referer": "http://evil.example/x.html"}],
)
def test_a_foreign_origin_is_refused_and_creates_nothing(api: str, headers: dict[str, str]) -> None:
    name = f"from-{sorted(headers.values())[0]}"
    _refused(httpx.post(api + CREATE, json={"name": name}, headers=headers), 403, "PERMISSION_DENIED")
    assert name not in _names(api)


def test_same_origin_and_originless_writes_work(api: str) -> None:
    own = api.replace("http://", "")
    same, no_origin = f"same-{own}", f"no-origin-{own}"
    assert httpx.post(api + CREATE, json={"name": same}, headers={"origin": f"http://{own}"}).status_code == 200
    assert httpx.post(api + CREATE, json={"name": no_origin}).status_code == 200
    assert {same, no_origin} <= _names(api)


def test_a_foreign_host_is_refused_even_for_reads(api: str) -> None:
    _refused(httpx.get(api + SEARCH, headers={"host": "rebound.evil.example"}), 403, "PERMISSION_DENIED")
    assert httpx.get(api + SEARCH, headers={"host": "localhost:5000"}).status_code == 200


def test_artifact_uploads_keep_their_own_content_types(bases: dict[str, str]) -> None:
    for name in ("tracking", "artifacts", "gateway"):
        base = bases[name] + "/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts"
        for i, content_type in enumerate([None, "application/octet-stream", "text/plain", "image/png"]):
            headers = {"content-type": content_type} if content_type else {}
            put = httpx.put(f"{base}/f{i}.bin", content=b"abc", headers=headers)
            assert put.status_code == 200, (name, content_type, put.text)
        assert httpx.delete(f"{base}/f0.bin").status_code == 200
        foreign = httpx.put(f"{base}/evil.bin", content=b"x", headers={"origin": "http://evil.example"})
        _refused(foreign, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("service", ["tracking", "artifacts", "gateway"])
def test_every_response_carries_the_browser_headers(bases: dict[str, str], service: str) -> None:
    for path in ("/health", "/api/2.0/mlflow/experiments/get?experiment_id=0", "/no/such/path"):
        response = httpx.get(bases[service] + path)
        assert response.headers["x-content-type-options"] == "nosniff", (path, response.headers)
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_allowed_hosts_and_origins_are_settable(tmp_path: Path) -> None:
    env = {"MODELYARD_ALLOWED_HOSTS": "ml.example.com", "MODELYARD_ALLOWED_ORIGINS": "https://ui.example.com"}
    with start_tracking_server(tmp_path, env=env, workers=1) as tracking:
        # localhost is no longer listed; the address it was started on (--host 127.0.0.1) still is.
        assert httpx.get(tracking.url + SEARCH, headers={"host": "localhost"}).status_code == 403
        assert httpx.get(tracking.url + SEARCH).status_code == 200
        host = {"host": "ml.example.com"}
        ok = httpx.post(tracking.url + CREATE, json={"name": "ui"}, headers={**host, "origin": "https://ui.example.com"})
        assert ok.status_code == 200, ok.text
        other = httpx.post(tracking.url + CREATE, json={"name": "x"}, headers={**host, "origin": "https://x.example"})
        assert other.status_code == 403
