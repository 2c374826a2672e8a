"""What the web UI's runs table needs besides a page of runs: the number of runs a search matches
(counted, or in a large view estimated from its newest runs), the keys (metrics, params, tags) an
experiment's runs use, the model versions registered from a page of runs, and a few facts about
runs named by id (parents, a selection to delete).

MLflow's API has no call for these. `count_runs` reuses the run search's compiled WHERE
(`sql_run_totals.run_search_conditions`), so the total always agrees with the pages. `experiment_keys`
reads the keys of the experiment's newest runs only (`RECENT_RUNS`) through indexes: its cost is
bounded whatever the experiment's or the database's size, where a DISTINCT over every run's params,
metrics and tags grows with both (~50-70 ms at 10,000 runs on PostgreSQL, read on every page view).
A key that only older runs use is not suggested; the filter and the column picker's URL still take it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, and_, func, literal, literal_column, select, text, union_all
from sqlalchemy.orm import Session

from modelyard.entities.lifecycle import ViewType
from modelyard.store.sql.registry_schema import SqlModelVersion
from modelyard.store.sql.rows import fetch_compiled
from modelyard.store.sql.schema import SqlLatestMetric, SqlParam, SqlRun, SqlTag
from modelyard.store.tracking.sql_run_totals import run_sample, run_search_conditions
from modelyard.store.tracking.sql_search import plan_each_search

#: How many of an experiment's newest runs `experiment_keys` reads.
RECENT_RUNS = 200
#: Searches of views (an experiment's active or deleted runs) up to this size are counted; above, a total
#: over EXACT_TOTAL_LIMIT is an estimate, shown as one.
EXACT_VIEW_LIMIT = 20_000
EXACT_TOTAL_LIMIT = 10_000
#: An estimate is made from this many of the view's newest runs ...
SAMPLE_RUNS = 2_000
#: ... when at least this many of them match (fewer: the matches are few enough to count).
SAMPLE_MATCHES = 20


@dataclass(frozen=True)
class RunTotal:
    """How many runs a search matches: counted (`exact`), or estimated: `sampled` of the view's newest
    `sample` runs match, scaled to the view's size, which the page shows as an estimate."""

    value: int
    exact: bool = True
    sampled: int = 0
    sample: int = 0

    @property
    def shown(self) -> int:
        """The number to show: an estimate to two significant digits (no more is known)."""
        if self.exact or self.value < 100:
            return self.value
        return round(self.value, 2 - len(str(self.value)))


def count_runs(
    engine: Engine,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    view_type: int | str | None,
    exact_limit: int | None = None,
) -> RunTotal:
    """How many runs the search matches, all pages together (INVALID_PARAMETER_VALUE for a bad filter,
    as the search itself).

    Counting reads every match, so its cost grows with them (for a filter PostgreSQL cannot use an
    index for, with the view) while a page's does not. So on PostgreSQL, in a view (one experiment,
    active, deleted or all runs) of more than EXACT_VIEW_LIMIT runs as the planner estimates it (from the
    experiment's and stage's statistics, which it gets right; that estimate is the total of a search
    without a filter), the newest SAMPLE_RUNS runs are tested as a page is (`sql_run_totals.run_sample`),
    and when SAMPLE_MATCHES or more match, the total is their share of the view: an estimate, which
    says what it is made of. (The planner's own estimate of the matches was 3-4x off for LIKE prefixes
    and ORs, and a count stopped after EXACT_TOTAL_LIMIT matches took 0.3-0.7 s where the planner
    misjudged the filter.) Fewer matches in the sample: the filter is rare, and its matches (driven
    from its indexes) are counted up to `exact_limit` (default EXACT_TOTAL_LIMIT), above which the
    sample's share is the estimate. Everything else is counted."""
    exact_limit = EXACT_TOTAL_LIMIT if exact_limit is None else exact_limit
    conditions = run_search_conditions(experiment_ids, filter_string, view_type, engine.dialect.name)
    if conditions is None:
        return RunTotal(0)
    matching = select(literal_column("1")).select_from(SqlRun.__table__).where(*conditions)
    postgres = engine.dialect.name == "postgresql"
    sample = run_sample(experiment_ids, filter_string, view_type, SAMPLE_RUNS) if postgres else None
    with Session(engine) as session, session.begin():
        plan_each_search(session)
        if sample is not None:
            in_view = _estimated_rows(session, sample.in_view)
            if in_view > EXACT_VIEW_LIMIT and sample.matches is None:
                return RunTotal(in_view, exact=False)  # no filter: the view's size, as the planner knows it
            if in_view > EXACT_VIEW_LIMIT and sample.matches is not None:
                sampled = int(session.execute(sample.matches, sample.params).scalar_one())
                estimate = round(sampled / min(sample.size, in_view) * in_view)
                if sampled >= SAMPLE_MATCHES:
                    return RunTotal(estimate, False, sampled, sample.size)
                capped = select(func.count()).select_from(matching.limit(exact_limit + 1).subquery())
                counted = int(session.execute(capped).scalar_one())
                if counted <= exact_limit:
                    return RunTotal(counted)
                return RunTotal(max(estimate, counted), False, sampled, sample.size)
        return RunTotal(
            int(session.execute(select(func.count()).select_from(matching.subquery())).scalar_one())
        )


