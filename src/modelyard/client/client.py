"""`Client` (alias `MlflowClient`): MLflow's lower-level client API over any tracking store.

Method names, argument names and return types follow `mlflow.MlflowClient`, so code written for it
runs with `from modelyard import MlflowClient`. The backend is picked by the tracking URI scheme
(`modelyard.client.tracking_uri`); registry methods come from `RegistryClientMixin`, which reads
`self._registry_uri` (falls back to the tracking URI, as MLflow does).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.client import async_logging
from modelyard.client.artifacts import ArtifactsClientMixin
from modelyard.client.async_logging import RunOperations
from modelyard.client.batching import chunk_batch
from modelyard.client.registry_client import RegistryClientMixin
from modelyard.client.tracking_uri import get_tracking_store, get_tracking_uri
from modelyard.clock import now_ms as now_ms
from modelyard.credentials import credentials_from_env
from modelyard.entities import (
    Experiment,
    ExperimentTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from modelyard.protocol.limits import SEARCH_MAX_RESULTS_DEFAULT
from modelyard.store.tracking.base import TrackingStore

USER_TAG = "mlflow.user"


def current_user() -> str:
    """Who a new run belongs to (`mlflow.user`, the run's user_id), as mlflow 3.17's client records it:
    the tracking username when one is configured (the account the server knows), else the machine's user.
    Runs logged by both clients with the same credentials then show the same user."""
    username = credentials_from_env()["username"]
    if username:
        return username
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


class Client(RegistryClientMixin, ArtifactsClientMixin):
    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._tracking_uri = tracking_uri or get_tracking_uri()
        self._registry_uri = registry_uri or self._tracking_uri
        self._tracking_store: TrackingStore = get_tracking_store(self._tracking_uri)

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri

    @property
    def store(self) -> TrackingStore:
        return self._tracking_store

    # ---- experiments -------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        experiment_tags = [ExperimentTag(k, str(v)) for k, v in (tags or {}).items()]
        return self._tracking_store.create_experiment(name, artifact_location, experiment_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._tracking_store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._tracking_store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        return self._tracking_store.search_experiments(
            ViewType.parse(view_type), max_results, filter_string, order_by, page_token
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._tracking_store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self._tracking_store.restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._tracking_store.rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._tracking_store.set_experiment_tag(str(experiment_id), ExperimentTag(key, str(value)))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._tracking_store.delete_experiment_tag(str(experiment_id), key)

    # ---- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """The user id is the `mlflow.user` tag when given (the fluent API sets it), as in MLflow."""
        tags = dict(tags or {})
        user_id = str(tags.get(USER_TAG) or current_user())
        return self._tracking_store.create_run(
            experiment_id=str(experiment_id),
            user_id=user_id,
            start_time=now_ms() if start_time is None else start_time,
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
            run_name=run_name,
        )

    def get_run(self, run_id: str) -> Run:
        return self._tracking_store.get_run(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        if status is not None:
            RunStatus.validate(status)
        end_time = now_ms() if status is not None and RunStatus.is_terminated(status) else None
        self._tracking_store.update_run_info(run_id, run_status=status, end_time=end_time, run_name=name)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        status = RunStatus.validate(status or RunStatus.FINISHED)
        self._tracking_store.update_run_info(
            run_id, run_status=status, end_time=now_ms() if end_time is None else end_time
        )

    def delete_run(self, run_id: str) -> None:
        self._tracking_store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._tracking_store.restore_run(run_id)

    # ---- logging -----------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """With `synchronous=False`, returns a `RunOperations` to `wait()` on (as MLflow)."""
        metric = Metric(key, float(value), now_ms() if timestamp is None else int(timestamp), int(step or 0))
        return self._run(synchronous, self._tracking_store.log_metric, run_id, metric)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        """The value when written synchronously (as MLflow), else the `RunOperations` handle."""
        operations = self._run(synchronous, self._tracking_store.log_param, run_id, Param(key, str(value)))
        return value if operations is None else operations

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None
    ) -> RunOperations | None:
        return self._run(synchronous, self._tracking_store.set_tag, run_id, RunTag(key, str(value)))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._tracking_store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """One request when within MLflow's batch limits, else the fewest requests that fit."""
        return self._run(synchronous, self._log_batch_chunks, run_id, metrics, params, tags)

    def _log_batch_chunks(
        self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
    ) -> None:
        for chunk in chunk_batch(metrics, params, tags):
            self._tracking_store.log_batch(
                run_id, metrics=chunk.metrics, params=chunk.params, tags=chunk.tags
            )

    @staticmethod
    def _run(synchronous: bool | None, call: Any, *args: Any) -> RunOperations | None:
        if async_logging.is_synchronous(synchronous):
            call(*args)
            return None
        return async_logging.submit(call, *args)

    def log_inputs(
        self, run_id: str, datasets: Sequence[dict] | None = None, models: Sequence[dict] | None = None
    ) -> None:
        """Dataset inputs (log-inputs `datasets` entries) and logged-model inputs (`{"model_id"}`)."""
        self._tracking_store.log_inputs(run_id, list(datasets or []), list(models or []))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """The whole history, every page, ordered by (step, timestamp)."""
        history: list[Metric] = []
        token: str | None = None
        while True:
            page = self._tracking_store.get_metric_history(run_id, key, page_token=token)
            history.extend(page)
            token = page.token
            if not token:
                return history

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [experiment_ids]
        return self._tracking_store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string or "",
            ViewType.parse(run_view_type),
            max_results,
            order_by,
            page_token,
        )


MlflowClient = Client
