"""The run page's artifacts: a folder tree loaded a level at a time, previews, and file bytes.

`/runs/{id}/artifacts/list?path=` is one folder's children (an htmx fragment, loaded when a folder
is first opened); `/runs/{id}/artifacts/preview?path=` one file's preview (`ui/previews.py`);
`/runs/{id}/artifacts/file?path=` the file itself: png/jpeg/gif/webp inline with that image type
(what a preview's `<img>` loads), anything else only as a download. Every response carries `nosniff`;
file responses also a CSP that forbids everything, in case a browser is asked to render one anyway.
The Artifacts tab renders the selected file's folders and preview on the server (`?path=` in the
page's URL), so a shared link opens on the same file.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.artifact_proxy.streaming import download_response, open_for_response
from modelyard.artifact_repos import FileInfo, safe_relative_path
from modelyard.entities import Run
from modelyard.entities.logged_model import LoggedModel
from modelyard.exceptions import ModelyardException
from modelyard.ui.artifact_access import RunArtifacts, run_artifacts
from modelyard.ui.previews import IMAGE_TYPES, build_preview
from modelyard.ui.render import UiRoute, page
from modelyard.ui.routes.experiments import tracking_store

router = APIRouter(route_class=UiRoute, include_in_schema=False)
FILE_POLICY = "default-src 'none'; sandbox"
#: Logged models listed (and browsable) per run.
MODELS_SHOWN = 100


def run_logged_models(request: Request, run: Run) -> list[LoggedModel]:
    """The logged models this run produced: those naming it as their source, and its outputs."""
    store = request.app.state.logged_model_store
    run_id = run.info.run_id  # the stored id: safe inside a filter string
    found = store.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", max_results=MODELS_SHOWN
    )
    models = {m.model_id: m for m in found}
    for output in run.outputs.model_outputs[:MODELS_SHOWN]:
        if output.model_id not in models:
            try:
                models[output.model_id] = store.get_logged_model(output.model_id)
            except ModelyardException:
                continue
    return sorted(models.values(), key=lambda m: m.creation_timestamp)


def _tree_for(
    request: Request, run: Run, model_id: str, models: list[LoggedModel] | None = None
) -> RunArtifacts:
    """The run's artifacts, or those of one of its logged models (404 for a model not of this run)."""
    if not model_id:
        return run_artifacts(request, run.info.run_id, run.info.artifact_uri)
    for model in models if models is not None else run_logged_models(request, run):
        if model.model_id == model_id:
            return run_artifacts(request, run.info.run_id, model.artifact_location, model_id)
    raise ModelyardException.not_found(f"Run {run.info.run_id} has no logged model {model_id!r}.")


def _artifacts(request: Request, run_id: str, model_id: str) -> RunArtifacts:
    return _tree_for(request, tracking_store(request).get_run(run_id), model_id)


def file_url(artifacts: RunArtifacts, path: str) -> str:
    return f"/runs/{artifacts.run_id}/artifacts/file?{artifacts.query(path)}"


def artifacts_context(request: Request, run: Run) -> dict[str, Any]:
    """Each tree (the run's, then one per logged model), the selected one listed down to the selected
    file's folder (each level once), and that file's preview."""
    models = run_logged_models(request, run)
    model_id = request.query_params.get("model", "")
    current = _tree_for(request, run, model_id, models)
    selected = safe_relative_path(request.query_params.get("path", ""))
    parts = selected.split("/") if selected else []
    levels: dict[str, list[FileInfo]] = {"": current.list("")}
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if not any(f.is_dir and f.path == folder for f in levels["/".join(parts[: depth - 1])]):
            break
        levels[folder] = current.list(folder)
    preview = None
    if selected and selected not in levels:
        preview = build_preview(current, selected, file_url(current, selected))
    trees = []
    for label, tree in [
        ("Run artifacts", run_artifacts(request, run.info.run_id, run.info.artifact_uri)),
        *(
            (f"Model {m.name}", run_artifacts(request, run.info.run_id, m.artifact_location, m.model_id))
            for m in models
        ),
    ]:
        if tree.model_id == model_id:
            trees.append((label, tree, levels))
        elif not tree.model_id:  # the run's own top level is always shown
            trees.append((label, tree, {"": tree.list("")}))
        else:  # a model's tree loads when opened
            trees.append((label, tree, None))
    return {
        "trees": trees,
        "selected": selected,
        "preview_model": model_id,
        "preview": preview,
    }


@router.get("/runs/{run_id}/artifacts/list")
def list_folder(request: Request, run_id: str, path: str = "", model: str = "") -> Response:
    artifacts = _artifacts(request, run_id, model)
    folder = safe_relative_path(path)
    return page(
        request,
        "run_artifact_tree.html",
        folder=folder,
        levels={folder: artifacts.list(folder)},
        selected="",
        artifacts=artifacts,
    )


@router.get("/runs/{run_id}/artifacts/preview")
def preview(request: Request, run_id: str, path: str, model: str = "") -> Response:
    artifacts = _artifacts(request, run_id, model)
    rel = safe_relative_path(path)
    return page(
        request, "run_artifact_preview.html", preview=build_preview(artifacts, rel, file_url(artifacts, rel))
    )


@router.get("/runs/{run_id}/artifacts/file")
def artifact_file(request: Request, run_id: str, path: str, model: str = "", download: str = "") -> Response:
    """The file's bytes through the artifact repository, streamed; inline only for raster images."""
    artifacts = _artifacts(request, run_id, model)
    rel = safe_relative_path(path)
    name = posixpath.basename(rel) or "artifact"
    image_type = IMAGE_TYPES.get(posixpath.splitext(name)[1].lower())
    response = download_response(open_for_response(artifacts.repository, artifacts.full_path(rel)), rel)
    if image_type and not download:
        response.headers["Content-Type"] = image_type
        response.headers["Content-Disposition"] = "inline"
    else:
        response.headers["Content-Type"] = "application/octet-stream"
        quoted = urllib.parse.quote(name)
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quoted}"
    response.headers["Content-Security-Policy"] = FILE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
