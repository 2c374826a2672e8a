"""What every part of the SQL model registry shares: the engine and its sessions, row lookups and
the errors they raise (`SqlRegistryStore` is put together from `sql_models` and this).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.exceptions import ModelyardException
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlRegisteredModel,
)


def model_not_found(name: str) -> ModelyardException:
    return ModelyardException.not_found(f"Registered Model with name={name} not found")


def version_not_found(name: str, version: int | str) -> ModelyardException:
    return ModelyardException.not_found(f"Model Version (name={name}, version={version}) not found")


def check_page_size(max_results: int, threshold: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= threshold:
        raise ModelyardException.invalid_parameter(
            f"Invalid value for max_results: it must be between 1 and {threshold}, got {max_results!r}."
        )


def already_exists(name: str) -> ModelyardException:
    return ModelyardException.already_exists(f"Registered Model (name={name}) already exists.")


class RegistrySessions:
    """The engine (and its read-only twin), a session per call, and the row lookups every write starts from."""

    def __init__(self, engine: Engine, artifact_roots: Sequence[str] = ()) -> None:
        """`artifact_roots`: where a version's source may point when it names no run (see `sources`)."""
        self.engine = engine
        self._read_engine = engine.execution_options(**READ_ONLY)
        self._postgres = engine.dialect.name == "postgresql"
        # A single-statement read skips BEGIN/COMMIT (two round trips); shares the engine's pool.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.artifact_roots = tuple(artifact_roots)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._read_engine) as session, session.begin():
            yield session

    @property
    def _dialect(self) -> str:
        return self.engine.dialect.name

    # ---- loading -----------------------------------------------------------------------------
    @staticmethod
    def _model_row(session: Session, name: str, for_update: bool = False) -> SqlRegisteredModel:
        stmt = select(SqlRegisteredModel).where(SqlRegisteredModel.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).one_or_none()
        if row is None:
            raise model_not_found(name)
        return row

    @staticmethod
    def _version_row(session: Session, name: str, version: int) -> SqlModelVersion:
        row = session.get(SqlModelVersion, (name, version))
        if row is None:
            raise version_not_found(name, version)
        return row
