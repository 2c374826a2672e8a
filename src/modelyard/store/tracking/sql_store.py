"""The tracking store on SQLite or PostgreSQL, with MLflow's semantics.

Every public method is one transaction. Writes that two clients may race on (params, tags, metrics,
latest metrics) are single upsert statements, so concurrent log-batch calls on the same run and key
never fail; rows are written in key order so two such transactions take their row locks in the same
order and cannot deadlock. Validation that needs no database happens before the transaction starts;
anything that fails inside it rolls the whole call back. On PostgreSQL a metric-only write is a single
autocommitted statement (`pg_metrics.LOG_METRICS`), which is one transaction by itself and one round trip.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from math import isfinite
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.entities import (
    Experiment,
    ExperimentTag,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    ViewType,
)
from modelyard.entities.run import float_to_json
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits, validation
from modelyard.settings import DEFAULT_LOCAL_ARTIFACT_ROOT
from modelyard.store.logged_models import links
from modelyard.store.logged_models.outputs import load_model_outputs
from modelyard.store.search.paging import decode_position, next_keyset_page, query_fingerprint
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.dialect import execute_upsert, upsert_insert
from modelyard.store.sql.engine import READ_ONLY, create_engine_for, is_sqlite
from modelyard.store.sql.rows import fetch_tuples
from modelyard.store.sql.schema import (
    SqlExperiment,
    SqlExperimentTag,
    SqlInput,
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from modelyard.store.tracking import artifact_locations, pg_metrics
from modelyard.store.tracking.base import TrackingStore
from modelyard.store.tracking.run_checks import require_active_run, run_not_found
from modelyard.store.tracking.run_names import generate_run_name
from modelyard.store.webhooks import outbox

RUN_NAME_TAG = "mlflow.runName"
DEFAULT_EXPERIMENT_ID = 0
_INT32_MAX = 2**31 - 1
#: A history page token's sort key: (step, timestamp, stored value).
_HISTORY_KEY_TYPES = ("int", "int", "float")

if TYPE_CHECKING:
    import orjson  # server-only: the base install (embedded SQLite) has no orjson


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqlTrackingStore(TrackingStore):
    def __init__(
        self,
        engine: Engine,
        default_artifact_root: str,
        allowed_artifact_roots: tuple[str, ...] = (),
    ) -> None:
        self.engine = engine
        self._read_engine = engine.execution_options(**READ_ONLY)
        self._postgres = engine.dialect.name == "postgresql"
        # Single-statement writes skip BEGIN/COMMIT (two round trips); shares the engine's pool.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.default_artifact_root = artifact_locations.resolve_root(default_artifact_root)
        self.allowed_artifact_roots = tuple(allowed_artifact_roots)

    @classmethod
    def from_uri(
        cls,
        uri: str,
        default_artifact_root: str | None = None,
        allowed_artifact_roots: tuple[str, ...] = (),
        pool_size: int = 5,
        max_overflow: int = 10,
    ) -> SqlTrackingStore:
        """SQLite databases are migrated here (embedded use has no deploy step); PostgreSQL must be
        upgraded beforehand (`modelyard db upgrade` or service start-up), so that many workers never
        race to migrate a shared database."""
        engine = create_engine_for(uri, pool_size=pool_size, max_overflow=max_overflow)
        if is_sqlite(engine):
            from modelyard.store.sql.migrate import upgrade

            upgrade(engine)
        return cls(engine, default_artifact_root or DEFAULT_LOCAL_ARTIFACT_ROOT, allowed_artifact_roots)

    # ---- sessions ----------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._read_engine) as session, session.begin():
            yield session

    # ---- experiments -------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] = ()
    ) -> str:
        validation.validate_experiment_name(name)
        tag_map = _experiment_tag_map(tags)
        location = None
        if artifact_location:
            roots = (self.default_artifact_root, *self.allowed_artifact_roots)
            location = artifact_locations.check_within_roots(artifact_location, roots)
        try:
            with self._write() as session:
                if (
                    session.scalar(select(SqlExperiment.experiment_id).where(SqlExperiment.name == name))
                    is not None
                ):
                    raise _experiment_exists(name)
                now = _now_ms()
                row = SqlExperiment(
                    name=name,
                    artifact_location=location,
                    lifecycle_stage=LifecycleStage.ACTIVE,
                    creation_time=now,
                    last_update_time=now,
                )
                session.add(row)
                session.flush()
                if location is None:
                    row.artifact_location = artifact_locations.location_for(
                        self.default_artifact_root, row.experiment_id
                    )
                session.add_all(
                    SqlExperimentTag(experiment_id=row.experiment_id, key=k, value=v)
                    for k, v in tag_map.items()
                )
                return str(row.experiment_id)
        except IntegrityError as exc:
            # Two clients created the same name at once; the loser gets MLflow's answer.
            raise _experiment_exists(name) from exc

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as session:
            return self._load_experiments(
                session, [self._experiment_row(session, experiment_id).experiment_id]
            )[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as session:
            experiment_id = session.scalar(
                select(SqlExperiment.experiment_id).where(SqlExperiment.name == name)
            )
            if experiment_id is None:
                return None
            return self._load_experiments(session, [experiment_id])[0]

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = limits.SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[Experiment]:
        from modelyard.store.tracking.sql_search import search_experiment_ids

        with self._read() as session:
            ids, token = search_experiment_ids(
                session, view_type, max_results, filter_string, list(order_by or []), page_token, visible
            )
            return PagedList(self._load_experiments(session, [int(i) for i in ids]), token)

    def delete_experiment(self, experiment_id: str) -> None:
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            # The runs go with it; runs deleted earlier keep their own deleted_time, which is how
            # restore_experiment tells them apart: so this deletion's time must come after theirs,
            # even when one of them was deleted in the same millisecond.
            earlier = session.scalar(
                select(func.max(SqlRun.deleted_time)).where(SqlRun.experiment_id == row.experiment_id)
            )
            now = max(_now_ms(), (earlier or 0) + 1)
            row.lifecycle_stage = LifecycleStage.DELETED
            row.last_update_time = now
            session.execute(
                update(SqlRun)
                .where(
                    SqlRun.experiment_id == row.experiment_id, SqlRun.lifecycle_stage == LifecycleStage.ACTIVE
                )
                .values(lifecycle_stage=LifecycleStage.DELETED, deleted_time=now)
            )

    def restore_experiment(self, experiment_id: str) -> None:
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            if row.lifecycle_stage != LifecycleStage.DELETED:
                raise ModelyardException.invalid_parameter(
                    f"Cannot restore an active experiment. Experiment id={row.experiment_id} is active."
                )
            deleted_at = row.last_update_time or 0
            row.lifecycle_stage = LifecycleStage.ACTIVE
            row.last_update_time = _now_ms()
            session.execute(
                update(SqlRun)
                .where(
                    SqlRun.experiment_id == row.experiment_id,
                    SqlRun.lifecycle_stage == LifecycleStage.DELETED,
                    SqlRun.deleted_time >= deleted_at,
                )
                .values(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
            )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validation.validate_experiment_name(new_name)
        try:
            with self._write() as session:
                row = self._experiment_row(session, experiment_id)
                if row.lifecycle_stage != LifecycleStage.ACTIVE:
                    raise ModelyardException.invalid_parameter("Cannot rename a non-active experiment.")
                if row.name == new_name:
                    return
                taken = session.scalar(
                    select(SqlExperiment.experiment_id).where(SqlExperiment.name == new_name)
                )
                if taken is not None:
                    raise _experiment_exists(new_name)
                row.name = new_name
                row.last_update_time = _now_ms()
        except IntegrityError as exc:
            raise _experiment_exists(new_name) from exc

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        validation.validate_experiment_tag(tag.key, tag.value)
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            _require_active_experiment(row)
            stmt = upsert_insert(session, SqlExperimentTag).values(
                experiment_id=row.experiment_id, key=tag.key, value=tag.value
            )
            session.execute(
                stmt.on_conflict_do_update(index_elements=["experiment_id", "key"], set_={"value": tag.value})
            )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            _require_active_experiment(row)
            result = session.execute(
                delete(SqlExperimentTag).where(
                    SqlExperimentTag.experiment_id == row.experiment_id, SqlExperimentTag.key == key
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelyardException.not_found(
                    f"No tag with name: {key} in experiment with id {row.experiment_id}"
                )

    def _experiment_row(self, session: Session, experiment_id: str | int) -> SqlExperiment:
        row = None
        if validation.is_experiment_id(experiment_id) and int(experiment_id) <= _INT32_MAX:
            row = session.get(SqlExperiment, int(experiment_id))
        if row is None:
            raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
        return row

    def _experiment_location(self, row: SqlExperiment) -> str:
        # Experiment 0 is created by the migration, before any artifact root is known.
        return row.artifact_location or artifact_locations.location_for(
            self.default_artifact_root, row.experiment_id
        )

    def _load_experiments(self, session: Session, ids: list[int]) -> list[Experiment]:
        if not ids:
            return []
        rows = {
            r.experiment_id: r
            for r in session.scalars(select(SqlExperiment).where(SqlExperiment.experiment_id.in_(ids)))
        }
        tags: dict[int, dict[str, str]] = {}
        for t in session.scalars(select(SqlExperimentTag).where(SqlExperimentTag.experiment_id.in_(ids))):
            tags.setdefault(t.experiment_id, {})[t.key] = t.value or ""
        return [
            Experiment(
                experiment_id=str(i),
                name=rows[i].name,
                artifact_location=self._experiment_location(rows[i]),
                lifecycle_stage=rows[i].lifecycle_stage,
                tags=tags.get(i, {}),
                creation_time=rows[i].creation_time,
                last_update_time=rows[i].last_update_time,
            )
            for i in ids
            if i in rows
        ]

    # ---- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        tags = list(tags)
        for tag in tags:
            validation.validate_tag(tag)
        tag_name = next((t.value for t in reversed(tags) if t.key == RUN_NAME_TAG), None)
        if run_name and tag_name and run_name != tag_name:
            raise ModelyardException.invalid_parameter(
                f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different "
                f"values (run_name='{run_name}', {RUN_NAME_TAG}='{tag_name}')."
            )
        name = validation.validate_run_name(run_name or tag_name or generate_run_name())
        if start_time is not None:
            start_time = validation.validate_int64(start_time, "start_time")
        with self._write() as session:
            experiment = self._experiment_row(session, experiment_id)
            if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
                raise ModelyardException.invalid_parameter(
                    f"The experiment {experiment.experiment_id} must be in the 'active' state. "
                    f"Current state is {experiment.lifecycle_stage}."
                )
            if not experiment.artifact_location:
                experiment.artifact_location = self._experiment_location(experiment)
            run_id = uuid.uuid4().hex
            session.add(
                SqlRun(
                    run_uuid=run_id,
                    name=name,
                    experiment_id=experiment.experiment_id,
                    user_id=user_id or "",
                    status=RunStatus.RUNNING,
                    start_time=_now_ms() if start_time is None else int(start_time),
                    end_time=None,
                    lifecycle_stage=LifecycleStage.ACTIVE,
                    artifact_uri=f"{experiment.artifact_location.rstrip('/')}/{run_id}/artifacts",
                )
            )
            session.flush()
            other_tags = [t for t in tags if t.key != RUN_NAME_TAG]
            self._upsert_tags(session, run_id, [*other_tags, RunTag(RUN_NAME_TAG, name)])
            return self._load_runs(session, [run_id])[0]

    def get_run(self, run_id: str) -> Run:
        with self._read() as session:
            runs = self._load_runs(session, [run_id])
            if not runs:
                raise run_not_found(run_id)
            return runs[0]

    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        if run_status is not None:
            RunStatus.validate(run_status)
        if run_name:
            validation.validate_run_name(run_name)
        if end_time is not None:
            end_time = validation.validate_int64(end_time, "end_time")
        with self._write() as session:
            row = self._active_run(session, run_id, lock=bool(run_name))
            finished = run_status in RunStatus.TERMINATED and row.status != run_status
            if run_status is not None:
                row.status = run_status
            if end_time is not None:
                row.end_time = int(end_time)
            if run_name:
                row.name = run_name
                self._upsert_tags(session, run_id, [RunTag(RUN_NAME_TAG, run_name)])
            session.flush()
            info = _run_info(row)
            if finished:  # in this transaction: the webhook delivery commits with the status
                outbox.enqueue(session, outbox.RUN_FINISHED, _finished_run_data(info))
            return info

    def delete_run(self, run_id: str) -> None:
        with self._write() as session:
            row = self._run_row(session, run_id)
            if row.lifecycle_stage != LifecycleStage.DELETED:
                row.lifecycle_stage = LifecycleStage.DELETED
                row.deleted_time = _now_ms()

    def restore_run(self, run_id: str) -> None:
        with self._write() as session:
            row = self._run_row(session, run_id)
            row.lifecycle_stage = LifecycleStage.ACTIVE
            row.deleted_time = None

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
                self._active_run(session, run_id)
            return
        linked = links.has_model_links(metrics)
        if self._postgres and not (params or tags or linked):
            # The common case (log-metric, metric-only batches): one statement, one round trip.
            self._log_metrics_autocommit(run_id, metrics)
            return
        with self._write() as session:
            run = self._active_run(session, run_id, lock=bool(params or tags))
            if params:
                self._insert_params(session, run_id, params)
            if tags:
                self._upsert_tags(session, run_id, tags)
                if new_name is not None:
                    run.name = new_name
            if metrics:
                self._insert_metrics(session, run_id, metrics)
            if linked:
                links.insert_model_metrics(session, run_id, metrics)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as session:
            self._active_run(session, run_id, lock=True)
            result = session.execute(delete(SqlTag).where(SqlTag.run_uuid == run_id, SqlTag.key == key))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelyardException.not_found(f"No tag with name: {key} in run with id {run_id}")

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int = limits.GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        rows, token = self._metric_history_rows(run_id, metric_key, max_results, page_token)
        return PagedList(
            [Metric(metric_key, math.nan if is_nan else value, ts, step) for value, ts, step, is_nan in rows],
            token,
        )

    def get_metric_history_dicts(
        self,
        run_id: str,
        metric_key: str,
        max_results: int = limits.GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[dict[str, Any]]:
        # Straight from row tuples: a Metric per point plus its to_dict() was half of a page.
        rows, token = self._metric_history_rows(run_id, metric_key, max_results, page_token)
        return PagedList(
            [
                {
                    "key": metric_key,
                    "value": "NaN" if is_nan else value if isfinite(value) else float_to_json(value),
                    "timestamp": ts,
                    "step": step,
                }
                for value, ts, step, is_nan in rows
            ],
            token,
        )

    def _metric_history_rows(
        self, run_id: str, metric_key: str, max_results: int | None, page_token: str | None
    ) -> tuple[list[Sequence[Any]], str | None]:
        """One page of (stored value, timestamp, step, is_nan) in (step, timestamp, value) order.

        Keyset paging on the metrics primary key: the token holds the page's last (step, timestamp,
        stored value), which is unique per run and key, and the next page starts right after it in
        the index, however deep into the series it is (OFFSET re-read every earlier page)."""
        if max_results is None:
            max_results = limits.GET_METRIC_HISTORY_MAX_RESULTS
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise ModelyardException.invalid_parameter(
                f"Invalid value {max_results!r} for parameter 'max_results': it must be a positive integer."
            )
        max_results = min(max_results, limits.GET_METRIC_HISTORY_MAX_RESULTS)
        fingerprint = query_fingerprint("metric-history", run_id, metric_key)
        position = decode_position(page_token, fingerprint, _HISTORY_KEY_TYPES)
        m = SqlMetric.__table__
        sort_key = (m.c.step, m.c.timestamp, m.c.value)
        stmt = (
            select(m.c.value, m.c.timestamp, m.c.step, m.c.is_nan)
            .where(m.c.run_uuid == run_id, m.c.key == metric_key)
            .order_by(*sort_key)
            .limit(max_results + 1)
        )
        if position.after is not None:
            stmt = stmt.where(tuple_(*sort_key) > tuple_(*position.after))
        elif position.offset:
            stmt = stmt.offset(position.offset)
        with self._read() as session:
            self._run_row(session, run_id)
            if session.get_bind().dialect.name == "postgresql":
                # The one good plan is the primary key's index scan, already in order. Per-column
                # statistics badly underestimate how many points of one run lie after the key, and
                # PostgreSQL then picks a bitmap scan of the whole rest plus a sort that spills to disk
                # (85 ms instead of 7 ms for a 25,000-point page).
                session.execute(text("SET LOCAL enable_sort = off"))
            rows = fetch_tuples(session, stmt)
        return next_keyset_page(rows, max_results, fingerprint, lambda row: (row[2], row[1], row[0]))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = limits.SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        from modelyard.store.tracking.sql_search import search_run_ids

        with self._read() as session:
            ids, token = search_run_ids(
                session,
                [str(e) for e in experiment_ids],
                filter_string or "",
                run_view_type,
                max_results,
                list(order_by or []),
                page_token,
            )
            runs = self._load_runs(session, list(ids))
        for run in runs:  # as MLflow's search answers (and the PostgreSQL JSON path): get-run has them
            run.inputs.model_inputs = []
        return PagedList(runs, token)

    def search_runs_json(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = limits.SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[orjson.Fragment]:
        """On PostgreSQL, the page and its JSON in one autocommitted statement (`run_json`);
        elsewhere the entities' JSON."""
        if not self._postgres:
            return super().search_runs_json(
                experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
            )
        from modelyard.store.tracking.run_json import search_page_json
        from modelyard.store.tracking.sql_search import plan_run_search

        search = plan_run_search(
            [str(e) for e in experiment_ids],
            filter_string or "",
            run_view_type,
            max_results,
            list(order_by or []),
            page_token,
            self.engine.dialect.name,
        )
        if search is None:
            return PagedList([], None)
        with self._autocommit.connect() as conn:
            runs, token = search_page_json(conn, search)
        return PagedList(runs, token)

    def log_inputs(self, run_id: str, datasets: Sequence[dict], models: Sequence[dict] = ()) -> None:
        rows = {}
        for item in datasets:
            dataset = item.get("dataset") if isinstance(item, dict) else None
            if not isinstance(dataset, dict) or not dataset.get("name") or not dataset.get("digest"):
                raise ModelyardException.invalid_parameter(
                    "Each dataset input needs a 'dataset' with a non-empty 'name' and 'digest'."
                )
            # One row per distinct dataset; logging it again (say, with new context tags) replaces it.
            digest = hashlib.sha256(json.dumps(dataset, sort_keys=True).encode()).hexdigest()
            rows[digest] = json.dumps(item, sort_keys=True)
        with self._write() as session:
            self._active_run(session, run_id)
            links.insert_model_inputs(session, run_id, models)
            if not rows:
                return
            execute_upsert(
                session,
                SqlInput,
                [{"run_uuid": run_id, "digest": d, "body": b} for d, b in sorted(rows.items())],
                lambda stmt: stmt.on_conflict_do_update(
                    index_elements=["run_uuid", "digest"], set_={"body": stmt.excluded.body}
                ),
            )

    # ---- run helpers -------------------------------------------------------------------------
    def _run_row(self, session: Session, run_id: str, lock: bool = False) -> SqlRun:
        """The run's row; `lock` takes its row lock (FOR NO KEY UPDATE) for the rest of the
        transaction, as writers of its params and tags must (see `store/sql/run_docs`)."""
        if not (isinstance(run_id, str) and run_id):
            raise run_not_found(run_id)
        row = session.get(SqlRun, run_id, with_for_update={"key_share": True} if lock else None)
        if row is None:
            raise run_not_found(run_id)
        return row

    def _active_run(self, session: Session, run_id: str, lock: bool = False) -> SqlRun:
        row = self._run_row(session, run_id, lock)
        require_active_run(run_id, row.lifecycle_stage)
        return row

    def _insert_params(self, session: Session, run_id: str, params: list[Param]) -> None:
        wanted = {p.key: p.value for p in params}
        execute_upsert(
            session,
            SqlParam,
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted(wanted.items())],
            lambda stmt: stmt.on_conflict_do_nothing(index_elements=["run_uuid", "key"]),
        )
        # Checked after the insert, not before: a concurrent writer's value is visible now, so a
        # conflicting value cannot slip in between a check and our write.
        stored = session.execute(
            select(SqlParam.key, SqlParam.value).where(SqlParam.run_uuid == run_id, SqlParam.key.in_(wanted))
        ).all()
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
            lambda stmt: stmt.on_conflict_do_update(
                index_elements=["run_uuid", "key"], set_={"value": stmt.excluded.value}
            ),
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
            lambda stmt: stmt.on_conflict_do_nothing(),
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
                self._active_run(session, run_id)
            # Active by now: restored between the two statements. Write again.
        raise run_not_found(run_id)

    def _load_runs(self, session: Session, run_ids: list[str]) -> list[Run]:
        """Runs with their data, one query per table, in the order of `run_ids` (unknown ids skipped)."""
        if not run_ids:
            return []
        # Plain rows, not ORM objects: hydrating ~1,000 objects per page was a third of a search.
        run_table = SqlRun.__table__
        infos = {
            r.run_uuid: r for r in session.execute(select(run_table).where(run_table.c.run_uuid.in_(run_ids)))
        }
        if not infos:
            return []
        ids = list(infos)
        params: dict[str, list[Param]] = {}
        for run_uuid, key, value in session.execute(
            select(SqlParam.run_uuid, SqlParam.key, SqlParam.value)
            .where(SqlParam.run_uuid.in_(ids))
            .order_by(SqlParam.key)
        ):
            params.setdefault(run_uuid, []).append(Param(key, value))
        tags: dict[str, list[RunTag]] = {}
        for run_uuid, key, value in session.execute(
            select(SqlTag.run_uuid, SqlTag.key, SqlTag.value)
            .where(SqlTag.run_uuid.in_(ids))
            .order_by(SqlTag.key)
        ):
            tags.setdefault(run_uuid, []).append(RunTag(key, value or ""))
        metrics: dict[str, list[Metric]] = {}
        latest = SqlLatestMetric.__table__
        for m in session.execute(
            select(
                latest.c.run_uuid,
                latest.c.key,
                latest.c.value,
                latest.c.timestamp,
                latest.c.step,
                latest.c.is_nan,
            )
            .where(latest.c.run_uuid.in_(ids))
            .order_by(latest.c.key)
        ):
            metrics.setdefault(m.run_uuid, []).append(
                Metric(m.key, math.nan if m.is_nan else m.value, m.timestamp, m.step)
            )
        inputs: dict[str, list[dict[str, Any]]] = {}
        for run_uuid, body in session.execute(
            select(SqlInput.run_uuid, SqlInput.body)
            .where(SqlInput.run_uuid.in_(ids))
            .order_by(SqlInput.digest)
        ):
            inputs.setdefault(run_uuid, []).append(json.loads(body))
        outputs = load_model_outputs(session, ids)
        model_inputs = links.load_model_inputs(session, ids)
        return [
            Run(
                info=_run_info(infos[i]),
                data=RunData.build(metrics.get(i, []), params.get(i, []), tags.get(i, [])),
                inputs=RunInputs(inputs.get(i, []), model_inputs.get(i, [])),
                outputs=RunOutputs(outputs.get(i, [])),
            )
            for i in run_ids
            if i in infos
        ]


