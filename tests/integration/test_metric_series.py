"""metric_series on real SQLite and PostgreSQL: buckets and summaries checked against the full history."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from modelyard.entities import Metric, RunTag
from modelyard.exceptions import ModelyardException
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.tracking.metric_series import metric_series, metric_summaries
from modelyard.store.tracking.sql_store import SqlTrackingStore

STEPS = 100_000
T0 = 1_700_000_000_000
BATCH = 1000


def _opened(uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(uri)
    engine = create_engine_for(uri)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"))
    engine.dispose()


@pytest.fixture
def store(db_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    yield from _opened(db_uri, tmp_path)


@pytest.fixture
def pg_store(postgres_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    yield from _opened(postgres_uri, tmp_path)


def _log(store: SqlTrackingStore, run_id: str, key: str, points: list[tuple[int, int, float]]) -> None:
    metrics = [Metric(key, value, ts, step) for step, ts, value in points]
    for start in range(0, len(metrics), BATCH):
        store.log_batch(run_id, metrics=metrics[start : start + BATCH])


def _history(seed: int) -> list[tuple[int, int, float]]:
    """(step, timestamp, value): a noisy decaying loss with spikes and a few NaNs; 10 ms per step."""
    rng = random.Random(seed)
    points = []
    for step in range(STEPS):
        value = 2.0 * math.exp(-step / 30_000) + rng.gauss(0, 0.05)
        if step % 9973 == 17:
            value = 50.0 + step / 1e4  # a one-point spike a chart must not lose
        if step % 25_013 == 5:
            value = math.nan
        points.append((step, T0 + step * 10, value))
    return points


def _expected_buckets(
    points: list[tuple[int, float]], lo: int, width: int
) -> list[tuple[int, float | None, float | None, float | None, int]]:
    """(first x, mean, min, max, count) per non-empty bucket, from the full history in Python."""
    buckets: dict[int, list[tuple[int, float]]] = {}
    for x, value in points:
        buckets.setdefault((x - lo) // width, []).append((x, value))
    out = []
    for index in sorted(buckets):
        members = buckets[index]
        real = [v for _, v in members if not math.isnan(v)]
        out.append(
            (
                min(x for x, _ in members),
                sum(real) / len(real) if real else None,
                min(real) if real else None,
                max(real) if real else None,
                len(members),
            )
        )
    return out


def test_a_100k_step_metric_is_bucketed_exactly_and_summarised_whole(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("series")
    run_id = store.create_run(experiment_id, "alice", T0).info.run_id
    other = store.create_run(experiment_id, "bob", T0).info.run_id
    history = _history(1)
    _log(store, run_id, "loss", history)
    _log(store, other, "loss", [(s, T0 + s, float(s)) for s in range(10)])

    found = metric_series(store.engine, [run_id, "no-such-run", other], "loss", "step", max_points=1500)
    assert list(found) == [run_id, other]
    series = found[run_id]
    assert series.sampled and series.points_in_range == STEPS
    width = math.ceil(STEPS / 1500)
    assert series.bucket_width == width and len(series.x) <= 1500

    expected = _expected_buckets([(s, v) for s, _, v in history], 0, width)
    assert len(series.x) == len(expected)
    for got_x, got_mean, got_min, got_max, (x, mean, low, high, _) in zip(
        series.x, series.y, series.y_min, series.y_max, expected, strict=True
    ):
        assert (got_x, got_min, got_max) == (x, low, high)  # min/max are stored values: exact
        assert got_mean == pytest.approx(mean, rel=1e-9)
    assert max(v for v in series.y_max if v is not None) == 50.0 + 99_747 / 1e4  # the last spike

    real = [v for _, _, v in history if not math.isnan(v)]
    summary = series.summary
    assert summary.count == STEPS  # NaN points counted
    assert (summary.min, summary.max) == (min(real), max(real))
    assert summary.last == history[-1][2] and summary.last_step == STEPS - 1
    assert (summary.min_step, summary.max_step) == (0, STEPS - 1)
    assert metric_summaries(store.engine, [run_id], "loss")[run_id] == summary
    # Asked again (PostgreSQL: read back from metric_series_cache), the same series.
    again = metric_series(store.engine, [run_id, other], "loss", "step", max_points=1500)
    assert again == found

    # The short run's real points come back unchanged.
    assert not found[other].sampled and found[other].x == list(range(10))
    assert found[other].y == [float(s) for s in range(10)]

    # A zoomed range with fewer points than the budget: the real points, NaN as a gap.
    zoom = metric_series(store.engine, [run_id], "loss", "step", 24_900.4, 25_999.0, 1500)[run_id]
    assert not zoom.sampled and zoom.points_in_range == 1099
    assert zoom.x == list(range(24_901, 26_000))
    want = [None if math.isnan(v) else v for s, _, v in history if 24_901 <= s <= 25_999]
    assert zoom.y == want and None in zoom.y
    assert zoom.summary == summary  # the summary never depends on the range
    lean = metric_series(store.engine, [run_id], "loss", "step", 24_901, 25_999, 1500, with_summary=False)
    assert lean[run_id].summary is None and lean[run_id].x == zoom.x
    assert metric_series(store.engine, [run_id], "loss", with_summary=False)[run_id].summary == summary

    # A zoomed range with more points than the budget is bucketed within the range only.
    mid = metric_series(store.engine, [run_id], "loss", "step", 10_000, 39_999, 1000)[run_id]
    assert mid.sampled and mid.points_in_range == 30_000 and mid.bucket_width == 30
    sub = [(s, v) for s, _, v in history if 10_000 <= s <= 39_999]
    assert [(x, lo, hi) for x, _, lo, hi, _ in _expected_buckets(sub, 10_000, 30)] == list(
        zip(mid.x, mid.y_min, mid.y_max, strict=True)
    )


def test_time_axes(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("axes")
    run_id = store.create_run(experiment_id, "alice", T0).info.run_id
    points = [(s, T0 + 5000 + s * 100, float(s % 7)) for s in range(3000)]
    _log(store, run_id, "acc", points)

    wall = metric_series(store.engine, [run_id], "acc", "timestamp", T0 + 5000, T0 + 5000 + 9_900, 500)[
        run_id
    ]
    assert not wall.sampled and wall.x == [T0 + 5000 + s * 100 for s in range(100)]

    relative = metric_series(store.engine, [run_id], "acc", "relative", max_points=500)[run_id]
    assert relative.sampled and relative.x[0] == 0 and relative.points_in_range == 3000
    expected = _expected_buckets([(s * 100, float(s % 7)) for s in range(3000)], 0, relative.bucket_width)
    assert [(x, lo, hi) for x, _, lo, hi, _ in expected] == list(
        zip(relative.x, relative.y_min, relative.y_max, strict=True)
    )
    zoom = metric_series(store.engine, [run_id], "acc", "relative", 1000, 1999, 500)[run_id]
    assert zoom.x == [1000 + 100 * i for i in range(10)] and zoom.y == [
        float((10 + i) % 7) for i in range(10)
    ]


def test_non_finite_values_and_empty_ranges(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("odd")
    run_id = store.create_run(experiment_id, "alice", T0).info.run_id
    _log(
        store,
        run_id,
        "m",
        [(0, T0, math.nan), (1, T0 + 1, math.inf), (2, T0 + 2, -1.5), (3, T0 + 3, math.nan)],
    )
    series = metric_series(store.engine, [run_id], "m")[run_id]
    assert series.y == [None, math.inf, -1.5, None]
    assert series.to_dict()["y"] == [None, None, -1.5, None]
    summary = series.summary
    assert (summary.count, summary.min, summary.max) == (4, -1.5, math.inf)
    assert math.isnan(summary.last) and summary.to_dict()["last"] == "NaN"
    assert summary.to_dict()["max"] == "Infinity"
    assert metric_series(store.engine, [run_id], "m", "step", 10, 20)[run_id].x == []
    assert metric_series(store.engine, [run_id], "other") == {}


def test_bad_arguments_are_invalid_parameters(store: SqlTrackingStore) -> None:
    for kwargs in (
        {"x_axis": "epoch"},
        {"max_points": 5},
        {"max_points": 10**6},
        {"max_points": True},
        {"x_min": math.nan},
    ):
        with pytest.raises(ModelyardException) as info:
            metric_series(store.engine, ["x"], "m", **kwargs)  # type: ignore[arg-type]
        assert info.value.error_code == "INVALID_PARAMETER_VALUE", kwargs


def _stored(store: SqlTrackingStore, run_id: str) -> dict[tuple[str, str, int], int]:
    """(key, x axis, max points) -> the history_version each stored series of the run was built at."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT key, x_axis, max_points, history_version FROM metric_series_cache WHERE run_uuid = :r"
            ),
            {"r": run_id},
        )
        return {(key, axis, points): version for key, axis, points, version in rows}


