"""MLflow 3's links from tracking writes to logged models: metrics logged with a `model_id` (and the
dataset they were computed on), and a run's model inputs.

Written in the transaction of the tracking write that carries them (`SqlTrackingStore.log_batch`,
`log_inputs`), so a batch is still all-or-nothing; a metric without a link never comes here, so the
hot metric path (`pg_metrics`) is unchanged for them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from modelyard import errors
from modelyard.entities import Metric
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.dialect import do_nothing, execute_upsert
from modelyard.store.sql.logged_model_schema import SqlLoggedModel, SqlLoggedModelMetric, SqlRunModelInput

_METRICS: Any = SqlLoggedModelMetric.__table__
#: Built once, read through Core: ORM loads of these rows cost more CPU than the query.
_MODEL_METRICS = (
    select(_METRICS)
    .where(_METRICS.c.model_id.in_(bindparam("ids", expanding=True)))
    .order_by(_METRICS.c.key, _METRICS.c.step, _METRICS.c.timestamp)
)


def has_model_links(metrics: Sequence[Metric]) -> bool:
    """Whether any metric names a logged model; refuses a dataset named by half (as MLflow does)."""
    linked = False
    for metric in metrics:
        if (metric.dataset_name is None) != (metric.dataset_digest is None):
            raise ModelyardException.invalid_parameter(
                "Both dataset_name and dataset_digest must be provided if one is provided"
            )
        linked = linked or metric.model_id is not None
    return linked


def insert_model_metrics(session: Session, run_id: str, metrics: Sequence[Metric]) -> None:
    """Record each linked metric on its logged model; a retried point is absorbed by the key."""
    linked = [m for m in metrics if m.model_id is not None]
    if not linked:
        return
    wanted = {m.model_id for m in linked}
    found = set(session.scalars(select(SqlLoggedModel.model_id).where(SqlLoggedModel.model_id.in_(wanted))))
    if missing := sorted(wanted - found):  # type: ignore[type-var]
        raise ModelyardException(f"Logged model with ID '{missing[0]}' not found.", errors.BAD_REQUEST)
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for m in linked:
        is_nan = math.isnan(m.value)
        value = 0.0 if is_nan else float(m.value)
        key = (m.model_id, m.key, int(m.step), int(m.timestamp), value)
        rows[key] = {
            "model_id": m.model_id,
            "run_uuid": run_id,
            "key": m.key,
            "step": int(m.step),
            "timestamp": int(m.timestamp),
            "value": value,
            "is_nan": is_nan,
            "dataset_name": m.dataset_name,
            "dataset_digest": m.dataset_digest,
        }
    execute_upsert(
        session,
        SqlLoggedModelMetric,
        [rows[k] for k in sorted(rows)],
        do_nothing,
    )


def load_model_metrics(session: Session, model_ids: Sequence[str]) -> dict[str, list[Metric]]:
    """`{model_id: [Metric, ...]}` (with run, model and dataset set), by key, step and time."""
    if not model_ids:
        return {}
    out: dict[str, list[Metric]] = defaultdict(list)
    for row in session.execute(_MODEL_METRICS, {"ids": list(model_ids)}):
        out[row.model_id].append(
            Metric(
                row.key,
                math.nan if row.is_nan else row.value,
                row.timestamp,
                row.step,
                run_id=row.run_uuid,
                model_id=row.model_id,
                dataset_name=row.dataset_name,
                dataset_digest=row.dataset_digest,
            )
        )
    return dict(out)


def insert_model_inputs(session: Session, run_id: str, models: Sequence[dict[str, Any]]) -> None:
    """The run's model inputs (`log-inputs` `models`); logging one again is a no-op."""
    ids = set()
    for index, item in enumerate(models):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise ModelyardException.invalid_parameter(
                f"Missing value for required parameter 'models[{index}].model_id'."
            )
        ids.add(model_id)
    execute_upsert(
        session,
        SqlRunModelInput,
        [{"run_uuid": run_id, "model_id": model_id} for model_id in sorted(ids)],
        do_nothing,
    )


def load_model_inputs(session: Session, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """`{run_id: [{"model_id": ...}, ...]}` by model id, as MLflow lists them."""
    if not run_ids:
        return {}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run_uuid, model_id in session.execute(
        select(SqlRunModelInput.run_uuid, SqlRunModelInput.model_id)
        .where(SqlRunModelInput.run_uuid.in_(list(run_ids)))
        .order_by(SqlRunModelInput.model_id)
    ):
        out[run_uuid].append({"model_id": model_id})
    return dict(out)
