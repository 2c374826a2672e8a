"""Pages ordered by status or user_id, one value at a time (`store/tracking/sql_attribute_groups`,
PostgreSQL): every page, either direction, in every scope, is MLflow's order (a Python sort), with ties
on the start time, runs without a start time inside each value, runs without a user last, deleted runs
between; each page reads values and their index ranges (never the search's sorting statements unless
it spans more than MAX_GROUPS values); and the statements are ranges of the attribute's index."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from tests.integration.search_helpers import Db, R, mlflow_order, statements_run

from modelyard.devstack import PostgresServer
from modelyard.entities import ViewType
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.schema import Base
from modelyard.store.tracking import sql_attribute_groups, sql_search
from modelyard.store.tracking.sql_search import plan_run_search

pytestmark = pytest.mark.postgres

STATUSES = ("FINISHED",) * 16 + ("FAILED",) * 3 + ("KILLED",)
SCOPES = [(["1"], ViewType.ACTIVE_ONLY), (["1", "2"], ViewType.ALL), (["1", "2"], ViewType.DELETED_ONLY)]


def grouped_runs() -> list[R]:
    """2,400 runs of two experiments: 80% FINISHED, 15% FAILED, 5% KILLED; six users and no user (1 in
    9); start times tied (240 distinct) and missing (1 in 37); 1 in 6 deleted."""
    return [
        R(
            f"g{i * 7919 % 2400:04d}",
            exp=1 + i % 2,
            start=None if i % 37 == 0 else i % 240,
            status=STATUSES[i * 13 % 20],
            user=None if i % 9 == 4 else f"u{i % 6}",
            stage="deleted" if i % 6 == 1 else "active",
        )
        for i in range(2400)
    ]


@pytest.fixture(scope="module")
def grouped(postgres_server: PostgresServer) -> Iterator[tuple[Db, list[R]]]:
    """The runs in a database of their own, shared by this module's tests (they only read)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_engine_for(postgres_server.create_database(name))
    Base.metadata.create_all(engine)
    runs = grouped_runs()
    db = Db(engine)
    db.runs(*runs)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    try:
        yield db, runs
    finally:
        engine.dispose()
        postgres_server.drop_database(name)


@pytest.fixture(autouse=True)
def fresh_plans() -> Iterator[None]:
    sql_search.run_search_plan.cache_clear()
    yield
    sql_search.run_search_plan.cache_clear()


def paged(db: Db, order_by: list[str], experiments: list[str], view: int, size: int) -> tuple[list[str], list[list[str]]]:
    """Every page's ids, and the statements each page ran."""
    got: list[str] = []
    ran: list[list[str]] = []
    token: str | None = None
    while True:
        search = plan_run_search(experiments, "", view, size, order_by, token, "postgresql")
        assert search is not None
        rows, statements = statements_run(db, search, rows=True)
        ran.append(statements)
        page, token = search.paginate(rows, slice(1, None))
        got += [row[0] for row in page]
        if token is None:
            return got, ran


@pytest.mark.parametrize("attribute", ["status", "user_id"])
def test_pages_are_mlflows_order_read_value_by_value(grouped: tuple[Db, list[R]], attribute: str) -> None:
    """Paged 100 (and 7) runs at a time, either direction, every scope gives the Python sort's order;
    every page is read from values and their ranges: the search's sorting statements never run."""
    db, runs = grouped
    for ascending in (True, False):
        order_by = [f"attributes.{attribute} {'ASC' if ascending else 'DESC'}"]
        for experiments, view in SCOPES:
            stages = ViewType.stages(view) if view != ViewType.ALL else ("active", "deleted")
            scoped = [r for r in runs if str(r.exp) in experiments and r.stage in stages]
            expected = mlflow_order(scoped, attribute, ascending)
            for size in (100, 7) if view == ViewType.ALL else (100,):
                got, ran = paged(db, order_by, experiments, view, size)
                assert got == expected, (order_by, experiments, view, size)
                used = {name for statements in ran for name in statements}
                assert used <= {"first", "next", "group", "nulls", "full"}, used
                # Only a token among the runs without a user (they follow the values) runs the full SELECT.
                assert "full" not in used or attribute == "user_id", ran
                assert "numbers" not in used


def test_a_page_of_more_values_than_max_groups_hands_over(
    grouped: tuple[Db, list[R]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MAX_GROUPS = 1 a page that crosses into the next value is the search's own statements'
    (the same order); with 2 it reads both values."""
    db, runs = grouped
    scoped = [r for r in runs if r.exp == 1 and r.stage == "active"]
    expected = mlflow_order(scoped, "user_id", False)
    for max_groups, crossing in ((1, "numbers"), (2, "next")):
        monkeypatch.setattr(sql_attribute_groups, "MAX_GROUPS", max_groups)
        got, ran = paged(db, ["attributes.user_id DESC"], ["1"], ViewType.ACTIVE_ONLY, 100)
        assert got == expected
        assert any(crossing in statements for statements in ran), ran


def test_values_and_their_runs_are_ranges_of_the_attribute_index(grouped: tuple[Db, list[R]]) -> None:
    """The probes and walks of a first page and of a deep page within a value read the attribute's
    index in order: no sort, no sequential or bitmap scan (a value's runs without a start time aside)."""
    from sqlalchemy.dialects import postgresql

    db, _ = grouped
    for order_by, index in (
        (["attributes.status DESC"], "idx_runs_experiment_stage_status"),
        (["attributes.user_id"], "idx_runs_experiment_stage_user"),
    ):
        token = None
        for page in range(6):
            search = plan_run_search(["1"], "", ViewType.ACTIVE_ONLY, 100, order_by, token, "postgresql")
            assert search is not None and search.attribute_groups is not None
            groups = search.attribute_groups
            # Not `opening_rest`: a value's runs without a start time, few, may come from any index.
            statements = [s for s in (groups.first, groups.next, groups.opening, groups.following) if s is not None]
            params = {**search.params, "group_value": search.params.get("pos_0", "u0"), "walk_budget": 101}
            with db.engine.connect() as conn:
                for stmt in statements:
                    sql = stmt.params(params).compile(
                        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                    )
                    plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
                    assert index in plan, plan
                    assert "Sort" not in plan and "Seq Scan" not in plan and "Bitmap" not in plan, (page, plan)
            rows, _ = statements_run(db, search, rows=True)
            _, token = search.paginate(rows, slice(1, None))
            assert token is not None
