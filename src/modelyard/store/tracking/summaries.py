"""Read-only summaries the web UI shows next to the API's entities (run counts, last activity).

They are aggregates MLflow's API has no call for, computed in one grouped statement per page of
experiments, so a page of 100 experiments costs one query whatever the number of runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from modelyard.entities.lifecycle import LifecycleStage
from modelyard.store.sql.schema import SqlRun


@dataclass(frozen=True)
class ExperimentActivity:
    #: Active (not deleted) runs.
    run_count: int
    #: The latest start or end time of any active run, in ms; None without runs.
    last_run_time: int | None


def experiment_activity(engine: Engine, experiment_ids: Sequence[str]) -> dict[str, ExperimentActivity]:
    """Run count and last run activity for each experiment id (ids without runs are absent)."""
    ids = [int(i) for i in experiment_ids if str(i).isdigit()]
    if not ids:
        return {}
    statement = (
        select(
            SqlRun.experiment_id,
            func.count(),
            func.max(func.coalesce(SqlRun.end_time, SqlRun.start_time)),
        )
        .where(SqlRun.experiment_id.in_(ids), SqlRun.lifecycle_stage == LifecycleStage.ACTIVE)
        .group_by(SqlRun.experiment_id)
    )
    with Session(engine) as session:
        return {
            str(experiment_id): ExperimentActivity(int(count), last)
            for experiment_id, count, last in session.execute(statement)
        }
