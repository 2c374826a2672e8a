"""Hyperparameter searches (GridSearchCV, RandomizedSearchCV, ...): one child run per candidate.

The parent gets the search's own params (not deep: the base estimator's are on the children), the
best candidate's params as `best_<name>`, `best_cv_score`, and `cv_results.csv`. The best
`max_tuning_runs` candidates (by rank; all when None) each get a child run with the base estimator's
params overridden by the candidate's and the `mean_*`, `std_*` and `rank_*` columns of `cv_results_`
as metrics. Children are written by a few threads at once: 100 candidates are ~400 small requests.
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

    def write(index: int) -> None:
        from modelyard.client.client import now_ms

        run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        params = {**base_params, **results["params"][index]}
        ts = now_ms()
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in _candidate_metrics(results, index).items()],
            params=[Param(str(k), str(v)[:MAX_PARAM_VALUE_LENGTH]) for k, v in params.items()],
            tags=[RunTag(run_context.RUN_NAME, run.info.run_name)] if run.info.run_name else [],
        )
        if dataset_entry is not None:
            client.log_inputs(run_id, [dataset_entry])
        client.set_terminated(run_id, RunStatus.FINISHED)

    with ThreadPoolExecutor(max_workers=min(_WRITERS, max(len(chosen), 1))) as pool:
        for future in [pool.submit(write, i) for i in chosen]:
            future.result()
