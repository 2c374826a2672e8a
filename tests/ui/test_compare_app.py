"""The compare page through the ASGI app (no browser): table, only-differences, data block, bad input."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.entities import Metric, Param
from modelyard.settings import Settings
from modelyard.store.tracking.sql_store import SqlTrackingStore
from modelyard.tracking.app import create_app

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("compare")
    settings = Settings(backend_store_uri=f"sqlite:///{base / 'ui.db'}", artifacts_destination=str(base / "artifacts"))
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def _store(client: TestClient) -> SqlTrackingStore:
    return client.app.state.tracking_store  # type: ignore[attr-defined,no-any-return]


def _log(client: TestClient, experiment: str, runs: list[dict[str, Any]]) -> list[str]:
    """Runs with params (`p`) and metrics (`m`), in one new experiment; returns their ids."""
    store = _store(client)
    experiment_id = store.create_experiment(experiment)
    ids = []
    for i, spec in enumerate(runs):
        run_id = store.create_run(experiment_id, "me", 1000 + i, run_name=spec.get("name", f"run-{i}")).info.run_id
        store.log_batch(
            run_id,
            params=[Param(k, v) for k, v in spec.get("p", {}).items()],
            metrics=[Metric(k, v, 1, 0) for k, v in spec.get("m", {}).items()],
        )
        ids.append(run_id)
    return ids


def _plot(page: str) -> dict[str, Any]:
    """The page's JSON block for its plots: {"data": {"runs", "columns"}, "axes", "x", "y", ...}."""
    block = re.search(r'<script type="application/json" id="compare-data">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1))  # type: ignore[no-any-return]


def _data(page: str) -> dict[str, Any]:
    return _plot(page)["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def three(client: TestClient) -> list[str]:
    return _log(client, "three", [
        {"name": "alpha", "p": {"lr": "0.1", "opt": "adam", "seed": "1"}, "m": {"loss": 0.5, "acc": 0.8}},
        {"name": "beta", "p": {"lr": "0.01", "opt": "sgd", "seed": "1"}, "m": {"loss": 0.25, "acc": math.nan}},
        {"name": "gamma", "p": {"lr": "0.001", "seed": "1"}, "m": {"loss": 0.75}},
    ])


def test_runs_as_columns_with_params_and_metrics(client: TestClient, three: list[str]) -> None:
    response = client.get("/compare", params={"runs": ",".join(three)})
    assert response.status_code == 200
    page = response.text
    assert "Compare 3 runs" in page and 'id="compare-table"' in page and "by-columns" in page
    for name in ("alpha", "beta", "gamma"):
        assert f'<a href="/runs/{three[["alpha", "beta", "gamma"].index(name)]}">{name}</a>' in page
    rows = dict(re.findall(r'<tr data-key="([^"]+)"[^>]*>(.*?)</tr>', page, re.S))
    assert re.findall(r"<td[^>]*>([^<]*)</td>", rows["param:lr"]) == ["0.1", "0.01", "0.001"]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", rows["metric:acc"]) == ["0.8", "NaN", ""]
    assert 'class="differs"' in page and '<tr data-key="param:seed">' in page  # seed is the same everywhere
    data = _data(page)
    assert [r["name"] for r in data["runs"]] == ["alpha", "beta", "gamma"]
    columns = {c["id"]: c for c in data["columns"]}
    assert columns["param:lr"]["values"] == [0.1, 0.01, 0.001] and "categories" not in columns["param:lr"]
    # a categorical param is an ordinal axis; missing and NaN values are null
    assert columns["param:opt"]["categories"] == ["adam", "sgd"] and columns["param:opt"]["values"] == [0, 1, None]
    assert columns["metric:acc"]["values"] == [0.8, None, None]


def test_only_differences_hides_identical_keys_and_is_in_the_url(client: TestClient, three: list[str]) -> None:
    runs = ",".join(three)
    full = client.get("/compare", params={"runs": runs}).text
    toggle = html.unescape(re.search(r'id="only-diff" href="([^"]+)"', full).group(1))  # type: ignore[union-attr]
    assert "diff=1" in toggle and 'aria-checked="false"' in full
    only = client.get(toggle).text
    assert 'data-key="param:seed"' not in only and 'data-key="param:lr"' in only
    assert "1 identical hidden" in only and 'aria-checked="true"' in only
    back = html.unescape(re.search(r'id="only-diff" href="([^"]+)"', only).group(1))  # type: ignore[union-attr]
    assert "diff=1" not in back and 'data-key="param:seed"' in client.get(back).text


def test_sort_orders_runs_best_first_with_missing_last(client: TestClient, three: list[str]) -> None:
    runs = ",".join(three)
    ascending = _data(client.get("/compare", params={"runs": runs, "sort": "loss"}).text)
    assert [r["name"] for r in ascending["runs"]] == ["beta", "alpha", "gamma"]  # "loss": lowest first
    by_acc = _plot(client.get("/compare", params={"runs": runs, "sort": "acc"}).text)
    assert [r["name"] for r in by_acc["data"]["runs"]] == ["alpha", "beta", "gamma"]  # NaN and missing last
    assert by_acc["axes"][-1] == "metric:acc"  # the sort metric is the last parallel axis
    explicit = _data(client.get("/compare", params={"runs": runs, "sort": "loss", "dir": "desc"}).text)
    assert [r["name"] for r in explicit["runs"]] == ["gamma", "alpha", "beta"]


def test_many_runs_are_rows_and_the_table_shows_the_first_hundred(client: TestClient) -> None:
    ids = _log(client, "many", [{"p": {"i": str(i)}, "m": {"loss": i / 200}} for i in range(120)])
    runs = ",".join(ids)
    page = client.get("/compare", params={"runs": runs, "sort": "loss"}).text
    assert "by-rows" in page and "Compare 120 runs" in page
    assert page.count('<tr><th scope="row" class="key">') == 100
    assert "first 100 of 120 runs by loss" in page and len(_data(page)["runs"]) == 120
    everything = client.get("/compare", params={"runs": runs, "sort": "loss", "table": "all"}).text
    assert everything.count('<tr><th scope="row" class="key">') == 120


def test_user_strings_are_escaped(client: TestClient) -> None:
    ids = _log(client, HOSTILE, [
        {"name": HOSTILE, "p": {"note": "</script><script>alert(2)</script>"}, "m": {"loss": 1.0}},
        {"name": "plain", "p": {"note": "'\"&"}, "m": {"loss": 2.0}},
    ])
    page = client.get("/compare", params={"runs": ",".join(ids)}).text
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    data = _data(page)  # the JSON block cannot be closed early: < and > are escaped
    assert data["runs"][0]["name"] == HOSTILE
    assert next(c for c in data["columns"] if c["id"] == "param:note")["categories"][0] == "'\"&"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 400, "Compare needs at least two runs"),
        ({"runs": ""}, 400, "Compare needs at least two runs"),
        ({"runs": "a" * 32}, 400, "Compare needs at least two runs"),
        ({"runs": f"{'a' * 32},{'a' * 32}"}, 400, "Compare needs at least two runs"),
        ({"runs": "abc,<script>x</script>"}, 400, "Not a run id: &#39;&lt;script&gt;x&lt;/script&gt;&#39;"),
        ({"runs": ",".join(f"{i:032x}" for i in range(1001))}, 400, "At most 1,000 runs can be compared"),
        ({"runs": f"{'a' * 32},{'b' * 32}"}, 400, "No run with id aaaaaaaa"),
    ],
)
def test_bad_run_lists_are_messages(client: TestClient, query: dict[str, str], status: int, message: str) -> None:
    response = client.get("/compare", params=query)
    assert response.status_code == status
    assert "text/html" in response.headers["content-type"]
    assert message in response.text


