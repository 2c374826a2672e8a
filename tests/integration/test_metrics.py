"""/metrics on a real gunicorn service: counts from every worker are summed, labelled by route template."""

from __future__ import annotations

import re

import requests


def _count(text: str, route: str, status: str) -> float:
    pattern = re.compile(r"^modelyard_http_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
    total = 0.0
    for labels, value in pattern.findall(text):
        if f'route="{route}"' in labels and f'status="{status}"' in labels and 'service="tracking"' in labels:
            total += float(value)
    return total


def test_metrics_sum_requests_over_all_workers(tracking_server) -> None:  # type: ignore[no-untyped-def]
    url = tracking_server(workers=2)
    # Fresh connections spread the requests over both workers.
    for _ in range(40):
        assert (
            requests.get(f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}).status_code
            == 200
        )
    for _ in range(3):
        assert requests.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": "f" * 32}).status_code == 404
    text = requests.get(f"{url}/metrics").text
    assert _count(text, "/api/2.0/mlflow/experiments/get", "200") == 40
    # Ids never become labels: the route template does.
    assert _count(text, "/api/2.0/mlflow/runs/get", "404") == 3
    assert "f" * 32 not in text
    assert "modelyard_http_request_duration_seconds_bucket" in text
