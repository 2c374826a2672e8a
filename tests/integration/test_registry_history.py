"""The registry's history (issue #16): events written with their change, replay ("who held alias X
at time T"), rollback of aliases and stages, deploy reports — driven by the real `mlflow` client
against a gunicorn tracking service, and through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from tests.conftest import SharedServer

from modelyard.store.registry import events, history
from modelyard.store.registry.sql_store import SqlRegistryStore
from modelyard.store.sql.migrate import upgrade
from modelyard.store.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def server(shared_server: SharedServer) -> str:
    """The session's shared tracking service of each backend (every test names its own models)."""
    return shared_server.url


@pytest.fixture
def client(server: str) -> Iterator[MlflowClient]:
    yield MlflowClient(tracking_uri=server, registry_uri=server)


def _events(server: str, **query: Any) -> list[dict[str, Any]]:
    response = requests.get(f"{server}/api/2.0/modelyard/registry/events", params=query, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json().get("events", []))


def _model_with_versions(client: MlflowClient, count: int) -> str:
    name = f"m-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(f"e-{name}"))
    client.create_registered_model(name)
    for _ in range(count):
        client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return name


def test_the_mlflow_clients_registry_calls_are_recorded_newest_first(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 2)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "champion", "2")  # no change: no event
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.update_registered_model(name, description="churn model")
    client.delete_registered_model_alias(name, "champion")

    kinds = [(e["kind"], e.get("version"), e.get("subject")) for e in reversed(_events(server, name=name))]
    assert kinds == [
        ("model_created", None, None),
        ("version_created", "1", None),
        ("version_created", "2", None),
        ("stage_transitioned", "1", "Production"),
        ("stage_transitioned", "1", "Archived"),  # archived by version 2's promotion
        ("stage_transitioned", "2", "Production"),
        ("alias_set", "1", "champion"),
        ("alias_set", "2", "champion"),
        ("version_tag_set", "2", None),
        ("model_description_set", None, None),
        ("alias_deleted", "2", "champion"),
    ]
    promoted = _events(server, name=name, version="2")
    assert [e["kind"] for e in promoted][-1] == "version_created"
    moved = next(e for e in promoted if e["kind"] == "alias_set")
    assert moved["details"] == {"from_version": 1}
    archive = next(e for e in promoted if e["kind"] == "stage_transitioned")
    assert archive["details"] == {"from_stage": "None", "archive_existing_versions": True, "archived": [1]}


def test_a_failed_change_writes_no_event(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 1)
    before = _events(server, name=name)
    with pytest.raises(MlflowException):
        client.set_registered_model_alias(name, "champion", "7")
    with pytest.raises(MlflowException):
        client.transition_model_version_stage(name, "1", "Sideways")
    assert _events(server, name=name) == before


def _store_with_versions(db_uri: str, tmp_path: Any, name: str, count: int) -> SqlRegistryStore:
    """A registry store on `db_uri` holding model `name` with `count` versions of one run."""
    upgrade(db_uri)
    tracking = SqlTrackingStore.from_uri(db_uri, default_artifact_root=str(tmp_path))
    store = SqlRegistryStore(tracking.engine, artifact_roots=(str(tmp_path),))
    run = tracking.create_run(tracking.create_experiment(f"e-{name}"), user_id="me", start_time=0, tags=[], run_name="r")
    store.create_registered_model(name)
    for _ in range(count):
        store.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return store


