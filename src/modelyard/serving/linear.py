"""scikit-learn's linear models scored by their own arithmetic, without scikit-learn's per-call checks.

A 1-row `LogisticRegression.predict` costs ~0.2 ms of CPU, nearly all of it input validation (array
namespace and device look-ups, dataframe-library probes, feature checks) around a prediction that is one
matrix product; on the scoring fast path that was a third of a request's server CPU. The fast path has
already checked what that validation checks (a 2-D numpy matrix of the fitted width, in the fitted column
order, of float64 or int64: `serving/fast_path.py`), except finiteness, checked here per call.

`compile_linear` applies only where the model's `predict` is exactly scikit-learn's linear one:
`LinearClassifierMixin.predict` + `decision_function` (LogisticRegression, SGDClassifier, LinearSVC,
Perceptron, ...) or `LinearModel.predict` + `_decision_function` (LinearRegression, Lars, ...; not Ridge
or Lasso, which define their own), with dense fitted coefficients. It computes what those compute, with the same numpy operations on the
same array (`X @ coef.T + intercept`; classifiers: `> 0` for one score column, else `argmax`, then
`classes_.take`), so the answers are identical bit for bit (tests/unit/test_serving_linear.py compares
them with scikit-learn's own on random inputs). A class that overrides either method, a sparse or
missing coefficient, array-API dispatch, or an input that is not finite (scikit-learn raises its own
error) goes to the estimator's `predict` as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_BASE = "sklearn.linear_model._base"
#: Method name -> the definitions in scikit-learn's linear base module that make an estimator one of the
#: two kinds (`MultiOutputLinearModel.predict` is `LinearModel.predict` under another docstring).
CLASSIFIER = {
    "predict": {"LinearClassifierMixin.predict"},
    "decision_function": {"LinearClassifierMixin.decision_function"},
}
REGRESSOR = {
    "predict": {"LinearModel.predict", "MultiOutputLinearModel.predict"},
    "_decision_function": {"LinearModel._decision_function"},
}


def defined_by(kind: type, methods: dict[str, set[str]]) -> bool:
    """Whether each method of `kind` named in `methods` is one of the definitions listed for it."""
    for name, qualnames in methods.items():
        method = getattr(kind, name, None)
        if (
            getattr(method, "__module__", None) != _BASE
            or getattr(method, "__qualname__", None) not in qualnames
        ):
            return False
    return True


def compile_linear(estimator: Any, width: int) -> Callable[[Any], Any] | None:
    """`predict` for a fitted linear estimator scored on matrices of `width` columns, or None."""
    try:
        import sklearn
    except ImportError:  # pragma: no cover - the estimator was unpickled, so scikit-learn is there
        return None
    if sklearn.get_config().get("array_api_dispatch"):
        return None
    kind = type(estimator)
    classifier = defined_by(kind, CLASSIFIER)
    if not classifier and not defined_by(kind, REGRESSOR):
        return None
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    if type(coef) is not np.ndarray or coef.dtype.kind != "f" or coef.ndim not in (1, 2):
        return None
    if not (type(intercept) is np.ndarray or isinstance(intercept, (float, int, np.floating))):
        return None
    if getattr(estimator, "n_features_in_", None) != width or coef.shape[-1] != width:
        return None
    fallback = estimator.predict
    if not classifier:
        # LinearModel._decision_function: a 1-D coef_ is used as is, a 2-D one transposed.
        coef_r = coef if coef.ndim == 1 else coef.T

        def regress(matrix: Any) -> Any:
            if not _finite(matrix):
                return fallback(matrix)
            return matrix @ coef_r + intercept

        return regress
    classes = getattr(estimator, "classes_", None)
    if type(classes) is not np.ndarray or classes.ndim != 1:
        return None
    coef_t = coef.T if coef.ndim == 2 else coef

    def classify(matrix: Any) -> Any:
        if not _finite(matrix):
            return fallback(matrix)
        scores = matrix @ coef_t + intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = np.reshape(scores, (-1,))
        indices = (scores > 0).astype(np.int64) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return classes.take(indices, axis=0)

    return classify


def _finite(matrix: Any) -> bool:
    return matrix.dtype.kind in "iu" or bool(np.isfinite(matrix).all())
