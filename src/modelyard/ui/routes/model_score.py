"""The version page's score box: send a request body (the version's input example to start with) to
an endpoint variant that serves this version now, and show the prediction.

The box is a fragment the page loads after its first paint (finding the serving variants asks the
SageMaker API, which must not hold up the page). The prediction goes to that variant alone
(SageMaker's TargetVariant), so it is this version's answer whatever the endpoint's weights say.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelyard.deploy import inventory
from modelyard.exceptions import ModelyardException
from modelyard.protocol import text_parsing
from modelyard.store.registry import history
from modelyard.ui import csrf
from modelyard.ui.forms import FormFields, field
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.routes.deployments import sagemaker, variant_versions

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv"}
#: The most of a prediction the page shows.
SHOW_MAX_CHARS = 100_000


def _targets(request: Request, name: str, version: str) -> list[tuple[str, str]]:
    """(endpoint, variant) serving this version now; candidates are the endpoints its history names."""
    endpoints = history.deployed_endpoints(request.app.state.registry_store.engine, name, version)
    return inventory.serving(sagemaker(), {e: variant_versions(request, e)[0] for e in endpoints}, name, version)


@router.get("/model-version/score-box")
def score_box(request: Request, name: str = "", version: str = "") -> Response:
    if not name or not version:
        raise bad_request("Which version? The box needs ?name=&version=.")
    found = request.app.state.registry_store.get_model_version(name, version)
    try:
        targets, problem = _targets(request, name, found.version), None
    except inventory.SageMakerUnavailable as exc:
        targets, problem = [], exc.message
    # The request body starts as the input example the page carries (static/model_version.js).
    return page(request, "_score_box.html", version=found, targets=targets, problem=problem)


@router.post("/model-version/score", dependencies=[Depends(csrf.require_token)])
def score(request: Request, form: FormFields) -> Response:
    """One prediction; whatever goes wrong is shown in the box (htmx swaps 200s only)."""
    name, version = field(form, "name"), field(form, "version")
    try:
        endpoint, _, variant = field(form, "target").partition("|")
        kind = form.get("content_type") or "json"
        if kind not in CONTENT_TYPES:
            raise ModelyardException.invalid_parameter(f"Content type must be json or csv, not {kind!r}.")
        body = field(form, "payload").encode()
        if kind == "json":
            try:
                text_parsing.loads_json(body)
            except ValueError as exc:
                raise ModelyardException.invalid_parameter(f"The request body is not JSON: {exc}") from exc
        if (endpoint, variant) not in _targets(request, name, version):
            raise ModelyardException.invalid_parameter(
                f"{endpoint} / {variant} does not serve {name} v{version} now: reload the page."
            )
        started = time.perf_counter()
        status, answer = inventory.invoke(inventory.shared_client("sagemaker-runtime"), endpoint, variant, body, CONTENT_TYPES[kind])
        elapsed_ms = (time.perf_counter() - started) * 1000
    except ModelyardException as exc:
        return page(request, "_score_result.html", error=exc.message, status=None, output="", elapsed_ms=None, target="")
    text = answer.decode("utf-8", "replace")
    try:
        text = json.dumps(text_parsing.loads_json(text), indent=2)
    except ValueError:
        pass
    truncated = len(text) > SHOW_MAX_CHARS
    return page(
        request, "_score_result.html", error=None, status=status, output=text[:SHOW_MAX_CHARS], truncated=truncated,
        elapsed_ms=elapsed_ms, target=f"{endpoint} / {variant}",
    )  # fmt: skip
