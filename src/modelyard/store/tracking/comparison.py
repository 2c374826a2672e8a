"""What the compare page shows for a list of runs: each run's summary, params and latest metrics,
and the min/max band of a metric over many runs (the overlaid charts' "rest").

The compare page takes up to a thousand run ids from its URL. `search_runs` would need the runs'
experiments and load tags, inputs and outputs the page does not show, so this loads exactly what it
needs in three statements (runs, params, latest metrics), whatever the number of runs: ~10 ms for
1,000 runs with 10 params and 10 metrics each on SQLite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, case, func, literal, select
from sqlalchemy.orm import Session

from modelyard.store.sql.rows import fetch_tuples
from modelyard.store.sql.schema import SqlExperiment, SqlLatestMetric, SqlMetric, SqlParam, SqlRun


@dataclass
class ComparedRun:
    run_id: str
    name: str
    experiment_id: str
    experiment_name: str
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    params: dict[str, str] = field(default_factory=dict)
    #: Latest value of each metric (NaN for a NaN point) and the step it was logged at.
    metrics: dict[str, float] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)


def compared_runs(
    engine: Engine, run_ids: Sequence[str], *, params: bool = True, metric_keys: Sequence[str] | None = None
) -> list[ComparedRun]:
    """The runs among `run_ids` that exist (deleted ones too: a shared link still shows them), in
    the order given; callers tell the user about the ids that are missing from the result.

    `params=False` skips the params, `metric_keys` loads only those metrics: a chart of one metric
    ranked by another needs no more (at 1,000 runs, a third of the rows each)."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return []
    runs = SqlRun.__table__
    experiments = SqlExperiment.__table__
    param_table = SqlParam.__table__
    latest = SqlLatestMetric.__table__
    found: dict[str, ComparedRun] = {}
    with Session(engine) as session:
        rows = fetch_tuples(
            session,
            select(
                runs.c.run_uuid, runs.c.name, runs.c.experiment_id, experiments.c.name, runs.c.status,
                runs.c.start_time, runs.c.end_time, runs.c.lifecycle_stage,
            )
            .join(experiments, experiments.c.experiment_id == runs.c.experiment_id)
            .where(runs.c.run_uuid.in_(ids)),
        )
        for run_id, name, experiment_id, experiment_name, status, start, end, stage in rows:
            found[run_id] = ComparedRun(
                run_id, name or "", str(experiment_id), experiment_name, status, start, end, stage
            )
        if not found:
            return []
        present = list(found)
        if params:
            for run_id, key, value in fetch_tuples(
                session,
                select(param_table.c.run_uuid, param_table.c.key, param_table.c.value).where(
                    param_table.c.run_uuid.in_(present)
                ),
            ):
                found[run_id].params[key] = value
        metrics = select(latest.c.run_uuid, latest.c.key, latest.c.value, latest.c.step, latest.c.is_nan).where(
            latest.c.run_uuid.in_(present)
        )
        if metric_keys is not None:
            metrics = metrics.where(latest.c.key.in_(list(dict.fromkeys(metric_keys))))
        for run_id, key, value, step, is_nan in fetch_tuples(session, metrics):
            found[run_id].metrics[key] = math.nan if is_nan else value
            found[run_id].steps[key] = step
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class MetricBand:
    """The spread of one metric over many runs: per step bucket, the lowest and highest value any
    of the runs logged in it (NaN points left out; None when a bucket holds only NaN)."""

    bucket_width: int
    #: Each bucket's first step.
    x: list[int]
    low: list[float | None]
    high: list[float | None]


def metric_band(engine: Engine, run_ids: Sequence[str], key: str, max_points: int = 400) -> MetricBand | None:
    """`key`'s min/max envelope over `run_ids`, in at most `max_points` equal-width step buckets.

    The compare page draws the best runs of a large selection as lines and the rest as this band:
    two grouped statements over the runs' whole histories (the step range, then the buckets),
    whatever the number of runs. None when none of the runs has the metric."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return None
    m = SqlMetric.__table__
    where = (m.c.run_uuid.in_(ids), m.c.key == key)
    real = case((m.c.is_nan, None), else_=m.c.value)
    with Session(engine) as session:
        # (Counting the runs here too, with count(DISTINCT run_uuid), doubled this statement's time.)
        first, last = session.execute(select(func.min(m.c.step), func.max(m.c.step)).where(*where)).one()
        if first is None:
            return None
        width = max(1, -(-(last - first + 1) // max_points))
        bucket = ((m.c.step - literal(first)) // literal(width)).label("bucket")
        rows = fetch_tuples(
            session,
            select(bucket, func.min(m.c.step), func.min(real), func.max(real))
            .where(*where)
            .group_by(bucket)
            .order_by(bucket),
        )
    return MetricBand(
        width,
        [int(r[1]) for r in rows],
        [None if r[2] is None else float(r[2]) for r in rows],
        [None if r[3] is None else float(r[3]) for r in rows],
    )
