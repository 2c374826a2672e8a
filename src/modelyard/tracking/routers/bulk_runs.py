"""`/modelyard/runs/import` and `/modelyard/runs/export`: whole runs in bulk, for `modelyard import`
and `modelyard export` (modelyard's own API; MLflow has none).

Import: the body is `{"experiment_id", "runs": [{"run_name", "user_id", "start_time", "end_time",
"status", "lifecycle_stage", "params", "tags", "metrics", "inputs"}]}` with params and tags as
`[{key, value}]`, metrics as log-batch's (every point of each history), inputs as log-inputs'
`datasets` and run_name optional (a generated name, as create-run gives); the answer is
`{"run_ids": [...]}` in the same order. All or nothing (`store/tracking/run_import.py`).

Permissions (for the auth design): this creates runs in `experiment_id` and writes their data, the
same as create-run + log-batch + update-run on that experiment, so it needs what those need there
(write on the experiment), and nothing else; it changes no existing run and reads nothing.

Export: `GET ?experiment_id=` answers every run of the experiment (deleted ones too) with every
metric point, as JSON lines (`application/x-ndjson`, `store/tracking/run_export.py` has the lines),
streamed as they are read. It reads what search-runs and get-history read in that experiment, so it
needs read on it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from modelyard.entities import Param, RunTag
from modelyard.entities.lifecycle import LifecycleStage
from modelyard.protocol.parsing import Args, get_int, get_key_values, get_object_list, get_str, require_str
from modelyard.protocol.responses import json_response
from modelyard.store.tracking.run_export import check_experiment, export_lines
from modelyard.store.tracking.run_import import ImportedRun, import_runs
from modelyard.tracking.deps import ArgsDep
from modelyard.tracking.routers.runs import parse_metrics

router = APIRouter(prefix="/modelyard/runs", tags=["import"])


def _run(item: Args, i: int) -> ImportedRun:
    prefix = f"runs[{i}]."
    return ImportedRun(
        run_name=get_str(item, "run_name", prefix=prefix),
        user_id=get_str(item, "user_id", prefix=prefix) or "",
        start_time=get_int(item, "start_time", prefix=prefix),
        end_time=get_int(item, "end_time", prefix=prefix),
        status=get_str(item, "status", prefix=prefix) or "FINISHED",
        lifecycle_stage=get_str(item, "lifecycle_stage", prefix=prefix) or LifecycleStage.ACTIVE,
        params=[Param(k, v) for k, v in get_key_values(item, "params")],
        tags=[RunTag(k, v) for k, v in get_key_values(item, "tags")],
        metrics=parse_metrics(get_object_list(item, "metrics"), prefix),
        inputs=get_object_list(item, "inputs"),
    )


@router.post("/import")
def import_batch(request: Request, args: ArgsDep) -> Response:
    experiment_id = require_str(args, "experiment_id")
    runs = [_run(item, i) for i, item in enumerate(get_object_list(args, "runs"))]
    ids = import_runs(request.app.state.engine, experiment_id, runs)
    return json_response({"run_ids": ids})


@router.get("/export")
def export_experiment(request: Request, args: ArgsDep) -> Response:
    engine = request.app.state.engine
    experiment_id = check_experiment(engine, require_str(args, "experiment_id"))
    return StreamingResponse(export_lines(engine, experiment_id), media_type="application/x-ndjson")
