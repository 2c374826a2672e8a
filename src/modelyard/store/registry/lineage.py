"""What registering a version reads and writes outside the registry tables, in the registering transaction.

`SessionLookup` answers `sources.SourceLookup` (runs, logged models, existing versions) from the
session that inserts the version, so the checks and the insert see one snapshot. `record_version_on_model`
keeps MLflow's `mlflow.modelVersions` tag on the logged model a version was registered from: MLflow's
server writes it (a JSON list of `{"name", "version"}`), and the UIs of both read it.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.entities import LifecycleStage
from modelyard.protocol import text_parsing
from modelyard.store.registry.sources import LoggedModelRef, RunRef, VersionRef
from modelyard.store.sql.logged_model_schema import SqlLoggedModel, SqlLoggedModelTag
from modelyard.store.sql.registry_schema import SqlModelVersion
from modelyard.store.sql.schema import SqlRun

MODEL_VERSIONS_TAG = "mlflow.modelVersions"


class SessionLookup:
    """`sources.SourceLookup` over an open session (the same transaction that registers)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def run(self, run_id: str) -> RunRef | None:
        row = self.session.get(SqlRun, run_id)
        if row is None or row.lifecycle_stage != LifecycleStage.ACTIVE or not row.artifact_uri:
            return None
        return RunRef(row.run_uuid, row.artifact_uri)

    def logged_model(self, model_id: str) -> LoggedModelRef | None:
        row = self.session.get(SqlLoggedModel, model_id)
        if row is None or row.lifecycle_stage != LifecycleStage.ACTIVE:
            return None
        return _logged_model_ref(row)

    def logged_models_of_run(self, run_id: str) -> list[LoggedModelRef]:
        rows = self.session.scalars(
            select(SqlLoggedModel).where(
                SqlLoggedModel.source_run_id == run_id,
                SqlLoggedModel.lifecycle_stage == LifecycleStage.ACTIVE,
            )
        )
        return [_logged_model_ref(row) for row in rows]

    def model_version(self, name: str, version: str) -> VersionRef | None:
        row = self.session.get(SqlModelVersion, (name, int(version)))
        if row is None:
            return None
        return VersionRef(row.storage_location or row.source or "", row.run_id)


def _logged_model_ref(row: SqlLoggedModel) -> LoggedModelRef:
    return LoggedModelRef(row.model_id, row.artifact_location, row.source_run_id, row.name)


def record_version_on_model(session: Session, model_id: str, name: str, version: int) -> None:
    """Append `{"name", "version"}` to the model's `mlflow.modelVersions` tag. The logged model's row
    is locked first, so two registrations of one model never lose each other's entry."""
    session.execute(
        select(SqlLoggedModel.model_id).where(SqlLoggedModel.model_id == model_id).with_for_update()
    )
    tag = session.get(SqlLoggedModelTag, (model_id, MODEL_VERSIONS_TAG))
    entries = _entries(tag.value) if tag is not None else []
    entries.append({"name": name, "version": version})
    value = json.dumps(entries)
    if tag is None:
        session.add(SqlLoggedModelTag(model_id=model_id, key=MODEL_VERSIONS_TAG, value=value))
    else:
        tag.value = value


def _entries(value: str) -> list[object]:
    try:
        parsed = text_parsing.loads_json(value)
    except ValueError:
        return []
    return parsed if isinstance(parsed, list) else []