# ---- module helpers -------------------------------------------------------------------------------
def _keep_greatest_point(stmt: Any) -> Any:
    """Replace the stored latest point only by a greater (step, timestamp, value)."""
    new, old = stmt.excluded, stmt.table.c
    return stmt.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={"step": new.step, "timestamp": new.timestamp, "value": new.value, "is_nan": new.is_nan},
        where=tuple_(new.step, new.timestamp, new.value) > tuple_(old.step, old.timestamp, old.value),
    )


def _run_info(row: Any) -> RunInfo:
    """From an ORM `SqlRun` or a plain row of the runs table (same attribute names)."""
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        run_name=row.name or "",
        user_id=row.user_id or "",
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri or "",
        lifecycle_stage=row.lifecycle_stage,
    )


def _finished_run_data(info: RunInfo) -> dict[str, Any]:
    """A `run.finished` webhook payload's `data`."""
    data = {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": info.artifact_uri,
    }
    return {k: v for k, v in data.items() if v not in (None, "")}


def _experiment_tag_map(tags: Sequence[ExperimentTag]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags:
        validation.validate_experiment_tag(tag.key, tag.value)
        out[tag.key] = tag.value
    return out


def _require_active_experiment(row: SqlExperiment) -> None:
    if row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ModelyardException.invalid_parameter(
            f"The experiment {row.experiment_id} must be in the 'active' state. "
            f"Current state is {row.lifecycle_stage}."
        )


def _experiment_exists(name: str) -> ModelyardException:
    return ModelyardException.already_exists(f"Experiment(name={name}) already exists.")
