"""The browser guard's rules, checked on ASGI scopes and on a minimal app (the services are tested in
tests/integration/test_browser_guard.py; a unit test module may not share its name)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelyard.runtime.browser_guard import BrowserGuard, HostPolicy, host_name, origin_of


def scope(method: str = "POST", path: str = "/api/2.0/mlflow/experiments/create", **headers: str) -> dict[str, Any]:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "headers": raw}


GUARD = BrowserGuard(None, allowed_hosts=("localhost", "127.0.0.1", "::1", "*.svc.cluster.local"))
JSON = {"content_type": "application/json"}


@pytest.mark.parametrize(
    ("value", "name"),
    [("localhost:5000", "localhost"), ("[::1]:5000", "::1"), ("[::1]", "::1"), ("::1", "::1"),
     ("Example.COM.", "example.com"), ("10.0.0.7:8080", "10.0.0.7")],
)  # fmt: skip
def test_host_name(value: str, name: str) -> None:
    assert host_name(value) == name


def test_origin_of_drops_default_ports_and_rejects_non_urls() -> None:
    assert origin_of("https://UI.example.com:443/path?q") == "https://ui.example.com"
    assert origin_of("http://127.0.0.1:5000/x") == "http://127.0.0.1:5000"
    assert origin_of("http://[::1]:80") == "http://[::1]"
    assert origin_of("null") is None
    assert origin_of("http://x:notaport") is None


def test_host_policy() -> None:
    policy = HostPolicy(["localhost", "::1", "*.example.com"])
    assert policy.allows("localhost:1234") and policy.allows("[::1]:5000")
    assert policy.allows("api.example.com") and not policy.allows("example.com.evil.net")
    assert not policy.allows("evil.example")
    assert HostPolicy(["*"]).allows("anything.at.all")


@pytest.mark.parametrize("host", ["localhost:5000", "127.0.0.1", "[::1]:5010", "tracking.ns.svc.cluster.local:5000"])
def test_allowed_hosts_pass(host: str) -> None:
    assert GUARD.check(scope("GET", "/health", host=host)) is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "localhost.evil.example", "10.1.2.3"])
def test_other_hosts_are_refused_on_every_method(host: str) -> None:
    for method in ("GET", "POST"):
        refusal = GUARD.check(scope(method, "/api/2.0/mlflow/experiments/search", host=host, **JSON))
        assert refusal is not None and refusal[:2] == (403, "PERMISSION_DENIED")


def test_a_request_without_host_or_origin_passes() -> None:
    assert GUARD.check(scope(**JSON)) is None


@pytest.mark.parametrize(
    "headers",
    [{"origin": "http://evil.example"}, {"origin": "null"}, {"referer": "http://evil.example/page"},
     {"origin": "http://localhost:5001"}, {"origin": "http://localhost"}, {"referer": "not a url"}],
)  # fmt: skip
def test_foreign_origins_are_refused_on_writes(headers: dict[str, str]) -> None:
    for path in ("/api/2.0/mlflow/experiments/create", "/experiments/new"):  # API and UI paths alike
        refusal = GUARD.check(scope("POST", path, host="localhost:5000", **JSON, **headers))
        assert refusal is not None and refusal[:2] == (403, "PERMISSION_DENIED"), (path, headers)


def test_foreign_origins_may_read() -> None:
    assert GUARD.check(scope("GET", "/api/2.0/mlflow/experiments/search", host="localhost:5000", origin="http://evil.example")) is None


def test_same_origin_and_allowed_origins_pass() -> None:
    same = scope(host="localhost:5000", origin="http://localhost:5000", **JSON)
    assert GUARD.check(same) is None
    assert GUARD.check(scope(host="localhost:5000", referer="http://localhost:5000/experiments/1", **JSON)) is None
    # TLS ended at a proxy that keeps the Host: the scheme differs, host and port are the page's own.
    tls = BrowserGuard(None, allowed_hosts=["ml.example.com"])
    assert tls.check(scope(host="ml.example.com", origin="https://ml.example.com", **JSON)) is None
    behind_proxy = BrowserGuard(None, allowed_hosts=["*"], allowed_origins=["https://ml.example.com"])
    assert behind_proxy.check(scope(host="tracking:5000", origin="https://ml.example.com", **JSON)) is None
    assert behind_proxy.check(scope(host="tracking:5000", origin="https://other.example.com", **JSON)) is not None
    assert BrowserGuard(None, ["*"], ["*"]).check(scope(host="x", origin="null", **JSON)) is None


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [("POST", "/api/2.0/mlflow/experiments/create", {}),
     ("POST", "/api/2.0/mlflow/experiments/create", {"content_length": "0"}),
     ("POST", "/ajax-api/2.0/mlflow/runs/create", {"content_type": "text/plain"}),
     ("POST", "/api/2.0/mlflow/experiments/create", {"content_type": "application/x-www-form-urlencoded"}),
     ("POST", "/api/2.0/mlflow-artifacts/mpu/create/1/r/artifacts", {"content_type": "multipart/form-data"}),
     ("PATCH", "/api/2.0/mlflow/registered-models/update", {"content_length": "10"}),
     ("DELETE", "/api/2.0/mlflow/registered-models/delete", {"content_length": "10", "content_type": "text/plain"})],
)  # fmt: skip
def test_api_writes_need_json(method: str, path: str, headers: dict[str, str]) -> None:
    refusal = GUARD.check(scope(method, path, **headers))
    assert refusal is not None and refusal[:2] == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [("POST", "/api/2.0/mlflow/experiments/create", {"content_type": "application/json; charset=utf-8"}),
     ("POST", "/api/2.0/mlflow/experiments/create", {"content_type": "application/merge-patch+json"}),
     ("PUT", "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a.bin", {"content_length": "3"}),
     ("PUT", "/ajax-api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a.txt",
      {"content_type": "text/plain", "transfer_encoding": "chunked"}),
     ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a.txt", {}),
     ("DELETE", "/api/2.0/mlflow/logged-models/m-1", {"content_length": "0"}),
     ("POST", "/ajax-api/2.0/mlflow/upload-artifact", {"content_type": "application/octet-stream"}),  # MLflow's UI
     ("POST", "/experiments/new", {"content_type": "application/x-www-form-urlencoded"}),  # a UI form
     ("POST", "/invocations", {"content_type": "text/csv"})],
)  # fmt: skip
def test_what_passes_the_content_type_rule(method: str, path: str, headers: dict[str, str]) -> None:
    assert GUARD.check(scope(method, path, **headers)) is None


def _call(app: Any, request_scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(BrowserGuard(app)(request_scope, receive, send))
    return sent


def _app(headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_security_headers_are_added_to_every_response() -> None:
    start = _call(_app([(b"content-type", b"application/json")]), scope("GET", "/api/x"))[0]
    headers = dict(start["headers"])
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"same-origin"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"content-security-policy"] == b"frame-ancestors 'none'"


def test_headers_a_response_set_itself_are_kept() -> None:
    page_csp = (b"Content-Security-Policy", b"default-src 'self'; frame-ancestors 'none'")
    start = _call(_app([page_csp, (b"referrer-policy", b"no-referrer")]), scope("GET", "/"))[0]
    names = [name.lower() for name, _ in start["headers"]]
    assert names.count(b"content-security-policy") == 1 and names.count(b"referrer-policy") == 1
    assert page_csp in start["headers"] and (b"referrer-policy", b"no-referrer") in start["headers"]


def test_a_refusal_is_an_mlflow_error_with_the_headers_and_never_reaches_the_app() -> None:
    def app(*args: Any) -> None:
        raise AssertionError("the app must not be called")

    start, body = _call(app, scope(host="evil.example", **JSON))
    assert start["status"] == 403
    assert (b"x-content-type-options", b"nosniff") in start["headers"]
    assert body["body"].startswith(b'{"error_code":"PERMISSION_DENIED","message":"Host')
