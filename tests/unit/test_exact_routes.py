"""The exact-path dispatch table (`modelyard.runtime.dispatch`) on small apps: which routes it plans,
and that a planned route answers exactly as FastAPI's own routing does (the tracking app itself is
checked in tests/integration/test_tracking_dispatch.py)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.testclient import TestClient
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response

from modelyard.exceptions import ModelyardException
from modelyard.runtime import dispatch
from modelyard.tracking.errors import install_error_handlers

ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)
CALLS: list[str] = []


async def get_name(request: Request) -> str:
    CALLS.append("name")
    return request.query_params.get("name", "")


async def set_actor(request: Request) -> None:
    ACTOR.set(request.headers.get("x-actor"))


def sync_provider(request: Request) -> str:
    return "sync"


async def nested(name: Annotated[str, Depends(get_name)]) -> str:
    return name


NameDep = Annotated[str, Depends(get_name)]

router = APIRouter(prefix="/t", dependencies=[Depends(set_actor)])


@router.get("/hello")
async def hello(name: NameDep, again: NameDep) -> Response:
    return JSONResponse({"hello": name, "again": again})


@router.post("/sync")
def sync_endpoint(request: Request, name: NameDep) -> Response:
    """Runs in the thread pool; the actor set by the router's dependency must be visible there."""
    return JSONResponse({"method": request.method, "name": name, "actor": ACTOR.get()})


@router.post("/fail")
async def fail(name: NameDep) -> Response:
    raise ModelyardException.invalid_parameter(f"bad name {name!r}")


@router.get("/crash")
async def crash(name: NameDep) -> Response:
    if name == "now":
        raise RuntimeError("boom")
    return JSONResponse({})


@router.get("/item/{item_id}")
async def item(item_id: str) -> Response:
    return JSONResponse({"item": item_id})


@router.get("/int/{number}")
async def int_item(number: int) -> Response:
    return JSONResponse({"number": number})


@router.put("/files/{folder}/{path:path}")
async def put_file(folder: str, path: str, request: Request, name: NameDep) -> Response:
    return JSONResponse({"folder": folder, "path": path, "name": name, "params": request.path_params})


@router.get("/query")
async def query(limit: int = Query(1)) -> Response:
    return JSONResponse({"limit": limit})


@router.get("/dict")
async def returns_dict() -> dict[str, Any]:
    return {"plain": True}


@router.get("/sync-dep")
async def uses_sync_provider(value: Annotated[str, Depends(sync_provider)]) -> Response:
    return JSONResponse({"value": value})


@router.get("/nested")
async def uses_nested(value: Annotated[str, Depends(nested)]) -> Response:
    return JSONResponse({"value": value})


@router.get("/secured")
async def secured(value: Annotated[str, Security(get_name)]) -> Response:
    return JSONResponse({"value": value})


def routes_by_name() -> dict[str, Any]:
    return {route.name: route for route in router.routes}


@pytest.mark.parametrize("name", ["hello", "sync_endpoint", "fail", "crash", "item", "put_file"])
def test_request_only_dependencies_and_str_path_parameters_are_planned(name: str) -> None:
    handler = dispatch.plan(routes_by_name()[name])
    assert handler is not None
    assert handler.guards == (set_actor,)
    assert set(handler.path_params) == set(routes_by_name()[name].param_convertors)


@pytest.mark.parametrize(
    "name", ["int_item", "query", "returns_dict", "uses_sync_provider", "uses_nested", "secured"]
)
def test_everything_else_is_left_to_fastapi(name: str) -> None:
    assert dispatch.plan(routes_by_name()[name]) is None


def test_the_table_keys_are_prefix_method_and_path_and_the_first_route_wins() -> None:
    other = APIRouter(prefix="/t")

    @other.get("/hello")
    async def shadowed() -> Response:  # registered after `router`'s /t/hello: never chosen
        return JSONResponse({})

    table = dispatch.build_table([("/api", router), ("/api", other)])
    assert table[("GET", "/api/t/hello")].route.endpoint is hello
    assert ("POST", "/api/t/sync") in table
    assert ("GET", "/api/t/item/{item_id}") not in table
    assert ("HEAD", "/api/t/hello") not in table
    templates = {(t.method, t.path) for t in dispatch.build_templates([("/api", router)])}
    assert templates == {("GET", "/api/t/item/{item_id}"), ("PUT", "/api/t/files/{folder}/{path:path}")}


