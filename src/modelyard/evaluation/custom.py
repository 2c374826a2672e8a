"""`evaluate`'s `extra_metrics` and `custom_artifacts`, as MLflow 3.17 defines them.

A metric is `make_metric(eval_fn=..., greater_is_better=..., name=...)`. Its `eval_fn` gets its arguments
by parameter name: `predictions` and `targets` (pandas Series), `metrics` (every metric so far, name ->
`MetricValue`), an input column of that name, an `evaluator_config` key, or another metric's value
(`evaluator_config["col_mapping"]` renames any of them); metrics that need another extra metric run
after it. A two-parameter `eval_fn(eval_df, builtin_metrics)` is MLflow 2's form: a DataFrame of
`prediction` and `target` and the metrics so far as plain numbers. It returns a number or a `MetricValue`
(per-row `scores`, `justifications`, `aggregate_results`); a number is logged under the metric's name,
an aggregate under `name/aggregate` (or `name` when they are the same); a result of the wrong shape is a
warning and nothing logged, as in MLflow.

A custom artifact function is `fn(eval_df, metrics, artifacts_dir)` returning a dict of name -> artifact:
a path to a file (`.png .jpg .jpeg .json .npy .csv .parquet .txt`), a JSON string, a DataFrame (CSV), a
numpy array (`.npy`), a matplotlib figure (PNG), anything JSON can write, or else a pickle (with a
warning). Each becomes the file `<name><ext>` of the run's artifacts.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import pickle
import shutil
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException

logger = logging.getLogger(__name__)

#: Files a custom artifact may name, by extension (MLflow's list).
ARTIFACT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".json", ".npy", ".csv", ".parquet", ".txt")


@dataclass
class MetricValue:
    """What an `eval_fn` may return besides a number (MLflow's `mlflow.metrics.MetricValue`)."""

    scores: list[Any] | None = None
    justifications: list[str | None] | None = None
    aggregate_results: dict[str, float | None] | None = None


@dataclass
class EvaluationMetric:
    """A metric for `extra_metrics`; made by `make_metric`. Calling it calls `eval_fn`."""

    eval_fn: Callable[..., Any]
    name: str
    greater_is_better: bool
    long_name: str | None = None
    version: str | None = None
    metric_details: str | None = None
    metric_metadata: dict[str, Any] | None = None
    genai_metric_args: dict[str, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.eval_fn(*args, **kwargs)


def make_metric(
    *,
    eval_fn: Callable[..., Any],
    greater_is_better: bool,
    name: str | None = None,
    long_name: str | None = None,
    version: str | None = None,
    metric_details: str | None = None,
    metric_metadata: dict[str, Any] | None = None,
    genai_metric_args: dict[str, Any] | None = None,
) -> EvaluationMetric:
    """MLflow's `make_metric`: `name` defaults to the function's name (a lambda must be given one)."""
    if name is None:
        if isinstance(eval_fn, types.FunctionType) and eval_fn.__name__ == "<lambda>":
            raise ModelyardException.invalid_parameter("`name` must be specified if `eval_fn` is a lambda function.")
        if not hasattr(eval_fn, "__name__"):
            raise ModelyardException.invalid_parameter(
                "`name` must be specified if `eval_fn` does not have a `__name__` attribute."
            )
        name = eval_fn.__name__
    return EvaluationMetric(
        eval_fn, name, greater_is_better, long_name, version, metric_details, metric_metadata, genai_metric_args
    )


def check(extra_metrics: Any, custom_artifacts: Any) -> tuple[list[Any], list[Callable[..., Any]]]:
    """The two lists, checked before any run exists: metrics made by `make_metric` (modelyard's or
    mlflow's), artifact functions callable."""
    metrics, artifacts = list(extra_metrics or []), list(custom_artifacts or [])
    for index, metric in enumerate(metrics):
        if not (callable(getattr(metric, "eval_fn", None)) and isinstance(getattr(metric, "name", None), str)):
            raise ModelyardException.invalid_parameter(
                f"extra_metrics[{index}] is a {type(metric).__name__}, not an EvaluationMetric: "
                "make one with modelyard.models.make_metric(eval_fn=..., greater_is_better=...)"
            )
    for index, function in enumerate(artifacts):
        if not callable(function):
            raise ModelyardException.invalid_parameter(
                f"custom_artifacts[{index}] is a {type(function).__name__}, not a function"
            )
    return metrics, artifacts


@dataclass
class Scores:
    """Every metric's value (built-in and extra) and the per-row columns for the results table."""

    values: dict[str, MetricValue]

    def aggregates(self) -> dict[str, float]:
        """The numbers that are logged: `name`, or `name/aggregate` for an aggregate of another name."""
        out: dict[str, float] = {}
        for name, value in self.values.items():
            for key, number in (value.aggregate_results or {}).items():
                if number is not None:
                    out[name if key == name.split("/")[0] else f"{name}/{key}"] = float(number)
        return out

    def row_columns(self) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {}
        for name, value in self.values.items():
            if value.scores:
                columns[f"{name}/score"] = list(value.scores)
            if value.justifications:
                columns[f"{name}/justification"] = list(value.justifications)
        return columns


@dataclass(frozen=True)
class Inputs:
    """What an `eval_fn`'s parameters are looked up in."""

    eval_df: Any  # `prediction` and `target` columns
    features: Any  # the input DataFrame
    config: dict[str, Any]  # evaluator_config
    column_names: dict[str, str]  # the data's own names of its targets/predictions columns -> the role


def eval_frame(predictions: Any, targets: Any) -> Any:
    """MLflow's `eval_df`: the predictions and the targets, one row each."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame({"prediction": np.asarray(predictions), "target": np.asarray(targets)})


def compute_metrics(metrics: list[Any], builtin: dict[str, float], inputs: Inputs) -> Scores:
    """Every extra metric, in an order that computes each one's metric arguments before it."""
    scores = Scores({name: MetricValue(aggregate_results={name: value}) for name, value in builtin.items()})
    pending = list(enumerate(metrics))
    ran: list[str] = []
    while pending:
        waiting, missing = [], []
        scheduled = [metric.name for _, metric in pending]
        for index, metric in pending:
            arguments, absent = _arguments(metric.eval_fn, inputs, scores, scheduled, ran)
            if absent:
                waiting.append((index, metric))
                missing.append((metric.name, absent))
                continue
            ran.append(metric.name)
            value = _evaluate(metric, index, arguments)
            if value is not None:
                scores.values[f"{metric.name}/{metric.version}" if metric.version else metric.name] = value
        if len(waiting) == len(pending):
            raise ModelyardException.invalid_parameter(_missing_message(missing, inputs))
        pending = waiting
    return scores


def _arguments(
    function: Callable[..., Any], inputs: Inputs, scores: Scores, scheduled: list[str], ran: list[str]
) -> tuple[list[Any], list[str]]:
    """The call's positional arguments by parameter name, and the names nothing provides."""
    frame = inputs.eval_df.copy()  # each call its own copy: a function may change what it gets
    features, config = inputs.features, inputs.config
    parameters = inspect.signature(function).parameters
    names = list(parameters)
    if len(names) == 2 and names[0] != "predictions" and names[1] != "targets":
        return [frame, copy.deepcopy(scores.aggregates())], []  # MLflow 2's (eval_df, builtin_metrics)
    mapping = config.get("col_mapping") or {}
    arguments: list[Any] = []
    absent: list[str] = []
    for name, parameter in parameters.items():
        column = mapping.get(name, name)
        role = inputs.column_names.get(column, column) if isinstance(column, str) else None
        if not isinstance(column, str):
            arguments.append(column)  # col_mapping gave the values themselves
        elif role == "predictions":
            arguments.append(frame["prediction"])
        elif role == "targets":
            arguments.append(frame["target"])
        elif column == "metrics":
            arguments.append(copy.deepcopy(scores.values))
        elif column in features.columns:
            arguments.append(features[column].copy())
        elif column in config:
            arguments.append(config[column])
        elif (value := _metric_named(scores, column)) is not None:
            arguments.append(value)
        elif column in ran:
            arguments.append(None)  # a metric that ran and returned nothing usable
        elif column in scheduled:
            absent.append(name)  # another extra metric that has not run yet
        elif parameter.default is not inspect.Parameter.empty:
            arguments.append(parameter.default)
        else:
            absent.append(name)
    return arguments, absent


def _metric_named(scores: Scores, name: str) -> MetricValue | None:
    return next((value for key, value in scores.values.items() if key.split("/")[0] == name), None)


def _missing_message(missing: list[tuple[str, list[str]]], inputs: Inputs) -> str:
    lines = ["Error: Metric calculation failed for the following metrics:"]
    for name, params in missing:
        lines.append(f"Metric '{name}' requires the following:")
        lines += [f"  - the '{p}' parameter needs to be specified" for p in params if p in ("targets", "predictions")]
        others = [p for p in params if p not in ("targets", "predictions")]
        if others:
            lines.append(f"  - missing columns {others} need to be defined or mapped")
    columns = [*inputs.features.columns, "targets"]
    lines.append(f"Input Columns: {columns}; Output Columns: ['predictions']")
    lines.append("Map a missing column with evaluator_config={'col_mapping': {<missing name>: <existing column>}}")
    return "\n".join(lines)


def _evaluate(metric: Any, index: int, arguments: list[Any]) -> MetricValue | None:
    """The metric's value, or None (with MLflow's warning) when it returned nothing usable."""
    header = f"Did not log metric '{metric.name}' at index {index} in the `extra_metrics` parameter because it"
    try:
        result = metric.eval_fn(*arguments)
    except Exception as exc:
        raise ModelyardException.invalid_parameter(f"Metric '{metric.name}' failed: {exc!r}") from exc
    if result is None:
        logger.warning("%s returned None.", header)
        return None
    if _is_number(result):
        return MetricValue(aggregate_results={metric.name: result})
    if not all(hasattr(result, a) for a in ("scores", "justifications", "aggregate_results")):
        logger.warning("%s did not return a MetricValue.", header)
        return None
    value = MetricValue(result.scores, result.justifications, result.aggregate_results)
    problem = _malformed(value)
    if problem:
        logger.warning("%s must return MetricValue with %s.", header, problem)
        return None
    return value


def _malformed(value: MetricValue) -> str | None:
    if value.scores is not None and (
        not isinstance(value.scores, list)
        or any(not (_is_number(s) or isinstance(s, str) or s is None) for s in value.scores)
    ):
        return "scores as a list of numbers or strings"
    if value.justifications is not None and (
        not isinstance(value.justifications, list)
        or any(not (isinstance(j, str) or j is None) for j in value.justifications)
    ):
        return "justifications as a list of strings"
    if value.aggregate_results is not None and (
        not isinstance(value.aggregate_results, dict)
        or any(not isinstance(k, str) or not (_is_number(v) or v is None) for k, v in value.aggregate_results.items())
    ):
        return "aggregate_results with str keys and numeric values"
    return None


def _is_number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def write_artifacts(
    functions: list[Callable[..., Any]], eval_df: Any, scores: Scores, folder: str
) -> list[tuple[str, str]]:
    """Call each custom artifact function and write what it returns into `folder`: (name, path) pairs."""
    import tempfile

    written: list[tuple[str, str]] = []
    for index, function in enumerate(functions):
        label = f"Custom artifact function '{getattr(function, '__name__', repr(function))}' at index {index}"
        with tempfile.TemporaryDirectory(prefix="modelyard-custom-artifacts-") as scratch:
            produced = function(eval_df.copy(), copy.deepcopy(scores.values), scratch)
            if produced is None:
                logger.warning("%s in the `custom_artifacts` parameter returned None.", label)
                continue
            if not isinstance(produced, dict) or not all(isinstance(k, str) for k in produced):
                logger.warning(
                    "%s in the `custom_artifacts` parameter did not return artifacts as a dictionary of "
                    "string artifact names with their corresponding objects.",
                    label,
                )
                continue
            for name, artifact in produced.items():
                written.append((name, _write_artifact(name, artifact, folder, label)))
    return written


def _write_artifact(name: str, artifact: Any, folder: str, label: str) -> str:
    """One artifact as a file `<name><ext>` in `folder`, its type inferred as MLflow infers it."""
    import numpy as np
    import pandas as pd

    header = f"{label} in the `custom_artifacts` parameter produced an artifact '{name}'"
    if isinstance(artifact, str) and not Path(artifact).exists():
        try:
            json.loads(artifact)
        except json.JSONDecodeError:
            raise ModelyardException.invalid_parameter(
                f"{header} with string representation '{artifact}' that is neither a valid path to a file "
                "nor a JSON string."
            ) from None
        return _new_file(folder, name, ".json", header, lambda path: Path(path).write_text(artifact))
    if isinstance(artifact, (str, Path)):
        source = Path(artifact)
        if not source.is_file():
            raise ModelyardException.invalid_parameter(f"{header} with path '{source}' is not a file.")
        if source.suffix not in ARTIFACT_EXTENSIONS:
            raise ModelyardException.invalid_parameter(
                f"{header} with path '{source}' does not match any of the supported file extensions: "
                f"{', '.join(ARTIFACT_EXTENSIONS)}."
            )
        return _new_file(folder, name, source.suffix, header, lambda path: shutil.copy2(source, path))
    if isinstance(artifact, pd.DataFrame):
        return _new_file(folder, name, ".csv", header, lambda path: artifact.to_csv(path, index=False))
    if isinstance(artifact, np.ndarray):
        return _new_file(folder, name, ".npy", header, lambda path: np.save(path, artifact, allow_pickle=False))
    if _is_figure(artifact):
        return _new_file(folder, name, ".png", header, lambda path: artifact.savefig(path))
    try:
        text = json.dumps(artifact, default=_numpy_json)
    except TypeError:
        logger.warning("%s with type '%s' that is logged as a pickle artifact.", header, type(artifact))
        return _new_file(folder, name, ".pickle", header, lambda path: Path(path).write_bytes(pickle.dumps(artifact)))
    return _new_file(folder, name, ".json", header, lambda path: Path(path).write_text(text))


def _new_file(folder: str, name: str, extension: str, header: str, write: Callable[[str], Any]) -> str:
    path = os.path.join(folder, name + extension)
    if os.path.exists(path):
        raise ModelyardException.invalid_parameter(
            f"{header} that cannot be logged because there already exists an artifact with the same name."
        )
    write(path)
    return path


def _is_figure(value: Any) -> bool:
    """A matplotlib Figure, without importing matplotlib for callers that never draw."""
    return any(c.__module__.startswith("matplotlib") and c.__name__ == "Figure" for c in type(value).__mro__)


def _numpy_json(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
