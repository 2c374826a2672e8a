"""The model registry on SQLite / PostgreSQL, sharing the tracking database (and its engine).

Version numbers: `create_model_version` bumps `registered_models.last_version` with a single
`UPDATE ... RETURNING` inside the transaction that inserts the version. On PostgreSQL that UPDATE
row-locks the model, so concurrent registrations of one model queue on the lock and each reads the
counter its predecessor committed; on SQLite every writing transaction starts with BEGIN IMMEDIATE,
which serialises them outright. Either way the numbers are 1..N without gaps or duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.entities import (
    ModelVersion,
    ModelVersionStage,
    PagedList,
    RegisteredModel,
)
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events, model_search, search
from modelyard.store.registry.base import (
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD,
    RegistryStore,
)
from modelyard.store.registry.lineage import SessionLookup, record_version_on_model
from modelyard.store.registry.loading import load_models, load_versions
from modelyard.store.registry.sources import resolve_source
from modelyard.store.registry.validation import (
    parse_version,
    validate_alias,
    validate_description,
    validate_model_name,
    validate_tag,
)
from modelyard.store.search import visibility
from modelyard.store.search.paging import decode_page_token, next_page, query_fingerprint
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.engine import READ_ONLY, create_engine_for, is_sqlite
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
    SqlRegisteredModelTag,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _model_not_found(name: str) -> ModelyardException:
    return ModelyardException.not_found(f"Registered Model with name={name} not found")


def _version_not_found(name: str, version: int | str) -> ModelyardException:
    return ModelyardException.not_found(f"Model Version (name={name}, version={version}) not found")


def _check_page_size(max_results: int, threshold: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= threshold:
        raise ModelyardException.invalid_parameter(
            f"Invalid value for max_results: it must be between 1 and {threshold}, got {max_results!r}."
        )


class SqlRegistryStore(RegistryStore):
    def __init__(self, engine: Engine, artifact_roots: Sequence[str] = ()) -> None:
        """`artifact_roots`: where a version's source may point when it names no run (see `sources`)."""
        self.engine = engine
        self._read_engine = engine.execution_options(**READ_ONLY)
        self._postgres = engine.dialect.name == "postgresql"
        # A single-statement read skips BEGIN/COMMIT (two round trips); shares the engine's pool.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.artifact_roots = tuple(artifact_roots)

    @classmethod
    def from_uri(cls, uri: str, artifact_roots: Sequence[str] = ()) -> SqlRegistryStore:
        """SQLite is migrated here (embedded use); PostgreSQL must be upgraded beforehand."""
        engine = create_engine_for(uri)
        if is_sqlite(engine):
            from modelyard.store.sql.migrate import upgrade

            upgrade(engine)
        return cls(engine, artifact_roots)

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

    # ---- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        validate_description(description)
        tag_items = [validate_tag(k, v) for k, v in (tags or {}).items()]
        now = _now_ms()
        try:
            with self._write() as session:
                if session.get(SqlRegisteredModel, name) is not None:
                    raise _already_exists(name)
                session.add(
                    SqlRegisteredModel(
                        name=name,
                        creation_time=now,
                        last_updated_time=now,
                        description=description,
                        last_version=0,
                    )
                )
                session.flush()
                session.add_all(SqlRegisteredModelTag(name=name, key=k, value=v) for k, v in tag_items)
                events.record(
                    session, events.MODEL_CREATED, name, now, description=description, tags=dict(tag_items) or None
                )
                session.flush()
                return load_models(session, [name])[0]
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise _already_exists(name) from exc

    def get_registered_model(self, name: str) -> RegisteredModel:
        validate_model_name(name)
        with self._read() as session:
            models = load_models(session, [name])
            if not models:
                raise _model_not_found(name)
            return models[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        validate_model_name(name)
        validate_model_name(new_name)
        try:
            with self._write() as session:
                self._model_row(session, name)
                if new_name != name:
                    if session.get(SqlRegisteredModel, new_name) is not None:
                        raise _already_exists(new_name)
                    self._rename_rows(session, name, new_name)
                    events.rename(session, name, new_name)
                    events.record(session, events.MODEL_RENAMED, new_name, _now_ms(), from_name=name)
                session.execute(
                    update(SqlRegisteredModel)
                    .where(SqlRegisteredModel.name == new_name)
                    .values(last_updated_time=_now_ms())
                )
                session.expire_all()
                return load_models(session, [new_name])[0]
        except IntegrityError as exc:
            raise _already_exists(new_name) from exc

    @staticmethod
    def _rename_rows(session: Session, name: str, new_name: str) -> None:
        # ON UPDATE CASCADE carries versions, tags and aliases along with the key.
        session.execute(
            update(SqlRegisteredModel).where(SqlRegisteredModel.name == name).values(name=new_name)
        )

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        validate_model_name(name)
        validate_description(description)
        with self._write() as session:
            row = self._model_row(session, name)
            if row.description != description:
                events.record(session, events.MODEL_DESCRIPTION, name, _now_ms(), description=description)
            row.description = description
            row.last_updated_time = _now_ms()
            session.flush()
            return load_models(session, [name])[0]

    def delete_registered_model(self, name: str, purge_history: bool = False) -> None:
        """Its history stays (a `model_deleted` event ends it) unless `purge_history`."""
        validate_model_name(name)
        with self._write() as session:
            self._model_row(session, name)
            if purge_history:
                events.purge(session, name)
            else:
                events.record(session, events.MODEL_DELETED, name, _now_ms())
            # Explicit child deletes: correct even on a connection without enforced foreign keys.
            session.execute(delete(SqlRegisteredModelAlias).where(SqlRegisteredModelAlias.name == name))
            session.execute(delete(SqlModelVersionTag).where(SqlModelVersionTag.name == name))
            session.execute(delete(SqlModelVersion).where(SqlModelVersion.name == name))
            session.execute(delete(SqlRegisteredModelTag).where(SqlRegisteredModelTag.name == name))
            session.execute(delete(SqlRegisteredModel).where(SqlRegisteredModel.name == name))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[RegisteredModel]:
        _check_page_size(max_results, SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD)
        plan = model_search.plan_model_search(filter_string, order_by, self._dialect)
        offset = decode_page_token(page_token, plan.fingerprint)
        stmt = plan.rows
        if (only_visible := visibility.condition(SqlRegisteredModel.name, visible)) is not None:
            stmt = stmt.where(only_visible)
        params = {"page_limit": max_results + 1, "page_offset": offset}
        if self._postgres:
            # One statement, one row per (model, latest version) (`model_search.page_rows`), autocommitted.
            with self._autocommit.connect() as conn:
                models = model_search.models_from_rows(model_search.page_rows(conn, plan, stmt, params))
            page, token = next_page(models, max_results, offset, plan.fingerprint)
            return PagedList(page, token)
        with self._read() as session:
            names, token = next_page([row[0] for row in session.execute(stmt, params)], max_results, offset, plan.fingerprint)
            return PagedList(load_models(session, names), token)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        validate_model_name(name)
        wanted = [ModelVersionStage.canonical(s) for s in stages] if stages else list(ModelVersionStage.ALL)
        with self._read() as session:
            self._model_row(session, name)
            rows = session.execute(
                select(SqlModelVersion.current_stage, func.max(SqlModelVersion.version))
                .where(SqlModelVersion.name == name, SqlModelVersion.current_stage.in_(wanted))
                .group_by(SqlModelVersion.current_stage)
            ).all()
            latest = {stage: version for stage, version in rows}
            keys = [(name, latest[s]) for s in dict.fromkeys(wanted) if s in latest]
            loaded = load_versions(session, keys)
            return [loaded[k] for k in keys]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_model_name(name)
        validate_tag(key, value)
        with self._write() as session:
            self._model_row(session, name)
            tag = session.get(SqlRegisteredModelTag, (name, key))
            if tag is None or tag.value != value:
                events.record(session, events.MODEL_TAG_SET, name, _now_ms(), key=key, value=value)
            if tag is None:
                session.add(SqlRegisteredModelTag(name=name, key=key, value=value))
            else:
                tag.value = value

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        validate_model_name(name)
        validate_tag(key, "")
        with self._write() as session:
            self._model_row(session, name)
            removed = session.execute(
                delete(SqlRegisteredModelTag).where(
                    SqlRegisteredModelTag.name == name, SqlRegisteredModelTag.key == key
                )
            )
            if removed.rowcount:
                events.record(session, events.MODEL_TAG_DELETED, name, _now_ms(), key=key)

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
                raise _model_not_found(name)
            resolved = resolve_source(
                source, run_id or None, self.artifact_roots, SessionLookup(session), model_id or None
            )
            now = _now_ms()
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
                raise _version_not_found(name, number)
            return found[(name, number)]

    def update_model_version(self, name: str, version: str | int, description: str | None) -> ModelVersion:
        validate_model_name(name)
        validate_description(description)
        number = parse_version(version)
        with self._write() as session:
            row = self._version_row(session, name, number)
            if row.description != description:
                events.record(
                    session, events.VERSION_DESCRIPTION, name, _now_ms(), version=number, description=description
                )
            row.description = description
            row.last_updated_time = _now_ms()
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
            now = _now_ms()
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
            now = _now_ms()
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
                .values(last_updated_time=_now_ms())
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
        _check_page_size(max_results, SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD)
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
        clauses = search.order_clauses(order, "versions")
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
                events.record(session, events.VERSION_TAG_SET, name, _now_ms(), version=number, key=key, value=value)
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
                events.record(session, events.VERSION_TAG_DELETED, name, _now_ms(), version=number, key=key)

    # ---- aliases -----------------------------------------------------------------------------
    def set_registered_model_alias(
        self, name: str, alias: str, version: str | int, rollback_of: int | None = None
    ) -> None:
        validate_model_name(name)
        validate_alias(alias)
        number = parse_version(version)
        with self._write() as session:
            # Locking the model row orders concurrent moves of its aliases, so each event's
            # from_version is the version the previous move left.
            self._model_row(session, name, for_update=True)
            self._version_row(session, name, number)
            row = session.get(SqlRegisteredModelAlias, (name, alias))
            if row is None or row.version != number:
                events.record(
                    session,
                    events.ALIAS_SET,
                    name,
                    _now_ms(),
                    version=number,
                    subject=alias,
                    from_version=None if row is None else row.version,
                    rollback_of=rollback_of,
                )
            if row is None:
                session.add(SqlRegisteredModelAlias(name=name, alias=alias, version=number))
            else:
                row.version = number

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        validate_model_name(name)
        validate_alias(alias)
        with self._write() as session:
            self._model_row(session, name, for_update=True)
            row = session.get(SqlRegisteredModelAlias, (name, alias))
            if row is not None:
                events.record(session, events.ALIAS_DELETED, name, _now_ms(), version=row.version, subject=alias)
                session.delete(row)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        validate_model_name(name)
        validate_alias(alias)
        with self._read() as session:
            self._model_row(session, name)
            row = session.get(SqlRegisteredModelAlias, (name, alias))
            if row is None:
                # MLflow answers a missing alias with 400, not 404; clients rely on the code.
                raise ModelyardException.invalid_parameter(f"Registered model alias {alias} not found.")
            return load_versions(session, [(name, row.version)])[(name, row.version)]

    # ---- loading -----------------------------------------------------------------------------
    @staticmethod
    def _model_row(session: Session, name: str, for_update: bool = False) -> SqlRegisteredModel:
        stmt = select(SqlRegisteredModel).where(SqlRegisteredModel.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).one_or_none()
        if row is None:
            raise _model_not_found(name)
        return row

    @staticmethod
    def _version_row(session: Session, name: str, version: int) -> SqlModelVersion:
        row = session.get(SqlModelVersion, (name, version))
        if row is None:
            raise _version_not_found(name, version)
        return row


def _already_exists(name: str) -> ModelyardException:
    return ModelyardException.already_exists(f"Registered Model (name={name}) already exists.")