def make_app(
    *, shadow: bool = False, dependencies: list[Any] | None = None, later: APIRouter | None = None
) -> FastAPI:
    app = FastAPI(dependencies=dependencies)
    install_error_handlers(app)
    if shadow:  # an earlier route whose pattern takes /api/t/hello: FastAPI answers with it
        @app.get("/api/t/{anything}")
        async def catch_all(anything: str) -> Response:
            return JSONResponse({"caught": anything})

    app.include_router(router, prefix="/api")
    if later is not None:
        app.include_router(later, prefix="/api")
    dispatch.install(app, [("/api", router)])
    return app


def exact_routes(app: FastAPI) -> dispatch.ExactRoutes:
    layer = app.middleware_stack
    while not isinstance(layer, dispatch.ExactRoutes):
        layer = layer.app  # type: ignore[union-attr]
    return layer


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def answer(response: Any) -> tuple[int, bytes, str | None]:
    return response.status_code, response.content, response.headers.get("content-type")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/t/hello?name=ann", {}),
        ("POST", "/api/t/sync?name=bo", {"headers": {"x-actor": "carol"}}),
        ("POST", "/api/t/fail?name=x", {}),
        ("GET", "/api/t/crash?name=now", {}),
    ],
)
def test_a_table_answer_is_fastapis_answer(client: TestClient, method: str, path: str, kwargs: dict[str, Any]) -> None:
    """The same request to an app whose table is empty (FastAPI routes everything) and to one whose
    table learned the route from an earlier request."""
    key = (method, path.split("?")[0])
    client.request(method, key[1])  # FastAPI answers, the table learns
    assert key in exact_routes(client.app).active  # type: ignore[arg-type]
    with TestClient(make_app(), raise_server_exceptions=False) as control:
        control.get("/")  # builds the middleware stack
        exact_routes(control.app).table.clear()  # type: ignore[arg-type]
        assert answer(client.request(method, path, **kwargs)) == answer(control.request(method, path, **kwargs))


def test_dependencies_run_once_per_request_as_in_fastapi(client: TestClient) -> None:
    for _ in range(2):  # FastAPI, then the table
        CALLS.clear()
        assert client.get("/api/t/hello?name=ann").json() == {"hello": "ann", "again": "ann"}
        assert CALLS == ["name"]


def test_the_router_dependency_context_reaches_a_sync_endpoint(client: TestClient) -> None:
    for _ in range(2):
        body = client.post("/api/t/sync?name=n", headers={"x-actor": "dora"}).json()
        assert body == {"method": "POST", "name": "n", "actor": "dora"}


def test_misses_go_through_fastapi_and_teach_nothing(client: TestClient) -> None:
    layer = exact_routes(client.app)  # type: ignore[arg-type]
    for _ in range(2):
        assert client.get("/api/t/nowhere").status_code == 404
        assert client.get("/api/t/sync").status_code == 405  # the path is known, the method is not
        assert client.head("/api/t/hello").status_code == 405
        assert client.options("/api/t/hello").status_code == 405
    assert set(layer.active) == set() and layer.active_templates == {}


def test_an_earlier_route_that_takes_the_path_keeps_it() -> None:
    with TestClient(make_app(shadow=True)) as client:
        for _ in range(3):
            assert client.get("/api/t/hello?name=x").json() == {"caught": "hello"}
        assert exact_routes(client.app).active == {}  # type: ignore[arg-type]


def test_dependency_overrides_turn_the_table_off(client: TestClient) -> None:
    client.get("/api/t/hello?name=a")

    async def fixed(request: Request) -> str:
        return "fixed"

    client.app.dependency_overrides[get_name] = fixed  # type: ignore[attr-defined]
    assert client.get("/api/t/hello?name=a").json() == {"hello": "fixed", "again": "fixed"}


