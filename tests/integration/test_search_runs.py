"""Run and experiment search against real SQLite and PostgreSQL: rows are inserted straight into
the tables, then `search_run_ids` / `search_experiment_ids` must return the same ids, in the same
order, on both backends."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from tests.integration import search_helpers
from tests.integration.search_helpers import Db, R, invalid

from modelyard.devstack.postgres import PostgresServer
from modelyard.entities import ViewType
from modelyard.store.search.paging import encode_keyset_token, encode_page_token, query_fingerprint
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.schema import (
    Base,
    SqlRun,
)
from modelyard.store.tracking.sql_search import search_run_ids

#: The `db` fixture (an empty schema on each backend).
db = search_helpers.db


# ---- filters on each entity -------------------------------------------------------------------
@pytest.fixture
def zoo(db: Db) -> Db:
    db.runs(
        R(
            "a",
            start=5,
            name="alpha",
            status="FINISHED",
            params={"lr": "0.1", "opt": "Adam"},
            tags={"team": "Vision", "mlflow.source.type": "LOCAL"},
            metrics={"acc": 0.9, "loss": 0.3},
        ),
        R(
            "b",
            start=4,
            name="beta",
            status="FAILED",
            params={"lr": "0.01", "opt": "adam"},
            tags={"team": "vision"},
            metrics={"acc": 0.7, "loss": 0.5},
        ),
        R(
            "c",
            start=3,
            name="Gamma",
            status="RUNNING",
            user=None,
            params={"lr": "0.1"},
            tags={"team": "nlp", "note": "100% sure"},
            metrics={"acc": 0.95},
            end=None,
        ),
        R(
            "d",
            start=2,
            name=None,
            status="FINISHED",
            end=9,
            params={"opt": "sgd_v2"},
            tags={"note": "x*y?[z]"},
            metrics={"acc": float("nan"), "loss": 0.1},
        ),
        R("e", start=1, name="epsilon", status="KILLED", end=8),
    )
    return db


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.8", {"a", "c"}),
        ("metrics.acc >= 0.9", {"a", "c"}),
        ("metrics.acc < 0.9", {"b"}),
        ("metrics.acc <= 0.9", {"a", "b"}),
        ("metrics.acc = 0.7", {"b"}),
        ("metrics.acc != 0.7", {"a", "c", "d"}),  # NaN != 0.7; a run without acc never matches
        ("metrics.acc = 0", set()),  # NaN is stored as 0 but is not 0
        ("metric.loss < 0.4", {"a", "d"}),
        ("metrics.acc IN (0.7, 0.95)", {"b", "c"}),
        ("metrics.acc NOT IN (0.7)", {"a", "c", "d"}),
        ("params.lr = '0.1'", {"a", "c"}),
        ("params.lr != '0.1'", {"b"}),
        ("parameters.lr IN ('0.01', '1')", {"b"}),
        ("params.lr NOT IN ('0.01')", {"a", "c"}),
        ("tags.team = 'vision'", {"b"}),
        ("tags.`mlflow.source.type` = 'LOCAL'", {"a"}),
        ("tags.mlflow.source.type = 'LOCAL'", {"a"}),
        ("attributes.status = 'FINISHED'", {"a", "d"}),
        ("status != 'FINISHED'", {"b", "c", "e"}),
        ("status IN ('FAILED', 'KILLED')", {"b", "e"}),
        ("attributes.run_id = 'c'", {"c"}),
        ("run_id IN ('a', 'e', 'zzz')", {"a", "e"}),
        ("run_id NOT IN ('a', 'e')", {"b", "c", "d"}),
        ("attributes.run_name = 'alpha'", {"a"}),
        ("`Run name` = 'beta'", {"b"}),
        ("run_name != 'alpha'", {"b", "c", "e"}),  # d has no name: never matches
        ("start_time > 2", {"a", "b", "c"}),
        ("created <= 2", {"d", "e"}),
        ("end_time = 9", {"d"}),
        ("user_id = 'alice'", {"a", "b", "d", "e"}),
        ("artifact_uri = 's3://bucket/a'", {"a"}),
        ("lifecycle_stage = 'active'", {"a", "b", "c", "d", "e"}),
    ],
)
def test_filters_on_each_entity(zoo: Db, filter_string: str, expected: set[str]) -> None:
    assert zoo.matching(filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.opt LIKE 'adam'", {"b"}),
        ("params.opt LIKE 'Adam'", {"a"}),
        ("params.opt LIKE 'A%'", {"a"}),
        ("params.opt LIKE '%a%'", {"a", "b"}),  # Adam has a lower-case 'a' too
        ("params.opt ILIKE 'ADAM'", {"a", "b"}),
        ("params.opt ILIKE 'a%'", {"a", "b"}),
        ("params.opt LIKE 's_d%'", {"d"}),
        ("params.opt LIKE 'sgd\\_v_'", {"d"}),
        ("params.opt LIKE 'sgd\\_%'", {"d"}),
        ("params.opt LIKE 'sg\\_%'", set()),
        ("tags.team LIKE 'V%'", {"a"}),
        ("tags.team ILIKE 'v%'", {"a", "b"}),
        ("tags.note LIKE '100\\% %'", {"c"}),
        ("tags.note LIKE '100\\%'", set()),
        ("tags.note LIKE 'x*y?[z]'", {"d"}),  # GLOB metacharacters are literal in LIKE
        ("tags.note LIKE 'x_y_[z]'", {"d"}),
        ("tags.note LIKE 'x*%'", {"d"}),
        ("tags.note LIKE 'xay%'", set()),
        ("attributes.run_name LIKE 'gamma'", set()),
        ("attributes.run_name ILIKE 'gamma'", {"c"}),
        ("attributes.run_name LIKE '%a'", {"a", "b", "c"}),
        ("status LIKE 'F%'", {"a", "b", "d"}),
        ("status LIKE 'f%'", set()),
        ("status ILIKE 'f%'", {"a", "b", "d"}),
    ],
)
def test_like_is_case_sensitive_and_ilike_is_not(zoo: Db, filter_string: str, expected: set[str]) -> None:
    assert zoo.matching(filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.lr IS NULL", {"d", "e"}),
        ("params.lr IS NOT NULL", {"a", "b", "c"}),
        ("tags.note IS NULL", {"a", "b", "e"}),
        ("metrics.loss IS NULL", {"c", "e"}),
        ("metrics.acc IS NOT NULL", {"a", "b", "c", "d"}),
        ("end_time IS NULL", {"a", "b", "c"}),
        ("run_name IS NULL", {"d"}),
        ("user_id IS NOT NULL", {"a", "b", "d", "e"}),
    ],
)
def test_null_tests(zoo: Db, filter_string: str, expected: set[str]) -> None:
    assert zoo.matching(filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.8 and params.lr = '0.1' and tags.team = 'nlp'", {"c"}),
        ("metrics.acc > 0.8 OR status = 'KILLED'", {"a", "c", "e"}),
        ("params.opt = 'sgd_v2' OR params.opt = 'adam' AND tags.team = 'nlp'", {"d"}),
        ("(params.opt = 'sgd_v2' OR params.opt = 'adam') AND tags.team = 'vision'", {"b"}),
        (
            "(params.opt = 'sgd_v2' OR params.opt = 'adam') AND (tags.team = 'vision' OR metrics.loss < 0.2)",
            {"b", "d"},
        ),
        ("tags.note IS NULL OR metrics.acc != 0.95", {"a", "b", "d", "e"}),
        ("((run_id = 'a'))", {"a"}),
        ("run_id = 'a' OR run_id = 'b' OR run_id = 'zz'", {"a", "b"}),
    ],
)
def test_or_and_parentheses(zoo: Db, filter_string: str, expected: set[str]) -> None:
    assert zoo.matching(filter_string) == expected


def test_empty_filter_matches_every_active_run_newest_first(zoo: Db) -> None:
    assert zoo.ids("") == ["a", "b", "c", "d", "e"]
    assert zoo.ids(None) == ["a", "b", "c", "d", "e"]


def test_sql_in_a_filter_is_only_a_value(zoo: Db) -> None:
    zoo.runs(R("evil", start=0, params={"p": "x'; DROP TABLE runs; --"}, tags={"t": "' OR 1=1 --"}))
    assert zoo.matching("params.lr = '\\' OR 1=1 --'") == set()
    assert zoo.matching("params.lr = \"' OR '1'='1\"") == set()
    assert zoo.matching("params.lr LIKE '%'' OR 1=1 --'") == set()
    assert zoo.matching('params.p = "x\'; DROP TABLE runs; --"') == {"evil"}
    assert zoo.matching("tags.t = '\\' OR 1=1 --'") == {"evil"}
    assert zoo.matching("tags.`t' OR 1=1 --` = 'x'") == set()
    invalid(zoo.ids, "params.lr = '' OR 1=1 --'")
    invalid(zoo.ids, "params.lr = '0.1'; DROP TABLE runs")
    with zoo.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SqlRun.__table__)).scalar() == 6


def test_view_types_and_several_experiments(zoo: Db) -> None:
    zoo.runs(
        R("x", exp=2, start=10, stage="deleted"),
        R("y", exp=2, start=11),
        R("z", exp=1, start=6, stage="deleted", params={"lr": "0.1"}),
    )
    assert zoo.ids(experiment_ids=["2"]) == ["y"]
    assert zoo.ids(experiment_ids=["2"], view_type=ViewType.DELETED_ONLY) == ["x"]
    assert zoo.ids(experiment_ids=["2"], view_type=ViewType.ALL) == ["y", "x"]
    assert zoo.ids(experiment_ids=["1", "2"]) == ["y", "a", "b", "c", "d", "e"]
    assert zoo.ids("params.lr = '0.1'", experiment_ids=[1, "2"], view_type=ViewType.ALL) == ["z", "a", "c"]
    assert zoo.ids(experiment_ids=["99"]) == []
    assert zoo.page(experiment_ids=[]) == ([], None)


# ---- ordering ---------------------------------------------------------------------------------
def test_order_by_metric_puts_nan_then_missing_last_in_both_directions(zoo: Db) -> None:
    assert zoo.ids(order_by=["metrics.acc"]) == ["b", "a", "c", "d", "e"]
    assert zoo.ids(order_by=["metrics.acc DESC"]) == ["c", "a", "b", "d", "e"]
    assert zoo.ids(order_by=["metrics.loss ASC"]) == ["d", "a", "b", "c", "e"]
    assert zoo.ids(order_by=["metrics.loss DESC"]) == ["b", "a", "d", "c", "e"]


def test_order_by_param_and_tag_put_missing_last_in_both_directions(zoo: Db) -> None:
    assert zoo.ids(order_by=["params.opt"]) == ["a", "b", "d", "c", "e"]  # bytewise: 'A' < 'a' < 's'
    assert zoo.ids(order_by=["params.opt DESC"]) == ["d", "b", "a", "c", "e"]
    assert zoo.ids(order_by=["tags.team DESC"]) == ["b", "c", "a", "d", "e"]
    assert zoo.ids(order_by=["tags.team"]) == ["a", "c", "b", "d", "e"]


def test_order_by_attributes(zoo: Db) -> None:
    assert zoo.ids(order_by=["attributes.run_name"]) == ["c", "a", "b", "e", "d"]  # 'Gamma' < 'alpha'
    assert zoo.ids(order_by=["run_name DESC"]) == ["e", "b", "a", "c", "d"]  # NULL name last
    assert zoo.ids(order_by=["start_time"]) == ["e", "d", "c", "b", "a"]
    assert zoo.ids(order_by=["end_time DESC"]) == ["d", "e", "a", "b", "c"]
    assert zoo.ids(order_by=["status", "run_id DESC"]) == ["b", "d", "a", "e", "c"]


def test_ties_break_on_start_time_desc_then_run_id(db: Db) -> None:
    db.runs(
        R("r3", start=10, params={"g": "1"}),
        R("r1", start=10, params={"g": "1"}),
        R("r2", start=20, params={"g": "1"}),
        R("r0", start=None, params={"g": "1"}),
        R("r4", start=5, params={"g": "0"}),
    )
    assert db.ids() == ["r2", "r1", "r3", "r4", "r0"]  # a run without start_time sorts last
    assert db.ids(order_by=["params.g DESC"]) == ["r2", "r1", "r3", "r0", "r4"]
    assert db.ids(order_by=["params.g", "start_time"]) == ["r4", "r1", "r3", "r2", "r0"]


def test_multiple_order_keys_with_joins(zoo: Db) -> None:
    assert zoo.ids("metrics.acc > 0", order_by=["params.lr DESC", "metrics.acc", "tags.team"]) == [
        "a",
        "c",
        "b",
    ]


# ---- paging -----------------------------------------------------------------------------------
def test_pagination_over_many_pages_has_no_duplicates_or_gaps(db: Db) -> None:
    runs = [
        R(f"run{i:03d}", start=i % 7, params={"p": str(i % 3)}, metrics={"m": float(i % 5)})
        for i in range(53)
    ]
    db.runs(*runs)
    for order_by, filter_string in [
        (None, ""),
        (["metrics.m DESC", "params.p"], "metrics.m >= 0"),
        (["params.p"], "params.p != '1' OR metrics.m = 4"),
    ]:
        expected = db.ids(filter_string, order_by)
        got: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            page, token = db.page(filter_string, order_by, max_results=10, page_token=token)
            got.extend(page)
            pages += 1
            if token is None:
                break
            assert len(page) == 10
        assert got == expected
        assert len(set(got)) == len(got)
        assert pages == math.ceil(len(expected) / 10) or (
            len(expected) % 10 == 0 and pages == len(expected) // 10
        )
        assert pages >= 3


def test_last_full_page_has_no_token(db: Db) -> None:
    db.runs(*[R(f"r{i}", start=i) for i in range(20)])
    page, token = db.page(max_results=10)
    assert len(page) == 10 and token is not None
    page, token = db.page(max_results=10, page_token=token)
    assert len(page) == 10 and token is None


def test_page_token_from_another_query_is_refused(zoo: Db) -> None:
    _, token = zoo.page("metrics.acc > 0", max_results=1)
    assert token is not None
    err = invalid(zoo.page, "metrics.acc > 1", max_results=1, page_token=token)
    assert "different search" in err.message
    invalid(zoo.page, "metrics.acc > 0", ["metrics.acc"], max_results=1, page_token=token)
    invalid(zoo.page, "metrics.acc > 0", max_results=1, page_token=token, view_type=ViewType.ALL)
    invalid(zoo.page, "metrics.acc > 0", max_results=1, page_token=token, experiment_ids=["1", "2"])
    invalid(zoo.page, "metrics.acc > 0", max_results=1, page_token="not-a-token")
    # The same query may change its page size between pages.
    page, _ = zoo.page("metrics.acc > 0", max_results=2, page_token=token)
    assert page == ["b", "c"]


@pytest.mark.parametrize("max_results", [0, -1, 50001, "10", 2.5, True])
def test_max_results_bounds(zoo: Db, max_results: object) -> None:
    invalid(zoo.page, max_results=max_results)


def test_max_results_at_the_limit_is_fine(zoo: Db) -> None:
    assert len(zoo.page(max_results=50000)[0]) == 5


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("metrics.acc > 'x'", None),
        ("nope.acc > 1", None),
        ("params.lr LIKE 'abc\\'", None),
        ("", ["metrics.acc SIDEWAYS"]),
        ("", ["metrics.acc", "metrics.acc"]),
    ],
)
def test_bad_filters_and_order_by_are_400(zoo: Db, filter_string: str, order_by: list[str] | None) -> None:
    invalid(zoo.ids, filter_string, order_by)


def test_bad_experiment_ids_are_400(zoo: Db) -> None:
    invalid(zoo.ids, experiment_ids=["abc"])
    invalid(zoo.ids, experiment_ids=["1; DROP TABLE runs"])


# ---- experiments --------------------------------------------------------------------------------
@pytest.fixture
def exps(db: Db) -> Db:
    db.experiment(0, "Default", creation_time=100, last_update_time=100)
    db.experiment(1, "alpha", creation_time=300, last_update_time=900)
    db.experiment(2, "Alpine", creation_time=200, last_update_time=200)
    db.experiment(3, "beta", creation_time=300, last_update_time=300)
    db.experiment(4, "gone", creation_time=400, last_update_time=400, stage="deleted")
    db.experiment(5, "no-times")
    db.experiment_tags(1, team="vision", owner="bob")
    db.experiment_tags(2, team="Vision")
    db.experiment_tags(4, team="vision")
    return db


def exp_ids(
    db: Db, filter_string: str | None = None, order_by: list[str] | None = None, **kw: object
) -> list[int]:
    ids, token = db.experiment_page(filter_string, order_by, **kw)  # type: ignore[arg-type]
    assert token is None
    return ids


def test_experiment_default_order_is_newest_first_then_id(exps: Db) -> None:
    assert exp_ids(exps) == [1, 3, 2, 0, 5]
    assert exp_ids(exps, view_type=ViewType.ALL) == [4, 1, 3, 2, 0, 5]
    assert exp_ids(exps, view_type=ViewType.DELETED_ONLY) == [4]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'alpha'", [1]),
        ("attributes.name LIKE 'Al%'", [2]),
        ("name ILIKE 'al%'", [1, 2]),
        ("name != 'alpha'", [3, 2, 0, 5]),
        ("name IN ('beta', 'Default')", [3, 0]),
        ("experiment_id = '2'", [2]),
        ("experiment_id IN ('1', '3')", [1, 3]),
        ("experiment_id NOT IN ('1', '3')", [2, 0, 5]),
        ("creation_time > 150", [1, 3, 2]),
        ("last_update_time >= 300 AND creation_time <= 300", [1, 3]),
        ("creation_time IS NULL", [5]),
        ("tags.team = 'vision'", [1]),
        ("tags.team ILIKE 'VISION'", [1, 2]),
        ("tags.team LIKE 'V%'", [2]),
        ("tags.owner IS NULL", [3, 2, 0, 5]),
        ("tags.owner IS NOT NULL", [1]),
        ("tags.team = 'Vision' OR name = 'beta'", [3, 2]),
        ("(tags.team = 'Vision' OR name = 'beta') AND creation_time > 250", [3]),
        ("name = '\\' OR 1=1 --'", []),
    ],
)
def test_experiment_filters(exps: Db, filter_string: str, expected: list[int]) -> None:
    assert exp_ids(exps, filter_string) == expected


def test_experiment_order_by(exps: Db) -> None:
    assert exp_ids(exps, order_by=["name"]) == [2, 0, 1, 3, 5]  # bytewise: upper case first
    assert exp_ids(exps, order_by=["creation_time"]) == [0, 2, 3, 1, 5]  # tie: id DESC; NULL last
    assert exp_ids(exps, order_by=["creation_time DESC", "experiment_id"]) == [1, 3, 2, 0, 5]
    assert exp_ids(exps, order_by=["attributes.last_update_time DESC"]) == [1, 3, 2, 0, 5]
    assert exp_ids(exps, order_by=["experiment_id DESC"]) == [5, 3, 2, 1, 0]


def test_experiment_paging(exps: Db) -> None:
    got: list[int] = []
    token: str | None = None
    while True:
        page, token = exps.experiment_page(max_results=2, page_token=token, view_type=ViewType.ALL)
        got.extend(page)
        if token is None:
            break
    assert got == [4, 1, 3, 2, 0, 5]
    _, token = exps.experiment_page(max_results=2)
    invalid(exps.experiment_page, "name LIKE '%'", max_results=2, page_token=token)
    invalid(exps.experiment_page, max_results=50001)


def test_store_pages_of_experiments_are_the_searchs_with_their_tags_in_key_order(
    exps: Db, tmp_path: Path
) -> None:
    """The store's page (on PostgreSQL one statement, each experiment's tags as two arrays) holds the
    search's experiments in its order, page after page, each as `get_experiment` reads it."""
    from modelyard.store.search.visibility import Visibility
    from modelyard.store.tracking.sql_store import SqlTrackingStore

    store = SqlTrackingStore(exps.engine, str(tmp_path))
    exps.experiment_tags(3, z='q"\\,{x} NULL', a="", **{"ünï": "ü"})
    some = Visibility(everything=False, only=frozenset({"1", "3", "4"}))
    for view, order, visible in (
        (ViewType.ACTIVE_ONLY, None, None),
        (ViewType.ALL, ["name"], None),
        (ViewType.ALL, ["creation_time", "experiment_id DESC"], None),
        (ViewType.ALL, None, some),
    ):
        got, token = [], None
        while True:
            page = store.search_experiments(view, 2, None, order, token, visible)
            got += list(page)
            token = page.token
            if token is None:
                break
        expected = [str(i) for i in exp_ids(exps, order_by=order, view_type=view)]
        if visible is not None:
            expected = [i for i in expected if visible.allows(i)]
        assert [e.experiment_id for e in got] == expected
        assert got == [store.get_experiment(e.experiment_id) for e in got]
    tags = store.get_experiment("3").tags
    assert list(tags.items()) == [("a", ""), ("z", 'q"\\,{x} NULL'), ("ünï", "ü")]  # bytewise key order
    assert list(store.search_experiments(filter_string="name = 'beta'")[0].tags.items()) == list(tags.items())


