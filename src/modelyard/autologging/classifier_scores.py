"""A classifier's training metrics from its predictions, with numpy: accuracy, weighted precision,
recall and F1, log loss and ROC AUC (one-vs-rest, weighted by prevalence, for more than two classes).

scikit-learn's metric functions validate their inputs on every call (array namespaces, dataframe
probes, target types): on iris the four calls autologging makes cost ~14 ms of CPU, most of a small
fit's logging, for arithmetic that takes ~0.3 ms. These are scikit-learn's definitions (its
`metrics` module, 1.3 to 1.9): `precision_recall_fscore_support(average="weighted")` with 0 for a
label never predicted, `log_loss` with probabilities clipped to [eps, 1 - eps] of their dtype, and
`roc_auc_score` as the trapezoidal area under the ROC curve; tests/unit/test_classifier_scores.py
holds them to scikit-learn's values (within 1e-12) on random data, ties, weights and string labels.
`scores` answers only for plain data (1-D labels the estimator knows, a weight per row, a probability
per class); anything else (None) goes to scikit-learn itself. A metric scikit-learn would refuse or
leave undefined (one class, probabilities that do not sum to one for a multiclass AUC) is left out,
as autologging leaves out a metric scikit-learn raises on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Label dtypes (numpy kinds) compared as scikit-learn compares them: booleans, integers, floats, strings.
_LABEL_KINDS = "biufU"


def scores(classes: Any, y: Any, y_pred: Any, proba: Any, sample_weight: Any) -> dict[str, float] | None:
    """The metrics (MLflow's names without `training_`), or None when the data is not plain."""
    labels = _plain_labels(classes, y, y_pred)
    if labels is None:
        return None
    classes, y_index, pred_index = labels
    weight = _plain_weight(sample_weight, len(y_index))
    if weight is False:
        return None
    found = _label_scores(len(classes), y_index, pred_index, weight)  # type: ignore[arg-type]
    if found is None:
        return None
    if proba is not None:
        probabilities = np.asarray(proba)
        if probabilities.ndim != 2 or probabilities.shape != (len(y_index), len(classes)):
            return None
        if probabilities.dtype.kind != "f":
            return None
        found.update(_probability_scores(y_index, probabilities, weight))  # type: ignore[arg-type]
    return found


def _plain_labels(classes: Any, y: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(classes, index of each true label, index of each predicted label) when every label is one of
    the estimator's sorted `classes`."""
    classes, y, y_pred = np.asarray(classes), np.asarray(y), np.asarray(y_pred)
    if classes.ndim != 1 or len(classes) < 2 or y.ndim != 1 or y_pred.shape != y.shape or y.size == 0:
        return None
    if any(a.dtype.kind not in _LABEL_KINDS for a in (classes, y, y_pred)):
        return None
    if (classes.dtype.kind == "U") != (y.dtype.kind == "U") or (y.dtype.kind == "U") != (y_pred.dtype.kind == "U"):
        return None
    # Floats that are not whole numbers are a continuous target to scikit-learn (it refuses them).
    if classes.dtype.kind == "f" and not (np.isfinite(classes).all() and (classes == np.floor(classes)).all()):
        return None
    if np.any(classes[1:] <= classes[:-1]):  # not sorted and distinct, as a fitted estimator's are
        return None
    indexes = []
    for labels in (y, y_pred):
        index = np.minimum(np.searchsorted(classes, labels), len(classes) - 1)
        if not np.array_equal(classes[index], labels):  # a label the estimator does not know (or NaN)
            return None
        indexes.append(index)
    return classes, indexes[0], indexes[1]


def _plain_weight(sample_weight: Any, rows: int) -> np.ndarray | None | bool:
    """The weights as an array, None for none, False when they are not one finite number per row."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight)
    if weight.ndim != 1 or len(weight) != rows or weight.dtype.kind not in "biuf":
        return False
    if not np.isfinite(weight).all():
        return False
    return weight


def _label_scores(
    n_classes: int, y_index: np.ndarray, pred_index: np.ndarray, weight: np.ndarray | None
) -> dict[str, float] | None:
    correct = y_index == pred_index
    true_sum = np.bincount(y_index, weights=weight, minlength=n_classes)
    if not true_sum.sum() > 0:  # scikit-learn's weighted average is undefined
        return None
    pred_sum = np.bincount(pred_index, weights=weight, minlength=n_classes)
    tp_sum = np.bincount(y_index[correct], weights=None if weight is None else weight[correct], minlength=n_classes)
    precision = _divide(tp_sum, pred_sum)
    recall = _divide(tp_sum, true_sum)
    f1 = _divide(2 * tp_sum, true_sum + pred_sum)
    return {
        "accuracy_score": float(np.average(correct, weights=weight)),
        "precision_score": float(np.average(precision, weights=true_sum)),
        "recall_score": float(np.average(recall, weights=true_sum)),
        "f1_score": float(np.average(f1, weights=true_sum)),
    }


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division="warn")."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _probability_scores(y_index: np.ndarray, proba: np.ndarray, weight: np.ndarray | None) -> dict[str, float]:
    found: dict[str, float] = {}
    if proba.max() <= 1 and proba.min() >= 0:  # scikit-learn refuses a log loss of anything else
        eps = np.finfo(proba.dtype).eps
        chosen = np.clip(proba[np.arange(len(y_index)), y_index], eps, 1 - eps)
        found["log_loss"] = float(np.average(-np.log(chosen), weights=weight))
    auc = _roc_auc(y_index, proba, weight)
    if auc is not None:
        found["roc_auc"] = auc
    return found


def _roc_auc(y_index: np.ndarray, proba: np.ndarray, weight: np.ndarray | None) -> float | None:
    """Binary: the area for the second class's probability. More classes: each class against the rest,
    averaged by the classes' (weighted) counts; scikit-learn requires every class in y and rows that
    sum to one."""
    n_classes = proba.shape[1]
    if n_classes == 2:
        return _binary_auc(y_index == 1, proba[:, 1], weight)
    if len(np.unique(y_index)) != n_classes or not np.allclose(1, proba.sum(axis=1)):
        return None
    areas, counts = [], []
    for k in range(n_classes):
        positive = y_index == k
        area = _binary_auc(positive, proba[:, k], weight)
        if area is None:
            return None
        areas.append(area)
        counts.append(positive.sum() if weight is None else weight[positive].sum())
    if np.isclose(np.sum(counts), 0.0):
        return None
    return float(np.average(areas, weights=counts))


def _binary_auc(positive: np.ndarray, score: np.ndarray, weight: np.ndarray | None) -> float | None:
    """The trapezoidal area under the ROC curve (a point per distinct score); None with one class."""
    if positive.all() or not positive.any():
        return None
    order = np.argsort(score, kind="mergesort")[::-1]
    score, positive = score[order], positive[order]
    w = np.ones(len(score)) if weight is None else weight[order].astype(np.float64)
    last_of_each = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.r_[0.0, np.cumsum(w * positive)[last_of_each]]
    fps = np.r_[0.0, np.cumsum(w * ~positive)[last_of_each]]
    if not (tps[-1] > 0 and fps[-1] > 0):
        return None
    tpr, fpr = tps / tps[-1], fps / fps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
