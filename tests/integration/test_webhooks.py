"""Webhooks (issue #19): a local receiver gets signed payloads for each event kind, caused by the real
`mlflow` client against a gunicorn tracking service; a receiver answering 500 twice gets the event on
the third attempt; a receiver that hangs does not hold up the API call; signatures verify with the
recipe in docs/operations.md. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from tests.support.services import print_log, start_tracking_server

from modelyard.cli import main
from modelyard.devstack.postgres import PostgresServer
from modelyard.webhooks import signing

API = "/api/2.0/modelyard/webhooks"
#: Quick retries and polls, so the scenarios take seconds. An attempt may take 8 s: while a receiver
#: hangs, that long no more than WORKERS x CONCURRENCY attempts can be on their way to it.
FAST = {
    "MODELYARD_WEBHOOK_BACKOFF": "0.2",
    "MODELYARD_WEBHOOK_POLL_INTERVAL": "0.2",
    "MODELYARD_WEBHOOK_TIMEOUT": "8",
    "MODELYARD_WEBHOOK_CONCURRENCY": "2",
    "MODELYARD_WEBHOOK_MAX_ATTEMPTS": "3",
    "MODELYARD_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
}
WORKERS = 2
WAIT_SECONDS = 30.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A local HTTP receiver: `/ok` answers 200, `/flaky` 500 twice then 200, `/down` always 500,
    `/hang` blocks until the test releases it."""

    url: str
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: threading.Event = field(default_factory=threading.Event)
    flaky_answers: list[int] = field(default_factory=lambda: [500, 500])

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not predicate():
            assert time.monotonic() < deadline, f"receiver got {[(r.path, r.json['kind']) for r in self.received]}"
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            if self.path == "/hang":
                state.hanging.set()
                state.release.wait(WAIT_SECONDS)
                return
            status = state.flaky_answers.pop(0) if self.path == "/flaky" and state.flaky_answers else 200
            status = 500 if self.path == "/down" else status
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@contextmanager
def _webhook_server(workdir: Path, backend_store_uri: str | None = None) -> Iterator[str]:
    with start_tracking_server(workdir, backend_store_uri, env=FAST, workers=WORKERS) as service:
        try:
            yield service.url
        except BaseException:
            print_log(service)
            raise


@pytest.fixture(scope="module")
def sqlite_webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The module's tracking service on SQLite, with quick webhook retries (2 workers: each runs a
    delivery thread, and a delivery must still arrive once)."""
    with _webhook_server(tmp_path_factory.mktemp("webhooks-sqlite")) as url:
        yield url


@pytest.fixture(scope="module")
def postgres_webhook_server(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same on a PostgreSQL database of the module's own."""
    name = f"webhooks_{uuid.uuid4().hex[:12]}"
    uri = postgres_server.create_database(name)
    try:
        with _webhook_server(tmp_path_factory.mktemp("webhooks-postgres"), uri) as url:
            yield url
    finally:
        postgres_server.drop_database(name)


def _without_webhooks(server: str) -> Iterator[str]:
    """Webhooks are server-wide: each test starts and leaves the module's server with none."""

    def delete_all() -> None:
        for hook in _api(server, "GET", "list").get("webhooks", []):
            _api(server, "DELETE", "delete", id=hook["id"])

    delete_all()
    yield server
    delete_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """The module's server of each backend (`[sqlite]` / `[postgres]`), with no webhooks."""
    yield from _without_webhooks(request.getfixturevalue(f"{request.param}_webhook_server"))


@pytest.fixture
def sqlite_server(sqlite_webhook_server: str) -> Iterator[str]:
    yield from _without_webhooks(sqlite_webhook_server)


@pytest.fixture
def client(server: str) -> MlflowClient:
    return MlflowClient(tracking_uri=server, registry_uri=server)


