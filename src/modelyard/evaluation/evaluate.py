"""`evaluate`: score a model on labelled data, log MLflow's default metrics and plots to a run.

Everything that can be wrong with the input is checked before a run is touched (`data.prepare`);
after that the run is the active one, or one started here and ended FINISHED (FAILED if scoring
raises). Metrics go in one log-batch (linked to the logged model when the model is one), plots and
the per-row predictions table (`eval_results_table.json`, the `log_table` format) as artifacts, the
data as a dataset input.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from modelyard.evaluation import custom
from modelyard.evaluation import data as eval_data
from modelyard.evaluation import metrics as eval_metrics
from modelyard.evaluation.model import EvalModel, probabilities, resolve
from modelyard.evaluation.validation import MetricThreshold, validate_evaluation_results
from modelyard.exceptions import ModelyardException

MODEL_TYPES = ("regressor", "classifier")
TABLE_FILE = "eval_results_table.json"


@dataclass(frozen=True)
class EvaluationArtifact:
    uri: str
    local_path: str | None = None

    @property
    def content(self) -> Any:
        if self.local_path is None:
            return None
        if self.local_path.endswith(".csv"):
            import pandas as pd

            return pd.read_csv(self.local_path)
        if self.local_path.endswith(".json"):
            with open(self.local_path) as source:
                return json.load(source)
        with open(self.local_path, "rb") as source:
            return source.read()


@dataclass
class EvaluationResult:
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, EvaluationArtifact] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def tables(self) -> dict[str, Any]:
        import pandas as pd

        table = self.artifacts.get("eval_results_table")
        if table is None or table.content is None:
            return {}
        return {"eval_results_table": pd.DataFrame(table.content["data"], columns=table.content["columns"])}


def _check_arguments(model_type: str | None, evaluators: Any) -> None:
    if model_type not in MODEL_TYPES:
        raise ModelyardException.invalid_parameter(
            f"model_type must be one of {list(MODEL_TYPES)}, got {model_type!r}"
        )
    names = [evaluators] if isinstance(evaluators, str) else list(evaluators or ["default"])
    unknown = [n for n in names if n != "default"]
    if unknown:
        raise ModelyardException.invalid_parameter(
            f"Unknown evaluators {unknown}: only 'default' is available"
        )


def evaluate(
    model: Any = None,
    data: Any = None,
    *,
    model_type: str | None = None,
    targets: Any = None,
    predictions: str | None = None,
    dataset_path: str | None = None,
    feature_names: list[str] | None = None,
    evaluators: Any = None,
    evaluator_config: dict[str, Any] | None = None,
    extra_metrics: Any = None,
    custom_artifacts: Any = None,
    env_manager: str = "local",
    model_config: dict[str, Any] | None = None,
    inference_params: dict[str, Any] | None = None,
    model_id: str | None = None,
    baseline_model: Any = None,
    validation_thresholds: dict[str, MetricThreshold] | None = None,
) -> EvaluationResult:
    """MLflow's `mlflow.models.evaluate` for regressors and classifiers; with `validation_thresholds`
    (and optionally a `baseline_model`, evaluated on the same data without logging) the result is
    validated and `ModelValidationFailedException` names each failing metric."""
    _check_arguments(model_type, evaluators)
    extras = _Extras(*custom.check(extra_metrics, custom_artifacts))
    prepared = eval_data.prepare(data, targets, predictions, feature_names)
    if model is None and prepared.predictions is None:
        raise ModelyardException.invalid_parameter("evaluate needs a model or a `predictions` column")
    config = dict(evaluator_config or {})
    resolved = resolve(model)
    baseline = None
    if baseline_model is not None:
        baseline = _score(resolve(baseline_model), prepared, model_type, config, None, extras).metrics
    result = _evaluate_and_log(resolved, prepared, model_type, config, model_id or resolved.model_id, extras)
    if validation_thresholds:
        validate_evaluation_results(
            validation_thresholds, result, EvaluationResult(baseline) if baseline is not None else None
        )
    return result


def _predict(model: EvalModel, prepared: eval_data.EvalData) -> Any:
    import numpy as np

    if model.predict is None:
        return np.asarray(prepared.predictions)
    output = model.predict(prepared.features)
    if hasattr(output, "to_numpy"):
        output = output.to_numpy()
    output = np.asarray(output)
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if len(output) != len(prepared.targets):
        raise ModelyardException.invalid_parameter(
            f"The model returned {len(output)} predictions for {len(prepared.targets)} rows"
        )
    return output


@dataclass(frozen=True)
class _Extras:
    """The caller's `extra_metrics` and `custom_artifacts` (checked: `custom.check`)."""

    metrics: list[Any]
    artifacts: list[Any]


@dataclass
class _Scored:
    metrics: dict[str, float]  # what is logged: built-in and extra metrics
    files: list[tuple[str, str]]  # (artifact name, local file): plots, custom artifacts
    predictions: Any
    row_columns: dict[str, list[Any]]  # extra metrics' per-row scores for the results table


