"""Registry and logged-model calls of `Client` (MlflowClient's names), kept apart from tracking calls.

The backend follows the registry URI (`Client(registry_uri=...)`, defaulting to the tracking URI, as
in MLflow): `http(s)://` -> the REST stores in `client.rest_registry_store` and
`client.rest_logged_model_store`; `sqlite:///` / `postgresql://` -> the SQL stores in this process,
on the same engine as the tracking store. `register_model` is the fluent `mlflow.register_model`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard import errors
from modelyard.entities import (
    LoggedModel,
    LoggedModelStatus,
    ModelOutput,
    ModelVersion,
    PagedList,
    RegisteredModel,
)
from modelyard.exceptions import ModelyardException
from modelyard.store.logged_models.base import SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT, LoggedModelStore
from modelyard.store.registry.base import (
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
    RegistryStore,
)

_lock = threading.Lock()
_registry_stores: dict[str, RegistryStore] = {}
_logged_model_stores: dict[str, LoggedModelStore] = {}


def get_registry_store(uri: str) -> RegistryStore:
    """The cached registry store for a registry URI."""
    with _lock:
        store = _registry_stores.get(uri)
        if store is None:
            store = _registry_stores[uri] = _make_registry_store(uri)
        return store


def get_logged_model_store(uri: str) -> LoggedModelStore:
    """The cached logged-model store for a tracking URI."""
    with _lock:
        store = _logged_model_stores.get(uri)
        if store is None:
            store = _logged_model_stores[uri] = _make_logged_model_store(uri)
        return store


def _make_registry_store(uri: str) -> RegistryStore:
    from modelyard.client.tracking_uri import check_tracking_uri, default_artifact_root

    if check_tracking_uri(uri) == "rest":
        from modelyard.client.rest_registry_store import RestRegistryStore

        return RestRegistryStore(uri)
    from modelyard.store.registry.sql_store import SqlRegistryStore

    return SqlRegistryStore(_sql_engine(uri), artifact_roots=(default_artifact_root(),))


def _make_logged_model_store(uri: str) -> LoggedModelStore:
    from modelyard.client.tracking_uri import check_tracking_uri, default_artifact_root

    if check_tracking_uri(uri) == "rest":
        from modelyard.client.rest_logged_model_store import RestLoggedModelStore

        return RestLoggedModelStore(uri)
    from modelyard.store.logged_models.sql_store import SqlLoggedModelStore

    return SqlLoggedModelStore(_sql_engine(uri), default_artifact_root())


def _sql_engine(uri: str) -> Any:
    """Share the tracking store's engine (and its pool); it has also migrated an SQLite file."""
    from modelyard.client.tracking_uri import get_tracking_store

    return get_tracking_store(uri).engine  # type: ignore[attr-defined]


def clear_registry_store_cache() -> None:
    with _lock:
        _registry_stores.clear()
        _logged_model_stores.clear()


def _status(status: Any) -> str:
    """MLflow's client passes a LoggedModelStatus enum; its name or string form both parse."""
    return LoggedModelStatus.parse(getattr(status, "name", None) or str(status))


