"""What `evaluate` scores: a model URI, a loaded pyfunc model, a plain callable or precomputed
predictions; with the underlying estimator when there is one (for `predict_proba` and `score`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.exceptions import ModelyardException


@dataclass
class EvalModel:
    predict: Callable[[Any], Any] | None
    raw: Any  # the estimator (sklearn, xgboost) or None
    model_id: str | None


def resolve(model: Any) -> EvalModel:
    from modelyard.pyfunc import PyFuncModel, load_model

    if model is None:
        return EvalModel(None, None, None)
    if isinstance(model, str):
        model = load_model(model)
    if isinstance(model, PyFuncModel):
        raw = model.get_raw_model()
        if raw is model:
            raw = None
        return EvalModel(model.predict, raw, model.model_id)
    if callable(getattr(model, "predict", None)):
        return EvalModel(model.predict, model, None)
    if callable(model):
        return EvalModel(model, None, None)
    raise ModelyardException.invalid_parameter(
        f"evaluate's model must be a model URI, a pyfunc model or a function, got {type(model).__name__}"
    )


def probabilities(model: EvalModel, features: Any) -> Any:
    """Class probabilities when the estimator has `predict_proba`, else None."""
    proba = getattr(model.raw, "predict_proba", None)
    if not callable(proba):
        return None
    try:
        return proba(features)
    except Exception:
        return None
