"""Run and experiment searches' test helpers: runs inserted straight into the tables (`Db`), searched
through `search_run_ids` / `search_experiment_ids`, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from modelyard import errors
from modelyard.entities import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.schema import (
    Base,
    SqlExperiment,
    SqlExperimentTag,
    SqlLatestMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from modelyard.store.tracking.experiment_search import search_experiment_ids
from modelyard.store.tracking.sql_run_page import RunSearch
from modelyard.store.tracking.sql_search import search_run_ids


@dataclass
class R:
    """A run to insert: metrics map key -> latest value (NaN allowed)."""

    id: str
    start: int | None = 1000
    exp: int = 1
    status: str = "FINISHED"
    name: str | None = None
    user: str | None = "alice"
    end: int | None = None
    stage: str = "active"
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class Db:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.experiments: set[int] = set()

    def experiment(self, exp_id: int, name: str | None = None, **cols: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(SqlExperiment.__table__).values(
                    experiment_id=exp_id,
                    name=name or f"exp-{exp_id}",
                    lifecycle_stage=cols.pop("stage", "active"),
                    **cols,
                )
            )
        self.experiments.add(exp_id)

    def experiment_tags(self, exp_id: int, **tags: str) -> None:
        with self.engine.begin() as conn:
            for key, value in tags.items():
                conn.execute(
                    insert(SqlExperimentTag.__table__).values(experiment_id=exp_id, key=key, value=value)
                )

    def runs(self, *runs: R) -> None:
        with self.engine.begin() as conn:
            for exp in {r.exp for r in runs} - self.experiments:
                conn.execute(
                    insert(SqlExperiment.__table__).values(
                        experiment_id=exp, name=f"exp-{exp}", lifecycle_stage="active"
                    )
                )
                self.experiments.add(exp)
            rows = [
                dict(
                    run_uuid=r.id,
                    name=r.name,
                    experiment_id=r.exp,
                    user_id=r.user,
                    status=r.status,
                    start_time=r.start,
                    end_time=r.end,
                    lifecycle_stage=r.stage,
                    artifact_uri=f"s3://bucket/{r.id}",
                )
                for r in runs
            ]
            conn.execute(insert(SqlRun.__table__), rows)
            params = [dict(run_uuid=r.id, key=k, value=v) for r in runs for k, v in r.params.items()]
            tags = [dict(run_uuid=r.id, key=k, value=v) for r in runs for k, v in r.tags.items()]
            metrics = [
                dict(
                    run_uuid=r.id,
                    key=k,
                    value=0.0 if math.isnan(v) else v,
                    is_nan=math.isnan(v),
                    timestamp=1,
                    step=0,
                )
                for r in runs
                for k, v in r.metrics.items()
            ]
            if params:
                conn.execute(insert(SqlParam.__table__), params)
            if tags:
                conn.execute(insert(SqlTag.__table__), tags)
            if metrics:
                conn.execute(insert(SqlLatestMetric.__table__), metrics)

    def page(
        self,
        filter_string: str | None = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        experiment_ids: Sequence[str | int] = ("1",),
        view_type: int = ViewType.ACTIVE_ONLY,
    ) -> tuple[list[str], str | None]:
        with Session(self.engine) as session:
            return search_run_ids(
                session, experiment_ids, filter_string, view_type, max_results, order_by, page_token
            )

    def ids(
        self, filter_string: str | None = "", order_by: Sequence[str] | None = None, **kw: object
    ) -> list[str]:
        ids, token = self.page(filter_string, order_by, **kw)  # type: ignore[arg-type]
        assert token is None
        return ids

    def matching(self, filter_string: str, **kw: object) -> set[str]:
        return set(self.ids(filter_string, **kw))

    def experiment_page(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view_type: int = ViewType.ACTIVE_ONLY,
    ) -> tuple[list[int], str | None]:
        with Session(self.engine) as session:
            return search_experiment_ids(session, view_type, max_results, filter_string, order_by, page_token)


#: Each orderable attribute's field of `R`.
ATTRIBUTE_FIELDS = {
    "run_name": "name",
    "end_time": "end",
    "status": "status",
    "user_id": "user",
    "start_time": "start",
}


def mlflow_order(runs: list[R], attribute: str, ascending: bool) -> list[str]:
    """MLflow's order of `runs` by an attribute: its values (strings bytewise), NULLs last in either
    direction, then start time newest first (NULLs last), then run id; by sorts stable in turn."""
    field = ATTRIBUTE_FIELDS[attribute]
    out = sorted(runs, key=lambda r: r.id)
    out = sorted(out, key=lambda r: (r.start is None, -(r.start or 0)))
    if attribute == "start_time":  # then it is no tie-break: order by it alone, NULLs last
        out = sorted(out, key=lambda r: r.id)
    valued = sorted(
        (r for r in out if getattr(r, field) is not None),
        key=lambda r: getattr(r, field),
        reverse=not ascending,
    )
    return [r.id for r in valued] + [r.id for r in out if getattr(r, field) is None]


def statements_run(db: Db, search: RunSearch, rows: bool = False) -> tuple[list[Any], list[Any]]:
    """The page's ids (`rows`: rows), and which of the search's statements ran, in order (PostgreSQL's
    walks, anchors, groups and probes: `sql_run_page.RunSearch.fetch`)."""
    names = {id(search.stmt): "full", id(search.walk): "walk", id(search.numbers_first): "numbers"}
    names |= {id(s): "anchored" for s in search.anchored}
    names |= {id(s): "group" for s in search.group_walks if s is not None}
    if search.anchors is not None:
        names[id(search.anchors.counts)] = "count"
    if search.heads is not None:
        names |= {id(search.heads.probe): "heads", id(search.heads_walk): "heads walk"}
        names[id(search.prefix_walk)] = "prefix walk"
    if search.groups is not None:
        names[id(search.groups.probe)] = "groups"
    if search.attribute_groups is not None:
        names |= {id(search.attribute_groups.first): "first", id(search.attribute_groups.next): "next"}
        names[id(search.non_numbers)] = "nulls"
    ran: list[Any] = []
    with Session(db.engine) as session:

        def execute(stmt: Any) -> Sequence[Any]:
            ran.append(names.get(id(stmt), "other"))
            return session.execute(stmt, search.params).all()

        def count(stmt: Any) -> Sequence[Any]:
            ran.append(names.get(id(stmt), "other"))
            return session.execute(stmt, search.params).one()

        fetched = search.fetch(execute, slice(1, None), count)
    return (list(fetched) if rows else [row[0] for row in fetched]), ran


def invalid(call: object, *args: object, **kwargs: object) -> ModelyardException:
    with pytest.raises(ModelyardException) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert info.value.http_status == 400
    return info.value


@pytest.fixture
def db(db_uri: str) -> Iterator[Db]:
    """An empty schema on each backend (import it into a test module to use it there)."""
    engine = create_engine_for(db_uri)
    Base.metadata.create_all(engine)
    try:
        yield Db(engine)
    finally:
        engine.dispose()
