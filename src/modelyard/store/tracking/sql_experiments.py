"""Experiments in the SQL tracking store: create, read, search, rename, delete/restore (with their
runs), tags."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.entities import Experiment, ExperimentTag, LifecycleStage, PagedList, ViewType
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits, validation
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.dialect import upsert_insert
from modelyard.store.sql.schema import SqlExperiment, SqlExperimentTag, SqlRun
from modelyard.store.tracking import artifact_locations, experiment_search
from modelyard.store.tracking.sql_sessions import SqlSessions, now_ms


class SqlExperiments(SqlSessions):
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] = ()
    ) -> str:
        validation.validate_experiment_name(name)
        tag_map = _experiment_tag_map(tags)
        location = None
        if artifact_location:
            roots = (self.default_artifact_root, *self.allowed_artifact_roots)
            location = artifact_locations.check_within_roots(artifact_location, roots)
        try:
            with self._write() as session:
                if (
                    session.scalar(select(SqlExperiment.experiment_id).where(SqlExperiment.name == name))
                    is not None
                ):
                    raise _experiment_exists(name)
                now = now_ms()
                row = SqlExperiment(
                    name=name,
                    artifact_location=location,
                    lifecycle_stage=LifecycleStage.ACTIVE,
                    creation_time=now,
                    last_update_time=now,
                )
                session.add(row)
                session.flush()
                if location is None:
                    row.artifact_location = artifact_locations.location_for(
                        self.default_artifact_root, row.experiment_id
                    )
                session.add_all(
                    SqlExperimentTag(experiment_id=row.experiment_id, key=k, value=v)
                    for k, v in tag_map.items()
                )
                return str(row.experiment_id)
        except IntegrityError as exc:
            # Two clients created the same name at once; the loser gets MLflow's answer.
            raise _experiment_exists(name) from exc

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as session:
            return self._load_experiments(
                session, [self._experiment_row(session, experiment_id).experiment_id]
            )[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as session:
            experiment_id = session.scalar(
                select(SqlExperiment.experiment_id).where(SqlExperiment.name == name)
            )
            if experiment_id is None:
                return None
            return self._load_experiments(session, [experiment_id])[0]

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = limits.SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[Experiment]:
        if self._postgres:
            # One statement, its tags as arrays (`experiment_search.page_with_tags`), autocommitted.
            with self._autocommit.connect() as conn:
                rows, token = experiment_search.search_experiment_rows(
                    functools.partial(experiment_search.page_with_tags, conn),
                    view_type, max_results, filter_string, order_by, page_token, visible, "postgresql",
                )  # fmt: skip
            return PagedList(self._experiments(rows, experiment_search.tags_from_arrays), token)
        with self._read() as session:
            rows, token = experiment_search.search_experiment_rows(
                lambda _search, stmt, params: session.execute(stmt, params).all(),
                view_type, max_results, filter_string, order_by, page_token, visible, "sqlite",
            )  # fmt: skip
            tags = experiment_search.tags_of(session, [row[0] for row in rows])
        return PagedList(self._experiments(rows, lambda row: tags.get(row[0], {})), token)

    def delete_experiment(self, experiment_id: str) -> None:
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            # The runs go with it; runs deleted earlier keep their own deleted_time, which is how
            # restore_experiment tells them apart: so this deletion's time must come after theirs,
            # even when one of them was deleted in the same millisecond.
            earlier = session.scalar(
                select(func.max(SqlRun.deleted_time)).where(SqlRun.experiment_id == row.experiment_id)
            )
            now = max(now_ms(), (earlier or 0) + 1)
            row.lifecycle_stage = LifecycleStage.DELETED
            row.last_update_time = now
            session.execute(
                update(SqlRun)
                .where(
                    SqlRun.experiment_id == row.experiment_id, SqlRun.lifecycle_stage == LifecycleStage.ACTIVE
                )
                .values(lifecycle_stage=LifecycleStage.DELETED, deleted_time=now)
            )

    def restore_experiment(self, experiment_id: str) -> None:
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            if row.lifecycle_stage != LifecycleStage.DELETED:
                raise ModelyardException.invalid_parameter(
                    f"Cannot restore an active experiment. Experiment id={row.experiment_id} is active."
                )
            deleted_at = row.last_update_time or 0
            row.lifecycle_stage = LifecycleStage.ACTIVE
            row.last_update_time = now_ms()
            session.execute(
                update(SqlRun)
                .where(
                    SqlRun.experiment_id == row.experiment_id,
                    SqlRun.lifecycle_stage == LifecycleStage.DELETED,
                    SqlRun.deleted_time >= deleted_at,
                )
                .values(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
            )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validation.validate_experiment_name(new_name)
        try:
            with self._write() as session:
                row = self._experiment_row(session, experiment_id)
                if row.lifecycle_stage != LifecycleStage.ACTIVE:
                    raise ModelyardException.invalid_parameter("Cannot rename a non-active experiment.")
                if row.name == new_name:
                    return
                taken = session.scalar(
                    select(SqlExperiment.experiment_id).where(SqlExperiment.name == new_name)
                )
                if taken is not None:
                    raise _experiment_exists(new_name)
                row.name = new_name
                row.last_update_time = now_ms()
        except IntegrityError as exc:
            raise _experiment_exists(new_name) from exc

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        validation.validate_experiment_tag(tag.key, tag.value)
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            _require_active_experiment(row)
            stmt = upsert_insert(session, SqlExperimentTag).values(
                experiment_id=row.experiment_id, key=tag.key, value=tag.value
            )
            session.execute(
                stmt.on_conflict_do_update(index_elements=["experiment_id", "key"], set_={"value": tag.value})
            )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._write() as session:
            row = self._experiment_row(session, experiment_id)
            _require_active_experiment(row)
            result = session.execute(
                delete(SqlExperimentTag).where(
                    SqlExperimentTag.experiment_id == row.experiment_id, SqlExperimentTag.key == key
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelyardException.not_found(
                    f"No tag with name: {key} in experiment with id {row.experiment_id}"
                )

    def _load_experiments(self, session: Session, ids: list[int]) -> list[Experiment]:
        """Experiments `ids` (unknown ids skipped), in that order."""
        if not ids:
            return []
        columns = experiment_search.COLUMNS
        found = {row[0]: row for row in session.execute(select(*columns).where(columns[0].in_(ids)))}
        tags = experiment_search.tags_of(session, list(found))
        rows = [found[i] for i in ids if i in found]
        return self._experiments(rows, lambda row: tags.get(row[0], {}))

    def _experiments(
        self, rows: Sequence[experiment_search.Row], tags: Callable[[experiment_search.Row], dict[str, str]]
    ) -> list[Experiment]:
        """Entities from rows of `experiment_search.COLUMNS`; `tags(row)`: the row's tags."""
        return experiment_search.experiment_rows(rows, tags, lambda row: self._location(row[2], row[0]))




def _experiment_tag_map(tags: Sequence[ExperimentTag]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags:
        validation.validate_experiment_tag(tag.key, tag.value)
        out[tag.key] = tag.value
    return out


def _require_active_experiment(row: SqlExperiment) -> None:
    if row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ModelyardException.invalid_parameter(
            f"The experiment {row.experiment_id} must be in the 'active' state. "
            f"Current state is {row.lifecycle_stage}."
        )


def _experiment_exists(name: str) -> ModelyardException:
    return ModelyardException.already_exists(f"Experiment(name={name}) already exists.")
