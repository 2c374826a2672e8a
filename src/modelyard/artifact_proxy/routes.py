"""MLflow's artifacts API (`/api/2.0/mlflow-artifacts/...`, also under `/ajax-api/2.0/...`) as a router.

Every path is relative to the configured destination and checked by `safe_relative_path` before the
repository sees it, so no request can make the service touch anything outside the destination.
Errors are answered here as MLflow JSON (`{"error_code", "message"}`), so the router behaves the
same in the standalone service and mounted inside the tracking app.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from modelyard import errors
from modelyard.artifact_proxy import bundles
from modelyard.artifact_proxy.ownership import RunOwnership
from modelyard.artifact_proxy.streaming import (
    UploadCutOff,
    download_response,
    open_for_response,
    receive_into,
)
from modelyard.artifact_repos import get_repository
from modelyard.artifact_repos.base import (
    ArtifactRepository,
    multipart_unsupported,
    presigned_download_unsupported,
)
from modelyard.artifact_repos.paths import safe_relative_path
from modelyard.exceptions import ModelyardException
from modelyard.protocol import text_parsing
from modelyard.protocol.parsing import read_body
from modelyard.settings import Settings

_log = logging.getLogger(__name__)

PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")


def error_response(exc: ModelyardException) -> JSONResponse:
    return JSONResponse({"error_code": exc.error_code, "message": exc.message}, status_code=exc.http_status)


def _mlflow_errors(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    @functools.wraps(handler)
    async def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except ModelyardException as exc:
            if exc.http_status >= 500:
                _log.warning("artifacts request failed (%s, HTTP %d): %s", exc.error_code, exc.http_status, exc.message)
            return error_response(exc)
        except UploadCutOff as exc:
            _log.info("upload cut off, nothing stored: %s", exc)
            return error_response(ModelyardException(f"Upload incomplete: {exc}", errors.BAD_REQUEST))

    return wrapped


def multipart_enabled(repo: ArtifactRepository) -> bool:
    """Multipart needs an S3 destination; `MODELYARD_ARTIFACTS_MULTIPART_UPLOAD=false` turns it off when
    clients cannot reach the S3 endpoint the presigned part URLs point at."""
    flag = os.environ.get("MODELYARD_ARTIFACTS_MULTIPART_UPLOAD", "true").strip().lower()
    return repo.supports_multipart and flag not in ("0", "false", "no", "off")


def presigned_downloads_enabled(settings: Settings, repo: ArtifactRepository) -> bool:
    """`MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS` and a store that signs URLs (S3); a local folder keeps
    the proxy. The mlflow 3.17 client reads this as `multipart_downloads_enabled` and then asks
    `/presigned/<path>` before every file download, failing (not falling back) on any error answer."""
    return settings.artifacts_presigned_downloads and repo.supports_presigned_downloads


def server_info(settings: Settings, repo: ArtifactRepository | None = None) -> dict[str, Any]:
    """The artifact capabilities of `/api/3.0/mlflow/server-info` (the tracking app merges these)."""
    repo = repo or get_repository(settings.artifacts_destination)
    return {
        "multipart_uploads_enabled": multipart_enabled(repo),
        "multipart_downloads_enabled": presigned_downloads_enabled(settings, repo),
    }


def split_service_info(settings: Settings, repo: ArtifactRepository) -> dict[str, Any]:
    """What a tracking service reports when the artifacts API is a service of its own (the Helm chart's
    layout, where both read the same settings): presigned downloads as configured; multipart uploads not
    advertised, so the client PUTs through the artifacts service as it always did there."""
    return {"multipart_uploads_enabled": False, "multipart_downloads_enabled": presigned_downloads_enabled(settings, repo)}


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = text_parsing.loads_json(await request.body())
    except ValueError as exc:
        raise ModelyardException("Request body is not valid JSON", errors.MALFORMED_REQUEST) from exc
    if not isinstance(body, dict):
        raise ModelyardException("Request body must be a JSON object", errors.MALFORMED_REQUEST)
    return body


#: What an S3 upload id or part ETag can be: printable ASCII, no spaces (ids are base64-like tokens). Anything
#: else is refused here: some S3 servers answer such a request with a 5xx (moto does), a retryable 503.
_S3_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")


def _upload_id(body: dict[str, Any]) -> str:
    upload_id = body.get("upload_id")
    if not isinstance(upload_id, str) or not upload_id:
        raise ModelyardException.invalid_parameter("upload_id is required")
    if not _S3_TOKEN.fullmatch(upload_id):
        raise ModelyardException.invalid_parameter("upload_id is not an upload id this server handed out")
    return upload_id


def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `parts` of an mpu/complete body: each a part number (1..10000) and the ETag S3 gave that part."""
    parts = body.get("parts") or []
    if not isinstance(parts, list):
        raise ModelyardException.invalid_parameter("parts must be a list")
    for part in parts:
        number = part.get("part_number") if isinstance(part, dict) else None
        etag = part.get("etag") if isinstance(part, dict) else None
        if isinstance(number, str) and number.isdigit():
            number = int(number)
        valid_number = isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= 10000
        if not valid_number or not isinstance(etag, str) or not _S3_TOKEN.fullmatch(etag):
            raise ModelyardException.invalid_parameter(
                "Each part needs a part_number (1 to 10000) and the etag its upload returned"
            )
    return parts