@pytest.mark.parametrize(
    "filter_string",
    ["metrics.a > 1", "experiment_id = 'abc'", "name > 'a'", "status = 'x'", "name = 'a' AND"],
)
def test_experiment_bad_filters_are_400(exps: Db, filter_string: str) -> None:
    invalid(exps.experiment_page, filter_string)


# ---- string order does not depend on the database's collation ------------------------------------
@pytest.fixture
def icu_db(postgres_server: PostgresServer) -> Iterator[Db]:
    """A PostgreSQL database whose default collation is locale-aware (ICU en-US), as production
    databases created with `--locale=en_US.UTF-8` are; the session cluster itself is C."""
    name = f"t_icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.uri("postgres"), autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'".encode()
        )
    engine = create_engine_for(postgres_server.uri(name))
    Base.metadata.create_all(engine)
    try:
        yield Db(engine)
    finally:
        engine.dispose()
        postgres_server.drop_database(name)


@pytest.mark.postgres
def test_string_order_is_bytewise_even_with_a_locale_aware_collation(icu_db: Db) -> None:
    with icu_db.engine.connect() as conn:
        # The precondition that makes this test meaningful: this database sorts 'a' before 'B'.
        assert conn.execute(text("SELECT 'a' < 'B'")).scalar() is True
    icu_db.runs(
        R("r1", start=3, name="beta", params={"p": "a"}),
        R("r2", start=2, name="Alpha", params={"p": "B"}),
        R("r3", start=1, name="alpha", params={"p": "_x"}),
    )
    assert icu_db.ids(order_by=["params.p"]) == ["r2", "r3", "r1"]  # 'B' < '_' < 'a' bytewise
    assert icu_db.ids(order_by=["run_name DESC"]) == ["r1", "r3", "r2"]
    icu_db.experiment(7, "b-exp", creation_time=1)
    icu_db.experiment(8, "B-exp", creation_time=1)
    assert exp_ids(icu_db, order_by=["name"]) == [8, 7, 1]


