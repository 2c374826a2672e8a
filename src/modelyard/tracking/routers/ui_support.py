"""Endpoints MLflow's web UI (and tools built on it) call besides the public API: bulk and downsampled
metric histories, an experiment's dataset summaries, and small artifact uploads. Served where MLflow
serves them: `get-history-bulk-interval` under every API prefix, the rest under `/ajax-api/2.0` only.
The work is done by `store/tracking/metric_views.py` and the artifact locations; these stay thin."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import GET_METRIC_HISTORY_MAX_RESULTS
from modelyard.protocol.parsing import get_int, get_str, get_str_list
from modelyard.protocol.responses import compact, json_response
from modelyard.store.tracking import metric_views
from modelyard.tracking.deps import ArgsDep, StoreDep
from modelyard.tracking.routers.artifacts import ReaderDep

#: Under every API prefix.
router = APIRouter(prefix="/mlflow", tags=["ui"])
#: Under `/ajax-api/2.0` only, as MLflow serves them.
ajax_router = APIRouter(prefix="/ajax-api/2.0/mlflow", tags=["ui"])


@router.get("/metrics/get-history-bulk-interval")
def get_metric_history_bulk_interval(args: ArgsDep, store: StoreDep) -> Response:
    metrics = metric_views.history_bulk_interval(
        store.engine,  # type: ignore[attr-defined]
        get_str_list(args, "run_ids"),
        _metric_key(args, "GetMetricHistoryBulkInterval"),
        max_results=_int(args, "max_results", metric_views.INTERVAL_DEFAULT_RESULTS),
        start_step=get_int(args, "start_step"),
        end_step=get_int(args, "end_step"),
    )
    return json_response(compact({"metrics": [m.to_dict() for m in metrics]}))


@ajax_router.get("/metrics/get-history-bulk")
def get_metric_history_bulk(args: ArgsDep, store: StoreDep) -> Response:
    run_ids = get_str_list(args, "run_id")
    if not run_ids:
        raise ModelyardException.invalid_parameter(
            "GetMetricHistoryBulk request must specify at least one run_id."
        )
    key = _metric_key(args, "GetMetricHistoryBulk")
    max_results = min(
        _int(args, "max_results", GET_METRIC_HISTORY_MAX_RESULTS), GET_METRIC_HISTORY_MAX_RESULTS
    )
    points = metric_views.history_bulk(store.engine, run_ids, key, max_results)  # type: ignore[attr-defined]
    return json_response({"metrics": points})


@ajax_router.post("/experiments/search-datasets")
def search_datasets(args: ArgsDep, store: StoreDep) -> Response:
    summaries = metric_views.dataset_summaries(store.engine, get_str_list(args, "experiment_ids"))  # type: ignore[attr-defined]
    return json_response(compact({"dataset_summaries": summaries}))


@ajax_router.post("/upload-artifact")
async def upload_artifact(request: Request, store: StoreDep, reader: ReaderDep) -> Response:
    run_id = request.query_params.get("run_uuid") or request.query_params.get("run_id")
    if not run_id:
        raise ModelyardException.invalid_parameter("Request must specify run_uuid.")
    path = request.query_params.get("path")
    if not path:
        raise ModelyardException.invalid_parameter("Request must specify path.")
    data = await request.body()
    if not data:
        raise ModelyardException.invalid_parameter("Request must specify data.")
    run = await run_in_threadpool(store.get_run, run_id)
    await run_in_threadpool(reader.write, run.info.artifact_uri, path, data)
    return Response(b"", status_code=200, media_type="application/json")  # MLflow's answer: empty JSON


def _metric_key(args: ArgsDep, request_name: str) -> str:
    key = get_str(args, "metric_key")
    if not key:
        raise ModelyardException.invalid_parameter(f"{request_name} request must specify a metric_key.")
    return key


def _int(args: ArgsDep, name: str, default: int) -> int:
    value = get_int(args, name, default)
    return default if value is None else value
