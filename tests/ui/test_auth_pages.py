"""Signing in, the account and admin pages, and permissions, in a real browser (chromium) against a
real auth-enabled gunicorn tracking service (SQLite; one for this module).

Default permission NO_PERMISSIONS: a new user sees nothing until granted. Data is made through the
API with the admin's basic auth; everything a person would do is done on the pages.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from tests.support.browser import screenshot
from tests.support.mlflow_client import mlflow_pointed_at
from tests.support.services import start_tracking_server

ADMIN = ("admin", "admin-password-1")


@dataclass
class Server:
    url: str

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.url + path, auth=ADMIN, timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def experiment(self, prefix: str) -> tuple[str, str]:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        return self.ok("POST", "/api/2.0/mlflow/experiments/create", json={"name": name})["experiment_id"], name

    def user(self, prefix: str) -> tuple[str, str]:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.ok("POST", "/api/2.0/mlflow/users/create", json={"username": name, "password": name + "-password"})
        return name, name + "-password"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    base = Path(tempfile.mkdtemp(prefix="modelyard-ui-auth-"))
    env = {
        "MODELYARD_AUTH": "true",
        "MODELYARD_ADMIN_USERNAME": ADMIN[0],
        "MODELYARD_ADMIN_PASSWORD": ADMIN[1],
        "MODELYARD_AUTH_DEFAULT_PERMISSION": "NO_PERMISSIONS",
        "MODELYARD_AUTH_MAX_FAILED_LOGINS_PER_ADDRESS": "100000",  # every test signs in from 127.0.0.1
        "MODELYARD_WEBHOOK_DELIVERY": "false",
        "MODELYARD_AUTH_PASSWORD_HASH_TIME_COST": "1",  # the cheapest argon2id: not what is tested here
        "MODELYARD_AUTH_PASSWORD_HASH_MEMORY_KIB": "8192",
    }
    try:
        # One worker: a second costs seconds of start-up and the revocation on every worker of a
        # master is tests/compat/test_auth_mlflow.py's.
        with start_tracking_server(base, env=env, workers=1) as service:
            yield Server(service.url)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def sign_in(page: Any, base: str, user: tuple[str, str], next: str | None = None) -> None:
    page.goto(base + "/login" + (f"?next={quote(next, safe='')}" if next is not None else ""))
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def sign_out(page: Any) -> None:
    with page.expect_navigation():
        page.locator("#account").get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/login")


def forbidden(page: Any, console_errors: list[str], status: int = 403) -> None:
    """The page is the UI's refusal page; the browser logged the status of the load (expected)."""
    assert page.locator("h1").inner_text() == ("Not allowed" if status == 403 else "Sign in needed")
    assert page.locator("nav.side a", has_text="Experiments").count() == 1  # the UI's layout, not JSON
    console_errors[:] = [e for e in console_errors if f"status of {status}" not in e]


