"""`/mlflow/runs/*`: the run lifecycle, logging (params, metrics, tags, batches, inputs) and search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.entities import Metric, Param, RunStatus, RunTag
from modelyard.protocol.limits import SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from modelyard.protocol.parsing import (
    Args,
    get_int,
    get_key_values,
    get_object_list,
    get_page_size,
    get_str,
    get_str_list,
    get_view_type,
    require_float,
    require_int,
    require_run_id,
    require_str,
)
from modelyard.protocol.responses import compact, empty_response, json_response
from modelyard.protocol.validation import is_plain_double
from modelyard.tracking.deps import ArgsDep, RunWritesDep, StoreDep
from modelyard.tracking.disconnect import until_disconnect

router = APIRouter(prefix="/mlflow/runs", tags=["runs"])

#: The experiment a run lands in when the request names none, as MLflow's clients assume.
DEFAULT_EXPERIMENT_ID = "0"


@router.post("/create")
def create_run(args: ArgsDep, store: StoreDep) -> Response:
    run = store.create_run(
        experiment_id=get_str(args, "experiment_id") or DEFAULT_EXPERIMENT_ID,
        user_id=get_str(args, "user_id") or None,
        start_time=get_int(args, "start_time"),
        tags=[RunTag(key, value) for key, value in get_key_values(args, "tags")],
        run_name=get_str(args, "run_name") or None,
    )
    return json_response({"run": run.to_dict()})


@router.get("/get")
def get_run(args: ArgsDep, store: StoreDep) -> Response:
    return json_response({"run": store.get_run(require_run_id(args)).to_dict()})


@router.post("/update")
def update_run(args: ArgsDep, store: StoreDep) -> Response:
    status = get_str(args, "status") or None
    info = store.update_run_info(
        require_run_id(args),
        run_status=RunStatus.validate(status) if status is not None else None,
        end_time=get_int(args, "end_time"),
        run_name=get_str(args, "run_name") or None,
    )
    return json_response({"run_info": info.to_dict()})


@router.post("/delete")
def delete_run(args: ArgsDep, store: StoreDep) -> Response:
    store.delete_run(require_run_id(args))
    return empty_response()


@router.post("/restore")
def restore_run(args: ArgsDep, store: StoreDep) -> Response:
    store.restore_run(require_run_id(args))
    return empty_response()


@router.post("/set-tag")
def set_tag(args: ArgsDep, store: StoreDep) -> Response:
    run_id = require_run_id(args)
    store.set_tag(run_id, RunTag(require_str(args, "key"), get_str(args, "value") or ""))
    return empty_response()


@router.post("/delete-tag")
def delete_tag(args: ArgsDep, store: StoreDep) -> Response:
    store.delete_tag(require_run_id(args), require_str(args, "key"))
    return empty_response()


@router.post("/log-parameter")
def log_param(args: ArgsDep, store: StoreDep) -> Response:
    run_id = require_run_id(args)
    store.log_param(run_id, Param(require_str(args, "key"), get_str(args, "value") or ""))
    return empty_response()


# The two metric writes are `async def`: `RunWritesDep` awaits PostgreSQL without a thread hop (and
# hands anything else to the thread pool), so the event loop never blocks on the database.
@router.post("/log-metric")
async def log_metric(args: ArgsDep, writes: RunWritesDep) -> Response:
    run_id = require_run_id(args)
    await writes.log_batch(run_id, metrics=[parse_metric(args)])
    return empty_response()


@router.post("/log-batch")
async def log_batch(args: ArgsDep, writes: RunWritesDep) -> Response:
    run_id = require_run_id(args)
    metrics = parse_metrics(get_object_list(args, "metrics"))
    params = [Param(key, value) for key, value in get_key_values(args, "params")]
    tags = [RunTag(key, value) for key, value in get_key_values(args, "tags")]
    await writes.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    return empty_response()


@router.post("/log-inputs")
def log_inputs(args: ArgsDep, store: StoreDep) -> Response:
    run_id = require_run_id(args)
    store.log_inputs(run_id, get_object_list(args, "datasets"), get_object_list(args, "models"))
    return empty_response()


@router.post("/search")
async def search_runs(request: Request, args: ArgsDep, store: StoreDep) -> Response:
    """Cancelled in the database when the client goes away (`tracking/disconnect.py`)."""
    experiment_ids = get_str_list(args, "experiment_ids")
    filter_string = get_str(args, "filter") or ""
    run_view_type = get_view_type(args, "run_view_type")
    max_results = get_page_size(args, "max_results", SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD)
    order_by = get_str_list(args, "order_by") or None
    page_token = get_str(args, "page_token") or None
    page = await until_disconnect(
        request,
        lambda: store.search_runs_json(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        ),
    )
    return json_response(compact({"runs": list(page), "next_page_token": page.token}))


def parse_metric(args: Args, prefix: str = "") -> Metric:
    """One metric message; `prefix` names its place in a batch (`metrics[3].`) in error messages.

    A JSON body's metric nearly always has a non-empty string key, a float (or an int within a double's range) value and
    int timestamp and step; that shape is taken as is (the typed getters below cost ~5 us a metric,
    5 ms for a full batch). Anything else (proto JSON strings, missing or wrong fields, query-string
    args) goes through the getters, which also produce the error messages.
    """
    plain = _plain_metric(args)
    if plain is not None:
        return plain
    if "model_id" in args or "dataset_name" in args or "dataset_digest" in args:
        return _linked_metric(args, prefix)
    return Metric(
        key=require_str(args, "key", prefix=prefix),
        value=require_float(args, "value", prefix=prefix),
        timestamp=require_int(args, "timestamp", prefix=prefix),
        step=get_int(args, "step", 0, prefix=prefix) or 0,
    )


def parse_metrics(items: list[Args], prefix: str = "") -> list[Metric]:
    """`parse_metric` of each item of a batch; an item's place in error messages (`metrics[3].`) is
    spelled out only for one that is not plain (a string per metric was ~10% of a bulk import's parse)."""
    out = []
    for index, item in enumerate(items):
        plain = _plain_metric(item)
        out.append(plain if plain is not None else parse_metric(item, f"{prefix}metrics[{index}]."))
    return out


def _plain_metric(args: Args) -> Metric | None:
    """The metric, when it has the shape nearly every one has; None for anything else."""
    key, value = args.get("key"), args.get("value")
    timestamp, step = args.get("timestamp"), args.get("step", 0)
    if (
        type(key) is str
        and key
        and is_plain_double(value)
        and type(timestamp) is int
        and (type(step) is int or step is None)
        and "model_id" not in args
        and "dataset_name" not in args
        and "dataset_digest" not in args
    ):
        return Metric(key, float(value), timestamp, step or 0)
    return None


def _linked_metric(args: Args, prefix: str) -> Metric:
    """A metric of MLflow 3 that names the logged model it describes and the dataset it was computed on."""
    return Metric(
        key=require_str(args, "key", prefix=prefix),
        value=require_float(args, "value", prefix=prefix),
        timestamp=require_int(args, "timestamp", prefix=prefix),
        step=get_int(args, "step", 0, prefix=prefix) or 0,
        model_id=get_str(args, "model_id", prefix=prefix) or None,
        dataset_name=get_str(args, "dataset_name", prefix=prefix) or None,
        dataset_digest=get_str(args, "dataset_digest", prefix=prefix) or None,
    )