class RegistryClientMixin:
    """Mixed into `modelyard.client.Client`, which sets `_registry_uri` and `_tracking_uri`."""

    _registry_uri: str
    _tracking_uri: str

    @property
    def registry_store(self) -> RegistryStore:
        return get_registry_store(self._registry_uri)

    @property
    def logged_model_store(self) -> LoggedModelStore:
        return get_logged_model_store(self._tracking_uri)

    # ---- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: Mapping[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        return self.registry_store.create_registered_model(name, _str_map(tags), description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.registry_store.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.registry_store.rename_registered_model(name, new_name)

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        return self.registry_store.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        self.registry_store.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        return self.registry_store.search_registered_models(filter_string, max_results, order_by, page_token)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        return self.registry_store.get_latest_versions(name, stages)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.registry_store.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.registry_store.delete_registered_model_tag(name, key)

    # ---- model versions ----------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Versions are READY on creation here, so `await_creation_for` (MLflow's) has nothing to wait for."""
        return self.registry_store.create_model_version(
            name, source, run_id, _str_map(tags), run_link, description, model_id
        )

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return self.registry_store.get_model_version(name, version)

    def update_model_version(
        self, name: str, version: str | int, description: str | None = None
    ) -> ModelVersion:
        return self.registry_store.update_model_version(name, version, description)

    def transition_model_version_stage(
        self, name: str, version: str | int, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        return self.registry_store.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def delete_model_version(self, name: str, version: str | int) -> None:
        self.registry_store.delete_model_version(name, version)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        return self.registry_store.get_model_version_download_uri(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        return self.registry_store.search_model_versions(filter_string, max_results, order_by, page_token)

    def set_model_version_tag(
        self,
        name: str,
        version: str | int | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """As MLflow: `version` or (deprecated) `stage` picks the version, the latest in that stage."""
        version = _version_or_stage(self, name, version, stage)
        if key is None:
            raise ModelyardException.invalid_parameter("set_model_version_tag needs a key.")
        self.registry_store.set_model_version_tag(name, version, key, str(value))

    def delete_model_version_tag(
        self, name: str, version: str | int | None = None, key: str | None = None, stage: str | None = None
    ) -> None:
        version = _version_or_stage(self, name, version, stage)
        if key is None:
            raise ModelyardException.invalid_parameter("delete_model_version_tag needs a key.")
        self.registry_store.delete_model_version_tag(name, version, key)

    # ---- aliases -----------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self.registry_store.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.registry_store.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.registry_store.get_model_version_by_alias(name, alias)

    # ---- logged models (MLflow 3) ------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        return self.logged_model_store.create_logged_model(
            str(experiment_id), name, source_run_id, _str_map(tags), _str_map(params), model_type
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self.logged_model_store.get_logged_model(model_id)

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        return self.logged_model_store.finalize_logged_model(model_id, _status(status))

    def delete_logged_model(self, model_id: str) -> None:
        self.logged_model_store.delete_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        self.logged_model_store.set_logged_model_tags(model_id, _str_map(tags) or {})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.logged_model_store.delete_logged_model_tag(model_id, key)

    def log_model_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        self.logged_model_store.log_logged_model_params(model_id, _str_map(params) or {})

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        if datasets:
            raise ModelyardException.invalid_parameter("Searching logged models by dataset is not supported.")
        return self.logged_model_store.search_logged_models(
            [str(e) for e in experiment_ids],
            filter_string,
            max_results or SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
            order_by,
            page_token,
        )

    def log_outputs(self, run_id: str, models: Sequence[ModelOutput]) -> None:
        self.logged_model_store.log_outputs(run_id, list(models))


def _str_map(items: Mapping[str, Any] | None) -> dict[str, str] | None:
    return None if items is None else {str(k): str(v) for k, v in items.items()}


def _version_or_stage(
    client: RegistryClientMixin, name: str, version: str | int | None, stage: str | None
) -> str | int:
    if version is not None and stage is not None:
        raise ModelyardException.invalid_parameter("version and stage cannot be set together.")
    if version is not None:
        return version
    if stage is None:
        raise ModelyardException.invalid_parameter("version or stage must be set.")
    latest = client.get_latest_versions(name, [stage])
    if not latest:
        raise ModelyardException.not_found(f"No model version of '{name}' is in stage '{stage}'.")
    return latest[0].version


def register_model(model_uri: str, name: str, tags: Mapping[str, Any] | None = None) -> ModelVersion:
    """Register `model_uri` as a new version of `name`, creating the registered model if needed.

    `runs:/<run_id>/<path>` names a run's logged model `<path>` (MLflow 3 keeps models in their own
    folder) and registers it as `models:/<model_id>`; otherwise the run's folder `<path>` itself.
    `models:/<model_id>` registers that logged model. Other URIs are registered as given.
    """
    from modelyard.client import Client

    client = Client()
    try:
        client.create_registered_model(name)
    except ModelyardException as exc:
        if exc.error_code != errors.RESOURCE_ALREADY_EXISTS:
            raise
    source, run_id, model_id = _registration_source(client, str(model_uri))
    # The server records the version on the logged model (its `mlflow.modelVersions` tag), as MLflow's does.
    return client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)


def _registration_source(client: Any, uri: str) -> tuple[str, str | None, str | None]:
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].lstrip("/").partition("/")
        path = path.strip("/")
        run = client.get_run(run_id)
        if path:
            found = client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND name = '{path}'",
                max_results=1,
            )
            if found:
                return f"models:/{found[0].model_id}", run_id, found[0].model_id
        root = str(run.info.artifact_uri).rstrip("/")
        return (f"{root}/{path}" if path else root), run_id, None
    if uri.startswith("models:/m-") and "/" not in uri[len("models:/") :].strip("/"):
        model_id = uri[len("models:/") :].strip("/")
        # The version links back to the run that logged the model, as MLflow 3 records it.
        return uri, client.get_logged_model(model_id).source_run_id, model_id
    return uri, None, None


__all__ = [
    "RegistryClientMixin",
    "clear_registry_store_cache",
    "get_logged_model_store",
    "get_registry_store",
    "register_model",
]
