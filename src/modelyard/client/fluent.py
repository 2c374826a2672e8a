"""MLflow's fluent API: `set_experiment`, `start_run`, `log_*` against an implicit active run.

Matches MLflow's behaviour where user code can see it: each thread has its own stack of active runs
(so runs started in worker threads do not nest under the main thread's); the active experiment is
process-wide; a `log_*` call with no active run starts one; `start_run()` as a context manager ends
the run FINISHED, or FAILED when the block raises (KILLED on Ctrl-C). `log_params`, `log_metrics` and
`set_tags` send one log-batch (split only at MLflow's per-request limits).

`synchronous=False` is handled by `Client` (see `async_logging`): the call returns a `RunOperations`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.client import run_context
from modelyard.client.async_logging import RunOperations
from modelyard.client.client import Client, now_ms
from modelyard.client.tracking_uri import get_tracking_uri, set_tracking_uri
from modelyard.entities import Experiment, LifecycleStage, Metric, Param, Run, RunStatus, RunTag, ViewType
from modelyard.exceptions import ModelyardException
from modelyard.protocol.limits import SEARCH_MAX_RESULTS_DEFAULT

DEFAULT_EXPERIMENT_ID = "0"
#: MLflow's default for `search_runs(output_format="pandas")`: effectively "all of them".
SEARCH_MAX_RESULTS_PANDAS = 100_000

__all__ = [
    "ActiveRun",
    "RunOperations",
    "active_run",
    "create_experiment",
    "current_experiment_id",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]


class ActiveRun(Run):
    """The run `start_run` returned; as a context manager it ends the run on exit."""

    def __init__(self, run: Run) -> None:
        super().__init__(run.info, run.data, run.inputs)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        end_run(status, run_id=self.info.run_id)
        return False


class _State(threading.local):
    def __init__(self) -> None:
        self.run_stack: list[ActiveRun] = []
        self.last_run_id: str | None = None


_state = _State()
#: (tracking URI, experiment id) of set_experiment(): an id only means something on the server that
#: gave it, so switching the tracking URI drops the active experiment instead of reusing a stranger's id.
_active_experiment: tuple[str, str] | None = None


def _active_experiment_id() -> str | None:
    if _active_experiment is not None and _active_experiment[0] == get_tracking_uri():
        return _active_experiment[1]
    return None


def _client() -> Client:
    return Client(get_tracking_uri())


# ---- experiments ------------------------------------------------------------------------------
def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment active, creating it when only a (new) name is given."""
    global _active_experiment
    if (experiment_name is None) == (experiment_id is None):
        raise ModelyardException.invalid_parameter(
            "Exactly one of experiment_name and experiment_id is required."
        )
    client = _client()
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        found = client.get_experiment_by_name(str(experiment_name))
        if found is None:
            new_id = client.create_experiment(str(experiment_name))
            experiment = client.get_experiment(new_id)
        else:
            experiment = found
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ModelyardException.invalid_parameter(
            f"Cannot set a deleted experiment {experiment.name!r} as the active experiment. "
            "Restore it first (`modelyard experiments restore` or Client.restore_experiment)."
        )
    _active_experiment = (get_tracking_uri(), experiment.experiment_id)
    return experiment


def current_experiment_id() -> str:
    """The active experiment: set_experiment(), else MLFLOW_EXPERIMENT_NAME/_ID, else Default ("0")."""
    active = _active_experiment_id()
    if active is not None:
        return active
    by_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if by_id:
        return by_id
    by_name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if by_name:
        return set_experiment(by_name).experiment_id
    return DEFAULT_EXPERIMENT_ID


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    _client().set_experiment_tag(current_experiment_id(), key, value)


def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    client, experiment_id = _client(), current_experiment_id()
    for key, value in tags.items():
        client.set_experiment_tag(experiment_id, key, value)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """Every matching experiment (all pages) unless `max_results` caps it."""
    client = _client()
    found: list[Experiment] = []
    token: str | None = None
    while max_results is None or len(found) < max_results:
        want = (
            SEARCH_MAX_RESULTS_DEFAULT
            if max_results is None
            else min(max_results - len(found), SEARCH_MAX_RESULTS_DEFAULT)
        )
        page = client.search_experiments(view_type, want, filter_string, order_by, token)
        found.extend(page)
        token = page.token
        if not token:
            break
    return found


