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
from modelyard.artifacts import FileInfo, safe_relative_path
from modelyard.entities import Run
from modelyard.ui.artifact_access import RunArtifacts, run_artifacts
from modelyard.ui.previews import IMAGE_TYPES, build_preview
from modelyard.ui.render import UiRoute, page
from modelyard.ui.routes.experiments import tracking_store

router = APIRouter(route_class=UiRoute, include_in_schema=False)
FILE_POLICY = "default-src 'none'; sandbox"


def _artifacts(request: Request, run_id: str) -> RunArtifacts:
    run = tracking_store(request).get_run(run_id)
    return run_artifacts(request, run.info.run_id, run.info.artifact_uri)


def file_url(run_id: str, path: str) -> str:
    return f"/runs/{run_id}/artifacts/file?" + urllib.parse.urlencode({"path": path})


def page_url(run_id: str, path: str) -> str:
    return f"/runs/{run_id}?" + urllib.parse.urlencode({"tab": "artifacts", "path": path})


def artifacts_context(request: Request, run: Run) -> dict[str, Any]:
    """The tree down to the selected file's folder (each level listed once) and its preview."""
    artifacts = run_artifacts(request, run.info.run_id, run.info.artifact_uri)
    selected = safe_relative_path(request.query_params.get("path", ""))
    # Folders on the way to the selection: root, a, a/b for a/b/c.txt (or a/b/c when c is a folder).
    parts = selected.split("/") if selected else []
    levels: dict[str, list[FileInfo]] = {"": artifacts.list("")}
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        if not any(f.is_dir and f.path == folder for f in levels["/".join(parts[: depth - 1])]):
            break
        levels[folder] = artifacts.list(folder)
    preview = None
    if selected and selected not in levels:
        preview = build_preview(artifacts, selected, file_url(run.info.run_id, selected))
    return {"levels": levels, "selected": selected, "preview": preview, "artifacts": artifacts}


@router.get("/runs/{run_id}/artifacts/list")
def list_folder(request: Request, run_id: str, path: str = "") -> Response:
    artifacts = _artifacts(request, run_id)
    folder = safe_relative_path(path)
    return page(
        request,
        "run_artifact_tree.html",
        run_id=artifacts.run_id,
        folder=folder,
        levels={folder: artifacts.list(folder)},
        selected="",
        artifacts=artifacts,
    )


@router.get("/runs/{run_id}/artifacts/preview")
def preview(request: Request, run_id: str, path: str) -> Response:
    artifacts = _artifacts(request, run_id)
    rel = safe_relative_path(path)
    return page(
        request,
        "run_artifact_preview.html",
        run_id=artifacts.run_id,
        preview=build_preview(artifacts, rel, file_url(artifacts.run_id, rel)),
    )


@router.get("/runs/{run_id}/artifacts/file")
def artifact_file(request: Request, run_id: str, path: str, download: str = "") -> Response:
    """The file's bytes through the artifact repository, streamed; inline only for raster images."""
    artifacts = _artifacts(request, run_id)
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
