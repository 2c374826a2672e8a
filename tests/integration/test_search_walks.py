"""Walks and anchors (`store/tracking/sql_walks`, `sql_anchors`; PostgreSQL): a page read from the order's index
ranges (one per experiment and lifecycle stage, merged), or driven from a rare filter term's index
range, is the page the search's own full SELECT gives, on every page, whatever the budgets; on SQLite
(no walks) the same searches give the same answers. Pages ordered by an attribute (run name and end
time: ranges of their own indexes on PostgreSQL) are MLflow's order, on every page."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from tests.integration import search_helpers
from tests.integration.search_helpers import ATTRIBUTE_FIELDS, Db, R, mlflow_order, statements_run

import modelyard.store.sql.logged_model_schema  # noqa: F401  (its tables: the JSON page reads run_model_outputs)
from modelyard.entities import ViewType
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.schema import Base
from modelyard.store.tracking import sql_anchors, sql_search, sql_walks
from modelyard.store.tracking.sql_search import plan_run_search

#: The `db` fixture (an empty schema on each backend).
db = search_helpers.db


@pytest.fixture(autouse=True)
def fresh_plans() -> Iterator[None]:
    """Compiled searches (and the anchor counts they keep) are per worker: none from another test."""
    sql_search.run_search_plan.cache_clear()
    yield
    sql_search.run_search_plan.cache_clear()


@pytest.fixture
def spread(db: Db) -> Db:
    """Runs over three experiments, active and deleted, with ties on start_time, on the metric and on
    values, NULL start times, NaN and missing metrics, missing params, values that differ only past
    the indexed prefix, a rare param value and a common one."""
    db.runs(
        *[
            R(
                f"s{i:03d}",
                exp=1 + i % 3,
                start=None if i % 17 == 0 else 100 - i % 9,
                stage="deleted" if i % 7 == 3 else "active",
                params={"p": str(i % 3), "rare": "x" if i % 29 == 1 else "y"}
                | ({"v": LONG[i % 4]} if i % 5 else {}),
                tags={"t": ("yes", "no", "yet", "Yes", "ü")[i % 5]},
                metrics={"m": math.nan if i % 13 == 0 else float(i % 5)} if i % 11 else {},
            )
            for i in range(120)
        ]
    )
    return db


FILTERS = [
    "",
    "params.rare = 'x'",
    "params.rare = 'x' AND tags.t LIKE 'ye%'",
    "params.p != '2' AND tags.t LIKE 'ye%'",
    "metrics.m >= 3",
    "metrics.m < 2 OR params.p = '0'",
    "tags.t = 'no' AND metrics.m IS NULL",
    "params.p IN ('0', '2')",
    "tags.t LIKE 'ye%'",
    "params.v LIKE 'a%'",
    "tags.t IN ('yes', 'Yes', 'ü')",
]
SCOPES = [(["1"], ViewType.ALL), (["1", "2"], ViewType.ACTIVE_ONLY), (["1", "2", "3"], ViewType.DELETED_ONLY)]
ORDERS: list[list[str] | None] = [None, ["metrics.m DESC"], ["metrics.m"], ["params.v"], ["tags.t DESC"]]
#: Values that share their first 200 characters (the index's prefix) and differ after it, or are short.
LONG = ["a" * 200 + "b", "a" * 200 + "a", "a" * 199, "b"]
#: (walk budget, per row, anchor cap, group pages, filters): walks that give up at once or meet ties,
#: anchors that are never rare, every value of a param or tag order a large group; then walks a
#: little longer, anchors that drive whenever they can (the filters with anchors), no large group.
BUDGETS = [(3, 1, 1, 0, FILTERS), (12, 2, 1_000, 1_000, FILTERS[1:3] + FILTERS[4:5])]


def full_select(
    db: Db, filter_string: str, order_by: list[str] | None, experiments: list[str], view: int
) -> list[str]:
    """The search's answer from its own full SELECT (the planner's statement: no walk, no anchor)."""
    search = plan_run_search(experiments, filter_string, view, 50_000, order_by, None, db.engine.dialect.name)
    assert search is not None
    with Session(db.engine) as session:
        return [row[0] for row in session.execute(search.stmt, search.params).all()]


def paged(
    db: Db, filter_string: str, order_by: list[str] | None, experiments: list[str], view: int, size: int
) -> list[str]:
    got: list[str] = []
    token: str | None = None
    while True:
        page, token = db.page(filter_string, order_by, size, token, experiments, view)
        got.extend(page)
        if token is None:
            return got


@pytest.mark.parametrize("order_by", ORDERS)
def test_pages_of_several_experiments_and_stages_are_the_searchs_pages(
    spread: Db, order_by: list[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging 6 runs at a time gives the full SELECT's answer: on PostgreSQL whatever the budgets
    (SQLite has no walks: once)."""
    budgets = BUDGETS if spread.engine.dialect.name == "postgresql" else BUDGETS[:1]
    for candidates, per_row, cap, group_pages, filters in budgets:
        monkeypatch.setattr(sql_walks, "WALK_CANDIDATES", candidates)
        monkeypatch.setattr(sql_walks, "WALK_CANDIDATES_PER_ROW", per_row)
        monkeypatch.setattr(sql_anchors, "ANCHOR_CAP", cap)
        monkeypatch.setattr(sql_walks, "GROUP_PAGES", group_pages)
        sql_search.run_search_plan.cache_clear()
        for experiments, view in SCOPES:
            for filter_string in filters:
                expected = full_select(spread, filter_string, order_by, experiments, view)
                got = paged(spread, filter_string, order_by, experiments, view, 6)
                assert got == expected, (filter_string, order_by, experiments, view, candidates, cap)
    sql_search.run_search_plan.cache_clear()


