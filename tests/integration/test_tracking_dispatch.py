"""The tracking app's exact-path table (`modelyard.runtime.dispatch`) answers as FastAPI's routing does.

Two apps on their own SQLite databases get the same requests: one whose table is empty (FastAPI routes
everything, as before the table existed) and one whose table learned every route first. Statuses,
headers and bodies must match (run ids, random per app, are normalised), for answers and errors alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from modelyard.runtime import dispatch
from modelyard.settings import Settings
from modelyard.tracking.app import create_app

API = "/api/2.0/mlflow"
JSON = {"content-type": "application/json"}

#: (method, path, JSON body or None, extra headers); `RUN` is replaced by the app's own run id.
REQUESTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", f"{API}/experiments/create", {"name": "e"}, {}),
    ("POST", f"{API}/experiments/create", {"name": "e"}, {}),  # exists: 400
    ("POST", f"{API}/runs/create", {"experiment_id": "1", "start_time": 5, "run_name": "r"}, {}),
    ("POST", f"{API}/runs/log-metric", {"run_id": "RUN", "key": "m", "value": 0.5, "timestamp": 1, "step": 2}, {}),
    ("POST", "/ajax-api/2.0/mlflow/runs/log-metric", {"run_id": "RUN", "key": "m", "value": 1, "timestamp": 2}, {}),
    ("POST", f"{API}/runs/log-metric", {"run_id": "RUN", "key": "m", "value": "abc", "timestamp": 1}, {}),
    ("POST", f"{API}/runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 1}, {}),
    ("POST", f"{API}/runs/log-metric", {"run_id": "nope", "key": "m", "value": 1.0, "timestamp": 1}, {}),
    ("POST", f"{API}/runs/log-metric", "{not json", {}),
    ("POST", f"{API}/runs/log-metric", {"run_id": "RUN"}, {"content-type": "text/plain"}),
    ("POST", f"{API}/runs/log-metric", {"run_id": "RUN"}, {"origin": "http://evil.example"}),
    ("GET", f"{API}/runs/log-metric", None, {}),
    ("HEAD", f"{API}/runs/get?run_id=RUN", None, {}),
    ("OPTIONS", f"{API}/runs/get", None, {}),
    ("POST", f"{API}/runs/log-batch", {"run_id": "RUN", "params": [{"key": "p", "value": "1"}]}, {}),
    ("GET", f"{API}/runs/get?run_id=RUN", None, {}),
    ("GET", f"{API}/metrics/get-history?run_id=RUN&metric_key=m", None, {}),
    ("POST", f"{API}/runs/search", {"experiment_ids": ["1"], "filter": "metrics.m > 0"}, {}),
    ("POST", f"{API}/runs/search", {"experiment_ids": ["1"], "filter": "metrics.m >"}, {}),
    ("POST", f"{API}/experiments/search", {"max_results": 10}, {}),
    ("POST", f"{API}/registered-models/create", {"name": "model"}, {"x-modelyard-user": "alice"}),
    ("GET", f"{API}/registered-models/search?max_results=5", None, {}),
    ("GET", "/api/2.0/modelyard/registry/events?name=model", None, {}),
    ("GET", f"{API}/registered-models/get?name=missing", None, {}),
    ("GET", f"{API}/runs/nothing-here", None, {}),
    ("POST", f"{API}/runs/update", {"run_id": "RUN", "status": "FINISHED", "end_time": 9}, {}),
    ("POST", f"{API}/runs/log-metric", {"run_id": "RUN", "key": "m", "value": 1.0, "timestamp": 1}, {}),
]


def make_client(tmp_path: Path, name: str) -> TestClient:
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / name}.db",
        artifacts_destination=str(tmp_path / "artifacts"),
        serve_artifacts=False,
    )
    return TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False)


def exact_routes(client: TestClient) -> dispatch.ExactRoutes:
    layer = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, dispatch.ExactRoutes):
        layer = layer.app
    return layer


def send(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str], run_id: str) -> Any:
    content = None
    if body is not None:
        content = body if isinstance(body, str) else json.dumps(body).replace("RUN", run_id)
    return client.request(method, path.replace("RUN", run_id), content=content, headers={**JSON, **headers})


def normalised(response: Any, run_id: str) -> tuple[int, list[tuple[str, str]], Any]:
    headers = sorted((k, v) for k, v in response.headers.items() if k != "content-length")
    text = response.text.replace(run_id, "RUN") if run_id else response.text
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = text
    if isinstance(body, dict):  # timestamps of the run and the registry differ between the two apps
        body = json.loads(_strip_times(json.dumps(body, sort_keys=True)))
    return response.status_code, headers, body


def _strip_times(text: str) -> str:
    data = json.loads(text)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("T" if "time" in k else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(data), sort_keys=True)


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    with make_client(tmp_path, "control") as control, make_client(tmp_path, "table") as table:
        yield control, table


def test_table_answers_match_fastapis(clients: tuple[TestClient, TestClient]) -> None:
    control, table = clients
    control.get("/health")
    exact_routes(control).table.clear()  # FastAPI routes every request of this app
    # Teach the table every route of the sequence, with requests that change nothing (both apps).
    for client in clients:
        for method, path, _body, _headers in REQUESTS:
            client.request(method, path.split("?")[0], content=b"{}", headers=JSON)
    learned = exact_routes(table).active
    assert ("POST", f"{API}/runs/log-metric") in learned
    assert ("GET", "/api/2.0/modelyard/registry/events") in learned
    assert not exact_routes(control).active

    run_ids = {"control": "", "table": ""}
    for method, path, body, headers in REQUESTS:
        answers = []
        for name, client in (("control", control), ("table", table)):
            response = send(client, method, path, body, headers, run_ids[name])
            if path.endswith("/runs/create") and response.status_code == 200:
                run_ids[name] = response.json()["run"]["info"]["run_id"]
            answers.append(normalised(response, run_ids[name]))
        assert answers[0] == answers[1], (method, path, body)
    events = table.get("/api/2.0/modelyard/registry/events?name=model").json()["events"]
    assert {e.get("actor") for e in events} == {"alice"}  # the registry's actor dependency ran


def _tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ARTIFACTS = "/api/2.0/mlflow-artifacts"
#: Paths with parameters (`Template`s): (method, path, body: JSON, bytes or None); `MODEL` and `RUN`
#: are replaced by the app's own ids.
TEMPLATED: list[tuple[str, str, Any]] = [
    ("POST", f"{API}/experiments/create", {"name": "e"}),
    ("POST", f"{API}/runs/create", {"experiment_id": "1", "run_name": "r"}),
    ("POST", f"{API}/logged-models", {"experiment_id": "1", "name": "m", "source_run_id": "RUN"}),
    ("GET", f"{API}/logged-models/MODEL", None),
    ("GET", "/ajax-api/2.0/mlflow/logged-models/MODEL", None),
    ("GET", f"{API}/logged-models/m-missing", None),
    ("PATCH", f"{API}/logged-models/MODEL", {"status": "NOT_A_STATUS"}),
    ("PATCH", f"{API}/logged-models/MODEL", {}),
    ("PATCH", f"{API}/logged-models/m-missing", {"status": "LOGGED_MODEL_READY"}),
    ("PUT", f"{ARTIFACTS}/modelyard-bundle/1/models/MODEL/artifacts", _tar({"MLmodel": b"x", "a/b.txt": b"y"})),
    ("PUT", f"{ARTIFACTS}/modelyard-bundle/1/models/MODEL/artifacts", b"not a tar"),
    ("PUT", f"{ARTIFACTS}/modelyard-bundle/1/models/MODEL/artifacts", _tar({"../escape": b"x"})),
    ("PUT", f"{ARTIFACTS}/modelyard-bundle/1/RUN/artifacts/plots", _tar({"p.png": b"png"})),
    ("PUT", f"{ARTIFACTS}/modelyard-bundle/1/not-a-run/artifacts", _tar({"p.png": b"png"})),
    ("GET", f"{ARTIFACTS}/artifacts/1/models/MODEL/artifacts/a/b.txt", None),
    ("GET", f"{ARTIFACTS}/artifacts/1/models/MODEL/artifacts/missing", None),
    ("PATCH", f"{API}/logged-models/MODEL", {"status": "LOGGED_MODEL_READY"}),
    ("DELETE", f"{API}/logged-models/MODEL", None),
    ("PATCH", f"{API}/logged-models/MODEL", {"status": "LOGGED_MODEL_READY"}),
    ("POST", f"{API}/logged-models/MODEL", {}),  # 405
    ("PATCH", f"{API}/logged-models/MODEL/more", {}),  # 404
]


def test_template_answers_match_fastapis(tmp_path: Path) -> None:
    """Logged models and the artifact proxy (`{model_id}`, `{path:path}`): the second round of the
    same requests goes through the templates FastAPI confirmed in the first, with new ids."""

    def app(name: str) -> TestClient:
        settings = Settings(
            backend_store_uri=f"sqlite:///{tmp_path / name}.db",
            artifacts_destination=str(tmp_path / name),
            serve_artifacts=True,
        )
        return TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False)

    with app("control") as control, app("table") as table:
        control.get("/health")
        exact_routes(control).templates.clear()  # FastAPI routes every path with parameters
        for _round in range(2):
            ids = {"control": {}, "table": {}}
            for method, path, body in TEMPLATED:
                answers = []
                for name, client in (("control", control), ("table", table)):
                    own = ids[name]
                    url = path.replace("MODEL", own.get("MODEL", "MODEL")).replace("RUN", own.get("RUN", "RUN"))
                    if isinstance(body, dict):
                        content = json.dumps(body).replace("RUN", own.get("RUN", "RUN")).encode()
                    else:
                        content = body
                    response = client.request(method, url, content=content, headers=JSON)
                    if path.endswith("/runs/create"):
                        own["RUN"] = response.json()["run"]["info"]["run_id"]
                    if path.endswith("/logged-models") and method == "POST":
                        own["MODEL"] = response.json()["model"]["info"]["model_id"]
                    text = response.text
                    for key, value in own.items():
                        text = text.replace(value, key)
                    status, headers, _ = normalised(response, "")
                    answers.append((status, headers, _strip_times(text) if text.startswith("{") else text))
                assert answers[0] == answers[1], (method, path)
        learned = {(t.method, t.path) for ts in exact_routes(table).active_templates.values() for t in ts}
        assert {
            ("PATCH", f"{API}/logged-models/{{model_id}}"),
            ("PUT", f"{ARTIFACTS}/modelyard-bundle/{{path:path}}"),
            ("GET", f"{ARTIFACTS}/artifacts/{{path:path}}"),
        } <= learned
        assert not exact_routes(control).active_templates


def test_table_answers_are_counted_under_the_route_template(clients: tuple[TestClient, TestClient]) -> None:
    _control, table = clients
    labels = {"service": "tracking", "method": "POST", "route": "/ajax-api/2.0/mlflow/runs/log-metric", "status": "400"}
    before = REGISTRY.get_sample_value("modelyard_http_requests_total", labels) or 0
    for _ in range(3):
        table.post("/ajax-api/2.0/mlflow/runs/log-metric", json={})
    assert ("POST", "/ajax-api/2.0/mlflow/runs/log-metric") in exact_routes(table).active
    assert REGISTRY.get_sample_value("modelyard_http_requests_total", labels) == before + 3


def test_every_static_api_route_is_in_the_table() -> None:
    """A new endpoint with a dependency the table cannot run would silently take the slow path:
    this lists the ones that do (none today)."""
    from modelyard.tracking.app import API_PREFIXES, api_routers

    table = dispatch.build_table([(p, r) for p in API_PREFIXES for r in api_routers()])
    missing = [
        (method, prefix + route.path)
        for prefix in API_PREFIXES
        for router in api_routers()
        for route in router.routes
        if "{" not in getattr(route, "path", "{")
        for method in route.methods
        if (method, prefix + route.path) not in table
    ]
    assert missing == []


def test_auth_decides_before_the_table(tmp_path: Path) -> None:
    """Auth's middleware is outside the table: a learned route still answers 401/403 to whoever may not."""
    admin, alice = ("admin", "admin-password-1"), ("alice", "alice-password-1")
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / 'auth.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        serve_artifacts=False,
        webhook_delivery=False,
        auth=True,
        admin_username=admin[0],
        admin_password=admin[1],
        auth_default_permission="NO_PERMISSIONS",
        auth_password_hash_time_cost=1,
        auth_password_hash_memory_kib=8192,
    )
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        assert client.post(f"{API}/users/create", json={"username": alice[0], "password": alice[1]}, auth=admin).status_code == 200
        experiment = client.post(f"{API}/experiments/create", json={"name": "e"}, auth=admin).json()["experiment_id"]
        run = client.post(f"{API}/runs/create", json={"experiment_id": experiment}, auth=admin).json()["run"]["info"]["run_id"]
        body = {"run_id": run, "key": "m", "value": 1.0, "timestamp": 1}
        for step in range(3):
            assert client.post(f"{API}/runs/log-metric", json={**body, "step": step}, auth=admin).status_code == 200
        assert ("POST", f"{API}/runs/log-metric") in exact_routes(client).active
        for _ in range(2):
            assert client.post(f"{API}/runs/log-metric", json=body).status_code == 401
            refused = client.post(f"{API}/runs/log-metric", json=body, auth=alice)
            assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
        history = client.get(f"{API}/metrics/get-history", params={"run_id": run, "metric_key": "m"}, auth=admin)
        assert len(history.json()["metrics"]) == 3
