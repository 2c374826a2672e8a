"""Registry reads the web UI needs beyond MLflow's API: every version of one model, newest first,
without going through the filter grammar (a model name may hold both kinds of quotes)."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.entities import ModelVersion
from modelyard.store.registry.loading import load_versions
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.registry_schema import SqlModelVersion

#: A model page lists at most this many versions (the newest); older ones are reached by number.
MAX_VERSIONS_LISTED = 500


def versions_of(engine: Engine, name: str, limit: int = MAX_VERSIONS_LISTED) -> list[ModelVersion]:
    stmt = (
        select(SqlModelVersion.version)
        .where(SqlModelVersion.name == name)
        .order_by(SqlModelVersion.version.desc())
        .limit(limit)
    )
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        numbers = list(session.scalars(stmt))
        loaded = load_versions(session, [(name, n) for n in numbers])
        return [loaded[(name, n)] for n in numbers if (name, n) in loaded]
