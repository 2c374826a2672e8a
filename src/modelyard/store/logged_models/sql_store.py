"""Logged models (MLflow 3) on SQLite / PostgreSQL, sharing the tracking database and engine."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from modelyard.entities import LifecycleStage, LoggedModel, LoggedModelStatus, ModelOutput, PagedList
from modelyard.exceptions import ModelyardException
from modelyard.protocol.validation import validate_key, validate_string_value
from modelyard.store.logged_models import links, search
from modelyard.store.logged_models.base import (
    SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
    SEARCH_LOGGED_MODELS_MAX_RESULTS_THRESHOLD,
    LoggedModelStore,
)
from modelyard.store.logged_models.outputs import load_model_outputs
from modelyard.store.search.paging import decode_page_token, next_page, query_fingerprint
from modelyard.store.sql.dialect import execute_upsert, upsert_insert
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.logged_model_schema import (
    SqlLoggedModel,
    SqlLoggedModelParam,
    SqlLoggedModelTag,
    SqlRunModelOutput,
)
from modelyard.store.sql.schema import SqlExperiment
from modelyard.store.tracking import artifact_locations
from modelyard.store.tracking.run_checks import run_stage
from modelyard.store.tracking.run_names import generate_run_name

MAX_MODEL_NAME_LENGTH = 500
MAX_VALUE_LENGTH = 8000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _key_values(table: Any) -> Any:
    """(model_id, key, value) of the models' tags or params, by key."""
    return (
        select(table.c.model_id, table.c.key, table.c.value)
        .where(table.c.model_id.in_(bindparam("ids", expanding=True)))
        .order_by(table.c.key)
    )


# Core statements, built once, for the hot paths (finalize, get, a run's outputs): ORM loads and the
# unit of work's flush cost several times the queries' own CPU on SQLite. Rows of a table read
# through Core have the ORM class's attribute names (`_entity` takes either).
_MODELS_TABLE: Any = SqlLoggedModel.__table__
_MODEL_STAGE = select(_MODELS_TABLE.c.lifecycle_stage).where(
    _MODELS_TABLE.c.model_id == bindparam("model_id")
)
_MODELS = select(_MODELS_TABLE).where(_MODELS_TABLE.c.model_id.in_(bindparam("ids", expanding=True)))
_TAGS = _key_values(SqlLoggedModelTag.__table__)
_PARAMS = _key_values(SqlLoggedModelParam.__table__)
_FINALIZE = (
    update(_MODELS_TABLE)
    .where(
        _MODELS_TABLE.c.model_id == bindparam("id"),
        _MODELS_TABLE.c.lifecycle_stage == LifecycleStage.ACTIVE,
    )
    .values(status=bindparam("new_status"), last_updated_timestamp_ms=bindparam("updated"))
)
_EXPERIMENTS: Any = SqlExperiment.__table__
_EXPERIMENT = select(_EXPERIMENTS.c.lifecycle_stage, _EXPERIMENTS.c.artifact_location).where(
    _EXPERIMENTS.c.experiment_id == bindparam("experiment_id")
)


def _not_found(model_id: str) -> ModelyardException:
    return ModelyardException.not_found(f"Logged model with ID '{model_id}' not found.")


def _pairs(items: Mapping[str, str] | None, kind: str) -> list[tuple[str, str]]:
    out = []
    for key, value in (items or {}).items():
        validate_key(key, kind)
        validate_string_value(value, f"{kind} '{key}'", MAX_VALUE_LENGTH)
        out.append((key, value))
    return out


