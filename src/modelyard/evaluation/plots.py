"""Evaluation plots as PNG files, named as MLflow names them (classifier) or as modelyard adds them.

Classifier: `confusion_matrix`, and with probabilities `roc_curve_plot`, `precision_recall_curve_plot`,
`calibration_curve_plot` (plus `lift_curve_plot` for binary problems). Regressor (modelyard's additions;
MLflow draws these only through SHAP): `residuals_plot`. Any model with `feature_importances_` or a
1-D `coef_`: `feature_importance_plot`. matplotlib is imported here only (the `evaluate` extra).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(folder: str, name: str, draw: Callable[[Any], None]) -> tuple[str, str] | None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    try:
        draw(axes)
        figure.tight_layout()
        path = os.path.join(folder, f"{name}.png")
        figure.savefig(path)
        return name, path
    except Exception:  # one plot this data cannot have never costs the others
        return None
    finally:
        plt.close(figure)


def classifier_plots(
    folder: str, y: Any, y_pred: Any, proba: Any, labels: list[Any], classes: list[Any] | None, pos_label: Any
) -> list[tuple[str, str]]:
    import numpy as np
    from sklearn import calibration, metrics

    plots = [
        _save(
            folder,
            "confusion_matrix",
            lambda ax: metrics.ConfusionMatrixDisplay.from_predictions(
                y, y_pred, labels=labels, ax=ax, colorbar=False
            ),
        )
    ]
    if proba is not None and classes is not None:
        binary = len(labels) <= 2
        targets = [pos_label if pos_label is not None else labels[-1]] if binary else list(classes)
        column = {c: i for i, c in enumerate(classes)}
        curves = [(t, np.asarray([v == t for v in y]), proba[:, column[t]]) for t in targets if t in column]

        def each(display: Any) -> Callable[[Any], None]:
            def draw(ax: Any) -> None:
                for label, truth, score in curves:
                    display.from_predictions(
                        truth, score, ax=ax, name=f"class {label}" if not binary else None
                    )

            return draw

        def calibrate(ax: Any) -> None:
            for label, truth, score in curves:
                prob_true, prob_pred = calibration.calibration_curve(truth, score, n_bins=10)
                ax.plot(prob_pred, prob_true, marker="o", label=f"class {label}")
            ax.plot([0, 1], [0, 1], linestyle="--", color="gray")
            ax.set(
                xlabel="Mean predicted probability", ylabel="Fraction of positives", title="Calibration curve"
            )
            ax.legend()

        plots += [
            _save(folder, "roc_curve_plot", each(metrics.RocCurveDisplay)),
            _save(folder, "precision_recall_curve_plot", each(metrics.PrecisionRecallDisplay)),
            _save(folder, "calibration_curve_plot", calibrate),
        ]
        if binary and curves:
            _, truth, score = curves[0]

            def lift(ax: Any) -> None:
                order = np.argsort(-score)
                hits = np.cumsum(truth[order])
                share = np.arange(1, len(truth) + 1) / len(truth)
                ax.plot(share, (hits / np.arange(1, len(truth) + 1)) / max(truth.mean(), 1e-12))
                ax.axhline(1.0, linestyle="--", color="gray")
                ax.set(xlabel="Fraction of samples", ylabel="Lift", title="Lift curve")

            plots.append(_save(folder, "lift_curve_plot", lift))
    return [p for p in plots if p is not None]


def regressor_plots(folder: str, y: Any, y_pred: Any) -> list[tuple[str, str]]:
    import numpy as np

    def residuals(ax: Any) -> None:
        predicted = np.asarray(y_pred, dtype=float).ravel()
        ax.scatter(predicted, np.asarray(y, dtype=float) - predicted, s=8, alpha=0.6)
        ax.axhline(0.0, color="gray", linestyle="--")
        ax.set(xlabel="Predicted", ylabel="Residual (target - predicted)", title="Residuals")

    found = _save(folder, "residuals_plot", residuals)
    return [found] if found else []


def feature_importance_plot(folder: str, raw: Any, names: list[str]) -> list[tuple[str, str]]:
    import numpy as np

    values = getattr(raw, "feature_importances_", None)
    if values is None:
        coef = getattr(raw, "coef_", None)
        if coef is not None and np.ndim(coef) == 2 and np.shape(coef)[0] == 1:
            coef = np.ravel(coef)  # a binary linear classifier
        values = None if coef is None or np.ndim(coef) != 1 else np.abs(coef)
    if values is None or len(values) != len(names):
        return []

    def draw(ax: Any) -> None:
        order = np.argsort(values)
        ax.barh([names[i] for i in order], np.asarray(values)[order])
        ax.set(xlabel="Importance", title="Feature importance")

    found = _save(folder, "feature_importance_plot", draw)
    return [found] if found else []
