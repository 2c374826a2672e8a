"""Bulk import of whole runs (`modelyard import`): many finished runs with their params, tags and
metric histories written in one transaction, with a few statements per table for the whole batch.

Importing run by run through MLflow's API costs ~5 requests per run (create, log-batch of params, of
metrics, set-terminated, the completion tag); this writes a batch of hundreds in one request. The
rows are the ones those calls would write: a run row with the given name, user, times, status and
lifecycle stage and an artifact location under the experiment's, its params and tags (the run name
as `mlflow.runName`), every metric point and, per key, the greatest (step, timestamp, value) as its
latest. All or nothing: a batch with one invalid run writes nothing. New ids, so no row can exist
yet: plain INSERTs without run locks (nobody else knows the ids). On PostgreSQL the statement
triggers of `store/sql/run_docs` fill each run's params/tags JSON as for every other writer.
Imported runs fire no `run.finished` webhooks: they finished elsewhere, earlier.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelyard.entities import Metric, Param, RunStatus, RunTag
from modelyard.entities.lifecycle import LifecycleStage
from modelyard.exceptions import ModelyardException
from modelyard.protocol import validation
from modelyard.store.sql.dialect import execute_upsert
from modelyard.store.sql.schema import (
    SqlExperiment,
    SqlInput,
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from modelyard.store.tracking.run_names import generate_run_name
from modelyard.store.tracking.sql_run_data import input_rows

RUN_NAME_TAG = "mlflow.runName"
#: The most runs, and metric points over all of them, one import request may carry.
MAX_RUNS = 1000
MAX_POINTS = 200_000


@dataclass(frozen=True)
class ImportedRun:
    """One run as exported: what it was called, by whom, when, how it ended, and its data."""

    run_name: str | None = None  # None: a generated name, as create-run gives
    user_id: str = ""
    start_time: int | None = None
    end_time: int | None = None
    status: str = "FINISHED"
    lifecycle_stage: str = LifecycleStage.ACTIVE
    params: Sequence[Param] = field(default_factory=tuple)
    tags: Sequence[RunTag] = field(default_factory=tuple)
    metrics: Sequence[Metric] = field(default_factory=tuple)
    #: Dataset inputs, as log-inputs' `datasets` items ({"dataset": {...}, "tags": [...]}).
    inputs: Sequence[dict[str, Any]] = field(default_factory=tuple)


def validate(runs: Sequence[ImportedRun]) -> None:
    """Everything checkable without the database, for the whole batch, before anything is written."""
    if not runs:
        raise ModelyardException.invalid_parameter("Give at least one run to import.")
    if len(runs) > MAX_RUNS:
        raise ModelyardException.invalid_parameter(f"An import request holds at most {MAX_RUNS} runs, not {len(runs)}.")
    points = sum(len(r.metrics) for r in runs)
    if points > MAX_POINTS:
        raise ModelyardException.invalid_parameter(
            f"An import request holds at most {MAX_POINTS} metric points, not {points}: split it."
        )
    for run in runs:
        if run.run_name is not None:
            validation.validate_run_name(run.run_name)
        input_rows(run.inputs)
        RunStatus.validate(run.status)
        if run.lifecycle_stage not in (LifecycleStage.ACTIVE, LifecycleStage.DELETED):
            raise ModelyardException.invalid_parameter(f"Run {run.run_name!r}: lifecycle_stage {run.lifecycle_stage!r}.")
        for value, name in ((run.start_time, "start_time"), (run.end_time, "end_time")):
            if value is not None:
                validation.validate_int64(value, name)
        validation.validate_metrics(run.metrics)
        seen: dict[str, str] = {}
        for param in run.params:
            validation.validate_param(param)
            if seen.setdefault(param.key, param.value) != param.value:
                raise ModelyardException.invalid_parameter(f"Run {run.run_name!r}: param {param.key!r} given twice.")
        for tag in run.tags:
            validation.validate_tag(tag)


def import_runs(engine: Engine, experiment_id: str, runs: Sequence[ImportedRun]) -> list[str]:
    """Write the runs into the (active) experiment in one transaction; their new ids, in order."""
    validate(runs)
    now = int(time.time() * 1000)
    with Session(engine) as session, session.begin():
        experiment = session.get(SqlExperiment, _experiment_key(experiment_id))
        if experiment is None:
            raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise ModelyardException.invalid_parameter(f"The experiment {experiment_id} must be in the 'active' state.")
        root = (experiment.artifact_location or "").rstrip("/")
        if not root:
            raise ModelyardException.invalid_parameter(f"The experiment {experiment_id} has no artifact location.")
        ids = [uuid.uuid4().hex for _ in runs]
        run_rows, params, tags, points, latest, inputs = [], [], [], [], [], []
        for run_id, run in zip(ids, runs, strict=True):
            deleted = run.lifecycle_stage == LifecycleStage.DELETED
            name = run.run_name or generate_run_name()
            run_rows.append({
                "run_uuid": run_id, "name": name, "experiment_id": experiment.experiment_id,
                "user_id": run.user_id or "", "status": run.status, "start_time": run.start_time,
                "end_time": run.end_time, "deleted_time": now if deleted else None,
                "lifecycle_stage": run.lifecycle_stage, "artifact_uri": f"{root}/{run_id}/artifacts",
            })  # fmt: skip
            params += [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted({p.key: p.value for p in run.params}.items())]
            named = {t.key: t.value for t in run.tags} | {RUN_NAME_TAG: name}
            tags += [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted(named.items())]
            history = _points(run_id, run.metrics)
            points += history
            latest += _latest(history)
            inputs += [{"run_uuid": run_id, **row} for row in input_rows(run.inputs)]
        # One statement per table on PostgreSQL (arrays through unnest): executemany would send a
        # statement per row, and fire the params/tags JSON triggers once per row (~10 ms a run).
        for table, rows in ((SqlRun, run_rows), (SqlParam, params), (SqlTag, tags), (SqlMetric, points), (SqlLatestMetric, latest), (SqlInput, inputs)):
            execute_upsert(session, table, rows, _plain)
    return ids


def _plain(stmt: Any) -> Any:
    """No ON CONFLICT clause: every row is new (fresh run ids)."""
    return stmt


def _experiment_key(experiment_id: str) -> int:
    if not validation.is_experiment_id(experiment_id):
        raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
    return int(experiment_id)


def _points(run_id: str, metrics: Sequence[Metric]) -> list[dict[str, object]]:
    """History rows, a repeated point once (the table's key includes the value, as log-batch's)."""
    unique: dict[tuple[str, int, int, float], bool] = {}
    for m in metrics:
        is_nan = math.isnan(m.value)
        unique[(m.key, int(m.step), int(m.timestamp), 0.0 if is_nan else float(m.value))] = is_nan
    return [
        {"run_uuid": run_id, "key": k, "step": s, "timestamp": ts, "value": v, "is_nan": nan}
        for (k, s, ts, v), nan in sorted(unique.items())
    ]


def _latest(points: list[dict[str, object]]) -> list[dict[str, object]]:
    best: dict[object, dict[str, object]] = {}
    for p in points:  # sorted by (key, step, timestamp, value): the last of a key is its greatest
        best[p["key"]] = p
    return list(best.values())
