"""MLflow's answers for a write to a run that cannot take it, shared by every path that writes to runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from modelyard.entities import LifecycleStage
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.schema import SqlRun

# Built once: an ORM load of the run (`Session.get`) cost several times the query's own CPU on SQLite.
_RUNS: Any = SqlRun.__table__
_RUN_STAGE = select(_RUNS.c.lifecycle_stage).where(_RUNS.c.run_uuid == bindparam("run_id"))
#: FOR NO KEY UPDATE on PostgreSQL (SQLite has no row locks, nor needs them: writes are serialized).
_RUN_STAGE_LOCKED = _RUN_STAGE.with_for_update(key_share=True)


def run_not_found(run_id: str) -> ModelyardException:
    return ModelyardException.not_found(f"Run with id={run_id} not found")


def require_active_run(run_id: str, lifecycle_stage: str | None) -> None:
    """404 RESOURCE_DOES_NOT_EXIST when the run is unknown (`lifecycle_stage` None), 400
    INVALID_PARAMETER_VALUE when it is not active (deleted): the write must not happen."""
    if lifecycle_stage is None:
        raise run_not_found(run_id)
    if lifecycle_stage != LifecycleStage.ACTIVE:
        raise ModelyardException.invalid_parameter(
            f"The run {run_id} must be in the 'active' state. Current state is {lifecycle_stage}."
        )


def run_stage(session: Session, run_id: str, lock: bool = False) -> str | None:
    """The run's lifecycle stage, None when there is no such run; `lock` takes the run's row lock
    (FOR NO KEY UPDATE) for the rest of the transaction, as writers of its params and tags must."""
    if not (isinstance(run_id, str) and run_id):
        return None
    return session.execute(  # type: ignore[no-any-return]
        _RUN_STAGE_LOCKED if lock else _RUN_STAGE, {"run_id": run_id}
    ).scalar()
