"""Model evaluation (`modelyard.evaluate`, `modelyard.models.evaluate`) and validation thresholds."""

from __future__ import annotations

from modelyard.evaluation.evaluate import EvaluationArtifact, EvaluationResult, evaluate
from modelyard.evaluation.validation import (
    MetricThreshold,
    ModelValidationFailedException,
    validate_evaluation_results,
)

__all__ = [
    "EvaluationArtifact",
    "EvaluationResult",
    "MetricThreshold",
    "ModelValidationFailedException",
    "evaluate",
    "validate_evaluation_results",
]
