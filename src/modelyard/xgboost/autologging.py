"""XGBoost autologging: `xgboost.train` and the scikit-learn API's `fit`.

A training logs the params of the `train` call (the params dict plus `num_boost_round`,
`early_stopping_rounds`, `verbose_eval`, `maximize`, `custom_metric`), every evaluation metric at each
iteration as `<eval name>-<metric>` (one log-batch at the end), `stopped_iteration`/`best_iteration`
with early stopping, `feature_importance_<type>.json` (and `.png` with matplotlib), the training
DMatrix as the `train` input and each eval set as an `eval` input, and the model (a Booster, or the
scikit-learn model that was fit). The sklearn API's `fit` calls `train` inside: the inner call is
captured for its params and metrics, the outer one owns the run.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from modelyard.autologging.config import SESSION, AutologConfig, active_config, set_config
from modelyard.autologging.fit_log import FitLog
from modelyard.autologging.patching import patch, safely
from modelyard.autologging.runs import artifact_repository, autolog_run

INTEGRATION = "xgboost"
_EXAMPLE_ROWS = 5
#: train() arguments that are data or machinery, not hyperparameters.
_NOT_PARAMS = {"params", "dtrain", "evals", "obj", "evals_result", "xgb_model", "callbacks"}


@dataclass
class _Capture:
    """What one `train` call was given and reported."""

    params: dict[str, Any] = field(default_factory=dict)
    dtrain: Any = None
    evals: list[tuple[Any, str]] = field(default_factory=list)
    history: list[tuple[str, float, int]] = field(default_factory=list)
    booster: Any = None


_state = threading.local()
#: DMatrix -> the first rows of the data it was built from (the input example and signature source).
_dmatrix_examples: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def autolog(
    importance_types: list[str] | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Turn XGBoost autologging on (or off with `disable=True`); options as MLflow's."""
    set_config(
        INTEGRATION,
        AutologConfig(
            log_models=log_models,
            log_input_examples=log_input_examples,
            log_model_signatures=log_model_signatures,
            log_datasets=log_datasets,
            disable=disable,
            exclusive=exclusive,
            silent=silent,
            registered_model_name=registered_model_name,
            extra_tags=dict(extra_tags or {}),
            extra={"importance_types": list(importance_types or ["weight"]), "model_format": model_format},
        ),
    )
    if not disable:
        _patch_everything()


def _patch_everything() -> None:
    import xgboost
    import xgboost.sklearn
    import xgboost.training

    for module in (xgboost, xgboost.training, xgboost.sklearn):
        patch(module, "train", _train_wrapper)
    for cls in (xgboost.DMatrix, getattr(xgboost, "QuantileDMatrix", None)):
        if cls is not None and "__init__" in vars(cls):
            patch(cls, "__init__", _dmatrix_wrapper)
    for name in (
        "XGBModel",
        "XGBClassifier",
        "XGBRegressor",
        "XGBRanker",
        "XGBRFClassifier",
        "XGBRFRegressor",
    ):
        cls = getattr(xgboost.sklearn, name, None)
        if cls is not None and inspect.isfunction(vars(cls).get("fit")):
            patch(cls, "fit", _sklearn_fit_wrapper)


def _head(data: Any) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[:_EXAMPLE_ROWS]
    try:
        return data[:_EXAMPLE_ROWS]
    except Exception:
        return None


def _dmatrix_wrapper(original: Any) -> Any:
    def __init__(self: Any, data: Any = None, *args: Any, **kwargs: Any) -> None:
        original(self, data, *args, **kwargs)
        if active_config(INTEGRATION) is not None:
            try:
                _dmatrix_examples[self] = _head(data)
            except Exception:  # data we cannot slice: no example, nothing else changes
                pass

    return __init__


