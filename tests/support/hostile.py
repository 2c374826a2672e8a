"""The input-limit payloads of issue #15 ("Why": nesting, lone surrogates, body size, 64-bit integers,
filter and order_by limits) as data, sent the same way to any base URL: a tracking service directly
(tests/integration/test_hostile_input.py) or through the local stack's gateway (test_gateway.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from json import dumps
from typing import Any

import requests

API = "/api/2.0/mlflow"
#: The body limit the services under test are started with (MODELYARD_MAX_REQUEST_BODY_BYTES): lower
#: than the default so the oversized body stays small.
BODY_LIMIT = 200_000
LIMITED_BODIES = {"MODELYARD_MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT)}
LIMIT_ERROR = "INVALID_PARAMETER_VALUE"


@dataclass(frozen=True)
class Payload:
    """One request that must be refused with a 4xx in MLflow's error shape; the answer's message holds
    `fragments` (the limit's name, the field) and its code is `code` when given."""

    what: str
    method: str
    path: str
    body: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    fragments: tuple[str, ...] = ()
    code: str | None = None
    #: Sent with chunked transfer encoding (no Content-Length: the limit must hold while reading).
    chunked: bool = False

    def send(self, base_url: str) -> requests.Response:
        data: Any = self.body.encode() if self.body is not None else None
        if self.chunked and data is not None:
            data = _chunks(data)
        headers = {"Content-Type": "application/json"}
        return requests.request(
            self.method,
            f"{base_url}{API}/{self.path}",
            data=data,
            params=self.params,
            headers=headers,
            timeout=60,
        )


def _chunks(data: bytes) -> Iterator[bytes]:
    yield data[:1000]
    yield data[1000:]


def search(**body: Any) -> str:
    return dumps({"experiment_ids": ["0"], **body})


def payloads(run_id: str) -> list[Payload]:
    """Every payload, for an existing active run `run_id`."""
    out: list[Payload] = []
    for depth in (1_500, 100_000):
        nested = "[" * depth + "]" * depth
        out.append(
            Payload(f"JSON nested {depth} deep", "POST", "experiments/create", '{"name": ' + nested + "}")
        )
        out.append(
            Payload(
                f"JSON nested {depth} deep after NaN",
                "POST",
                "runs/log-batch",
                '{"run_id": "x", "m": NaN, "v": ' + nested + "}",
            )  # fmt: skip
        )
    out += [
        Payload("a lone surrogate in a name", "POST", "experiments/create", '{"name": "\\ud800"}'),
        Payload("a lone surrogate in a run name", "POST", "runs/create", '{"experiment_id": "0", "run_name": "a\\udc00"}'),
        Payload("a lone surrogate in a tag", "POST", "runs/set-tag", dumps({"run_id": run_id, "key": "t", "value": "\ud800x"})),
    ]  # fmt: skip
    big = '{"name": "' + "x" * BODY_LIMIT + '"}'
    out += [
        Payload("a body over the limit", "POST", "experiments/create", big,
                fragments=(str(BODY_LIMIT), "MODELYARD_MAX_REQUEST_BODY_BYTES")),
        Payload("a chunked body over the limit", "POST", "experiments/create", big,
                fragments=("MODELYARD_MAX_REQUEST_BODY_BYTES",), chunked=True),
    ]  # fmt: skip
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 2**64}
    out += [
        Payload("start_time over 64 bits", "POST", "runs/create", dumps({"experiment_id": "0", "start_time": 2**64}),
                fragments=("start_time",)),
        Payload("start_time over 64 bits as a string", "POST", "runs/create",
                dumps({"experiment_id": "0", "start_time": str(2**70)}), fragments=("start_time",)),
        Payload("end_time over 64 bits", "POST", "runs/update", dumps({"run_id": run_id, "end_time": 2**64}),
                fragments=("end_time",)),
        Payload("a timestamp over 64 bits", "POST", "runs/log-metric", dumps(metric), fragments=("timestamp",)),
        Payload("max_results over 64 bits", "GET", "metrics/get-history",
                params={"run_id": run_id, "metric_key": "m", "max_results": str(2**70)}),
        Payload("a search's max_results over 64 bits", "POST", "runs/search", search(max_results=2**70)),
    ]  # fmt: skip
    in_strings = ", ".join(f"'{i}'" for i in range(15_000))
    in_numbers = ", ".join(str(i) for i in range(6_000))
    out += [
        Payload("5,000 parentheses", "POST", "runs/search",
                search(filter="(" * 5_000 + "metrics.a > 1" + ")" * 5_000),
                fragments=("MODELYARD_SEARCH_MAX_DEPTH",), code=LIMIT_ERROR),
        Payload("2,000 ORs", "POST", "runs/search", search(filter=" OR ".join(["metrics.a > 1"] * 2_000)),
                fragments=("MODELYARD_SEARCH_MAX_TERMS",), code=LIMIT_ERROR),
        Payload("a filter over the length limit", "POST", "runs/search", search(filter=f"params.p IN ({in_strings})"),
                fragments=("MODELYARD_SEARCH_MAX_FILTER_LENGTH",), code=LIMIT_ERROR),
        Payload("6,000 IN values", "POST", "runs/search", search(filter=f"metrics.m IN ({in_numbers})"),
                fragments=("MODELYARD_SEARCH_MAX_IN_VALUES",), code=LIMIT_ERROR),
        Payload("1,000 order_by keys", "POST", "runs/search", search(order_by=[f"metrics.m{i}" for i in range(1_000)]),
                fragments=("MODELYARD_SEARCH_MAX_ORDER_BY",), code=LIMIT_ERROR),
        Payload("1,000 experiment order_by keys", "POST", "experiments/search", dumps({"order_by": ["name"] * 1_000}),
                fragments=("MODELYARD_SEARCH_MAX_ORDER_BY",)),
        Payload("500 parentheses in a model search", "GET", "registered-models/search",
                params={"filter": "(" * 500 + "name = 'a'" + ")" * 500}, fragments=("MODELYARD_SEARCH_MAX_DEPTH",)),
    ]  # fmt: skip
    return out


def assert_refused(response: requests.Response, payload: Payload) -> None:
    assert 400 <= response.status_code < 500, (payload.what, response.status_code, response.text[:500])
    answer = response.json()
    assert set(answer) >= {"error_code", "message"}, (payload.what, answer)
    if payload.code is not None:
        assert answer["error_code"] == payload.code, (payload.what, answer)
    for fragment in payload.fragments:
        assert fragment in answer["message"], (payload.what, answer["message"][:500])
