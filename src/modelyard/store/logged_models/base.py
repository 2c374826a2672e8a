"""The MLflow 3 logged-model store interface, with MLflow's method names.

Kept apart from `TrackingStore` (runs and experiments) because it is its own aggregate; the tracking
service builds one `SqlLoggedModelStore` on the same engine. `search_logged_models` takes order_by
as MLflow's client sends it: a list of `{"field_name", "ascending"}` objects.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.entities import LoggedModel, ModelOutput, PagedList

SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT = 100
SEARCH_LOGGED_MODELS_MAX_RESULTS_THRESHOLD = 10_000


class LoggedModelStore(abc.ABC):
    @abc.abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A PENDING model with id `m-<hex>` under `{experiment location}/models/<id>/artifacts`."""

    @abc.abstractmethod
    def get_logged_model(self, model_id: str) -> LoggedModel:
        """RESOURCE_DOES_NOT_EXIST for unknown and deleted models."""

    @abc.abstractmethod
    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel: ...

    @abc.abstractmethod
    def delete_logged_model(self, model_id: str) -> None: ...

    @abc.abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
    ) -> PagedList[LoggedModel]: ...

    @abc.abstractmethod
    def log_outputs(self, run_id: str, models: Sequence[ModelOutput]) -> None:
        """Record that `run_id` produced these logged models (`Run.outputs.model_outputs`)."""

    @abc.abstractmethod
    def get_model_outputs(self, run_ids: Sequence[str]) -> dict[str, list[ModelOutput]]: ...
