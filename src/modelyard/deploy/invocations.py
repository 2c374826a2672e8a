"""Invocation counts of an endpoint's variants, where the configured SageMaker API reports them, for
the endpoint page's live counts.

- modelyard's local endpoint service counts in memory and answers
  `GET /modelyard/endpoints/{name}/invocations` (`modelyard.endpoints.counters`): counts since it started.
- AWS reports them through CloudWatch (`AWS/SageMaker` `Invocations`, `Invocation4XXErrors`,
  `Invocation5XXErrors` per EndpointName and VariantName): the sums of the last hour, in one
  GetMetricData call.
- Any other SageMaker API (no such route, not reachable, not answering in time) reports none: None,
  which the page shows as "not reported". The read waits at most `TIMEOUT_SECONDS`, and only the
  page's fragment waits for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from modelyard.deploy import inventory

#: How long a read of the counts may take before the page says they are not reported.
TIMEOUT_SECONDS = 1.0
#: CloudWatch's window (its counts are sums over it, not since a start).
CLOUDWATCH_WINDOW_SECONDS = 3600

_http: Any = None
_http_lock = threading.Lock()


@dataclass(frozen=True)
class VariantCounts:
    name: str
    invocations: int
    errors: int
    #: ms; None when not invoked (or when the source does not say, as CloudWatch's sums do not).
    last_invocation: int | None


@dataclass(frozen=True)
class InvocationCounts:
    #: ms since which the counts run: the endpoint service's start, or the start of CloudWatch's window.
    since: int
    source: str  # "endpoint service" | "CloudWatch"
    variants: list[VariantCounts]


def read_counts(client: Any, endpoint: str) -> InvocationCounts | None:
    """The counts of `endpoint`'s variants from the SageMaker API `client` talks to; None when it
    reports none (or not now)."""
    url = str(client.meta.endpoint_url)
    if (urlsplit(url).hostname or "").endswith(".amazonaws.com"):
        return _from_cloudwatch(client, endpoint)
    return _from_endpoint_service(url, endpoint)


def _client() -> Any:
    import httpx

    global _http
    with _http_lock:
        if _http is None:
            from modelyard.runtime.no_cookies import no_cookies

            _http = httpx.Client(timeout=httpx.Timeout(TIMEOUT_SECONDS), follow_redirects=False, cookies=no_cookies())
        return _http


def _from_endpoint_service(url: str, endpoint: str) -> InvocationCounts | None:
    import httpx

    try:
        answer = _client().get(f"{url.rstrip('/')}/modelyard/endpoints/{quote(endpoint, safe='')}/invocations")
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None  # not our service, an endpoint it does not know, or a caller it does not admit
    try:
        return parse(answer.json())
    except ValueError:
        return None


def parse(body: Any) -> InvocationCounts | None:
    """The endpoint service's answer, checked (a service that answers something else reports nothing)."""
    if not isinstance(body, dict) or type(body.get("since")) is not int or not isinstance(body.get("variants"), dict):
        return None
    variants = []
    for name, count in body["variants"].items():
        if not isinstance(count, dict):
            return None
        numbers = [count.get("invocations"), count.get("errors")]
        last = count.get("last_invocation")
        if not all(type(n) is int and n >= 0 for n in numbers) or not (last is None or type(last) is int):
            return None
        variants.append(VariantCounts(str(name), numbers[0], numbers[1], last))
    return InvocationCounts(body["since"], "endpoint service", variants)


METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")


def _from_cloudwatch(client: Any, endpoint: str) -> InvocationCounts | None:
    """Last hour's sums per variant of the endpoint (its variants from DescribeEndpoint), in one
    GetMetricData call for every variant and metric."""
    from datetime import UTC, datetime

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        variants = [v.name for v in inventory.describe(client, endpoint).variants]
    except Exception:  # noqa: BLE001 - gone or unreachable: the page says so elsewhere
        return None
    start = time.time() - CLOUDWATCH_WINDOW_SECONDS
    period = CLOUDWATCH_WINDOW_SECONDS + 60  # to a minute ahead: a datapoint stamped by a clock a little ahead
    queries = [
        {
            "Id": f"m{i}_{j}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
                },
                "Period": period,
                "Stat": "Sum",
            },
        }
        for i, variant in enumerate(variants)
        for j, metric in enumerate(METRICS)
    ]
    if not queries:
        return InvocationCounts(int(start * 1000), "CloudWatch", [])
    try:
        answer = inventory.shared_client("cloudwatch").get_metric_data(
            MetricDataQueries=queries,
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(start + period, UTC),
        )
    except (BotoCoreError, ClientError):
        return None
    sums = {r["Id"]: int(sum(r.get("Values", []))) for r in answer.get("MetricDataResults", [])}
    out = []
    for i, variant in enumerate(variants):
        invocations, client_errors, server_errors = (sums.get(f"m{i}_{j}", 0) for j in range(len(METRICS)))
        out.append(VariantCounts(variant, invocations, client_errors + server_errors, None))
    return InvocationCounts(int(start * 1000), "CloudWatch", out)
