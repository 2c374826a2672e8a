"""`serving.linear.compile_linear`: scikit-learn's linear models scored by their own arithmetic give
exactly (bit for bit, same dtype) what their `predict` gives, and anything else is left to `predict`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelyard.serving.linear import compile_linear

WIDTH = 6


def _data(dtype: str, rows: int = 257, seed: int = 5) -> Any:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, WIDTH)) * (20 if dtype == "int64" else 1)
    return np.asfortranarray(values.astype(dtype))


def _estimators() -> dict[str, tuple[Any, Any]]:
    """name -> (unfitted estimator, target maker)"""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Perceptron, SGDClassifier
    from sklearn.svm import LinearSVC

    binary = lambda x: (x[:, 0] + x[:, 1] > 0).astype(int)  # noqa: E731
    labels = lambda x: np.array(["low", "mid", "high"])[np.digitize(x[:, 0], [-0.5, 0.5])]  # noqa: E731
    value = lambda x: x @ np.arange(1, WIDTH + 1) + 0.25  # noqa: E731
    return {
        "logistic, binary": (LogisticRegression(), binary),
        "logistic, 3 string classes": (LogisticRegression(), labels),
        "logistic, no intercept": (LogisticRegression(fit_intercept=False), binary),
        "sgd classifier": (SGDClassifier(random_state=0), labels),
        "perceptron": (Perceptron(random_state=0), binary),
        "linear svc": (LinearSVC(), labels),
        "linear regression": (LinearRegression(), value),
        "linear regression, 2 outputs": (LinearRegression(), lambda x: np.c_[value(x), -value(x)]),
        "linear regression, no intercept": (LinearRegression(fit_intercept=False), value),
    }


@pytest.mark.parametrize("name", list(_estimators()))
@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_the_same_predictions_as_scikit_learn(name: str, dtype: str) -> None:
    estimator, target = _estimators()[name]
    train = _data("float64", 300, seed=1)
    estimator.fit(train, target(train))
    predict = compile_linear(estimator, WIDTH)
    assert predict is not None, f"{name} is not scored directly any more (a scikit-learn upgrade?)"
    for rows in (1, 2, 257):
        x = _data(dtype, rows)
        ours, theirs = predict(x), estimator.predict(x)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs), name


def test_input_that_is_not_finite_gets_scikit_learns_own_error() -> None:
    from sklearn.linear_model import LogisticRegression

    train = _data("float64", 100)
    estimator = LogisticRegression().fit(train, train[:, 0] > 0)
    predict = compile_linear(estimator, WIDTH)
    assert predict is not None
    for bad in (np.nan, np.inf):
        x = _data("float64", 2)
        x[1, 3] = bad
        with pytest.raises(ValueError, match="Input X contains") as ours:
            predict(x)
        with pytest.raises(ValueError) as theirs:
            estimator.predict(x)
        assert str(ours.value) == str(theirs.value)


def test_other_estimators_are_left_to_their_predict() -> None:
    from sklearn.linear_model import BayesianRidge, Lasso, LogisticRegression, Ridge, RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    class Shifted(LogisticRegression):
        def predict(self, X: Any) -> Any:
            return super().predict(X) + 1

    train = _data("float64", 100)
    y = (train[:, 0] > 0).astype(int)
    others = [
        Shifted().fit(train, y),  # overrides predict
        RidgeClassifier().fit(train, y),  # its own predict (multilabel)
        BayesianRidge().fit(train, train[:, 0]),  # its own predict (return_std)
        Ridge().fit(train, train[:, 0]),  # its own predict
        Lasso().fit(train, train[:, 0]),  # its own _decision_function
        DecisionTreeClassifier().fit(train, y),
        make_pipeline(StandardScaler(), LogisticRegression()).fit(train, y),
    ]
    for estimator in others:
        assert compile_linear(estimator, WIDTH) is None, type(estimator).__name__
    fitted = LogisticRegression().fit(train, y)
    assert compile_linear(fitted, WIDTH + 1) is None  # fitted on another width
    assert compile_linear(LogisticRegression(), WIDTH) is None  # not fitted


def test_sparse_coefficients_and_array_api_dispatch_are_left_to_predict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sklearn
    from sklearn.linear_model import LogisticRegression

    train = _data("float64", 100)
    sparse = LogisticRegression().fit(train, train[:, 0] > 0).sparsify()
    assert compile_linear(sparse, WIDTH) is None
    dense = LogisticRegression().fit(train, train[:, 0] > 0)
    assert compile_linear(dense, WIDTH) is not None
    # Turning dispatch on for real needs scipy's array API mode, set before scipy is imported.
    config = sklearn.get_config()
    monkeypatch.setattr(sklearn, "get_config", lambda: {**config, "array_api_dispatch": True})
    assert compile_linear(dense, WIDTH) is None
