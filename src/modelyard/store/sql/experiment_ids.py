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

`params` and `tags` rows also carry their run's start_time (migration 0015; the same trigger, its
function START_FUNCTION), after the value in their (experiment_id, key, value prefix) indexes, so one
value's runs are an index range in the default search order (start_time DESC NULLS LAST, run_uuid): a
page filtered by a rare value reads its runs in that order and stops at the page
(`store/tracking/sql_anchors.py`) instead of reading every match's runs row to sort them. A run's
start_time never changes after it is created (no write path sets it again: update-run takes status,
end time and name; restore and delete change the lifecycle stage), so the copy cannot go stale.

A transaction that writes every row's experiment_id (and start_time) itself, from the runs it inserts in the same
transaction (the bulk import, `store/tracking/run_import.py`), sets GIVEN (SET LOCAL ... = on), and
the trigger's WHEN clause skips the function: ~26 rows per imported run, the lookup was ~15% of
PostgreSQL's time for an import.
"""

from __future__ import annotations

#: The tables whose rows carry their run's experiment_id.
TABLES = ("params", "tags", "latest_metrics")
#: The tables whose rows also carry their run's start_time.
START_TABLES = ("params", "tags")
FUNCTION = "modelyard_set_experiment_id"
START_FUNCTION = "modelyard_set_experiment_id_start_time"
#: How much of a param or tag value the (experiment_id, key, value) indexes hold: a btree entry is
#: capped at ~2.7 KB and values run to 6,000 (params) and 8,000 (tags) characters. Filters on longer
#: values still use the index (on the prefix) and test the whole value after it.
VALUE_PREFIX = 200
#: Set (locally, to 'on') by a transaction whose inserts carry the right experiment_id themselves.
GIVEN = "modelyard.experiment_ids_given"


#: The trigger functions: experiment_id (latest_metrics), experiment_id and start_time (params, tags).
FUNCTIONS = {
    FUNCTION: """CREATE OR REPLACE FUNCTION modelyard_set_experiment_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.experiment_id := (SELECT r.experiment_id FROM runs r WHERE r.run_uuid = NEW.run_uuid);
    RETURN NEW;
END $$""",
    START_FUNCTION: """CREATE OR REPLACE FUNCTION modelyard_set_experiment_id_start_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.experiment_id, r.start_time INTO NEW.experiment_id, NEW.start_time FROM runs r
    WHERE r.run_uuid = NEW.run_uuid;
    RETURN NEW;
END $$""",
}


def trigger_ddl(table: str) -> list[str]:
    """`table`'s trigger function and its BEFORE INSERT trigger."""
    function = START_FUNCTION if table in START_TABLES else FUNCTION
    return [
        FUNCTIONS[function],
        f"CREATE TRIGGER {table}_experiment_id BEFORE INSERT ON {table} FOR EACH ROW "
        f"WHEN (current_setting('{GIVEN}', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION {function}()",
    ]
