"""The fast read paths against the entity path, on real SQLite and PostgreSQL.

`search_runs_json` (PostgreSQL: one statement that builds the page's JSON) and
`get_metric_history_dicts` (row tuples straight to dicts) must produce, byte for byte, the JSON the
entities' `to_dict()` produce, on a corpus of edge cases; and their keyset page tokens must page
through everything exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert

from modelyard.entities import Metric, ModelOutput, Param, RunTag, ViewType
from modelyard.exceptions import ModelyardException
from modelyard.store.logged_models.sql_store import SqlLoggedModelStore
from modelyard.store.search.paging import encode_keyset_token, encode_page_token, query_fingerprint
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.schema import SqlRun
from modelyard.store.tracking.sql_store import SqlTrackingStore

FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    1.0,
    -5.0,
    1e-5,
    1e14,
    1e15,
    1e20,
    123456789.0,
    0.1,
    1 / 3,
    5e-324,
    1.7976931348623157e308,
]
AWKWARD = ['quote " and \\ backslash', "tab\tnew\nline\r\x01\x1f\x7f", "ünï😀 / </script>", "", " "]


@pytest.fixture
def store(db_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(db_uri)
    engine = create_engine_for(db_uri)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"))
    engine.dispose()


@pytest.fixture
def corpus(store: SqlTrackingStore) -> str:
    """An experiment whose runs cover the shapes a run's JSON can take."""
    exp = store.create_experiment("edge")
    full = store.create_run(
        exp, "alice", 1000, [RunTag("empty", ""), RunTag("team", "a")], "full"
    ).info.run_id
    store.log_batch(
        full,
        metrics=[Metric(f"f{i:02d}", v, 10**12 + i, 2**62 - i) for i, v in enumerate(FLOATS)],
        params=[Param(f"p{i}", v) for i, v in enumerate(AWKWARD)] + [Param("long", "x" * 6000)],
        tags=[RunTag(f"t{i}", v) for i, v in enumerate(AWKWARD)] + [RunTag("long", "y" * 8000)],
    )
    store.log_metric(full, Metric("neg", -1.5, 5, -7))
    store.log_inputs(
        full,
        [
            {"dataset": {"name": "iris", "digest": "d1", "source_type": "local", "source": "/x"}, "tags": []},
            {"dataset": {"name": "wine", "digest": "d2", "source_type": "s3", "source": "s3://b/ü"}},
        ],
    )
    store.update_run_info(full, "FINISHED", end_time=2000)
    models = SqlLoggedModelStore(store.engine, store.default_artifact_root)
    model_ids = [models.create_logged_model(exp, f"m{i}", source_run_id=full).model_id for i in range(2)]
    models.log_outputs(full, [ModelOutput(model_ids[1], 3), ModelOutput(model_ids[0], 3)])
    # Values PostgreSQL prints as orjson does (no exponent): their text goes into the response as is.
    plain = store.create_run(exp, "dave", 700, run_name="plain").info.run_id
    values = [
        0.1,
        1 / 3,
        -2.5,
        1e-4,
        123456789.0,
        999999999999999.9,
        1e14,
        -0.0,
        2**49 + 0.5,
        0.30000000000000004,
    ]
    store.log_batch(plain, metrics=[Metric(f"v{i}", v, 7, i) for i, v in enumerate(values)])
    # Same start time and metric value as `twin`: ties break on run id.
    for name in ("twin-a", "twin-b"):
        run = store.create_run(exp, "bob", 500, run_name=name).info.run_id
        store.log_batch(run, metrics=[Metric("f05", 1.0, 1, 0)], params=[Param("p0", "same")])
    # Tags rewritten, deleted and renamed after they were first written (PostgreSQL keeps the run's
    # params/tags JSON on its row: each of these must refresh it).
    store.log_batch(full, tags=[RunTag("team", "b")])
    store.delete_tag(full, "t4")
    renamed = store.create_run(
        exp, "erin", 600, [RunTag("keep", "1"), RunTag("drop", "2")], "before"
    ).info.run_id
    store.update_run_info(renamed, run_name="renamed")
    store.delete_tag(renamed, "drop")
    store.log_batch(renamed, params=[Param("late", "p")])
    gone = store.create_run(exp, "carol", 400, run_name="gone").info.run_id
    store.log_metric(gone, Metric("f05", math.nan, 1, 0))
    store.delete_run(gone)
    # No params, metrics or tags at all, and NULL name, user and start time: only SQL can write it.
    with store.engine.begin() as conn:
        conn.execute(
            insert(SqlRun.__table__).values(
                run_uuid="0" * 32,
                experiment_id=int(exp),
                status="RUNNING",
                lifecycle_stage="active",
                name=None,
                user_id=None,
                start_time=None,
                artifact_uri=None,
            )
        )
    return exp