@pytest.mark.postgres
def test_a_stored_series_is_served_only_while_it_is_its_historys(pg_store: SqlTrackingStore) -> None:
    """A sampled whole-history series is stored on first load and read back; after any write of its
    key (an old step, a retried point, a batch in a transaction, a newer point from a writer that does
    not count writes) the next load is the new history's, and is stored again."""
    store, engine = pg_store, pg_store.engine
    run_id = store.create_run(store.create_experiment("cache"), "u", T0).info.run_id
    _log(store, run_id, "loss", [(s, T0 + s, float(s % 50)) for s in range(3000)])
    _log(store, run_id, "acc", [(s, T0 + s, 1.0) for s in range(50)])

    def load(axis: str = "step") -> dict[str, Any]:
        return metric_series(engine, [run_id], "loss", axis, max_points=100)[run_id].to_dict()

    first = load()
    assert first["sampled"] and first["summary"]["max"] == 49.0 and first["summary"]["count"] == 3000
    assert _stored(store, run_id) == {("loss", "step", 100): 2}  # 3 batches: the insert, 2 updates
    with engine.begin() as conn:  # what is served is the stored row (made recognisable here)
        conn.execute(text("UPDATE metric_series_cache SET body = :b"), {"b": _encode_marked(engine, run_id)})
    assert load()["y_max"][0] == -1.0
    load("relative")
    metric_series(engine, [run_id], "acc", max_points=100)  # 50 points: the real points, nothing stored
    metric_series(engine, [run_id], "loss", "step", 0, 2999, 100)  # a range: computed, not stored
    assert set(_stored(store, run_id)) == {("loss", "step", 100), ("loss", "relative", 100)}

    store.log_metric(run_id, Metric("acc", 2.0, T0, 5))  # another key: still served
    assert load()["y_max"][0] == -1.0
    store.log_metric(run_id, Metric("loss", 1000.0, T0 + 7, 7))  # an old step: the latest point stays
    after = load()
    assert (
        after["summary"]["max"] == 1000.0
        and after["summary"]["count"] == 3001
        and after["y_max"][0] == 1000.0
    )
    assert after["summary"]["last"] == first["summary"]["last"] == 2999 % 50
    assert _stored(store, run_id)[("loss", "step", 100)] == 3 and load() == after

    store.log_metric(run_id, Metric("loss", 1000.0, T0 + 7, 7))  # retried: absorbed, counted all the same
    assert load() == after and _stored(store, run_id)[("loss", "step", 100)] == 4
    store.log_batch(run_id, [Metric("loss", -6.0, T0 + 9, 9)], tags=[RunTag("t", "2")])  # in a transaction
    assert load()["summary"]["min"] == -6.0

    # A writer that does not count writes (the release before this one): a newer point moves the
    # latest point, and that is enough.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES (:r, 'loss', 5000, 1, 77, false)"
            ),
            {"r": run_id},
        )
        conn.execute(
            text(
                "UPDATE latest_metrics SET step = 5000, timestamp = 1, value = 77 WHERE run_uuid = :r AND key = 'loss'"
            ),
            {"r": run_id},
        )
    newest = load()
    assert newest["summary"]["max_step"] == 5000 and newest["summary"]["last"] == 77.0
    assert newest["summary"]["max"] == 1000.0 and newest["summary"]["count"] == 3003

    with engine.begin() as conn:  # a purge takes the stored rows with the run
        conn.execute(text("DELETE FROM runs WHERE run_uuid = :r"), {"r": run_id})
    assert _stored(store, run_id) == {}


