"""`autologging.classifier_scores` gives scikit-learn's values (within 1e-12) for what autologging
logs, on random data with ties, weights, string and boolean labels, binary and multiclass; and leaves
to scikit-learn (None) or out (a missing metric) what scikit-learn would refuse."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from modelyard.autologging.classifier_scores import scores  # noqa: E402


def sklearn_values(classes: Any, y: Any, y_pred: Any, proba: Any, weight: Any) -> dict[str, float]:
    """What autologging computed with scikit-learn before (its metric calls, one by one)."""
    w = {} if weight is None else {"sample_weight": weight}
    out = {"accuracy_score": sklearn_metrics.accuracy_score(y, y_pred, **w)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, _ = sklearn_metrics.precision_recall_fscore_support(y, y_pred, average="weighted", **w)
        out |= {"precision_score": p, "recall_score": r, "f1_score": f}
        out["log_loss"] = sklearn_metrics.log_loss(y, proba, labels=classes, **w)
        if proba.shape[1] == 2:
            out["roc_auc"] = sklearn_metrics.roc_auc_score(y, proba[:, 1], **w)
        else:
            out["roc_auc"] = sklearn_metrics.roc_auc_score(y, proba, average="weighted", multi_class="ovr", **w)
    return {k: float(v) for k, v in out.items()}


def random_case(seed: int) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 6))
    rows = int(rng.integers(n_classes * 3, 300))
    kind = seed % 4
    classes: Any = {
        0: np.arange(n_classes),
        1: np.array(sorted(f"class-{i}" for i in range(n_classes))),
        2: np.arange(n_classes) * 2.0 - 2.0,
        3: np.arange(n_classes) + 10,
    }[kind]
    if n_classes == 2 and seed % 8 == 7:
        classes = np.array([False, True])
    y_index = np.r_[np.arange(n_classes), rng.integers(0, n_classes, rows - n_classes)]
    rng.shuffle(y_index)
    # Scores rounded to a few values: many ties, as a shallow tree's probabilities have.
    raw = rng.random((rows, n_classes)) + 2.0 * np.eye(n_classes)[y_index] * rng.random()
    if seed % 3 == 0:
        raw = np.round(raw, 1)
    proba = raw / raw.sum(axis=1, keepdims=True)
    if seed % 5 == 0:
        proba[0] = np.eye(n_classes)[(y_index[0] + 1) % n_classes]  # a certain, wrong row: clipped
    pred_index = proba.argmax(axis=1)
    weight = None if seed % 2 == 0 else rng.random(rows) * 3
    if weight is not None and seed % 6 == 1:
        weight = rng.integers(0, 4, rows)  # integers, some zero
        weight[:n_classes] = 1
    return classes, classes[y_index], classes[pred_index], proba, weight


@pytest.mark.parametrize("seed", range(40))
def test_the_values_are_scikit_learns(seed: int) -> None:
    classes, y, y_pred, proba, weight = random_case(seed)
    ours = scores(classes, y, y_pred, proba, weight)
    assert ours is not None
    theirs = sklearn_values(classes, y, y_pred, proba, weight)
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-12), (name, seed)


def test_float32_probabilities_are_clipped_at_their_own_precision() -> None:
    classes, y, y_pred, proba, _ = random_case(5)
    proba32 = proba.astype(np.float32)
    ours = scores(classes, y, y_pred, proba32, None)
    assert ours is not None
    assert ours["log_loss"] == pytest.approx(sklearn_metrics.log_loss(y, proba32, labels=classes), rel=1e-6)


@pytest.mark.parametrize(
    "change",
    [
        "unknown label",
        "two-dimensional y",
        "object labels",
        "nan label",
        "continuous labels",
        "weight per column",
        "nan weight",
        "proba columns",
    ],
)
def test_data_that_is_not_plain_goes_to_scikit_learn(change: str) -> None:
    classes, y, y_pred, proba, weight = random_case(2)
    y = y.copy()
    if change == "unknown label":
        y[0] = 99.0
    elif change == "two-dimensional y":
        y = y.reshape(-1, 1)
    elif change == "object labels":
        y = y.astype(object)
    elif change == "nan label":
        y[0] = np.nan
    elif change == "continuous labels":  # scikit-learn refuses them: it is asked, and raises
        classes, y, y_pred = classes + 0.5, y + 0.5, y_pred + 0.5
    elif change == "weight per column":
        weight = np.ones((len(y), 2))
    elif change == "nan weight":
        weight = np.ones(len(y))
        weight[3] = np.nan
    elif change == "proba columns":
        proba = proba[:, :1]
    assert scores(classes, y, y_pred, proba, weight) is None


def test_what_scikit_learn_refuses_is_left_out() -> None:
    classes, y, y_pred, proba, _ = random_case(4)  # 2+ classes
    # One class only in y: no ROC AUC (scikit-learn: undefined); the rest as scikit-learn's.
    only = np.full(len(y), classes[0])
    found = scores(classes, only, y_pred, proba, None)
    assert found is not None and "roc_auc" not in found and "log_loss" in found
    # Probabilities over 1: no log loss; multiclass rows that do not sum to one: no ROC AUC.
    found = scores(classes, y, y_pred, proba * 2, None)
    assert found is not None and "log_loss" not in found
    if proba.shape[1] > 2:
        assert "roc_auc" not in found
    # No probabilities: the label metrics only.
    found = scores(classes, y, y_pred, None, None)
    assert found is not None and set(found) == {"accuracy_score", "precision_score", "recall_score", "f1_score"}
