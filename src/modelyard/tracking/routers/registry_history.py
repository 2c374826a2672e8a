"""`/modelyard/registry/*`: the registry's history, "who held alias X at time T", rollback, and the
deploy step's outcome reports. modelyard's own API (MLflow has no registry history), served under the
same prefixes as MLflow's, in the same JSON and error conventions."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Engine
from starlette.responses import Response

from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import get_int, get_page_size, get_str, require_str
from modelyard.protocol.responses import compact, json_response
from modelyard.store.registry import history
from modelyard.tracking.deps import ArgsDep
from modelyard.tracking.routers.registry import registry_actor

router = APIRouter(prefix="/modelyard/registry", tags=["registry-history"], dependencies=[Depends(registry_actor)])


def _engine(request: Request) -> Engine:
    return request.app.state.registry_store.engine


@router.get("/events")
def list_events(request: Request, args: ArgsDep) -> Response:
    page = history.list_events(
        _engine(request),
        name=get_str(args, "name") or None,
        version=get_str(args, "version") or None,
        endpoint=get_str(args, "endpoint") or None,
        max_results=get_page_size(args, "max_results", 100, 1000),
        page_token=get_str(args, "page_token") or None,
    )
    return json_response(compact({"events": [e.to_dict() for e in page], "next_page_token": page.token}))


@router.get("/held")
def held(request: Request, args: ArgsDep) -> Response:
    """Which version(s) held an alias or a stage at `time` (ms since the epoch; default now)."""
    when = get_int(args, "time")
    versions = history.holders_at(
        _engine(request),
        require_str(args, "name"),
        int(time.time() * 1000) if when is None else when,
        alias=get_str(args, "alias") or None,
        stage=get_str(args, "stage") or None,
    )
    return json_response({"versions": versions})


@router.post("/rollback")
def rollback(request: Request, args: ArgsDep) -> Response:
    changed = history.rollback(
        _engine(request),
        require_str(args, "name"),
        alias=get_str(args, "alias") or None,
        stage=get_str(args, "stage") or None,
    )
    return json_response({"model_versions": [v.to_dict() for v in changed]})


@router.post("/events/deploy")
def record_deploy(request: Request, args: ArgsDep) -> Response:
    details = args.get("details") or {}
    if not isinstance(details, dict):
        raise ModelyardException.invalid_parameter("details must be a JSON object.")
    event = history.record_deploy(
        _engine(request),
        require_str(args, "name"),
        require_str(args, "version"),
        require_str(args, "kind"),
        require_str(args, "endpoint"),
        details,
    )
    return json_response({"event": event.to_dict()})