def _estimated_rows(session: Session, statement: Select[Any]) -> int:
    """PostgreSQL's estimate of the rows `statement` returns (EXPLAIN: planned, not run)."""
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    rows = fetch_compiled(connection, "EXPLAIN (FORMAT JSON) " + compiled.string, compiled.params)
    plan = rows[0][0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


@dataclass(frozen=True)
class RunKeys:
    """An experiment's keys by kind, the most recently used first (ties by name)."""

    metrics: list[str]
    params: list[str]
    tags: list[str]


def experiment_keys(
    engine: Engine, experiment_id: str, view_type: int = ViewType.ACTIVE_ONLY, recent_runs: int = RECENT_RUNS
) -> RunKeys:
    """The metric, param and tag keys of the experiment's `recent_runs` newest runs in the view; a
    key's recency is the start of the newest run that has it.

    Two statements: the start time of the `recent_runs`-th newest run, then the keys of the runs
    started since, read through the (experiment, stage, start_time) index and nested loops over the
    child tables' primary keys (index-only). Bounding the runs by a start time rather than by a
    subquery with a LIMIT lets the planner estimate their number, and it then picks those loops: with
    a subquery it hashed whole tables (~70 ms at 10,000 runs, growing with the database)."""
    if not str(experiment_id).isdigit():
        return RunKeys([], [], [])
    runs = SqlRun.__table__
    in_view = and_(
        runs.c.experiment_id == int(experiment_id), runs.c.lifecycle_stage.in_(ViewType.stages(view_type))
    )
    # NULLS LAST: the order of the runs index on PostgreSQL (sql_search's default order).
    cutoff = (
        select(runs.c.start_time)
        .where(in_view)
        .order_by(runs.c.start_time.desc().nulls_last())
        .offset(recent_runs - 1)
    )
    found: dict[str, list[tuple[int, str]]] = {"metric": [], "param": [], "tag": []}
    with Session(engine) as session, session.begin():
        oldest = session.execute(cutoff.limit(1)).scalar()
        recent = and_(in_view, runs.c.start_time >= oldest) if oldest is not None else in_view
        if engine.dialect.name == "postgresql":
            # Nested loops over the child tables' primary keys, and nothing else: a few hundred runs'
            # keys are a few hundred index probes (~2 ms), but with ~200 runs estimated the planner
            # also costs a hash join over the whole params/tags/latest_metrics tables as cheap and
            # sometimes picks it (100,000 rows each at 10,000 runs: 70-200 ms, growing with the
            # database). Not in parallel either: starting the workers costs more than the reads.
            session.execute(
                text(
                    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),"
                    " set_config('max_parallel_workers_per_gather', '0', true)"
                )
            )
        parts = [
            select(literal(kind).label("kind"), table.c.key, func.max(runs.c.start_time).label("used"))
            .select_from(runs.join(table, table.c.run_uuid == runs.c.run_uuid))
            .where(recent)
            .group_by(table.c.key)
            for kind, table in (
                ("metric", SqlLatestMetric.__table__),
                ("param", SqlParam.__table__),
                ("tag", SqlTag.__table__),
            )
        ]
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


def registered_versions(engine: Engine, run_ids: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """(model name, version) of the versions registered from each run, by name then version; one
    query on the model versions' run_id index (the registry's search parses a filter and loads each
    version whole, ~3x the time for a page of runs)."""
    ids = sorted({str(i) for i in run_ids if i})
    if not ids:
        return {}
    versions = SqlModelVersion.__table__
    statement = (
        select(versions.c.run_id, versions.c.name, versions.c.version)
        .where(versions.c.run_id.in_(ids))
        .order_by(versions.c.name, versions.c.version)
    )
    found: dict[str, list[tuple[str, int]]] = {}
    with Session(engine) as session, session.begin():
        for run_id, name, version in session.execute(statement):
            found.setdefault(run_id, []).append((name, int(version)))
    return found
