"""`/static/<name>.<hash>.<ext>`: the UI's files from memory, gzipped when accepted, cached for a year."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.ui.assets import CACHE_FOREVER
from modelyard.ui.render import UiRoute, assets

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/static/{path:path}")
async def static_file(request: Request, path: str) -> Response:
    asset = assets().by_url.get("/static/" + path)
    if asset is None:
        return Response(b"Not found", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.content_type, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)
