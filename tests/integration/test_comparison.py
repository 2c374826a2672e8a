"""compared_runs (the compare page's one store call) on real SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.entities import Metric, Param
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.tracking.comparison import compared_runs, metric_band
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


def test_metric_band_is_the_envelope_of_the_runs_per_bucket(store: SqlTrackingStore) -> None:
    experiment = store.create_experiment("band")
    ids = [store.create_run(experiment, "me", 0).info.run_id for _ in range(3)]
    # run i logs value i * 10 + step at steps 0..99; run 2 has a NaN at step 5 and nothing after 49
    for i, run_id in enumerate(ids):
        last = 50 if i == 2 else 100
        points = [Metric("loss", math.nan if (i, step) == (2, 5) else i * 10 + step, 0, step) for step in range(last)]
        store.log_batch(run_id, metrics=points)
    exact = metric_band(store.engine, ids, "loss", max_points=400)
    assert exact is not None and exact.bucket_width == 1
    assert exact.x == list(range(100))
    assert exact.low == [float(s) for s in range(100)]
    assert exact.high[:5] == [20.0 + s for s in range(5)] and exact.high[5] == 15.0  # NaN left out
    assert exact.high[50:] == [10.0 + s for s in range(50, 100)]

    coarse = metric_band(store.engine, ids, "loss", max_points=10)
    assert coarse is not None and coarse.bucket_width == 10 and coarse.x == list(range(0, 100, 10))
    assert coarse.low == [float(x) for x in range(0, 100, 10)]
    assert coarse.high[0] == 29.0 and coarse.high[9] == 19.0 + 90
    assert metric_band(store.engine, ids, "nope") is None and metric_band(store.engine, [], "loss") is None


def test_only_the_metrics_asked_for(store: SqlTrackingStore) -> None:
    experiment = store.create_experiment("some")
    run_id = store.create_run(experiment, "me", 0).info.run_id
    store.log_batch(run_id, params=[Param("lr", "1")], metrics=[Metric(k, 1.0, 0, 0) for k in ("a", "b", "c")])
    (run,) = compared_runs(store.engine, [run_id], params=False, metric_keys=["a", "c", "a"])
    assert run.params == {} and run.metrics == {"a": 1.0, "c": 1.0}
