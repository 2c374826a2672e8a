"""Each params, tags and latest_metrics row carries its run's experiment_id (PostgreSQL), so the
search's indexes on those tables can be led by experiment.

A run search reads one experiment (or a few); its filters and metric orders read the key/value tables.
Indexed by (key, value), such a read covers every experiment's rows of that key: a tag-filtered page
of an unchanged 10,000-run experiment slowed from 33 to 118 ms when a 50,000-run experiment joined the
database (issue #21). Indexed by (experiment_id, key, value) it covers only the experiments searched.

A BEFORE INSERT trigger copies the run's experiment_id onto every new row, whoever inserts it (this
release's store, an older release after a rollback, a bulk COPY, an operator), so the column cannot
drift from `runs` (runs never move between experiments). One index lookup of the run per inserted row:
a log-metric upserts one latest_metrics row. SQLite leaves the column NULL and keeps its
(key, ...) indexes; its searches do not read the column.

A transaction that writes every row's experiment_id itself, from the runs it inserts in the same
transaction (the bulk import, `store/tracking/run_import.py`), sets GIVEN (SET LOCAL ... = on), and
the trigger's WHEN clause skips the function: ~26 rows per imported run, the lookup was ~15% of
PostgreSQL's time for an import.
"""

from __future__ import annotations

#: The tables whose rows carry their run's experiment_id.
TABLES = ("params", "tags", "latest_metrics")
FUNCTION = "modelyard_set_experiment_id"
#: How much of a param or tag value the (experiment_id, key, value) indexes hold: a btree entry is
#: capped at ~2.7 KB and values run to 6,000 (params) and 8,000 (tags) characters. Filters on longer
#: values still use the index (on the prefix) and test the whole value after it.
VALUE_PREFIX = 200
#: Set (locally, to 'on') by a transaction whose inserts carry the right experiment_id themselves.
GIVEN = "modelyard.experiment_ids_given"


def trigger_ddl(table: str) -> list[str]:
    """The function (shared by the three tables) and `table`'s BEFORE INSERT trigger."""
    return [
        f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.experiment_id := (SELECT r.experiment_id FROM runs r WHERE r.run_uuid = NEW.run_uuid);
    RETURN NEW;
END $$""",
        f"CREATE TRIGGER {table}_experiment_id BEFORE INSERT ON {table} FOR EACH ROW "
        f"WHEN (current_setting('{GIVEN}', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION {FUNCTION}()",
    ]
