"""Runs as entities: a page of runs with their params, tags, latest metrics, inputs and outputs, one
query per table (the in-process and SQLite path; PostgreSQL's REST pages are built by `run_json`)."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.entities import Metric, Param, Run, RunData, RunInfo, RunInputs, RunOutputs, RunTag
from modelyard.store.logged_models import links
from modelyard.store.logged_models.outputs import load_model_outputs
from modelyard.store.sql.schema import SqlInput, SqlLatestMetric, SqlParam, SqlRun, SqlTag


def load_runs(session: Session, run_ids: list[str]) -> list[Run]:
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
        select(SqlTag.run_uuid, SqlTag.key, SqlTag.value).where(SqlTag.run_uuid.in_(ids)).order_by(SqlTag.key)
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
        select(SqlInput.run_uuid, SqlInput.body).where(SqlInput.run_uuid.in_(ids)).order_by(SqlInput.digest)
    ):
        inputs.setdefault(run_uuid, []).append(json.loads(body))
    outputs = load_model_outputs(session, ids)
    model_inputs = links.load_model_inputs(session, ids)
    return [
        Run(
            info=run_info(infos[i]),
            data=RunData.build(metrics.get(i, []), params.get(i, []), tags.get(i, [])),
            inputs=RunInputs(inputs.get(i, []), model_inputs.get(i, [])),
            outputs=RunOutputs(outputs.get(i, [])),
        )
        for i in run_ids
        if i in infos
    ]


def run_info(row: Any) -> RunInfo:
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
