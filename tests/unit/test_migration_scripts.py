"""What the migration scripts declare about older releases (pure: reads the shipped scripts only)."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from modelyard.store.sql import migrate


@pytest.fixture
def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def test_every_migration_says_whether_the_release_before_it_keeps_working(script: ScriptDirectory) -> None:
    undeclared = [
        step.revision
        for step in script.walk_revisions()
        if step.down_revision is not None
        and not isinstance(getattr(step.module, "backward_compatible", None), bool)
    ]
    assert undeclared == [], "each migration must set `backward_compatible = True/False`"


def test_the_history_is_one_line(script: ScriptDirectory) -> None:
    # `migrate` treats "a revision this release knows" as "at or before its head": one branch only.
    assert len(script.get_heads()) == 1


def test_oldest_compatible_walks_back_over_additive_steps(
    script: ScriptDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = script.get_current_head()
    assert head is not None
    assert migrate.oldest_compatible_revision(head, script) == "0001"
    monkeypatch.setattr(script.get_revision("0005").module, "backward_compatible", False)
    assert migrate.oldest_compatible_revision(head, script) == "0005"
    assert migrate.oldest_compatible_revision("0004", script) == "0001"
    monkeypatch.setattr(script.get_revision(head).module, "backward_compatible", False)
    assert migrate.oldest_compatible_revision(head, script) == head
