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
when its endpoint returns a `Response`, and each of its parameters and route dependencies is the
`Request` itself, such a request-only provider, or a `str` path parameter; anything else (`int`
path parameters, `Security`, sub-dependencies, query/body models) is left to FastAPI. An entry is
used only after FastAPI itself routed that method and path to the same endpoint once (`_learn`), so
the table never changes which route answers, whatever routes are registered in front of the API routers.

A route whose path has parameters (`/logged-models/{model_id}`, the artifact proxy's `{path:path}`:
PATCH finalize and the bundle PUTs of every logged model cost ~1 ms of FastAPI's route scan each) is a
`Template`, matched by its pattern once FastAPI confirmed it for one path (`_learn_template`). As
paths with different ids may be routed differently, a template also knows every other route of the
app that could take a path it matches for its method (`_shadows`, from all the app's routes, in any
order): a path one of them matches goes to FastAPI. If the app holds a route of a kind not known
here (a `Host`, say), no template is used.
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

import dataclasses
import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import params
from fastapi.routing import APIRoute, APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, StringConvertor
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute, compile_path

_log = logging.getLogger(__name__)

Scope = dict[str, Any]
Provider = Callable[[Request], Awaitable[Any]]

#: Path parameters the table passes on as they are (FastAPI validates a `str` parameter, which a
#: path segment always is).
_TEXT_CONVERTORS = (StringConvertor, PathConvertor)

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
    #: The endpoint's parameters taken from the path (each a `str`, as the path gives it).
    path_params: tuple[str, ...] = ()

    async def __call__(self, request: Request) -> Response:
        results: dict[Provider, Any] = {}
        for guard in self.guards:
            results[guard] = await guard(request)
        kwargs: dict[str, Any] = {}
        if self.path_params:
            given = request.path_params
            for name in self.path_params:
                kwargs[name] = given[name]
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
    """A `Handler` for `route`, or None when it needs more of FastAPI than request-only providers and
    `str` path parameters."""
    if not all(isinstance(c, _TEXT_CONVERTORS) for c in route.param_convertors.values()):
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
    path_params: list[str] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            return None
        if parameter.default is not parameter.empty:
            return None
        hint = hints.get(name)
        if name in route.param_convertors:
            if hint is not str:
                return None
            path_params.append(name)
            continue
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
    if set(path_params) != set(route.param_convertors):
        return None
    return Handler(
        route, tuple(guards), tuple(arguments), inspect.iscoroutinefunction(endpoint), tuple(path_params)
    )


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
    """`(method, prefix + path) -> Handler` for every qualifying route with a fixed path; the first
    route of a key wins, as in FastAPI's scan."""
    table: dict[tuple[str, str], Handler] = {}
    for path, handler in _planned(routers):
        if not handler.path_params:
            for method in handler.route.methods:
                table.setdefault((method, path), handler)
    return table


@dataclass(frozen=True)
class Template:
    """A qualifying route whose path has parameters, at the full path it is served under. `shadows`
    are the patterns of every other route of the app that may take a request for this method (set
    when the middleware starts): a path one of them matches is left to FastAPI, whatever their order."""

    method: str
    path: str
    pattern: re.Pattern[str]
    handler: Handler
    shadows: tuple[re.Pattern[str], ...] = ()

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None or any(shadow.match(path) for shadow in self.shadows):
            return None
        return found.groupdict()


def build_templates(routers: Iterable[tuple[str, APIRouter]]) -> list[Template]:
    """A `Template` per method of every qualifying route whose path has `str` parameters."""
    return [
        Template(method, path, compile_path(path)[0], handler)
        for path, handler in _planned(routers)
        if handler.path_params
        for method in sorted(handler.route.methods)
    ]


def _planned(routers: Iterable[tuple[str, APIRouter]]) -> Iterator[tuple[str, Handler]]:
    for prefix, router in routers:
        routes, _complete = app_routes(router.routes, prefix)
        for path, route, plannable in routes:
            if plannable and isinstance(route, APIRoute) and (handler := plan(route)) is not None:
                yield path, handler


#: (full path, route, whether the table may answer it: not under an include with its own
#: dependencies or body limit, which only FastAPI applies); Mounts count as routes.
RoutePaths = list[tuple[str, BaseRoute, bool]]


def app_routes(
    routes: Iterable[BaseRoute], prefix: str = "", plannable: bool = True
) -> tuple[RoutePaths, bool]:
    """Every route under `routes` with its full path, in FastAPI's order, descending into included
    routers; False when some route is of a kind not understood here (then no template is used)."""
    found: RoutePaths = []
    complete = True
    for route in routes:
        if isinstance(route, (Route, Mount)):
            found.append((prefix + route.path, route, plannable))
        elif isinstance(route, WebSocketRoute):
            continue
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):  # FastAPI >= 0.16x
            context = route.include_context
            inner_plannable = plannable and not context.dependencies and context.max_body_size is None
            inner, inner_complete = app_routes(
                route.original_router.routes, prefix + context.prefix, inner_plannable
            )
            found += inner
            complete = complete and inner_complete
        else:
            complete = False
    return found, complete