SEARCHES = [
    ("", None, ViewType.ALL),
    ("", ["metrics.f05 DESC"], ViewType.ALL),
    ("", ["metrics.f00", "params.p0 DESC", "tags.t1"], ViewType.ALL),
    ("params.p0 = 'same'", ["attributes.run_name"], ViewType.ACTIVE_ONLY),
    ("metrics.f05 >= 1", ["start_time", "run_id DESC"], ViewType.ALL),
    ("", ["end_time DESC", "user_id"], ViewType.DELETED_ONLY),
    ("tags.long LIKE 'y%'", ["tags.long"], ViewType.ACTIVE_ONLY),
    # An IN list (expanded when the statement is compiled) with keyset page tokens.
    ("params.p0 IN ('same', 'quote \" and \\ backslash')", ["metrics.f05 DESC"], ViewType.ALL),
]


def _pages(search: Any, exp: str, filter_string: str, order_by: Any, view: int, size: int) -> list[Any]:
    pages, token = [], None
    while True:
        page = search([exp], filter_string, view, size, order_by, token)
        pages.append(page)
        token = page.token
        if token is None:
            return pages


def _json_pages(store: SqlTrackingStore, *args: Any) -> list[list[dict[str, Any]]]:
    """`search_runs_json` pages, each run's JSON parsed back."""
    return [orjson.loads(orjson.dumps(list(page))) for page in _pages(store.search_runs_json, *args)]


@pytest.mark.parametrize(("filter_string", "order_by", "view"), SEARCHES)
@pytest.mark.parametrize("size", [1, 2, 1000])
def test_search_json_is_byte_for_byte_the_entity_json(
    store: SqlTrackingStore, corpus: str, filter_string: str, order_by: Any, view: int, size: int
) -> None:
    fast = _pages(store.search_runs_json, corpus, filter_string, order_by, view, size)
    slow = _pages(store.search_runs, corpus, filter_string, order_by, view, size)
    assert [p.token for p in fast] == [p.token for p in slow]
    assert orjson.dumps([list(p) for p in fast]) == orjson.dumps([[r.to_dict() for r in p] for p in slow])
    runs = [r for p in orjson.loads(orjson.dumps([list(p) for p in fast])) for r in p]
    assert len({r["info"]["run_id"] for r in runs}) == len(runs)


def test_search_json_spells_edge_values_as_mlflow(store: SqlTrackingStore, corpus: str) -> None:
    (page,) = _json_pages(store, corpus, "attributes.run_name = 'full'", None, 1, 10)
    body = orjson.dumps(page[0])
    values = {m["key"]: m["value"] for m in page[0]["data"]["metrics"]}
    assert [values[f"f{i:02d}"] for i in range(4)] == ["NaN", "Infinity", "-Infinity", -0.0]
    assert (
        b'"value":1.0,' in body
        and b'"value":100000000000000.0,' in body
        and b'"value":1000000000000000.0,' in body
    )
    if store.engine.dialect.name == "postgresql":  # SQLite keeps no sign on a zero REAL
        assert b'"value":-0.0,' in body
    assert type(values["f05"]) is float and values["f15"] == 1.7976931348623157e308
    assert {m["key"]: m["step"] for m in page[0]["data"]["metrics"]}["f00"] == 2**62
    assert [p["key"] for p in page[0]["data"]["params"]] == sorted(
        p["key"] for p in page[0]["data"]["params"]
    )
    tags = {t["key"]: t["value"] for t in page[0]["data"]["tags"]}
    assert tags["empty"] == "" and tags["team"] == "b" and "t4" not in tags
    assert sorted(i["dataset"]["name"] for i in page[0]["inputs"]["dataset_inputs"]) == ["iris", "wine"]
    assert [o["step"] for o in page[0]["outputs"]["model_outputs"]] == [3, 3]
    assert page[0]["info"]["end_time"] == 2000
    bare = next(r for r in _json_pages(store, corpus, "", None, 1, 10)[0] if r["info"]["run_id"] == "0" * 32)
    assert bare == {
        "info": {
            "run_id": "0" * 32,
            "run_uuid": "0" * 32,
            "run_name": "",
            "experiment_id": corpus,
            "user_id": "",
            "status": "RUNNING",
            "artifact_uri": "",
            "lifecycle_stage": "active",
        },
        "data": {},
        "inputs": {},
    }


