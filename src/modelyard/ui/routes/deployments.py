"""Deployments: the endpoints of the configured SageMaker API (`/deployments`) and one endpoint with
its variants, weights and deploy history (`/deployments/{name}`).

The SageMaker API is the local endpoint service in the stack (AWS_ENDPOINT_URL_SAGEMAKER) or AWS;
when it cannot be reached the page says so instead of failing. Variants are named back to model
versions through the registry's history (`deploy_succeeded` events carry the variant's name).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.deploy import inventory
from modelyard.store.registry import events, history
from modelyard.ui.render import UiRoute, page

router = APIRouter(route_class=UiRoute, include_in_schema=False)
HISTORY_SIZE = 200

_client: Any = None


def sagemaker() -> Any:
    """One client per worker (boto3 clients are thread-safe and cost ~40 ms to build)."""
    global _client
    if _client is None:
        _client = inventory.sagemaker_client()
    return _client


def _variant_versions(request: Request, endpoint: str) -> tuple[dict[str, tuple[str, str]], list[events.RegistryEvent]]:
    engine = request.app.state.registry_store.engine
    found = list(history.list_events(engine, endpoint=endpoint, max_results=HISTORY_SIZE))
    versions: dict[str, tuple[str, str]] = {}
    for event in reversed(found):  # oldest first: a later deployment of a variant name wins
        variant = event.details.get("variant")
        if event.kind == events.DEPLOY_SUCCEEDED and variant and event.version:
            versions[str(variant)] = (event.name, event.version)
    return versions, found


@router.get("/deployments")
def deployments_page(request: Request) -> Response:
    try:
        client = sagemaker()
        endpoints = [inventory.describe(client, name, _variant_versions(request, name)[0]) for name in inventory.endpoint_names(client)]
        problem = None
    except inventory.SageMakerUnavailable as exc:
        endpoints, problem = [], exc.message
    return page(request, "deployments.html", section="deployments", endpoints=endpoints, problem=problem)


@router.get("/deployments/{name}")
def deployment_page(request: Request, name: str) -> Response:
    versions, timeline = _variant_versions(request, name)
    try:
        endpoint = inventory.describe(sagemaker(), name, versions)
        problem = None
    except inventory.SageMakerUnavailable as exc:
        endpoint, problem = None, exc.message
    return page(
        request, "deployment.html", section="deployments", name=name, endpoint=endpoint, problem=problem, timeline=timeline
    )
