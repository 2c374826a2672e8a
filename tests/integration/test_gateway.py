"""The local stack's gateway under real gunicorn: raw paths, dead upstream connections, error shapes and
headers, in front of the real tracking and artifacts services and of an upstream that misbehaves."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.integration.gateway_upstream import misbehaving_upstream
from tests.support import hostile
from tests.support.services import start_service, start_tracking_server

from modelyard.devstack.process import free_port
from modelyard.devstack.services import ARTIFACTS, GATEWAY

ART = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class Stack:
    gateway: str  # in front of the real services
    tracking: str
    artifacts: str
    artifact_root: Path
    odd_gateway: str  # in front of the misbehaving upstream


def _gateway(workdir: Path, tracking: str, artifacts: str) -> Iterator[str]:
    env = {"MODELYARD_GATEWAY_TRACKING_URL": tracking, "MODELYARD_GATEWAY_ARTIFACTS_URL": artifacts}
    with start_service(GATEWAY, workdir, env=env, workers=1) as gateway:
        yield gateway.url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("gateway")
    root = base / "artifact-root"
    # A bare artifacts service (no run check), as a gateway bug would find it: only paths protect it.
    art_env = {"MODELYARD_ARTIFACTS_DESTINATION": str(root)}
    with (
        start_tracking_server(base / "tracking", workers=1, env=hostile.LIMITED_BODIES) as tracking,
        start_service(ARTIFACTS, base / "artifacts", env=art_env, workers=1) as artifacts,
        misbehaving_upstream() as odd,
    ):
        real = _gateway(base / "gw", tracking.url, artifacts.url)
        other = _gateway(base / "gw-odd", odd, odd)
        try:
            yield Stack(next(real), tracking.url, artifacts.url, root, next(other))
        finally:
            real.close()
            other.close()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _assert_mlflow_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}, body


TRAVERSALS = [
    "1/abc/artifacts/..%2f..%2f..%2fx.txt",
    "1/abc/artifacts/%2e%2e/%2e%2e/%2e%2e/x.txt",
    "1/abc/artifacts/%2E%2E%2F%2E%2E%2Fx.txt",
    "1/abc/artifacts/..%5c..%5cx.txt",
    "1/abc/artifacts/.%2e/x.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_encoded_dot_segments_never_leave_the_run(stack: Stack, target: str) -> None:
    through_gateway = httpx.put(f"{stack.gateway}{ART}/{target}", content=b"hi")
    _assert_mlflow_error(through_gateway, 400)
    direct = httpx.put(f"{stack.artifacts}{ART}/{target}", content=b"hi")
    _assert_mlflow_error(direct, 400)
    assert _files(stack.artifact_root) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/experiments/get%00",
        "/api/2.0/mlflow/runs/create%00x",
        f"{ART}/1/r/artifacts/a%00.txt",
        "/%00",
    ],
)
def test_nul_in_a_path_is_a_400_through_the_gateway_and_a_4xx_directly(stack: Stack, path: str) -> None:
    _assert_mlflow_error(httpx.post(f"{stack.gateway}{path}", json={}), 400)
    upstream = stack.artifacts if path.startswith(ART) else stack.tracking
    direct = httpx.post(f"{upstream}{path}", json={})
    assert 400 <= direct.status_code < 500, direct.text
    assert set(direct.json()) == {"error_code", "message"}


def test_a_legitimate_upload_and_read_pass_through_with_the_raw_path(stack: Stack) -> None:
    path = f"{ART}/0/run1/artifacts/dir%20one/caf%C3%A9.txt"
    assert httpx.put(stack.gateway + path, content=b"hello").status_code == 200
    assert httpx.get(stack.gateway + path).content == b"hello"
    assert _files(stack.artifact_root) == ["0/run1/artifacts/dir one/café.txt"]
    echoed = httpx.get(f"{stack.odd_gateway}/api/2.0/x/a%2Fb/%C3%A9?q=%00&r=1").json()
    assert echoed["target"] == "/api/2.0/x/a%2Fb/%C3%A9?q=%00&r=1"


def test_a_connection_the_upstream_closes_after_answering_is_never_reused(stack: Stack) -> None:
    with httpx.Client(base_url=stack.odd_gateway) as client:
        statuses = [client.get("/once").status_code for _ in range(20)]
        assert statuses == [200] * 20
        posted = [client.post("/once", json={"i": i}).status_code for i in range(5)]
        assert posted == [200] * 5


def test_upstream_failures_are_mlflow_errors(stack: Stack, tmp_path: Path) -> None:
    plain = httpx.get(f"{stack.odd_gateway}/plain500")
    _assert_mlflow_error(plain, 500)
    assert plain.json()["error_code"] == "INTERNAL_ERROR" and "boom" in plain.json()["message"]
    dead = f"http://127.0.0.1:{free_port()}"
    for gateway in _gateway(tmp_path, dead, dead):
        down = httpx.post(f"{gateway}/api/2.0/mlflow/experiments/create", json={"name": "x"})
        _assert_mlflow_error(down, 503)
        assert down.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_response_headers_pass_through_once(stack: Stack) -> None:
    response = httpx.get(f"{stack.odd_gateway}/headers")
    names = [name.lower() for name, _ in response.headers.multi_items()]
    assert names.count("date") == 1 and names.count("server") == 1
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    real = httpx.get(f"{stack.gateway}/api/2.0/mlflow/experiments/search", params={"max_results": 1})
    real_names = [name.lower() for name, _ in real.headers.multi_items()]
    assert real.status_code == 200
    for name in ("date", "server", "content-length", "x-content-type-options", "content-security-policy"):
        assert real_names.count(name) == 1, (name, real.headers)


def test_the_gateway_adds_no_cookie_and_no_header_of_its_own(stack: Stack) -> None:
    """Its upstream client kept a cookie jar: a Set-Cookie it relayed was sent upstream on every later
    request that had no Cookie (with auth on, anonymous callers acted as the user who had signed in). Nor
    may it add httpx's default headers (Accept-Encoding made upstreams gzip for clients that never asked)."""
    assert httpx.get(f"{stack.odd_gateway}/headers").headers.get_list("set-cookie") == ["a=1", "b=2"]
    url = httpx.URL(stack.odd_gateway)
    for _ in range(3):  # whichever pooled connection serves it
        conn = http.client.HTTPConnection(url.host, url.port, timeout=10)
        conn.putrequest("GET", "/api/2.0/echo", skip_accept_encoding=True)  # only a Host header
        conn.endheaders()
        echoed = json.loads(conn.getresponse().read())
        conn.close()
        assert echoed["headers"] == {"host": f"{url.host}:{url.port}"}
    with_cookie = httpx.get(f"{stack.odd_gateway}/api/2.0/echo", headers={"cookie": "mine=1"}).json()
    assert with_cookie["headers"]["cookie"] == "mine=1"


