"""Bulk run import from the client: `POST /api/2.0/modelyard/runs/import` on a modelyard server, the
store function itself for a SQL tracking URI (embedded use). A server without it (MLflow's) answers
404, and the caller imports run by run instead."""

from __future__ import annotations

from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.store.tracking.base import TrackingStore

PATH = "/api/2.0/modelyard/runs/import"


def import_runs(store: TrackingStore, experiment_id: str, runs: list[dict[str, Any]]) -> list[str] | None:
    """The new run ids, in order; None when the server has no bulk import. `runs` are the endpoint's
    items (run_name, user_id, start_time, end_time, status, lifecycle_stage, params, tags, metrics,
    inputs)."""
    from modelyard.client import http
    from modelyard.client.rest_store import RestTrackingStore

    if isinstance(store, RestTrackingStore):
        try:
            answer = http.call(store.base_url, "POST", PATH, json_body={"experiment_id": experiment_id, "runs": runs},
                               config=store._config)  # fmt: skip
        except ModelyardException as exc:
            if http.no_such_route(exc):
                return None
            raise
        return [str(i) for i in answer["run_ids"]]
    engine = getattr(store, "engine", None)
    if engine is None:
        return None
    from modelyard.entities import Metric, Param, RunTag
    from modelyard.store.tracking import run_import

    items = [
        run_import.ImportedRun(
            run_name=r.get("run_name"), user_id=r.get("user_id") or "", start_time=r.get("start_time"),
            end_time=r.get("end_time"), status=r.get("status") or "FINISHED",
            lifecycle_stage=r.get("lifecycle_stage") or "active",
            params=[Param(p["key"], p["value"]) for p in r.get("params", [])],
            tags=[RunTag(t["key"], t["value"]) for t in r.get("tags", [])],
            metrics=[Metric.from_dict(m) for m in r.get("metrics", [])], inputs=r.get("inputs", []),
        )  # fmt: skip
        for r in runs
    ]
    return run_import.import_runs(engine, experiment_id, items)
