"""Model directories in MLflow's format: the MLmodel file, signatures, environments and model URIs."""

from __future__ import annotations

from typing import Any

from modelyard.models.enforcement import enforce_params, enforce_schema
from modelyard.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo
from modelyard.models.schema import (
    Array,
    ColSpec,
    DataType,
    Map,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
    TensorSpec,
)
from modelyard.models.signature import ModelSignature, infer_signature

__all__ = [
    "MLMODEL_FILE_NAME",
    "Array",
    "ColSpec",
    "DataType",
    "Map",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "Object",
    "ParamSchema",
    "ParamSpec",
    "Property",
    "Schema",
    "TensorSpec",
    "enforce_params",
    "enforce_schema",
    "infer_signature",
    "evaluate",
    "EvaluationMetric",
    "EvaluationResult",
    "MetricThreshold",
    "make_metric",
]

#: MLflow's `mlflow.models.evaluate` and friends, loaded on first use (see modelyard.evaluation).
_EVALUATION = frozenset(
    {"evaluate", "EvaluationResult", "EvaluationArtifact", "EvaluationMetric", "MetricThreshold", "make_metric"}
)


def __getattr__(name: str) -> Any:
    if name in _EVALUATION:
        import modelyard.evaluation

        return getattr(modelyard.evaluation, name)
    raise AttributeError(f"module 'modelyard.models' has no attribute {name!r}")
