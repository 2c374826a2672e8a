"""The real `mlflow` client against an auth-enabled tracking server: real gunicorn (2 workers) over
sockets on PostgreSQL, one server for the module.

The server trusts a verified credential for 60 s (`MODELYARD_AUTH_CACHE_SECONDS`), so a revoked token
refused on the next request of every worker proves the workers' shared change counter works, not a
short cache. Ten failed sign-ins lock a user out for 3 s.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.support.mlflow_client import mlflow_pointed_at
from tests.support.outcome import test_failed
from tests.support.services import print_log, start_tracking_server

from modelyard.devstack.postgres import PostgresServer

pytestmark = [pytest.mark.compat, pytest.mark.postgres]

ADMIN = ("admin", "admin-password-1")
LOCKOUT_SECONDS = 3
CREDENTIAL_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@dataclass
class AuthServer:
    url: str
    log: Callable[[], str]

    def api(self, method: str, path: str, auth: tuple[str, str] | None = ADMIN, **kwargs: Any) -> requests.Response:
        # A fresh connection per call: calls spread over the workers.
        return requests.request(method, self.url + path, auth=auth, headers={"Connection": "close"}, timeout=60, **kwargs)

    def ok(self, method: str, path: str, auth: tuple[str, str] | None = ADMIN, **kwargs: Any) -> Any:
        response = self.api(method, path, auth, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def user(self, prefix: str) -> tuple[str, str]:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        password = f"{name}-password"
        self.ok("POST", "/api/2.0/mlflow/users/create", json={"username": name, "password": password})
        return name, password

    def grant(self, user: str, resource_type: str, resource_id: str, permission: str) -> None:
        body = {"username": user, "resource_type": resource_type, "resource_id": resource_id, "permission": permission}
        self.ok("POST", "/api/3.0/mlflow/users/permissions/grant", json=body)


@pytest.fixture(scope="module")
def auth_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[AuthServer]:
    name = f"auth_{uuid.uuid4().hex[:12]}"
    uri = postgres_server.create_database(name)
    env = {
        "MODELYARD_AUTH": "true",
        "MODELYARD_ADMIN_USERNAME": ADMIN[0],
        "MODELYARD_ADMIN_PASSWORD": ADMIN[1],
        "MODELYARD_AUTH_DEFAULT_PERMISSION": "READ",
        "MODELYARD_AUTH_CACHE_SECONDS": "60",
        "MODELYARD_AUTH_MAX_FAILED_LOGINS": "10",
        "MODELYARD_AUTH_MAX_FAILED_LOGINS_PER_ADDRESS": "100000",  # every test signs in from 127.0.0.1
        "MODELYARD_AUTH_FAILED_LOGIN_WINDOW_SECONDS": "600",
        "MODELYARD_AUTH_LOCKOUT_SECONDS": str(LOCKOUT_SECONDS),
        "MODELYARD_WEBHOOK_DELIVERY": "false",
        # Cheaper argon2id hashes for the test (the defaults cost ~0.5 s each on a loaded 2-core machine).
        "MODELYARD_AUTH_PASSWORD_HASH_TIME_COST": "1",
        "MODELYARD_AUTH_PASSWORD_HASH_MEMORY_KIB": "8192",
    }
    with start_tracking_server(tmp_path_factory.mktemp("auth-server"), uri, env=env, workers=2) as service:
        try:
            yield AuthServer(service.url, service.log)
        finally:
            if test_failed(request):
                print_log(service)
    postgres_server.drop_database(name)


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`as_user(name, password)` / `as_user(token=...)`: the mlflow client's credentials, from its env."""
    for variable in CREDENTIAL_ENV:
        monkeypatch.delenv(variable, raising=False)

    def use(username: str | None = None, password: str | None = None, token: str | None = None) -> None:
        for variable in CREDENTIAL_ENV:
            monkeypatch.delenv(variable, raising=False)
        if token is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        elif username is not None and password is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    return use


def test_the_servers_own_log_lines_reach_its_log(auth_server: AuthServer) -> None:
    """The `modelyard.*` loggers write to the service's stderr with a time, the process and their name
    (nothing configured them: INFO lines were lost, warnings came out bare)."""
    log = auth_server.log()
    assert re.search(r"^\[[^]]+\] \[\d+\] \[INFO\] modelyard\.auth\.accounts: Created the admin user 'admin'", log, re.M), log
    assert re.search(r"\[INFO\] modelyard\.auth\.install: Authentication is on \(tracking service\)", log), log


