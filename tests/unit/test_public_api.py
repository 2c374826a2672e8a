"""The public surface of `modelyard`: pinned, resolvable, MLflow-named, and light to import."""

from __future__ import annotations

import json
import subprocess
import sys

import modelyard

PINNED = [
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
    "log_artifact",
    "log_artifacts",
    "log_text",
    "log_dict",
    "log_figure",
    "log_image",
    "get_artifact_uri",
    "autolog",
    "flush_async_logging",
    "flush_artifact_async_logging",
    "evaluate",
    "validate_evaluation_results",
    "log_input",
    "log_inputs",
    "log_table",
    "load_table",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "enable_system_metrics_logging",
    "disable_system_metrics_logging",
    "set_system_metrics_sampling_interval",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_node_id",
]


def test_all_is_pinned() -> None:
    """Adding or removing a public name is a deliberate change: update this list with it."""
    assert sorted(modelyard.__all__) == sorted(PINNED)
    assert len(set(modelyard.__all__)) == len(modelyard.__all__)


def test_every_public_name_resolves() -> None:
    for name in modelyard.__all__:
        assert getattr(modelyard, name) is not None, name


def test_mlflow_aliases() -> None:
    from modelyard.client import Client, MlflowClient

    assert modelyard.MlflowClient is modelyard.Client is MlflowClient is Client
    assert modelyard.MlflowException is modelyard.ModelyardException


def test_the_fluent_functions_mlflow_tutorials_use_exist() -> None:
    for name in ("set_tracking_uri", "set_experiment", "start_run", "log_param", "log_params",
                 "log_metric", "log_metrics", "set_tag", "set_tags", "end_run", "search_runs"):  # fmt: skip
        assert callable(getattr(modelyard, name)), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        modelyard.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_submodules_load_on_first_access() -> None:
    code = "import sys, modelyard; m = modelyard.entities; print('modelyard.entities' in sys.modules, m.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "modelyard.entities"]


def test_base_import_is_light() -> None:
    """`import modelyard` in a notebook must not pay for the server stack, pandas or boto3."""
    code = (
        "import sys, json, modelyard\n"
        "import modelyard.client, modelyard.client.fluent\n"
        "heavy = ['fastapi', 'starlette', 'pandas', 'numpy', 'sqlalchemy', 'alembic', 'boto3', 'botocore', 'mlflow']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_evaluate_autolog_and_datasets_import_their_libraries_on_use() -> None:
    """matplotlib, scikit-learn and xgboost (the `evaluate`, `sklearn`, `xgboost` extras) load only when
    an evaluation, a fit or a dataset needs them."""
    code = (
        "import sys, json, modelyard\n"
        "modelyard.evaluate, modelyard.autolog, modelyard.log_input, modelyard.log_table, modelyard.data\n"
        "modelyard.flush_async_logging()\n"
        "import modelyard.xgboost, modelyard.evaluation.plots, modelyard.autologging.sklearn_metrics\n"
        "import modelyard.autologging.sklearn_plots\n"
        "heavy = ['matplotlib', 'sklearn', 'xgboost', 'pandas', 'numpy']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
