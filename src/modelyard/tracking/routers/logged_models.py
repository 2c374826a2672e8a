"""`/mlflow/logged-models/*` (MLflow 3 logged models) and `/mlflow/runs/outputs`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelyard.artifact_proxy.locations import LocationReader
from modelyard.entities import ModelOutput
from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import (
    get_key_values,
    get_object_list,
    get_page_size,
    get_str,
    get_str_list,
    require_run_id,
    require_str,
    to_int,
)
from modelyard.protocol.responses import compact, empty_response, json_response
from modelyard.store.logged_models.base import (
    SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
    SEARCH_LOGGED_MODELS_MAX_RESULTS_THRESHOLD,
    LoggedModelStore,
)
from modelyard.tracking.deps import ArgsDep


async def get_logged_model_store(request: Request) -> LoggedModelStore:
    return request.app.state.logged_model_store  # type: ignore[no-any-return]


LoggedModelsDep = Annotated[LoggedModelStore, Depends(get_logged_model_store)]

router = APIRouter(prefix="/mlflow", tags=["logged-models"])


@router.post("/logged-models")
def create_logged_model(args: ArgsDep, store: LoggedModelsDep) -> Response:
    model = store.create_logged_model(
        experiment_id=require_str(args, "experiment_id"),
        name=get_str(args, "name") or None,
        source_run_id=get_str(args, "source_run_id") or None,
        tags=dict(get_key_values(args, "tags")),
        params=dict(get_key_values(args, "params")),
        model_type=get_str(args, "model_type") or None,
    )
    return json_response({"model": model.to_dict()})


@router.post("/logged-models/search")
def search_logged_models(args: ArgsDep, store: LoggedModelsDep) -> Response:
    page = store.search_logged_models(
        experiment_ids=get_str_list(args, "experiment_ids"),
        filter_string=get_str(args, "filter") or None,
        max_results=get_page_size(
            args,
            "max_results",
            SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
            SEARCH_LOGGED_MODELS_MAX_RESULTS_THRESHOLD,
        ),
        order_by=get_object_list(args, "order_by") or None,
        page_token=get_str(args, "page_token") or None,
        datasets=get_object_list(args, "datasets") or None,
    )
    return json_response(compact({"models": [m.to_dict() for m in page], "next_page_token": page.token}))


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, store: LoggedModelsDep) -> Response:
    return json_response({"model": store.get_logged_model(model_id).to_dict()})


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, args: ArgsDep, store: LoggedModelsDep) -> Response:
    status = args.get("status")
    if status is None:
        raise ModelyardException.invalid_parameter("Missing value for required parameter 'status'.")
    return json_response({"model": store.finalize_logged_model(model_id, status).to_dict()})


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, store: LoggedModelsDep) -> Response:
    store.delete_logged_model(model_id)
    return empty_response()


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, args: ArgsDep, store: LoggedModelsDep) -> Response:
    store.set_logged_model_tags(model_id, dict(get_key_values(args, "tags")))
    return empty_response()


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, store: LoggedModelsDep) -> Response:
    store.delete_logged_model_tag(model_id, tag_key)
    return empty_response()


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, args: ArgsDep, store: LoggedModelsDep) -> Response:
    store.log_logged_model_params(model_id, dict(get_key_values(args, "params")))
    return empty_response()


@router.get("/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(
    model_id: str, args: ArgsDep, store: LoggedModelsDep, request: Request
) -> Response:
    model = store.get_logged_model(model_id)
    reader: LocationReader = request.app.state.artifact_reader
    files = reader.list(model.artifact_location, get_str(args, "artifact_directory_path") or "")
    return json_response(
        compact({"root_uri": model.artifact_location, "files": [f.to_dict() for f in files]})
    )


@router.post("/runs/outputs")
def log_outputs(args: ArgsDep, store: LoggedModelsDep) -> Response:
    outputs = []
    for index, item in enumerate(get_object_list(args, "models")):
        model_id = item.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise ModelyardException.invalid_parameter(
                f"Missing value for required parameter 'models[{index}].model_id'."
            )
        outputs.append(ModelOutput(model_id, to_int(f"models[{index}].step", item.get("step", 0))))
    store.log_outputs(require_run_id(args), outputs)
    return empty_response()