def _workflow(url: str, tmp_path: Path, experiment: str, model: str) -> str:
    """Tracking, artifacts through the proxy, and the registry, as a user of the mlflow client would."""
    import mlflow
    from mlflow import MlflowClient

    with mlflow_pointed_at(url):
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            mlflow.log_param("alpha", "0.5")
            for step in range(3):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            (tmp_path / "notes.txt").write_text("hello")
            mlflow.log_artifact(str(tmp_path / "notes.txt"))
            (tmp_path / "model").mkdir(exist_ok=True)
            (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
            mlflow.log_artifacts(str(tmp_path / "model"), artifact_path="model")
        client = MlflowClient()
        found = mlflow.search_runs(experiment_names=[experiment], output_format="list")
        assert [r.info.run_id for r in found] == [run.info.run_id]
        assert client.get_metric_history(run.info.run_id, "loss")[-1].value == pytest.approx(1 / 3)
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="notes.txt", dst_path=str(tmp_path / "dl"))
        assert Path(local).read_text() == "hello"
        client.create_registered_model(model)
        version = client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(model, "champion", version.version)
        assert client.get_model_version_by_alias(model, "champion").run_id == run.info.run_id
        return str(run.info.run_id)


def test_the_mlflow_client_works_with_basic_auth(auth_server: AuthServer, as_user: Any, tmp_path: Path) -> None:
    user, password = auth_server.user("carol")
    as_user(user, password)
    _workflow(auth_server.url, tmp_path, f"basic-{user}", f"model-{user}")
    # The creator got MANAGE on what they made.
    answer = auth_server.ok(
        "GET", "/api/3.0/mlflow/users/permissions/get",
        params={"username": user, "resource_type": "registered_model", "resource_id": f"model-{user}"},
    )  # fmt: skip
    assert answer == {"allowed": True, "permission": "MANAGE"}


def test_the_mlflow_client_works_with_a_bearer_token(auth_server: AuthServer, as_user: Any, tmp_path: Path) -> None:
    user, password = auth_server.user("tess")
    token = auth_server.ok("POST", "/api/2.0/modelyard/tokens/create", auth=(user, password), json={"name": "ci"})
    as_user(token=token["token"]["token"])
    _workflow(auth_server.url, tmp_path, f"bearer-{user}", f"model-{user}")


def test_without_credentials_the_client_gets_401(auth_server: AuthServer, as_user: Any) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    as_user()
    with mlflow_pointed_at(auth_server.url), pytest.raises(MlflowException) as caught:
        MlflowClient().search_experiments()
    assert "401" in str(caught.value) or "UNAUTHENTICATED" in str(caught.value)


def test_a_read_only_user_cannot_write_see_or_download_what_is_not_theirs(
    auth_server: AuthServer, as_user: Any, tmp_path: Path
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    owner, owner_password = auth_server.user("owner")
    as_user(owner, owner_password)
    run_a = _workflow(auth_server.url, tmp_path, f"A-{owner}", f"ma-{owner}")
    (tmp_path / "b").mkdir()
    run_b = _workflow(auth_server.url, tmp_path / "b", f"B-{owner}", f"mb-{owner}")
    reader, reader_password = auth_server.user("reader")
    a = auth_server.ok("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": f"A-{owner}"})
    b = auth_server.ok("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": f"B-{owner}"})
    exp_a, exp_b = a["experiment"]["experiment_id"], b["experiment"]["experiment_id"]
    auth_server.grant(reader, "experiment", exp_a, "READ")
    auth_server.grant(reader, "experiment", exp_b, "NO_PERMISSIONS")
    auth_server.grant(reader, "registered_model", f"ma-{owner}", "READ")

    as_user(reader, reader_password)
    with mlflow_pointed_at(auth_server.url):
        client = MlflowClient()
        assert client.get_run(run_a).info.run_id == run_a
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|403"):
            client.log_metric(run_a, "sneaky", 1.0)
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|403"):
            client.set_registered_model_alias(f"ma-{owner}", "champion", "1")
        # Experiment B is in no page of any search, whatever the page size.
        for page_size in (1, 2, 1000):
            seen, token = [], None
            while True:
                page = client.search_experiments(max_results=page_size, page_token=token)
                seen += [e.experiment_id for e in page]
                token = page.token
                if not token:
                    break
            assert exp_a in seen and exp_b not in seen and len(seen) == len(set(seen))
        with pytest.raises(MlflowException):
            client.search_runs([exp_b])
        import mlflow

        with pytest.raises((MlflowException, requests.HTTPError), match="403|PERMISSION_DENIED"):
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"mlflow-artifacts:/{exp_b}/{run_b}/artifacts/notes.txt", dst_path=str(tmp_path / "x")
            )
    digits = "".join(f"%{ord(c):02X}" for c in exp_b)
    spellings = [f"{exp_b}/{run_b}", f"./{exp_b}/{run_b}", f"{exp_b}//{run_b}", f"{digits}/{run_b}", f"0{exp_b}/{run_b}"]
    for spelling in spellings:
        for prefix in ("/api/2.0/mlflow-artifacts/artifacts/", "/ajax-api/2.0/mlflow-artifacts/artifacts/"):
            r = auth_server.api("GET", f"{prefix}{spelling}/artifacts/notes.txt", auth=(reader, reader_password))
            assert r.status_code in (400, 403), (spelling, r.status_code)
        r = auth_server.api("GET", "/api/2.0/mlflow-artifacts/artifacts", auth=(reader, reader_password), params={"path": spelling})
        assert r.status_code in (400, 403), (spelling, r.status_code)
    r = auth_server.api("GET", "/get-artifact", auth=(reader, reader_password), params={"run_uuid": run_b, "path": "notes.txt"})
    assert r.status_code == 403


