"""The tracking store on SQLite or PostgreSQL, with MLflow's semantics.

Every public method is one transaction (see `sql_sessions`). This module holds runs themselves (create,
read, update, delete/restore) and their searches; the class is put together from experiments
(`sql_experiments`), a run's data (`sql_run_data`) and metric histories (`sql_metric_history`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from modelyard.entities import (
    LifecycleStage,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    ViewType,
)
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits, validation
from modelyard.settings import DEFAULT_LOCAL_ARTIFACT_ROOT
from modelyard.store.sql.engine import create_engine_for, is_sqlite
from modelyard.store.sql.schema import SqlExperiment, SqlRun
from modelyard.store.tracking import run_loading
from modelyard.store.tracking.base import TrackingStore
from modelyard.store.tracking.run_checks import require_active_run, run_not_found
from modelyard.store.tracking.run_loading import run_info
from modelyard.store.tracking.run_names import generate_run_name
from modelyard.store.tracking.sql_experiments import SqlExperiments
from modelyard.store.tracking.sql_metric_history import SqlMetricHistory
from modelyard.store.tracking.sql_run_data import RUN_NAME_TAG, SqlRunData
from modelyard.store.tracking.sql_sessions import now_ms
from modelyard.store.webhooks import outbox

DEFAULT_EXPERIMENT_ID = 0

if TYPE_CHECKING:
    import orjson  # server-only: the base install (embedded SQLite) has no orjson


_RUNS: Any = SqlRun.__table__
_EXPERIMENTS: Any = SqlExperiment.__table__
_UPDATES: dict[tuple[str, ...], Any] = {}


def _run_update(columns: tuple[str, ...]) -> Any:
    """UPDATE of the run's `columns` (bound as `new_<column>`), built once per set of columns."""
    stmt = _UPDATES.get(columns)
    if stmt is None:
        where = _RUNS.c.run_uuid == bindparam("id")
        values = {c: bindparam(f"new_{c}") for c in columns}  # a column's own name is SQLAlchemy's
        stmt = _UPDATES[columns] = update(_RUNS).where(where).values(values)
    return stmt


#: Experiment 0, created by the migration before any artifact root was known, gets its location
#: with its first run.
_SET_LOCATION = (
    update(_EXPERIMENTS)
    .where(_EXPERIMENTS.c.experiment_id == bindparam("id"))
    .values(artifact_location=bindparam("location"))
)


class SqlTrackingStore(SqlExperiments, SqlRunData, SqlMetricHistory, TrackingStore):
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
            experiment = self._experiment_columns(session, experiment_id)
            if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
                raise ModelyardException.invalid_parameter(
                    f"The experiment {experiment.experiment_id} must be in the 'active' state. "
                    f"Current state is {experiment.lifecycle_stage}."
                )
            location = experiment.artifact_location
            if not location:
                location = self._experiment_location(experiment)
                session.execute(_SET_LOCATION, {"id": experiment.experiment_id, "location": location})
            run_id = uuid.uuid4().hex
            values = {
                "run_uuid": run_id,
                "name": name,
                "experiment_id": experiment.experiment_id,
                "user_id": user_id or "",
                "status": RunStatus.RUNNING,
                "start_time": now_ms() if start_time is None else int(start_time),
                "end_time": None,
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "artifact_uri": f"{location.rstrip('/')}/{run_id}/artifacts",
            }
            # A Core insert: the unit of work's flush cost more CPU than the statement.
            session.execute(insert(_RUNS), values)
            row = SimpleNamespace(**values)  # a row of the runs table, as `run_info` reads one
            other_tags = [t for t in tags if t.key != RUN_NAME_TAG]
            stored = {t.key: t.value for t in [*other_tags, RunTag(RUN_NAME_TAG, name)]}
            self._upsert_tags(session, run_id, [RunTag(k, v) for k, v in stored.items()])
            # A new run holds exactly what was just written: built from it, not read back (seven
            # queries, half of a create's server time).
            return Run(
                info=run_info(row),
                data=RunData.build([], [], [RunTag(k, v or "") for k, v in sorted(stored.items())]),
                inputs=RunInputs([], []),
                outputs=RunOutputs([]),
            )

    def get_run(self, run_id: str) -> Run:
        with self._read() as session:
            runs = self._load_runs(session, [run_id])
            if not runs:
                raise run_not_found(run_id)
            return runs[0]

    def get_run_info(self, run_id: str) -> RunInfo:
        """The run's info alone (one row): for callers that need no params, tags or metrics, such as
        the artifact proxy's ownership check on every upload."""
        with self._read() as session:
            return run_info(self._run_columns(session, run_id))

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
            row = self._run_columns(session, run_id, lock=bool(run_name))
            require_active_run(run_id, row.lifecycle_stage)
            finished = run_status in RunStatus.TERMINATED and row.status != run_status
            changes: dict[str, Any] = {}
            if run_status is not None:
                changes["status"] = run_status
            if end_time is not None:
                changes["end_time"] = int(end_time)
            if run_name:
                changes["name"] = run_name
                self._upsert_tags(session, run_id, [RunTag(RUN_NAME_TAG, run_name)])
            if changes:
                params = {f"new_{column}": value for column, value in changes.items()}
                session.execute(_run_update(tuple(changes)), {"id": run_id, **params})
            info = run_info(SimpleNamespace(**{**row._mapping, **changes}))  # the row as updated
            if finished:  # in this transaction: the webhook delivery commits with the status
                outbox.enqueue(session, outbox.RUN_FINISHED, _finished_run_data(info))
            return info

    def delete_run(self, run_id: str) -> None:
        with self._write() as session:
            row = self._run_row(session, run_id)
            if row.lifecycle_stage != LifecycleStage.DELETED:
                row.lifecycle_stage = LifecycleStage.DELETED
                row.deleted_time = now_ms()

    def restore_run(self, run_id: str) -> None:
        with self._write() as session:
            row = self._run_row(session, run_id)
            row.lifecycle_stage = LifecycleStage.ACTIVE
            row.deleted_time = None

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

    def _load_runs(self, session: Session, run_ids: list[str]) -> list[Run]:
        """Runs with their data, one query per table, in the order of `run_ids` (unknown ids skipped)."""
        return run_loading.load_runs(session, run_ids)


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
