"""Model evaluation (`modelyard.evaluate`, `modelyard.models.evaluate`) and validation thresholds."""

from __future__ import annotations

from modelyard.evaluation.custom import EvaluationMetric, MetricValue, make_metric
from modelyard.evaluation.evaluate import EvaluationArtifact, EvaluationResult, evaluate
from modelyard.evaluation.validation import (
    MetricThreshold,
    ModelValidationFailedException,
    validate_evaluation_results,
)

__all__ = [
    "EvaluationArtifact",
    "EvaluationMetric",
    "EvaluationResult",
    "MetricValue",
    "MetricThreshold",
    "ModelValidationFailedException",
    "evaluate",
    "make_metric",
    "validate_evaluation_results",
]
