"""Hyperparameter searches (GridSearchCV, RandomizedSearchCV, ...): one child run per candidate.

The parent gets the search's own params (not deep: the base estimator's are on the children), the
best candidate's params as `best_<name>`, `best_cv_score`, and `cv_results.csv`. The best
`max_tuning_runs` candidates (by rank; all when None) each get a child run with the base estimator's
params overridden by the candidate's and the `mean_*`, `std_*` and `rank_*` columns of `cv_results_`
as metrics. On a modelyard server all children go in one bulk request (`/modelyard/runs/import`,
finished runs with their params, metrics, tags and dataset input, as the calls below would leave
them; 100 candidates in ~30 ms of server time); on MLflow's server, which has none, they are written
run by run (create, log-batch, log-inputs, terminate) by a few threads at once: ~400 small requests.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelyard.autologging.config import AUTOLOGGING_TAG, AutologConfig

_LOG = logging.getLogger("modelyard.autologging")
_WRITERS = 8


def is_search(estimator: Any) -> bool:
    try:
        from sklearn.model_selection._search import BaseSearchCV
    except ImportError:
        return False
    return isinstance(estimator, BaseSearchCV)


def search_params(search: Any) -> dict[str, Any]:
    params = dict(search.get_params(deep=False))
    for key, value in (getattr(search, "best_params_", None) or {}).items():
        params[f"best_{key}"] = value
    return params


def search_metrics(search: Any) -> dict[str, float]:
    score = getattr(search, "best_score_", None)
    if score is None:
        return {}
    try:
        return {"best_cv_score": float(score)}
    except (TypeError, ValueError):
        return {}


def cv_results_csv(search: Any) -> str:
    import pandas as pd

    return pd.DataFrame(search.cv_results_).to_csv(index=False)


def _rank_key(search: Any) -> str | None:
    results = search.cv_results_
    refit = getattr(search, "refit", True)
    for key in (f"rank_test_{refit}" if isinstance(refit, str) else None, "rank_test_score"):
        if key and key in results:
            return key
    return next((k for k in results if k.startswith("rank_test_")), None)


def _candidate_metrics(results: dict[str, Any], index: int) -> dict[str, float]:
    out = {}
    for key, values in results.items():
        if not key.startswith(("mean_", "std_", "rank_")):
            continue
        try:
            value = float(values[index])
        except (TypeError, ValueError):
            continue
        if not math.isnan(value):
            out[key] = value
    return out


def log_children(
    search: Any, parent_run_id: str, config: AutologConfig, dataset_entry: dict[str, Any] | None
) -> None:
    from modelyard.client import Client, run_context
    from modelyard.entities import Metric, Param, RunStatus, RunTag
    from modelyard.protocol.limits import MAX_PARAM_VALUE_LENGTH

    results = search.cv_results_
    count = len(results["params"])
    rank_key = _rank_key(search)
    order = sorted(range(count), key=lambda i: results[rank_key][i]) if rank_key else list(range(count))
    limit = config.max_tuning_runs
    chosen = order if limit is None else order[: max(int(limit), 0)]
    if len(chosen) < count:
        _LOG.info("Logging the %d best runs, %d runs will be omitted.", len(chosen), count - len(chosen))
    client = Client()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    base = search.estimator
    base_params = dict(base.get_params(deep=True)) if hasattr(base, "get_params") else {}
    tags = {
        **run_context.system_tags(),
        run_context.PARENT_RUN_ID: parent_run_id,
        AUTOLOGGING_TAG: "sklearn",
        "estimator_name": type(base).__name__,
        "estimator_class": f"{type(base).__module__}.{type(base).__qualname__}",
    }

    def params_of(index: int) -> dict[str, str]:
        params = {**base_params, **results["params"][index]}
        return {str(k): str(v)[:MAX_PARAM_VALUE_LENGTH] for k, v in params.items()}

    if _import_children(client, experiment_id, chosen, tags, params_of, results, dataset_entry):
        return

    def write(index: int) -> None:
        from modelyard.client.client import now_ms

        run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        ts = now_ms()
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in _candidate_metrics(results, index).items()],
            params=[Param(k, v) for k, v in params_of(index).items()],
            tags=[RunTag(run_context.RUN_NAME, run.info.run_name)] if run.info.run_name else [],
        )
        if dataset_entry is not None:
            client.log_inputs(run_id, [dataset_entry])
        client.set_terminated(run_id, RunStatus.FINISHED)

    with ThreadPoolExecutor(max_workers=min(_WRITERS, max(len(chosen), 1))) as pool:
        for future in [pool.submit(write, i) for i in chosen]:
            future.result()


def _import_children(
    client: Any,
    experiment_id: str,
    chosen: list[int],
    tags: dict[str, str],
    params_of: Any,
    results: dict[str, Any],
    dataset_entry: dict[str, Any] | None,
) -> bool:
    """All child runs in bulk requests; False when the server has no bulk import (MLflow's)."""
    from modelyard.client.client import now_ms
    from modelyard.client.run_context import USER
    from modelyard.client.run_import import import_runs
    from modelyard.store.tracking.run_import import MAX_RUNS

    ts = now_ms()
    items = [
        {
            "user_id": tags.get(USER, ""),
            "start_time": ts,
            "end_time": ts,
            "status": "FINISHED",
            "params": [{"key": k, "value": v} for k, v in params_of(index).items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "metrics": [
                {"key": k, "value": v, "timestamp": ts, "step": 0}
                for k, v in _candidate_metrics(results, index).items()
            ],
            "inputs": [dataset_entry] if dataset_entry is not None else [],
        }
        for index in chosen
    ]
    for start in range(0, len(items), MAX_RUNS):
        if import_runs(client.store, experiment_id, items[start : start + MAX_RUNS]) is None:
            if start:  # cannot happen: the same server answered the first batch
                raise RuntimeError("the server stopped accepting bulk run imports")
            return False
    return True
