"""The tracking store interface: one implementation per backend family, chosen by URI scheme.

`SqlTrackingStore` (SQLite/PostgreSQL, in `store.tracking.sql_store`) serves the tracking service and
embedded use; `RestTrackingStore` (in `client.rest_store`) speaks the REST API to modelyard or MLflow.
Every method raises `ModelyardException` with an MLflow error code on bad input or missing ids.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
from modelyard.protocol.limits import GET_METRIC_HISTORY_MAX_RESULTS, SEARCH_MAX_RESULTS_DEFAULT
from modelyard.store.search.visibility import Visibility

if TYPE_CHECKING:
    import orjson  # server-only: the base install (embedded SQLite) has no orjson


class TrackingStore(abc.ABC):
    # ---- experiments -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] = ()
    ) -> str:
        """Create an experiment and return its id; RESOURCE_ALREADY_EXISTS if the name is taken."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """None when no experiment (active or deleted) has that name."""

    @abc.abstractmethod
    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible: Visibility | None = None,
    ) -> PagedList[Experiment]:
        """`visible`: only these experiments (the caller's readable set when auth is on; a
        remote store leaves that to its server, which knows the caller)."""

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None: ...

    @abc.abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    # ---- runs --------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run: ...

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """All-or-nothing: validate everything, then write in one transaction."""

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, params=[param])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.log_batch(run_id, tags=[tag])

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int = GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """One page of a metric's history ordered by (step, timestamp)."""

    def get_metric_history_dicts(
        self,
        run_id: str,
        metric_key: str,
        max_results: int = GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[dict[str, Any]]:
        """`get_metric_history` as REST JSON objects (`Metric.to_dict()`), which is what the tracking
        service sends; a store that can build them without a Metric per point overrides this."""
        page = self.get_metric_history(run_id, metric_key, max_results, page_token)
        return PagedList([metric.to_dict() for metric in page], page.token)

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]: ...

    def search_runs_json(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[orjson.Fragment]:
        """`search_runs` as each run's REST JSON (`Run.to_dict()` serialised), which is what the
        tracking service sends and embeds as is; a store that can build the JSON without entity
        objects overrides this."""
        import orjson

        page = self.search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        return PagedList([orjson.Fragment(orjson.dumps(run.to_dict())) for run in page], page.token)

    def log_inputs(self, run_id: str, datasets: Sequence[dict], models: Sequence[dict] = ()) -> None:
        """Dataset and logged-model inputs (MLflow's log-inputs); stores that do not keep them accept
        and drop."""
        return None
