"""`/mlflow/experiments/*`: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.auth.identity import readable, record_creator
from modelyard.entities import ExperimentTag
from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import SEARCH_EXPERIMENTS_MAX_RESULTS, SEARCH_MAX_RESULTS_DEFAULT
from modelyard.protocol.parsing import (
    get_key_values,
    get_page_size,
    get_str,
    get_str_list,
    get_view_type,
    require_str,
)
from modelyard.protocol.responses import compact, empty_response, json_response
from modelyard.store.auth.permissions import EXPERIMENT
from modelyard.tracking.deps import ArgsDep, StoreDep

router = APIRouter(prefix="/mlflow/experiments", tags=["experiments"])


@router.post("/create")
def create_experiment(request: Request, args: ArgsDep, store: StoreDep) -> Response:
    name = require_str(args, "name")
    artifact_location = get_str(args, "artifact_location") or None
    tags = [ExperimentTag(key, value) for key, value in get_key_values(args, "tags")]
    experiment_id = store.create_experiment(name, artifact_location, tags)
    record_creator(request, EXPERIMENT, experiment_id)
    return json_response({"experiment_id": experiment_id})


@router.get("/get")
def get_experiment(args: ArgsDep, store: StoreDep) -> Response:
    experiment = store.get_experiment(require_str(args, "experiment_id"))
    return json_response({"experiment": experiment.to_dict()})


@router.get("/get-by-name")
def get_experiment_by_name(args: ArgsDep, store: StoreDep) -> Response:
    name = require_str(args, "experiment_name")
    experiment = store.get_experiment_by_name(name)
    if experiment is None:
        raise ModelyardException.not_found(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": experiment.to_dict()})


@router.get("/search")
@router.post("/search")
def search_experiments(request: Request, args: ArgsDep, store: StoreDep) -> Response:
    page = store.search_experiments(
        view_type=get_view_type(args, "view_type"),
        max_results=get_page_size(
            args, "max_results", SEARCH_MAX_RESULTS_DEFAULT, SEARCH_EXPERIMENTS_MAX_RESULTS
        ),
        filter_string=get_str(args, "filter") or None,
        order_by=get_str_list(args, "order_by") or None,
        page_token=get_str(args, "page_token") or None,
        visible=readable(request, EXPERIMENT),
    )
    experiments = [experiment.to_dict() for experiment in page]
    return json_response(compact({"experiments": experiments, "next_page_token": page.token}))


@router.post("/update")
def update_experiment(args: ArgsDep, store: StoreDep) -> Response:
    store.rename_experiment(require_str(args, "experiment_id"), require_str(args, "new_name"))
    return empty_response()


@router.post("/delete")
def delete_experiment(args: ArgsDep, store: StoreDep) -> Response:
    store.delete_experiment(require_str(args, "experiment_id"))
    return empty_response()


@router.post("/restore")
def restore_experiment(args: ArgsDep, store: StoreDep) -> Response:
    store.restore_experiment(require_str(args, "experiment_id"))
    return empty_response()


@router.post("/set-experiment-tag")
def set_experiment_tag(args: ArgsDep, store: StoreDep) -> Response:
    experiment_id = require_str(args, "experiment_id")
    tag = ExperimentTag(require_str(args, "key"), get_str(args, "value") or "")
    store.set_experiment_tag(experiment_id, tag)
    return empty_response()


@router.post("/delete-experiment-tag")
def delete_experiment_tag(args: ArgsDep, store: StoreDep) -> Response:
    store.delete_experiment_tag(require_str(args, "experiment_id"), require_str(args, "key"))
    return empty_response()
