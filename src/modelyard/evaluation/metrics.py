"""MLflow's default evaluation metrics, by model type, under MLflow's names.

Regressors: example_count, mean/sum on target, MAE, MSE, RMSE, R², max error, MAPE. Classifiers:
accuracy, precision/recall/F1 (binary: of the positive label; multiclass: weighted), and with class
probabilities log loss and ROC AUC (binary adds the confusion counts and the precision-recall AUC;
multiclass adds a per-class one-vs-rest table). `score` comes from the estimator when it has one.
"""

from __future__ import annotations

import math
from typing import Any


def _finite(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        number = float(value)
        if not math.isnan(number):
            out[key] = int(number) if key == "example_count" else number
    return out


def regressor(y: Any, y_pred: Any, weights: Any = None) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    w = {} if weights is None else {"sample_weight": weights}
    y = np.asarray(y, dtype=float)
    y_pred = (
        np.asarray(y_pred, dtype=float).reshape(len(y), -1)[:, 0]
        if np.ndim(y_pred) > 1
        else np.asarray(y_pred, dtype=float)
    )
    mse = metrics.mean_squared_error(y, y_pred, **w)
    return _finite(
        {
            "example_count": len(y),
            "mean_absolute_error": metrics.mean_absolute_error(y, y_pred, **w),
            "mean_squared_error": mse,
            "root_mean_squared_error": math.sqrt(mse),
            "sum_on_target": float(np.sum(y)),
            "mean_on_target": float(np.mean(y)),
            "r2_score": metrics.r2_score(y, y_pred, **w),
            "max_error": metrics.max_error(y, y_pred),
            "mean_absolute_percentage_error": metrics.mean_absolute_percentage_error(y, y_pred, **w),
        }
    )


def labels_of(y: Any, y_pred: Any, label_list: list[Any] | None) -> list[Any]:
    import numpy as np

    if label_list is not None:
        return list(label_list)
    return sorted(np.unique(np.concatenate([np.asarray(y), np.asarray(y_pred)])).tolist())


def _binary(
    y: Any, y_pred: Any, scores: Any, pos_label: Any, labels: list[Any], w: dict[str, Any]
) -> dict[str, Any]:
    from sklearn import metrics

    out: dict[str, Any] = {
        "example_count": len(y),
        "accuracy_score": metrics.accuracy_score(y, y_pred, **w),
        "recall_score": metrics.recall_score(y, y_pred, pos_label=pos_label, **w),
        "precision_score": metrics.precision_score(y, y_pred, pos_label=pos_label, zero_division=0, **w),
        "f1_score": metrics.f1_score(y, y_pred, pos_label=pos_label, **w),
    }
    negative = next((label for label in labels if label != pos_label), None)
    tn, fp, fn, tp = metrics.confusion_matrix(y, y_pred, labels=[negative, pos_label], **w).ravel()
    out.update(true_negatives=tn, false_positives=fp, false_negatives=fn, true_positives=tp)
    if scores is not None:
        positives = [v == pos_label for v in y]
        out["roc_auc"] = metrics.roc_auc_score(positives, scores, **w)
        out["precision_recall_auc"] = metrics.average_precision_score(positives, scores, **w)
    return out


def classifier(
    y: Any,
    y_pred: Any,
    proba: Any,
    classes: list[Any] | None,
    pos_label: Any = None,
    label_list: Any = None,
    weights: Any = None,
) -> tuple[dict[str, float], Any]:
    """The metrics, and for multiclass the per-class table (a DataFrame) or None."""
    import numpy as np
    import pandas as pd
    from sklearn import metrics

    w = {} if weights is None else {"sample_weight": weights}
    labels = labels_of(y, y_pred, label_list)
    column_of = {c: i for i, c in enumerate(classes)} if classes is not None else {}
    if len(labels) <= 2:
        pos = pos_label if pos_label is not None else (labels[-1] if labels else 1)
        scores = proba[:, column_of[pos]] if proba is not None and pos in column_of else None
        out = _binary(y, y_pred, scores, pos, labels, w)
        if proba is not None:
            out["log_loss"] = metrics.log_loss(y, proba, labels=classes, **w)
        return _finite(out), None
    out = {
        "example_count": len(y),
        "accuracy_score": metrics.accuracy_score(y, y_pred, **w),
        "recall_score": metrics.recall_score(y, y_pred, average="weighted", **w),
        "precision_score": metrics.precision_score(y, y_pred, average="weighted", zero_division=0, **w),
        "f1_score": metrics.f1_score(y, y_pred, average="weighted", **w),
    }
    if proba is not None:
        out["log_loss"] = metrics.log_loss(y, proba, labels=classes, **w)
        out["roc_auc"] = metrics.roc_auc_score(
            y, proba, multi_class="ovr", average="weighted", labels=classes, **w
        )
    rows = []
    for label in labels:
        scores = proba[:, column_of[label]] if proba is not None and label in column_of else None
        binary_y = np.asarray([v == label for v in y])
        binary_pred = np.asarray([v == label for v in y_pred])
        row = {"positive_class": label, **_binary(binary_y, binary_pred, scores, True, [False, True], w)}
        rows.append(row)
    table = pd.DataFrame(rows)
    ordered = ["positive_class", "true_negatives", "false_positives", "false_negatives", "true_positives", "example_count",
               "accuracy_score", "recall_score", "precision_score", "f1_score", "roc_auc", "precision_recall_auc"]  # fmt: skip
    return _finite(out), table[[c for c in ordered if c in table.columns]]