def _score(
    model: EvalModel,
    prepared: eval_data.EvalData,
    model_type: str,
    config: dict[str, Any],
    folder: str | None,
    extras: _Extras,
) -> _Scored:
    """Metrics, plot and custom artifact files (when `folder` is given) and the predictions."""
    from modelyard.autologging.config import SESSION

    # Scoring here is not the user's own predict/metric calls: autologging must not record it.
    with SESSION:
        metrics, files, y_pred = _score_quietly(model, prepared, model_type, config, folder)
        eval_df = custom.eval_frame(y_pred, prepared.targets)
        roles = {"predictions": "predictions", "targets": "targets"}
        for role in ("targets", "predictions"):
            if isinstance(name := getattr(prepared.dataset, role, None), str):
                roles[name] = role
        inputs = custom.Inputs(eval_df, prepared.features, config, roles)
        scores = custom.compute_metrics(extras.metrics, metrics, inputs)
        if folder is not None:
            files += custom.write_artifacts(extras.artifacts, eval_df, scores, folder)
    return _Scored(scores.aggregates(), files, y_pred, scores.row_columns())


def _score_quietly(
    model: EvalModel, prepared: eval_data.EvalData, model_type: str, config: dict[str, Any], folder: str | None
) -> tuple[dict[str, float], list[tuple[str, str]], Any]:
    from modelyard.evaluation import plots

    y = prepared.targets
    y_pred = _predict(model, prepared)
    weights = config.get("sample_weights")
    files: list[tuple[str, str]] = []
    if model_type == "regressor":
        metrics = eval_metrics.regressor(y, y_pred, weights)
        if folder is not None:
            files += _plots(lambda: plots.regressor_plots(folder, y, y_pred))
    else:
        proba = probabilities(model, prepared.features)
        classes = getattr(model.raw, "classes_", None)
        classes = list(classes) if classes is not None else None
        metrics, per_class = eval_metrics.classifier(
            y, y_pred, proba, classes, config.get("pos_label"), config.get("label_list"), weights
        )
        if folder is not None:
            labels = eval_metrics.labels_of(y, y_pred, config.get("label_list"))
            files += _plots(
                lambda: plots.classifier_plots(
                    folder, y, y_pred, proba, labels, classes, config.get("pos_label")
                )
            )
            if per_class is not None:
                path = os.path.join(folder, "per_class_metrics.csv")
                per_class.to_csv(path, index=False)
                files.append(("per_class_metrics", path))
    score = getattr(model.raw, "score", None)
    if callable(score):
        try:
            metrics["score"] = float(score(prepared.features, y))
        except Exception:  # an estimator whose score needs other arguments
            pass
    if folder is not None and model.raw is not None:
        files += _plots(
            lambda: plots.feature_importance_plot(folder, model.raw, list(prepared.features.columns))
        )
    return metrics, files, y_pred


def _plots(draw: Any) -> list[tuple[str, str]]:
    try:
        return draw()
    except ImportError:  # matplotlib is in the `evaluate` extra; metrics do not need it
        return []


def _evaluate_and_log(
    model: EvalModel,
    prepared: eval_data.EvalData,
    model_type: str,
    config: dict[str, Any],
    model_id: str | None,
    extras: _Extras,
) -> EvaluationResult:
    from modelyard.client import Client, fluent
    from modelyard.entities import RunStatus

    started = fluent.active_run() is None
    run_id = fluent.start_run().info.run_id if started else fluent.active_run().info.run_id
    status = RunStatus.FAILED
    try:
        with tempfile.TemporaryDirectory(prefix="modelyard-evaluate-") as folder:
            scored = _score(model, prepared, model_type, config, folder, extras)
            table = _write_table(folder, prepared, scored.predictions, scored.row_columns)
            files = [*scored.files, (TABLE_FILE.removesuffix(".json"), table)]
            result = _log(Client(), run_id, scored.metrics, files, prepared, model_id, model)
        status = RunStatus.FINISHED
        return result
    finally:
        if started:
            fluent.end_run(status, run_id=run_id)


def _write_table(
    folder: str, prepared: eval_data.EvalData, y_pred: Any, row_columns: dict[str, list[Any]]
) -> str:
    table = prepared.features.copy()
    table["target"] = prepared.targets
    table["prediction"] = y_pred
    for name, values in row_columns.items():
        table[name] = values
    path = os.path.join(folder, TABLE_FILE)
    with open(path, "w") as out:
        out.write(table.to_json(orient="split", index=False))
    return path


def _log(
    client: Any,
    run_id: str,
    metrics: dict[str, float],
    files: list[tuple[str, str]],
    prepared: eval_data.EvalData,
    model_id: str | None,
    model: EvalModel,
) -> EvaluationResult:
    from modelyard.client.artifacts import log_artifacts, run_artifact_uri
    from modelyard.client.client import now_ms
    from modelyard.data.inputs import dataset_input
    from modelyard.entities import Metric, RunTag

    dataset = prepared.dataset
    client.log_inputs(run_id, [dataset_input(dataset)], [{"model_id": model_id}] if model_id else None)
    ts = now_ms()
    batch = [
        Metric(
            k, float(v), ts, 0, model_id=model_id, dataset_name=dataset.name, dataset_digest=dataset.digest
        )
        for k, v in metrics.items()
    ]
    entry: dict[str, Any] = {
        "name": dataset.name,
        "hash": hashlib.md5(dataset.to_json().encode(), usedforsecurity=False).hexdigest(),
    }
    if model_id:
        entry["model"] = model_id
    tags = (
        [RunTag("mlflow.datasets", json.dumps([entry], separators=(",", ":")))]
        if model.predict is not None
        else []
    )
    client.log_batch(run_id, metrics=batch, tags=tags)
    folder = os.path.dirname(files[0][1]) if files else None
    if folder is not None:
        log_artifacts(run_id, folder)
    base = run_artifact_uri(run_id).rstrip("/")
    artifacts = {name: EvaluationArtifact(f"{base}/{os.path.basename(path)}") for name, path in files}
    return EvaluationResult(dict(metrics), artifacts, run_id)