def test_search_json_of_no_experiment_and_bad_input(store: SqlTrackingStore, corpus: str) -> None:
    assert store.search_runs_json([], "", 1, 10) == []
    for kwargs in (
        {"filter_string": "metrics.x > 'a'"},
        {"max_results": 0},
        {"page_token": "garbage!"},
        {"order_by": ["metrics.a SIDEWAYS"]},
    ):
        with pytest.raises(ModelyardException) as info:
            store.search_runs_json([corpus], **kwargs)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"


# ---- metric history ---------------------------------------------------------------------------
@pytest.fixture
def history(store: SqlTrackingStore) -> str:
    run = store.create_run(store.create_experiment("history"), "alice", 0).info.run_id
    points = [Metric("h", FLOATS[i % len(FLOATS)], 1000 + i % 3, i // 2 - 5) for i in range(103)]
    # Same step and timestamp, different values: ordered by value.
    points += [Metric("h", v, 1000, -5) for v in (7.0, -7.0, math.inf)]
    store.log_batch(run, metrics=points[:100])
    store.log_batch(run, metrics=points[100:])
    return run


@pytest.mark.parametrize("size", [1, 7, 25000])
def test_history_dicts_are_the_entity_json_and_pages_cover_everything_once(
    store: SqlTrackingStore, history: str, size: int
) -> None:
    fast, slow, token = [], [], None
    while True:
        page = store.get_metric_history_dicts(history, "h", size, token)
        same = store.get_metric_history(history, "h", size, token)
        assert page.token == same.token
        fast.extend(page)
        slow.extend(m.to_dict() for m in same)
        token = page.token
        if token is None:
            break
    assert orjson.dumps(fast) == orjson.dumps(slow)
    keys = [(m["step"], m["timestamp"]) for m in fast]
    assert len(fast) == 106 and keys == sorted(keys)
    assert {m["value"] for m in fast if isinstance(m["value"], str)} == {"NaN", "Infinity", "-Infinity"}


def test_history_keyset_pages_do_not_shift_when_points_arrive(store: SqlTrackingStore, history: str) -> None:
    first = store.get_metric_history_dicts(history, "h", 10)
    # Points that sort before the cursor (an OFFSET would repeat a row of the first page) and after.
    store.log_batch(history, metrics=[Metric("h", 42.0, 1, -100), Metric("h", 43.0, 1, 10**6)])
    rest, token = [], first.token
    while token is not None:
        page = store.get_metric_history_dicts(history, "h", 10, token)
        rest.extend(page)
        token = page.token
    steps = [(m["step"], m["timestamp"], m["value"]) for m in [*first, *rest]]
    assert len(steps) == len(set(map(str, steps))) == 107  # the point before the cursor is not seen
    assert rest[-1]["value"] == 43.0 and -100 not in [m["step"] for m in rest]


def test_history_tokens(store: SqlTrackingStore, history: str) -> None:
    fingerprint = query_fingerprint("metric-history", history, "h")
    everything = store.get_metric_history_dicts(history, "h")
    # Offset tokens from before keyset paging are still honoured.
    page = store.get_metric_history_dicts(history, "h", 5, encode_page_token(10, fingerprint))
    assert list(page) == everything[10:15]
    after = everything[9]
    stored = 0.0 if after["value"] == "NaN" else float(after["value"])
    token = encode_keyset_token([after["step"], after["timestamp"], stored], fingerprint)
    assert list(store.get_metric_history_dicts(history, "h", 5, token)) == everything[10:15]
    forged = [
        encode_keyset_token([1, 2], fingerprint),
        encode_keyset_token(["1", 2, 3.0], fingerprint),
        encode_keyset_token([True, 2, 3.0], fingerprint),
        encode_keyset_token([1, 2, None], fingerprint),
        encode_keyset_token([1, 2, math.nan], fingerprint),
        encode_keyset_token([2**63, 2, 3.0], fingerprint),
        encode_keyset_token([1, 2, 3.0], query_fingerprint("metric-history", history, "other")),
    ]
    for bad in forged:
        with pytest.raises(ModelyardException) as info:
            store.get_metric_history_dicts(history, "h", 5, bad)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"
        assert info.value.http_status == 400
