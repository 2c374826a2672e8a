"""What the web UI's runs table needs besides a page of runs: the true number of runs a search
matches, the keys (metrics, params, tags) an experiment's runs use, and a few facts about runs named
by id (parents, a selection to delete).

MLflow's API has no call for these. `count_runs` reuses the run search's compiled WHERE
(`sql_search.run_search_conditions`), so the total always agrees with the pages. `experiment_keys`
reads the keys of the experiment's most recent runs only (`RECENT_RUNS`), in one statement driven by
the (experiment, stage, start_time) index and the child tables' primary keys: its cost is bounded
whatever the experiment's size, where a DISTINCT over every run's params and metrics grows with it
(~50 ms at 10,000 runs on PostgreSQL). A key that only older runs use is not suggested; the filter
and the column picker's URL still accept it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, literal, select, union_all
from sqlalchemy.orm import Session

from modelyard.entities.lifecycle import ViewType
from modelyard.store.sql.schema import SqlLatestMetric, SqlParam, SqlRun, SqlTag
from modelyard.store.tracking.sql_search import plan_each_search, run_search_conditions

#: How many of an experiment's newest runs `experiment_keys` reads.
RECENT_RUNS = 1000


def count_runs(
    engine: Engine, experiment_ids: Sequence[str], filter_string: str | None, view_type: int | str | None
) -> int:
    """How many runs the search matches, all pages together (INVALID_PARAMETER_VALUE for a bad filter,
    as the search itself)."""
    conditions = run_search_conditions(experiment_ids, filter_string, view_type, engine.dialect.name)
    if conditions is None:
        return 0
    statement = select(func.count()).select_from(SqlRun.__table__).where(*conditions)
    with Session(engine) as session, session.begin():
        plan_each_search(session)
        return int(session.execute(statement).scalar_one())


@dataclass(frozen=True)
class RunKeys:
    """An experiment's keys by kind, the most recently used first (ties by name)."""

    metrics: list[str]
    params: list[str]
    tags: list[str]


def experiment_keys(
    engine: Engine, experiment_id: str, view_type: int = ViewType.ACTIVE_ONLY, recent_runs: int = RECENT_RUNS
) -> RunKeys:
    """The metric, param and tag keys of the experiment's `recent_runs` newest runs in the view.

    A metric's recency is its latest point's timestamp; a param's or tag's, the start of the newest
    run that has it."""
    if not str(experiment_id).isdigit():
        return RunKeys([], [], [])
    runs = SqlRun.__table__
    recent = (
        select(runs.c.run_uuid, runs.c.start_time)
        .where(
            runs.c.experiment_id == int(experiment_id), runs.c.lifecycle_stage.in_(ViewType.stages(view_type))
        )
        .order_by(runs.c.start_time.desc())
        .limit(recent_runs)
        .cte("recent")
    )
    parts = []
    for kind, table, when in (
        ("metric", SqlLatestMetric.__table__, SqlLatestMetric.__table__.c.timestamp),
        ("param", SqlParam.__table__, recent.c.start_time),
        ("tag", SqlTag.__table__, recent.c.start_time),
    ):
        parts.append(
            select(literal(kind).label("kind"), table.c.key, func.max(when).label("used"))
            .select_from(recent.join(table, table.c.run_uuid == recent.c.run_uuid))
            .group_by(table.c.key)
        )
    found: dict[str, list[tuple[int, str]]] = {"metric": [], "param": [], "tag": []}
    with Session(engine) as session, session.begin():
        for kind, key, used in session.execute(union_all(*parts)):
            found[kind].append((-(used or 0), key))
    ordered = {kind: [key for _, key in sorted(rows)] for kind, rows in found.items()}
    return RunKeys(ordered["metric"], ordered["param"], ordered["tag"])


@dataclass(frozen=True)
class RunSummary:
    name: str
    experiment_id: str
    lifecycle_stage: str


def run_summaries(engine: Engine, run_ids: Sequence[str]) -> dict[str, RunSummary]:
    """Name, experiment and lifecycle stage of each run id that exists (unknown ids are absent)."""
    ids = sorted({str(i) for i in run_ids if i})
    if not ids:
        return {}
    runs = SqlRun.__table__
    statement = select(runs.c.run_uuid, runs.c.name, runs.c.experiment_id, runs.c.lifecycle_stage).where(
        runs.c.run_uuid.in_(ids)
    )
    with Session(engine) as session, session.begin():
        return {
            run_id: RunSummary(name or "", str(experiment_id), stage)
            for run_id, name, experiment_id, stage in session.execute(statement)
        }
