"""Whole runs in bulk from the client, modelyard's own API (`tracking/routers/bulk_runs.py`).

Import: `POST /api/2.0/modelyard/runs/import` on a modelyard server, the store function itself for a
SQL tracking URI (embedded use). Export: `GET /api/2.0/modelyard/runs/export`, read as a stream of
JSON lines. A server without them (MLflow's) answers 404, and the caller goes run by run, or page by
page, through MLflow's API instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from modelyard.exceptions import ModelyardException, RestException
from modelyard.protocol import errors
from modelyard.store.tracking.base import TrackingStore

PATH = "/api/2.0/modelyard/runs/import"
EXPORT_PATH = "/api/2.0/modelyard/runs/export"
#: Bytes read from the export stream at a time.
READ_BYTES = 1 << 20


def import_runs(store: TrackingStore, experiment_id: str, runs: list[dict[str, Any]]) -> list[str] | None:
    """The new run ids, in order; None when the server has no bulk import. `runs` are the endpoint's
    items (run_name, user_id, start_time, end_time, status, lifecycle_stage, params, tags, metrics)."""
    from modelyard.client import http
    from modelyard.client.rest_store import RestTrackingStore

    if isinstance(store, RestTrackingStore):
        try:
            answer = http.call(store.base_url, "POST", PATH, json_body={"experiment_id": experiment_id, "runs": runs},
                               config=store._config)  # fmt: skip
        except ModelyardException as exc:
            if no_such_route(exc):
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
            run_name=r["run_name"], user_id=r.get("user_id") or "", start_time=r.get("start_time"),
            end_time=r.get("end_time"), status=r.get("status") or "FINISHED",
            lifecycle_stage=r.get("lifecycle_stage") or "active",
            params=[Param(p["key"], p["value"]) for p in r.get("params", [])],
            tags=[RunTag(t["key"], t["value"]) for t in r.get("tags", [])],
            metrics=[Metric.from_dict(m) for m in r.get("metrics", [])],
        )  # fmt: skip
        for r in runs
    ]
    return run_import.import_runs(engine, experiment_id, items)


def export_lines(store: TrackingStore, experiment_id: str) -> Iterator[dict[str, Any]] | None:
    """The experiment's runs as the export endpoint's lines, parsed, read as they arrive; None when the
    tracking URI is not a server that has the endpoint. The stream must end with its `end` line: a cut
    one raises (the lines before it were already given)."""
    import requests

    from modelyard.client import http
    from modelyard.client.rest_store import RestTrackingStore

    if not isinstance(store, RestTrackingStore):
        return None
    config = store._config or http.HttpConfig.from_env()
    url = store.base_url.rstrip("/") + EXPORT_PATH
    try:
        response = http.session_for(store.base_url, config).get(
            url, params={"experiment_id": experiment_id}, stream=True, timeout=(http.CONNECT_TIMEOUT, config.read_timeout)
        )
    except requests.exceptions.RequestException as exc:  # as `http.call` words them
        raise ModelyardException(f"GET {url} failed: {exc}", errors.TEMPORARILY_UNAVAILABLE) from exc
    if response.status_code != 200:
        try:
            http.parse_response(response)
        except ModelyardException as exc:
            if no_such_route(exc):
                return None
            raise
    return _lines(response, url)


def _lines(response: Any, url: str) -> Iterator[dict[str, Any]]:
    with response:
        rest = b""
        for block in response.iter_content(READ_BYTES):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                item = json.loads(line)
                yield item
                if "end" in item:
                    return
    raise ModelyardException(f"GET {url}: the answer ended before its last line (the server stopped?).", errors.TEMPORARILY_UNAVAILABLE)


def no_such_route(exc: ModelyardException) -> bool:
    """The server has no such endpoint (MLflow's answers 404 with ENDPOINT_NOT_FOUND, or not JSON)."""
    if isinstance(exc, RestException):
        return exc.error_code == "ENDPOINT_NOT_FOUND"
    return exc.details.get("status_code") in (404, 405)  # an answer that is not JSON: no such route
