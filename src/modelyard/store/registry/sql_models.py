"""Registered models on SQL: create, rename, update, delete, search, their tags and aliases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.clock import now_ms
from modelyard.entities import (
    ModelVersion,
    ModelVersionStage,
    PagedList,
    RegisteredModel,
)
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events, model_search
from modelyard.store.registry.base import (
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD,
)
from modelyard.store.registry.loading import load_models, load_versions
from modelyard.store.registry.sql_sessions import (
    RegistrySessions,
    already_exists,
    check_page_size,
    model_not_found,
)
from modelyard.store.registry.validation import (
    parse_version,
    validate_alias,
    validate_description,
    validate_model_name,
    validate_tag,
)
from modelyard.store.search import visibility
from modelyard.store.search.paging import decode_page_token, next_page
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.registry_schema import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
    SqlRegisteredModelTag,
)


class SqlRegisteredModels(RegistrySessions):
    # ---- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        validate_description(description)
        tag_items = [validate_tag(k, v) for k, v in (tags or {}).items()]
        now = now_ms()
        try:
            with self._write() as session:
                if session.get(SqlRegisteredModel, name) is not None:
                    raise already_exists(name)
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
            raise already_exists(name) from exc

    def get_registered_model(self, name: str) -> RegisteredModel:
        validate_model_name(name)
        with self._read() as session:
            models = load_models(session, [name])
            if not models:
                raise model_not_found(name)
            return models[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        validate_model_name(name)
        validate_model_name(new_name)
        try:
            with self._write() as session:
                self._model_row(session, name)
                if new_name != name:
                    if session.get(SqlRegisteredModel, new_name) is not None:
                        raise already_exists(new_name)
                    self._rename_rows(session, name, new_name)
                    events.rename(session, name, new_name)
                    events.record(session, events.MODEL_RENAMED, new_name, now_ms(), from_name=name)
                session.execute(
                    update(SqlRegisteredModel)
                    .where(SqlRegisteredModel.name == new_name)
                    .values(last_updated_time=now_ms())
                )
                session.expire_all()
                return load_models(session, [new_name])[0]
        except IntegrityError as exc:
            raise already_exists(new_name) from exc

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
                events.record(session, events.MODEL_DESCRIPTION, name, now_ms(), description=description)
            row.description = description
            row.last_updated_time = now_ms()
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
                events.record(session, events.MODEL_DELETED, name, now_ms())
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
        check_page_size(max_results, SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD)
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
            rows = session.execute(stmt, params)
            names, token = next_page([row[0] for row in rows], max_results, offset, plan.fingerprint)
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
                events.record(session, events.MODEL_TAG_SET, name, now_ms(), key=key, value=value)
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
                events.record(session, events.MODEL_TAG_DELETED, name, now_ms(), key=key)

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
                    now_ms(),
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
                events.record(session, events.ALIAS_DELETED, name, now_ms(), version=row.version, subject=alias)
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
