"""Filling a column of existing rows in batches of runs for migrations (PostgreSQL), inside Alembic's
autocommit block: each batch its own short transaction, so writes go on beside the upgrade (a write to a
run being filled waits at most for its batch), and an upgrade stopped half-way is resumed by running it
again (each statement only touches rows not filled yet). Used by migrations 0011 and 0015: changing it
changes what they do."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa


def in_run_batches(bind: sa.Connection, statements: Sequence[str], batch_runs: int, setting: str) -> None:
    """Run each of `statements` once per batch of `batch_runs` runs (in run_uuid order), the batch in
    one transaction with `setting` (a custom setting name) on for it. A statement bounds its rows with
    `t.run_uuid > %(after)s {upper}`: `{upper}` becomes the batch's upper bound (none for the last)."""
    after = ""
    while True:
        until = bind.exec_driver_sql(
            "SELECT run_uuid FROM runs WHERE run_uuid > %(after)s ORDER BY run_uuid OFFSET %(n)s LIMIT 1",
            {"after": after, "n": batch_runs - 1},
        ).scalar()
        upper = "" if until is None else "AND t.run_uuid <= %(until)s"
        bind.exec_driver_sql("BEGIN")
        try:
            bind.exec_driver_sql(f"SET LOCAL {setting} = on")
            for statement in statements:
                bind.exec_driver_sql(statement.format(upper=upper), {"after": after, "until": until})
            bind.exec_driver_sql("COMMIT")
        except BaseException:
            bind.exec_driver_sql("ROLLBACK")
            raise
        if until is None:
            return
        after = until
