"""Filters over many keys: on PostgreSQL past `sql_predicates.JOINED_KEYS` keys they compile to
per-table probes instead of semi-joins; the matches must be the same as on SQLite and as MLflow's
rules say (a missing key matches no value test, NaN matches only != / NOT IN, IS NULL = missing)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelyard.entities import Metric, Param, RunTag
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import upgrade
from modelyard.store.tracking.sql_predicates import JOINED_KEYS
from modelyard.store.tracking.sql_store import SqlTrackingStore

BASE = {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}


@pytest.fixture
def runs(db_uri: str, tmp_path: Path) -> tuple[SqlTrackingStore, str, dict[str, str]]:
    upgrade(db_uri)
    store = SqlTrackingStore(create_engine_for(db_uri), default_artifact_root=str(tmp_path / "a"))
    exp = store.create_experiment("many-keys")
    variants = {
        "all": (BASE, 1.0),
        "no_e": ({k: v for k, v in BASE.items() if k != "e"}, 1.0),
        "nan": (BASE, math.nan),
        "c9": ({**BASE, "c": "9"}, 2.0),
    }
    ids = {}
    for name, (params, value) in variants.items():
        run_id = store.create_run(exp, "u", None, run_name=name).info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric("m", value, 1, 0)],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("t", "x")],
        )
        ids[run_id] = name
    return store, exp, ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.a = '1' and params.b = '2' and params.c = '3' and params.d = '4' and params.e = '5' "
         "and metrics.m > 0 and tags.t = 'x'", {"all"}),
        ("params.a = '1' and params.b != '0' and params.c != '0' and params.d != '0' and params.e IS NULL "
         "and metrics.m != 5", {"no_e"}),
        ("params.a = '1' and params.b != '0' and params.c != '9' and params.c LIKE '3%' and params.d != '0' "
         "and params.e != '0' and metrics.m != 5", {"all", "nan"}),
        ("params.a != '0' and params.b != '0' and params.c IN ('9', '8') and params.d != '0' and params.e = '5' "
         "and metrics.m >= 2 and tags.t != 'y'", {"c9"}),
        ("params.a = '1' and params.b = '2' and params.d = '4' and params.e = '5' and params.zz IS NOT NULL",
         set()),
        ("params.a = '1' and params.b = '2' and params.d = '4' and params.e = '5' and params.zz IS NULL "
         "and (metrics.m = 1 or metrics.m = 2)", {"all", "c9"}),
    ],
)
def test_many_key_filters_match_as_few_key_ones_do(
    runs: tuple[SqlTrackingStore, str, dict[str, str]], text: str, expected: set[str]
) -> None:
    store, exp, ids = runs
    assert len({c.split()[0] for c in text.replace("(", "").split(" and ")}) > JOINED_KEYS
    for order_by in ([], ["metrics.m DESC"]):
        page = store.search_runs([exp], text, max_results=10, order_by=order_by)
        assert {ids[r.info.run_id] for r in page} == expected, (text, order_by)


def test_experiment_filters_over_many_tag_keys(db_uri: str, tmp_path: Path) -> None:
    from modelyard.entities import ExperimentTag

    upgrade(db_uri)
    store = SqlTrackingStore(create_engine_for(db_uri), default_artifact_root=str(tmp_path / "a"))
    tags = {f"k{i}": str(i) for i in range(6)}
    full = store.create_experiment("full", tags=[ExperimentTag(k, v) for k, v in tags.items()])
    store.create_experiment("partial", tags=[ExperimentTag(k, v) for k, v in list(tags.items())[:5]])
    text = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
    assert [e.experiment_id for e in store.search_experiments(filter_string=text)] == [full]
    missing = " and ".join([*(f"tags.{k} != 'x'" for k in list(tags)[:5]), "tags.k5 IS NULL"])
    assert [e.name for e in store.search_experiments(filter_string=missing)] == ["partial"]
