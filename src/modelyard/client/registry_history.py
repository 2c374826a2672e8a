"""The registry's history from the client: list events, roll an alias or stage back, report a deploy.

Against a modelyard server these are the `/api/2.0/modelyard/registry/*` calls; with a SQL registry
URI (embedded use) the same domain functions run in this process. An MLflow server has no history:
its 404 surfaces as the usual `RestException` (ENDPOINT_NOT_FOUND).
"""

from __future__ import annotations

from typing import Any

from modelyard.entities import ModelVersion, PagedList
from modelyard.store.registry.base import RegistryStore
from modelyard.store.registry.events import RegistryEvent

API = "/api/2.0/modelyard/registry"


def rest_store(store: RegistryStore) -> Any:
    """`store` when it talks to a server over REST, else None (a SQL store in this process)."""
    from modelyard.client.rest_registry_store import RestRegistryStore

    return store if isinstance(store, RestRegistryStore) else None


def call(store: Any, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One call of modelyard's own API at `path` on `store`'s server; None values are left out."""
    from modelyard.client import http

    clean = {k: v for k, v in body.items() if v is not None}
    if method == "GET":
        return http.call(store.base_url, method, path, params=clean)
    return http.call(store.base_url, method, path, json_body=clean)


def _event(d: dict[str, Any]) -> RegistryEvent:
    return RegistryEvent(
        event_id=int(d["event_id"]),
        timestamp=int(d["timestamp"]),
        name=d["name"],
        kind=d["kind"],
        version=d.get("version"),
        subject=d.get("subject"),
        endpoint=d.get("endpoint"),
        actor=d.get("actor"),
        details=dict(d.get("details") or {}),
    )


def list_events(
    store: RegistryStore,
    name: str | None = None,
    version: str | int | None = None,
    endpoint: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> PagedList[RegistryEvent]:
    if (rest := rest_store(store)) is not None:
        query = {"name": name, "version": version, "endpoint": endpoint, "max_results": max_results}
        answer = call(rest, "GET", f"{API}/events", {**query, "page_token": page_token})
        return PagedList([_event(e) for e in answer.get("events", [])], answer.get("next_page_token"))
    from modelyard.store.registry import history

    return history.list_events(store.engine, name, version, endpoint, max_results, page_token)  # type: ignore[attr-defined]


def rollback(store: RegistryStore, name: str, alias: str | None = None, stage: str | None = None) -> list[ModelVersion]:
    if (rest := rest_store(store)) is not None:
        answer = call(rest, "POST", f"{API}/rollback", {"name": name, "alias": alias, "stage": stage})
        return [ModelVersion.from_dict(v) for v in answer.get("model_versions", [])]
    from modelyard.store.registry import history

    return history.rollback(store.engine, name, alias=alias, stage=stage)  # type: ignore[attr-defined]


def record_deploy(
    store: RegistryStore, name: str, version: str, kind: str, endpoint: str, details: dict[str, Any] | None = None
) -> None:
    if (rest := rest_store(store)) is not None:
        body = {"name": name, "version": str(version), "kind": kind, "endpoint": endpoint, "details": details or {}}
        call(rest, "POST", f"{API}/events/deploy", body)
        return
    from modelyard.store.registry import history

    history.record_deploy(store.engine, name, version, kind, endpoint, details)  # type: ignore[attr-defined]


def deployed_endpoints(store: RegistryStore, name: str, alias: str | None, stage: str | None) -> list[str]:
    """Endpoints whose latest successful deployment of model `name` used the alias (or stage) URI:
    the ones a rollback of that alias or stage offers to redeploy (CLI and web UI)."""
    wanted = {f"models:/{name}@{alias}"} if alias else {f"models:/{name}/{s}" for s in (stage or "", (stage or "").title())}
    latest: dict[str, str] = {}
    for event in list_events(store, name, max_results=1000):
        if event.kind == "deploy_succeeded" and event.endpoint and event.endpoint not in latest:
            latest[event.endpoint] = str(event.details.get("model_uri", ""))
    return [endpoint for endpoint, uri in latest.items() if uri in wanted]
