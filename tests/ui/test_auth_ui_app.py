"""The UI with auth on, through the ASGI app (no browser): sign-in and sign-out, the session cookie,
CSRF on every new form, the account and admin pages, the permissions sections, refusals as HTML
pages, escaping. One app per module on a SQLite file, behind the real auth middleware.

Users: `admin`; `alice` and `bob` (default permission NO_PERMISSIONS); experiment A made by the admin.
Each browser-like client is its own TestClient (its own cookie jar) over the same app. Password
checks are argon2 at its lowest cost, and only the tests about signing in post the sign-in form; the
others start a session directly (`sessions.create`, what the form does after the check).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.auth import passwords, sessions, tokens
from modelyard.entities.auth import SYSTEM
from modelyard.settings import Settings
from modelyard.tracking.app import create_app

BASE = "http://localhost"
ADMIN = ("admin", "admin-password-1")
#: Every other user's password: hashed once for all of them (`World.add_user`).
PASSWORD = "user-password-1"
ALICE = ("alice", PASSWORD)
BOB = ("bob", PASSWORD)


@dataclass
class World:
    app: Any
    api: TestClient  # the admin's API client (a bearer token: no argon2 per request)
    exp_a: str
    password_hash: str

    def browser(self) -> TestClient:
        """A fresh cookie jar on the module's app (its lifespan already ran)."""
        return TestClient(self.app, base_url=BASE)

    def add_user(self, username: str) -> None:
        """A user whose password is PASSWORD."""
        self.app.state.auth.store.create_user(username, self.password_hash, False, "password", SYSTEM)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("auth-ui")
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp / 'db.sqlite'}",
        artifacts_destination=str(tmp / "artifacts"),
        webhook_delivery=False,
        auth=True,
        admin_username=ADMIN[0],
        admin_password=ADMIN[1],
        auth_default_permission="NO_PERMISSIONS",
        auth_max_failed_logins=2,
        auth_password_hash_time_cost=1,  # the cheapest argon2id: these tests are not about its cost
        auth_password_hash_memory_kib=8192,
    )
    with TestClient(create_app(settings), base_url=BASE) as api:
        ctx = api.app.state.auth
        made = tokens.create(ctx, ctx.store.require_user(ADMIN[0]), "tests", SYSTEM)
        api.headers["Authorization"] = f"Bearer {made.secret}"
        world = World(api.app, api, "", passwords.hash_password(PASSWORD))
        for user, _ in (ALICE, BOB):
            world.add_user(user)
        world.exp_a = ok(api.post("/api/2.0/mlflow/experiments/create", json={"name": "A"}))["experiment_id"]
        yield world


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def csrf(client: TestClient) -> str:
    if "modelyard_csrf" not in client.cookies:
        client.get("/login")
    return str(client.cookies["modelyard_csrf"])


def sign_in(client: TestClient, user: tuple[str, str], next: str = "", **headers: str) -> Any:
    form = {"username": user[0], "password": user[1], "next": next, "csrf_token": csrf(client)}
    return client.post("/login", data=form, follow_redirects=False, headers=headers)


def signed_in(world: World, user: tuple[str, str]) -> TestClient:
    """A browser with a session of `user` (as the sign-in form makes it, without the password check)."""
    ctx = world.app.state.auth
    client = world.browser()
    client.cookies.set(sessions.COOKIE_NAME, sessions.create(ctx, ctx.store.require_user(user[0])))
    return client


def post(client: TestClient, path: str, **form: str) -> Any:
    return client.post(path, data={**form, "csrf_token": csrf(client)}, follow_redirects=False)


def is_html_page(response: Any, status: int, heading: str) -> bool:
    return (
        response.status_code == status
        and response.headers["content-type"].startswith("text/html")
        and f"<h1>{heading}</h1>" in response.text
        and "www-authenticate" not in response.headers
    )


