"""The web UI's deploy actions: deploy a version to an endpoint (create one, replace what it
serves, or add a canary variant with a weight), promote a canary, roll an endpoint back to the
version it served before, shift traffic, delete.

Confirmation without modals: every action but delete posts to a review page that says what will
change (traffic before and after) and carries the same fields with `confirmed=1`; a refusal is
shown on that page with the fields to correct. Delete asks for the endpoint's name typed out. The
routes call what the CLI calls (`deploy.service_deploys` around `SageMakerDeployer`,
`deploy.inventory`, the registry's history), never the API over HTTP.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard.deploy import inventory, service_deploys
from modelyard.deploy.sagemaker import DELETED, record_off_endpoint
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events, history
from modelyard.ui import csrf
from modelyard.ui.forms import FormFields, field
from modelyard.ui.render import UiRoute, page
from modelyard.ui.routes.deployments import HISTORY_SIZE, endpoint_view, sagemaker, variant_versions
from modelyard.ui.routes.models import Acting

router = APIRouter(route_class=UiRoute, include_in_schema=False)
Actions = [Depends(csrf.require_token), Acting]
#: The deploy form's fields, carried from the form to the review page and on to the confirmation.
DEPLOY_FIELDS = ("endpoint", "model_uri", "name", "version", "mode", "weight", "instance_type", "instance_count", "reason")
MODE_LABELS = {
    "create": "create a new endpoint",
    "replace": "replace what the endpoint serves",
    "add": "add a canary variant beside what it serves",
}


def endpoint_url(name: str) -> str:
    return "/deployments/" + quote(name, safe="")


def model_uri_of(form: dict[str, str]) -> str:
    """`model_uri` as given, or built from `name` and `version` (a number, `@alias` or a stage)."""
    if form.get("model_uri", "").strip():
        return form["model_uri"].strip()
    name, ref = field(form, "name"), field(form, "version")
    return f"models:/{name}@{ref[1:]}" if ref.startswith("@") else f"models:/{name}/{ref}"


def _number(raw: str, what: str, kind: type = float) -> Any:
    try:
        return kind(raw.strip())
    except ValueError as exc:
        raise ModelyardException.invalid_parameter(f"The {what} must be a number, not {raw!r}.") from exc


def _plan(request: Request, form: dict[str, str]) -> service_deploys.DeployPlan:
    endpoint = field(form, "endpoint")
    versions, timeline = variant_versions(request, endpoint)
    count = form.get("instance_count", "").strip()
    return service_deploys.plan_deploy(
        request.app.state.registry_store,
        sagemaker(),
        endpoint=endpoint,
        model_uri=model_uri_of(form),
        mode=form.get("mode") or "replace",
        weight=_number(form.get("weight") or "1", "weight"),
        instance_type=form.get("instance_type", "").strip(),
        instance_count=_number(count, "instance count", int) if count else None,
        reason=form.get("reason", ""),
        variant_versions=versions,
        timeline=timeline,
        now_ms=int(time.time() * 1000),
    )


@router.post("/deployments/deploy", dependencies=Actions)
def deploy(request: Request, form: FormFields) -> Response:
    """Review (no `confirmed`), then start the deploy and go to the endpoint's page, which follows it."""
    fields = {k: form.get(k, "") for k in DEPLOY_FIELDS}
    try:
        plan = _plan(request, form)
    except ModelyardException as exc:
        return page(
            request, "deploy_review.html", status_code=exc.http_status, section="deployments",
            plan=None, error=exc.message, fields=fields, modes=MODE_LABELS,
        )  # fmt: skip
    if form.get("confirmed") != "1":
        return page(request, "deploy_review.html", section="deployments", plan=plan, error=None, fields=fields, modes=MODE_LABELS)
    service_deploys.start(plan, request.app.state.registry_store, request.app.state.artifact_reader)
    return RedirectResponse(endpoint_url(plan.endpoint), status_code=303)


@router.post("/deployments/{name}/weights", dependencies=Actions)
def shift_weights(request: Request, name: str, form: FormFields) -> Response:
    """Traffic between the running variants, without a redeploy (UpdateEndpointWeightsAndCapacities),
    after a review of the shares before and after."""
    view = endpoint_view(request, name)
    if view.endpoint is None:
        raise ModelyardException.not_found(view.problem or f"Endpoint {name} not found.")
    typed = {key[7:]: raw for key, raw in form.items() if key.startswith("weight:")}
    before = {v.name: v.weight for v in view.endpoint.variants}
    try:
        desired = inventory.plan_weights(view.endpoint, typed)
    except ModelyardException as exc:
        return page(
            request, "weights_review.html", status_code=exc.http_status, section="deployments",
            view=view, error=exc.message, typed=typed, shares_before={}, shares_after={},
        )  # fmt: skip
    after = before | {d["VariantName"]: d["DesiredWeight"] for d in desired}
    if form.get("confirmed") != "1":
        return page(
            request, "weights_review.html", section="deployments", view=view, error=None, typed=typed,
            shares_before=inventory.traffic_shares(before), shares_after=inventory.traffic_shares(after),
        )  # fmt: skip
    inventory.shift_weights(sagemaker(), name, desired)
    engine = request.app.state.registry_store.engine
    served = {v.name: v.model_version for v in view.endpoint.variants}
    for item in desired:
        if (version := served.get(item["VariantName"])) is not None:
            history.record_deploy(
                engine, version[0], version[1], events.TRAFFIC_SHIFTED, name,
                {"variant": item["VariantName"], "weight": item["DesiredWeight"]},
            )  # fmt: skip
    return RedirectResponse(endpoint_url(name), status_code=303)


@router.post("/deployments/{name}/delete", dependencies=Actions)
def delete_endpoint(request: Request, name: str, form: FormFields) -> Response:
    """Delete the endpoint, its config and models, once its name has been typed out."""
    if form.get("confirm_name", "").strip() != name:
        raise ModelyardException.invalid_parameter(f"To delete the endpoint, type its name ({name}) exactly.")
    versions, _ = variant_versions(request, name)
    client = sagemaker()
    endpoint = inventory.describe(client, name, versions)
    inventory.delete(client, name)
    store = request.app.state.registry_store
    for variant in endpoint.variants:
        if variant.model_version is not None:
            history.record_deploy(store.engine, *variant.model_version, events.ENDPOINT_DELETED, name, {"variant": variant.name})
    # As `modelyard deploy delete`: the versions' deploy tags stop saying InService, the versions of
    # models this user may not read included (the page's `versions` leave those out).
    every = events.variant_versions(list(history.list_events(store.engine, endpoint=name, max_results=HISTORY_SIZE)))
    off = [every[v.name] for v in endpoint.variants if v.name in every]
    record_off_endpoint(service_deploys.StoreRegistry(store), name, off, DELETED)
    return RedirectResponse("/deployments", status_code=303)