class SqlLoggedModelStore(LoggedModelStore):
    def __init__(self, engine: Engine, default_artifact_root: str) -> None:
        """`default_artifact_root` places models of an experiment that has no location yet (`0`)."""
        self.engine = engine
        self._read_engine = engine.execution_options(**READ_ONLY)
        self.default_artifact_root = artifact_locations.resolve_root(default_artifact_root)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._read_engine) as session, session.begin():
            yield session

    # ---- writes ------------------------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        name = name or generate_run_name()
        if not isinstance(name, str) or len(name) > MAX_MODEL_NAME_LENGTH:
            raise ModelyardException.invalid_parameter(
                f"Invalid logged model name: it must be a string of at most {MAX_MODEL_NAME_LENGTH} characters."
            )
        tag_items, param_items = _pairs(tags, "tag"), _pairs(params, "param")
        exp_id = _experiment_id(experiment_id)
        with self._write() as session:
            experiment = session.execute(_EXPERIMENT, {"experiment_id": exp_id}).first()
            if experiment is None or experiment.lifecycle_stage != LifecycleStage.ACTIVE:
                raise ModelyardException.not_found(f"No active experiment with id={experiment_id} exists.")
            # Like MLflow, the source run is recorded as given: it may live on another server or workspace.
            model_id = f"m-{uuid.uuid4().hex}"
            root = experiment.artifact_location or artifact_locations.location_for(
                self.default_artifact_root, exp_id
            )
            now = _now_ms()
            values = {
                "model_id": model_id,
                "experiment_id": exp_id,
                "name": name,
                "artifact_location": f"{root.rstrip('/')}/models/{model_id}/artifacts",
                "creation_timestamp_ms": now,
                "last_updated_timestamp_ms": now,
                "status": LoggedModelStatus.PENDING,
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "model_type": model_type or None,
                "source_run_id": source_run_id or None,
                "status_message": None,
            }
            # Core inserts: the unit of work's two flushes cost more CPU than the whole request's SQL.
            session.execute(insert(_MODELS_TABLE), values)
            for table, items in ((SqlLoggedModelTag, tag_items), (SqlLoggedModelParam, param_items)):
                if items:
                    rows = [{"model_id": model_id, "key": k, "value": v} for k, v in items]
                    session.execute(insert(table.__table__), rows)
            # Built from what was just written, not read back (three queries): a new model has no metrics.
            row = SimpleNamespace(**values)  # a row of the table, as `_entity` reads one
            return _entity(row, dict(sorted(tag_items)), dict(sorted(param_items)), [])

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        parsed = LoggedModelStatus.parse(status)
        if parsed == LoggedModelStatus.PENDING:
            raise ModelyardException.invalid_parameter(
                "A logged model can only be finalized as LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED."
            )
        with self._write() as session:
            updated = 0
            if isinstance(model_id, str) and model_id:
                values = {"id": model_id, "new_status": parsed, "updated": _now_ms()}
                updated = session.execute(_FINALIZE, values).rowcount  # type: ignore[attr-defined]
            if not updated:
                raise _not_found(str(model_id))
            return self._load(session, [model_id])[0]

    def delete_logged_model(self, model_id: str) -> None:
        with self._write() as session:
            row = self._row(session, model_id)
            row.lifecycle_stage = LifecycleStage.DELETED
            row.last_updated_timestamp_ms = _now_ms()

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        items = _pairs(tags, "tag")
        with self._write() as session:
            self._row(session, model_id).last_updated_timestamp_ms = _now_ms()
            if items:
                stmt = upsert_insert(session, SqlLoggedModelTag).values(
                    [{"model_id": model_id, "key": k, "value": v} for k, v in dict(items).items()]
                )
                session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["model_id", "key"], set_={"value": stmt.excluded.value}
                    )
                )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        validate_key(key, "tag")
        with self._write() as session:
            self._row(session, model_id)
            deleted = session.execute(
                delete(SqlLoggedModelTag).where(
                    SqlLoggedModelTag.model_id == model_id, SqlLoggedModelTag.key == key
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelyardException.not_found(f"No tag with key '{key}' on logged model '{model_id}'.")

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        items = _pairs(params, "param")
        with self._write() as session:
            self._row(session, model_id)
            existing = {
                p.key: p.value
                for p in session.scalars(
                    select(SqlLoggedModelParam).where(
                        SqlLoggedModelParam.model_id == model_id,
                        SqlLoggedModelParam.key.in_([k for k, _ in items]),
                    )
                )
            }
            for key, value in items:
                if key in existing and existing[key] != value:
                    raise ModelyardException.invalid_parameter(
                        f"Changing param values is not allowed. Param with key='{key}' was already logged "
                        f"with value='{existing[key]}' for logged model '{model_id}'. Attempted new value: '{value}'."
                    )
            session.add_all(
                SqlLoggedModelParam(model_id=model_id, key=k, value=v)
                for k, v in dict(items).items()
                if k not in existing
            )

    def log_outputs(self, run_id: str, models: Sequence[ModelOutput]) -> None:
        with self._write() as session:
            stage = run_stage(session, run_id)
            if stage is None:
                raise ModelyardException.not_found(f"Run with id={run_id} not found")
            if stage != LifecycleStage.ACTIVE:
                raise ModelyardException.invalid_parameter(f"The run {run_id} must be in the 'active' state.")
            by_id = {m.model_id: int(m.step) for m in models}
            for model_id in by_id:
                self._require_active(session, model_id)
            execute_upsert(
                session,
                SqlRunModelOutput,
                [{"run_uuid": run_id, "model_id": k, "step": v} for k, v in sorted(by_id.items())],
                _replace_step,
            )

    # ---- reads -------------------------------------------------------------------------------
    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self._read() as session:
            self._require_active(session, model_id)
            return self._load(session, [model_id])[0]

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
    ) -> PagedList[LoggedModel]:
        if (
            isinstance(max_results, bool)
            or not 1 <= max_results <= SEARCH_LOGGED_MODELS_MAX_RESULTS_THRESHOLD
        ):
            raise ModelyardException.invalid_parameter(
                f"Invalid value for max_results: it must be between 1 and {SEARCH_LOGGED_MODELS_MAX_RESULTS_THRESHOLD}."
            )
        exp_ids = [_experiment_id(e) for e in experiment_ids]
        node = search.LOGGED_MODELS.parse_filter(filter_string)
        clauses = search.order_clauses(order_by)
        dataset_cond = search.datasets_condition(datasets)
        parts: list[Any] = [
            "logged_models",
            sorted(exp_ids),
            filter_string or "",
            [dict(o) for o in order_by or []],
        ]
        if datasets:
            parts.append([dict(d) for d in datasets])
        fingerprint = query_fingerprint(*parts)
        offset = decode_page_token(page_token, fingerprint)
        stmt = select(SqlLoggedModel.model_id).where(SqlLoggedModel.lifecycle_stage == LifecycleStage.ACTIVE)
        if exp_ids:
            stmt = stmt.where(SqlLoggedModel.experiment_id.in_(exp_ids))
        cond = search.condition(node, self.engine.dialect.name)
        if cond is not None:
            stmt = stmt.where(cond)
        if dataset_cond is not None:
            stmt = stmt.where(dataset_cond)
        stmt = stmt.order_by(*clauses).offset(offset).limit(max_results + 1)
        with self._read() as session:
            ids, token = next_page(list(session.scalars(stmt)), max_results, offset, fingerprint)
            return PagedList(self._load(session, ids), token)

    def get_model_outputs(self, run_ids: Sequence[str]) -> dict[str, list[ModelOutput]]:
        with self._read() as session:
            return load_model_outputs(session, run_ids)

    # ---- loading -----------------------------------------------------------------------------
    @staticmethod
    def _row(session: Session, model_id: str) -> SqlLoggedModel:
        row = session.get(SqlLoggedModel, model_id) if isinstance(model_id, str) and model_id else None
        if row is None or row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise _not_found(str(model_id))
        return row

    @staticmethod
    def _require_active(session: Session, model_id: str) -> None:
        """`_row`'s check, for callers that do not change the model's own row."""
        stage = None
        if isinstance(model_id, str) and model_id:
            stage = session.execute(_MODEL_STAGE, {"model_id": model_id}).scalar()
        if stage != LifecycleStage.ACTIVE:
            raise _not_found(str(model_id))

    @staticmethod
    def _load(session: Session, model_ids: Sequence[str]) -> list[LoggedModel]:
        if not model_ids:
            return []
        ids = {"ids": list(model_ids)}
        rows = {r.model_id: r for r in session.execute(_MODELS, ids)}
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        for model_id, key, value in session.execute(_TAGS, ids):
            tags[model_id][key] = value
        params: dict[str, dict[str, str]] = defaultdict(dict)
        for model_id, key, value in session.execute(_PARAMS, ids):
            params[model_id][key] = value
        metrics = links.load_model_metrics(session, model_ids)
        out = []
        for model_id in model_ids:
            row = rows.get(model_id)
            if row is None:
                continue
            out.append(_entity(row, tags.get(model_id, {}), params.get(model_id, {}), metrics.get(model_id, [])))
        return out


def _replace_step(stmt: Any) -> Any:
    return stmt.on_conflict_do_update(
        index_elements=["run_uuid", "model_id"], set_={"step": stmt.excluded.step}
    )


def _entity(row: Any, tags: dict[str, str], params: dict[str, str], metrics: list[Any]) -> LoggedModel:
    return LoggedModel(
        model_id=row.model_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        creation_timestamp=row.creation_timestamp_ms,
        last_updated_timestamp=row.last_updated_timestamp_ms,
        status=row.status,
        model_type=row.model_type,
        source_run_id=row.source_run_id,
        status_message=row.status_message,
        tags=tags,
        params=params,
        metrics=metrics,
    )


def _experiment_id(experiment_id: Any) -> int:
    text = str(experiment_id).strip() if experiment_id is not None else ""
    if not text.isdigit() or len(text) > 9:
        raise ModelyardException.invalid_parameter(f"Invalid experiment ID: '{experiment_id}'.")
    return int(text)
