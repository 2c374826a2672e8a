"""An experiment's runs from a modelyard server in one streamed answer (`GET
/api/2.0/modelyard/runs/export`, `tracking/routers/bulk_runs.py`), for `modelyard export`. A server
without it (MLflow's) answers 404: the caller reads page by page through MLflow's API instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.store.tracking.base import TrackingStore

PATH = "/api/2.0/modelyard/runs/export"
#: Bytes read from the answer at a time.
READ_BYTES = 1 << 20


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
    url = store.base_url.rstrip("/") + PATH
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
            if http.no_such_route(exc):
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
