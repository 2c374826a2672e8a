"""`/mlflow/registered-models/*` and `/mlflow/model-versions/*`: MLflow's model registry API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelyard.auth.identity import readable, record_creator, record_delete, record_rename
from modelyard.protocol.parsing import (
    Args,
    get_bool,
    get_key_values,
    get_page_size,
    get_str,
    get_str_list,
    require_str,
)
from modelyard.protocol.responses import compact, empty_response, json_response
from modelyard.store.auth.permissions import REGISTERED_MODEL
from modelyard.store.registry import events
from modelyard.store.registry.base import (
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD,
    RegistryStore,
)
from modelyard.tracking.deps import ArgsDep, request_user


async def get_registry_store(request: Request) -> RegistryStore:
    return request.app.state.registry_store  # type: ignore[no-any-return]


RegistryDep = Annotated[RegistryStore, Depends(get_registry_store)]

async def registry_actor(request: Request) -> None:
    """Who the registry's history records for this request's changes: the HTTP basic-auth user the
    client sent (MLFLOW_TRACKING_USERNAME), else the client's `X-Modelyard-User` header, else nobody.
    Set in the request's context, which the endpoint's thread inherits."""
    events.current_actor.set(request_user(request))


router = APIRouter(prefix="/mlflow", tags=["model-registry"], dependencies=[Depends(registry_actor)])


def _version(args: Args) -> str:
    """Versions are strings in the proto; a JSON number is accepted too (the store checks the value)."""
    value = args.get("version")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return require_str(args, "version")


def _search_args(args: Args, default: int, maximum: int) -> dict[str, Any]:
    return {
        "filter_string": get_str(args, "filter") or None,
        "max_results": get_page_size(args, "max_results", default, maximum),
        "order_by": get_str_list(args, "order_by") or None,
        "page_token": get_str(args, "page_token") or None,
    }


# ---- registered models -----------------------------------------------------------------------
@router.post("/registered-models/create")
def create_registered_model(request: Request, args: ArgsDep, store: RegistryDep) -> Response:
    model = store.create_registered_model(
        require_str(args, "name"), dict(get_key_values(args, "tags")), get_str(args, "description")
    )
    record_creator(request, REGISTERED_MODEL, model.name)
    return json_response({"registered_model": model.to_dict()})


@router.get("/registered-models/get")
def get_registered_model(args: ArgsDep, store: RegistryDep) -> Response:
    return json_response(
        {"registered_model": store.get_registered_model(require_str(args, "name")).to_dict()}
    )


@router.post("/registered-models/rename")
def rename_registered_model(request: Request, args: ArgsDep, store: RegistryDep) -> Response:
    name = require_str(args, "name")
    model = store.rename_registered_model(name, require_str(args, "new_name"))
    record_rename(request, REGISTERED_MODEL, name, model.name)
    return json_response({"registered_model": model.to_dict()})


@router.patch("/registered-models/update")
def update_registered_model(args: ArgsDep, store: RegistryDep) -> Response:
    model = store.update_registered_model(require_str(args, "name"), get_str(args, "description"))
    return json_response({"registered_model": model.to_dict()})


@router.delete("/registered-models/delete")
def delete_registered_model(request: Request, args: ArgsDep, store: RegistryDep) -> Response:
    name = require_str(args, "name")
    # modelyard's extension: `purge_history` also forgets the model's history.
    store.delete_registered_model(name, purge_history=bool(get_bool(args, "purge_history")))
    record_delete(request, REGISTERED_MODEL, name)
    return empty_response()


@router.get("/registered-models/search")
@router.post("/registered-models/search")
def search_registered_models(request: Request, args: ArgsDep, store: RegistryDep) -> Response:
    page = store.search_registered_models(
        **_search_args(
            args, SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT, SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD
        ),
        visible=readable(request, REGISTERED_MODEL),
    )
    models = [model.to_dict() for model in page]
    return json_response(compact({"registered_models": models, "next_page_token": page.token}))


@router.get("/registered-models/get-latest-versions")
@router.post("/registered-models/get-latest-versions")
def get_latest_versions(args: ArgsDep, store: RegistryDep) -> Response:
    versions = store.get_latest_versions(require_str(args, "name"), get_str_list(args, "stages") or None)
    return json_response(compact({"model_versions": [mv.to_dict() for mv in versions]}))


@router.post("/registered-models/set-tag")
def set_registered_model_tag(args: ArgsDep, store: RegistryDep) -> Response:
    value = get_str(args, "value")
    store.set_registered_model_tag(require_str(args, "name"), require_str(args, "key"), value or "")
    return empty_response()


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(args: ArgsDep, store: RegistryDep) -> Response:
    store.delete_registered_model_tag(require_str(args, "name"), require_str(args, "key"))
    return empty_response()


@router.post("/registered-models/alias")
def set_registered_model_alias(args: ArgsDep, store: RegistryDep) -> Response:
    store.set_registered_model_alias(require_str(args, "name"), require_str(args, "alias"), _version(args))
    return empty_response()


@router.delete("/registered-models/alias")
def delete_registered_model_alias(args: ArgsDep, store: RegistryDep) -> Response:
    store.delete_registered_model_alias(require_str(args, "name"), require_str(args, "alias"))
    return empty_response()


@router.get("/registered-models/alias")
def get_model_version_by_alias(args: ArgsDep, store: RegistryDep) -> Response:
    version = store.get_model_version_by_alias(require_str(args, "name"), require_str(args, "alias"))
    return json_response({"model_version": version.to_dict()})


# ---- model versions --------------------------------------------------------------------------
@router.post("/model-versions/create")
def create_model_version(args: ArgsDep, store: RegistryDep) -> Response:
    version = store.create_model_version(
        name=require_str(args, "name"),
        source=require_str(args, "source"),
        run_id=get_str(args, "run_id") or None,
        tags=dict(get_key_values(args, "tags")),
        run_link=get_str(args, "run_link") or None,
        description=get_str(args, "description"),
        model_id=get_str(args, "model_id") or None,
    )
    return json_response({"model_version": version.to_dict()})


@router.get("/model-versions/get")
def get_model_version(args: ArgsDep, store: RegistryDep) -> Response:
    version = store.get_model_version(require_str(args, "name"), _version(args))
    return json_response({"model_version": version.to_dict()})


@router.patch("/model-versions/update")
def update_model_version(args: ArgsDep, store: RegistryDep) -> Response:
    version = store.update_model_version(
        require_str(args, "name"), _version(args), get_str(args, "description")
    )
    return json_response({"model_version": version.to_dict()})


@router.delete("/model-versions/delete")
def delete_model_version(args: ArgsDep, store: RegistryDep) -> Response:
    store.delete_model_version(require_str(args, "name"), _version(args))
    return empty_response()


@router.post("/model-versions/transition-stage")
def transition_model_version_stage(args: ArgsDep, store: RegistryDep) -> Response:
    version = store.transition_model_version_stage(
        require_str(args, "name"),
        _version(args),
        require_str(args, "stage"),
        get_bool(args, "archive_existing_versions"),
    )
    return json_response({"model_version": version.to_dict()})


@router.get("/model-versions/search")
@router.post("/model-versions/search")
def search_model_versions(request: Request, args: ArgsDep, store: RegistryDep) -> Response:
    page = store.search_model_versions(
        **_search_args(
            args, SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT, SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD
        ),
        visible=readable(request, REGISTERED_MODEL),
    )
    versions = [version.to_dict() for version in page]
    return json_response(compact({"model_versions": versions, "next_page_token": page.token}))


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(args: ArgsDep, store: RegistryDep) -> Response:
    uri = store.get_model_version_download_uri(require_str(args, "name"), _version(args))
    return json_response({"artifact_uri": uri})


@router.post("/model-versions/set-tag")
def set_model_version_tag(args: ArgsDep, store: RegistryDep) -> Response:
    store.set_model_version_tag(
        require_str(args, "name"), _version(args), require_str(args, "key"), get_str(args, "value") or ""
    )
    return empty_response()


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(args: ArgsDep, store: RegistryDep) -> Response:
    store.delete_model_version_tag(require_str(args, "name"), _version(args), require_str(args, "key"))
    return empty_response()
