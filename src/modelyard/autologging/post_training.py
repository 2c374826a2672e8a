"""Post-training metrics: `sklearn.metrics` calls on a fitted model's predictions, logged to its run.

After an autologged fit, the estimator is remembered with its run. Its `predict`/`predict_proba`
results are remembered with the name of the variable holding X in the caller (`X_test`), and the
data is logged as an `eval` dataset input. A patched `sklearn.metrics` function that receives such a
result logs `<function>_<X name>` (`accuracy_score_X_test`; a repeat becomes `accuracy_score-2_X_test`)
and records the call in `metric_info.json`. `estimator.score(X, y)` logs `<Class>_score_<X name>`.
Only functions looked up after `autolog()` are patched: `from sklearn.metrics import f1_score` before
it keeps the original, as with MLflow.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

#: The sklearn.metrics functions that log (MLflow's list of metric APIs).
METRIC_FUNCTIONS = (
    "accuracy_score", "adjusted_mutual_info_score", "adjusted_rand_score", "average_precision_score",
    "balanced_accuracy_score", "calinski_harabasz_score", "completeness_score", "d2_absolute_error_score",
    "davies_bouldin_score", "explained_variance_score", "f1_score", "fbeta_score", "fowlkes_mallows_score",
    "hamming_loss", "hinge_loss", "homogeneity_score", "jaccard_score", "log_loss", "matthews_corrcoef",
    "max_error", "mean_absolute_error", "mean_absolute_percentage_error", "mean_gamma_deviance",
    "mean_pinball_loss", "mean_poisson_deviance", "mean_squared_error", "mean_squared_log_error",
    "mean_tweedie_deviance", "median_absolute_error", "mutual_info_score", "normalized_mutual_info_score",
    "precision_score", "r2_score", "rand_score", "recall_score", "roc_auc_score",
    "root_mean_squared_error", "root_mean_squared_log_error", "silhouette_score", "v_measure_score",
    "zero_one_loss",
)  # fmt: skip
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba")
METRIC_INFO_FILE = "metric_info.json"
_SKIPPED_MODULES = ("modelyard.", "sklearn.", "numpy.", "pandas.")


@dataclass
class _ModelRun:
    run_id: str
    model_id: str | None


@dataclass
class _RunState:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    info: dict[str, str] = field(default_factory=dict)
    eval_digests: set[str] = field(default_factory=set)


_lock = threading.Lock()
_models: dict[int, tuple[weakref.ref[Any], _ModelRun]] = {}
_predictions: dict[int, tuple[weakref.ref[Any] | Any, _ModelRun, str, Any]] = {}
_runs: dict[str, _RunState] = defaultdict(_RunState)
_MAX_PREDICTIONS = 1000


def remember_model(estimator: Any, run_id: str, model_id: str | None) -> None:
    with _lock:
        try:
            ref = weakref.ref(estimator)
        except TypeError:
            return
        _models[id(estimator)] = (ref, _ModelRun(run_id, model_id))


def model_run(estimator: Any) -> _ModelRun | None:
    entry = _models.get(id(estimator))
    if entry is None or entry[0]() is not estimator:
        return None
    return entry[1]


def caller_variable_name(value: Any) -> str | None:
    """The name the user's code gives `value`: the first frame outside modelyard/sklearn/numpy/pandas."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if not module.startswith(_SKIPPED_MODULES) and module != "modelyard":
                for name, candidate in frame.f_locals.items():
                    if candidate is value and not name.startswith("_"):
                        return name
                return None
            frame = frame.f_back
        return None
    finally:
        del frame


def remember_prediction(estimator: Any, X: Any, result: Any) -> None:
    """Called after a fitted model's predict: remember the result and log X as an eval input."""
    run = model_run(estimator)
    if run is None:
        return
    name = caller_variable_name(X) or "unknown_dataset"
    try:
        ref: Any = weakref.ref(result)
    except TypeError:
        ref = result  # not weak-referenceable: kept (bounded by _MAX_PREDICTIONS)
    with _lock:
        if len(_predictions) >= _MAX_PREDICTIONS:
            _predictions.pop(next(iter(_predictions)))
        _predictions[id(result)] = (ref, run, name, X)


def _prediction_of(value: Any) -> tuple[_ModelRun, str, Any] | None:
    entry = _predictions.get(id(value))
    if entry is None:
        return None
    ref, run, name, X = entry
    held = ref() if isinstance(ref, weakref.ref) else ref
    return (run, name, X) if held is value else None


def _describe(value: Any) -> str:
    name = caller_variable_name(value)
    if name is not None:
        return name
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _next_key(state: _RunState, base: str, dataset_name: str) -> str:
    state.counts[base] += 1
    n = state.counts[base]
    return f"{base}_{dataset_name}" if n == 1 else f"{base}-{n}_{dataset_name}"


def _log(run: _ModelRun, key: str, value: float, call: str, X: Any, log_datasets: bool) -> None:
    from modelyard.autologging.datasets import dataset_of, log_dataset
    from modelyard.client import Client
    from modelyard.client.artifacts import log_dict
    from modelyard.client.client import now_ms
    from modelyard.entities import Metric

    state = _runs[run.run_id]
    dataset = dataset_of(X) if log_datasets else None
    if dataset is not None and dataset.digest not in state.eval_digests:
        log_dataset(run.run_id, dataset, "eval")
        state.eval_digests.add(dataset.digest)
    metric = Metric(
        key,
        value,
        now_ms(),
        0,
        model_id=run.model_id,
        dataset_name=getattr(dataset, "name", None),
        dataset_digest=getattr(dataset, "digest", None),
    )
    Client().log_batch(run.run_id, metrics=[metric])
    state.info[key] = call
    log_dict(run.run_id, dict(sorted(state.info.items())), METRIC_INFO_FILE)


def log_metric_call(
    fn_name: str,
    signature: inspect.Signature | None,
    args: tuple,
    kwargs: dict,
    value: Any,
    log_datasets: bool,
) -> None:
    found = None
    for candidate in (*args, *kwargs.values()):
        found = _prediction_of(candidate)
        if found is not None:
            break
    if found is None:
        return
    run, dataset_name, X = found
    try:
        number = float(value)
    except (TypeError, ValueError):
        return  # e.g. an array of per-class scores (average=None): not a metric
    parts = []
    if signature is not None:
        try:
            bound = signature.bind(*args, **kwargs)
            parts = [f"{k}={_describe(v)}" for k, v in bound.arguments.items()]
        except TypeError:
            parts = []
    with _lock:
        key = _next_key(_runs[run.run_id], fn_name, dataset_name)
    _log(run, key, number, f"{fn_name}({', '.join(parts)})", X, log_datasets)


def log_score_call(estimator: Any, X: Any, y: Any, value: Any, log_datasets: bool) -> None:
    run = model_run(estimator)
    if run is None:
        return
    name = caller_variable_name(X) or "unknown_dataset"
    cls = type(estimator).__name__
    with _lock:
        key = _next_key(_runs[run.run_id], f"{cls}_score", name)
    call = f"{cls}.score(X={name}, y={_describe(y)})"
    _log(run, key, float(value), call, X, log_datasets)