@pytest.mark.parametrize("fails", ["after", "instead"])
def test_a_change_and_its_event_commit_together(db_uri: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    """The event is written in the change's transaction: when anything fails once the event has been
    added (or when the event cannot be written), neither the change nor the event is kept."""
    store = _store_with_versions(db_uri, tmp_path, "m", 2)
    first = store.get_model_version("m", "1")
    store.set_registered_model_alias("m", "champion", "1")
    before = history.list_events(store.engine, name="m", max_results=100)
    original = events.record

    def broken(*args: Any, **kwargs: Any) -> None:
        if fails == "after":
            original(*args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(events, "record", broken)
    changes = (
        lambda: store.set_registered_model_alias("m", "champion", "2"),
        lambda: store.transition_model_version_stage("m", "2", "Production", archive_existing_versions=True),
        lambda: store.set_registered_model_tag("m", "team", "risk"),
        lambda: store.rename_registered_model("m", "renamed"),
        lambda: store.create_model_version("m", first.source, run_id=first.run_id),
        lambda: store.delete_registered_model("m"),
    )
    for change in changes:
        with pytest.raises(RuntimeError):
            change()
    monkeypatch.undo()
    assert list(history.list_events(store.engine, name="m", max_results=100)) == list(before)
    model = store.get_registered_model("m")
    assert model.tags == {} and [a.version for a in model.aliases] == ["1"]
    versions = {v.version: v.current_stage for v in store.search_model_versions("name = 'm'")}
    assert versions == {"1": "None", "2": "None"}
    store.engine.dispose()


def test_who_held_an_alias_or_a_stage_at_a_time(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 3)
    marks = []
    for version in ("1", "2", "3"):
        client.set_registered_model_alias(name, "champion", version)
        client.transition_model_version_stage(name, version, "Production", archive_existing_versions=True)
        time.sleep(0.01)
        marks.append(int(time.time() * 1000))
        time.sleep(0.01)

    def held(**query: Any) -> list[str]:
        response = requests.get(f"{server}/api/2.0/modelyard/registry/held", params={"name": name, **query}, timeout=10)
        assert response.status_code == 200, response.text
        return list(response.json()["versions"])

    assert [held(alias="champion", time=t) for t in marks] == [["1"], ["2"], ["3"]]
    assert [held(stage="production", time=t) for t in marks] == [["1"], ["2"], ["3"]]
    assert held(alias="champion", time=marks[0] - 10_000) == []
    bad = requests.get(f"{server}/api/2.0/modelyard/registry/held", params={"name": name}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_rollback_moves_an_alias_back_and_records_it(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 2)
    rollback = f"{server}/api/2.0/modelyard/registry/rollback"
    client.set_registered_model_alias(name, "champion", "1")
    first = requests.post(rollback, json={"name": name, "alias": "champion"}, timeout=10)
    assert first.status_code == 400 and "nothing to roll back to" in first.json()["message"]

    client.set_registered_model_alias(name, "champion", "2")
    done = requests.post(rollback, json={"name": name, "alias": "champion"}, timeout=10)
    assert done.status_code == 200, done.text
    assert [v["version"] for v in done.json()["model_versions"]] == ["1"]
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    last = _events(server, name=name, max_results=1)[0]
    assert last["kind"] == "alias_set" and last["version"] == "1" and last["details"]["from_version"] == 2
    assert "rollback_of" in last["details"]


def test_rollback_of_a_promotion_restores_the_archived_version(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 2)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    done = requests.post(
        f"{server}/api/2.0/modelyard/registry/rollback", json={"name": name, "stage": "Production"}, timeout=10
    )
    assert done.status_code == 200, done.text
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    assert stages == {"1": "Production", "2": "None"}


def test_concurrent_alias_moves_leave_a_consistent_history(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 4)
    errors: list[BaseException] = []

    def mover(worker: int) -> None:
        try:
            for i in range(6):
                client.set_registered_model_alias(name, "champion", str((worker + i) % 4 + 1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    moves = [e for e in reversed(_events(server, name=name, max_results=1000)) if e["kind"] == "alias_set"]
    previous = None
    for move in moves:  # each move starts where the one before it left the alias
        assert move["details"].get("from_version") == previous
        previous = int(move["version"])
    assert str(previous) == client.get_model_version_by_alias(name, "champion").version


def test_history_follows_a_rename_and_goes_only_with_purge(db_uri: str, tmp_path: Any) -> None:
    upgrade(db_uri)
    tracking = SqlTrackingStore.from_uri(db_uri, default_artifact_root=str(tmp_path))
    store = SqlRegistryStore(tracking.engine, artifact_roots=(str(tmp_path),))
    run = tracking.create_run(tracking.create_experiment("h"), user_id="me", start_time=0, tags=[], run_name="r")
    store.create_registered_model("old")
    store.create_model_version("old", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    store.rename_registered_model("old", "new")
    kinds = [e.kind for e in history.list_events(store.engine, name="new")]
    assert kinds == ["model_renamed", "version_created", "model_created"]
    assert list(history.list_events(store.engine, name="old")) == []
    store.delete_registered_model("new")
    assert history.list_events(store.engine, name="new")[0].kind == "model_deleted"
    store.create_registered_model("new")
    store.delete_registered_model("new", purge_history=True)
    assert list(history.list_events(store.engine, name="new")) == []


def test_deploy_reports_are_listed_by_endpoint_and_paged(client: MlflowClient, server: str) -> None:
    name = _model_with_versions(client, 1)
    url = f"{server}/api/2.0/modelyard/registry/events/deploy"
    for kind in ("deploy_started", "deploy_succeeded"):
        response = requests.post(
            url,
            json={"name": name, "version": "1", "kind": kind, "endpoint": f"ep-{name}", "details": {"variant": "v1"}},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    refused = requests.post(url, json={"name": name, "version": "1", "kind": "alias_set", "endpoint": "x"}, timeout=10)
    assert refused.status_code == 400
    page = requests.get(
        f"{server}/api/2.0/modelyard/registry/events", params={"endpoint": f"ep-{name}", "max_results": 1}, timeout=10
    ).json()
    assert [e["kind"] for e in page["events"]] == ["deploy_succeeded"] and page["next_page_token"]
    rest = _events(server, endpoint=f"ep-{name}", page_token=page["next_page_token"])
    assert [e["kind"] for e in rest] == ["deploy_started"]


def test_the_actor_is_the_clients_user(server: str) -> None:
    name = f"a-{uuid.uuid4().hex[:8]}"
    response = requests.post(
        f"{server}/api/2.0/mlflow/registered-models/create", json={"name": name}, auth=("alice", "x"), timeout=10
    )
    assert response.status_code == 200
    assert _events(server, name=name)[0]["actor"] == "alice"


def test_a_versions_deployed_endpoints_are_its_successful_deploys_only(db_uri: str, tmp_path: Any) -> None:
    """What the version page's score box asks SageMaker about: every endpoint a deploy of this version
    succeeded on (however long its history), not started or failed ones, not other versions'."""
    from sqlalchemy.orm import Session

    store = _store_with_versions(db_uri, tmp_path, "dep", 2)
    reports = [
        (1, events.DEPLOY_SUCCEEDED, "ep-b"),
        (1, events.DEPLOY_STARTED, "ep-started-only"),
        (1, events.DEPLOY_FAILED, "ep-failed"),
        (2, events.DEPLOY_SUCCEEDED, "ep-other-version"),
        (1, events.DEPLOY_SUCCEEDED, "ep-a"),
        (1, events.DEPLOY_SUCCEEDED, "ep-b"),
    ]
    with Session(store.engine) as session, session.begin():
        for i, (version, kind, endpoint) in enumerate(reports):
            events.record(session, kind, "dep", 1_000 + i, version=version, endpoint=endpoint, variant="v")
        for i in range(300):  # more than a page of the version's own history
            events.record(session, events.VERSION_TAG_SET, "dep", 2_000 + i, version=1, key="k", value=str(i))
    assert history.deployed_endpoints(store.engine, "dep", "1") == ["ep-a", "ep-b"]
    assert history.deployed_endpoints(store.engine, "dep", 2) == ["ep-other-version"]
    assert history.deployed_endpoints(store.engine, "dep", "3") == []
    newest = history.list_events(store.engine, name="dep", version="1", max_results=2)
    assert [e.kind for e in newest] == [events.VERSION_TAG_SET, events.VERSION_TAG_SET] and newest[0].details == {"key": "k", "value": "299"}


def test_a_deleted_versions_history_stays(db_uri: str, tmp_path: Any) -> None:
    """Retention: a version's events are kept when the version is deleted (only purging its model's
    history removes them)."""
    store = _store_with_versions(db_uri, tmp_path, "kept", 2)
    store.set_registered_model_alias("kept", "champion", "2")
    store.delete_model_version("kept", "2")
    own = [e.kind for e in history.list_events(store.engine, name="kept", version="2")]
    assert own == ["version_deleted", "alias_deleted", "alias_set", "version_created"]  # its alias went with it
    assert history.holders_at(store.engine, "kept", when=2**62, alias="champion") == []  # gone with its version
    store.engine.dispose()
