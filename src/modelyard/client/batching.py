"""Split a log-batch into requests that each respect MLflow's per-request limits.

A batch within the limits is exactly one request, so it stays all-or-nothing; a larger one becomes
the fewest requests that fit (each all-or-nothing on its own), params first so a conflicting param
fails before any metric of the batch is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from modelyard.entities import Metric, Param, RunTag
from modelyard.protocol.limits import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
)


@dataclass
class BatchChunk:
    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


def chunk_batch(
    metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
) -> Iterator[BatchChunk]:
    chunk = BatchChunk()
    for kind, items, limit in (
        ("params", params, MAX_PARAMS_PER_BATCH),
        ("tags", tags, MAX_TAGS_PER_BATCH),
        ("metrics", metrics, MAX_METRICS_PER_BATCH),
    ):
        for item in items:
            bucket: list = getattr(chunk, kind)
            if len(bucket) >= limit or chunk.size >= MAX_ENTITIES_PER_BATCH:
                yield chunk
                chunk = BatchChunk()
                bucket = getattr(chunk, kind)
            bucket.append(item)
    if chunk.size:
        yield chunk
