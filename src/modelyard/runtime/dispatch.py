"""Exact-path dispatch for a service's static routes, in front of FastAPI's route scan.

FastAPI finds a request's route by trying the routes one by one (log-metric met ~22 `matches` calls)
and then solves the endpoint's dependencies through its general machinery; for a log-metric call the
two cost about as much CPU as everything else the request does outside I/O. The tracking API's
endpoints need none of that generality: their paths are fixed strings and every dependency is an
`async def provider(request)` (`ArgsDep`, `StoreDep`, `RunWritesDep`, `RegistryDep`, the registry's
actor); the scoring service's `/invocations` takes the `Request` alone.

`ExactRoutes` is a pure ASGI middleware, the innermost one (inside the browser guard, the metrics
middleware and auth's middleware, which see every request as before; a table hit skips only what is
inside it: Starlette's exception middleware, whose work it does itself, and the router). It holds a table `(method, path) -> Handler` planned from the API routers (`plan`): a route qualifies
when its path has no parameters, its endpoint returns a `Response`, and each of its parameters and
route dependencies is the `Request` itself or such a request-only provider; anything else (path
parameters, `Security`, sub-dependencies, query/body models) is left to FastAPI. An entry is used only
after FastAPI itself routed that method and path to the same endpoint once (`_learn`), so the table
never changes which route answers, whatever routes are registered in front of the API routers.
Everything the table does not answer - unknown paths (404), other methods (405), HEAD, OPTIONS, the
UI, paths under a `root_path`, an app with `dependency_overrides` - goes through FastAPI as before.

Errors go through Starlette's `ExceptionMiddleware` with the app's own handlers, so every error has
the answer FastAPI's path gives it; an unforeseen exception propagates to the outermost
`ServerErrorMiddleware`, as it does there. Sync endpoints run in the thread pool as FastAPI runs them
(`run_in_threadpool`, which carries the request's context variables into the thread).

Contract for what comes later: `install` is called last in an app factory, after every other
middleware (auth's `install` appends its own as the innermost; this one then goes inside it), and the
table turns itself off, logging why, if it finds another middleware inside it when the app starts. A
request-only provider declared on a router or an endpoint is honoured here exactly as FastAPI would
run it. App-level (`FastAPI(dependencies=...)`) dependencies turn the table off; dependencies added at
`include_router` time are not seen by it, so declare them on the routers instead (or in a middleware).
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import params
from fastapi.routing import APIRoute, APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response

_log = logging.getLogger(__name__)

Scope = dict[str, Any]
Provider = Callable[[Request], Awaitable[Any]]

#: The scope key under which the matched handler travels to `ExactRoutes._handle`.
_HANDLER_KEY = "modelyard.exact_route"


@dataclass(frozen=True)
class Handler:
    """How to answer one route without FastAPI: run `guards`, build the arguments, call `endpoint`."""

    route: APIRoute
    guards: tuple[Provider, ...]
    #: (parameter name, provider); None passes the `Request` itself.
    arguments: tuple[tuple[str, Provider | None], ...]
    is_async: bool

    async def __call__(self, request: Request) -> Response:
        results: dict[Provider, Any] = {}
        for guard in self.guards:
            results[guard] = await guard(request)
        kwargs: dict[str, Any] = {}
        for name, provider in self.arguments:
            if provider is None:
                kwargs[name] = request
            elif provider in results:  # FastAPI runs a dependency once per request (use_cache)
                kwargs[name] = results[provider]
            else:
                kwargs[name] = results[provider] = await provider(request)
        endpoint = self.route.endpoint
        if self.is_async:
            response = await endpoint(**kwargs)
        else:
            response = await run_in_threadpool(endpoint, **kwargs)
        if not isinstance(response, Response):  # plan() admits only endpoints declared to return one
            raise TypeError(f"{endpoint.__qualname__} returned {type(response).__name__}, not a Response")
        return response


def plan(route: APIRoute) -> Handler | None:
    """A `Handler` for `route`, or None when it needs more of FastAPI than request-only providers."""
    if "{" in route.path:
        return None
    endpoint = route.endpoint
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
        signature = inspect.signature(endpoint)
    except (NameError, TypeError, ValueError):
        return None
    returns = hints.get("return")
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        return None
    arguments: list[tuple[str, Provider | None]] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            return None
        if parameter.default is not parameter.empty:
            return None
        hint = hints.get(name)
        if isinstance(hint, type) and issubclass(hint, Request):
            arguments.append((name, None))
            continue
        provider = _annotated_provider(hint)
        if provider is None:
            return None
        arguments.append((name, provider))
    guards: list[Provider] = []
    for dependency in route.dependencies:
        provider = _provider(dependency)
        if provider is None:
            return None
        guards.append(provider)
    return Handler(route, tuple(guards), tuple(arguments), inspect.iscoroutinefunction(endpoint))


def _annotated_provider(hint: Any) -> Provider | None:
    if typing.get_origin(hint) is not Annotated:
        return None
    depends = [m for m in hint.__metadata__ if isinstance(m, params.Depends)]
    return _provider(depends[0]) if len(depends) == 1 else None


def _provider(depends: Any) -> Provider | None:
    """The dependency's function when it is an `async def f(request: Request)` and nothing more."""
    if not isinstance(depends, params.Depends) or isinstance(depends, params.Security):
        return None
    function = depends.dependency
    if function is None or not inspect.iscoroutinefunction(function):
        return None
    try:
        hints = typing.get_type_hints(function)
        parameters = list(inspect.signature(function).parameters.values())
    except (NameError, TypeError, ValueError):
        return None
    if len(parameters) != 1 or parameters[0].default is not parameters[0].empty:
        return None
    hint = hints.get(parameters[0].name)
    if not (isinstance(hint, type) and issubclass(hint, Request)):
        return None
    return function  # type: ignore[no-any-return]


