"""Permission levels and their resolution (pure logic): user grant > groups (highest) > default; admins bypass."""

from __future__ import annotations

import pytest

from modelyard.auth.cache import SharedCounter, TtlCache
from modelyard.exceptions import ModelyardException
from modelyard.store.auth import permissions as p

E = p.EXPERIMENT


def test_levels_allow_what_mlflow_says() -> None:
    assert [p.READ.can_read, p.READ.can_update, p.READ.can_delete] == [True, False, False]
    assert [p.EDIT.can_read, p.EDIT.can_update, p.EDIT.can_delete, p.EDIT.can_manage] == [True, True, False, False]
    assert all(p.MANAGE.allows(action) for action in p.ACTIONS)
    assert not any(p.NO_PERMISSIONS.allows(action) for action in p.ACTIONS)


def test_unknown_permission_and_resource_type_are_400() -> None:
    with pytest.raises(ModelyardException) as caught:
        p.get_permission("BOGUS")
    assert caught.value.http_status == 400 and "Valid permissions" in caught.value.message
    with pytest.raises(ModelyardException):
        p.validate_resource_type("run")


def test_user_grant_beats_groups_which_beat_the_default() -> None:
    profile = p.GrantProfile(
        is_admin=False,
        user={(E, "1"): p.NO_PERMISSIONS},
        groups={(E, "1"): p.MANAGE, (E, "2"): p.EDIT, (E, p.WILDCARD): p.READ},
    )
    assert profile.permission_for(E, "1", p.MANAGE) is p.NO_PERMISSIONS  # the user's own grant wins
    assert profile.permission_for(E, "2", p.NO_PERMISSIONS) is p.EDIT  # exact group grant over "*"
    assert profile.permission_for(E, "3", p.NO_PERMISSIONS) is p.READ  # "*" over the default
    bare = p.GrantProfile(is_admin=False)
    assert bare.permission_for(E, "3", p.NO_PERMISSIONS) is p.NO_PERMISSIONS
    assert p.GrantProfile(is_admin=True).permission_for(E, "3", p.NO_PERMISSIONS) is p.MANAGE


def test_highest_group_grant_wins_between_exact_and_wildcard() -> None:
    profile = p.GrantProfile(is_admin=False, groups={(E, "1"): p.READ, (E, p.WILDCARD): p.EDIT})
    assert profile.permission_for(E, "1", p.NO_PERMISSIONS) is p.EDIT


@pytest.mark.parametrize("default", [p.READ, p.NO_PERMISSIONS])
def test_visibility_matches_permission_for_every_resource(default: p.Permission) -> None:
    profile = p.GrantProfile(
        is_admin=False,
        user={(E, "1"): p.NO_PERMISSIONS, (E, "2"): p.READ},
        groups={(E, "3"): p.EDIT, (E, "4"): p.NO_PERMISSIONS},
    )
    visible = profile.readable(E, default)
    for rid in ("1", "2", "3", "4", "5"):
        assert visible.allows(rid) == profile.permission_for(E, rid, default).can_read, rid
    if default is p.READ:
        assert visible.only is None and visible.excluded == {"1", "4"}
    else:
        assert visible.only == {"2", "3"}


def test_cache_entries_go_stale_and_vanish_when_the_shared_counter_moves() -> None:
    counter = SharedCounter()
    cache: TtlCache[str] = TtlCache(ttl=60, counter=counter)
    cache.put("k", "v")
    assert cache.get("k") == ("v", True)
    counter.bump()
    assert cache.get("k") == (None, False)
    zero: TtlCache[str] = TtlCache(ttl=0, counter=counter)
    zero.put("k", "v")
    assert zero.get("k") == ("v", False)  # stale but returned, for a cheap re-check
