"""Collects what one autologged fit writes and sends it the way the issue asks: one log-batch.

Params, tags and metrics gather in a `FitLog`; `flush` sends them as one log-batch (split only at
MLflow's per-request limits). Metrics computed against a logged model carry its `model_id` and the
dataset's name and digest, so they show on the model too, as MLflow 3's client records them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.protocol.limits import MAX_PARAM_VALUE_LENGTH


@dataclass
class FitLog:
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    #: Metrics with their own step (per-iteration histories): (key, value, step).
    history: list[tuple[str, float, int]] = field(default_factory=list)
    model_id: str | None = None
    dataset: Any = None

    def add_params(self, params: dict[str, Any]) -> None:
        # A value past MLflow's limit would fail the whole batch: it is cut, as MLflow's autologging does.
        self.params.update({str(k): str(v)[:MAX_PARAM_VALUE_LENGTH] for k, v in params.items()})

    def flush(self, run_id: str) -> None:
        from modelyard.client import Client
        from modelyard.client.client import now_ms
        from modelyard.entities import Metric, Param, RunTag

        ts = now_ms()
        link = {
            "model_id": self.model_id,
            "dataset_name": getattr(self.dataset, "name", None),
            "dataset_digest": getattr(self.dataset, "digest", None),
        }
        metrics = [Metric(k, float(v), ts, 0, **link) for k, v in self.metrics.items()]
        metrics += [Metric(k, float(v), ts, int(step), model_id=self.model_id) for k, v, step in self.history]
        params = [Param(k, v) for k, v in self.params.items()]
        tags = [RunTag(k, v) for k, v in self.tags.items()]
        if metrics or params or tags:
            Client().log_batch(run_id, metrics=metrics, params=params, tags=tags)
