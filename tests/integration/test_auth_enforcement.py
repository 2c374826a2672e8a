"""Each kind of rule in `modelyard.auth.rules`, enforced on real requests (the tracking app in-process
on SQLite, the standalone artifacts app): public, authenticated, admin, self, READ/EDIT/MANAGE on
experiments (directly, through runs, logged models and artifact paths) and on registered models, UI
pages and forms, /graphql, and search results filtered with their totals and page tokens.

Users: `admin`; `alice` with READ on experiment A and model `ma` only (default NO_PERMISSIONS);
`bob` who created experiment B (so MANAGE there) and model `mb`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from modelyard.settings import Settings

ADMIN = ("admin", "admin-password-1")
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-123")
BASE = "http://localhost"


@dataclass
class World:
    client: TestClient
    exp_a: str
    exp_b: str
    run_a: str
    run_b: str
    model_id_b: str


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from modelyard.tracking.app import create_app

    tmp = tmp_path_factory.mktemp("auth-enforcement")
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp / 'db.sqlite'}",
        artifacts_destination=str(tmp / "artifacts"),
        webhook_delivery=False,
        auth=True,
        admin_username=ADMIN[0],
        admin_password=ADMIN[1],
        auth_default_permission="NO_PERMISSIONS",
        auth_password_hash_time_cost=1,
        auth_password_hash_memory_kib=8192,
    )
    with TestClient(create_app(settings), base_url=BASE) as client:
        for user, password in (ALICE, BOB):
            _ok(client.post("/api/2.0/mlflow/users/create", json={"username": user, "password": password}, auth=ADMIN))
        exp_a = _ok(client.post("/api/2.0/mlflow/experiments/create", json={"name": "A"}, auth=ADMIN))["experiment_id"]
        exp_b = _ok(client.post("/api/2.0/mlflow/experiments/create", json={"name": "B"}, auth=BOB))["experiment_id"]
        more = [  # more of alice's experiments, so search pages
            _ok(client.post("/api/2.0/mlflow/experiments/create", json={"name": f"A{i}"}, auth=ADMIN))["experiment_id"]
            for i in range(3)
        ]
        run_a = _ok(client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp_a}, auth=ADMIN))["run"]["info"]["run_id"]
        run_b = _ok(client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp_b}, auth=BOB))["run"]["info"]["run_id"]
        model_b = _ok(client.post("/api/2.0/mlflow/logged-models", json={"experiment_id": exp_b, "name": "lm"}, auth=BOB))
        _ok(client.post("/api/2.0/mlflow/registered-models/create", json={"name": "ma"}, auth=ADMIN))
        _ok(client.post("/api/2.0/mlflow/registered-models/create", json={"name": "mb"}, auth=BOB))
        readable = [("experiment", exp_a), ("registered_model", "ma"), *(("experiment", e) for e in more)]
        for resource_type, resource_id in readable:
            _ok(
                client.post(
                    "/api/3.0/mlflow/users/permissions/grant",
                    json={"username": "alice", "resource_type": resource_type, "resource_id": resource_id, "permission": "READ"},
                    auth=ADMIN,
                )
            )
        yield World(client, exp_a, exp_b, run_a, run_b, model_b["model"]["info"]["model_id"])


def test_public_routes_need_no_credentials(world: World) -> None:
    c = world.client
    assert c.get("/health").status_code == 200
    assert c.get("/static/app.css").status_code in (200, 404)  # public either way: never 401


def test_no_or_wrong_credentials_are_401_in_mlflow_shape(world: World) -> None:
    c = world.client
    for auth in (None, ("alice", "wrong-password-x"), ("nobody", "whatever-password")):
        r = c.get("/api/3.0/mlflow/server-info", auth=auth)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="mlflow"'
        assert r.json()["error_code"] == "UNAUTHENTICATED"
    for header in ("Bearer myt_nope", "Basic !!!", "Digest x"):
        assert c.get("/api/3.0/mlflow/server-info", headers={"Authorization": header}).status_code == 401
    assert c.get("/api/3.0/mlflow/server-info", auth=ALICE).status_code == 200


def test_admin_only_and_self_only_routes(world: World) -> None:
    c = world.client
    assert c.get("/api/2.0/modelyard/webhooks/list", auth=ALICE).json()["error_code"] == "PERMISSION_DENIED"
    assert c.get("/api/2.0/modelyard/webhooks/list", auth=ADMIN).status_code == 200
    assert c.get("/api/2.0/mlflow/users/list", auth=ALICE).status_code == 403
    assert c.get("/api/2.0/mlflow/users/get", params={"username": "alice"}, auth=ALICE).status_code == 200
    assert c.get("/api/2.0/mlflow/users/get", params={"username": "bob"}, auth=ALICE).status_code == 403
    assert c.get("/api/2.0/modelyard/audit/list", auth=ALICE).status_code == 403
    events = _ok(c.get("/api/2.0/modelyard/audit/list", auth=ADMIN))["events"]
    assert any(e["action"] == "grant.user" and e["actor"] == "admin" for e in events)


def test_experiment_permissions_through_runs_logged_models_and_ids(world: World) -> None:
    c = world.client
    assert c.get("/api/2.0/mlflow/runs/get", params={"run_id": world.run_a}, auth=ALICE).status_code == 200
    r = c.post("/api/2.0/mlflow/runs/log-metric", json={"run_id": world.run_a, "key": "m", "value": 1, "timestamp": 1}, auth=ALICE)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": world.exp_a}, auth=ALICE).status_code == 403
    assert c.get("/api/2.0/mlflow/runs/get", params={"run_id": world.run_b}, auth=ALICE).status_code == 403
    # run_id and run_uuid naming different runs is refused rather than guessed.
    r = c.get("/api/2.0/mlflow/runs/get", params={"run_id": world.run_a, "run_uuid": world.run_b}, auth=ALICE)
    assert r.status_code == 400
    assert c.get(f"/api/2.0/mlflow/logged-models/{world.model_id_b}", auth=ALICE).status_code == 403
    assert c.get(f"/api/2.0/mlflow/logged-models/{world.model_id_b}", auth=BOB).status_code == 200
    assert c.get("/api/2.0/mlflow/runs/get", params={"run_id": "0" * 32}, auth=ALICE).status_code == 404
    assert c.post("/api/2.0/mlflow/runs/search", json={"experiment_ids": [world.exp_a, world.exp_b]}, auth=ALICE).status_code == 403
    assert c.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk", params={"run_id": [world.run_a, world.run_b], "metric_key": "m"}, auth=ALICE).status_code == 403
    # The creator has MANAGE: bob may delete his run; alice may not delete what she only reads.
    assert c.post("/api/2.0/mlflow/experiments/delete", json={"experiment_id": world.exp_a}, auth=ALICE).status_code == 403
    assert c.post("/api/2.0/mlflow/runs/set-tag", json={"run_id": world.run_b, "key": "k", "value": "v"}, auth=BOB).status_code == 200


def test_search_results_totals_and_page_tokens_hold_only_readable_experiments(world: World) -> None:
    c = world.client
    seen: list[str] = []
    token = None
    while True:
        body = {"max_results": 1, **({"page_token": token} if token else {})}
        page = _ok(c.post("/api/2.0/mlflow/experiments/search", json=body, auth=ALICE))
        seen += [e["experiment_id"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert world.exp_b not in seen and world.exp_a in seen
    assert len(seen) == len(set(seen)) == 4  # A and the three granted: no page skipped, none hidden
    admin_names = [e["name"] for e in _ok(c.get("/api/2.0/mlflow/experiments/search", params={"max_results": 100}, auth=ADMIN))["experiments"]]
    assert "B" in admin_names
    models = _ok(c.get("/api/2.0/mlflow/registered-models/search", auth=ALICE))["registered_models"]
    assert [m["name"] for m in models] == ["ma"]
    assert _ok(c.get("/api/2.0/mlflow/model-versions/search", params={"filter": "name='mb'"}, auth=ALICE)) == {}


def test_registered_model_permissions(world: World) -> None:
    c = world.client
    _ok(c.post("/api/2.0/mlflow/model-versions/create", json={"name": "ma", "source": f"runs:/{world.run_a}/model", "run_id": world.run_a}, auth=ADMIN))
    assert c.get("/api/2.0/mlflow/registered-models/get", params={"name": "ma"}, auth=ALICE).status_code == 200
    r = c.post("/api/2.0/mlflow/registered-models/alias", json={"name": "ma", "alias": "prod", "version": "1"}, auth=ALICE)
    assert r.status_code == 403
    assert c.get("/api/2.0/mlflow/registered-models/get", params={"name": "mb"}, auth=ALICE).status_code == 403
    # Registering a version from a run one cannot read is refused, even on a model one may edit.
    r = c.post("/api/2.0/mlflow/model-versions/create", json={"name": "mb", "source": f"runs:/{world.run_a}/m", "run_id": world.run_a}, auth=BOB)
    assert r.status_code == 403
    r = c.post("/api/2.0/mlflow/model-versions/create", json={"name": "mb", "source": f"mlflow-artifacts:/{world.exp_a}/x"}, auth=BOB)
    assert r.status_code == 403


@pytest.mark.parametrize(
    "spelling",
    ["{b}/{run}/artifacts", "./{b}/{run}/artifacts", "{b}//{run}/artifacts", "{pct}/{run}/artifacts", "0{b}/{run}/artifacts", ""],
)
def test_artifact_paths_of_an_unreadable_experiment_are_refused_in_every_spelling(world: World, spelling: str) -> None:
    c = world.client
    pct = "".join(f"%{ord(ch):02X}" for ch in world.exp_b)  # percent-encoded digits
    path = spelling.format(b=world.exp_b, run=world.run_b, pct=pct)
    for url in (f"/api/2.0/mlflow-artifacts/artifacts/{path}/f.txt", f"/ajax-api/2.0/mlflow-artifacts/artifacts/{path}/f.txt"):
        r = c.get(url, auth=ALICE)
        assert r.status_code in (400, 403), (url, r.status_code, r.text)
    r = c.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": path}, auth=ALICE)
    assert r.status_code in (400, 403), (path, r.text)
    r = c.get("/api/2.0/mlflow-artifacts/artifacts", params=[("path", f"{world.exp_a}"), ("path", path)], auth=ALICE)
    assert r.status_code in (400, 403)
    assert c.get("/get-artifact", params={"run_uuid": world.run_b, "path": "f.txt"}, auth=ALICE).status_code == 403


def test_artifacts_of_a_readable_experiment_can_be_read_not_written(world: World) -> None:
    c = world.client
    path = f"{world.exp_a}/{world.run_a}/artifacts/f.txt"
    assert c.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}", content=b"x", auth=ADMIN).status_code == 200
    assert c.get(f"/api/2.0/mlflow-artifacts/artifacts/{path}", auth=ALICE).content == b"x"
    assert c.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}", content=b"y", auth=ALICE).status_code == 403


def test_ui_pages_redirect_to_sign_in_and_check_the_resource(world: World) -> None:
    c = world.client
    r = c.get(f"/experiments/{world.exp_a}?x=1", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"/login?next=%2Fexperiments%2F{world.exp_a}%3Fx%3D1"
    assert c.get(f"/experiments/{world.exp_a}", auth=ALICE).status_code == 200
    assert c.get(f"/experiments/{world.exp_b}", auth=ALICE).status_code == 403
    assert c.get(f"/runs/{world.run_b}", auth=ALICE).status_code == 403
    assert c.get(f"/compare?runs={world.run_a},{world.run_b}", auth=ALICE).status_code == 403
    listing = c.get("/experiments", auth=ALICE).text
    assert f'href="/experiments/{world.exp_a}"' in listing and f'href="/experiments/{world.exp_b}"' not in listing
    r = c.post("/model/alias", data={"name": " ma ", "alias": "x", "version": "1"}, auth=ALICE)
    assert r.status_code == 403  # the form's value is checked as the route reads it (stripped)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = c.post("/model/alias", content=b"name=mb&name=ma&alias=x&version=1", headers=form, auth=BOB)
    assert r.status_code == 400


def test_graphql_resolvers_check_the_caller(world: World) -> None:
    c = world.client
    query = 'query { mlflowGetExperiment(input: {experimentId: "%s"}) { experiment { name } } }'
    allowed = _ok(c.post("/graphql", json={"query": query % world.exp_a}, auth=ALICE))
    assert allowed["data"]["mlflowGetExperiment"]["experiment"]["name"] == "A"
    refused = _ok(c.post("/graphql", json={"query": query % world.exp_b}, auth=ALICE))
    assert refused["data"]["mlflowGetExperiment"] is None and "Permission denied" in refused["errors"][0]


def test_tokens_work_as_bearer_and_as_password_and_revoke_at_once(world: World) -> None:
    c = world.client
    made = _ok(c.post("/api/2.0/modelyard/tokens/create", json={"name": "ci"}, auth=ALICE))["token"]
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert _ok(c.get("/api/2.0/mlflow/users/current", headers=bearer))["user"]["username"] == "alice"
    assert c.get("/api/2.0/mlflow/users/current", auth=("alice", made["token"])).status_code == 200
    assert c.get("/api/2.0/mlflow/users/current", auth=("bob", made["token"])).status_code == 401
    listed = _ok(c.get("/api/2.0/modelyard/tokens/list", auth=ALICE))["tokens"]
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    assert c.post("/api/2.0/modelyard/tokens/revoke", json={"id": made["id"]}, auth=BOB).status_code == 404
    _ok(c.post("/api/2.0/modelyard/tokens/revoke", json={"id": made["id"]}, auth=ALICE))
    assert c.get("/api/2.0/mlflow/users/current", headers=bearer).status_code == 401


def test_session_cookie_identifies_the_ui_user(world: World) -> None:
    from modelyard.auth import sessions

    ctx = world.client.app.state.auth  # type: ignore[attr-defined]
    value = sessions.create(ctx, ctx.store.require_user("alice"))
    cookie = {"Cookie": f"{sessions.COOKIE_NAME}={value}"}
    assert _ok(world.client.get("/api/2.0/mlflow/users/current", headers=cookie))["user"]["username"] == "alice"
    sessions.destroy(ctx, value)
    assert world.client.get("/api/2.0/mlflow/users/current", headers=cookie).status_code == 401


def test_the_standalone_artifacts_service_enforces_the_same_rules(tmp_path: Path, world: World) -> None:
    from modelyard.artifact_proxy.app import create_app

    db = world.client.app.state.settings.backend_store_uri  # type: ignore[attr-defined]
    settings = Settings(
        backend_store_uri=db, artifacts_destination=str(tmp_path), auth=True, auth_default_permission="NO_PERMISSIONS"
    )
    with TestClient(create_app(settings), base_url=BASE) as client:
        assert client.get("/health").status_code == 200
        assert client.get(f"/api/2.0/mlflow-artifacts/artifacts/{world.exp_b}/x", auth=ALICE).status_code == 403
        assert client.get(f"/api/2.0/mlflow-artifacts/artifacts/{world.exp_a}/x", auth=ALICE).status_code == 404
        assert client.get(f"/api/2.0/mlflow-artifacts/artifacts/{world.exp_a}/x").status_code == 401



@pytest.mark.s3
def test_presigned_download_urls_are_handed_out_only_after_the_permission_check(
    world: World, s3_server: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A presigned URL reads the file without asking again, so READ is checked before one is made."""
    from modelyard.artifact_proxy.app import create_app

    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_server.endpoint)
    db = world.client.app.state.settings.backend_store_uri  # type: ignore[attr-defined]
    settings = Settings(
        backend_store_uri=db,
        artifacts_destination=f"s3://{s3_bucket}/root",
        artifacts_presigned_downloads=True,
        auth=True,
        auth_default_permission="NO_PERMISSIONS",
    )
    files = {exp: f"{exp}/{run}/artifacts/f.txt" for exp, run in ((world.exp_a, world.run_a), (world.exp_b, world.run_b))}
    with TestClient(create_app(settings), base_url=BASE) as client:
        for path in files.values():
            assert client.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}", content=b"secret", auth=ADMIN).status_code == 200
        refused = client.get(f"/api/2.0/mlflow-artifacts/presigned/{files[world.exp_b]}", auth=ALICE)
        assert refused.status_code == 403 and "url" not in refused.json()
        assert client.get(f"/api/2.0/mlflow-artifacts/presigned/{files[world.exp_a]}").status_code == 401
        link = _ok(client.get(f"/api/2.0/mlflow-artifacts/presigned/{files[world.exp_a]}", auth=ALICE))
    assert requests.get(link["url"], timeout=30).content == b"secret"


