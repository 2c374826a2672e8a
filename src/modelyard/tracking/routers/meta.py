"""Service endpoints outside the MLflow API proper: liveness, version and the capability probe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from modelyard.protocol.responses import json_response
from modelyard.version import __version__

router = APIRouter(tags=["meta"])

@router.get("/health")
async def health() -> Response:
    return PlainTextResponse("OK")


@router.get("/version")
async def version() -> Response:
    return PlainTextResponse(__version__)


@router.get("/api/3.0/mlflow/server-info")
@router.get("/ajax-api/3.0/mlflow/server-info")
async def server_info(request: Request) -> Response:
    """The capability probe of mlflow >= 3: the client reads the multipart flags before big transfers.

    The flags are `app.state.artifact_capabilities`: what the artifacts router mounted in this process
    declared, or, when the artifacts API is its own service, presigned downloads as configured
    (`artifact_proxy.routes.split_service_info`).
    """
    capabilities = request.app.state.artifact_capabilities
    payload: dict[str, Any] = {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": bool(capabilities.get("multipart_uploads_enabled", False)),
        "multipart_downloads_enabled": bool(capabilities.get("multipart_downloads_enabled", False)),
        # /api/2.0/mlflow/artifacts/presigned-upload-url is not served.
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }
    return json_response(payload)
