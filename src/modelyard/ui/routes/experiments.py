"""The experiments page (`/` opens it): search by name, run counts and last activity; create, rename,
delete and restore. Forms post back and redirect (303) to the page they came from, so the browser's
history holds only GETs and a reload never re-submits."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard.auth.identity import readable, record_creator
from modelyard.entities.lifecycle import ViewType
from modelyard.store.auth.permissions import EXPERIMENT
from modelyard.store.tracking.base import TrackingStore
from modelyard.store.tracking.summaries import experiment_activity
from modelyard.ui import csrf
from modelyard.ui.forms import FormFields, field
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.search_box import name_filter

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)
PAGE_SIZE = 100
_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY}


def tracking_store(request: Request) -> TrackingStore:
    return request.app.state.tracking_store  # type: ignore[no-any-return]



@router.get("/")
def home() -> Response:
    """The browser keeps a link's fragment across this redirect: the experiments page's mlflow_links.js
    follows MLflow's `/#/experiments/N/runs/ID` links from there."""
    return RedirectResponse("/experiments", status_code=307)


@router.get("/experiments")
def experiments_page(request: Request, q: str = "", view: str = "active", page_token: str | None = None) -> Response:
    if view not in _VIEWS:
        raise bad_request(f"view must be one of {', '.join(_VIEWS)}, not {view!r}.")
    store = tracking_store(request)
    found = store.search_experiments(
        view_type=_VIEWS[view],
        max_results=PAGE_SIZE,
        filter_string=name_filter(q),
        order_by=["last_update_time DESC"],
        page_token=page_token or None,
        visible=readable(request, EXPERIMENT),
    )
    activity = experiment_activity(store.engine, [e.experiment_id for e in found])  # type: ignore[attr-defined]
    next_url = (
        "/experiments?" + urlencode({"q": q, "view": view, "page_token": found.token}) if found.token else None
    )
    return page(
        request,
        "experiments.html",
        experiments=list(found),
        activity=activity,
        q=q,
        view=view,
        next_url=next_url,
    )


@router.post("/experiments", dependencies=[CsrfChecked])
def create_experiment(request: Request, form: FormFields) -> Response:
    experiment_id = tracking_store(request).create_experiment(field(form, "name"))
    record_creator(request, EXPERIMENT, experiment_id)
    return RedirectResponse(f"/experiments/{experiment_id}", status_code=303)


@router.post("/experiments/{experiment_id}/rename", dependencies=[CsrfChecked])
def rename_experiment(request: Request, experiment_id: str, form: FormFields) -> Response:
    tracking_store(request).rename_experiment(experiment_id, field(form, "name"))
    return RedirectResponse(_back(request, "/experiments"), status_code=303)


@router.post("/experiments/{experiment_id}/delete", dependencies=[CsrfChecked])
def delete_experiment(request: Request, experiment_id: str) -> Response:
    tracking_store(request).delete_experiment(experiment_id)
    return RedirectResponse("/experiments", status_code=303)


@router.post("/experiments/{experiment_id}/restore", dependencies=[CsrfChecked])
def restore_experiment(request: Request, experiment_id: str) -> Response:
    tracking_store(request).restore_experiment(experiment_id)
    return RedirectResponse("/experiments?view=deleted", status_code=303)


def _back(request: Request, default: str) -> str:
    """Where a form came from, when that is a page of this site (a same-origin path), else `default`."""
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if referer.startswith(origin + "/"):
        return referer[len(origin) :]
    return default