def test_bad_options_are_messages_and_unknown_runs_a_notice(client: TestClient, three: list[str]) -> None:
    runs = ",".join(three)
    for query, message in [
        ({"diff": "yes"}, "diff must be 1 or 0"),
        ({"dir": "up"}, "dir must be asc or desc"),
        ({"table": "some"}, "table must be all"),
        ({"sort": "<b>nope</b>"}, "None of these runs has a metric named &#39;&lt;b&gt;nope&lt;/b&gt;&#39;"),
    ]:
        response = client.get("/compare", params={"runs": runs, **query})
        assert response.status_code == 400 and message in response.text, query
    unknown = "f" * 32
    partly = client.get("/compare", params={"runs": f"{runs},{unknown}"})
    assert partly.status_code == 200
    assert "1 of the runs in this link was not found" in partly.text and unknown in partly.text
    # unknown axes and plot columns are ignored (a shared link outlives a key), never a 500
    odd = client.get("/compare", params={"runs": runs, "axis": "param:nope", "x": "zzz", "y": "<i>"})
    assert odd.status_code == 200 and "<i>" not in odd.text


def test_series_draw_the_best_runs_as_lines_and_the_rest_as_a_band(client: TestClient) -> None:
    store = _store(client)
    experiment_id = store.create_experiment("series")
    ids = []
    for i in range(24):  # final loss i: run 0 is the best; 4 runs beyond the top 20
        run_id = store.create_run(experiment_id, "me", 0, run_name=f"r{i}").info.run_id
        store.log_batch(run_id, metrics=[Metric("loss", i + 10 - step, 0, step) for step in range(11)])
        ids.append(run_id)
    shuffled = ids[::-1]
    response = client.get("/compare/series", params={"runs": ",".join(shuffled), "key": "loss", "sort": "loss"},
                          headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    series = response.json()
    assert series["runs"] == 24 and [line["name"] for line in series["lines"]] == [f"r{i}" for i in range(20)]
    assert series["lines"][3]["x"] == list(range(11)) and series["lines"][3]["y"] == [13.0 - s for s in range(11)]
    band = series["band"]
    assert band["runs"] == 4 and band["x"] == list(range(11))
    assert band["low"] == [30.0 - s for s in range(11)] and band["high"] == [33.0 - s for s in range(11)]
    # in the link's order without a sort; all lines and no band for 20 runs or fewer
    unsorted = client.get("/compare/series", params={"runs": ",".join(shuffled), "key": "loss"}).json()
    assert unsorted["lines"][0]["name"] == "r23"
    few = client.get("/compare/series", params={"runs": ",".join(ids[:5]), "key": "loss"}).json()
    assert len(few["lines"]) == 5 and few["band"] is None
    assert client.get("/compare/series", params={"runs": ",".join(ids[:5])}).status_code == 400
    missing = client.get("/compare/series", params={"runs": ",".join(ids[:5]), "key": "nope"}).json()
    assert missing["lines"] == [] and missing["band"] is None


def test_run_ids_are_ascii(client: TestClient, three: list[str]) -> None:
    response = client.get("/compare", params={"runs": f"{three[0]},{three[1]},runé"})
    assert response.status_code == 400 and "Not a run id" in response.text


def test_odd_values_never_break_the_page(client: TestClient) -> None:
    long_value = "x" * 6000
    ids = _log(client, "odd", [
        {"p": {"big": long_value, "mixed": "1"}, "m": {"inf": math.inf, "nan": math.nan, "neg": -math.inf}},
        {"p": {"mixed": "one"}, "m": {"nan": math.nan, "inf": 1.0}},
        {},
    ])
    response = client.get("/compare", params={"runs": ",".join(ids), "sort": "inf"})
    assert response.status_code == 200
    columns = {c["id"]: c for c in _data(response.text)["columns"]}
    assert columns["metric:inf"]["values"] == [None, 1.0, None] and columns["metric:nan"]["values"] == [None, None, None]
    assert columns["param:mixed"]["categories"] == ["1", "one"]  # one value that is not a number: categorical
    assert f'title="{long_value}"' in response.text  # clipped in the cell, whole on hover
    rows = dict(re.findall(r'<tr data-key="([^"]+)"[^>]*>(.*?)</tr>', response.text, re.S))
    assert re.findall(r"<td[^>]*>([^<]*)</td>", rows["metric:inf"]) == ["∞", "1", ""]
    assert 'data-key="metric:nan" class="differs"' in response.text  # NaN, NaN, missing
    nothing = _log(client, "empty", [{}, {}])
    empty = client.get("/compare", params={"runs": ",".join(nothing), "diff": "1"})
    assert empty.status_code == 200 and "These runs have no metrics." in empty.text
    assert _data(empty.text)["columns"] == []
