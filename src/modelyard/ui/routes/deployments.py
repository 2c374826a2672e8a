"""Deployments: the endpoints of the configured SageMaker API (`/deployments`) and one endpoint with
its variants, weights and deploy history (`/deployments/{name}`).

The SageMaker API is the local endpoint service in the stack (AWS_ENDPOINT_URL_SAGEMAKER) or AWS;
when it cannot be reached the page says so instead of failing. Variants are named back to model
versions through the registry's history (`deploy_succeeded` events carry the variant's name).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard.auth.identity import readable
from modelyard.auth.permissions import REGISTERED_MODEL
from modelyard.deploy import inventory
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events, history
from modelyard.ui import csrf
from modelyard.ui.forms import FormFields
from modelyard.ui.render import UiRoute, page
from modelyard.ui.routes.models import Acting

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
    """Which model version each variant runs, and the endpoint's deployment history: of the models the
    caller may read (with auth on, others' names stay off the page)."""
    engine = request.app.state.registry_store.engine
    visible = readable(request, REGISTERED_MODEL)
    found = [
        e
        for e in history.list_events(engine, endpoint=endpoint, max_results=HISTORY_SIZE)
        if visible is None or visible.allows(e.name)
    ]
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


# --- actions -------------------------------------------------------------------------------------
Actions = [Depends(csrf.require_token), Acting]


@router.post("/deployments/{name}/weights", dependencies=Actions)
def shift_weights(request: Request, name: str, form: FormFields) -> Response:
    """Traffic between the running variants, without a redeploy (UpdateEndpointWeightsAndCapacities)."""
    versions, _ = _variant_versions(request, name)
    desired: list[dict[str, Any]] = []
    for key, raw in form.items():
        if not key.startswith("weight:"):
            continue
        try:
            weight = float(raw)
        except ValueError as exc:
            raise ModelyardException.invalid_parameter(f"The weight of {key[7:]} must be a number, not {raw!r}.") from exc
        desired.append({"VariantName": key[7:], "DesiredWeight": weight})
    if not desired:
        raise ModelyardException.invalid_parameter("Give at least one variant's weight.")
    inventory.shift_weights(sagemaker(), name, desired)
    engine = request.app.state.registry_store.engine
    for item in desired:
        if (served := versions.get(item["VariantName"])) is not None:
            history.record_deploy(
                engine, served[0], served[1], events.TRAFFIC_SHIFTED, name,
                {"variant": item["VariantName"], "weight": item["DesiredWeight"]},
            )  # fmt: skip
    return RedirectResponse(f"/deployments/{name}", status_code=303)


@router.post("/deployments/{name}/delete", dependencies=Actions)
def delete_endpoint(request: Request, name: str) -> Response:
    versions, _ = _variant_versions(request, name)
    client = sagemaker()
    endpoint = inventory.describe(client, name, versions)
    inventory.delete(client, name)
    engine = request.app.state.registry_store.engine
    for variant in endpoint.variants:
        if variant.model_version is not None:
            history.record_deploy(
                engine, *variant.model_version, events.ENDPOINT_DELETED, name, {"variant": variant.name}
            )
    return RedirectResponse("/deployments", status_code=303)