def test_app_level_dependencies_keep_fastapi_in_charge() -> None:
    async def refuse(request: Request) -> None:
        raise ModelyardException.invalid_parameter("refused by the app")

    app = make_app(dependencies=[Depends(refuse)])
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/api/t/hello?name=a").status_code == 400
        assert exact_routes(app).active == {}


def test_a_middleware_added_inside_the_table_turns_it_off() -> None:
    """A table hit skips what is inside the table; so nothing may be (auth's middleware is outside it)."""
    seen: list[str] = []

    class Inner:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.app(scope, receive, send)

    app = make_app()
    app.user_middleware.append(Middleware(Inner))
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/api/t/hello?name=a").json() == {"hello": "a", "again": "a"}
        assert exact_routes(app).active == {} and exact_routes(app).table == {}
    assert seen == ["/api/t/hello"] * 3


def test_a_template_answer_is_fastapis_answer(client: TestClient) -> None:
    """Paths with parameters: FastAPI answers the first, which teaches the template; the table then
    answers other ids as an app without the table does (a %-escaped `/` stays one segment's text)."""
    layer = exact_routes(client.app)  # type: ignore[arg-type]
    requests = [
        ("GET", "/api/t/item/7", {}),
        ("GET", "/api/t/item/a%20b", {}),
        ("GET", "/api/t/item/x%2Fy", {}),
        ("PUT", "/api/t/files/f/a/b.txt?name=n", {"headers": {"x-actor": "eve"}}),
        ("PUT", "/api/t/files/g/c", {}),
        ("POST", "/api/t/item/7", {}),  # a method the route does not take: 405
        ("GET", "/api/t/item/7/more", {}),  # 404
        ("GET", "/api/t/item/", {}),
        ("GET", "/api/t/int/x", {}),  # FastAPI's own validation error
    ]
    with TestClient(make_app(), raise_server_exceptions=False) as control:
        control.get("/")
        exact_routes(control.app).templates.clear()  # type: ignore[arg-type]
        for _ in range(2):
            for method, path, kwargs in requests:
                assert answer(client.request(method, path, **kwargs)) == answer(
                    control.request(method, path, **kwargs)
                ), path
    assert {(t.method, t.path) for templates in layer.active_templates.values() for t in templates} == {
        ("GET", "/api/t/item/{item_id}"),
        ("PUT", "/api/t/files/{folder}/{path:path}"),
    }
    assert client.put("/api/t/files/f/a/b.txt?name=n").json() == {
        "folder": "f",
        "path": "a/b.txt",
        "name": "n",
        "params": {"folder": "f", "path": "a/b.txt"},
    }


def test_a_route_that_may_take_a_templates_path_keeps_every_path_it_takes() -> None:
    """Before the template (FastAPI picks it) or after it (FastAPI picks the template): either way a
    path another route also matches is left to FastAPI, whose order decides."""
    later = APIRouter()

    @later.get("/t/item/special")
    async def special() -> Response:  # after /t/item/{item_id}: FastAPI answers those with `item`
        return JSONResponse({"special": True})

    with TestClient(make_app(shadow=True, later=later)) as client:
        for _ in range(3):
            assert client.get("/api/t/item/1").json() == {"item": "1"}
            assert client.get("/api/t/item/special").json() == {"item": "special"}
        layer = exact_routes(client.app)  # type: ignore[arg-type]
        assert [t.path for t in layer.active_templates["GET"]] == ["/api/t/item/{item_id}"]
        assert client.get("/api/t/hello?name=x").json() == {"caught": "hello"}
        assert layer.active == {}
    with TestClient(make_app(shadow=True)) as client:  # /api/t/{anything} takes no two-segment path
        client.get("/api/t/item/1")
        assert exact_routes(client.app).active_templates["GET"]  # type: ignore[arg-type]


def test_templates_are_off_in_an_app_with_routes_of_an_unknown_kind() -> None:
    from starlette.routing import Host

    app = make_app()
    app.router.routes.append(Host("example.org", app=JSONResponse({})))
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/api/t/item/3").json() == {"item": "3"}
        assert exact_routes(app).templates == {} and exact_routes(app).active_templates == {}
