"""Deployments: the endpoints of the configured SageMaker API (`/deployments`) and one endpoint with
its variants, weights, deploy history and actions (`/deployments/{name}`; the actions' routes are
in `deploy_actions`).

The SageMaker API is the local endpoint service in the stack (AWS_ENDPOINT_URL_SAGEMAKER) or AWS;
when it cannot be reached the page says so instead of failing. Variants are named back to model
versions through the registry's history (`deploy_succeeded` events carry the variant's name). A
deploy under way (a `deploy_started` without outcome) makes the page poll a small fragment, which
reloads the page once the deploy has an outcome. The variants' invocation counts, where the SageMaker API
reports them (`deploy.invocations`), are a fragment the page loads after its first paint and every 5 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.auth.identity import readable
from modelyard.deploy import inventory, invocations, service_deploys
from modelyard.exceptions import ModelyardException
from modelyard.store.auth.permissions import REGISTERED_MODEL
from modelyard.store.registry import events, history
from modelyard.ui.render import UiRoute, page

router = APIRouter(route_class=UiRoute, include_in_schema=False)
HISTORY_SIZE = 200
#: SageMaker states in which an endpoint is changing by itself (the page polls until they end).
CHANGING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


def sagemaker() -> Any:
    return inventory.shared_client()


def variant_versions(request: Request, endpoint: str) -> tuple[dict[str, tuple[str, str]], list[events.RegistryEvent]]:
    """Which (model, version) each variant name serves, and the endpoint's history (newest first): of
    the models the caller may read (with auth on, others' names stay off the page)."""
    engine = request.app.state.registry_store.engine
    visible = readable(request, REGISTERED_MODEL)
    found = [
        e
        for e in history.list_events(engine, endpoint=endpoint, max_results=HISTORY_SIZE)
        if visible is None or visible.allows(e.name)
    ]
    return events.variant_versions(found), found


@dataclass(frozen=True)
class EndpointView:
    """Everything the endpoint page and its progress fragment show."""

    name: str
    endpoint: inventory.EndpointStatus | None
    problem: str | None
    timeline: list[events.RegistryEvent]
    state: inventory.DeployState
    rollback_to: tuple[str, str] | None

    @property
    def busy(self) -> bool:
        return self.state.pending is not None or (self.endpoint is not None and self.endpoint.status in CHANGING)

    @property
    def main_variant(self) -> inventory.VariantStatus | None:
        """The first variant whose version is known (the deploy form's defaults), else the first."""
        variants = self.endpoint.variants if self.endpoint is not None else []
        return next((v for v in variants if v.model_version is not None), variants[0] if variants else None)


def endpoint_view(request: Request, name: str) -> EndpointView:
    versions, timeline = variant_versions(request, name)
    endpoint, problem = None, None
    try:
        endpoint = inventory.describe(sagemaker(), name, versions)
    except inventory.SageMakerUnavailable as exc:
        problem = exc.message
    except ModelyardException as exc:
        if exc.http_status != 404 or not timeline:
            raise  # an endpoint nobody ever deployed here: a 404 page
        problem = None  # deleted, or being created: the history says which
    state = inventory.deploy_state(timeline, int(time.time() * 1000), service_deploys.TIMEOUT_SECONDS)
    return EndpointView(name, endpoint, problem, timeline, state, inventory.rollback_target(timeline))


@router.get("/deployments")
def deployments_page(request: Request) -> Response:
    try:
        client = sagemaker()
        endpoints = [inventory.describe(client, name, variant_versions(request, name)[0]) for name in inventory.endpoint_names(client)]
        problem = None
    except inventory.SageMakerUnavailable as exc:
        endpoints, problem = [], exc.message
    return page(request, "deployments.html", section="deployments", endpoints=endpoints, problem=problem)


@router.get("/deployments/{name}")
def deployment_page(request: Request, name: str) -> Response:
    view = endpoint_view(request, name)
    return page(request, "deployment.html", section="deployments", view=view, name=name, version_uri=service_deploys.version_uri)


@router.get("/deployments/{name}/progress")
def deployment_progress(request: Request, name: str) -> Response:
    """While a deploy is under way: the progress notice again (htmx polls it); after: a reload."""
    view = endpoint_view(request, name)
    if view.busy:
        return page(request, "_deploy_progress.html", view=view)
    return Response(b"", headers={"HX-Refresh": "true"})


@router.get("/deployments/{name}/invocations")
def deployment_invocations(request: Request, name: str) -> Response:
    """The variants' invocation counts, or that the SageMaker API reports none (never an error page:
    the read gives up after `invocations.TIMEOUT_SECONDS`)."""
    counts = invocations.read_counts(sagemaker(), name)
    versions = variant_versions(request, name)[0] if counts is not None else {}
    return page(request, "_invocations.html", counts=counts, versions=versions)
