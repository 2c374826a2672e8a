"""compared_runs (the compare page's one store call) on real SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.entities import Metric, Param
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.tracking.comparison import compared_runs
from modelyard.store.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def store(db_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(db_uri)
    engine = create_engine_for(db_uri)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"))
    engine.dispose()


def test_runs_params_and_latest_metrics_in_the_order_asked(store: SqlTrackingStore) -> None:
    first = store.create_experiment("first")
    second = store.create_experiment("second")
    a = store.create_run(first, "alice", 1000, run_name="a").info.run_id
    b = store.create_run(second, "bob", 2000, run_name="b").info.run_id
    c = store.create_run(first, "carol", 3000, run_name="c").info.run_id
    store.log_batch(a, params=[Param("lr", "0.1"), Param("opt", "adam")],
                    metrics=[Metric("loss", 0.9, 1, 0), Metric("loss", 0.5, 2, 1)])
    store.log_batch(b, params=[Param("lr", "0.01")], metrics=[Metric("loss", math.nan, 1, 3), Metric("acc", 0.7, 1, 0)])
    store.delete_run(c)

    runs = compared_runs(store.engine, [b, "0" * 32, a, c, a])

    assert [r.run_id for r in runs] == [b, a, c]  # unknown left out, repeats once, deleted kept
    by_id = {r.run_id: r for r in runs}
    assert by_id[a].params == {"lr": "0.1", "opt": "adam"}
    assert by_id[a].metrics == {"loss": 0.5} and by_id[a].steps == {"loss": 1}
    assert by_id[a].experiment_name == "first" and by_id[b].experiment_name == "second"
    assert math.isnan(by_id[b].metrics["loss"]) and by_id[b].metrics["acc"] == 0.7
    assert by_id[c].lifecycle_stage == "deleted" and by_id[c].params == {} and by_id[c].metrics == {}
    assert (by_id[a].name, by_id[a].start_time, by_id[a].status) == ("a", 1000, "RUNNING")
    assert compared_runs(store.engine, []) == [] and compared_runs(store.engine, ["f" * 32]) == []