# ---- runs -------------------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start (or with `run_id=`, resume) a run and make it the active run of this thread.

    Without `run_id`, a top-level start_run continues the run named by MLFLOW_RUN_ID (set by
    `modelyard run` / `mlflow run` for the project's command), once: as in MLflow the variable is
    removed when used, so a later start_run makes a new run. `log_system_metrics` (default:
    MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING) logs `system/*` metrics until the run ends.
    """
    stack = _state.run_stack
    if stack and not nested:
        raise ModelyardException.invalid_parameter(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a new run, first end "
            "the current run with end_run(). To start a nested run, call start_run with nested=True."
        )
    client = _client()
    user_tags = {k: str(v) for k, v in (tags or {}).items()}
    if description is not None:
        user_tags[run_context.NOTE] = description
    if run_id is None and not nested:
        run_id = os.environ.pop("MLFLOW_RUN_ID", None) or None
    if run_id is not None:
        run = _resume(client, run_id, experiment_id, user_tags)
    else:
        parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
        if parent is not None:
            parent_run = client.get_run(parent)
            if parent_run.info.lifecycle_stage != LifecycleStage.ACTIVE:
                raise ModelyardException.invalid_parameter(f"Parent run {parent} is deleted.")
            user_tags[run_context.PARENT_RUN_ID] = parent
        if run_name:
            user_tags[run_context.RUN_NAME] = run_name
        all_tags = {**run_context.system_tags(), **user_tags}
        run = client.create_run(
            experiment_id=str(experiment_id) if experiment_id is not None else current_experiment_id(),
            tags=all_tags,
            run_name=run_name,
        )
    active = ActiveRun(run)
    stack.append(active)
    from modelyard import system_metrics

    if system_metrics.wanted(log_system_metrics):
        system_metrics.start_monitor(run.info.run_id, client)
    return active


def _resume(client: Client, run_id: str, experiment_id: str | None, tags: dict[str, str]) -> Run:
    run = client.get_run(run_id)
    expected = str(experiment_id) if experiment_id is not None else _active_experiment_id()
    if expected is not None and expected != run.info.experiment_id:
        raise ModelyardException.invalid_parameter(
            f"Run {run_id} belongs to experiment {run.info.experiment_id}, not the requested or "
            f"active experiment {expected}."
        )
    if run.info.lifecycle_stage == LifecycleStage.DELETED:
        raise ModelyardException.invalid_parameter(
            f"Cannot start run with ID {run_id} because it is in the deleted state."
        )
    client.store.update_run_info(run_id, run_status=RunStatus.RUNNING, end_time=run.info.end_time)
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return client.get_run(run_id)


def end_run(status: str = RunStatus.FINISHED, run_id: str | None = None) -> None:
    """End the active run (or, from a context manager, that run and any left nested inside it)."""
    stack = _state.run_stack
    if not stack:
        return
    RunStatus.validate(status)
    if run_id is not None and all(r.info.run_id != run_id for r in stack):
        return  # already ended explicitly inside its `with` block
    client = _client()
    from modelyard import system_metrics

    while stack:
        run = stack.pop()
        _state.last_run_id = run.info.run_id
        system_metrics.stop_monitor(run.info.run_id)
        client.set_terminated(run.info.run_id, status)
        if run_id is None or run.info.run_id == run_id:
            return


def active_run() -> ActiveRun | None:
    stack = _state.run_stack
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the run this thread ended last, fetched fresh (it may have new data)."""
    current = active_run()
    run_id = current.info.run_id if current is not None else _state.last_run_id
    return None if run_id is None else _client().get_run(run_id)


def _active_run_id() -> str:
    """The run a `log_*` call writes to, starting one as MLflow does when none is active."""
    current = active_run()
    return (current or start_run()).info.run_id


def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


# ---- logging ----------------------------------------------------------------------------------
def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """The value when written synchronously (as MLflow), else the `RunOperations` handle."""
    return _client().log_param(_active_run_id(), key, value, synchronous=synchronous)


def log_params(
    params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    batch = [Param(k, str(v)) for k, v in params.items()]
    return _client().log_batch(run_id or _active_run_id(), params=batch, synchronous=synchronous)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> RunOperations | None:
    return _client().log_metric(run_id or _active_run_id(), key, value, timestamp, step, synchronous)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
) -> RunOperations | None:
    ts = now_ms() if timestamp is None else int(timestamp)
    batch = [Metric(k, float(v), ts, int(step or 0)) for k, v in metrics.items()]
    return _client().log_batch(run_id or _active_run_id(), metrics=batch, synchronous=synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    return _client().set_tag(_active_run_id(), key, value, synchronous)


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    batch = [RunTag(k, str(v)) for k, v in tags.items()]
    return _client().log_batch(_active_run_id(), tags=batch, synchronous=synchronous)


def delete_tag(key: str) -> None:
    _client().delete_tag(_active_run_id(), key)


# ---- search -----------------------------------------------------------------------------------
def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_PANDAS,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs of the given (default: the active) experiments, every page up to `max_results`.

    `output_format="pandas"` gives MLflow's DataFrame (see `run_frames`); "list" gives `Run` objects.
    """
    if output_format not in ("pandas", "list"):
        raise ModelyardException.invalid_parameter(
            f"Unsupported output_format {output_format!r}: expected 'pandas' or 'list'."
        )
    client = _client()
    ids = _experiment_ids_for_search(client, experiment_ids, experiment_names, search_all_experiments)
    runs: list[Run] = []
    token: str | None = None
    while ids and len(runs) < max_results:
        page = client.search_runs(
            ids,
            filter_string,
            run_view_type,
            min(max_results - len(runs), SEARCH_MAX_RESULTS_DEFAULT),
            order_by,
            token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    if output_format == "list":
        return runs
    from modelyard.client.run_frames import runs_to_frame

    return runs_to_frame(runs)


def _experiment_ids_for_search(
    client: Client,
    experiment_ids: Sequence[str] | None,
    experiment_names: Sequence[str] | None,
    search_all: bool,
) -> list[str]:
    if experiment_ids and experiment_names:
        raise ModelyardException.invalid_parameter(
            "Only one of experiment_ids and experiment_names may be given."
        )
    if isinstance(experiment_ids, (str, int)):
        experiment_ids = [experiment_ids]
    if experiment_ids:
        return [str(e) for e in experiment_ids]
    if experiment_names:
        ids = []
        for name in experiment_names:
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                ids.append(experiment.experiment_id)
        return ids
    if search_all:
        return [e.experiment_id for e in search_experiments(ViewType.ALL)]
    return [current_experiment_id()]
