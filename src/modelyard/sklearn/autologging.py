"""scikit-learn autologging: `modelyard.sklearn.autolog()` patches `fit` (and `fit_transform` /
`fit_predict` where a class defines them as plain methods) of every estimator scikit-learn lists.

The outermost fit logs; fits it makes (a Pipeline's steps, a search's clones) do not. A fit logs:
`get_params(deep=True)` (a search: its own params and `best_*`), the `estimator_name`/`estimator_class`
tags, `training_*` metrics, the training data as a `train` input, the model (signature inferred
from the first rows; those rows as the input example when asked), `estimator.html`, and a search's
child runs; params, tags and metrics go in one log-batch. A classifier's plots, and a plain
estimator's `estimator.html`, are drawn and uploaded after `fit` returns (`autologging.background`;
`modelyard.flush_async_logging()` waits for them). See
`post_training` for metrics computed after training.
"""

from __future__ import annotations

import copy
import inspect
import os
import tempfile
from collections.abc import Callable
from typing import Any

from modelyard.autologging import background, post_training, sklearn_metrics, sklearn_plots, sklearn_tuning
from modelyard.autologging.config import SESSION, AutologConfig, active_config, set_config
from modelyard.autologging.datasets import dataset_of
from modelyard.autologging.fit_log import FitLog
from modelyard.autologging.patching import patch, patch_method, safely
from modelyard.autologging.runs import artifact_repository, at_end, autolog_run
from modelyard.client.async_logging import Tasks

INTEGRATION = "sklearn"
FIT_METHODS = ("fit", "fit_transform", "fit_predict")
_EXAMPLE_ROWS = 5


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Turn scikit-learn autologging on (or off with `disable=True`); options as MLflow's."""
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
            max_tuning_runs=max_tuning_runs,
            log_post_training_metrics=log_post_training_metrics,
            registered_model_name=registered_model_name,
            pos_label=pos_label,
            extra_tags=dict(extra_tags or {}),
            extra={"serialization_format": serialization_format},
        ),
    )
    if not disable:
        _patch_everything()


#: Fitting these alone never starts a run (as in MLflow): they are steps of a model, and metric
#: functions fit label encoders of their own.
_UNLOGGED_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
_UNLOGGED_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)


def _estimator_classes() -> list[type]:
    return [
        cls
        for cls in public_estimators()
        if not cls.__module__.startswith(_UNLOGGED_MODULES)
        and f"{cls.__module__}.{cls.__qualname__}" not in _UNLOGGED_CLASSES
    ]


#: Parts of a module path `sklearn.utils.all_estimators` skips.
_SKIPPED_MODULES = frozenset({"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"})


