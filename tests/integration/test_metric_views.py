"""Server-side downsampling of metric histories and dataset summaries, on SQLite and PostgreSQL,
through the store function the UI and the REST endpoint share (`store/tracking/metric_views.py`)."""

from __future__ import annotations

import math

import pytest

from modelyard.entities import Metric
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.migrate import upgrade
from modelyard.store.tracking import metric_views
from modelyard.store.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def store(db_uri: str, tmp_path) -> SqlTrackingStore:  # type: ignore[no-untyped-def]
    upgrade(db_uri)
    return SqlTrackingStore.from_uri(db_uri, default_artifact_root=str(tmp_path))


def _steps(metrics: list[Metric], run_id: str) -> list[int]:
    return [m.step for m in metrics if m.run_id == run_id]


def test_sampling_keeps_first_and_last_and_spreads_the_rest(store: SqlTrackingStore) -> None:
    dense = store.create_run("0", None, None).info.run_id
    sparse = store.create_run("0", None, None).info.run_id
    store.log_batch(dense, metrics=[Metric("loss", float(i), 1000 + i, i) for i in range(30)])
    points = [Metric("loss", float(i), 1000 + i, i * 3) for i in range(100)]
    store.log_batch(
        sparse, metrics=[*points, Metric("loss", -1.0, 5000, 0), Metric("loss", math.nan, 6000, 6)]
    )
    # What MLflow 3.17's server answers for the same histories (observed).
    sampled = metric_views.history_bulk_interval(store.engine, [dense, sparse], "loss", max_results=5)
    assert _steps(sampled, dense) == [0, 6, 12, 18, 29]
    assert _steps(sampled, sparse) == [0, 60, 120, 180, 297]
    assert [m.value for m in sampled if m.run_id == sparse][0] == 0.0  # the earliest point of a step
    assert _steps(
        metric_views.history_bulk_interval(store.engine, [dense], "loss", max_results=1), dense
    ) == [29]
    assert _steps(
        metric_views.history_bulk_interval(store.engine, [dense], "loss", max_results=2), dense
    ) == [0, 29]
    windowed = metric_views.history_bulk_interval(
        store.engine, [dense], "loss", 10, start_step=10, end_step=40
    )
    assert _steps(windowed, dense) == [10, 12, 14, 16, 18, 20, 22, 24, 26, 29]
    everything = metric_views.history_bulk_interval(store.engine, [sparse], "loss")
    assert len(everything) == 102 and any(math.isnan(m.value) for m in everything)
    assert metric_views.history_bulk_interval(store.engine, ["ab" * 16], "loss") == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_results": 0}, "between 1 and 2500"),
        ({"max_results": 2501}, "between 1 and 2500"),
        ({"start_step": 3}, "both must be specified"),
        ({"start_step": 5, "end_step": 1}, "greater than start_step"),
    ],
)
def test_bad_interval_requests_are_400(
    store: SqlTrackingStore, kwargs: dict[str, int], fragment: str
) -> None:
    with pytest.raises(ModelyardException) as raised:
        metric_views.history_bulk_interval(store.engine, ["x"], "loss", **kwargs)
    assert raised.value.http_status == 400 and fragment in raised.value.message
    with pytest.raises(ModelyardException):
        metric_views.history_bulk_interval(store.engine, ["x"] * 101, "loss")


def test_dataset_summaries(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("datasets")
    run_id = store.create_run(experiment_id, None, None).info.run_id
    dataset = {"name": "ds", "digest": "abc", "source_type": "local", "source": "{}"}
    store.log_inputs(
        run_id, [{"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "train"}]}]
    )
    assert metric_views.dataset_summaries(store.engine, [experiment_id]) == [
        {"experiment_id": experiment_id, "name": "ds", "digest": "abc", "context": "train"}
    ]
    assert metric_views.dataset_summaries(store.engine, ["0"]) == []