def test_the_host_header_reaches_the_upstream(stack: Stack) -> None:
    echoed = httpx.get(f"{stack.odd_gateway}/api/2.0/x", headers={"host": "localhost:5000"}).json()
    assert echoed["host"] == "localhost:5000"


def test_input_limits_hold_the_same_way_through_the_gateway(stack: Stack) -> None:
    """Issue #15's hostile payloads through the gateway: each refused exactly as the tracking service
    refuses it directly (same status, same MLflow error body), streamed bodies over the size limit
    included; the gateway does not turn a refusal into a 5xx or let a payload through."""
    created = httpx.post(f"{stack.gateway}/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
    assert created.status_code == 200, created.text
    for payload in hostile.payloads(created.json()["run"]["info"]["run_id"]):
        through_gateway, direct = payload.send(stack.gateway), payload.send(stack.tracking)
        hostile.assert_refused(through_gateway, payload)
        assert (through_gateway.status_code, through_gateway.json()) == (direct.status_code, direct.json()), (
            payload.what
        )
    assert (
        httpx.get(
            f"{stack.gateway}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}
        ).status_code
        == 200
    )


def test_a_session_signed_in_through_the_gateway_is_never_lent_to_anonymous_callers(tmp_path: Path) -> None:
    """The walkthrough's find, end to end: an admin signs in to the web UI through the gateway (as on
    `make up`'s :5000); requests without cookies must stay anonymous (401), never act as the admin."""
    env = {
        "MODELYARD_AUTH": "true", "MODELYARD_ADMIN_USERNAME": "admin", "MODELYARD_ADMIN_PASSWORD": "admin-password-1",
        "MODELYARD_AUTH_PASSWORD_HASH_TIME_COST": "1", "MODELYARD_AUTH_PASSWORD_HASH_MEMORY_KIB": "8192",
        "MODELYARD_WEBHOOK_DELIVERY": "false",
    }  # fmt: skip
    with start_tracking_server(tmp_path / "tracking", workers=1, env=env) as tracking:
        gateway = _gateway(tmp_path / "gw", tracking.url, tracking.url)
        url = next(gateway)
        try:
            with httpx.Client(base_url=url) as browser:
                browser.get("/login")
                form = {"username": "admin", "password": "admin-password-1", "next": "", "csrf_token": browser.cookies["modelyard_csrf"]}
                assert browser.post("/login", data=form).status_code == 303
                assert "modelyard_session" in browser.cookies
                assert browser.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1}).status_code == 200
            for _ in range(4):
                anonymous = httpx.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 1})
                assert anonymous.status_code == 401, anonymous.text
                assert httpx.get(f"{url}/admin/users", follow_redirects=False).status_code in (302, 303, 401)
        finally:
            gateway.close()