# ---- keyset page tokens ---------------------------------------------------------------------------
@pytest.fixture
def ties(db: Db) -> Db:
    """Runs that tie on every requested key, with NaN, missing and NULL keys among them."""
    db.runs(
        *[
            R(
                f"t{i:02d}",
                start=None if i % 5 == 0 else 100 - i % 3,
                name=None if i % 4 == 0 else f"n{i % 2}",
                params={"p": str(i % 2)} if i % 3 else {},
                tags={"t": "x" * 8000 if i % 2 else "y"},
                metrics={"m": math.nan if i % 7 == 0 else float(i % 3)} if i % 6 else {},
            )
            for i in range(23)
        ]
    )
    return db


KEYSET_ORDERS = [
    None,
    ["metrics.m DESC"],
    ["metrics.m"],
    ["params.p DESC", "metrics.m"],
    ["tags.t", "run_name DESC"],
    ["start_time"],
    ["run_name", "run_id DESC"],
]


@pytest.mark.parametrize("order_by", KEYSET_ORDERS)
@pytest.mark.parametrize("size", [1, 4])
def test_keyset_pages_cover_ties_nan_and_missing_keys_once(
    ties: Db, order_by: list[str] | None, size: int
) -> None:
    expected = ties.ids("", order_by)
    got: list[str] = []
    token: str | None = None
    while True:
        page, token = ties.page("", order_by, max_results=size, page_token=token)
        got.extend(page)
        if token is None:
            break
    assert got == expected and len(expected) == 23


