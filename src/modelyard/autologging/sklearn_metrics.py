"""What a fitted scikit-learn estimator is scored on after `fit`: MLflow's `training_*` metrics and plots.

Classifiers: accuracy, weighted precision/recall/F1, log loss and ROC AUC (one-vs-rest, weighted, for
more than two classes) when the estimator has `predict_proba`; regressors: MSE, RMSE, MAE, R². Every
estimator with `score` gets `training_score`. A metric that cannot be computed for this data (one
class only, a custom estimator's odd output) is skipped, never fatal. Plots need matplotlib.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
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


def classifier_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    from sklearn import metrics

    w = _weights(sample_weight)
    y_pred = estimator.predict(X)
    out = {
        "accuracy_score": _call(metrics.accuracy_score, y, y_pred, **w),
        "precision_score": _call(metrics.precision_score, y, y_pred, average="weighted", **w),
        "recall_score": _call(metrics.recall_score, y, y_pred, average="weighted", **w),
        "f1_score": _call(metrics.f1_score, y, y_pred, average="weighted", **w),
    }
    if callable(getattr(estimator, "predict_proba", None)):
        proba = _call_raw(estimator.predict_proba, X)
        if proba is not None:
            out["log_loss"] = _call(
                metrics.log_loss, y, proba, labels=getattr(estimator, "classes_", None), **w
            )
            if proba.ndim == 2 and proba.shape[1] == 2:
                out["roc_auc"] = _call(metrics.roc_auc_score, y, proba[:, 1], **w)
            else:
                out["roc_auc"] = _call(
                    metrics.roc_auc_score, y, proba, average="weighted", multi_class="ovr", **w
                )
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


def _call_raw(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def training_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    if y is None or not (is_classifier(estimator) or is_regressor(estimator)):
        return out  # clusterers, transformers: MLflow logs no training metrics for them
    if is_classifier(estimator):
        out.update(classifier_metrics(estimator, X, y, sample_weight))
    else:
        out.update(regressor_metrics(estimator, X, y, sample_weight))
    if callable(getattr(estimator, "score", None)):
        score = _call(estimator.score, X, y, **_weights(sample_weight))
        if score is not None:
            out[PREFIX + "score"] = score
    return out


#: MLflow's settings for every autologged plot, and the confusion matrix's own (figure size, dpi, fonts
#: shrinking with the number of classes); the figures' titles are MLflow's too.
_PLOT_RC = {"savefig.dpi": 175, "figure.autolayout": True, "font.size": 8}
_CONFUSION_SIZE = (6.0, 4.0)
_TITLES = {
    "confusion_matrix": "Normalized confusion matrix",
    "roc_curve": "ROC curve",
    "precision_recall_curve": "Precision recall curve",
}
#: zlib level of the PNGs: 1 instead of 6 encodes the same pixels in about a third of the CPU, for a
#: file ~1.3x larger (a 1050x700 confusion matrix: ~40 KB instead of ~30 KB).
_PNG_COMPRESS_LEVEL = 1


def classifier_plots(estimator: Any, X: Any, y: Any, folder: str, sample_weight: Any = None) -> list[str]:
    """PNG files written to `folder`, MLflow's figures: the row-normalized confusion matrix (Blues)
    always; ROC and precision-recall curves for binary problems. Empty without matplotlib.

    Drawn on an Agg canvas of their own, never through pyplot: no figure registry to add to and close,
    and nothing shared with figures the user (or another thread) draws with pyplot meanwhile."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    from sklearn import metrics
    from sklearn.base import is_classifier

    if y is None or not is_classifier(estimator):
        return []
    classes = getattr(estimator, "classes_", None)
    labels = len(classes) if classes is not None else len(set(y))

    def confusion_matrix() -> Any:
        rc = {"font.size": min(8.0, 50.0 / max(labels, 1)), "axes.labelsize": 8.0, "figure.dpi": 175}
        with matplotlib.rc_context(rc):
            figure = Figure(figsize=_CONFUSION_SIZE)
            FigureCanvasAgg(figure)
            return metrics.ConfusionMatrixDisplay.from_estimator(
                estimator, X, y, sample_weight=sample_weight, normalize="true", cmap="Blues",
                ax=figure.add_subplot(),
            )  # fmt: skip

    def curve(display: Any) -> Callable[[], Any]:
        def draw() -> Any:
            figure = Figure(dpi=_PLOT_RC["savefig.dpi"])  # the size in inches is the default's
            FigureCanvasAgg(figure)
            return display.from_estimator(estimator, X, y, sample_weight=sample_weight, ax=figure.add_subplot())

        return draw

    plots: list[tuple[str, Callable[[], Any]]] = [("confusion_matrix", confusion_matrix)]
    if len(set(y)) == 2:  # MLflow's test: two distinct labels in y
        plots.append(("roc_curve", curve(metrics.RocCurveDisplay)))
        plots.append(("precision_recall_curve", curve(metrics.PrecisionRecallDisplay)))
    written = []
    for name, draw in plots:
        try:
            with matplotlib.rc_context(_PLOT_RC):
                display = draw()
                display.ax_.set_title(_TITLES[name])
                path = os.path.join(folder, f"{PREFIX}{name}.png")
                _save_png(display.figure_, path)
        except Exception:  # e.g. an estimator without decision_function or predict_proba
            continue
        written.append(path)
    return written


def _save_png(figure: Any, path: str) -> None:
    """`savefig` as PNG, the tight layout computed once: `savefig` would compute it with a whole draw of
    its own (every artist but the pixels, the images resampled) before the real one. The figure is drawn
    at its saving dpi already, so the layout is the one `savefig` computes."""
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        figure.set_layout_engine("none")
    figure.savefig(path, format="png", pil_kwargs={"compress_level": _PNG_COMPRESS_LEVEL})
