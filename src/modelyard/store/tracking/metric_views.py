"""Read models of metric histories and run inputs for charts and the UI, beside the tracking store.

`history_bulk_interval` is MLflow's server-side downsampling (`metrics/get-history-bulk-interval`):
per run, at most `max_results` points of one metric, spread evenly over the steps it has, always with
its first and last step. What MLflow 3.17's server answers (observed): a run whose metric has no more
distinct steps than `max_results` (in the step window, when one is given) gets every point; otherwise
the window [first, last] is cut into `max_results` strides of ceil((last - first + 1) / max_results)
steps, the logged steps on stride starts are kept (one point each, the earliest), the first
`max_results - 1` of them, and the last step. (With a step window, MLflow places the middle points a
little differently, e.g. steps 10..20 in 5 points: MLflow 10, 13, 15, 17, 20, here 10, 13, 16, 19, 20;
the first and last points and their number agree.) The sampling is a handful of indexed statements per run
(the distinct-step count, then only the chosen steps), so a 1M-point history is never loaded whole.

`history_bulk` is `metrics/get-history-bulk` (MLflow's UI reads several runs' histories of one metric
with it; `modelyard export` reads a page of runs 100 at a time): as MLflow answers it, the runs in
sorted order, each with at most `max_results` points ordered by (timestamp, step, value), in one
statement for all the runs (a window function caps each run).

`dataset_summaries` lists the datasets the runs of some experiments logged (`experiments/search-datasets`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, distinct, func, select
from sqlalchemy.orm import Session

from modelyard.entities import Metric
from modelyard.entities.run import float_to_json
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.schema import SqlInput, SqlMetric, SqlRun

#: MLflow's bound for get-history-bulk: run ids per request.
BULK_MAX_RUNS = 100
#: MLflow's bounds for get-history-bulk-interval.
INTERVAL_MAX_RESULTS = 2500
INTERVAL_DEFAULT_RESULTS = 320
INTERVAL_MAX_RUNS = 100
CONTEXT_TAG = "mlflow.data.context"


def sampled_steps(first: int, last: int, max_results: int) -> list[int]:
    """The stride starts of the window [first, last], in order (see the module docstring)."""
    stride = max(1, math.ceil((last - first + 1) / max_results))
    return list(range(first, last + 1, stride))


def check_interval_request(
    run_ids: Sequence[str], max_results: int, start_step: int | None, end_step: int | None
) -> None:
    if not run_ids:
        raise ModelyardException.invalid_parameter(
            "GetMetricHistoryBulkInterval request must specify at least one run_id."
        )
    if len(run_ids) > INTERVAL_MAX_RUNS:
        raise ModelyardException.invalid_parameter(
            f"GetMetricHistoryBulkInterval request must specify at most {INTERVAL_MAX_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    if not 1 <= max_results <= INTERVAL_MAX_RESULTS:
        raise ModelyardException.invalid_parameter(
            f"max_results must be between 1 and {INTERVAL_MAX_RESULTS}."
        )
    if (start_step is None) != (end_step is None):
        raise ModelyardException.invalid_parameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start_step is not None and end_step is not None and end_step < start_step:
        raise ModelyardException.invalid_parameter(
            f"end_step must be greater than start_step. Found start_step={start_step} and end_step={end_step}."
        )


def history_bulk_interval(
    engine: Engine,
    run_ids: Sequence[str],
    metric_key: str,
    max_results: int = INTERVAL_DEFAULT_RESULTS,
    start_step: int | None = None,
    end_step: int | None = None,
) -> list[Metric]:
    """Each run's sampled points (with `run_id` set), runs in the order given; unknown runs add nothing."""
    check_interval_request(run_ids, max_results, start_step, end_step)
    out: list[Metric] = []
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        for run_id in dict.fromkeys(run_ids):
            out.extend(_sample_run(session, run_id, metric_key, max_results, start_step, end_step))
    return out