def test_admin_creates_a_user_who_reads_but_cannot_change_runs(server: Server, ui_page: Any, console_errors: list[str]) -> None:
    shared, shared_name = server.experiment("shared")
    _, secret_name = server.experiment("secret")
    run = server.ok("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": shared, "run_name": "train"})
    run_id = run["run"]["info"]["run_id"]
    newcomer = (f"new-{uuid.uuid4().hex[:6]}", "newcomer-password-1")

    ui_page.goto(server.url + "/experiments")  # not signed in: off to the sign-in page, and back after
    assert ui_page.url == server.url + "/login?next=%2Fexperiments"
    screenshot(ui_page, "auth-login")
    ui_page.fill("input[name=username]", ADMIN[0])
    ui_page.fill("input[name=password]", ADMIN[1])
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Sign in").click()
    assert ui_page.url == server.url + "/experiments"
    assert ui_page.locator("#account a").first.inner_text() == "admin"

    ui_page.locator("#account").get_by_role("link", name="Admin", exact=True).click()
    ui_page.wait_for_url("**/admin/users")
    ui_page.locator("summary", has_text="New user").click()
    ui_page.fill("#create-user input[name=username]", newcomer[0])
    ui_page.fill("#create-user input[name=password]", newcomer[1])
    with ui_page.expect_navigation():
        ui_page.locator("#create-user").get_by_role("button", name="Create").click()
    assert ui_page.locator(f"#users tr[data-username='{newcomer[0]}']").count() == 1
    screenshot(ui_page, "auth-admin-users")

    ui_page.goto(f"{server.url}/experiments/{shared}")
    ui_page.locator("details.permissions summary").click()
    grant = ui_page.locator("#permissions form.grant-form")
    grant.locator("input[name=who]").fill(newcomer[0])
    grant.locator("select[name=permission]").select_option("READ")
    with ui_page.expect_navigation():
        grant.get_by_role("button", name="Grant").click()
    row = ui_page.locator(f"#grants tr[data-name='{newcomer[0]}']")
    assert row.is_visible() and row.locator(".perm").inner_text() == "READ"  # back, with the section open
    screenshot(ui_page, "auth-experiment-permissions")

    team = f"team-{uuid.uuid4().hex[:6]}"
    ui_page.goto(server.url + "/admin/groups")
    ui_page.locator("summary", has_text="New group").click()
    ui_page.fill("#create-group input[name=name]", team)
    with ui_page.expect_navigation():
        ui_page.locator("#create-group").get_by_role("button", name="Create").click()
    group = ui_page.locator("section.group", has_text=team)
    group.locator("input[name=username]").fill(newcomer[0])
    with ui_page.expect_navigation():
        group.get_by_role("button", name="Add member").click()
    assert ui_page.locator("section.group", has_text=team).locator("ul.members li", has_text=newcomer[0]).count() == 1
    screenshot(ui_page, "auth-admin-groups")
    ui_page.goto(f"{server.url}/admin/permissions?username={newcomer[0]}")
    assert ui_page.locator("#user-grants tr", has_text=f"experiment {shared}").locator(".perm").inner_text() == "READ"
    screenshot(ui_page, "auth-admin-permissions")
    ui_page.locator("#admin-tabs a", has_text="Audit log").click()
    ui_page.wait_for_url("**/admin/audit")
    assert ui_page.locator("#audit tbody tr").first.locator("td:nth-child(3)").inner_text() == "group.add_member"
    screenshot(ui_page, "auth-admin-audit")
    sign_out(ui_page)

    sign_in(ui_page, server.url, newcomer)
    names = ui_page.locator("#experiments tbody td:first-child a").all_inner_texts()
    assert shared_name in names and secret_name not in names
    assert ui_page.locator("#account").get_by_role("link", name="Admin", exact=True).count() == 0
    screenshot(ui_page, "auth-experiments-as-reader")

    ui_page.goto(f"{server.url}/runs/{run_id}")
    ui_page.locator("summary", has_text="Rename").click()
    ui_page.fill("form[action$='/rename'] input[name=name]", "renamed")
    with ui_page.expect_navigation():
        ui_page.locator("form[action$='/rename'] button").click()
    forbidden(ui_page, console_errors)
    assert "needs EDIT" in ui_page.locator("p.error").inner_text()
    screenshot(ui_page, "auth-forbidden")

    ui_page.goto(f"{server.url}/experiments/{shared}")
    assert ui_page.locator("details.permissions").count() == 0  # READ is not MANAGE
    ui_page.locator(f"#run-{run_id} input[type=checkbox]").check()
    ui_page.locator("#delete-selected summary").click()
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Delete selected runs").click()
    forbidden(ui_page, console_errors)
    assert server.ok("GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})["run"]["info"]["run_name"] == "train"
    assert server.ok("GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})["run"]["info"]["lifecycle_stage"] == "active"


def test_a_token_made_on_the_account_page_works_with_mlflow_until_revoked(
    server: Server, ui_page: Any, console_errors: list[str]
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mine, mine_name = server.experiment("mine")
    _, other_name = server.experiment("other")
    user = server.user("tok")
    server.ok(
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        json={"username": user[0], "resource_type": "experiment", "resource_id": mine, "permission": "READ"},
    )
    ui_page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_in(ui_page, server.url, user, next="/account")
    assert ui_page.url == server.url + "/account"
    ui_page.fill("#create-token input[name=name]", "laptop")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Create token").click()
    token = ui_page.locator("#new-token").input_value()
    assert token.startswith("myt_")
    ui_page.get_by_role("button", name="Copy").click()
    ui_page.wait_for_selector("[data-copied-for='new-token']:has-text('Copied.')")
    assert ui_page.evaluate("navigator.clipboard.readText()") == token
    screenshot(ui_page, "auth-account-new-token")

    with mlflow_pointed_at(server.url):
        os.environ["MLFLOW_TRACKING_TOKEN"] = token  # the autouse fixture restores the environment
        client = MlflowClient()
        names = {e.name for e in client.search_experiments()}
        assert mine_name in names and other_name not in names
        assert client.get_experiment(mine).name == mine_name

        ui_page.goto(server.url + "/account")
        assert token not in ui_page.content()  # shown once only
        row = ui_page.locator("#tokens tbody tr", has_text="laptop")
        assert row.locator(".state").inner_text() == "active"
        assert row.locator("td:nth-child(4) time").count() == 1  # last used: just now, by mlflow
        row.locator("summary", has_text="Revoke").click()
        with ui_page.expect_navigation():
            row.get_by_role("button", name="Revoke").click()
        assert "no longer works" in ui_page.locator(".notice").inner_text()
        assert ui_page.locator("#tokens tbody tr", has_text="laptop").locator(".state").inner_text() == "revoked"
        screenshot(ui_page, "auth-account-revoked")
        with pytest.raises(MlflowException, match="401|not authenticated"):
            client.search_experiments()

    sign_out(ui_page)
    ui_page.goto(server.url + "/account")
    assert ui_page.url == server.url + "/login?next=%2Faccount"


def test_sign_in_never_sends_the_browser_off_site(server: Server, ui_page: Any) -> None:
    for attack in ("//evil.example/steal", "https://evil.example/steal", "/\\evil.example"):  # all: tests/unit
        sign_in(ui_page, server.url, ADMIN, next=attack)
        assert ui_page.url == server.url + "/experiments", attack
        ui_page.goto(f"{server.url}/login?next={quote(attack, safe='')}")  # signed in already: on at once
        assert ui_page.url == server.url + "/experiments", attack
        ui_page.context.clear_cookies()


def test_forged_sign_in_forms_are_refused(server: Server, ui_page: Any, console_errors: list[str]) -> None:
    # Same site but without the form's CSRF token: the UI's 403 page, and no session.
    ui_page.goto(server.url + "/login")
    ui_page.locator("input[name=csrf_token]").evaluate("el => el.remove()")
    ui_page.fill("input[name=username]", ADMIN[0])
    ui_page.fill("input[name=password]", ADMIN[1])
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Sign in").click()
    forbidden(ui_page, console_errors)
    assert "did not come from this site" in ui_page.locator("p.error").inner_text()
    assert not [c for c in ui_page.context.cookies() if c["name"] == "modelyard_session"]
    screenshot(ui_page, "auth-login-csrf-refused")
    # Another site's page posting the sign-in form (login CSRF): refused too.
    ui_page.set_content(
        f'<form method="post" action="{server.url}/login"><input name="username" value="{ADMIN[0]}">'
        f'<input name="password" value="{ADMIN[1]}"><button>go</button></form>'
    )
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="go").click()
    assert "Sign in to modelyard" not in ui_page.content()
    assert not [c for c in ui_page.context.cookies() if c["name"] == "modelyard_session"]
    console_errors[:] = [e for e in console_errors if "status of 403" not in e]


def test_a_link_the_mlflow_client_printed_survives_signing_in(server: Server, ui_page: Any) -> None:
    """`/#/experiments/N/runs/ID` with auth on: `/` sends the browser to sign in, whose page forwards the
    fragment to the run's page, which asks to sign in for it; signed in, the run's page opens."""
    experiment, _ = server.experiment("printed")
    run = server.ok("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment, "run_name": "printed"})
    run_id = run["run"]["info"]["run_id"]
    ui_page.goto(f"{server.url}/#/experiments/{experiment}/runs/{run_id}")
    ui_page.wait_for_url(f"{server.url}/login?next=%2Fruns%2F{run_id}")
    ui_page.fill("input[name=username]", ADMIN[0])
    ui_page.fill("input[name=password]", ADMIN[1])
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Sign in").click()
    assert ui_page.url == f"{server.url}/runs/{run_id}"
    assert ui_page.locator("#run-name").inner_text() == "printed"