def public_estimators() -> list[type]:
    """The classes `sklearn.utils.all_estimators()` lists, found the same way (public modules, public
    concrete BaseEstimator subclasses) without importing the packages it skips: its package walk imports
    every package to look inside, `sklearn.externals` included, whose array-API shim imports torch when
    torch is installed (seconds and ~300 MB for a process that only fits scikit-learn models)."""
    import importlib
    import pkgutil
    import warnings

    import sklearn
    from sklearn.base import BaseEstimator

    found: dict[str, type] = {}
    pending = [(list(sklearn.__path__), "sklearn.")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated modules warn on import
        while pending:
            path, prefix = pending.pop()
            for info in pkgutil.iter_modules(path, prefix):
                parts = info.name.split(".")[1:]
                if any(part.startswith("_") or part in _SKIPPED_MODULES for part in parts):
                    continue
                module = importlib.import_module(info.name)
                if info.ispkg:
                    pending.append((list(module.__path__), f"{info.name}."))
                for name, cls in inspect.getmembers(module, inspect.isclass):
                    if (
                        not name.startswith("_")
                        and name != "BaseEstimator"
                        and issubclass(cls, BaseEstimator)
                        and not getattr(cls, "__abstractmethods__", None)
                    ):
                        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return sorted(found.values(), key=lambda cls: cls.__name__)


def _patch_everything() -> None:
    for cls in _estimator_classes():
        for name in FIT_METHODS:
            patch_method(cls, name, _fit_wrapper)
        for name in post_training.PREDICT_METHODS:
            patch_method(cls, name, _predict_wrapper)
        patch_method(cls, "score", _score_wrapper)
    import sklearn.metrics

    for name in post_training.METRIC_FUNCTIONS:
        if hasattr(sklearn.metrics, name):
            patch(sklearn.metrics, name, _metric_wrapper(name))


# ---- wrappers --------------------------------------------------------------------------------
def _fit_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = active_config(INTEGRATION)
        if config is None or SESSION.active:
            return original(self, *args, **kwargs)
        then = None
        with SESSION, autolog_run(INTEGRATION, config) as run_id:
            result = original(self, *args, **kwargs)
            if run_id is not None:
                X, y, weight = _fit_data(original, self, args, kwargs)
                then = safely(INTEGRATION, config.silent, log_fit, self, X, y, weight, run_id, config)
        if then is not None:  # once the run has ended: the plots' drawing does not slow its last requests
            then()
        return result

    return fit


def _predict_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def predict(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = active_config(INTEGRATION)
        if config is None or not config.log_post_training_metrics or SESSION.active:
            return original(self, *args, **kwargs)
        with SESSION:  # what predict calls inside (a Pipeline's steps) is not the user's prediction
            result = original(self, *args, **kwargs)
        X = args[0] if args else kwargs.get("X")
        safely(INTEGRATION, config.silent, post_training.remember_prediction, self, X, result)
        return result

    return predict


def _score_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def score(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = active_config(INTEGRATION)
        if config is None or not config.log_post_training_metrics or SESSION.active:
            return original(self, *args, **kwargs)
        with SESSION:  # the predict and metric calls inside score are score's own business
            value = original(self, *args, **kwargs)
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        safely(
            INTEGRATION, config.silent, post_training.log_score_call, self, X, y, value, config.log_datasets
        )
        return value

    return score


def _metric_wrapper(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        try:
            signature: inspect.Signature | None = inspect.signature(original)
        except (TypeError, ValueError):
            signature = None

        def metric(*args: Any, **kwargs: Any) -> Any:
            config = active_config(INTEGRATION)
            if config is None or not config.log_post_training_metrics or SESSION.active:
                return original(*args, **kwargs)
            with SESSION:  # metrics fit helpers (LabelEncoder) that must not start runs
                value = original(*args, **kwargs)
            safely(
                INTEGRATION,
                config.silent,
                post_training.log_metric_call,
                name,
                signature,
                args,
                kwargs,
                value,
                config.log_datasets,
            )
            return value

        return metric

    return make


def _fit_data(
    original: Callable[..., Any], estimator: Any, args: tuple, kwargs: dict
) -> tuple[Any, Any, Any]:
    """X, y and sample_weight as the user passed them, by position or by name."""
    try:
        bound = inspect.signature(original).bind(estimator, *args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {}
    extra = bound.get("fit_params") or bound.get("kwargs") or {}
    X = bound.get("X", args[0] if args else None)
    y = bound.get("y", args[1] if len(args) > 1 else None)
    weight = bound.get("sample_weight", extra.get("sample_weight") if isinstance(extra, dict) else None)
    return X, y, weight


# ---- what one fit logs -----------------------------------------------------------------------
def log_fit(
    estimator: Any, X: Any, y: Any, weight: Any, run_id: str, config: AutologConfig
) -> Callable[[], None] | None:
    """Logs what the fit logs before it returns; returns what to call once the run has ended (queue the
    plots for the background thread), if anything."""
    from sklearn.base import is_classifier

    silent = config.silent
    search = sklearn_tuning.is_search(estimator)
    log = FitLog()
    log.add_params(sklearn_tuning.search_params(estimator) if search else estimator.get_params(deep=True))
    log.tags.update(
        estimator_name=type(estimator).__name__,
        estimator_class=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
    )
    dataset_entry = None
    if config.log_datasets and X is not None:
        from modelyard.data.inputs import dataset_input

        log.dataset = safely(INTEGRATION, silent, dataset_of, X, y)
        if log.dataset is not None:
            dataset_entry = dataset_input(log.dataset, "train")
    # The dataset input, the artifacts and the training metrics do not depend on the model: they go
    # out (are computed) on other threads while this one logs the model, so a fit waits for the
    # slowest of them, not for their sum; the model's creation request leaves as early as it can
    # (the log-batch, sent once the model has its id, waits for the metrics).
    with Tasks() as pool:
        if dataset_entry is not None:
            pool.submit(safely, INTEGRATION, silent, _log_inputs, run_id, dataset_entry)
        repository = artifact_repository(run_id)  # here: the active run is this thread's
        # A plain estimator's estimator.html is rendered after `fit` returns (scikit-learn's renderer
        # costs ~15 ms of CPU: it cleans the class docstring again for every parameter), from a
        # shallow copy taken now; a meta-estimator's (nested estimators a refit or set_params would
        # change in place) and a search's cv_results.csv go out now.
        snapshot = None if search or _nests_estimators(estimator) else copy.copy(estimator)
        if snapshot is None:
            pool.submit(safely, INTEGRATION, silent, _log_artifacts, estimator, repository, search)

        def score() -> sklearn_plots.PlotData | None:
            """The training metrics (into `log`); a classifier's plot data (predicted once, for the
            metrics and the plots drawn after `fit` returns)."""
            plots = None
            if X is not None and y is not None and is_classifier(estimator):
                outputs = safely(INTEGRATION, silent, sklearn_metrics.classifier_outputs, estimator, X)
                if outputs is not None:
                    log.metrics.update(_training_metrics(estimator, X, y, weight, silent, outputs))
                    plots = safely(INTEGRATION, silent, sklearn_plots.plot_data, estimator, X, y, weight, outputs)
            elif X is not None:
                log.metrics.update(_training_metrics(estimator, X, y, weight, silent, None))
            if search:
                log.metrics.update(sklearn_tuning.search_metrics(estimator))
            return plots

        scored = pool.submit(score)
        flushed = []

        def flush(model_id: str | None) -> None:
            """The log-batch, with the metrics: while the model's files upload once the model has its
            id (its metrics name it), else after the model's logging."""
            scored.exception()  # wait for the metrics (`score` reports its own failures)
            log.model_id = model_id
            flushed.append(model_id)
            safely(INTEGRATION, silent, log.flush, run_id)

        if config.log_models:
            info = safely(INTEGRATION, silent, _log_model, estimator, X, config, "model", log.params, flush)
            log.model_id = getattr(info, "model_id", None)
            if search and hasattr(estimator, "best_estimator_"):
                safely(
                    INTEGRATION,
                    silent,
                    _log_model,
                    estimator.best_estimator_,
                    X,
                    config,
                    "best_estimator",
                    None,
                )
        if not flushed:
            flush(log.model_id)
        plots = scored.result() if scored.exception() is None else None
    if search and config.max_tuning_runs != 0 and hasattr(estimator, "cv_results_"):
        safely(INTEGRATION, silent, sklearn_tuning.log_children, estimator, run_id, config, dataset_entry)
    if config.log_post_training_metrics:
        post_training.remember_model(estimator, run_id, log.model_id)
    if plots is None and snapshot is None:
        return None
    return lambda: background.submit(INTEGRATION, silent, _store_later, snapshot, plots, repository)


def _training_metrics(
    estimator: Any, X: Any, y: Any, weight: Any, silent: bool, outputs: sklearn_metrics.ClassifierOutputs | None
) -> dict[str, float]:
    found = safely(INTEGRATION, silent, sklearn_metrics.training_metrics, estimator, X, y, weight, outputs)
    return found or {}


def _log_inputs(run_id: str, entry: dict[str, Any]) -> None:
    from modelyard.client import Client

    Client().log_inputs(run_id, [entry])


def _head(X: Any) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[:_EXAMPLE_ROWS]
    try:
        return X[:_EXAMPLE_ROWS]
    except Exception:
        return None


def _log_model(
    estimator: Any,
    X: Any,
    config: AutologConfig,
    name: str,
    params: dict[str, str] | None,
    on_created: Callable[[str], None] | None = None,
) -> Any:
    """`modelyard.sklearn.log_model`'s publishing, with `on_created` called (on another thread) once the
    logged model has its id, while its files are saved and uploaded."""
    from modelyard import sklearn as flavor
    from modelyard.models import model_dir, publish

    example = _head(X) if X is not None else None
    serialization_format = config.extra.get("serialization_format", flavor.SERIALIZATION_FORMAT_CLOUDPICKLE)

    def save(path: Any, model: Any) -> Any:
        # The signature is inferred here, while the logged model's creation is in flight.
        signature = None
        if config.log_model_signatures and example is not None and callable(getattr(estimator, "predict", None)):
            with SESSION:  # scoring the example is not a prediction to remember
                signature = model_dir.resolve_signature(None, example, estimator.predict)
        return flavor.save_model(
            estimator,
            path,
            serialization_format=serialization_format,
            mlflow_model=model,
            signature=signature if config.log_model_signatures else False,
            input_example=example if config.log_input_examples else None,
        )

    return publish.log_model(
        save,
        name=name,
        registered_model_name=config.registered_model_name if name == "model" else None,
        params=params,
        on_created=on_created,
        finalize_with=at_end,  # READY goes out with the run's end-run request
    )


def _nests_estimators(estimator: Any) -> bool:
    """Whether the estimator holds other estimators among its params (a Pipeline's steps, an
    ensemble's base estimator, a ColumnTransformer's transformers)."""
    from sklearn.base import BaseEstimator

    def nested(value: Any) -> bool:
        if isinstance(value, BaseEstimator):
            return True
        if isinstance(value, list | tuple):
            return any(nested(item) for item in value)
        return False

    try:
        return any(nested(value) for value in estimator.get_params(deep=False).values())
    except Exception:  # an odd get_params: treated as nesting (rendered now)
        return True


def _write_html(estimator: Any, folder: str) -> None:
    try:
        from sklearn.utils import estimator_html_repr

        with open(os.path.join(folder, "estimator.html"), "w") as out:
            out.write(estimator_html_repr(estimator))
    except Exception:  # an estimator whose repr fails still logs everything else
        pass


def _log_artifacts(estimator: Any, repository: Any, search: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="modelyard-autolog-") as folder:
        _write_html(estimator, folder)
        if search:
            with open(os.path.join(folder, "cv_results.csv"), "w") as out:
                out.write(sklearn_tuning.cv_results_csv(estimator))
        repository.log_artifacts(folder)


def _store_later(snapshot: Any, plots: sklearn_plots.PlotData | None, repository: Any) -> None:
    """On autologging's background thread, after `fit` returned: estimator.html from the fit's shallow
    copy of a plain estimator (if any) and a classifier's plots (if any), in one upload. Nothing here
    starts or logs a run (the metric functions the displays call are patched ones)."""
    with SESSION.thread(), tempfile.TemporaryDirectory(prefix="modelyard-autolog-later-") as folder:
        if snapshot is not None:
            _write_html(snapshot, folder)
        if plots is not None:
            sklearn_plots.draw(plots, folder)
        if os.listdir(folder):
            repository.log_artifacts(folder)
