"""What a fitted scikit-learn estimator is scored on after `fit`: MLflow's `training_*` metrics and plots.

Classifiers: accuracy, weighted precision/recall/F1, log loss and ROC AUC (one-vs-rest, weighted, for
more than two classes) when the estimator has `predict_proba`; regressors: MSE, RMSE, MAE, R². Every
estimator with `score` gets `training_score`. A metric that cannot be computed for this data (one
class only, a custom estimator's odd output) is skipped, never fatal. The plots: `sklearn_plots`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PREFIX = "training_"


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float | None:
    try:
        value = float(fn(*args, **kwargs))
    except Exception:  # a metric this estimator or data does not support
        return None
    return value if not math.isnan(value) else None


def _weights(sample_weight: Any) -> dict[str, Any]:
    return {} if sample_weight is None else {"sample_weight": sample_weight}


@dataclass(frozen=True)
class ClassifierOutputs:
    """A fitted classifier's outputs on its training data, computed once on the fit's thread for the
    metrics and for the plots (`sklearn_plots`, drawn after `fit` returns)."""

    y_pred: Any
    #: `predict_proba`'s output; None without the method or when it failed.
    proba: Any
    #: The estimator has `predict_proba` (failed or not): its curves are drawn from it or not at all.
    has_proba: bool


def classifier_outputs(estimator: Any, X: Any) -> ClassifierOutputs:
    has_proba = callable(getattr(estimator, "predict_proba", None))
    proba = _call_raw(estimator.predict_proba, X) if has_proba else None
    return ClassifierOutputs(estimator.predict(X), proba, has_proba)


def classifier_metrics(
    estimator: Any, X: Any, y: Any, sample_weight: Any = None, outputs: ClassifierOutputs | None = None
) -> dict[str, float]:
    from sklearn import metrics

    w = _weights(sample_weight)
    outputs = outputs or classifier_outputs(estimator, X)
    y_pred, proba = outputs.y_pred, outputs.proba
    if hasattr(y, "to_numpy"):  # a pandas Series: converted once here, not by every metric (~10 ms)
        y = y.to_numpy()
    from modelyard.autologging import classifier_scores  # numpy: loaded on use (the base install has none)

    classes = getattr(estimator, "classes_", None)
    fast = None if classes is None else classifier_scores.scores(classes, y, y_pred, proba, sample_weight)
    if fast is not None:  # scikit-learn's values with numpy (~0.3 ms instead of ~14 on iris)
        return {PREFIX + k: v for k, v in fast.items() if not math.isnan(v)}
    out = {"accuracy_score": _call(metrics.accuracy_score, y, y_pred, **w)}
    # precision_score, recall_score and f1_score are each this one call's part: computed once.
    scores = _call_raw(metrics.precision_recall_fscore_support, y, y_pred, average="weighted", **w)
    for index, name in enumerate(("precision_score", "recall_score", "f1_score")):
        out[name] = None if scores is None else _call(float, scores[index])
    if proba is not None:
        out["log_loss"] = _call(metrics.log_loss, y, proba, labels=getattr(estimator, "classes_", None), **w)
        if proba.ndim == 2 and proba.shape[1] == 2:
            out["roc_auc"] = _call(metrics.roc_auc_score, y, proba[:, 1], **w)
        else:
            out["roc_auc"] = _call(metrics.roc_auc_score, y, proba, average="weighted", multi_class="ovr", **w)
    return {PREFIX + k: v for k, v in out.items() if v is not None}


def regressor_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    from sklearn import metrics

    w = _weights(sample_weight)
    y_pred = estimator.predict(X)
    mse = _call(metrics.mean_squared_error, y, y_pred, **w)
    out = {
        "mean_squared_error": mse,
        "root_mean_squared_error": None if mse is None else math.sqrt(mse),
        "mean_absolute_error": _call(metrics.mean_absolute_error, y, y_pred, **w),
        "r2_score": _call(metrics.r2_score, y, y_pred, **w),
    }
    return {PREFIX + k: v for k, v in out.items() if v is not None}


def _call_raw(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception:
        return None


def training_metrics(
    estimator: Any, X: Any, y: Any, sample_weight: Any = None, outputs: ClassifierOutputs | None = None
) -> dict[str, float]:
    """`outputs`: a classifier's, when the caller computed them already (for the plots)."""
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    if y is None or not (is_classifier(estimator) or is_regressor(estimator)):
        return out  # clusterers, transformers: MLflow logs no training metrics for them
    if is_classifier(estimator):
        out.update(classifier_metrics(estimator, X, y, sample_weight, outputs))
    else:
        out.update(regressor_metrics(estimator, X, y, sample_weight))
    if PREFIX + "accuracy_score" in out and _scores_accuracy(estimator):
        out[PREFIX + "score"] = out[PREFIX + "accuracy_score"]  # the same number, without predicting again
    elif callable(getattr(estimator, "score", None)):
        score = _call(estimator.score, X, y, **_weights(sample_weight))
        if score is not None:
            out[PREFIX + "score"] = score
    return out


def _scores_accuracy(estimator: Any) -> bool:
    """The estimator's `score` is scikit-learn's classifier one (autologging's wrapper aside): the
    accuracy of `predict` on the same data and weights."""
    from sklearn.base import ClassifierMixin

    score = getattr(type(estimator), "score", None)
    return getattr(score, "__wrapped__", score) is ClassifierMixin.score
