"""`log_input`: record a dataset (and the context it was used in) as an input of a run.

The body is MLflow's log-inputs request: `{"dataset": {...}, "tags": [{"key", "value"}]}` per
input, the context as the `mlflow.data.context` tag. A logged model passed as `model` becomes a
`models` entry, as in MLflow 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.data.dataset import Dataset

CONTEXT_TAG = "mlflow.data.context"


def dataset_input(
    dataset: Dataset, context: str | None = None, tags: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One entry of log-inputs' `datasets`."""
    input_tags = [{"key": str(k), "value": str(v)} for k, v in (tags or {}).items()]
    if context is not None:
        input_tags.append({"key": CONTEXT_TAG, "value": str(context)})
    return {"tags": input_tags, "dataset": dataset.to_dict()}


def _model_id(model: Any) -> str:
    return str(getattr(model, "model_id", model))


def log_input(
    dataset: Dataset | None = None,
    context: str | None = None,
    tags: Mapping[str, Any] | None = None,
    model: Any = None,
) -> None:
    """Log `dataset` (and/or a logged model: its id or any object with `model_id`) to the active run."""
    log_inputs(
        [dataset] if dataset is not None else None,
        [context] if dataset is not None else None,
        [tags] if dataset is not None else None,
        [model] if model is not None else None,
    )


def log_inputs(
    datasets: Sequence[Dataset] | None = None,
    contexts: Sequence[str | None] | None = None,
    tags_list: Sequence[Mapping[str, Any] | None] | None = None,
    models: Sequence[Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Several inputs in one request; `contexts` and `tags_list` line up with `datasets`."""
    from modelyard.client.fluent import _active_run_id, _client
    from modelyard.exceptions import ModelyardException

    datasets = list(datasets or [])
    for name, values in (("contexts", contexts), ("tags_list", tags_list)):
        if values is not None and len(values) != len(datasets):
            raise ModelyardException.invalid_parameter(f"{name} must have one entry per dataset")
    body = [
        dataset_input(d, contexts[i] if contexts else None, tags_list[i] if tags_list else None)
        for i, d in enumerate(datasets)
    ]
    model_inputs = [{"model_id": _model_id(m)} for m in models or []]
    if body or model_inputs:
        _client().log_inputs(run_id or _active_run_id(), body, model_inputs)
