"""`/modelyard/webhooks/*`: register, list, change and delete webhooks, fire a test delivery, and read
a webhook's delivery log. modelyard's own API, in MLflow's JSON and error conventions (4xx with
`error_code`/`message` for bad input). The secret appears only in the answers to `create` and to
`update` with `rotate_secret`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.responses import Response

from modelyard.protocol.parsing import Args, get_bool, get_page_size, get_str, get_str_list, require_str
from modelyard.protocol.responses import compact, empty_response, json_response
from modelyard.store.webhooks import deliveries, subscriptions
from modelyard.tracking.deps import ArgsDep

router = APIRouter(prefix="/modelyard/webhooks", tags=["webhooks"])


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.webhook_allow_private)


def _events(args: Args) -> list[str] | None:
    return None if args.get("events") is None else get_str_list(args, "events")


def _optional_bool(args: Args, name: str) -> bool | None:
    return None if args.get(name) is None else get_bool(args, name)


@router.post("/create")
def create(request: Request, args: ArgsDep) -> Response:
    webhook = subscriptions.create(
        _engine(request),
        require_str(args, "name"),
        require_str(args, "url"),
        events=_events(args),
        description=get_str(args, "description"),
        secret=get_str(args, "secret") or None,
        active=get_bool(args, "active", True),
        allow_private=_allow_private(request),
    )
    return json_response({"webhook": webhook.to_dict()})


@router.get("/list")
def list_webhooks(request: Request) -> Response:
    return json_response(compact({"webhooks": [w.to_dict() for w in subscriptions.list_all(_engine(request))]}))


@router.get("/get")
def get(request: Request, args: ArgsDep) -> Response:
    return json_response({"webhook": subscriptions.get(_engine(request), require_str(args, "id")).to_dict()})


@router.patch("/update")
def update(request: Request, args: ArgsDep) -> Response:
    webhook = subscriptions.update(
        _engine(request),
        require_str(args, "id"),
        name=get_str(args, "name"),
        url=get_str(args, "url"),
        events=_events(args),
        description=get_str(args, "description"),
        active=_optional_bool(args, "active"),
        rotate_secret=get_bool(args, "rotate_secret"),
        allow_private=_allow_private(request),
    )
    return json_response({"webhook": webhook.to_dict()})


@router.delete("/delete")
def delete(request: Request, args: ArgsDep) -> Response:
    subscriptions.delete_webhook(_engine(request), require_str(args, "id"))
    return empty_response()


@router.post("/test")
def test_fire(request: Request, args: ArgsDep) -> Response:
    delivery_id = subscriptions.fire_test(_engine(request), require_str(args, "id"))
    return json_response({"delivery_id": str(delivery_id)})


@router.get("/deliveries")
def list_deliveries(request: Request, args: ArgsDep) -> Response:
    page = deliveries.list_deliveries(
        _engine(request),
        require_str(args, "id"),
        status=get_str(args, "status") or None,
        max_results=get_page_size(args, "max_results", 100, deliveries.MAX_PAGE),
        page_token=get_str(args, "page_token") or None,
    )
    return json_response(compact({"deliveries": [d.to_dict() for d in page], "next_page_token": page.token}))