def _shadows(template: Template, routes: RoutePaths) -> tuple[re.Pattern[str], ...]:
    """The patterns of `routes` (but the template's own) that may match a path the template matches
    for its method: routes taking that method whose fixed start is compatible with the template's."""
    start = template.path.split("{", 1)[0]
    shadows = []
    for path, route, _plannable in routes:
        if route is template.handler.route and path == template.path:
            continue
        methods = getattr(route, "methods", None)
        if methods is not None and template.method not in methods:
            continue
        if isinstance(route, Mount):
            path = path.rstrip("/") + "/{path:path}"
        fixed = path.split("{", 1)[0]
        if fixed.startswith(start) or start.startswith(fixed):
            shadows.append(compile_path(path)[0])
    return tuple(shadows)


class ExactRoutes:
    """The middleware of the module docstring. `app_ref` is the FastAPI app (for its exception
    handlers, dependency overrides, app-level dependencies and routes)."""

    def __init__(
        self,
        app: Any,
        app_ref: Any,
        table: dict[tuple[str, str], Handler],
        templates: Iterable[Template] = (),
    ) -> None:
        self.app = app
        self.app_ref = app_ref
        # Only what FastAPI's own route scan has confirmed (see `_learn`); a dict read per request.
        self.table = table
        self.active: dict[tuple[str, str], Handler] = {}
        self.templates: dict[str, list[Template]] = {}
        #: Per method, the templates FastAPI has confirmed (`_learn_template`).
        self.active_templates: dict[str, list[Template]] = {}
        handlers = {
            key: value for key, value in app_ref.exception_handlers.items() if key not in (500, Exception)
        }
        self.handle_errors = ExceptionMiddleware(self._handle, handlers=handlers)
        inner = [m.cls for m in app_ref.user_middleware[-1:]]
        if inner != [ExactRoutes]:  # a table hit would skip whatever middleware sits inside this one
            _log.warning("exact-path dispatch is off: %s was added inside it (install it last)", inner)
            self.table = {}
            return
        routes, complete = app_routes(app_ref.router.routes)
        if not complete:
            _log.warning("exact-path dispatch of paths with parameters is off: a route of an unknown kind")
            return
        for template in templates:
            shadowed = dataclasses.replace(template, shadows=_shadows(template, routes))
            self.templates.setdefault(template.method, []).append(shadowed)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"])
        handler = self.active.get(key)
        path_params = None
        if handler is None:
            for template in self.active_templates.get(key[0], ()):
                if (path_params := template.match(key[1])) is not None:
                    handler = template.handler
                    break
        if handler is not None and not self.app_ref.dependency_overrides:
            scope["route"] = handler.route  # the metrics middleware's label, as FastAPI sets it
            if path_params is not None:
                scope["path_params"] = path_params
            scope[_HANDLER_KEY] = handler
            await self.handle_errors(scope, receive, send)
            return
        await self.app(scope, receive, send)
        if handler is None:
            if key in self.table:
                self._learn(key, scope)
            elif key[0] in self.templates:
                self._learn_template(key, scope)

    async def _handle(self, scope: Scope, receive: Any, send: Any) -> None:
        request = Request(scope, receive, send)
        response = await scope[_HANDLER_KEY](request)
        await response(scope, receive, send)

    def _learn(self, key: tuple[str, str], scope: Scope) -> None:
        """Use the table's entry for `key` from now on if FastAPI just answered it with that entry's
        endpoint and dependencies (a method it allows, not a 405), and no app-level dependency exists."""
        candidate = self.table[key]
        if self._confirmed(candidate, key[0], scope):
            self.active[key] = candidate

    def _learn_template(self, key: tuple[str, str], scope: Scope) -> None:
        """`_learn` for the template whose pattern takes the path (and no other route's does)."""
        active = self.active_templates.get(key[0], [])
        for template in self.templates[key[0]]:
            if template not in active and template.match(key[1]) is not None:
                if self._confirmed(template.handler, key[0], scope):
                    self.active_templates[key[0]] = [*active, template]  # readers see a whole list
                return

    def _confirmed(self, candidate: Handler, method: str, scope: Scope) -> bool:
        route = scope.get("route")
        return (
            route is not None
            and getattr(route, "endpoint", None) is candidate.route.endpoint
            and method in (getattr(route, "methods", None) or ())
            and list(getattr(route, "dependencies", ())) == list(candidate.route.dependencies)
            and not self.app_ref.router.dependencies
        )


def install(app: Any, routers: Iterable[tuple[str, APIRouter]]) -> None:
    """Put the table in front of `app`'s routing for `routers` (each with the prefix it is included
    under), as the innermost middleware: call it last, after every other middleware was added."""
    routers = list(routers)
    middleware = Middleware(
        ExactRoutes, app_ref=app, table=build_table(routers), templates=build_templates(routers)
    )
    app.user_middleware.append(middleware)
