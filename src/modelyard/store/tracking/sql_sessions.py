"""Sessions, and the rows every call of the SQL tracking store starts from (an experiment, a run).

`SqlTrackingStore` is put together from one class per concern, each a subclass of `SqlSessions`:
experiments (`sql_experiments`), a run's data (`sql_run_data`), metric histories
(`sql_metric_history`), and runs with their searches (`sql_store`). Every public method is one
transaction, begun by `_write` or `_read`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Row, bindparam, select
from sqlalchemy.orm import Session

from modelyard.exceptions import ModelyardException
from modelyard.protocol import validation
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.schema import SqlExperiment, SqlRun
from modelyard.store.tracking import artifact_locations
from modelyard.store.tracking.run_checks import require_active_run, run_not_found, run_stage

_INT32_MAX = 2**31 - 1

_RUNS: Any = SqlRun.__table__
#: A Core statement, built once: an ORM load (`Session.get`) cost several times the query's CPU. Not
#: the run's params/tags documents (`params_json`, `tags_json`: deferred in the ORM, large, de-TOASTed
#: on every read): nothing that reads this row needs them.
_RUN_ROW = select(*(c for c in _RUNS.c if c.key not in ("params_json", "tags_json"))).where(
    _RUNS.c.run_uuid == bindparam("run_id")
)
_RUN_ROW_LOCKED = _RUN_ROW.with_for_update(key_share=True)
_EXPERIMENTS: Any = SqlExperiment.__table__
_EXPERIMENT_ROW = select(_EXPERIMENTS).where(_EXPERIMENTS.c.experiment_id == bindparam("id"))


def now_ms() -> int:
    return int(time.time() * 1000)


class SqlSessions:
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

    # ---- sessions ----------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._read_engine) as session, session.begin():
            yield session

    # ---- rows ---------------------------------------------------------------------------------
    def _experiment_row(self, session: Session, experiment_id: str | int) -> SqlExperiment:
        row = None
        if validation.is_experiment_id(experiment_id) and int(experiment_id) <= _INT32_MAX:
            row = session.get(SqlExperiment, int(experiment_id))
        return _found_experiment(row, experiment_id)

    def _experiment_columns(self, session: Session, experiment_id: str | int) -> Row:
        """`_experiment_row` as a plain (read-only) row of the experiments table."""
        row = None
        if validation.is_experiment_id(experiment_id) and int(experiment_id) <= _INT32_MAX:
            row = session.execute(_EXPERIMENT_ROW, {"id": int(experiment_id)}).first()
        return _found_experiment(row, experiment_id)

    def _experiment_location(self, row: SqlExperiment | Row) -> str:
        return self._location(row.artifact_location, row.experiment_id)

    def _location(self, stored: str | None, experiment_id: int) -> str:
        """An experiment's artifact location: the stored one, or (experiment 0, created by the
        migration before any artifact root is known) the default root's."""
        return stored or artifact_locations.location_for(self.default_artifact_root, experiment_id)

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

    def _require_active_run(self, session: Session, run_id: str, lock: bool = False) -> None:
        """`_active_run`'s check (and lock) for writers that do not change the run's own row."""
        require_active_run(run_id, run_stage(session, run_id, lock))

    def _run_columns(self, session: Session, run_id: str, lock: bool = False) -> Row:
        """`_run_row` as a plain (read-only) row of the runs table."""
        row = None
        if isinstance(run_id, str) and run_id:
            row = session.execute(_RUN_ROW_LOCKED if lock else _RUN_ROW, {"run_id": run_id}).first()
        if row is None:
            raise run_not_found(run_id)
        return row


def _found_experiment(row: Any, experiment_id: str | int) -> Any:
    if row is None:
        raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
    return row