def test_cors_is_off_by_default_and_an_allow_list_turns_it_on(tmp_path: Path, world: World) -> None:
    from modelyard.artifact_proxy.app import create_app

    origin = {"Origin": "https://notebooks.example.com"}
    r = world.client.get("/health", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    settings = Settings(artifacts_destination=str(tmp_path), cors_allowed_origins=("https://notebooks.example.com",))
    with TestClient(create_app(settings), base_url=BASE) as client:
        preflight = client.options(
            "/api/2.0/mlflow-artifacts/artifacts",
            headers={**origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://notebooks.example.com"
        other = client.get("/health", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


class _Model:
    metadata = None

    def predict(self, data: Any) -> Any:
        return [0 for _ in range(len(data))]


def test_serving_needs_read_on_the_served_model_and_the_endpoints_control_plane_an_admin(
    tmp_path: Path, world: World
) -> None:
    from modelyard.endpoints.app import create_app as endpoints_app
    from modelyard.serving.app import create_app as serving_app

    db = world.client.app.state.settings.backend_store_uri  # type: ignore[attr-defined]
    common = {"backend_store_uri": db, "auth": True, "auth_default_permission": "NO_PERMISSIONS"}
    scoring = {"inputs": [[1.0, 2.0]]}
    with TestClient(serving_app(Settings(model_uri="models:/ma@champion", **common), model=_Model()), base_url=BASE) as serving:
        assert serving.get("/ping").status_code == 200
        assert serving.post("/invocations", json=scoring).status_code == 401
        assert serving.post("/invocations", json=scoring, auth=BOB).status_code == 403  # no READ on "ma"
        assert serving.post("/invocations", json=scoring, auth=ALICE).status_code == 200
    settings = Settings(endpoints_state_dir=str(tmp_path), **common)
    with TestClient(endpoints_app(settings), base_url=BASE) as endpoints:
        target = {"X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1"}
        assert endpoints.post("/", content=b"{}", headers=target, auth=ALICE).status_code == 403
        assert endpoints.post("/", content=b"{}", headers=target, auth=ADMIN).status_code == 200


def test_registry_history_names_the_signed_in_user_as_who(world: World) -> None:
    """With auth on, an event's "who" is the authenticated user (not whatever user name a client
    claims); a refused change writes no event."""
    c = world.client
    _ok(c.post("/api/2.0/mlflow/registered-models/set-tag", json={"name": "mb", "key": "team", "value": "b"}, auth=BOB))
    refused = c.post("/api/2.0/mlflow/registered-models/set-tag", json={"name": "ma", "key": "team", "value": "a"}, auth=ALICE)
    assert refused.status_code == 403
    events = _ok(c.get("/api/2.0/modelyard/registry/events", params={"name": "mb"}, auth=BOB))["events"]
    assert (events[0]["kind"], events[0].get("actor")) == ("model_tag_set", "bob")
    created = events[-1]
    assert (created["kind"], created.get("actor")) == ("model_created", "bob")
    history_a = _ok(c.get("/api/2.0/modelyard/registry/events", params={"name": "ma"}, auth=ADMIN))["events"]
    assert all(e["kind"] != "model_tag_set" for e in history_a)
    assert {e.get("actor") for e in history_a} <= {"admin"}
