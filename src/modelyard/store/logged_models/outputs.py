"""Run -> logged model output links, loadable in bulk by whoever builds `Run` objects."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.entities import ModelOutput
from modelyard.store.sql.logged_model_schema import SqlRunModelOutput


def load_model_outputs(session: Session, run_ids: Sequence[str]) -> dict[str, list[ModelOutput]]:
    """`{run_id: [ModelOutput, ...]}` for the runs that have any, ordered by step then model id."""
    if not run_ids:
        return {}
    out: dict[str, list[ModelOutput]] = defaultdict(list)
    rows = session.scalars(
        select(SqlRunModelOutput)
        .where(SqlRunModelOutput.run_uuid.in_(list(run_ids)))
        .order_by(SqlRunModelOutput.step, SqlRunModelOutput.model_id)
    )
    for row in rows:
        out[row.run_uuid].append(ModelOutput(row.model_id, row.step))
    return dict(out)
