"""Metric points on PostgreSQL in ONE statement, shared by the sync store and the async writer.

`SqlTrackingStore` runs `LOG_METRICS` through SQLAlchemy (autocommitted for a metric-only write, or inside
the transaction of a mixed batch); `AsyncRunWrites` sends the same statement straight through psycopg's
AsyncConnection (`LOG_METRICS_SQL`, psycopg's `%(name)s` placeholders). Both bind `metric_columns()`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg

from modelyard.entities import Metric
from modelyard.store.sql.dialect import pg_array_literal

#: A batch of metric points on PostgreSQL, in one statement: check that the run is active, insert the
#: points into the history (ON CONFLICT DO NOTHING: the key includes the value, so a retried point is
#: absorbed) and keep, per key, the greatest (step, timestamp, value) in latest_metrics, counting the
#: write in its history_version (also when its points are older than the latest: a stored chart series
#: of the history is then out of date, see metric_series). Rows go in in key order, so two writers on
#: the same run take their row locks in the same order (no deadlock).
#: The points arrive as five array parameters in PostgreSQL's array text form (`pg_array_literal`).
#: It returns 1 when the run was found active (and the points written), else 0 and writes nothing.
LOG_METRICS = text(
    """
WITH run AS (
    SELECT run_uuid FROM runs WHERE run_uuid = :run_uuid AND lifecycle_stage = 'active'
),
points AS (
    SELECT run.run_uuid, p.key, p.step, p.timestamp, p.value, p.is_nan
    FROM run, unnest(
        CAST(:keys AS text[]), CAST(:steps AS bigint[]), CAST(:timestamps AS bigint[]),
        CAST(:vals AS float8[]), CAST(:nans AS boolean[])
    ) AS p(key, step, timestamp, value, is_nan)
),
history AS (
    INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan)
    SELECT * FROM points ORDER BY key, step, timestamp, value
    ON CONFLICT DO NOTHING
),
latest AS (
    INSERT INTO latest_metrics AS old (run_uuid, key, step, timestamp, value, is_nan)
    SELECT DISTINCT ON (key) * FROM points ORDER BY key, step DESC, timestamp DESC, value DESC
    ON CONFLICT (run_uuid, key) DO UPDATE
    SET step = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (old.step, old.timestamp, old.value)
            THEN excluded.step ELSE old.step END,
        timestamp = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (old.step, old.timestamp, old.value)
            THEN excluded.timestamp ELSE old.timestamp END,
        value = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (old.step, old.timestamp, old.value)
            THEN excluded.value ELSE old.value END,
        is_nan = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (old.step, old.timestamp, old.value)
            THEN excluded.is_nan ELSE old.is_nan END,
        history_version = old.history_version + 1
)
SELECT count(*) FROM run
"""
)


def metric_columns(run_id: str, metrics: Sequence[Metric]) -> dict[str, str]:
    """`LOG_METRICS`'s parameters. NaN is stored as value 0 with is_nan set (as on SQLite,
    which cannot hold NaN), so that the history key and the latest-point comparison stay total."""
    values = [float(m.value) for m in metrics]
    return {
        "run_uuid": run_id,
        "keys": pg_array_literal([m.key for m in metrics], str),
        "steps": pg_array_literal([m.step for m in metrics], int),
        "timestamps": pg_array_literal([m.timestamp for m in metrics], int),
        "vals": pg_array_literal([0.0 if v != v else v for v in values], float),
        "nans": pg_array_literal([v != v for v in values], bool),
    }


#: `LOG_METRICS` as psycopg reads it, for callers that bypass SQLAlchemy.
LOG_METRICS_SQL = str(LOG_METRICS.compile(dialect=psycopg.dialect()))
#: The run's lifecycle stage, asked only when `LOG_METRICS` wrote nothing, to tell 404 from 400.
RUN_STAGE_SQL = "SELECT lifecycle_stage FROM runs WHERE run_uuid = %(run_uuid)s"