class _Recorder:
    """A TrainingCallback appending each iteration's evaluation results to a capture."""

    def __new__(cls, capture: _Capture) -> Any:
        import xgboost

        class Recorder(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
                for data_name, metrics in evals_log.items():
                    for metric_name, values in metrics.items():
                        value = values[-1]
                        value = value[0] if isinstance(value, tuple) else value  # (mean, std) in cv
                        capture.history.append((f"{data_name}-{metric_name}", float(value), epoch))
                return False

        return Recorder()


def _train_with_capture(original: Any, capture: _Capture, args: tuple, kwargs: dict) -> Any:
    try:
        bound = inspect.signature(original).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
    except TypeError:
        return original(*args, **kwargs)  # let xgboost report the bad call
    capture.params = {
        **dict(arguments.get("params") or {}),
        **{k: v for k, v in arguments.items() if k not in _NOT_PARAMS},
    }
    capture.dtrain = arguments.get("dtrain")
    capture.evals = list(arguments.get("evals") or [])
    arguments["callbacks"] = [*(arguments.get("callbacks") or []), _Recorder(capture)]
    capture.booster = original(**arguments)
    return capture.booster


def _train_wrapper(original: Any) -> Any:
    def train(*args: Any, **kwargs: Any) -> Any:
        config = active_config(INTEGRATION)
        if config is None:
            return original(*args, **kwargs)
        pending: _Capture | None = getattr(_state, "pending", None)
        if SESSION.active:
            if pending is None or pending.booster is not None:
                return original(*args, **kwargs)
            return _train_with_capture(original, pending, args, kwargs)  # the sklearn API's inner train
        capture = _Capture()
        with SESSION, autolog_run(INTEGRATION, config) as run_id:
            booster = _train_with_capture(original, capture, args, kwargs)
            if run_id is not None:
                example = _dmatrix_examples.get(capture.dtrain) if capture.dtrain is not None else None
                safely(INTEGRATION, config.silent, _log_training, capture, booster, example, run_id, config)
            return booster

    return train


def _sklearn_fit_wrapper(original: Any) -> Any:
    def fit(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        config = active_config(INTEGRATION)
        if config is None or SESSION.active:
            return original(self, X, *args, **kwargs)
        capture = _Capture()
        _state.pending = capture
        try:
            with SESSION, autolog_run(INTEGRATION, config) as run_id:
                result = original(self, X, *args, **kwargs)
                if run_id is not None:
                    safely(INTEGRATION, config.silent, _log_training, capture, self, _head(X), run_id, config)
                return result
        finally:
            _state.pending = None

    return fit


# ---- what a training logs ----------------------------------------------------------------------
def _dataset(dmatrix: Any, name: str) -> Any:
    from modelyard.data import from_numpy

    data = dmatrix.get_data()
    return from_numpy(data.toarray() if hasattr(data, "toarray") else data, name=name)


def _log_datasets(run_id: str, capture: _Capture) -> Any:
    from modelyard.client import Client
    from modelyard.data.inputs import dataset_input

    entries, train = [], None
    for dmatrix, name in capture.evals:
        entries.append(dataset_input(_dataset(dmatrix, name), "eval"))
    if capture.dtrain is not None:
        train = _dataset(capture.dtrain, "dataset")
        entries.append(dataset_input(train, "train"))
    if entries:
        Client().log_inputs(run_id, entries)
    return train


def _early_stopping(capture: _Capture, booster: Any) -> dict[str, float]:
    if capture.params.get("early_stopping_rounds") is None or not capture.history:
        return {}
    best = getattr(booster, "best_iteration", None)
    stopped = max(step for _, _, step in capture.history)
    out = {"stopped_iteration": float(stopped)}
    if best is not None:
        out["best_iteration"] = float(best)
        for key, value, step in list(capture.history):
            if step == best:
                capture.history.append((key, value, stopped + 1))
    return out


def _log_training(capture: _Capture, model: Any, example: Any, run_id: str, config: AutologConfig) -> None:
    silent = config.silent
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    log = FitLog()
    log.add_params(capture.params)
    log.metrics.update(_early_stopping(capture, booster))
    log.history = capture.history
    if config.log_datasets:
        safely(INTEGRATION, silent, _log_datasets, run_id, capture)
    if config.log_models:
        info = safely(INTEGRATION, silent, _log_model, model, example, config)
        log.model_id = getattr(info, "model_id", None)
    safely(INTEGRATION, silent, log.flush, run_id)
    safely(
        INTEGRATION,
        silent,
        _log_importance,
        booster,
        run_id,
        config.extra.get("importance_types", ["weight"]),
    )


def _log_model(model: Any, example: Any, config: AutologConfig) -> Any:
    from modelyard import xgboost as flavor
    from modelyard.models import model_dir

    signature = None
    if config.log_model_signatures and example is not None:
        signature = model_dir.resolve_signature(None, example, flavor._PyfuncModel(model).predict)
    return flavor.log_model(
        model,
        name="model",
        signature=signature if config.log_model_signatures else False,
        input_example=example if config.log_input_examples else None,
        model_format=config.extra.get("model_format", "ubj"),
        registered_model_name=config.registered_model_name,
    )


def _log_importance(booster: Any, run_id: str, importance_types: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="modelyard-xgb-") as folder:
        for kind in importance_types:
            scores = booster.get_score(importance_type=kind)
            with open(os.path.join(folder, f"feature_importance_{kind}.json"), "w") as out:
                out.write(json.dumps(scores))
            _plot_importance(scores, kind, os.path.join(folder, f"feature_importance_{kind}.png"))
        artifact_repository(run_id).log_artifacts(folder)


def _plot_importance(scores: dict[str, float], kind: str, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = list(scores)
    figure, axes = plt.subplots(figsize=(6.4, max(2.0, 0.25 * len(names) + 1)))
    axes.barh(range(len(names)), [scores[n] for n in names], align="center")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel(f"Importance ({kind})")
    axes.set_title("Feature Importance")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
