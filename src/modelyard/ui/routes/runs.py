"""The runs page of an experiment (`/experiments/{id}`): the page a user lives in.

First version: the experiment's runs, newest first, a page at a time. Filtering, sorting, columns,
totals, export and selection build on it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.ui.render import UiRoute, page
from modelyard.ui.routes.experiments import tracking_store

router = APIRouter(route_class=UiRoute, include_in_schema=False)
PAGE_SIZE = 100


@router.get("/experiments/{experiment_id}")
def runs_page(request: Request, experiment_id: str, page_token: str | None = None) -> Response:
    store = tracking_store(request)
    experiment = store.get_experiment(experiment_id)
    found = store.search_runs(
        [experiment.experiment_id], max_results=PAGE_SIZE, order_by=["attributes.start_time DESC"],
        page_token=page_token or None,
    )
    next_url = f"/experiments/{experiment.experiment_id}?" + urlencode({"page_token": found.token}) if found.token else None
    return page(request, "runs.html", experiment=experiment, runs=list(found), next_url=next_url)
