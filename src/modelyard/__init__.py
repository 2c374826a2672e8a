"""modelyard: experiment tracking, model registry, serving and deploy, wire-compatible with MLflow.

`import modelyard as mlflow` runs MLflow tutorial code: the fluent API below keeps MLflow's names.
The base import stays light (no pandas, SQLAlchemy, FastAPI or boto3): anything heavy is imported
by the function that needs it, and flavor modules (`modelyard.sklearn`, `modelyard.pyfunc`, ...) load
on first attribute access.

To add a public function implemented elsewhere, add one line to `_LAZY_ATTRIBUTES` (name ->
"module:attribute") and the name to `__all__` (tests/unit/test_public_api.py pins the list).
"""

from __future__ import annotations

import importlib
from typing import Any

from modelyard.client import Client, MlflowClient
from modelyard.client.fluent import (
    ActiveRun,
    RunOperations,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    get_experiment,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    search_experiments,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from modelyard.entities import Experiment, Metric, Param, Run, RunTag, ViewType
from modelyard.exceptions import MlflowException, ModelyardException
from modelyard.version import __version__

#: Submodules loaded on first access (`modelyard.sklearn.log_model(...)` without importing it first).
_LAZY_SUBMODULES = frozenset(
    {"artifacts", "client", "entities", "exceptions", "models", "projects", "pyfunc", "sklearn", "tracking"}
    | {"pytorch", "system_metrics"}
    | {"data", "xgboost", "metrics"}
)

#: Public functions that live in heavier modules: name -> "module:attribute".
_LAZY_ATTRIBUTES: dict[str, str] = {
    "register_model": "modelyard.client.registry_client:register_model",
    "log_artifact": "modelyard.client.artifacts:fluent_log_artifact",
    "log_artifacts": "modelyard.client.artifacts:fluent_log_artifacts",
    "log_text": "modelyard.client.artifacts:fluent_log_text",
    "log_dict": "modelyard.client.artifacts:fluent_log_dict",
    "log_figure": "modelyard.client.artifacts:fluent_log_figure",
    "log_image": "modelyard.client.artifacts:fluent_log_image",
    "get_artifact_uri": "modelyard.client.artifacts:get_artifact_uri",
    "log_input": "modelyard.data.inputs:log_input",
    "log_inputs": "modelyard.data.inputs:log_inputs",
    "log_table": "modelyard.client.tables:log_table",
    "load_table": "modelyard.client.tables:load_table",
    "autolog": "modelyard.universal_autolog:autolog",
    "flush_async_logging": "modelyard.autologging.background:flush_async_logging",
    "flush_artifact_async_logging": "modelyard.autologging.background:flush",
    "evaluate": "modelyard.evaluation:evaluate",
    "validate_evaluation_results": "modelyard.evaluation:validate_evaluation_results",
    **{
        name: f"modelyard.system_metrics:{name}"
        for name in (
            "enable_system_metrics_logging",
            "disable_system_metrics_logging",
            "set_system_metrics_sampling_interval",
            "set_system_metrics_samples_before_logging",
            "set_system_metrics_node_id",
        )
    },
}

__all__ = [
    "autolog",
    "flush_async_logging",
    "flush_artifact_async_logging",
    "evaluate",
    "validate_evaluation_results",
    "load_table",
    "log_input",
    "log_inputs",
    "log_table",
    "enable_system_metrics_logging",
    "disable_system_metrics_logging",
    "set_system_metrics_sampling_interval",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_node_id",
    "get_artifact_uri",
    "log_image",
    "log_figure",
    "log_dict",
    "log_text",
    "log_artifacts",
    "log_artifact",
    "ActiveRun",
    "Client",
    "Experiment",
    "Metric",
    "MlflowClient",
    "MlflowException",
    "ModelyardException",
    "Param",
    "Run",
    "RunOperations",
    "RunTag",
    "ViewType",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "register_model",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"modelyard.{name}")
    target = _LAZY_ATTRIBUTES.get(name)
    if target is not None:
        module_name, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES | set(_LAZY_ATTRIBUTES))