def test_get_app_client_creates_users_and_grants_that_take_effect(
    auth_server: AuthServer, as_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    as_user(*ADMIN)
    experiment_id = auth_server.ok("POST", "/api/2.0/mlflow/experiments/create", json={"name": f"granted-{uuid.uuid4().hex[:6]}"})["experiment_id"]
    auth_client = get_app_client("basic-auth", tracking_uri=auth_server.url)
    name, password = f"erin-{uuid.uuid4().hex[:6]}", "erin-password-123"
    auth_client.create_user(name, password)
    assert auth_client.get_user(name).username == name

    as_user(name, password)
    with mlflow_pointed_at(auth_server.url):
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|403"):
            MlflowClient().create_run(experiment_id)  # default READ: no writing
        as_user(*ADMIN)
        auth_client.grant_user_permission(name, "experiment", experiment_id, "EDIT")
        assert auth_client.get_user_permission(name, "experiment", experiment_id).permission == "EDIT"
        as_user(name, password)
        run = MlflowClient().create_run(experiment_id)  # the grant took effect at once
        assert run.info.experiment_id == experiment_id
        as_user(*ADMIN)
        auth_client.revoke_user_permission(name, "experiment", experiment_id)
        as_user(name, password)
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|403"):
            MlflowClient().create_run(experiment_id)


def test_fifty_wrong_passwords_are_rate_limited_and_the_right_one_works_after_the_window(auth_server: AuthServer) -> None:
    user, password = auth_server.user("frank")
    statuses = [
        auth_server.api("GET", "/api/2.0/mlflow/users/current", auth=(user, f"wrong-{i}-password")).status_code
        for i in range(50)
    ]
    assert statuses == [401] * 10 + [429] * 40
    locked = auth_server.api("GET", "/api/2.0/mlflow/users/current", auth=(user, password))
    assert locked.status_code == 429 and locked.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert 1 <= int(locked.headers["retry-after"]) <= LOCKOUT_SECONDS
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(LOCKOUT_SECONDS / 2)
        answer = auth_server.api("GET", "/api/2.0/mlflow/users/current", auth=(user, password))
        if answer.status_code != 429:
            break
    assert answer.status_code == 200 and answer.json()["user"]["username"] == user


def test_a_revoked_token_is_refused_at_once_on_every_worker(auth_server: AuthServer) -> None:
    user, password = auth_server.user("gina")
    made = auth_server.ok("POST", "/api/2.0/modelyard/tokens/create", auth=(user, password), json={"name": "t"})["token"]
    bearer = {"Authorization": f"Bearer {made['token']}", "Connection": "close"}

    def current() -> int:
        return requests.get(auth_server.url + "/api/2.0/mlflow/users/current", headers=bearer, timeout=60).status_code

    assert [current() for _ in range(16)] == [200] * 16  # cached by every worker that saw it
    auth_server.ok("POST", "/api/2.0/modelyard/tokens/revoke", auth=(user, password), json={"id": made["id"]})
    assert [current() for _ in range(16)] == [401] * 16