# --- signing in and out ---------------------------------------------------------------------------
def test_sign_in_sets_a_strict_session_cookie_and_follows_next(world: World) -> None:
    client = world.browser()
    page = client.get("/login?next=/experiments/0")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text and 'value="/experiments/0"' in page.text
    assert "nav" in page.text and 'href="/models"' not in page.text  # no app nav before signing in
    response = sign_in(client, ALICE, "/experiments/0?view=active")
    assert response.status_code == 303 and response.headers["location"] == "/experiments/0?view=active"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(sessions.COOKIE_NAME + "="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= flags and "secure" not in flags
    assert "samesite=lax" in cookie.lower()
    home = client.get("/experiments")
    assert home.status_code == 200 and 'id="account"' in home.text and ">alice<" in home.text
    assert 'action="/logout"' in home.text and 'href="/admin/users"' not in home.text
    # Behind an HTTPS proxy the cookie is Secure.
    secure = sign_in(world.browser(), ALICE, **{"X-Forwarded-Proto": "https"})
    cookie = next(c for c in secure.headers.get_list("set-cookie") if c.startswith(sessions.COOKIE_NAME + "="))
    assert "; secure" in cookie.lower()


@pytest.mark.parametrize("attack", ["//evil.example/x", "https://evil.example"])  # all cases: tests/unit
def test_sign_in_never_redirects_off_site(world: World, attack: str) -> None:
    response = sign_in(world.browser(), ALICE, attack)
    assert response.status_code == 303 and response.headers["location"] == "/experiments"


def test_sign_in_without_the_csrf_token_is_refused(world: World) -> None:
    client = world.browser()
    client.get("/login")
    forged = client.post("/login", data={"username": ALICE[0], "password": ALICE[1]}, follow_redirects=False)
    assert is_html_page(forged, 403, "Not allowed")
    assert sessions.COOKIE_NAME not in client.cookies
    wrong = client.post(
        "/login", data={"username": ALICE[0], "password": ALICE[1], "csrf_token": "x" * 43}, follow_redirects=False
    )
    assert wrong.status_code == 403 and sessions.COOKIE_NAME not in client.cookies


def test_a_failed_sign_in_does_not_say_whether_the_user_exists(world: World) -> None:
    wrong = sign_in(world.browser(), ("bob", "not-bobs-password"))
    unknown = sign_in(world.browser(), ("<b>nobody</b>", "whatever-password"))
    assert wrong.status_code == unknown.status_code == 401
    message = re.compile(r'<p class="error" role="alert" id="login-error">([^<]*)</p>')
    assert message.findall(wrong.text) == message.findall(unknown.text) == ["Wrong user name or password."]
    assert 'value="&lt;b&gt;nobody&lt;/b&gt;"' in unknown.text and "<b>nobody" not in unknown.text


def test_repeated_failures_lock_the_user_out_with_a_429_page(world: World) -> None:
    world.add_user("carol")
    for _ in range(2):
        assert sign_in(world.browser(), ("carol", "wrong-password-1")).status_code == 401
    locked = sign_in(world.browser(), ("carol", PASSWORD))
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts" in locked.text and sessions.COOKIE_NAME not in locked.cookies


def test_sign_out_ends_the_session_everywhere(world: World) -> None:
    client = signed_in(world, BOB)
    value = client.cookies[sessions.COOKIE_NAME]
    refused = client.post("/logout", follow_redirects=False)  # no CSRF token
    assert refused.status_code == 403
    out = post(client, "/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    cleared = next(c for c in out.headers.get_list("set-cookie") if c.startswith(sessions.COOKIE_NAME + "="))
    assert "max-age=0" in cleared.lower() and "httponly" in cleared.lower()
    stolen = world.browser()
    stolen.cookies.set(sessions.COOKIE_NAME, value)
    again = stolen.get("/experiments", follow_redirects=False)
    assert again.status_code == 302 and again.headers["location"] == "/login?next=%2Fexperiments"


def test_refusals_of_ui_requests_are_html_pages_not_basic_challenges(world: World) -> None:
    anonymous = world.browser()
    form = anonymous.post(f"/experiments/{world.exp_a}/rename", data={"name": "x", "csrf_token": csrf(anonymous)})
    assert is_html_page(form, 401, "Sign in needed") and 'href="/login"' in form.text
    fragment = anonymous.get(f"/experiments/{world.exp_a}/live", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.text.startswith('<p class="error"')
    api = anonymous.get("/api/2.0/mlflow/experiments/search")
    assert api.status_code == 401 and api.headers["www-authenticate"] == 'Basic realm="mlflow"'
    alice = signed_in(world, ALICE)
    page = alice.get(f"/experiments/{world.exp_a}")
    assert is_html_page(page, 403, "Not allowed") and "needs READ" in page.text and ">alice<" in page.text


# --- account: password and tokens -----------------------------------------------------------------
def test_tokens_are_shown_once_listed_and_revoked(world: World) -> None:
    alice = signed_in(world, ALICE)
    made = post(alice, "/account/tokens", name="<i>ci</i>", expires_days="30")
    assert made.status_code == 200
    secret = re.search(r'id="new-token" class="mono" readonly value="(myt_[\w-]{43})"', made.text)
    assert secret is not None and "&lt;i&gt;ci&lt;/i&gt;" in made.text and "<i>ci</i>" not in made.text
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    assert ok(world.api.get("/api/2.0/mlflow/users/current", headers=bearer))["user"]["username"] == "alice"
    listed = alice.get("/account")
    assert secret.group(1) not in listed.text and "&lt;i&gt;ci&lt;/i&gt;" in listed.text
    token_id = re.search(r'data-token-id="(\w+)"', listed.text).group(1)  # type: ignore[union-attr]
    # Someone else's token cannot be revoked from their page, and a bad lifetime is a 400.
    assert post(signed_in(world, BOB), "/account/tokens/revoke", id=token_id).status_code == 404
    assert post(alice, "/account/tokens", name="x", expires_days="99999").status_code == 400
    revoked = post(alice, "/account/tokens/revoke", id=token_id)
    assert revoked.status_code == 303 and revoked.headers["location"] == "/account?done=revoked"
    assert world.api.get("/api/2.0/mlflow/users/current", headers=bearer).status_code == 401
    assert "state-revoked" in alice.get("/account").text


def test_changing_the_password_needs_the_current_one_and_keeps_this_browser_signed_in(world: World) -> None:
    world.add_user("dave")
    dave, other = signed_in(world, ("dave", "")), signed_in(world, ("dave", ""))
    new = "dave-password-2"
    assert post(dave, "/account/password", current_password="nope-nope-nope", password=new, confirm=new).status_code == 403
    assert post(dave, "/account/password", current_password=PASSWORD, password=new, confirm="x").status_code == 400
    short = post(dave, "/account/password", current_password=PASSWORD, password="short", confirm="short")
    assert short.status_code == 400 and "at least 12" in short.text
    done = post(dave, "/account/password", current_password=PASSWORD, password=new, confirm=new)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
    assert "Your password is changed" in dave.get("/account?done=password").text  # a new session here
    assert other.get("/account", follow_redirects=False).status_code == 302  # the other one ended


# --- admin pages ----------------------------------------------------------------------------------
ADMIN_FORMS = [
    ("/admin/users", {"username": "mallory", "password": "mallory-password-1"}),
    ("/admin/users/admin", {"username": "alice", "is_admin": "1"}),
    ("/admin/users/password", {"username": "admin", "password": "taken-over-password"}),
    ("/admin/users/delete", {"username": "bob"}),
    ("/admin/groups", {"name": "evil"}),
    ("/admin/groups/members", {"group_id": "1", "username": "alice", "op": "add"}),
    ("/admin/groups/delete", {"group_id": "1"}),
    ("/admin/permissions", {"resource_type": "experiment", "resource_id": "0", "op": "grant", "who": "alice", "permission": "MANAGE"}),
]


def test_admin_pages_are_for_admins_only(world: World) -> None:
    alice = signed_in(world, ALICE)
    for path in ("/admin/users", "/admin/groups", "/admin/permissions", "/admin/audit"):
        assert is_html_page(alice.get(path), 403, "Not allowed"), path
    for path, form in ADMIN_FORMS:
        assert is_html_page(post(alice, path, **form), 403, "Not allowed"), path
    assert alice.get("/admin/users", follow_redirects=False).status_code == 403
    assert world.browser().get("/admin/users", follow_redirects=False).headers["location"] == "/login?next=%2Fadmin%2Fusers"


def test_every_new_form_needs_the_csrf_token(world: World) -> None:
    admin = signed_in(world, ADMIN)
    forms = [
        *ADMIN_FORMS,
        ("/account/password", {"current_password": ADMIN[1], "password": "x" * 12, "confirm": "x" * 12}),
        ("/account/tokens", {"name": "forged"}),
        ("/account/tokens/revoke", {"id": "0" * 16}),
        (f"/experiments/{world.exp_a}/permissions", {"op": "grant", "who": "bob", "permission": "MANAGE"}),
        ("/logout", {}),
    ]
    for path, form in forms:
        refused = admin.post(path, data=form, follow_redirects=False)
        assert is_html_page(refused, 403, "Not allowed") and "did not come from this site" in refused.text, path
    assert "forged" not in admin.get("/account").text
    assert admin.get("/admin/users").status_code == 200  # still signed in, nothing changed
    assert "mallory" not in admin.get("/admin/users").text


def test_admin_manages_users_groups_and_sees_the_audit_log(world: World) -> None:
    admin = signed_in(world, ADMIN)
    hostile = "<script>alert(1)</script>eve"
    assert post(admin, "/admin/users", username=hostile, password="eve-password-12").status_code == 303
    users = admin.get("/admin/users").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;eve" in users and "<script>alert" not in users
    eve = signed_in(world, (hostile, ""))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;eve" in eve.get("/account").text
    assert post(admin, "/admin/users/admin", username=hostile, is_admin="1").status_code == 303
    assert eve.get("/admin/users").status_code == 200  # admin at once (caches emptied)
    assert post(admin, "/admin/users/admin", username="admin", is_admin="0").status_code == 400  # not oneself
    assert post(admin, "/admin/users/delete", username="admin").status_code == 400
    assert post(admin, "/admin/users/password", username=hostile, password="eve-password-34").status_code == 303
    assert eve.get("/account", follow_redirects=False).status_code == 302  # sessions ended

    assert post(admin, "/admin/groups", name="team-<b>", description="the team").status_code == 303
    groups = admin.get("/admin/groups").text
    group_id = re.search(r'id="group-(\d+)"', groups).group(1)  # type: ignore[union-attr]
    assert "team-&lt;b&gt;" in groups
    assert post(admin, "/admin/groups/members", group_id=group_id, username="bob", op="add").status_code == 303
    assert "bob</span>" in admin.get("/admin/groups").text
    assert post(admin, "/admin/groups/members", group_id=group_id, username="bob", op="remove").status_code == 303
    assert post(admin, "/admin/users/delete", username=hostile).status_code == 303
    assert post(admin, "/admin/groups/delete", group_id=group_id).status_code == 303

    audit = admin.get("/admin/audit").text
    actions = re.findall(r'<td class="mono">([\w.]+)</td>', audit)
    assert actions[:4] == ["group.delete", "user.delete", "group.remove_member", "group.add_member"]  # newest first
    older = admin.get("/admin/audit?before_id=2").text
    assert older.count("data-event-id=") == 1
    # Details as JSON values (null, not Python's None), the whole of them in the cell's tooltip.
    assert "=None" not in audit and 'title="{&#34;' in audit  # quotes escaped inside the attribute


def test_grants_from_a_resource_page_and_the_admin_page(world: World) -> None:
    admin, alice, bob = signed_in(world, ADMIN), signed_in(world, ALICE), signed_in(world, BOB)
    exp = ok(world.api.post("/api/2.0/mlflow/experiments/create", json={"name": "granted"}))["experiment_id"]
    assert bob.get(f"/experiments/{exp}").status_code == 403
    assert 'id="permissions"' in admin.get(f"/experiments/{exp}").text
    back = f"/experiments/{exp}?view=active&perms=1"
    granted = post(admin, f"/experiments/{exp}/permissions", op="grant", who="alice", permission="MANAGE", back=back)
    assert granted.status_code == 303 and granted.headers["location"] == back
    assert '<details class="action permissions" open>' in admin.get(back).text  # back with the section open
    # alice manages it now: she sees the section and grants bob READ, but may not grant to a group.
    page = alice.get(f"/experiments/{exp}").text
    assert 'id="permissions"' in page and 'name="principal" value="user"' in page
    assert post(alice, f"/experiments/{exp}/permissions", op="grant", who="bob", permission="READ").status_code == 303
    assert bob.get(f"/experiments/{exp}").status_code == 200
    assert 'id="permissions"' not in bob.get(f"/experiments/{exp}").text  # READ is not MANAGE
    refused = post(bob, f"/experiments/{exp}/permissions", op="grant", who="bob", permission="MANAGE")
    assert is_html_page(refused, 403, "Not allowed")
    ok(world.api.post("/api/3.0/mlflow/roles/create", json={"name": "readers"}))
    group = post(alice, f"/experiments/{exp}/permissions", op="grant", principal="group", who="readers", permission="READ")
    assert is_html_page(group, 403, "Not allowed")
    # The admin's page lists the grants on the resource and of a user, and changes them.
    listed = admin.get(f"/admin/permissions?resource_type=experiment&resource_id={exp}").text
    assert re.search(r'data-principal="user" data-name="bob">.*?READ', listed, re.S)
    form = {"resource_type": "experiment", "resource_id": exp, "principal": "group", "who": "readers"}
    assert post(admin, "/admin/permissions", op="grant", permission="EDIT", **form).status_code == 303
    assert post(admin, "/admin/permissions", op="grant", permission="READ", **form).status_code == 303  # changed
    listed = admin.get(f"/admin/permissions?resource_type=experiment&resource_id={exp}").text
    assert re.search(r'data-principal="group" data-name="readers">.*?READ', listed, re.S)
    assert post(admin, "/admin/permissions", op="revoke", **form).status_code == 303
    assert post(admin, f"/experiments/{exp}/permissions", op="revoke", who="bob").status_code == 303
    assert bob.get(f"/experiments/{exp}").status_code == 403
    of_alice = admin.get("/admin/permissions?username=alice").text
    assert f"experiment {exp}</a>" in of_alice and "MANAGE" in of_alice
    assert admin.get("/admin/permissions?resource_type=experiment&resource_id=999999").status_code == 404
    assert post(admin, f"/experiments/{exp}/permissions", op="grant", who="nobody", permission="READ").status_code == 404
    assert post(admin, f"/experiments/{exp}/permissions", op="grant", who="bob", permission="ROOT").status_code == 400


def test_model_pages_show_permissions_to_managers_and_hide_unreadable_runs(world: World) -> None:
    admin, alice = signed_in(world, ADMIN), signed_in(world, ALICE)
    run = ok(world.api.post("/api/2.0/mlflow/runs/create", json={"experiment_id": world.exp_a}))["run"]
    run_id = run["info"]["run_id"]
    ok(world.api.post("/api/2.0/mlflow/registered-models/create", json={"name": "m/1"}))
    source = run["info"]["artifact_uri"] + "/model"
    version = {"name": "m/1", "source": source, "run_id": run_id}
    ok(world.api.post("/api/2.0/mlflow/model-versions/create", json=version))
    assert 'id="permissions"' in admin.get("/model?name=m%2F1").text
    assert post(admin, "/model/permissions", name="m/1", op="grant", who="alice", permission="READ").status_code == 303
    model_page = alice.get("/model?name=m%2F1")
    assert model_page.status_code == 200 and 'id="permissions"' not in model_page.text
    version_page = alice.get("/model-version?name=m%2F1&version=1").text
    assert f'href="/runs/{run_id}"' not in version_page  # READ on the model, not on experiment A
    assert f'href="/runs/{run_id}"' in admin.get("/model-version?name=m%2F1&version=1").text


def test_with_auth_off_there_is_nothing_to_sign_in_to(client: TestClient) -> None:
    page = client.get("/experiments").text
    assert 'id="account"' not in page and "/logout" not in page
    assert client.get("/login", follow_redirects=False).headers["location"] == "/experiments"
    missing = client.get("/account")
    assert missing.status_code == 404 and "MODELYARD_AUTH is off" in missing.text
    assert client.get("/admin/users").status_code == 404

