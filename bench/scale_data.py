"""The scale benchmark's runs, generated inside PostgreSQL (generate_series), not through the API.

A run i of experiment E gets values derived from hashes of (E, i) (`hashint8extended`, seeded), so every size has the same
distribution and a filter matches the same share of runs at 10,000 and at 1,000,000 (but `lr = '1.000'`,
the same 150 runs at every size: a value rare at 1M that still fills a page at 10k):

| table | rows per run | values |
|---|---|---|
| runs | 1 | `run-<i>`, user `user-<i % 20>`, FAILED when i % 10 = 3 (else FINISHED), deleted when i % 50 = 7, start_time 1 s apart (newest = highest i) |
| params | 4 | `optimizer` (adam/sgd/rmsprop/adagrad), `lr` (`0.000`..`0.999`: 1 run in 1,000 each; `1.000`: 150 runs spread evenly, at every size), `depth` (0..11), `config` (`cfg-<00..99>-<hex>`) |
| tags | 4 | `mlflow.runName`, `mlflow.user`, `team` (`team-0`..`team-6`), `stage` (dev/prod) |
| latest_metrics | 4 | `m0`..`m3`, uniform in [0, 1), step 0 |

`runs.params_json` / `tags_json` are written with the rows (the same text the triggers of
`store/sql/run_docs` build: checked on a sample by `check_documents`). The metric history (`metrics`)
is left empty: searches read `latest_metrics` only. The same runs go into MLflow's schema (`schema=
"mlflow"`: its runs columns, no documents, no experiment_id on the child tables), for MLflow's side.

Loading is `INSERT ... SELECT` with triggers and foreign-key checks off (`session_replication_role =
replica`, this private cluster's superuser) and, for a large load, the tables' indexes dropped first
and built again after (`without_indexes`). Columns
the schema may or may not have (`experiment_id` on the child tables, `start_time` on params and tags)
are filled when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

TABLES = ("runs", "params", "tags", "latest_metrics")
_CHILD_TABLES = ("params", "tags", "latest_metrics")

# One row per run with every generated value; the tables below are filled from it.
_GENERATE = """
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT i, run_uuid, %(t0)s::bigint + i * 1000 AS start_time,
       (ARRAY['adam', 'sgd', 'rmsprop', 'adagrad'])[1 + a %% 4] AS optimizer,
       CASE WHEN i %% (%(n)s / 150) = 0 AND i < 150 * (%(n)s / 150) THEN '1.000'
            ELSE '0.' || lpad((a / 4 %% 1000)::text, 3, '0') END AS lr,
       (a / 4000 %% 12)::text AS depth,
       'cfg-' || lpad((a / 48000 %% 100)::text, 2, '0') || '-' || substr(run_uuid, 1, 12) AS config,
       'team-' || (b %% 7) AS team,
       (ARRAY['dev', 'prod'])[1 + b / 7 %% 2] AS stage,
       (hashint8extended(i, %(e)s * 8 + 2) & 268435455) / 268435456.0 AS m0,
       (hashint8extended(i, %(e)s * 8 + 3) & 268435455) / 268435456.0 AS m1,
       (hashint8extended(i, %(e)s * 8 + 4) & 268435455) / 268435456.0 AS m2,
       (hashint8extended(i, %(e)s * 8 + 5) & 268435455) / 268435456.0 AS m3
FROM (
    SELECT i, md5(%(e)s || ':' || i) AS run_uuid,
           hashint8extended(i, %(e)s * 8) & 2147483647 AS a,
           hashint8extended(i, %(e)s * 8 + 1) & 2147483647 AS b
    FROM generate_series(0, %(n)s - 1) AS i
) AS hashes
"""

_RUNS = """
INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage,
                  artifact_uri, params_json, tags_json)
SELECT run_uuid, 'run-' || i, %(e)s, 'user-' || (i %% 20),
       CASE WHEN i %% 10 = 3 THEN 'FAILED' ELSE 'FINISHED' END, start_time, start_time + 500,
       CASE WHEN i %% 50 = 7 THEN 'deleted' ELSE 'active' END,
       %(root)s || '/' || run_uuid || '/artifacts',
       '[{"key":"config","value":"' || config || '"},{"key":"depth","value":"' || depth
         || '"},{"key":"lr","value":"' || lr || '"},{"key":"optimizer","value":"' || optimizer || '"}]',
       '[{"key":"mlflow.runName","value":"run-' || i || '"},{"key":"mlflow.user","value":"user-'
         || (i %% 20) || '"},{"key":"stage","value":"' || stage || '"},{"key":"team","value":"' || team
         || '"}]'
