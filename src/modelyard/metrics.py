"""MLflow's `mlflow.metrics` names for custom evaluation metrics: `make_metric`, `MetricValue`,
`EvaluationMetric` (`evaluate(..., extra_metrics=[...])`; see `modelyard.evaluation.custom`)."""

from __future__ import annotations

from modelyard.evaluation.custom import EvaluationMetric, MetricValue, make_metric

__all__ = ["EvaluationMetric", "MetricValue", "make_metric"]
