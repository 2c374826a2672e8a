"""The auth store and domain functions on SQLite and PostgreSQL: users, groups, grants, tokens,
sessions, the audit log and the admin bootstrap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from modelyard.auth import accounts, passwords, sessions, tokens
from modelyard.auth.cache import SharedCounter
from modelyard.auth.context import AuthConfig, AuthContext
from modelyard.entities.auth import CLI, Actor
from modelyard.exceptions import ModelyardException
from modelyard.settings import Settings
from modelyard.store.auth import audit, permissions
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import upgrade

PASSWORD = "correct-horse-battery"


@pytest.fixture
def engine(db_uri: str) -> Iterator[Engine]:
    engine = create_engine_for(db_uri)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ctx(engine: Engine) -> Iterator[AuthContext]:
    # Cheap argon2id parameters: the defaults cost ~0.5 s per hash on a loaded 2-core machine.
    passwords.configure(time_cost=1, memory_kib=8192)
    yield AuthContext.open(engine, AuthConfig(default_permission=permissions.NO_PERMISSIONS), SharedCounter())
    passwords.configure(time_cost=3, memory_kib=65536)


def test_users_passwords_and_the_audit_log(ctx: AuthContext) -> None:
    alice = accounts.create_user(ctx, "alice", PASSWORD, CLI)
    assert alice.password_hash is not None and alice.password_hash.startswith("$argon2id$")
    assert "password_hash" not in alice.to_dict()
    assert accounts.verify_password(ctx, "alice", PASSWORD) == alice
    assert accounts.verify_password(ctx, "alice", PASSWORD + "x") is None
    assert accounts.verify_password(ctx, "nobody", PASSWORD) is None
    with pytest.raises(ModelyardException) as caught:
        accounts.create_user(ctx, "alice", PASSWORD, CLI)
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(ModelyardException, match="at least 12"):
        accounts.create_user(ctx, "bob", "short", CLI)
    accounts.change_password(ctx, "alice", "another-long-password", Actor("admin", "10.0.0.1"))
    assert accounts.verify_password(ctx, "alice", PASSWORD) is None
    events = audit.list_events(ctx.store.engine)
    assert [(e.action, e.target, e.actor) for e in events[:2]] == [
        ("user.update_password", "alice", "admin"),
        ("user.create", "alice", "cli"),
    ]
    assert events[0].address == "10.0.0.1" and PASSWORD not in str([e.to_dict() for e in events])


def test_grants_groups_and_permission_for(ctx: AuthContext) -> None:
    alice = accounts.create_user(ctx, "alice", PASSWORD, CLI)
    team = ctx.store.create_group("team", "ml team", CLI)
    ctx.store.add_member(team.group_id, "alice", CLI)
    ctx.store.add_group_grant(team.group_id, permissions.EXPERIMENT, "*", "READ", CLI)
    ctx.store.add_group_grant(team.group_id, permissions.REGISTERED_MODEL, "m1", "EDIT", CLI)
    ctx.store.grant_user("alice", permissions.EXPERIMENT, "7", "MANAGE", CLI)
    me = accounts.identity_of(ctx, alice, "basic")
    assert me.groups == ("team",)
    assert ctx.permission_for(me, permissions.EXPERIMENT, "7") is permissions.MANAGE
    assert ctx.permission_for(me, permissions.EXPERIMENT, "8") is permissions.READ  # the group's "*"
    assert ctx.permission_for(me, permissions.REGISTERED_MODEL, "m1") is permissions.EDIT
    assert ctx.permission_for(me, permissions.REGISTERED_MODEL, "m2") is permissions.NO_PERMISSIONS  # default
    with pytest.raises(ModelyardException) as caught:
        ctx.store.grant_user("alice", permissions.EXPERIMENT, "7", "READ", CLI)
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    # A revoke is seen at once (the change counter empties the cached profile).
    ctx.store.revoke_user("alice", permissions.EXPERIMENT, "7", CLI)
    assert ctx.permission_for(me, permissions.EXPERIMENT, "7") is permissions.READ
    ctx.store.rename_resource(permissions.REGISTERED_MODEL, "m1", "m1-renamed", CLI)
    assert ctx.permission_for(me, permissions.REGISTERED_MODEL, "m1-renamed") is permissions.EDIT
    assert [g.name for g in ctx.store.list_groups(user_id=alice.user_id)] == ["team"]
    ctx.store.delete_group(team.group_id, CLI)
    assert ctx.permission_for(me, permissions.EXPERIMENT, "8") is permissions.NO_PERMISSIONS
    # SSO groups named by the proxy count without a membership row.
    sso_group = ctx.store.create_group("sso-team", None, CLI)
    ctx.store.add_group_grant(sso_group.group_id, permissions.EXPERIMENT, "9", "EDIT", CLI)
    sso = accounts.identity_of(ctx, alice, "sso", sso_groups=("sso-team",))
    assert ctx.permission_for(sso, permissions.EXPERIMENT, "9") is permissions.EDIT


def test_tokens_are_shown_once_stored_hashed_and_revocable(ctx: AuthContext) -> None:
    alice = accounts.create_user(ctx, "alice", PASSWORD, CLI)
    made = tokens.create(ctx, alice, "laptop", CLI)
    assert made.secret is not None and tokens.looks_like_token(made.secret)
    assert "token" in made.to_dict()
    listed = tokens.list_for(ctx, alice)
    assert [t.token_id for t in listed] == [made.token_id] and listed[0].secret is None
    found = tokens.verify(ctx, made.secret)
    assert found is not None and found[1].username == "alice"
    assert tokens.list_for(ctx, alice)[0].last_used_time is not None
    assert tokens.verify(ctx, made.secret[:-1] + ("A" if made.secret[-1] != "A" else "B")) is None
    tokens.revoke(ctx, made.token_id, CLI)
    assert tokens.verify(ctx, made.secret) is None and not tokens.still_active(ctx, made.token_id)
    with pytest.raises(ModelyardException, match="future"):
        tokens.create(ctx, alice, "old", CLI, expiry_time=1)


def test_sessions_and_deleting_a_user_ends_everything(ctx: AuthContext) -> None:
    alice = accounts.create_user(ctx, "alice", PASSWORD, CLI)
    value = sessions.create(ctx, alice)
    assert sessions.verify(ctx, value) == alice
    sessions.destroy(ctx, value)
    assert sessions.verify(ctx, value) is None
    value = sessions.create(ctx, alice)
    made = tokens.create(ctx, alice, "t", CLI)
    ctx.store.delete_user("alice", CLI)
    assert sessions.verify(ctx, value) is None and tokens.verify(ctx, made.secret or "") is None


def test_admin_bootstrap_refuses_to_start_without_an_admin(ctx: AuthContext, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(accounts.NoAdminError, match="no admin"):
        accounts.ensure_admin(ctx, Settings(auth=True))
    with pytest.raises(accounts.NoAdminError, match="has no password"):
        accounts.ensure_admin(ctx, Settings(auth=True, admin_username="root"))
    secret = tmp_path / "admin-password"
    secret.write_text(PASSWORD + "\n")
    accounts.ensure_admin(ctx, Settings(auth=True, admin_username="root", admin_password_file=str(secret)))
    assert accounts.verify_password(ctx, "root", PASSWORD) is not None
    accounts.ensure_admin(ctx, Settings(auth=True, admin_username="root"))  # exists: left alone
    assert ctx.store.count_admins() == 1


def test_failed_sign_ins_lock_a_user_out_for_a_while(ctx: AuthContext) -> None:
    from dataclasses import replace

    from modelyard.auth import rate_limit

    ctx.config = replace(ctx.config, max_failed_logins=3, max_failed_logins_per_address=100, lockout_seconds=1)
    for _ in range(3):
        rate_limit.check(ctx, "alice", "10.0.0.9")
        rate_limit.failed(ctx, "alice", "10.0.0.9")
    with pytest.raises(rate_limit.TooManyAttempts) as caught:
        rate_limit.check(ctx, "alice", "10.0.0.9")
    assert caught.value.http_status == 429 and caught.value.retry_after == 1
    rate_limit.check(ctx, "bob", "10.0.0.8")  # another user, another address: not locked
    assert ctx.store.failures(["addr:10.0.0.9"]) == {"addr:10.0.0.9": (pytest.approx(0, abs=10**13), 3)}
    import time

    time.sleep(1.1)
    rate_limit.check(ctx, "alice", "10.0.0.9")  # the lockout ended
    rate_limit.failed(ctx, "alice", "10.0.0.9")
    assert ctx.store.failures(["user:alice"])["user:alice"][1] == 1  # counting starts again


def test_sso_headers_count_only_from_trusted_proxies(ctx: AuthContext) -> None:
    import asyncio
    import ipaddress
    from dataclasses import replace

    from modelyard.auth.identify import identify

    ctx.config = replace(ctx.config, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    team = ctx.store.create_group("ml", None, CLI)
    ctx.store.add_group_grant(team.group_id, permissions.EXPERIMENT, "4", "EDIT", CLI)
    headers = {b"x-forwarded-user": b"sam@example.com", b"x-forwarded-groups": b"ml, other"}
    proxy = {"type": "http", "client": ("10.1.2.3", 4000)}
    stranger = {"type": "http", "client": ("192.168.1.9", 4000)}
    assert asyncio.run(identify(ctx, stranger, headers)) is None  # the header alone proves nothing
    sam = asyncio.run(identify(ctx, proxy, headers))
    assert sam is not None and sam.username == "sam@example.com" and sam.method == "sso"
    assert sam.groups == ("ml", "other")
    assert ctx.store.require_user("sam@example.com").kind == "sso"  # created on first sight
    assert ctx.permission_for(sam, permissions.EXPERIMENT, "4") is permissions.EDIT  # the group's grant
    assert ctx.permission_for(sam, permissions.EXPERIMENT, "5") is permissions.NO_PERMISSIONS  # the default


def test_a_service_with_auth_on_refuses_to_start_without_an_admin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from modelyard.tracking.app import create_app

    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifacts_destination=str(tmp_path), auth=True
    )
    with pytest.raises(accounts.NoAdminError, match="no admin user"):
        create_app(settings)
