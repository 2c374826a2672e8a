"""A fitted classifier's autologged plots, MLflow's figures pixel for pixel: the row-normalized confusion
matrix (Blues) always, ROC and precision-recall curves for binary problems.

Split in two because they are drawn after `fit` returns (`background`): `plot_data` runs on the fit's
thread and keeps what the figures need (predictions, binary scores, copies of `y` and the weights), so
the drawing never touches the estimator, which the user may refit meanwhile, nor the user's arrays;
`draw` makes the PNGs from that alone, with scikit-learn's `from_predictions` displays.

MLflow draws inside `matplotlib.rc_context` (dpi 175, tight layout, font size 8; the confusion matrix's
fonts shrink with the number of classes). That context is process-wide state, which a background thread
must not change under the user's own pyplot figures: here every size is set on the figure and its artists
instead, to the values MLflow's context gives them (tests/compat compares the pixels with MLflow's).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from modelyard.autologging.sklearn_metrics import PREFIX, ClassifierOutputs

_DPI = 175
_FONT = 8.0
#: matplotlib's 'large' (titles) and MLflow's confusion matrix figure size.
_TITLE_FONT = 1.2 * _FONT
_CONFUSION_SIZE = (6.0, 4.0)
_TITLES = {
    "confusion_matrix": "Normalized confusion matrix",
    "roc_curve": "ROC curve",
    "precision_recall_curve": "Precision recall curve",
}
#: Where scikit-learn puts each curve's legend (the legend is made again at MLflow's font size).
_LEGEND_LOC = {"roc_curve": "lower right", "precision_recall_curve": "lower left"}
#: zlib level of the PNGs: 1 instead of 6 encodes the same pixels in about a third of the CPU, for a
#: file ~1.3x larger (a 1050x700 confusion matrix: ~40 KB instead of ~30 KB).
_PNG_COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class PlotData:
    """What a classifier's figures are drawn from: arrays of their own, nothing of the estimator's."""

    #: The estimator's class name (the curves' legend, as `from_estimator` names them).
    name: str
    #: How many classes (the confusion matrix's fonts shrink with it).
    labels: int
    y: Any
    y_pred: Any
    sample_weight: Any
    #: Binary problems: the positive class's scores (`predict_proba`, else `decision_function`), or
    #: None when the estimator has neither (no curves, as `from_estimator` draws none).
    scores: Any = None
    pos_label: Any = None


def plot_data(
    estimator: Any, X: Any, y: Any, sample_weight: Any, outputs: ClassifierOutputs
) -> PlotData | None:
    """None when there is nothing to draw: no `y`, not a classifier, or no matplotlib."""
    import numpy as np
    from sklearn.base import is_classifier

    if y is None or not is_classifier(estimator) or importlib.util.find_spec("matplotlib") is None:
        return None
    y_true = np.array(y, copy=True)
    classes = getattr(estimator, "classes_", None)
    scores = pos_label = None
    if len(set(y_true)) == 2 and classes is not None and len(classes) == 2:  # MLflow's test: 2 labels in y
        pos_label = classes[1]  # `from_estimator`'s: the estimator's second class
        if outputs.has_proba:
            proba = outputs.proba
            scores = proba[:, 1] if proba is not None and np.ndim(proba) == 2 else None
        elif callable(getattr(estimator, "decision_function", None)):
            scores = estimator.decision_function(X)
    return PlotData(
        name=type(estimator).__name__,
        labels=len(classes) if classes is not None else len(set(y_true)),
        y=y_true,
        y_pred=np.array(outputs.y_pred, copy=True),
        sample_weight=None if sample_weight is None else np.array(sample_weight, copy=True),
        scores=None if scores is None else np.array(scores, copy=True),
        pos_label=pos_label,
    )


def draw(data: PlotData, folder: str) -> list[str]:
    """The PNG files written to `folder`; a figure that fails (odd data) is skipped, not fatal.

    Drawn on an Agg canvas of their own, never through pyplot: no figure registry to add to and close,
    and nothing shared with figures the user (or another thread) draws with pyplot meanwhile."""
    from sklearn import metrics

    plots: list[tuple[str, Any]] = [("confusion_matrix", _confusion_matrix)]
    if data.scores is not None:
        plots.append(("roc_curve", _curve(metrics.RocCurveDisplay)))
        plots.append(("precision_recall_curve", _curve(metrics.PrecisionRecallDisplay)))
    written = []
    for name, plot in plots:
        path = os.path.join(folder, f"{PREFIX}{name}.png")
        try:
            _save_png(plot(data, name), path)
        except Exception:  # e.g. labels the display cannot draw
            continue
        written.append(path)
    return written


def _figure(size: tuple[float, float] | None = None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # No size: the default's, as MLflow's curves. No layout engine, whatever rcParams say (`_save_png`).
    figure = Figure(figsize=size, dpi=_DPI, layout="none")
    FigureCanvasAgg(figure)
    return figure


def _confusion_matrix(data: PlotData, name: str) -> Any:
    from sklearn import metrics

    figure = _figure(_CONFUSION_SIZE)
    font = min(_FONT, 50.0 / max(data.labels, 1))  # MLflow's: tick labels and counts shrink
    axes = figure.add_subplot()
    display = metrics.ConfusionMatrixDisplay.from_predictions(
        data.y, data.y_pred, sample_weight=data.sample_weight, normalize="true", cmap="Blues", ax=axes,
        text_kw={"fontsize": font},
    )  # fmt: skip
    axes.tick_params(labelsize=font)
    display.im_.colorbar.ax.tick_params(labelsize=font)
    _label_fonts(axes, _FONT)
    axes.set_title(_TITLES[name], fontsize=_TITLE_FONT)
    return figure


def _curve(display: Any) -> Any:
    def plot(data: PlotData, name: str) -> Any:
        figure = _figure()
        axes = figure.add_subplot()
        display.from_predictions(
            data.y, data.scores, sample_weight=data.sample_weight, pos_label=data.pos_label, name=data.name,
            ax=axes,
        )  # fmt: skip
        axes.tick_params(labelsize=_FONT)
        _label_fonts(axes, _FONT)
        if axes.get_legend() is not None:
            axes.legend(loc=_LEGEND_LOC[name], fontsize=_FONT)
        axes.set_title(_TITLES[name], fontsize=_TITLE_FONT)
        return figure

    return plot


def _label_fonts(axes: Any, size: float) -> None:
    axes.xaxis.label.set_fontsize(size)
    axes.yaxis.label.set_fontsize(size)


def _save_png(figure: Any, path: str) -> None:
    """`savefig` as PNG after the tight layout computed once, then no layout engine: with one (even the
    placeholder `set_layout_engine("none")` leaves), `savefig` makes a whole draw of its own (every artist
    but the pixels) before the real one."""
    import matplotlib
    from matplotlib.layout_engine import TightLayoutEngine

    # The padding is 1.08 times the process's font size (read, not set): MLflow's, at its font size.
    TightLayoutEngine(pad=1.08 * _FONT / float(matplotlib.rcParams["font.size"]), rect=None).execute(figure)
    figure.savefig(path, format="png", dpi=_DPI, pil_kwargs={"compress_level": _PNG_COMPRESS_LEVEL})
