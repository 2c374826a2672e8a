"""A run's data in the SQL tracking store: params, tags, metrics (log-batch), dataset inputs.

Writes that two clients may race on (params, tags, metrics, latest metrics) are single upsert
statements, so concurrent log-batch calls on the same run and key never fail; rows are written in key
order so two such transactions take their row locks in the same order and cannot deadlock. Validation
that needs no database happens before the transaction starts; anything that fails inside it rolls the
whole call back. On PostgreSQL a metric-only write is a single autocommitted statement
(`pg_metrics.LOG_METRICS`), which is one transaction by itself and one round trip.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_
from sqlalchemy.orm import Session

from modelyard.entities import Metric, Param, RunTag
from modelyard.exceptions import ModelyardException
from modelyard.protocol import validation
from modelyard.store.logged_models import links
from modelyard.store.sql.dialect import do_nothing, execute_upsert
from modelyard.store.sql.schema import SqlInput, SqlLatestMetric, SqlMetric, SqlParam, SqlTag
from modelyard.store.tracking import pg_metrics
from modelyard.store.tracking.run_checks import run_not_found
from modelyard.store.tracking.sql_sessions import SqlSessions

RUN_NAME_TAG = "mlflow.runName"


_PARAMS: Any = SqlParam.__table__
#: Built once (Core): the values stored for a batch's keys, read back after its insert.
_STORED_PARAMS = select(_PARAMS.c.key, _PARAMS.c.value).where(
    _PARAMS.c.run_uuid == bindparam("run_id"), _PARAMS.c.key.in_(bindparam("keys", expanding=True))
)


class SqlRunData(SqlSessions):
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        metrics, params, tags = list(metrics), list(params), list(tags)
        validation.validate_batch(metrics, params, tags)
        new_name = next((t.value for t in reversed(tags) if t.key == RUN_NAME_TAG), None)
        if new_name is not None:
            validation.validate_run_name(new_name)
        if not (metrics or params or tags):
            with self._read() as session:
                self._require_active_run(session, run_id)
            return
        linked = links.has_model_links(metrics)
        if self._postgres and not (params or tags or linked):
            # The common case (log-metric, metric-only batches): one statement, one round trip.
            self._log_metrics_autocommit(run_id, metrics)
            return
        with self._write() as session:
            if new_name is not None:
                self._active_run(session, run_id, lock=True).name = new_name
            else:
                self._require_active_run(session, run_id, lock=bool(params or tags))
            if params:
                self._insert_params(session, run_id, params)
            if tags:
                self._upsert_tags(session, run_id, tags)
            if metrics:
                self._insert_metrics(session, run_id, metrics)
            if linked:
                links.insert_model_metrics(session, run_id, metrics)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as session:
            self._require_active_run(session, run_id, lock=True)
            result = session.execute(delete(SqlTag).where(SqlTag.run_uuid == run_id, SqlTag.key == key))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelyardException.not_found(f"No tag with name: {key} in run with id {run_id}")

    def log_inputs(self, run_id: str, datasets: Sequence[dict], models: Sequence[dict] = ()) -> None:
        rows = input_rows(datasets)
        with self._write() as session:
            self._require_active_run(session, run_id)
            links.insert_model_inputs(session, run_id, models)
            if not rows:
                return
            execute_upsert(
                session,
                SqlInput,
                [{"run_uuid": run_id, **row} for row in rows],
                _replace_input,
            )

    def _insert_params(self, session: Session, run_id: str, params: list[Param]) -> None:
        wanted = {p.key: p.value for p in params}
        execute_upsert(
            session,
            SqlParam,
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted(wanted.items())],
            _keep_param,
        )
        # Checked after the insert, not before: a concurrent writer's value is visible now, so a
        # conflicting value cannot slip in between a check and our write.
        stored = session.execute(_STORED_PARAMS, {"run_id": run_id, "keys": list(wanted)}).all()
        for key, value in sorted(stored):
            if value != wanted[key]:
                raise ModelyardException.invalid_parameter(
                    f"Changing param values is not allowed. Param with key='{key}' was already logged "
                    f"with value='{value}' for run ID='{run_id}'. Attempted logging new value "
                    f"'{wanted[key]}'."
                )

    def _upsert_tags(self, session: Session, run_id: str, tags: Iterable[RunTag]) -> None:
        latest = {t.key: t.value for t in tags}
        if not latest:
            return
        execute_upsert(
            session,
            SqlTag,
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted(latest.items())],
            _replace_tag,
        )

    def _insert_metrics(self, session: Session, run_id: str, metrics: list[Metric]) -> None:
        """History rows (a retried point is absorbed by the primary key) and, per key, the greatest
        (step, timestamp, value), kept in the database so racing writers agree. The run is active."""
        if self._postgres:
            session.execute(pg_metrics.LOG_METRICS, pg_metrics.metric_columns(run_id, metrics))
            return
        points: dict[tuple[str, int, int, float], bool] = {}
        for m in metrics:
            is_nan = math.isnan(m.value)
            points[(m.key, int(m.step), int(m.timestamp), 0.0 if is_nan else float(m.value))] = is_nan
        ordered = sorted(points.items())
        execute_upsert(
            session,
            SqlMetric,
            [
                {"run_uuid": run_id, "key": k, "step": s, "timestamp": ts, "value": v, "is_nan": nan}
                for (k, s, ts, v), nan in ordered
            ],
            do_nothing,
        )
        best: dict[str, tuple[tuple[int, int, float], bool]] = {}
        for (k, s, ts, v), nan in ordered:
            if k not in best or (s, ts, v) > best[k][0]:
                best[k] = ((s, ts, v), nan)
        execute_upsert(
            session,
            SqlLatestMetric,
            [
                {"run_uuid": run_id, "key": k, "step": s, "timestamp": ts, "value": v, "is_nan": nan}
                for k, ((s, ts, v), nan) in sorted(best.items())
            ],
            _keep_greatest_point,
        )

    def _log_metrics_autocommit(self, run_id: str, metrics: list[Metric]) -> None:
        """PostgreSQL: check the run and write the points in one autocommitted statement.

        A single statement is atomic on its own, so no BEGIN/COMMIT round trips are needed; the
        statement reports whether it found the run active, and only when it did not (nothing was
        written) is the run looked up again to give MLflow's answer: 404 unknown, 400 not active.
        The tracking service awaits the same statement through psycopg's async driver instead
        (`async_writes.AsyncRunWrites`); this is the path of in-process callers, which have no loop.
        """
        columns = pg_metrics.metric_columns(run_id, metrics)
        for _attempt in range(2):
            with self._autocommit.connect() as conn:
                if conn.execute(pg_metrics.LOG_METRICS, columns).scalar_one():
                    return
            with self._read() as session:
                self._require_active_run(session, run_id)
            # Active by now: restored between the two statements. Write again.
        raise run_not_found(run_id)


def _replace_input(stmt: Any) -> Any:
    return stmt.on_conflict_do_update(
        index_elements=["run_uuid", "digest"], set_={"body": stmt.excluded.body}
    )


def _keep_param(stmt: Any) -> Any:
    """The stored value stays; `_insert_params` then refuses a different one."""
    return stmt.on_conflict_do_nothing(index_elements=["run_uuid", "key"])


def _replace_tag(stmt: Any) -> Any:
    return stmt.on_conflict_do_update(index_elements=["run_uuid", "key"], set_={"value": stmt.excluded.value})


def _keep_greatest_point(stmt: Any) -> Any:
    """Replace the stored latest point only by a greater (step, timestamp, value)."""
    new, old = stmt.excluded, stmt.table.c
    return stmt.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={"step": new.step, "timestamp": new.timestamp, "value": new.value, "is_nan": new.is_nan},
        where=tuple_(new.step, new.timestamp, new.value) > tuple_(old.step, old.timestamp, old.value),
    )


def input_rows(datasets: Sequence[dict]) -> list[dict[str, str]]:
    """A run's `inputs` rows ({digest, body}) for log-inputs' dataset items, checked: one row per
    distinct dataset; the same dataset again (say, with new context tags) replaces the earlier one."""
    rows = {}
    for item in datasets:
        dataset = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(dataset, dict) or not dataset.get("name") or not dataset.get("digest"):
            raise ModelyardException.invalid_parameter(
                "Each dataset input needs a 'dataset' with a non-empty 'name' and 'digest'."
            )
        digest = hashlib.sha256(json.dumps(dataset, sort_keys=True).encode()).hexdigest()
        rows[digest] = json.dumps(item, sort_keys=True)
    return [{"digest": d, "body": b} for d, b in sorted(rows.items())]
