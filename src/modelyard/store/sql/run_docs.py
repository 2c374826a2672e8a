"""Each run's params and tags as their REST JSON text, kept on the run's row by PostgreSQL triggers.

A search page's JSON read each run's params and tags from their tables: ~15 index lookups per run,
about a quarter of a 100-run page's time in PostgreSQL. Params never change once logged and tags
seldom do, so `runs.params_json` / `runs.tags_json` hold their JSON arrays
(`[{"key":..,"value":..},...]`, ordered by key, NULL when there are none), and the page reads them
with the row it already fetches (`tracking/run_json`).

Statement-level triggers on `params` and `tags` rewrite the arrays of the runs a statement touched,
from the tables, in the writer's transaction: whoever writes (this release's store, an older release
after a rollback, a bulk COPY, an operator's fix-up), the arrays cannot drift from the tables. Under
READ COMMITTED a trigger's UPDATE that waits for another writer's lock on the run's row finishes with
the snapshot it started with and would drop that writer's rows, so the store locks the run's row
(FOR NO KEY UPDATE, which metric writes' foreign-key checks do not wait on) before it writes params or
tags: writers of one run take turns, and each sees the rows of the one before.

SQLite's searches load params and tags from their tables (it has no `to_json` or ordered
`string_agg`): the columns stay NULL there and there are no triggers.
"""

from __future__ import annotations

#: A run's params as a JSON array, ordered by key (the entity path's order), over rows `p` with its
#: params (key, value): what `string_agg` makes of them, NULL when there are none. Strings go through
#: to_json, which escapes as JSON requires. The bulk import aggregates the rows it is about to insert
#: with the same expression (`store/tracking/run_import.py`).
PARAMS_ARRAY = """'[' || string_agg('{"key":' || to_json(p.key)::text || ',"value":'
    || to_json(p.value)::text || '}', ',' ORDER BY p.key) || ']'"""
#: The same for tags `t` (a NULL value is spelled "", as the entity does).
TAGS_ARRAY = """'[' || string_agg('{"key":' || to_json(t.key)::text || ',"value":'
    || to_json(coalesce(t.value, ''))::text || '}', ',' ORDER BY t.key) || ']'"""
#: The params array of the `runs` row in scope, from the table.
PARAMS_JSON = f"(SELECT {PARAMS_ARRAY}\n    FROM params p WHERE p.run_uuid = runs.run_uuid)"
#: The same for tags.
TAGS_JSON = f"(SELECT {TAGS_ARRAY}\n    FROM tags t WHERE t.run_uuid = runs.run_uuid)"

#: A transaction that changes params or tags rows but no key or value (migration 0011 filling their
#: experiment_id), or that wrote the arrays itself with the rows (the bulk import), sets this (SET
#: LOCAL ... = on), and the triggers leave the arrays as they are.
UNCHANGED_DOCUMENTS = "modelyard.unchanged_run_docs"

#: Every run's arrays from its tables (the migration that added the columns fills them with it).
REFRESH_ALL = f"UPDATE runs SET params_json = {PARAMS_JSON}, tags_json = {TAGS_JSON}"


def trigger_ddl(table: str) -> list[str]:
    """The function and the three statement-level triggers that keep `<table>_json` (table: params or
    tags) of the runs each INSERT, UPDATE, DELETE or COPY touched. A trigger with a transition table
    serves one event, hence three."""
    column, document = {"params": ("params_json", PARAMS_JSON), "tags": ("tags_json", TAGS_JSON)}[table]
    function = f"modelyard_refresh_{column}"
    statements = [
        f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{UNCHANGED_DOCUMENTS}', true) = 'on' THEN
        RETURN NULL;
    END IF;
    UPDATE runs SET {column} = {document} WHERE run_uuid IN (SELECT run_uuid FROM changed_rows);
    RETURN NULL;
END $$"""
    ]
    for event, rows in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        statements.append(
            f"CREATE TRIGGER {table}_json_{event.lower()} AFTER {event} ON {table} "
            f"REFERENCING {rows} TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return statements
