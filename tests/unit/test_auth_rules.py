"""Every route of every service has a permission rule, and the rule table names no route that is gone.

A new route without a rule fails here (the middleware would serve it to admins only, failing closed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyard.auth import rules
from modelyard.auth.routing import RouteTable, app_routes
from modelyard.settings import Settings

ADMIN = {
    "auth": True,
    "admin_username": "admin",
    "admin_password": "admin-password-1",
    "auth_password_hash_time_cost": 1,
    "auth_password_hash_memory_kib": 8192,
}
#: Rules with no route (yet): the UI's sign-in pages are reserved for the UI's own change.
RESERVED = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}


class _Model:
    """The serving app's routes do not depend on the model; a stand-in is enough to list them."""

    metadata = None

    def predict(self, data: Any) -> Any:
        return data


def _apps(tmp: Path) -> dict[str, Any]:
    from modelyard.artifact_proxy.app import create_app as artifacts_app
    from modelyard.endpoints.app import create_app as endpoints_app
    from modelyard.gateway.app import create_app as gateway_app
    from modelyard.serving.app import create_app as serving_app
    from modelyard.tracking.app import create_app as tracking_app

    db = f"sqlite:///{tmp / 'auth.db'}"
    common = {"backend_store_uri": db, "artifacts_destination": str(tmp / "artifacts"), **ADMIN}
    return {
        "tracking": tracking_app(Settings(webhook_delivery=False, **common)),
        "artifacts": artifacts_app(Settings(**common)),
        "serving": serving_app(Settings(**common), model=_Model()),
        "endpoints": endpoints_app(Settings(endpoints_state_dir=str(tmp / "endpoints"), **common)),
        "gateway": gateway_app(Settings()),
    }


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _apps(tmp_path_factory.mktemp("auth-rules"))


@pytest.mark.parametrize("service", ["tracking", "artifacts", "serving", "endpoints", "gateway"])
def test_every_route_has_a_rule(apps: dict[str, Any], service: str) -> None:
    table = RouteTable.build(apps[service], rules.table(service))
    assert table.unruled == [], f"{service} routes without a rule in modelyard/auth/rules.py: {table.unruled}"


@pytest.mark.parametrize("service", ["tracking", "artifacts", "serving", "endpoints", "gateway"])
def test_no_rule_names_a_route_that_does_not_exist(apps: dict[str, Any], service: str) -> None:
    served = {(m, r.path) for r in app_routes(apps[service]) for m in r.methods}
    stale = {key for key in rules.table(service) if key not in served and key[0] != "HEAD"} - RESERVED
    assert stale == set()


def test_the_installed_middleware_uses_the_table_and_fails_closed(apps: dict[str, Any]) -> None:
    assert apps["tracking"].state.auth_routes.unruled == []

    class Extra:
        router = type("R", (), {"routes": []})()

    from starlette.routing import Route

    Extra.router.routes = [Route("/api/2.0/mlflow/brand-new", lambda r: None, methods=["POST"])]
    table = RouteTable.build(Extra, rules.table("tracking"))
    assert table.unruled == [("POST", "/api/2.0/mlflow/brand-new")]
    found = table.match("POST", "/api/2.0/mlflow/brand-new")
    assert found is not None and found[0].kind == rules.ADMIN


def test_matching_follows_starlette_path_parameters() -> None:
    table = RouteTable.build(type("A", (), {"router": type("R", (), {"routes": []})()}), rules.table("tracking"))
    from modelyard.auth.rules import Rule

    table.add("GET", "/a/{x}", Rule(rules.PUBLIC))
    table.add("GET", "/a/{x}/files/{p:path}", Rule(rules.ADMIN))
    assert table.match("GET", "/a/1") == (Rule(rules.PUBLIC), {"x": "1"})
    assert table.match("GET", "/a/1/files/b/c.txt") == (Rule(rules.ADMIN), {"x": "1", "p": "b/c.txt"})
    assert table.match("GET", "/a/1/2") is None
    assert table.match("POST", "/a/1") is None
