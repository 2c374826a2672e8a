"""`RegistryStore` over MLflow's REST API: works against a modelyard tracking service or `mlflow server`.

Paths, methods and shapes are MLflow's (`/api/2.0/mlflow/registered-models/...`,
`/model-versions/...`): GET parameters in the query string, PATCH and DELETE with JSON bodies,
versions as strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.client import http
from modelyard.entities import ModelVersion, PagedList, RegisteredModel
from modelyard.store.registry.base import (
    SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
    RegistryStore,
)
from modelyard.store.search.visibility import Visibility

API = "/api/2.0/mlflow"


def _tags(tags: Mapping[str, str] | None) -> list[dict[str, str]] | None:
    return [{"key": k, "value": str(v)} for k, v in tags.items()] if tags else None


class RestRegistryStore(RegistryStore):
    def __init__(self, base_url: str, config: http.HttpConfig | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._config = config

    def __repr__(self) -> str:
        return f"RestRegistryStore({self.base_url!r})"

    def _call(self, method: str, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        clean = {k: v for k, v in body.items() if v is not None}
        if method == "GET":
            return http.call(self.base_url, method, f"{API}/{endpoint}", params=clean, config=self._config)
        return http.call(self.base_url, method, f"{API}/{endpoint}", json_body=clean, config=self._config)

    # ---- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        body = {"name": name, "tags": _tags(tags), "description": description}
        return RegisteredModel.from_dict(
            self._call("POST", "registered-models/create", body)["registered_model"]
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        answer = self._call("GET", "registered-models/get", {"name": name})
        return RegisteredModel.from_dict(answer["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        answer = self._call("POST", "registered-models/rename", {"name": name, "new_name": new_name})
        return RegisteredModel.from_dict(answer["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        answer = self._call("PATCH", "registered-models/update", {"name": name, "description": description})
        return RegisteredModel.from_dict(answer["registered_model"])

    def delete_registered_model(self, name: str, purge_history: bool = False) -> None:
        # `purge_history` is modelyard's extension: sent only when asked, so MLflow's server sees its own body.
        self._call("DELETE", "registered-models/delete", {"name": name, **({"purge_history": True} if purge_history else {})})

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[RegisteredModel]:
        answer = self._call(
            "GET",
            "registered-models/search",
            {
                "filter": filter_string or None,
                "max_results": max_results,
                "order_by": list(order_by) if order_by else None,
                "page_token": page_token or None,
            },
        )
        models = [RegisteredModel.from_dict(m) for m in answer.get("registered_models", [])]
        return PagedList(models, answer.get("next_page_token") or None)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        body = {"name": name, "stages": list(stages) if stages else None}
        answer = self._call("POST", "registered-models/get-latest-versions", body)
        return [ModelVersion.from_dict(mv) for mv in answer.get("model_versions", [])]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._call("POST", "registered-models/set-tag", {"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", "registered-models/delete-tag", {"name": name, "key": key})

    # ---- model versions ----------------------------------------------------------------------
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
        body = {
            "name": name,
            "source": source,
            "run_id": run_id,
            "tags": _tags(tags),
            "run_link": run_link,
            "description": description,
            "model_id": model_id,
        }
        return ModelVersion.from_dict(self._call("POST", "model-versions/create", body)["model_version"])

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        answer = self._call("GET", "model-versions/get", {"name": name, "version": str(version)})
        return ModelVersion.from_dict(answer["model_version"])

    def update_model_version(self, name: str, version: str | int, description: str | None) -> ModelVersion:
        body = {"name": name, "version": str(version), "description": description}
        return ModelVersion.from_dict(self._call("PATCH", "model-versions/update", body)["model_version"])

    def transition_model_version_stage(
        self, name: str, version: str | int, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        body = {
            "name": name,
            "version": str(version),
            "stage": stage,
            "archive_existing_versions": bool(archive_existing_versions),
        }
        answer = self._call("POST", "model-versions/transition-stage", body)
        return ModelVersion.from_dict(answer["model_version"])

    def delete_model_version(self, name: str, version: str | int) -> None:
        self._call("DELETE", "model-versions/delete", {"name": name, "version": str(version)})

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        answer = self._call("GET", "model-versions/get-download-uri", {"name": name, "version": str(version)})
        return str(answer.get("artifact_uri", ""))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSIONS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[ModelVersion]:
        answer = self._call(
            "GET",
            "model-versions/search",
            {
                "filter": filter_string or None,
                "max_results": max_results,
                "order_by": list(order_by) if order_by else None,
                "page_token": page_token or None,
            },
        )
        versions = [ModelVersion.from_dict(mv) for mv in answer.get("model_versions", [])]
        return PagedList(versions, answer.get("next_page_token") or None)

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        body = {"name": name, "version": str(version), "key": key, "value": value}
        self._call("POST", "model-versions/set-tag", body)

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        self._call("DELETE", "model-versions/delete-tag", {"name": name, "version": str(version), "key": key})

    # ---- aliases -----------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self._call("POST", "registered-models/alias", {"name": name, "alias": alias, "version": str(version)})

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", {"name": name, "alias": alias})

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        answer = self._call("GET", "registered-models/alias", {"name": name, "alias": alias})
        return ModelVersion.from_dict(answer["model_version"])
