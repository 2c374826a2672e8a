"""`/mlflow/metrics/get-history`: a metric's full series, one bounded page at a time."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import GET_METRIC_HISTORY_MAX_RESULTS
from modelyard.protocol.parsing import get_int, get_str, require_run_id, require_str
from modelyard.protocol.responses import compact, json_response
from modelyard.tracking.deps import ArgsDep, StoreDep

router = APIRouter(prefix="/mlflow/metrics", tags=["metrics"])


@router.get("/get-history")
def get_metric_history(args: ArgsDep, store: StoreDep) -> Response:
    run_id = require_run_id(args)
    metric_key = require_str(args, "metric_key")
    requested = get_int(args, "max_results", GET_METRIC_HISTORY_MAX_RESULTS)
    assert requested is not None
    if requested < 1:
        raise ModelyardException.invalid_parameter(
            f"Invalid value {requested} for parameter 'max_results' supplied. It must be a positive integer."
        )
    # Unlike MLflow (everything at once when max_results is absent), a page never exceeds the cap, so
    # a 100k-point series costs bounded memory; the mlflow client follows next_page_token anyway.
    page = store.get_metric_history_dicts(
        run_id,
        metric_key,
        max_results=min(requested, GET_METRIC_HISTORY_MAX_RESULTS),
        page_token=get_str(args, "page_token") or None,
    )
    return json_response(compact({"metrics": list(page), "next_page_token": page.token}))