@pytest.fixture
def walked(db: Db) -> Db:
    """Runs for walks (PostgreSQL reads a filtered page in the order of an index and tests each run):
    ties on the metric and on start_time, NULL start times, NaN and missing metrics, deleted runs."""
    db.runs(
        *[
            R(
                f"w{i:02d}",
                start=None if i % 9 == 0 else 100 - i % 6,
                stage="deleted" if i % 11 == 5 else "active",
                params={"p": str(i % 3)},
                tags={"t": ("yes", "no", "yet")[i % 3]},
                metrics={"m": math.nan if i % 13 == 0 else float(i % 4)} if i % 10 else {},
            )
            for i in range(70)
        ]
    )
    return db


WALKED_FILTERS = [
    "params.p = '1'",
    "params.p != '2' AND tags.t LIKE 'ye%'",
    "metrics.m >= 1",
    "metrics.m < 2 OR params.p = '0'",
    "tags.t = 'no' OR attributes.status = 'RUNNING'",
    "params.p IN ('0', '2') AND metrics.m IS NULL",
]


@pytest.mark.parametrize("order_by", [None, ["metrics.m DESC"], ["metrics.m"]])
def test_walked_pages_are_the_searchs_pages(
    walked: Db, order_by: list[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the walk's budget (a few runs: it gives up at once, or reaches a tie it must leave
    out; or many), paging through a filtered search gives its one-page answer, in order, once."""
    from modelyard.store.tracking import sql_search, sql_walks

    for candidates, per_row in ((3, 1), (12, 2), (2_000, 20)):
        monkeypatch.setattr(sql_walks, "WALK_CANDIDATES", candidates)
        monkeypatch.setattr(sql_walks, "WALK_CANDIDATES_PER_ROW", per_row)
        sql_search.run_search_plan.cache_clear()
        for filter_string in WALKED_FILTERS:
            expected = walked.ids(filter_string, order_by)
            assert expected, filter_string
            for size in (1, 4):
                got: list[str] = []
                token: str | None = None
                while True:
                    page, token = walked.page(filter_string, order_by, max_results=size, page_token=token)
                    got.extend(page)
                    if token is None:
                        break
                assert got == expected, (filter_string, order_by, candidates, size)
    sql_search.run_search_plan.cache_clear()


def test_keyset_page_does_not_repeat_rows_when_runs_arrive(db: Db) -> None:
    db.runs(*[R(f"r{i}", start=i, metrics={"m": float(i)}) for i in range(6)])
    first, token = db.page("", ["metrics.m DESC"], max_results=3)
    assert first == ["r5", "r4", "r3"]
    db.runs(R("early", start=0, metrics={"m": 99.0}), R("late", start=0, metrics={"m": -1.0}))
    rest, token = db.page("", ["metrics.m DESC"], max_results=10, page_token=token)
    # With OFFSET, "r3" would have been repeated; the keyset continues right after it.
    assert rest == ["r2", "r1", "r0", "late"] and token is None


def test_offset_tokens_from_before_keyset_paging_are_honoured(zoo: Db) -> None:
    fingerprint = query_fingerprint("runs", [1], "", ViewType.ACTIVE_ONLY, [])
    page, token = zoo.page("", max_results=2, page_token=encode_page_token(2, fingerprint))
    assert page == ["c", "d"]
    assert zoo.page("", max_results=2, page_token=token)[0] == ["e"]


def test_forged_keyset_tokens_are_400(zoo: Db) -> None:
    fingerprint = query_fingerprint("runs", [1], "", ViewType.ACTIVE_ONLY, ["metrics.acc DESC"])
    good = encode_keyset_token([0, 0.9, 5, "a"], fingerprint)
    assert zoo.page("", ["metrics.acc DESC"], page_token=good)[0] == ["b", "d", "e"]
    for after in (
        [0, 0.9, 5],  # too short
        ["0", 0.9, 5, "a"],  # rank is an integer
        [0, "0.9", 5, "a"],
        [0, 0.9, 5, None],  # run ids are never NULL
        [0, 0.9, 5.5, "a"],
        [False, 0.9, 5, "a"],
        [0, float("nan"), 5, "a"],
        [2**64, 0.9, 5, "a"],
    ):
        invalid(zoo.page, "", ["metrics.acc DESC"], page_token=encode_keyset_token(after, fingerprint))
    other = query_fingerprint("runs", [1], "", ViewType.ACTIVE_ONLY, ["metrics.acc"])
    err = invalid(zoo.page, "", ["metrics.acc DESC"], page_token=encode_keyset_token([0, 0.9, 5, "a"], other))
    assert "different search" in err.message


# ---- params/tags: = , IN and LIKE through the (experiment_id, key, value prefix) indexes -----------
def test_param_equality_on_long_and_non_ascii_values(db: Db) -> None:
    long_a, long_b = "a" * 5999 + "1", "a" * 5999 + "2"
    db.runs(
        R("x", params={"p": long_a, "q": "ünï"}),
        R("y", params={"p": long_b, "q": "uni"}),
        R("z", params={"q": long_a}),
    )
    assert db.matching(f"params.p = '{long_a}'") == {"x"}
    assert db.matching(f"params.p IN ('{long_b}', 'nope')") == {"y"}
    assert db.matching(f"params.p != '{long_a}'") == {"y"}
    assert db.matching("params.q = 'ünï'") == {"x"}
    assert db.matching("params.q IN ('uni', 'ünï')") == {"x", "y"}


def test_like_prefixes_short_long_escaped_and_followed_by_wildcards(db: Db) -> None:
    """On PostgreSQL a LIKE with a literal prefix is tested on the value's first 200 characters (the
    index's) and, unless that decides, on the whole value too: both must give LIKE's answer."""
    a199, a200, a201 = "a" * 199, "a" * 200, "a" * 201
    db.runs(
        R("short", params={"p": "cfg-1x"}, tags={"t": "team_3"}),
        R("under", params={"p": "cfg_1"}, tags={"t": "team-3"}),
        R("exact199", params={"p": a199}, tags={"t": a199 + "b"}),
        R("exact200", params={"p": a200}, tags={"t": a200 + "b"}),
        R("long", params={"p": a201 + "z"}, tags={"t": a201 + "b" + "c" * 50}),
        R("pct", params={"p": "100% sure"}, tags={"t": "50%off"}),
    )
    assert db.matching("params.p LIKE 'cfg-1%'") == {"short"}
    assert db.matching("params.p LIKE 'cfg_1%'") == {"short", "under"}  # `_` is any character
    assert db.matching("params.p LIKE 'cfg\\_1%'") == {"under"}  # an escaped `_` is itself
    assert db.matching("params.p LIKE '100\\% s%'") == {"pct"}
    assert db.matching(f"params.p LIKE '{a199}%'") == {"exact199", "exact200", "long"}
    assert db.matching(f"params.p LIKE '{a200}%'") == {"exact200", "long"}
    assert db.matching(f"params.p LIKE '{a201}%'") == {"long"}
    assert db.matching(f"params.p LIKE '{a201}z'") == {"long"}
    assert db.matching(f"params.p LIKE '{a200}_z'") == {"long"}
    assert db.matching(f"params.p LIKE '{a199}_'") == {"exact200"}
    assert db.matching("tags.t LIKE 'team_3'") == {"short", "under"}
    assert db.matching(f"tags.t LIKE '{a200}b%'") == {"exact200"}
    assert db.matching(f"tags.t LIKE '{a201}b%c'") == {"long"}
    assert db.matching(f"tags.t = '{a201}b{'c' * 50}'") == {"long"}
    assert db.matching(f"tags.t IN ('{a200}b', '50%off')") == {"exact200", "pct"}
    assert db.matching("tags.t LIKE '%off'") == {"pct"}


@pytest.mark.postgres
def test_filters_read_the_searched_experiments_rows_through_their_index(postgres_uri: str) -> None:
    """A param/tag `=`, IN or LIKE prefix and a metric comparison are ranges of the key/value tables'
    (experiment_id, key, value) indexes: their cost follows the experiment searched, not the database."""
    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        Db(engine).runs(
            *[
                R(
                    f"r{i}",
                    exp=1 + i % 4,
                    params={"opt": f"v{i % 50}"},
                    tags={"t": f"v{i % 50}"},
                    metrics={"m": i / 500},
                )  # fmt: skip
                for i in range(500)
            ]
        )
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("SET enable_seqscan = off"))
            conn.execute(text("SET enable_nestloop = off"))  # no probing the tables by run id
            for filter_string, index, value in (
                ("params.opt = 'v1'", "idx_params_experiment_key_value", "200) ="),
                ("params.opt IN ('v1', 'v2')", "idx_params_experiment_key_value", "key"),
                ("params.opt LIKE 'v1%'", "idx_params_experiment_key_value", "~>=~"),
                ("tags.t = 'v1'", "idx_tags_experiment_key_value", "200) ="),
                ("tags.t LIKE 'v1%'", "idx_tags_experiment_key_value", "~>=~"),
                ("metrics.m > 0.5", "idx_latest_metrics_experiment_key_value", "value >"),
            ):
                plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + search_sql(filter_string))))
                conditions = [line for line in plan.splitlines() if "Index Cond" in line]
                assert index in plan, (filter_string, plan)
                assert any("experiment_id = 1" in c and value in c for c in conditions), (filter_string, plan)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_default_order_pages_are_read_from_the_runs_index_in_order(postgres_uri: str) -> None:
    """MLflow's default order (start_time DESC, NULLs last, then run id) is the order of
    idx_runs_experiment_stage_order: a first page and a deep page are index ranges, never a sort of
    the experiment's runs, whatever the filter (issue #15: 0.5-2.4 s with 10-160 terms)."""
    from sqlalchemy.dialects import postgresql

    from modelyard.store.tracking.sql_search import plan_run_search

    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        Db(engine).runs(*[R(f"r{i:05d}", start=i, metrics={"m": i % 7}) for i in range(2000)])
        many = " and ".join(f"metrics.m >= {-i}" for i in range(40))
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            for filter_string in ("", "metrics.m > 2", many):
                first = plan_run_search(
                    ["1"], filter_string, ViewType.ACTIVE_ONLY, 100, None, None, "postgresql"
                )
                fingerprint = query_fingerprint("runs", [1], filter_string, ViewType.ACTIVE_ONLY, [])
                token = encode_keyset_token([1000, "r01000"], fingerprint)
                deep = plan_run_search(
                    ["1"], filter_string, ViewType.ACTIVE_ONLY, 100, None, token, "postgresql"
                )
                assert first is not None and deep is not None and deep.numbers_first is not None
                for stmt, params in ((first.stmt, first.params), (deep.numbers_first, deep.params)):
                    sql = stmt.params(params).compile(
                        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                    )
                    plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
                    assert "idx_runs_experiment_stage_order" in plan and "Sort" not in plan, plan
                    if stmt is deep.numbers_first:
                        assert any(
                            "Index Cond" in line and "start_time <=" in line for line in plan.splitlines()
                        )
    finally:
        engine.dispose()


def search_sql(filter_string: str) -> str:
    from sqlalchemy.dialects import postgresql

    from modelyard.store.search.kinds import RUNS
    from modelyard.store.tracking.sql_search import build_run_ids_query

    stmt = build_run_ids_query([1], RUNS.parse_filter(filter_string), ViewType.ACTIVE_ONLY, [], "postgresql")
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


# ---- metric-first order: the numbers-first SELECT -------------------------------------------------
def test_numbers_first_select_is_the_same_page_as_the_full_select(ties: Db) -> None:
    from modelyard.store.tracking.sql_search import plan_run_search

    dialect = ties.engine.dialect.name
    for order_by in (["metrics.m DESC"], ["metrics.m", "params.p DESC"]):
        token = None
        for _ in range(3):
            search = plan_run_search(["1"], "", ViewType.ACTIVE_ONLY, 3, order_by, token, dialect)
            assert search is not None and search.numbers_first is not None
            with Session(ties.engine) as session:
                fast = session.execute(search.numbers_first, search.params).all()
                full = session.execute(search.stmt, search.params).all()
            assert len(fast) == 4 and [tuple(r) for r in fast] == [tuple(r) for r in full]
            assert {r[1] for r in fast} == {0}  # all numbers
            _, token = search.paginate(full, slice(1, None))
    # Not for other first keys, offset tokens, or once the pages reached NaN / missing values.
    assert plan_run_search(["1"], "", 1, 3, ["params.p"], None, dialect).numbers_first is None  # type: ignore[union-attr]
    assert plan_run_search(["1"], "", 1, 3, None, None, dialect).numbers_first is None  # type: ignore[union-attr]
    fingerprint = query_fingerprint("runs", [1], "", ViewType.ACTIVE_ONLY, ["metrics.m DESC"])
    for token in (encode_page_token(3, fingerprint), encode_keyset_token([1, 0.0, None, "t07"], fingerprint)):
        search = plan_run_search(["1"], "", 1, 3, ["metrics.m DESC"], token, dialect)
        assert search is not None and search.numbers_first is None


def test_the_page_that_crosses_into_nan_and_missing_values_is_the_full_selects_page(ties: Db) -> None:
    """Where the numbers run out mid-page, the page is the numbers left plus the head of the
    non-numbers SELECT: the same rows, in the same order, as the full SELECT, on every page."""
    from modelyard.store.tracking.sql_search import plan_run_search

    dialect = ties.engine.dialect.name
    for order_by in (["metrics.m DESC"], ["metrics.m", "params.p DESC"], ["metrics.m", "run_id DESC"]):
        token, crossed = None, False
        while True:
            search = plan_run_search(["1"], "", ViewType.ALL, 3, order_by, token, dialect)
            assert search is not None
            with Session(ties.engine) as session:
                params = search.params
                page = search.fetch(lambda stmt: session.execute(stmt, params).all(), slice(1, None))  # noqa: B023
                full = session.execute(search.stmt, params).all()
            assert [tuple(r) for r in page] == [tuple(r) for r in full]
            crossed |= search.numbers_first is not None and {r[1] for r in full} != {0}
            _, token = search.paginate(full, slice(1, None))
            if token is None:
                break
        assert crossed, order_by


def test_a_run_both_statements_return_is_on_the_page_once(ties: Db) -> None:
    """The numbers and the non-numbers are two statements, two snapshots: a run whose metric turned
    NaN between them is returned by both, and must be on the page once."""
    from modelyard.store.tracking.sql_search import plan_run_search

    search = plan_run_search(["1"], "", ViewType.ALL, 3, ["metrics.m DESC"], None, ties.engine.dialect.name)
    assert search is not None and search.numbers_first is not None
    numbers = [("a", 0, 2.0, 10, "a"), ("b", 0, 1.0, 10, "b")]
    non_numbers = [("b", 1, 0.0, 10, "b"), ("c", 1, 0.0, 10, "c"), ("d", 2, None, 10, "d")]
    page = search.fetch(lambda stmt: numbers if stmt is search.numbers_first else non_numbers, slice(1, None))
    assert [row[0] for row in page] == ["a", "b", "c", "d"]


@pytest.mark.postgres
def test_deep_keyset_pages_are_estimated_at_their_real_size(postgres_uri: str) -> None:
    """The keyset bound of a metric-first page must be counted once by the planner: spelled as
    `value <= last AND (value < last OR value = last AND ...)` it was counted twice, so a page deep in
    the order looked nearly empty and got a plan that reads every run (a hash join) instead of the
    metric's index in order."""
    import json

    from sqlalchemy.dialects import postgresql

    from modelyard.store.tracking.sql_search import plan_run_search

    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        n = 2000
        Db(engine).runs(*[R(f"r{i:05d}", start=i, metrics={"m": i / n}) for i in range(n)])
        fingerprint = query_fingerprint("runs", [1], "", ViewType.ACTIVE_ONLY, ["metrics.m DESC"])
        token = encode_keyset_token([0, 0.25, n // 4, f"r{n // 4:05d}"], fingerprint)  # 500 runs left
        search = plan_run_search(
            ["1"], "", ViewType.ACTIVE_ONLY, 100, ["metrics.m DESC"], token, "postgresql"
        )
        assert search is not None and search.numbers_first is not None
        sql = search.numbers_first.params(search.params).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            assert len(conn.execute(text(str(sql))).all()) == 101
            plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        below_limit = plan[0]["Plan"]["Plans"][0]["Plan Rows"]
        assert below_limit >= 250, json.dumps(plan, indent=1)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_searches_are_planned_for_their_values(postgres_uri: str) -> None:
    """A prepared search must not fall back to a generic plan (estimated without the filter's values)."""
    engine = create_engine_for(postgres_uri)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            assert session.execute(text("SHOW plan_cache_mode")).scalar() == "auto"
            search_run_ids(session, ["1"], "metrics.m > 0", ViewType.ACTIVE_ONLY, 10, ["metrics.m"], None)
            assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            session.rollback()  # SET LOCAL: only for the search's own transaction
            assert session.execute(text("SHOW plan_cache_mode")).scalar() == "auto"
    finally:
        engine.dispose()


def test_compiled_searches_are_reused_by_pages_of_the_same_shape() -> None:
    """Parsing and building a search is done once per worker: the next page (another token of the
    same shape) or the same request again reuses its statements; only the bind values differ."""
    from modelyard.store.tracking.sql_search import plan_run_search

    fingerprint = query_fingerprint("runs", [1], "metrics.m > 0", ViewType.ACTIVE_ONLY, ["metrics.m DESC"])
    plan = functools.partial(plan_run_search, ["1"], "metrics.m > 0", 1, 3, ["metrics.m DESC"])
    first, again = plan(None, "postgresql"), plan(None, "postgresql")
    second = plan(encode_keyset_token([0, 0.5, 10, "b"], fingerprint), "postgresql")
    third = plan(encode_keyset_token([0, 0.25, 5, "c"], fingerprint), "postgresql")
    assert first is not None and again is not None and second is not None and third is not None
    assert first.stmt is again.stmt and first.numbers_first is again.numbers_first
    assert second.numbers_first is third.numbers_first and second.numbers_first is not first.numbers_first
    assert (
        second.params == {"pos_0": 0, "pos_1": 0.5, "pos_2": 10, "pos_3": "b"}
        and third.params["pos_1"] == 0.25
    )
    assert second.memo is third.memo
    # Another search, page size or backend is another plan.
    other = plan_run_search(["1"], "metrics.m > 1", 1, 3, ["metrics.m DESC"], None, "postgresql")
    bigger = plan_run_search(["1"], "metrics.m > 0", 1, 4, ["metrics.m DESC"], None, "postgresql")
    sqlite = plan(None, "sqlite")
    assert all(s is not None and s.stmt is not first.stmt for s in (other, bigger, sqlite))
