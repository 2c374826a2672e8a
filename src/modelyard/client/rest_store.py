"""`TrackingStore` over MLflow's REST API: works against a modelyard tracking service or `mlflow server`.

Request and answer shapes are MLflow's (`/api/2.0/mlflow/...`): GET parameters in the query string,
writes as JSON bodies, enum fields by name, int64 values as numbers. Nothing here depends on a
modelyard-only extension, so the same store talks to MLflow's own server unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard import errors
from modelyard.client import http
from modelyard.entities import (
    Experiment,
    ExperimentTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)
from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import GET_METRIC_HISTORY_MAX_RESULTS, SEARCH_MAX_RESULTS_DEFAULT
from modelyard.store.search.visibility import Visibility
from modelyard.store.tracking.base import TrackingStore

API = "/api/2.0/mlflow"


def _tags(tags: Sequence[RunTag] | Sequence[ExperimentTag]) -> list[dict[str, str]]:
    return [t.to_dict() for t in tags]


class RestTrackingStore(TrackingStore):
    def __init__(self, base_url: str, config: http.HttpConfig | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._config = config

    def __repr__(self) -> str:
        return f"RestTrackingStore({self.base_url!r})"

    def _get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        return http.call(self.base_url, "GET", f"{API}/{endpoint}", params=params, config=self._config)

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in body.items() if v is not None}
        return http.call(self.base_url, "POST", f"{API}/{endpoint}", json_body=body, config=self._config)

    # ---- experiments -------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] = ()
    ) -> str:
        answer = self._post(
            "experiments/create",
            {"name": name, "artifact_location": artifact_location or None, "tags": _tags(tags) or None},
        )
        return str(answer["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.from_dict(
            self._get("experiments/get", experiment_id=str(experiment_id))["experiment"]
        )

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            answer = self._get("experiments/get-by-name", experiment_name=name)
        except ModelyardException as exc:
            if exc.error_code == errors.RESOURCE_DOES_NOT_EXIST:
                return None
            raise
        return Experiment.from_dict(answer["experiment"])

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[Experiment]:
        answer = self._post(
            "experiments/search",
            {
                "view_type": ViewType.to_string(ViewType.parse(view_type)),
                "max_results": max_results,
                "filter": filter_string or None,
                "order_by": list(order_by) if order_by else None,
                "page_token": page_token or None,
            },
        )
        items = [Experiment.from_dict(e) for e in answer.get("experiments", [])]
        return PagedList(items, answer.get("next_page_token") or None)

    def delete_experiment(self, experiment_id: str) -> None:
        self._post("experiments/delete", {"experiment_id": str(experiment_id)})

    def restore_experiment(self, experiment_id: str) -> None:
        self._post("experiments/restore", {"experiment_id": str(experiment_id)})

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._post("experiments/update", {"experiment_id": str(experiment_id), "new_name": new_name})

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        self._post(
            "experiments/set-experiment-tag",
            {"experiment_id": str(experiment_id), "key": tag.key, "value": tag.value},
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._post("experiments/delete-experiment-tag", {"experiment_id": str(experiment_id), "key": key})

    # ---- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        answer = self._post(
            "runs/create",
            {
                "experiment_id": str(experiment_id),
                "user_id": user_id,
                "start_time": start_time,
                "tags": _tags(tags),
                "run_name": run_name,
            },
        )
        return Run.from_dict(answer["run"])

    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._get("runs/get", run_id=run_id, run_uuid=run_id)["run"])

    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        answer = self._post(
            "runs/update",
            {
                "run_id": run_id,
                "run_uuid": run_id,
                "status": run_status,
                "end_time": end_time,
                "run_name": run_name,
            },
        )
        return RunInfo.from_dict(answer["run_info"])

    def delete_run(self, run_id: str) -> None:
        self._post("runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._post("runs/restore", {"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        self._post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [_metric_body(m) for m in metrics],
                "params": [p.to_dict() for p in params],
                "tags": [t.to_dict() for t in tags],
            },
        )

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self._post("runs/log-metric", {"run_id": run_id, "run_uuid": run_id, **_metric_body(metric)})

    def log_param(self, run_id: str, param: Param) -> None:
        self._post("runs/log-parameter", {"run_id": run_id, "run_uuid": run_id, **param.to_dict()})

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self._post("runs/set-tag", {"run_id": run_id, "run_uuid": run_id, **tag.to_dict()})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._post("runs/delete-tag", {"run_id": run_id, "key": key})

    def log_inputs(self, run_id: str, datasets: Sequence[dict], models: Sequence[dict] = ()) -> None:
        body: dict[str, Any] = {"run_id": run_id, "datasets": list(datasets)}
        if models:
            body["models"] = list(models)
        self._post("runs/log-inputs", body)

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """One page; with `max_results=None`, every page concatenated (the token is then None)."""
        if max_results is not None:
            return self._metric_history_page(run_id, metric_key, max_results, page_token)
        collected: list[Metric] = []
        token = page_token
        while True:
            page = self._metric_history_page(run_id, metric_key, None, token)
            collected.extend(page)
            token = page.token
            if not token:
                return PagedList(collected, None)

    def _metric_history_page(
        self, run_id: str, metric_key: str, max_results: int | None, page_token: str | None
    ) -> PagedList[Metric]:
        answer = self._get(
            "metrics/get-history",
            run_id=run_id,
            run_uuid=run_id,
            metric_key=metric_key,
            max_results=max_results,
            page_token=page_token or None,
        )
        metrics = [Metric.from_dict(m) for m in answer.get("metrics", [])]
        return PagedList(metrics, answer.get("next_page_token") or None)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        answer = self._post(
            "runs/search",
            {
                "experiment_ids": [str(e) for e in experiment_ids],
                "filter": filter_string or None,
                "run_view_type": ViewType.to_string(ViewType.parse(run_view_type)),
                "max_results": max_results,
                "order_by": list(order_by) if order_by else None,
                "page_token": page_token or None,
            },
        )
        runs = [Run.from_dict(r) for r in answer.get("runs", [])]
        return PagedList(runs, answer.get("next_page_token") or None)


def _metric_body(metric: Metric) -> dict[str, Any]:
    body = metric.to_dict()
    body.pop("run_id", None)
    return body
