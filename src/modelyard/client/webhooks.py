"""Webhooks from the client: register, list, change, delete, test-fire, read the delivery log.

Against a modelyard server these are the `/api/2.0/modelyard/webhooks/*` calls; with a SQL tracking
URI (embedded use) the same domain functions run in this process (deliveries are then sent by a
tracking service running on that database). An MLflow server has no such API: its 404 surfaces as
the usual `RestException`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.client.registry_history import call, rest_store
from modelyard.entities import PagedList
from modelyard.store.registry.base import RegistryStore
from modelyard.store.webhooks.deliveries import Delivery
from modelyard.store.webhooks.subscriptions import Webhook

API = "/api/2.0/modelyard/webhooks"


def _call(store: Any, method: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    return call(store, method, f"{API}/{endpoint}", body)


def create(
    store: RegistryStore,
    name: str,
    url: str,
    events: Sequence[str] | None = None,
    description: str | None = None,
    secret: str | None = None,
    active: bool = True,
) -> Webhook:
    """The new webhook, with its secret (shown this once)."""
    if (rest := rest_store(store)) is not None:
        body = {"name": name, "url": url, "events": None if events is None else list(events),
                "description": description, "secret": secret, "active": active}  # fmt: skip
        return Webhook.from_dict(_call(rest, "POST", "create", body)["webhook"])
    from modelyard.store.webhooks import subscriptions

    allow = _allow_private()
    return subscriptions.create(store.engine, name, url, events, description, secret, active, allow)  # type: ignore[attr-defined]


def _allow_private() -> bool:
    """Embedded use (a SQL store in this process) follows the servers' setting."""
    from modelyard.settings import Settings

    return Settings.from_env().webhook_allow_private


def list_webhooks(store: RegistryStore) -> list[Webhook]:
    if (rest := rest_store(store)) is not None:
        return [Webhook.from_dict(w) for w in _call(rest, "GET", "list", {}).get("webhooks", [])]
    from modelyard.store.webhooks import subscriptions

    return subscriptions.list_all(store.engine)  # type: ignore[attr-defined]


def update(store: RegistryStore, webhook_id: str, **changes: Any) -> Webhook:
    """`changes`: name, url, events, description, active, rotate_secret (None leaves a field)."""
    if (rest := rest_store(store)) is not None:
        return Webhook.from_dict(_call(rest, "PATCH", "update", {"id": webhook_id, **changes})["webhook"])
    from modelyard.store.webhooks import subscriptions

    clean = {k: v for k, v in changes.items() if v is not None}
    return subscriptions.update(store.engine, webhook_id, allow_private=_allow_private(), **clean)  # type: ignore[attr-defined]


def delete(store: RegistryStore, webhook_id: str) -> None:
    if (rest := rest_store(store)) is not None:
        _call(rest, "DELETE", "delete", {"id": webhook_id})
        return
    from modelyard.store.webhooks import subscriptions

    subscriptions.delete_webhook(store.engine, webhook_id)  # type: ignore[attr-defined]


def fire_test(store: RegistryStore, webhook_id: str) -> str:
    """Queue a `webhook.test` delivery; returns its delivery id."""
    if (rest := rest_store(store)) is not None:
        return str(_call(rest, "POST", "test", {"id": webhook_id})["delivery_id"])
    from modelyard.store.webhooks import subscriptions

    return str(subscriptions.fire_test(store.engine, webhook_id))  # type: ignore[attr-defined]


def list_deliveries(
    store: RegistryStore,
    webhook_id: str,
    status: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> PagedList[Delivery]:
    if (rest := rest_store(store)) is not None:
        query = {"id": webhook_id, "status": status, "max_results": max_results, "page_token": page_token}
        answer = _call(rest, "GET", "deliveries", query)
        return PagedList([Delivery.from_dict(d) for d in answer.get("deliveries", [])], answer.get("next_page_token"))
    from modelyard.store.webhooks import deliveries

    return deliveries.list_deliveries(store.engine, webhook_id, status, max_results, page_token)  # type: ignore[attr-defined]
