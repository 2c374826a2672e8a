"""Autologged classifier plots (`autologging/sklearn_plots.py`) are drawn on a background thread, so they
neither read nor change matplotlib's process-wide rc settings that MLflow's `rc_context` overrides: the
same pixels whatever the user's font size, and rcParams untouched while drawing. What they are drawn from
is the fit's own copy. (That the pixels are MLflow's: tests/compat/test_autolog_mlflow.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from modelyard.autologging import sklearn_metrics, sklearn_plots

X, Y = load_breast_cancer(return_X_y=True)
X = X[:, :8]


def _data(y: Any) -> sklearn_plots.PlotData:
    estimator = LogisticRegression(max_iter=5000).fit(X, y)
    data = sklearn_plots.plot_data(estimator, X, y, None, sklearn_metrics.classifier_outputs(estimator, X))
    assert data is not None
    return data


def _draw(data: sklearn_plots.PlotData, folder: Path) -> dict[str, Any]:
    folder.mkdir()
    out = {}
    for path in sklearn_plots.draw(data, str(folder)):
        with Image.open(path) as image:
            out[Path(path).name] = np.asarray(image.convert("RGBA"))
    return out


def test_the_figures_neither_depend_on_nor_change_the_process_rc_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _data(Y)
    expected = _draw(data, tmp_path / "default")
    assert len(expected) == 3
    with matplotlib.rc_context({"font.size": 14.0, "figure.dpi": 60, "figure.autolayout": True}):
        before = dict(matplotlib.rcParams)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("rc_context changes every thread's settings")

        monkeypatch.setattr(matplotlib, "rc_context", refuse)
        drawn = _draw(data, tmp_path / "user-rc")
        assert dict(matplotlib.rcParams) == before
    for name, pixels in expected.items():
        assert np.array_equal(drawn[name], pixels), name


def test_the_plot_data_is_a_copy_of_the_users_arrays() -> None:
    y = Y.copy()
    data = _data(y)
    y[:] = 0
    assert np.array_equal(data.y, Y) and data.y is not y
