"""`LoggedModelStore` over MLflow 3's REST API (`/api/2.0/mlflow/logged-models`, `runs/outputs`)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.client import http
from modelyard.entities import LoggedModel, ModelOutput, PagedList
from modelyard.store.logged_models.base import SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT, LoggedModelStore

API = "/api/2.0/mlflow"
#: MLflow's client sends at most this many params per request (create, then /params batches).
PARAMS_PER_REQUEST = 100


def _pairs(items: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": str(v)} for k, v in (items or {}).items()]


class RestLoggedModelStore(LoggedModelStore):
    def __init__(self, base_url: str, config: http.HttpConfig | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._config = config

    def _call(self, method: str, endpoint: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        clean = {k: v for k, v in (body or {}).items() if v is not None}
        path = f"{API}/{endpoint}"
        if method == "GET":
            return http.call(self.base_url, method, path, params=clean, config=self._config)
        return http.call(self.base_url, method, path, json_body=clean, config=self._config)

    @staticmethod
    def _model_path(model_id: str) -> str:
        return f"logged-models/{urllib.parse.quote(model_id, safe='')}"

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        param_list = _pairs(params)
        body = {
            "experiment_id": str(experiment_id),
            "name": name,
            "model_type": model_type,
            "source_run_id": source_run_id,
            "params": param_list[:PARAMS_PER_REQUEST] or None,
            "tags": _pairs(tags) or None,
        }
        model = LoggedModel.from_dict(self._call("POST", "logged-models", body)["model"])
        if len(param_list) > PARAMS_PER_REQUEST:
            rest = {p["key"]: p["value"] for p in param_list[PARAMS_PER_REQUEST:]}
            self.log_logged_model_params(model.model_id, rest)
            model = self.get_logged_model(model.model_id)
        return model

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return LoggedModel.from_dict(self._call("GET", self._model_path(model_id))["model"])

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        body = {"model_id": model_id, "status": status}
        return LoggedModel.from_dict(self._call("PATCH", self._model_path(model_id), body)["model"])

    def delete_logged_model(self, model_id: str) -> None:
        self._call("DELETE", self._model_path(model_id), {"model_id": model_id})

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self._call("PATCH", f"{self._model_path(model_id)}/tags", {"tags": _pairs(tags)})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._call("DELETE", f"{self._model_path(model_id)}/tags/{urllib.parse.quote(key, safe='')}")

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        pairs = _pairs(params)
        for start in range(0, len(pairs), PARAMS_PER_REQUEST):
            body = {"model_id": model_id, "params": pairs[start : start + PARAMS_PER_REQUEST]}
            self._call("POST", f"{self._model_path(model_id)}/params", body)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
    ) -> PagedList[LoggedModel]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string or None,
            "max_results": max_results,
            "order_by": [dict(o) for o in order_by] if order_by else None,
            "page_token": page_token or None,
            "datasets": [dict(d) for d in datasets] if datasets else None,
        }
        answer = self._call("POST", "logged-models/search", body)
        models = [LoggedModel.from_dict(m) for m in answer.get("models", [])]
        return PagedList(models, answer.get("next_page_token") or None)

    def log_outputs(self, run_id: str, models: Sequence[ModelOutput]) -> None:
        self._call("POST", "runs/outputs", {"run_id": run_id, "models": [m.to_dict() for m in models]})

    def get_model_outputs(self, run_ids: Sequence[str]) -> dict[str, list[ModelOutput]]:
        """Read from each run's JSON (`outputs.model_outputs`), which is what the REST API exposes."""
        out: dict[str, list[ModelOutput]] = {}
        for run_id in run_ids:
            run = self._call("GET", "runs/get", {"run_id": run_id}).get("run", {})
            outputs = (run.get("outputs") or {}).get("model_outputs") or []
            if outputs:
                out[run_id] = [ModelOutput(o["model_id"], int(o.get("step", 0))) for o in outputs]
        return out