FROM gen ORDER BY run_uuid
"""

# MLflow 3.17's runs table (`mlflow/store/tracking/dbmodels/models.py`: SqlRun).
_MLFLOW_RUNS = """
INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,
                  end_time, deleted_time, source_version, lifecycle_stage, artifact_uri, experiment_id)
SELECT run_uuid, 'run-' || i, 'LOCAL', '', '', 'user-' || (i %% 20),
       CASE WHEN i %% 10 = 3 THEN 'FAILED' ELSE 'FINISHED' END, start_time, start_time + 500,
       CASE WHEN i %% 50 = 7 THEN start_time + 600 END, '',
       CASE WHEN i %% 50 = 7 THEN 'deleted' ELSE 'active' END,
       %(root)s || '/' || run_uuid || '/artifacts', %(e)s
FROM gen ORDER BY run_uuid
"""

_CHILDREN = {
    "params": (
        "key, value",
        "VALUES ('config', config), ('depth', depth), ('lr', lr), ('optimizer', optimizer)",
    ),
    "tags": (
        "key, value",
        "VALUES ('mlflow.runName', 'run-' || i), ('mlflow.user', 'user-' || (i %% 20)), ('stage', stage), "
        "('team', team)",
    ),
    "latest_metrics": (
        "key, value, timestamp, step, is_nan",
        "VALUES ('m0', m0, start_time, 0, false), ('m1', m1, start_time, 0, false), "
        "('m2', m2, start_time, 0, false), ('m3', m3, start_time, 0, false)",
    ),
}


def has_column(conn: psycopg.Connection, table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
        "AND column_name = %s",
        (table, column),
    ).fetchone()
    return row is not None


def load_experiment(
    conn: psycopg.Connection, experiment_id: int, runs: int, artifact_root: str, t0: int, schema: str = "modelyard"
) -> None:
    """`runs` runs in experiment `experiment_id`, in one transaction (triggers and FK checks off), into
    modelyard's tables or (`schema="mlflow"`) MLflow's."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("SET LOCAL work_mem = '256MB'")
        args = {"e": experiment_id, "n": runs, "t0": t0, "root": artifact_root.rstrip("/")}
        conn.execute(_GENERATE, args)
        conn.execute(_MLFLOW_RUNS if schema == "mlflow" else _RUNS, args)
        for table, (columns, values) in _CHILDREN.items():
            extra, value = ("", "")
            if has_column(conn, table, "experiment_id"):
                extra, value = (", experiment_id", ", %(e)s")
            if has_column(conn, table, "start_time"):  # params and tags from migration 0015
                extra, value = (f"{extra}, start_time", f"{value}, start_time")
            conn.execute(
                f"INSERT INTO {table} (run_uuid, {columns}{extra}) "
                f"SELECT run_uuid, v.*{value} FROM gen CROSS JOIN LATERAL ({values}) AS v",
                args,
            )


@contextmanager
def without_indexes(conn: psycopg.Connection) -> Iterator[None]:
    """(`conn` in autocommit mode.) Drop the loaded tables' indexes that no constraint owns and the child tables' primary keys
    (nothing refers to them), and build them again after: a sorted build is several times faster than
    as many inserts into each index. (`runs` keeps its primary key, which foreign keys refer to: its
    rows go in in key order.)"""
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        (list(TABLES),),
    ).fetchall()
    keys = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'p' AND conrelid::regclass::text = ANY(%s)",
        (list(_CHILD_TABLES),),
    ).fetchall()
    with conn.transaction():
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for table, name, _definition in keys:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    try:
        yield
    finally:
        with conn.transaction():
            conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for table, name, definition in keys:
                conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for _name, definition in indexes:
                conn.execute(definition)


def vacuum_analyze(conn: psycopg.Connection) -> None:
    """Statistics and visibility maps for the loaded tables, as autovacuum would leave them (`conn` in
    autocommit mode)."""
    for table in TABLES:
        conn.execute(f"VACUUM (ANALYZE) {table}")


def check_documents(conn: psycopg.Connection, experiment_id: int, sample: int = 200) -> None:
    """The generated params_json / tags_json equal what the triggers would write, on a sample of runs."""
    from modelyard.store.sql.run_docs import PARAMS_JSON, TAGS_JSON

    differ = conn.execute(
        f"SELECT count(*) FROM (SELECT * FROM runs WHERE experiment_id = %s LIMIT %s) AS runs "
        f"WHERE params_json IS DISTINCT FROM {PARAMS_JSON} OR tags_json IS DISTINCT FROM {TAGS_JSON}",
        (experiment_id, sample),
    ).fetchone()
    assert differ is not None and differ[0] == 0, f"{differ[0] if differ else '?'} generated documents differ"
