"""The model registry store interface, with MLflow's method names.

`SqlRegistryStore` (SQLite/PostgreSQL) serves the tracking service and embedded use;
`RestRegistryStore` (in `client.rest_registry_store`) speaks the REST API to modelyard or MLflow.
Every method raises `ModelyardException` with MLflow's error code on bad input or missing names.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from modelyard.entities import ModelVersion, PagedList, RegisteredModel
from modelyard.store.search.visibility import Visibility

#: MLflow's page sizes for the two registry searches (default, largest accepted).
SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT = 100
SEARCH_REGISTERED_MODELS_MAX_RESULTS_THRESHOLD = 1000
SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT = 10_000
SEARCH_MODEL_VERSIONS_MAX_RESULTS_THRESHOLD = 200_000


class RegistryStore(abc.ABC):
    # ---- registered models -------------------------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """RESOURCE_ALREADY_EXISTS when the name is taken."""

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    @abc.abstractmethod
    def delete_registered_model(self, name: str, purge_history: bool = False) -> None:
        """Deletes the model's versions, tags and aliases too; its registry history stays (a
        `model_deleted` event ends it) unless `purge_history` (modelyard's extension)."""

    @abc.abstractmethod
    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[RegisteredModel]:
        """`visible`: only these models, by name (the caller's readable set when auth is on; a remote
        store leaves that to its server, which knows the caller)."""

    @abc.abstractmethod
    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """The newest version in each requested stage (every stage when none is given)."""

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    # ---- model versions ----------------------------------------------------------------------
    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """The next version number of `name`, assigned atomically under concurrent registration."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: str | int) -> ModelVersion: ...

    @abc.abstractmethod
    def update_model_version(
        self, name: str, version: str | int, description: str | None
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def transition_model_version_stage(
        self, name: str, version: str | int, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: str | int) -> None: ...

    @abc.abstractmethod
    def get_model_version_download_uri(self, name: str, version: str | int) -> str: ...

    @abc.abstractmethod
    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[ModelVersion]:
        """`visible`: only versions of these models, by name (see `search_registered_models`)."""

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None: ...

    # ---- aliases -----------------------------------------------------------------------------
    @abc.abstractmethod
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """INVALID_PARAMETER_VALUE (400, as MLflow) when the alias is not set."""
