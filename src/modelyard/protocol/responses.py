"""The one JSON response type of the tracking API: orjson bytes, no pydantic on the way out.

Bodies are built from the entities' `to_dict()` (already MLflow's proto-JSON shapes, with non-finite
floats spelled "NaN"/"Infinity"), so serialising is a single orjson call even for large searches.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

EMPTY_BODY = b"{}"


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def json_response(content: Any, status_code: int = 200) -> JsonResponse:
    return JsonResponse(content, status_code=status_code)


def empty_response() -> JsonResponse:
    """MLflow answers every write with an empty message, `{}`."""
    return JsonResponse(EMPTY_BODY)


def compact(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop empty lists and None, as proto3 JSON omits unset and empty fields."""
    return {key: value for key, value in payload.items() if value is not None and value != []}