def _encode_marked(engine: Engine, run_id: str) -> bytes:
    """The stored step series of `run_id` with its first bucket's max set to -1."""
    from modelyard.store.tracking import metric_series as module

    with engine.connect() as conn:
        body = conn.execute(
            text("SELECT body FROM metric_series_cache WHERE run_uuid = :r AND x_axis = 'step'"),
            {"r": run_id},
        ).scalar_one()
    series = module._decode(body, run_id, "loss", "step")
    series.y_max[0] = -1.0
    return module._encode(series)


@pytest.mark.postgres
def test_a_write_during_a_build_leaves_the_stored_series_out_of_date(
    pg_store: SqlTrackingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A series records the history_version read BEFORE its points: a write committed while the points
    are read may or may not be in them, and the stored series is not served again either way."""
    from modelyard.store.tracking import metric_series as module

    store, engine = pg_store, pg_store.engine
    run_id = store.create_run(store.create_experiment("race"), "u", T0).info.run_id
    _log(store, run_id, "loss", [(s, T0 + s, float(s % 50)) for s in range(3000)])
    original = module._run_series

    def write_first(*args: Any, **kwargs: Any) -> Any:
        store.log_metric(run_id, Metric("loss", 500.0, T0 + 3, 3))  # committed on another connection
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "_run_series", write_first)
    metric_series(engine, [run_id], "loss", max_points=100)
    monkeypatch.setattr(module, "_run_series", original)
    assert _stored(store, run_id) == {("loss", "step", 100): 2}  # read before the write
    again = metric_series(engine, [run_id], "loss", max_points=100)[run_id]
    assert again.summary is not None and again.summary.max == 500.0 and again.summary.count == 3001
    assert _stored(store, run_id) == {("loss", "step", 100): 3}


@pytest.mark.postgres
def test_a_database_that_refuses_the_write_still_answers(
    pg_store: SqlTrackingStore, postgres_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Storing a series is best effort: through a read-only connection the chart still loads."""
    from sqlalchemy import create_engine

    from modelyard.store.sql.engine import normalize_uri

    run_id = pg_store.create_run(pg_store.create_experiment("ro"), "u", T0).info.run_id
    _log(pg_store, run_id, "loss", [(s, T0 + s, float(s % 50)) for s in range(3000)])
    read_only = create_engine(
        normalize_uri(postgres_uri), connect_args={"options": "-c default_transaction_read_only=on"}
    )
    try:
        series = metric_series(read_only, [run_id], "loss", max_points=100)[run_id]
    finally:
        read_only.dispose()
    assert series.sampled and series.summary is not None and series.summary.count == 3000
    assert _stored(pg_store, run_id) == {} and "Could not store the chart series" in caplog.text