def test_every_scope_has_runs_to_page_through(spread: Db) -> None:
    """The fixture's searches are not trivially empty."""
    for experiments, view in SCOPES:
        assert len(full_select(spread, "", None, experiments, view)) >= 5, (experiments, view)
    assert 0 < len(full_select(spread, "params.rare = 'x'", None, ["1", "2", "3"], ViewType.ALL)) < 6


# ---- which statements answer (PostgreSQL) --------------------------------------------------------
@pytest.fixture
def many(postgres_uri: str) -> Iterator[Db]:
    engine = create_engine_for(postgres_uri)
    Base.metadata.create_all(engine)
    db = Db(engine)
    db.runs(
        *[
            R(
                f"r{i:05d}",
                exp=1 + i // 1500,
                start=i,
                params={"p": "rare" if i % 500 == 7 else f"v{i % 4}"},
                metrics={"m": (i * 7919 % 1000) / 1000},
            )  # fmt: skip
            for i in range(3000)
        ]
    )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    try:
        yield db
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_rare_filter_term_drives_the_page_and_a_common_one_is_walked(many: Db) -> None:
    """`params.p = 'rare'` (3 runs of 1,500) has fewer index entries than a page: the anchors' count
    says so, and the page comes from those runs alone, never from a walk. `params.p = 'v1'` (1 in 4)
    is counted past the cap and walked. (Each with a second term: a filter that is one `=` alone is
    read in page order from its index, below.)"""
    rare_filter = "params.p = 'rare' AND metrics.m >= 0"
    rare = plan_run_search(["1"], rare_filter, ViewType.ACTIVE_ONLY, 100, None, None, "postgresql")
    assert rare is not None
    ids, ran = statements_run(many, rare)
    assert ran == ["count", "anchored"] and ids == full_select(many, rare_filter, None, ["1"], 1)
    again = plan_run_search(["1"], rare_filter, ViewType.ACTIVE_ONLY, 100, None, None, "postgresql")
    assert again is not None and statements_run(many, again) == (ids, ["anchored"])  # the count reused
    common_filter = "params.p = 'v1' AND metrics.m >= 0"
    common = plan_run_search(["1"], common_filter, ViewType.ACTIVE_ONLY, 100, None, None, "postgresql")
    assert common is not None
    ids, ran = statements_run(many, common)
    assert ran == ["count", "walk"] and ids == full_select(many, common_filter, None, ["1"], 1)[:101]


