"""The model registry on SQLite / PostgreSQL, sharing the tracking database (and its engine).

Version numbers: `create_model_version` bumps `registered_models.last_version` with a single
`UPDATE ... RETURNING` inside the transaction that inserts the version. On PostgreSQL that UPDATE
row-locks the model, so concurrent registrations of one model queue on the lock and each reads the
counter its predecessor committed; on SQLite every writing transaction starts with BEGIN IMMEDIATE,
which serialises them outright. Either way the numbers are 1..N without gaps or duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, select, update

from modelyard.clock import now_ms
from modelyard.entities import (
    ModelVersion,
    ModelVersionStage,
    PagedList,
)
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events, search
from modelyard.store.registry.base import (
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD,
    RegistryStore,
)
from modelyard.store.registry.lineage import SessionLookup, record_version_on_model
from modelyard.store.registry.loading import load_versions
from modelyard.store.registry.sources import resolve_source
from modelyard.store.registry.sql_models import SqlRegisteredModels
from modelyard.store.registry.sql_sessions import (
    check_page_size,
    model_not_found,
    version_not_found,
)
from modelyard.store.registry.validation import (
    parse_version,
    validate_description,
    validate_model_name,
    validate_tag,
)
from modelyard.store.search import visibility
from modelyard.store.search.paging import decode_page_token, next_page, query_fingerprint
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.engine import create_engine_for, is_sqlite
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
)


class SqlRegistryStore(SqlRegisteredModels, RegistryStore):
    """The registry: registered models and aliases (`sql_models`), model versions (here)."""

    @classmethod
    def from_uri(cls, uri: str, artifact_roots: Sequence[str] = ()) -> SqlRegistryStore:
        """SQLite is migrated here (embedded use); PostgreSQL must be upgraded beforehand."""
        engine = create_engine_for(uri)
        if is_sqlite(engine):
            from modelyard.store.sql.migrate import upgrade

            upgrade(engine)
        return cls(engine, artifact_roots)

    # ---- model versions ----------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        validate_model_name(name)
        validate_description(description)
        tag_items = [validate_tag(k, v) for k, v in (tags or {}).items()]
        if not isinstance(source, str):
            raise ModelyardException.invalid_parameter("Model version source must be a string.")
        with self._write() as session:
            if session.get(SqlRegisteredModel, name) is None:
                raise model_not_found(name)
            resolved = resolve_source(
                source, run_id or None, self.artifact_roots, SessionLookup(session), model_id or None
            )
            now = now_ms()
            version = session.execute(
                update(SqlRegisteredModel)
                .where(SqlRegisteredModel.name == name)
                .values(last_version=SqlRegisteredModel.last_version + 1, last_updated_time=now)
                .returning(SqlRegisteredModel.last_version)
                .execution_options(synchronize_session=False)
            ).scalar_one()
            session.add(
                SqlModelVersion(
                    name=name,
                    version=version,
                    creation_time=now,
                    last_updated_time=now,
                    description=description,
                    current_stage=ModelVersionStage.NONE,
                    source=source,
                    storage_location=resolved.storage_location,
                    run_id=resolved.run_id,
                    run_link=run_link or None,
                    status="READY",
                    model_id=resolved.model_id,
                )
            )
            session.flush()
            if model_id:
                record_version_on_model(session, model_id, name, version)
            session.add_all(
                SqlModelVersionTag(name=name, version=version, key=k, value=v) for k, v in tag_items
            )
            events.record(
                session, events.VERSION_CREATED, name, now, version=version, source=source, run_id=resolved.run_id
            )
            session.flush()
            return load_versions(session, [(name, version)])[(name, version)]

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        validate_model_name(name)
        number = parse_version(version)
        with self._read() as session:
            found = load_versions(session, [(name, number)])
            if not found:
                raise version_not_found(name, number)
            return found[(name, number)]

    def update_model_version(self, name: str, version: str | int, description: str | None) -> ModelVersion:
        validate_model_name(name)
        validate_description(description)
        number = parse_version(version)
        with self._write() as session:
            row = self._version_row(session, name, number)
            if row.description != description:
                events.record(
                    session, events.VERSION_DESCRIPTION, name, now_ms(), version=number, description=description
                )
            row.description = description
            row.last_updated_time = now_ms()
            session.flush()
            return load_versions(session, [(name, number)])[(name, number)]

    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        archive_existing_versions: bool = False,
        rollback_of: int | None = None,
    ) -> ModelVersion:
        validate_model_name(name)
        number = parse_version(version)
        target = ModelVersionStage.canonical(stage)
        if archive_existing_versions and target not in ModelVersionStage.ARCHIVE_TRIGGERS:
            raise ModelyardException.invalid_parameter(
                f"Model version transition cannot archive existing model versions because '{target}' is "
                "not an Active stage. Valid stages are Staging and Production."
            )
        with self._write() as session:
            # Lock the model row first, so two concurrent promotions with archiving serialise.
            self._model_row(session, name, for_update=True)
            row = self._version_row(session, name, number)
            now = now_ms()
            archived: list[int] = []
            if archive_existing_versions:
                archived = list(
                    session.scalars(
                        select(SqlModelVersion.version).where(
                            SqlModelVersion.name == name,
                            SqlModelVersion.version != number,
                            SqlModelVersion.current_stage == target,
                        )
                    )
                )
                for other in archived:
                    events.record(
                        session,
                        events.STAGE_TRANSITIONED,
                        name,
                        now,
                        version=other,
                        subject=ModelVersionStage.ARCHIVED,
                        from_stage=target,
                        archived_by=number,
                    )
                session.execute(
                    update(SqlModelVersion)
                    .where(
                        SqlModelVersion.name == name,
                        SqlModelVersion.version != number,
                        SqlModelVersion.current_stage == target,
                    )
                    .values(current_stage=ModelVersionStage.ARCHIVED, last_updated_time=now)
                    .execution_options(synchronize_session=False)
                )
            if row.current_stage != target or archived:
                events.record(
                    session,
                    events.STAGE_TRANSITIONED,
                    name,
                    now,
                    version=number,
                    subject=target,
                    from_stage=row.current_stage,
                    archive_existing_versions=archive_existing_versions or None,
                    archived=archived or None,
                    rollback_of=rollback_of,
                )
            row.current_stage = target
            row.last_updated_time = now
            session.execute(
                update(SqlRegisteredModel)
                .where(SqlRegisteredModel.name == name)
                .values(last_updated_time=now)
            )
            session.flush()
            return load_versions(session, [(name, number)])[(name, number)]

    def delete_model_version(self, name: str, version: str | int) -> None:
        validate_model_name(name)
        number = parse_version(version)
        with self._write() as session:
            self._version_row(session, name, number)
            key = (SqlModelVersion.name == name, SqlModelVersion.version == number)
            now = now_ms()
            for alias in session.scalars(
                select(SqlRegisteredModelAlias.alias).where(
                    SqlRegisteredModelAlias.name == name, SqlRegisteredModelAlias.version == number
                )
            ):
                events.record(
                    session, events.ALIAS_DELETED, name, now, version=number, subject=alias, reason="version_deleted"
                )
            events.record(session, events.VERSION_DELETED, name, now, version=number)
            session.execute(
                delete(SqlRegisteredModelAlias).where(
                    SqlRegisteredModelAlias.name == name, SqlRegisteredModelAlias.version == number
                )
            )
            session.execute(
                delete(SqlModelVersionTag).where(
                    SqlModelVersionTag.name == name, SqlModelVersionTag.version == number
                )
            )
            session.execute(delete(SqlModelVersion).where(*key))
            session.execute(
                update(SqlRegisteredModel)
                .where(SqlRegisteredModel.name == name)
                .values(last_updated_time=now_ms())
            )

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        validate_model_name(name)
        number = parse_version(version)
        with self._read() as session:
            row = self._version_row(session, name, number)
            return row.storage_location or row.source or ""

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[ModelVersion]:
        check_page_size(max_results, SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD)
        node = search.MODEL_VERSIONS.parse_filter(filter_string)
        order = search.MODEL_VERSIONS.parse_order_by(order_by)
        fingerprint = query_fingerprint("model_versions", filter_string or "", list(order_by or []))
        offset = decode_page_token(page_token, fingerprint)
        stmt = select(SqlModelVersion.name, SqlModelVersion.version)
        condition = search.model_version_condition(node, self._dialect)
        if condition is not None:
            stmt = stmt.where(condition)
        if (only_visible := visibility.condition(SqlModelVersion.name, visible)) is not None:
            stmt = stmt.where(only_visible)
        clauses = search.version_order_clauses(order)
        keys_ordered = {o.key for o in order}
        if "name" not in keys_ordered:
            clauses.append(SqlModelVersion.name.asc())
        if "version_number" not in keys_ordered:
            clauses.append(SqlModelVersion.version.desc())
        stmt = stmt.order_by(*clauses).offset(offset).limit(max_results + 1)
        with self._read() as session:
            rows = [(n, v) for n, v in session.execute(stmt).all()]
            keys, token = next_page(rows, max_results, offset, fingerprint)
            loaded = load_versions(session, keys)
            return PagedList([loaded[k] for k in keys if k in loaded], token)

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        validate_model_name(name)
        number = parse_version(version)
        validate_tag(key, value)
        with self._write() as session:
            self._version_row(session, name, number)
            tag = session.get(SqlModelVersionTag, (name, number, key))
            if tag is None or tag.value != value:
                events.record(session, events.VERSION_TAG_SET, name, now_ms(), version=number, key=key, value=value)
            if tag is None:
                session.add(SqlModelVersionTag(name=name, version=number, key=key, value=value))
            else:
                tag.value = value

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        validate_model_name(name)
        number = parse_version(version)
        validate_tag(key, "")
        with self._write() as session:
            self._version_row(session, name, number)
            removed = session.execute(
                delete(SqlModelVersionTag).where(
                    SqlModelVersionTag.name == name,
                    SqlModelVersionTag.version == number,
                    SqlModelVersionTag.key == key,
                )
            )
            if removed.rowcount:
                events.record(session, events.VERSION_TAG_DELETED, name, now_ms(), version=number, key=key)