def build_table(routers: Iterable[tuple[str, APIRouter]]) -> dict[tuple[str, str], Handler]:
    """`(method, prefix + path) -> Handler` for every qualifying route; the first route of a key wins,
    as in FastAPI's scan."""
    table: dict[tuple[str, str], Handler] = {}
    for prefix, router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            handler = plan(route)
            if handler is None:
                continue
            for method in route.methods:
                table.setdefault((method, prefix + route.path), handler)
    return table


class ExactRoutes:
    """The middleware of the module docstring. `app_ref` is the FastAPI app (for its exception
    handlers, dependency overrides and app-level dependencies)."""

    def __init__(self, app: Any, app_ref: Any, table: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.app_ref = app_ref
        # Only what FastAPI's own route scan has confirmed (see `_learn`); a dict read per request.
        self.table = table
        self.active: dict[tuple[str, str], Handler] = {}
        handlers = {
            key: value for key, value in app_ref.exception_handlers.items() if key not in (500, Exception)
        }
        self.handle_errors = ExceptionMiddleware(self._handle, handlers=handlers)
        inner = [m.cls for m in app_ref.user_middleware[-1:]]
        if inner != [ExactRoutes]:  # a table hit would skip whatever middleware sits inside this one
            _log.warning("exact-path dispatch is off: %s was added inside it (install it last)", inner)
            self.table = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"])
        handler = self.active.get(key)
        if handler is not None and not self.app_ref.dependency_overrides:
            scope["route"] = handler.route  # the metrics middleware's label, as FastAPI sets it
            scope[_HANDLER_KEY] = handler
            await self.handle_errors(scope, receive, send)
            return
        await self.app(scope, receive, send)
        if handler is None and key in self.table:
            self._learn(key, scope)

    async def _handle(self, scope: Scope, receive: Any, send: Any) -> None:
        request = Request(scope, receive, send)
        response = await scope[_HANDLER_KEY](request)
        await response(scope, receive, send)

    def _learn(self, key: tuple[str, str], scope: Scope) -> None:
        """Use the table's entry for `key` from now on if FastAPI just answered it with that entry's
        endpoint and dependencies (a method it allows, not a 405), and no app-level dependency exists."""
        candidate = self.table[key]
        route = scope.get("route")
        if (
            route is not None
            and getattr(route, "endpoint", None) is candidate.route.endpoint
            and key[0] in (getattr(route, "methods", None) or ())
            and list(getattr(route, "dependencies", ())) == list(candidate.route.dependencies)
            and not self.app_ref.router.dependencies
        ):
            self.active[key] = candidate


def install(app: Any, routers: Iterable[tuple[str, APIRouter]]) -> None:
    """Put the table in front of `app`'s routing for `routers` (each with the prefix it is included
    under), as the innermost middleware: call it last, after every other middleware was added."""
    app.user_middleware.append(Middleware(ExactRoutes, app_ref=app, table=build_table(routers)))
