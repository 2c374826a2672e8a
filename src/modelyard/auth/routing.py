"""The routes an app really serves, and the matcher that finds a request's rule among them.

`app_routes(app)` walks an app's routes as Starlette/FastAPI hold them (FastAPI >= 0.165 keeps
included routers as `_IncludedRouter` entries with their effective routes; older versions flatten
them) and yields each route's methods and path template. `RouteTable.build(app, rules)` pairs every
route with its rule; a route without one gets the admins-only rule and is reported in `unruled`
(fail closed). Matching follows Starlette's own: `{name}` is one path segment, `{name:path}` the
rest of the path, static routes before parametric ones.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import Mount

from modelyard.auth.rules import ADMIN_RULE, RouteInfo, Rule

log = logging.getLogger(__name__)

_PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(:path)?\}")


def app_routes(app: Any) -> Iterator[RouteInfo]:
    routes = getattr(getattr(app, "router", app), "routes", [])
    yield from _walk(routes, "")


def _walk(routes: list[Any], prefix: str) -> Iterator[RouteInfo]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's included router
            for context in contexts():
                original = context.original_route
                if isinstance(original, Mount):
                    yield from _walk(list(original.routes or []), prefix + context.path)
                else:
                    yield _info(original, prefix + context.path)
        elif isinstance(route, Mount):
            yield from _walk(list(route.routes or []), prefix + route.path)
        elif hasattr(route, "path"):
            yield _info(route, prefix + route.path)


def _info(route: Any, path: str) -> RouteInfo:
    methods = frozenset(getattr(route, "methods", None) or ("GET",))
    return RouteInfo(methods, path, getattr(route, "name", "") or "")


def _compile(template: str) -> re.Pattern[str]:
    pattern, pos = "", 0
    for match in _PARAM.finditer(template):
        pattern += re.escape(template[pos : match.start()])
        name, is_path = match.group(1), match.group(2)
        pattern += f"(?P<{name}>.*)" if is_path else f"(?P<{name}>[^/]+)"
        pos = match.end()
    pattern += re.escape(template[pos:])
    return re.compile(f"^{pattern}$")


@dataclass
class RouteTable:
    exact: dict[tuple[str, str], Rule] = field(default_factory=dict)
    patterns: list[tuple[str, re.Pattern[str], Rule]] = field(default_factory=list)
    #: (method, path) of app routes that had no rule: admins only.
    unruled: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def build(cls, app: Any, rules: dict[tuple[str, str], Rule]) -> RouteTable:
        table = cls()
        for route in app_routes(app):
            for method in sorted(route.methods):
                rule = rules.get((method, route.path))
                if rule is None and method == "HEAD":
                    rule = rules.get(("GET", route.path))
                if rule is None:
                    table.unruled.append((method, route.path))
                    rule = ADMIN_RULE
                table.add(method, route.path, rule)
        for method, path in table.unruled:
            log.warning("route %s %s has no permission rule (modelyard.auth.rules): admins only", method, path)
        # Reserved paths (the UI's sign-in) have rules before their routes exist.
        for (method, path), rule in rules.items():
            if (method, path) not in table.exact and "{" not in path:
                table.exact[(method, path)] = rule
        return table

    def add(self, method: str, path: str, rule: Rule) -> None:
        if "{" in path:
            self.patterns.append((method, _compile(path), rule))
        else:
            self.exact.setdefault((method, path), rule)

    def match(self, method: str, path: str) -> tuple[Rule, dict[str, str]] | None:
        """The rule and path parameters of the route Starlette would pick; None when no route matches
        (the app answers 404/405 itself)."""
        rule = self.exact.get((method, path))
        if rule is not None:
            return rule, {}
        for route_method, pattern, rule in self.patterns:
            if route_method == method:
                found = pattern.match(path)
                if found is not None:
                    return rule, found.groupdict()
        return None
