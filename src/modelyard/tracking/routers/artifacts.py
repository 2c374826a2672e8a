"""The tracking server's own artifact endpoints, as MLflow serves them: a run's listing
(`/mlflow/artifacts/list`), and downloads of a run's, a model version's and a logged model's files
(`/get-artifact`, `/model-versions/get-artifact` at the root, `logged-models/<id>/artifacts/files` for
the UI). Paths are checked by `safe_relative_path` (400 for `..`, absolute or encoded paths); the
server decides the download headers (`artifact_proxy/headers.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelyard import errors
from modelyard.artifact_proxy.locations import LocationReader
from modelyard.artifact_proxy.streaming import download_response
from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import get_str, require_run_id, require_str
from modelyard.protocol.responses import compact, json_response
from modelyard.tracking.deps import ArgsDep, StoreDep
from modelyard.tracking.routers.logged_models import LoggedModelsDep
from modelyard.tracking.routers.registry import RegistryDep


async def get_reader(request: Request) -> LocationReader:
    return request.app.state.artifact_reader  # type: ignore[no-any-return]


ReaderDep = Annotated[LocationReader, Depends(get_reader)]

#: Under every API prefix (`/api/2.0`, `/ajax-api/2.0`).
router = APIRouter(prefix="/mlflow", tags=["artifacts"])
#: At the server's root, where MLflow serves its downloads.
root_router = APIRouter(tags=["artifacts"])
#: Under `/ajax-api/2.0` only (MLflow's UI route).
ajax_router = APIRouter(prefix="/ajax-api/2.0/mlflow", tags=["artifacts"])


@router.get("/artifacts/list")
def list_artifacts(args: ArgsDep, store: StoreDep, reader: ReaderDep) -> Response:
    root = store.get_run(require_run_id(args)).info.artifact_uri
    files = reader.list(root, get_str(args, "path") or "")
    return json_response(compact({"root_uri": root, "files": [f.to_dict() for f in files]}))


@root_router.get("/get-artifact")
def get_artifact(args: ArgsDep, store: StoreDep, reader: ReaderDep) -> Response:
    run_id = get_str(args, "run_id") or get_str(args, "run_uuid")
    if not run_id:
        raise ModelyardException.not_found("Run with id=None not found")
    root = store.get_run(run_id).info.artifact_uri
    path = require_str(args, "path")
    return download_response(reader.open(root, path), path)


@root_router.get("/model-versions/get-artifact")
def get_model_version_artifact(
    args: ArgsDep, registry: RegistryDep, store: StoreDep, reader: ReaderDep
) -> Response:
    location = registry.get_model_version_download_uri(
        require_str(args, "name"), require_str(args, "version")
    )
    path = get_str(args, "path") or ""
    return download_response(reader.open(_concrete(location, store), path), path)


@ajax_router.get("/logged-models/{model_id}/artifacts/files")
def get_logged_model_artifact(
    model_id: str, args: ArgsDep, models: LoggedModelsDep, reader: ReaderDep
) -> Response:
    location = models.get_logged_model(model_id).artifact_location
    path = get_str(args, "artifact_file_path")
    if not path:
        raise ModelyardException(
            'Request must include the "artifact_file_path" query parameter.', errors.BAD_REQUEST
        )
    return download_response(reader.open(location, path), path)


def _concrete(location: str, store: StoreDep) -> str:
    """A version's `runs:/<id>/<path>` source whose run was not known when it was registered is
    resolved now (404 when the run is still not here)."""
    if not location.startswith("runs:/"):
        return location
    run_id, _, path = location[len("runs:/") :].lstrip("/").partition("/")
    root = store.get_run(run_id).info.artifact_uri.rstrip("/")
    return f"{root}/{path.strip('/')}" if path.strip("/") else root