def _mpu_target(folder: str, body: dict[str, Any]) -> str:
    """MLflow's multipart protocol names the folder in the URL and the file in the body's `path`
    (the client's local file path: only its basename counts)."""
    local = body.get("path")
    if not isinstance(local, str) or not local:
        raise ModelyardException.invalid_parameter("path (the file name) is required")
    name = safe_relative_path(local.replace("\\", "/").rsplit("/", 1)[-1])
    if not name:
        raise ModelyardException.invalid_parameter("path must name a file")
    rel = safe_relative_path(folder)
    return f"{rel}/{name}" if rel else name


def _required_path(path: str) -> str:
    rel = safe_relative_path(path)
    if not rel:
        raise ModelyardException.invalid_parameter("An artifact path is required")
    return rel


def create_router(
    settings: Settings, repository: ArtifactRepository | None = None, ownership: RunOwnership | None = None
) -> APIRouter:
    """The artifacts API over `settings.artifacts_destination` (or an explicit repository). With
    `ownership`, writes into `<experiment_id>/<run_id>/...` must name a run of that experiment."""
    repo = repository or get_repository(
        settings.artifacts_destination, chunk_size=settings.multipart_chunk_size
    )
    api = APIRouter()

    async def writable(rel: str) -> str:
        if ownership is not None:
            await run_in_threadpool(ownership.check_write, rel)
        return rel

    @api.get("/artifacts")
    @_mlflow_errors
    async def list_artifacts(path: str | None = None) -> Response:
        rel = safe_relative_path(path)
        infos = await run_in_threadpool(repo.list_artifacts, rel or None)
        # MLflow answers names relative to the listed folder; the client re-joins them.
        files = [{**info.to_dict(), "path": info.path.rsplit("/", 1)[-1]} for info in infos]
        return JSONResponse({"files": files} if files else {})

    @api.get("/artifacts/{path:path}")
    @_mlflow_errors
    async def download_artifact(path: str) -> Response:
        rel = _required_path(path)
        return download_response(await run_in_threadpool(open_for_response, repo, rel), rel)

    @api.put("/artifacts/{path:path}")
    @_mlflow_errors
    async def upload_artifact(path: str, request: Request) -> Response:
        await receive_into(repo, await writable(_required_path(path)), request)
        return JSONResponse({})

    @api.put(f"{bundles.ROUTE}/{{path:path}}")
    @_mlflow_errors
    async def upload_bundle(path: str, request: Request) -> Response:
        """modelyard's own: a tar of small files into the folder `path`, all checked before any is written."""
        folder = _required_path(path)
        body = await read_body(request, settings.max_request_body_bytes)

        def store() -> None:  # one trip to the thread pool (each costs the loop ~0.1 ms of CPU)
            files = bundles.read_bundle(body, folder)
            if ownership is not None:
                for rel, _ in files:
                    ownership.check_write(rel)
            bundles.write_bundle(repo, files)  # every file checked above before the first is written

        await run_in_threadpool(store)
        return JSONResponse({})

    @api.delete("/artifacts/{path:path}")
    @_mlflow_errors
    async def delete_artifact(path: str) -> Response:
        await run_in_threadpool(repo.delete_artifacts, await writable(_required_path(path)))
        return JSONResponse({})

    @api.post("/mpu/create/{path:path}")
    @_mlflow_errors
    async def create_multipart(path: str, request: Request) -> Response:
        body = await _json_body(request)
        rel = await writable(_mpu_target(path, body))
        if not multipart_enabled(repo):
            raise multipart_unsupported()
        try:
            num_parts = int(body.get("num_parts", 1))
        except (TypeError, ValueError) as exc:
            raise ModelyardException.invalid_parameter("num_parts must be an integer") from exc
        upload = await run_in_threadpool(repo.create_multipart_upload, rel, num_parts)
        return JSONResponse(upload.to_dict())

    @api.post("/mpu/complete/{path:path}")
    @_mlflow_errors
    async def complete_multipart(path: str, request: Request) -> Response:
        body = await _json_body(request)
        rel = await writable(_mpu_target(path, body))
        await run_in_threadpool(repo.complete_multipart_upload, rel, _upload_id(body), _parts(body))
        return JSONResponse({})

    @api.post("/mpu/abort/{path:path}")
    @_mlflow_errors
    async def abort_multipart(path: str, request: Request) -> Response:
        body = await _json_body(request)
        rel = _mpu_target(path, body)
        await run_in_threadpool(repo.abort_multipart_upload, rel, _upload_id(body))
        return JSONResponse({})

    @api.get("/presigned/{path:path}")
    @_mlflow_errors
    async def presigned_download(path: str) -> Response:
        """`{"url", "headers", "file_size"}` for a file: the client then reads it from S3 itself. The
        auth middleware has checked READ on the path's experiment before this runs (`auth/rules.py`)."""
        rel = _required_path(path)
        if not presigned_downloads_enabled(settings, repo):
            raise presigned_download_unsupported()
        link = await run_in_threadpool(
            repo.presigned_download, rel, settings.artifacts_presigned_ttl, settings.s3_public_endpoint_url
        )
        return JSONResponse(link.to_dict())

    router = APIRouter()
    for prefix in PREFIXES:
        router.include_router(api, prefix=prefix)
    return router
