"""Server-side UI behaviour through the ASGI app (no browser): headers, assets, CSRF, errors."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from modelyard.settings import Settings
from modelyard.tracking.app import create_app


def test_pages_carry_a_strict_policy_and_are_compressed(client: TestClient) -> None:
    response = client.get("/experiments", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text  # no inline script anywhere


def test_assets_are_hashed_compressed_and_cached_forever(client: TestClient) -> None:
    html = client.get("/experiments").text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("htmx" in u for u in urls) and any(u.endswith(".css") for u in urls)
    for url in urls:
        assert re.search(r"\.[0-9a-f]{12}\.(js|css|svg)$", url), url
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-encoding"] == "gzip"
    assert client.get("/static/app.0000000000.css").status_code == 404


def test_state_changing_forms_need_the_csrf_token(client: TestClient) -> None:
    client.get("/experiments")
    token = client.cookies["modelyard_csrf"]
    refused = client.post("/experiments", data={"name": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = client.post("/experiments", data={"name": "forged", "csrf_token": "x" * 43}, follow_redirects=False)
    assert wrong.status_code == 403
    created = client.post("/experiments", data={"name": "mine", "csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303
    by_header = client.post(
        "/experiments", data={"name": "mine-too"}, headers={"X-CSRF-Token": token}, follow_redirects=False
    )
    assert by_header.status_code == 303
    names = client.get("/api/2.0/mlflow/experiments/search?max_results=10").json()["experiments"]
    assert {"mine", "mine-too"} <= {e["name"] for e in names} and "forged" not in {e["name"] for e in names}


def test_errors_are_html_pages_with_their_status(client: TestClient) -> None:
    client.get("/experiments")
    token = client.cookies["modelyard_csrf"]
    duplicate = client.post("/experiments", data={"name": "Default", "csrf_token": token})
    assert duplicate.status_code == 400
    assert "text/html" in duplicate.headers["content-type"] and "already exists" in duplicate.text
    blank = client.post("/experiments", data={"name": "  ", "csrf_token": token})
    assert blank.status_code == 400 and "Fill in" in blank.text
    bad_token = client.get("/experiments", params={"page_token": "not-a-token"})
    assert bad_token.status_code == 400 and "text/html" in bad_token.headers["content-type"]
    not_utf8 = client.post(
        "/experiments",
        content=b"name=%ff%fe&csrf_token=" + token.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400


def test_the_api_is_unchanged_beside_the_ui(client: TestClient) -> None:
    missing = client.get("/api/2.0/mlflow/no-such-endpoint")
    assert missing.status_code == 404 and missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    off = Settings(backend_store_uri="sqlite://", ui=False)
    with TestClient(create_app(off), base_url="http://localhost") as api_only:
        assert api_only.get("/experiments").status_code == 404
