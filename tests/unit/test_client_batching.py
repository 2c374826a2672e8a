"""Splitting log-batch calls at MLflow's per-request limits."""

from __future__ import annotations

from modelyard.client.batching import chunk_batch
from modelyard.entities import Metric, Param, RunTag
from modelyard.protocol import limits


def _metrics(n: int) -> list[Metric]:
    return [Metric(f"m{i}", float(i), 0, 0) for i in range(n)]


def test_a_batch_within_limits_is_one_request() -> None:
    chunks = list(
        chunk_batch(
            _metrics(800),
            [Param(f"p{i}", "v") for i in range(100)],
            [RunTag(f"t{i}", "v") for i in range(100)],
        )
    )
    assert len(chunks) == 1
    assert (len(chunks[0].metrics), len(chunks[0].params), len(chunks[0].tags)) == (800, 100, 100)


def test_an_empty_batch_sends_nothing() -> None:
    assert list(chunk_batch()) == []


def test_large_batches_split_at_every_limit_and_keep_order() -> None:
    metrics = _metrics(2500)
    params = [Param(f"p{i}", "v") for i in range(250)]
    tags = [RunTag(f"t{i}", "v") for i in range(120)]
    chunks = list(chunk_batch(metrics, params, tags))
    for chunk in chunks:
        assert len(chunk.metrics) <= limits.MAX_METRICS_PER_BATCH
        assert len(chunk.params) <= limits.MAX_PARAMS_PER_BATCH
        assert len(chunk.tags) <= limits.MAX_TAGS_PER_BATCH
        assert chunk.size <= limits.MAX_ENTITIES_PER_BATCH
    assert [m for c in chunks for m in c.metrics] == metrics
    assert [p for c in chunks for p in c.params] == params
    assert [t for c in chunks for t in c.tags] == tags
    # params go first, so a conflicting param fails before any metric is written
    assert chunks[0].params and not chunks[0].metrics
    # 100p | 100p | 50p+100t | 20t+980m | 1000m | 520m
    assert [c.size for c in chunks] == [100, 100, 150, 1000, 1000, 520]