def _api(server: str, method: str, endpoint: str, **body: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body}
    response = requests.request(method, f"{server}{API}/{endpoint}", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _verify_as_documented(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """The recipe of docs/operations.md, "Webhooks", written out without modelyard."""
    timestamp = headers["X-Modelyard-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected, headers["X-Modelyard-Signature"])


def _model_version(client: MlflowClient) -> tuple[str, Any]:
    name = f"m-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(f"e-{name}"))
    client.create_registered_model(name)
    client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return name, run


def test_each_event_kind_arrives_signed(client: MlflowClient, server: str, receiver: Receiver) -> None:
    hook = _api(server, "POST", "create", name="all", url=f"{receiver.url}/ok")["webhook"]
    secret = hook["secret"]
    assert hook["events"] == [
        "model_version.created",
        "model_version.stage_transitioned",
        "registered_model.alias_set",
        "deploy.finished",
        "run.finished",
    ]
    # The secret is shown once: never in a listing or a get.
    assert "secret" not in _api(server, "GET", "get", id=hook["id"])["webhook"]
    assert all("secret" not in w for w in _api(server, "GET", "list")["webhooks"])

    name, run = _model_version(client)
    client.set_model_version_tag(name, "1", "k", "v")  # not a webhook kind
    with pytest.raises(MlflowException):  # a change that fails queues nothing
        client.set_registered_model_alias(name, "champion", "9")
    client.transition_model_version_stage(name, "1", "Staging")
    client.set_registered_model_alias(name, "champion", "1")
    client.set_terminated(run.info.run_id, "FINISHED")
    report = {"name": name, "version": "1", "kind": "deploy_succeeded", "endpoint": "churn", "details": {"a": 1}}
    response = requests.post(f"{server}/api/2.0/modelyard/registry/events/deploy", json=report, timeout=10)
    assert response.status_code == 200, response.text
    test_id = _api(server, "POST", "test", id=hook["id"])["delivery_id"]

    kinds = {
        "model_version.created",
        "model_version.stage_transitioned",
        "registered_model.alias_set",
        "run.finished",
        "deploy.finished",
        "webhook.test",
    }
    receiver.wait_for(lambda: {r.json["kind"] for r in receiver.received} >= kinds)
    by_kind = {r.json["kind"]: r for r in receiver.received}
    assert len(receiver.received) == len(kinds)  # one each: the tag change sent nothing
    for kind, got in by_kind.items():
        assert got.headers["X-Modelyard-Event"] == kind
        assert signing.verify(secret, got.headers, got.body)
        assert _verify_as_documented(secret, got.headers, got.body)
        assert not _verify_as_documented("whsec_another-secret-entirely", got.headers, got.body)
        assert not signing.verify(secret, got.headers, got.body + b" ")
        assert not signing.verify(secret, got.headers, got.body, now=time.time() + 3600)  # a replay, later

    assert by_kind["model_version.created"].json["data"] == {
        "name": name, "version": "1", "source": f"{run.info.artifact_uri}/model", "run_id": run.info.run_id,
    }  # fmt: skip
    assert by_kind["model_version.stage_transitioned"].json["data"] == {
        "name": name, "version": "1", "to_stage": "Staging", "from_stage": "None",
    }  # fmt: skip
    assert by_kind["registered_model.alias_set"].json["data"] == {"name": name, "version": "1", "alias": "champion"}
    assert by_kind["deploy.finished"].json["data"] == {
        "name": name, "version": "1", "endpoint": "churn", "outcome": "succeeded", "a": 1,
    }  # fmt: skip
    finished = by_kind["run.finished"].json["data"]
    assert (finished["run_id"], finished["status"]) == (run.info.run_id, "FINISHED")
    assert by_kind["webhook.test"].headers["X-Modelyard-Delivery"] == test_id

    receiver.wait_for(lambda: all(d["status"] == "delivered" for d in _api(server, "GET", "deliveries", id=hook["id"])["deliveries"]))
    log = _api(server, "GET", "deliveries", id=hook["id"])["deliveries"]
    assert len(log) == len(kinds)
    assert [d["id"] for d in log] == sorted((d["id"] for d in log), key=int, reverse=True)
    for delivery in log:
        assert (delivery["attempts"], delivery["last_status_code"]) == (1, 200)
        assert delivery["last_latency_ms"] >= 0 and "delivered_timestamp" in delivery


def test_a_failing_receiver_gets_the_event_on_the_third_attempt(
    client: MlflowClient, server: str, receiver: Receiver
) -> None:
    hook = _api(server, "POST", "create", name="flaky", url=f"{receiver.url}/flaky", events=["model_version.created"])
    hook_id = hook["webhook"]["id"]
    down_id = _api(server, "POST", "create", name="down", url=f"{receiver.url}/down", events=["model_version.created"])[
        "webhook"
    ]["id"]
    _model_version(client)

    receiver.wait_for(lambda: len(receiver.on("/flaky")) == 3)
    attempts = receiver.on("/flaky")
    assert len({a.headers["X-Modelyard-Delivery"] for a in attempts}) == 1  # one delivery, retried
    assert len({a.body for a in attempts}) == 1
    assert all(signing.verify(hook["webhook"]["secret"], a.headers, a.body) for a in attempts)

    def delivered() -> bool:
        return _api(server, "GET", "deliveries", id=hook_id)["deliveries"][0]["status"] == "delivered"

    receiver.wait_for(delivered)
    [delivery] = _api(server, "GET", "deliveries", id=hook_id)["deliveries"]
    assert (delivery["attempts"], delivery["last_status_code"]) == (3, 200)
    assert "last_error" not in delivery
    assert _api(server, "GET", "deliveries", id=hook_id, status="failed").get("deliveries") is None

    # A receiver that never accepts: failed after MODELYARD_WEBHOOK_MAX_ATTEMPTS (3), then left alone.
    receiver.wait_for(lambda: bool(_api(server, "GET", "deliveries", id=down_id, status="failed").get("deliveries")))
    [failed] = _api(server, "GET", "deliveries", id=down_id)["deliveries"]
    assert (failed["attempts"], failed["last_status_code"], len(receiver.on("/down"))) == (3, 500, 3)
    assert failed["last_error"] == "HTTP 500: ok" and "next_attempt_timestamp" not in failed


def test_a_hanging_receiver_does_not_hold_up_the_api(client: MlflowClient, server: str, receiver: Receiver) -> None:
    """Every request to /hang hangs until the test releases it. An API call that waited for its
    event's delivery would wait out the 8 s attempt timeout, and its event would reach the receiver
    before the call returned: six calls would be six requests. The delivery workers have
    WORKERS x CONCURRENCY (4) slots and each hangs 8 s, so while the calls go on the receiver sees at
    most 4 requests, and every call has returned."""
    hook_id = _api(server, "POST", "create", name="hang", url=f"{receiver.url}/hang")["webhook"]["id"]
    name, run = _model_version(client)
    receiver.hanging.wait(WAIT_SECONDS)
    assert receiver.hanging.is_set()

    client.transition_model_version_stage(name, "1", "Staging")
    client.set_registered_model_alias(name, "live", "1")
    client.transition_model_version_stage(name, "1", "Production")
    client.set_registered_model_alias(name, "canary", "1")
    client.set_terminated(run.info.run_id, "FAILED")
    assert client.get_model_version_by_alias(name, "live").current_stage == "Production"
    assert not receiver.release.is_set()
    assert 1 <= len(receiver.on("/hang")) <= WORKERS * int(FAST["MODELYARD_WEBHOOK_CONCURRENCY"])

    def timed_out() -> bool:
        log = _api(server, "GET", "deliveries", id=hook_id)["deliveries"]
        return any("Timeout" in d.get("last_error", "") for d in log)

    receiver.wait_for(timed_out)  # the worker gave up on a stuck attempt and will retry it
    receiver.release.set()


def test_crud_and_bad_input(server: str, receiver: Receiver) -> None:
    created = _api(server, "POST", "create", name="a", url=f"{receiver.url}/ok", events=["run.finished"], secret="s" * 20)
    hook_id = created["webhook"]["id"]
    assert created["webhook"]["secret"] == "s" * 20
    changed = _api(server, "PATCH", "update", id=hook_id, active=False, events=["deploy.finished"], name="b")["webhook"]
    assert (changed["active"], changed["events"], changed["name"], "secret" in changed) == (
        False, ["deploy.finished"], "b", False,
    )  # fmt: skip
    rotated = _api(server, "PATCH", "update", id=hook_id, rotate_secret=True)["webhook"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != "s" * 20

    bad = [
        ("POST", "create", {"name": "x", "url": "ftp://host/x"}),
        ("POST", "create", {"name": "x", "url": "http:///nohost"}),
        ("POST", "create", {"name": "x", "url": f"{receiver.url}/ok", "events": ["model.exploded"]}),
        ("POST", "create", {"name": "x", "url": f"{receiver.url}/ok", "events": []}),
        ("POST", "create", {"name": "x", "url": f"{receiver.url}/ok", "secret": "short"}),
        ("POST", "create", {"url": f"{receiver.url}/ok"}),
        ("PATCH", "update", {"id": hook_id, "url": "javascript:alert(1)"}),
        ("PATCH", "update", {"id": hook_id, "url": "http://169.254.169.254/latest/meta-data/"}),  # even when private is allowed
        ("GET", "deliveries", {"id": hook_id, "status": "lost"}),
    ]
    for method, endpoint, body in bad:
        kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body}
        response = requests.request(method, f"{server}{API}/{endpoint}", timeout=10, **kwargs)
        assert response.status_code == 400, (endpoint, body, response.text)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = requests.get(f"{server}{API}/get", params={"id": "nope"}, timeout=10)
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")

    _api(server, "DELETE", "delete", id=hook_id)
    assert _api(server, "GET", "list").get("webhooks") is None
    gone = requests.delete(f"{server}{API}/delete", json={"id": hook_id}, timeout=10)
    assert gone.status_code == 404


def test_the_cli(sqlite_server: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    server = sqlite_server  # SQLite: the CLI is the same client on both
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["webhooks", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    created = json.loads(run("create", "--name", "cli", "--url", f"{receiver.url}/ok", "--events", "run.finished"))
    assert created["secret"] and created["events"] == ["run.finished"]
    assert [w["name"] for w in json.loads(run("list"))] == ["cli"]
    assert json.loads(run("update", created["id"], "--inactive"))["active"] is False
    delivery_id = run("test", created["id"]).split()[-1]
    receiver.wait_for(lambda: any(r.headers["X-Modelyard-Delivery"] == delivery_id for r in receiver.received))
    receiver.wait_for(lambda: "delivered" in run("deliveries", created["id"]))
    assert "webhook.test  delivered  attempts=1  code=200" in run("deliveries", created["id"])
    refused = runner.invoke(main, ["webhooks", "create", "--name", "x", "--url", "ftp://x"])
    assert refused.exit_code == 1 and "INVALID_PARAMETER_VALUE" in refused.output
    run("delete", created["id"])
    assert json.loads(run("list")) == []