@pytest.mark.postgres
def test_a_filter_of_one_value_reads_its_runs_in_page_order(postgres_uri: str) -> None:
    """`params.p = 'v'` (or a tag's, or IN: a range per value) alone, in the default order: the value's runs are read from the
    (experiment_id, key, value prefix, start_time DESC NULLS LAST, run_uuid) index in the page's order,
    each run's row by primary key, and the read stops with the page: a rare value's anchor (1 run in
    50) drives the page so, a common one (1 in 2, over the anchors' cap) is walked so, never sorted;
    paged through, with deleted runs, runs without a start time and tied start times between, every
    page is the Python sort's, in one or two experiments."""
    from sqlalchemy.dialects import postgresql

    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        db = Db(engine)
        runs = [
            R(
                f"v{i * 7919 % 3000:05d}",
                exp=1 + i % 2,
                start=None if i % 41 == 0 else i % 400,
                stage="deleted" if i % 7 == 3 else "active",
                params={"p": "rare" if i % 50 == 9 else ("half" if i % 4 < 2 else "other")},
                tags={"t": "rare" if i % 50 == 9 else "x"},
            )
            for i in range(3000)
        ]
        db.runs(*runs)
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
        for filter_string, wanted, experiments, reads in (
            ("params.p = 'rare'", lambda r: r.params["p"] == "rare", ["1"], "anchored"),
            ("params.p = 'half'", lambda r: r.params["p"] == "half", ["1", "2"], "walk"),
            ("tags.t = 'rare'", lambda r: r.tags["t"] == "rare", ["1", "2"], "anchored"),
            ("params.p IN ('rare', 'other')", lambda r: r.params["p"] in ("rare", "other"), ["1", "2"], "walk"),
            ("tags.t IN ('rare', 'none')", lambda r: r.tags["t"] == "rare", ["1", "2"], "anchored"),
        ):
            scoped = [r for r in runs if str(r.exp) in experiments and r.stage == "active" and wanted(r)]
            expected = [r.id for r in sorted(scoped, key=lambda r: (r.start is None, -(r.start or 0), r.id))]
            got: list[str] = []
            token: str | None = None
            while True:
                search = plan_run_search(experiments, filter_string, ViewType.ACTIVE_ONLY, 25, None, token, "postgresql")
                assert search is not None and search.walk is not None
                rows, ran = statements_run(db, search, rows=True)
                assert ran[-1] in (reads, "full") and ran.count(reads) == 1, ran  # the last page may be short
                page, token = search.paginate(rows, slice(1, None))
                got += [row[0] for row in page]
                if token is None:
                    break
            assert got == expected, filter_string
            first = plan_run_search(experiments, filter_string, ViewType.ACTIVE_ONLY, 25, None, None, "postgresql")
            assert first is not None and first.walk is not None and first.anchored
            read = first.walk if reads == "walk" else first.anchored[0]
            sql = read.params(walk_budget=first.walk_budget).compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            with engine.connect() as conn:
                plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
            table = filter_string.split(".")[0]
            assert f"idx_{table}_experiment_key_value_start" in plan, plan
            assert "Sort  (" not in plan and "Seq Scan" not in plan and "Bitmap" not in plan, plan
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_prefix_with_few_values_reads_their_ranges_in_page_order(postgres_uri: str) -> None:
    """`LIKE 'prefix%'` alone, in the default order: with few values under the prefix (2 here), a probe
    finds them and the page reads each value's index range in the page's order, merged (never sorted);
    with more than HEAD_SLOTS (a prefix of ids) the key's rows are walked in the page's order from
    their (experiment, key, start time, id, value prefix) index instead, and that is remembered (the
    probe is not asked again). Paged through, every page is the Python sort's."""
    from sqlalchemy.dialects import postgresql

    from modelyard.store.tracking import sql_prefix_heads
    from modelyard.store.tracking.run_json import search_page_json

    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        db = Db(engine)
        runs = [
            R(
                f"h{i * 7919 % 3000:05d}",
                start=None if i % 41 == 0 else i % 400,
                stage="deleted" if i % 7 == 3 else "active",
                params={"id": f"id-{i:05d}"},
                tags={"team": ("team-1", "team-10", "team-2", "other")[i % 4]},
            )
            for i in range(3000)
        ]
        db.runs(*runs)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        for filter_string, wanted, reads in (
            ("tags.team LIKE 'team-1%'", lambda r: r.tags["team"].startswith("team-1"), "heads walk"),
            ("params.id LIKE 'id-0%'", lambda r: r.params["id"].startswith("id-0"), "walk"),
        ):
            scoped = [r for r in runs if r.stage == "active" and wanted(r)]
            expected = [r.id for r in sorted(scoped, key=lambda r: (r.start is None, -(r.start or 0), r.id))]
            got: list[str] = []
            token: str | None = None
            pages: list[list[Any]] = []
            while True:
                search = plan_run_search(["1"], filter_string, ViewType.ACTIVE_ONLY, 100, None, token, "postgresql")
                assert search is not None and search.heads is not None
                rows, ran = statements_run(db, search, rows=True)
                pages.append(ran)
                page, token = search.paginate(rows, slice(1, None))
                got += [row[0] for row in page]
                if token is None:
                    break
            assert got == expected, filter_string
            # The REST path (each page's JSON in one statement) reads the same pages.
            json_ids: list[str] = []
            token = None
            while True:
                search = plan_run_search(["1"], filter_string, ViewType.ACTIVE_ONLY, 100, None, token, "postgresql")
                assert search is not None
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    fragments, token = search_page_json(conn, search)
                json_ids += [orjson.loads(orjson.dumps(f))["info"]["run_id"] for f in fragments]
                if token is None:
                    break
            assert json_ids == expected, filter_string
            # The anchor's count is the first page's (then remembered, as is "too many values").
            if reads == "heads walk":
                assert pages[0] == ["count", "heads", "heads walk"], pages
                assert all(ran == ["heads", "heads walk"] for ran in pages[1:-1]) and len(pages) > 2, pages
            else:
                assert pages[0] == ["count", "heads", "prefix walk"], pages
                assert all(ran == ["prefix walk"] for ran in pages[1:-1]) and len(pages) > 2, pages
        # Too many heads: the key's rows in the page's order from the (experiment, key, start time, id,
        # value prefix) index, the prefix tested inside it; never sorted.
        search = plan_run_search(["1"], "params.id LIKE 'id-0%'", ViewType.ACTIVE_ONLY, 100, None, None, "postgresql")
        assert search is not None and search.prefix_walk is not None
        sql = search.prefix_walk.params({"walk_budget": search.walk_budget}).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # 3,000 runs: the planner's choice at scale
            plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
        assert "idx_params_experiment_key_start_value" in plan, plan
        assert "Sort  (" not in plan and "Bitmap" not in plan, plan
        search = plan_run_search(["1"], "tags.team LIKE 'team-1%'", ViewType.ACTIVE_ONLY, 100, None, None, "postgresql")
        assert search is not None and search.heads is not None and search.heads_walk is not None
        params = {sql_prefix_heads.HEAD.format(i): None for i in range(sql_prefix_heads.HEAD_SLOTS)}
        params |= {"prefix_head_0": "team-1", "prefix_head_1": "team-10", "walk_budget": search.walk_budget}
        sql = search.heads_walk.params(params).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        with engine.connect() as conn:
            plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
        assert "Merge Append" in plan and "idx_tags_experiment_key_value_start" in plan, plan
        # The only sorts are of the unused heads' ranges: empty (`= NULL`, a one-time filter false).
        sorts = [line for line in plan.splitlines() if "Sort  (" in line]
        assert all("rows=0 " in line for line in sorts), plan
        assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_anchor_below_the_cap_lets_a_walk_try_first_unless_it_is_hopeless(
    many: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`params.p = 'v1'` has 375 of the experiment's 1,500 runs with the key: below the cap, a walk
    may fill a page if it matches 1 in WALK_CANDIDATES_PER_ROW or more; when the walk falls short (the
    other term halves its matches), the anchor drives the page. Below 1 in WALK_CANDIDATES_PER_ROW
    the walk is not tried."""
    text_filter = "params.p = 'v1' AND metrics.m < 0.5"
    expected = full_select(many, text_filter, None, ["1"], 1)[:101]
    monkeypatch.setattr(sql_anchors, "ANCHOR_CAP", 2_000)
    monkeypatch.setattr(sql_walks, "WALK_CANDIDATES", 20)
    try:
        for per_row, statements in ((5, ["count", "walk", "anchored"]), (2, ["count", "anchored"])):
            monkeypatch.setattr(sql_walks, "WALK_CANDIDATES_PER_ROW", per_row)
            sql_search.run_search_plan.cache_clear()
            search = plan_run_search(["1"], text_filter, ViewType.ACTIVE_ONLY, 100, None, None, "postgresql")
            assert search is not None
            assert statements_run(many, search) == (expected, statements), per_row
    finally:
        sql_search.run_search_plan.cache_clear()


@pytest.mark.postgres
def test_several_experiments_and_stages_are_merged_index_ranges(many: Db) -> None:
    """A first page of several experiments (or of every lifecycle stage), in the default order or a
    metric's or a param's, merges ordered scans of each range (Merge Append), never sorts every run
    they hold."""
    from sqlalchemy.dialects import postgresql

    for experiments, view, order_by, index in (
        (["1", "2"], ViewType.ACTIVE_ONLY, None, "idx_runs_experiment_stage_order"),
        (["1"], ViewType.ALL, None, "idx_runs_experiment_stage_order"),
        (["1", "2"], ViewType.ALL, ["metrics.m DESC"], "idx_latest_metrics_experiment_key_value"),
        (["1", "2"], ViewType.ACTIVE_ONLY, ["params.p DESC"], "idx_params_experiment_key_value"),
    ):
        search = plan_run_search(experiments, "", view, 100, order_by, None, "postgresql")
        assert search is not None and search.walk is not None
        ids, ran = statements_run(many, search)
        # A param's values are 750 runs' each: large groups, each read in the default order.
        assert ran == (["groups", "group"] if search.groups else ["walk"])
        assert ids == full_select(many, "", order_by, experiments, view)[:101]
        read = search.group_walks[0] if search.groups else search.walk
        assert read is not None
        sql = read.params(search.params).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        with many.engine.connect() as conn:
            plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
        assert "Merge Append" in plan and index in plan, plan
        assert "Seq Scan" not in plan and "Bitmap" not in plan, plan


@pytest.mark.postgres
def test_a_value_many_runs_share_is_read_in_the_default_order(
    many: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordered by a param whose values 375 runs each share (over a page's worth, 101), a page reads the
    runs of its value in the default order (the value's range of its (experiment_id, key, value prefix,
    start_time, run_uuid) index, never sorted), not the whole group; the next page continues within
    the value, and past its end the search's own statements answer."""
    from sqlalchemy.dialects import postgresql

    monkeypatch.setattr(sql_walks, "GROUP_PAGES", 1)
    sql_search.run_search_plan.cache_clear()
    try:
        expected = full_select(many, "", ["params.p DESC"], ["1"], ViewType.ACTIVE_ONLY)
        got: list[str] = []
        token: str | None = None
        walks: list[list[Any]] = []
        while len(got) < 800:
            search = plan_run_search(
                ["1"], "", ViewType.ACTIVE_ONLY, 100, ["params.p DESC"], token, "postgresql"
            )
            assert search is not None
            fetched, ran = statements_run(many, search, rows=True)
            walks.append(ran)
            if ran[-1] == "group":
                group_walk = search.group_walks[1] if search.group_walks[1] is not None else search.group_walks[0]
                assert group_walk is not None
                sql = group_walk.params(search.params).compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
                with many.engine.connect() as conn:
                    plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
                assert "idx_params_experiment_key_value_start" in plan and "Sort  (" not in plan, plan
            page, token = search.paginate(fetched, slice(1, None))
            got += [row[0] for row in page]
            assert token is not None
        assert got == expected[: len(got)]
        assert walks[0] == ["groups", "group"] and walks[1] == ["groups", "group"]  # v3, 375 runs
        assert any(ran[-1] != "group" for ran in walks)  # the page that crosses into v2
    finally:
        sql_search.run_search_plan.cache_clear()


# ---- attribute orders (PostgreSQL: run name and end time read from their indexes) ------------------
def attributed_runs() -> list[R]:
    """Runs of three experiments, active and deleted, whose names, end times, statuses, users and
    start times tie and are NULL."""
    return [
        R(
            f"a{i:03d}",
            exp=1 + i % 3,
            start=None if i % 11 == 0 else 50 - i % 6,
            stage="deleted" if i % 7 == 2 else "active",
            name=None if i % 9 == 0 else (f"n{i % 5}" if i % 2 else f"N-{i}"),
            end=None if i % 4 == 0 else 1000 + i % 8,
            status=("FINISHED", "FAILED", "RUNNING", "KILLED")[i % 4],
            user=None if i % 10 == 0 else f"u{i % 3}",
        )
        for i in range(90)
    ]


ATTRIBUTE_SCOPES = [
    (["1"], ViewType.ACTIVE_ONLY),
    (["1", "2"], ViewType.ACTIVE_ONLY),
    (["3"], ViewType.ALL),
    (["1", "2", "3"], ViewType.DELETED_ONLY),
]


@pytest.mark.parametrize("attribute", list(ATTRIBUTE_FIELDS))
def test_attribute_orders_page_as_mlflow_orders_them(db: Db, attribute: str) -> None:
    """Ordered by each attribute, either way, every scope paged 1, 4 or 7 runs at a time gives MLflow's
    order: NULLs last, ties newest first then by id (PostgreSQL reads run name and end time from
    their indexes, their NULLs from the range after the values; SQLite sorts)."""
    runs = attributed_runs()
    db.runs(*runs)
    for ascending in (True, False):
        order_by = [f"attributes.{attribute} {'ASC' if ascending else 'DESC'}"]
        for experiments, view in ATTRIBUTE_SCOPES:
            stages = ViewType.stages(view) if view != ViewType.ALL else ("active", "deleted")
            scoped = [r for r in runs if str(r.exp) in experiments and r.stage in stages]
            expected = mlflow_order(scoped, attribute, ascending)
            assert len(expected) >= 10
            for size in (1, 4, 7) if experiments == ["1"] else (4,):
                got = paged(db, "", order_by, experiments, view, size)
                assert got == expected, (order_by, experiments, view, size)
            assert full_select(db, "", order_by, experiments, view) == expected
            filtered = "attributes.status != 'FAILED'"
            assert paged(db, filtered, order_by, experiments, view, 4) == full_select(
                db, filtered, order_by, experiments, view
            )


@pytest.mark.postgres
@pytest.mark.parametrize(
    "order_by",
    [
        ["attributes.run_name"],
        ["attributes.run_name DESC"],
        ["attributes.end_time"],
        ["attributes.end_time DESC"],
    ],
)
def test_attribute_orders_are_read_from_their_index(postgres_uri: str, order_by: list[str]) -> None:
    """A page ordered by run name or end time is a range of the attribute's index read in order
    (forward, or backwards sorting only runs of one value), never a sort of the experiment's runs: on
    the first page, a deep page among the values, and among the NULLs after them."""
    from sqlalchemy.dialects import postgresql

    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        db = Db(engine)
        db.runs(
            *[
                R(
                    f"r{i:05d}",
                    start=i % 700,
                    name=None if i % 10 == 0 else f"run-{i * 7919 % 3000:05d}",
                    end=None if i % 10 == 1 else 5000 + i * 7919 % 2500,
                )
                for i in range(3000)
            ]
        )
        index = (
            "idx_runs_experiment_stage_name" if "run_name" in order_by[0] else "idx_runs_experiment_stage_end"
        )
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            token = None
            for page in range(40):  # pages of 100: from the values into their NULLs
                search = plan_run_search(["1"], "", ViewType.ACTIVE_ONLY, 100, order_by, token, "postgresql")
                assert search is not None
                statements = (
                    [search.stmt]
                    if search.numbers_first is None
                    else [search.numbers_first, search.non_numbers]
                )
                for stmt in statements:
                    sql = stmt.params(search.params).compile(
                        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                    )
                    plan = [row[0] for row in conn.execute(text(f"EXPLAIN {sql}"))]
                    assert any(index in line for line in plan) and not any(
                        "Seq Scan" in line for line in plan
                    )
                    if page in (0, 10):  # a range read in order (near the end, a few runs may be sorted)
                        sorts = [line for line in plan if line.strip().startswith(("Sort  (", "->  Sort  ("))]
                        assert not sorts and not any("Bitmap" in line for line in plan), (page, plan)
                rows, _ = statements_run(db, search, rows=True)
                _, token = search.paginate(rows, slice(1, None))
                if token is None:
                    break
            assert page >= 29  # 3,000 runs: the last pages were among the NULLs
    finally:
        engine.dispose()