def _sample_run(
    session: Session, run_id: str, key: str, max_results: int, start_step: int | None, end_step: int | None
) -> list[Metric]:
    m = SqlMetric.__table__
    window = [m.c.run_uuid == run_id, m.c.key == key]
    if start_step is not None and end_step is not None:
        window += [m.c.step >= start_step, m.c.step <= end_step]
    first, last, count = session.execute(
        select(func.min(m.c.step), func.max(m.c.step), func.count(distinct(m.c.step))).where(*window)
    ).one()
    if not count:
        return []
    points = select(m.c.step, m.c.timestamp, m.c.value, m.c.is_nan).where(*window)
    if count <= max_results:
        rows = session.execute(points.order_by(m.c.step, m.c.timestamp, m.c.value)).all()
    else:
        chosen = [s for s in sampled_steps(first, last, max_results) if s != last]
        kept = (
            session.execute(
                select(distinct(m.c.step)).where(*window, m.c.step.in_(chosen)).order_by(m.c.step)
            )
            .scalars()
            .all()[: max_results - 1]
        )
        steps = [*kept, last]
        rows, seen = [], set()
        for row in session.execute(
            points.where(m.c.step.in_(steps)).order_by(m.c.step, m.c.timestamp, m.c.value)
        ):
            if row.step not in seen:
                seen.add(row.step)
                rows.append(row)
    return [
        Metric(key, math.nan if row.is_nan else row.value, row.timestamp, row.step, run_id=run_id)
        for row in rows
    ]


def dataset_summaries(engine: Engine, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
    """`{experiment_id, name, digest, context}` for each distinct dataset input of the experiments' runs."""
    ids = [int(e) for e in experiment_ids if str(e).isdigit()]
    if not ids:
        return []
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        rows = session.execute(
            select(SqlRun.experiment_id, SqlInput.body)
            .join(SqlRun, SqlRun.run_uuid == SqlInput.run_uuid)
            .where(SqlRun.experiment_id.in_(ids))
        ).all()
    seen: dict[tuple[str, str, str, str | None], None] = {}
    for experiment_id, body in rows:
        item = json.loads(body)
        dataset = item.get("dataset") or {}
        context = next((t.get("value") for t in item.get("tags") or [] if t.get("key") == CONTEXT_TAG), None)
        seen[(str(experiment_id), dataset.get("name", ""), dataset.get("digest", ""), context)] = None
    return [
        {"experiment_id": e, "name": n, "digest": d, **({"context": c} if c is not None else {})}
        for e, n, d, c in sorted(seen, key=lambda k: (k[0], k[1], k[2], k[3] or ""))
    ]


def history_bulk(engine: Engine, run_ids: Sequence[str], key: str, max_results: int) -> list[dict[str, Any]]:
    """Every run's points of metric `key` (at most `max_results` each), with its `run_id`; an unknown
    run id is RESOURCE_DOES_NOT_EXIST, as for get-history."""
    from modelyard.store.tracking.run_checks import run_not_found

    wanted = sorted(set(run_ids))
    if len(wanted) > BULK_MAX_RUNS:
        raise ModelyardException.invalid_parameter(
            f"GetMetricHistoryBulk request cannot specify more than {BULK_MAX_RUNS} run_ids. Received {len(wanted)} run_ids."
        )
    m = SqlMetric.__table__
    order = (m.c.timestamp, m.c.step, m.c.value)
    ranked = (
        select(m.c.run_uuid, m.c.value, m.c.timestamp, m.c.step, m.c.is_nan,
               func.row_number().over(partition_by=m.c.run_uuid, order_by=order).label("n"))
        .where(m.c.run_uuid.in_(wanted), m.c.key == key)
        .subquery()
    )  # fmt: skip
    stmt = (
        select(ranked.c.run_uuid, ranked.c.value, ranked.c.timestamp, ranked.c.step, ranked.c.is_nan)
        .where(ranked.c.n <= max_results)
        .order_by(ranked.c.run_uuid, ranked.c.timestamp, ranked.c.step, ranked.c.value)
    )
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        found = set(session.scalars(select(SqlRun.run_uuid).where(SqlRun.run_uuid.in_(wanted))))
        missing = [r for r in wanted if r not in found]
        if missing:
            raise run_not_found(missing[0])
        rows = session.execute(stmt).all()
    return [
        {"key": key, "value": "NaN" if is_nan else float_to_json(value), "timestamp": ts, "step": step, "run_id": run_id}
        for run_id, value, ts, step, is_nan in rows
    ]  # fmt: skip
