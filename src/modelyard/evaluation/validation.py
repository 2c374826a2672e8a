"""Validation thresholds: gate a model on its evaluation metrics (absolute, or against a baseline).

`MetricThreshold(threshold=..., min_absolute_change=..., min_relative_change=..., greater_is_better=...)`
as MLflow defines it; `validate_evaluation_results(thresholds, candidate, baseline)` raises
`ModelValidationFailedException` naming every failing metric with its values, so a CI job can refuse
a promotion with a message that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.exceptions import ModelyardException


class ModelValidationFailedException(ModelyardException):
    def __init__(self, message: str) -> None:
        super().__init__(message, "INVALID_PARAMETER_VALUE")


@dataclass(frozen=True)
class MetricThreshold:
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool | None = None

    def __post_init__(self) -> None:
        if self.greater_is_better is None:
            raise ModelyardException.invalid_parameter(
                "MetricThreshold needs greater_is_better=True or False"
            )
        if self.threshold is None and self.min_absolute_change is None and self.min_relative_change is None:
            raise ModelyardException.invalid_parameter(
                "MetricThreshold needs a threshold, a min_absolute_change or a min_relative_change"
            )
        for name in ("min_absolute_change", "min_relative_change"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ModelyardException.invalid_parameter(f"{name} must be positive, got {value}")


def _failures(name: str, rule: MetricThreshold, candidate: float | None, baseline: float | None) -> list[str]:
    if candidate is None:
        return [f"metric {name!r}: the candidate model has no such metric"]
    better = "greater is better" if rule.greater_is_better else "lower is better"
    sign = 1.0 if rule.greater_is_better else -1.0
    out = []
    if rule.threshold is not None and sign * (candidate - rule.threshold) < 0:
        op = ">=" if rule.greater_is_better else "<="
        out.append(
            f"metric {name!r}: candidate {candidate:g} is not {op} threshold {rule.threshold:g} ({better})"
        )
    if rule.min_absolute_change is None and rule.min_relative_change is None:
        return out
    if baseline is None:
        return [*out, f"metric {name!r}: a change threshold needs a baseline result with this metric"]
    change = sign * (candidate - baseline)
    if rule.min_absolute_change is not None and change < rule.min_absolute_change:
        out.append(
            f"metric {name!r}: candidate {candidate:g} improves on baseline {baseline:g} by {change:g}, "
            f"less than min_absolute_change {rule.min_absolute_change:g} ({better})"
        )
    if rule.min_relative_change is not None:
        relative = change / abs(baseline) if baseline != 0 else (float("inf") if change > 0 else 0.0)
        if relative < rule.min_relative_change:
            out.append(
                f"metric {name!r}: candidate {candidate:g} improves on baseline {baseline:g} by "
                f"{relative:.4g} relative, less than min_relative_change {rule.min_relative_change:g} ({better})"
            )
    return out


def validate_evaluation_results(
    validation_thresholds: dict[str, MetricThreshold], candidate_result: Any, baseline_result: Any = None
) -> None:
    """Raise `ModelValidationFailedException` listing every threshold the candidate misses."""
    failures = []
    baseline_metrics = getattr(baseline_result, "metrics", None) or {}
    for name, rule in (validation_thresholds or {}).items():
        failures += _failures(name, rule, candidate_result.metrics.get(name), baseline_metrics.get(name))
    if failures:
        raise ModelValidationFailedException("Model validation failed: " + "; ".join(failures))
