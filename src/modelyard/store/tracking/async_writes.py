"""Run writes for the tracking service's event loop: the hot metric writes without a thread hop.

log-metric and metric-only log-batch are the requests clients send most, and on PostgreSQL each is one
short autocommitted statement (`pg_metrics.LOG_METRICS`). Through the sync store that statement cost a
thread-pool hop and SQLAlchemy's execution layer, each about as much CPU as the statement's own round
trip. Here it goes through psycopg's AsyncConnection from a small per-worker pool (`AsyncPgPool`), so the
event loop awaits the database instead of blocking on it: while one write waits on a lock or a slow
server, the worker keeps answering every other request.

Everything else (a batch with params or tags, SQLite, or the async pool turned off) runs the sync
store's `log_batch` in the thread pool, as a plain `def` endpoint would. Both paths are needed: the sync
store is also the in-process API (`SqlTrackingStore` behind a `postgresql://` tracking URI), which has
no event loop. The answers are the same on both paths: validation errors, 404 for an unknown run, 400
for one that is not active, SQLAlchemy's DataError (400) / OperationalError (503) for what the database
refuses or cannot do, and the pool's TimeoutError (503).

Server-only: needs psycopg and anyio (the `server` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
from anyio.to_thread import run_sync
from sqlalchemy.exc import DBAPIError

from modelyard.entities import Metric, Param, RunTag
from modelyard.protocol import validation
from modelyard.store.logged_models.links import has_model_links
from modelyard.store.sql.async_pool import AsyncPgPool
from modelyard.store.tracking import pg_metrics
from modelyard.store.tracking.base import TrackingStore
from modelyard.store.tracking.run_checks import require_active_run, run_not_found

_log = logging.getLogger(__name__)


class AsyncRunWrites:
    """`log_batch` for async callers; metric-only batches go through `pool` when there is one."""

    def __init__(self, store: TrackingStore, pool: AsyncPgPool | None = None) -> None:
        self.store = store
        self.pool = pool

    async def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        if self.pool is not None and metrics and not (params or tags) and not has_model_links(metrics):
            await _log_metrics(self.pool, run_id, metrics)
        else:
            await run_sync(lambda: self.store.log_batch(run_id, metrics=metrics, params=params, tags=tags))

    async def warm_up(self) -> None:
        """Open the pool's first connection (the tracking app runs this as the worker starts). A
        database that cannot be reached yet is not an error here: the first write will say so."""
        if self.pool is None:
            return
        try:
            await self.pool.open_one()
        except Exception as exc:  # noqa: BLE001 - the first request reports it with the right status
            _log.info("async metric pool: no connection opened at start-up: %s", exc)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


async def _log_metrics(pool: AsyncPgPool, run_id: str, metrics: Sequence[Metric]) -> None:
    """`SqlTrackingStore._log_metrics_autocommit`, awaited: one statement that writes the points if
    the run is active; only when it wrote nothing is the run's stage read, for MLflow's answer."""
    validation.validate_batch(metrics, [], [])
    columns = pg_metrics.metric_columns(run_id, metrics)
    for _attempt in range(2):
        sql = pg_metrics.LOG_METRICS_SQL
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(sql, columns)
                written = await cursor.fetchone()
                if written and written[0]:
                    return
                sql = pg_metrics.RUN_STAGE_SQL
                cursor = await conn.execute(sql, {"run_uuid": run_id})
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            # The exception the sync store raises for the same failure (DataError for a value
            # PostgreSQL refuses, OperationalError for a server that is down or lost...), so one set of
            # error handlers gives both paths the same answers.
            raise DBAPIError.instance(sql, columns, exc, psycopg.Error) from exc
        require_active_run(run_id, row[0] if row else None)
        # Active by now: restored between the two statements. Write again.
    raise run_not_found(run_id)
