"""The runs page and its fragments through the ASGI app (no browser): what the server renders, its
answers to bad query strings, the CSV export, delete/restore and the live rows."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from modelyard.settings import Settings
from modelyard.tracking.app import create_app
from modelyard.ui import runs_csv

API = "/api/2.0/mlflow"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / 'ui.db'}", artifacts_destination=str(tmp_path / "artifacts")
    )
    with TestClient(
        create_app(settings), raise_server_exceptions=False, base_url="http://localhost"
    ) as test_client:
        yield test_client


def call(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def make_runs(client: TestClient, count: int, name: str = "exp") -> tuple[str, list[str]]:
    """Runs run-000... started a second apart, loss = i/100, optimizer adam/sgd, all finished."""
    experiment_id = call(client, "experiments/create", {"name": name})["experiment_id"]
    ids = []
    for i in range(count):
        start = 1_700_000_000_000 + i * 1000
        run_id = call(
            client,
            "runs/create",
            {"experiment_id": experiment_id, "run_name": f"run-{i:03d}", "start_time": start},
        )["run"]["info"]["run_id"]
        call(
            client,
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "loss", "value": i / 100, "timestamp": start, "step": 0}],
                "params": [{"key": "optimizer", "value": ("adam", "sgd")[i % 2]}],
                "tags": [{"key": "team", "value": f"t{i % 3}"}],
            },
        )
        call(client, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": start + 1500})
        ids.append(run_id)
    return experiment_id, ids


def names(page: str) -> list[str]:
    """Run names in table order."""
    return [
        html.unescape(n) for n in re.findall(r'<a href="/runs/[0-9a-f]+" title="[^"]*">([^<]+)</a>', page)
    ]


def total(page: str) -> str:
    return re.search(r'id="total">\s*(?:<strong>([\d,]+)</strong>)?', page).group(1) or ""  # type: ignore[union-attr]


def test_page_shows_total_default_columns_and_newest_first(client: TestClient) -> None:
    experiment_id, _ = make_runs(client, 12)
    page = client.get(f"/experiments/{experiment_id}")
    assert page.status_code == 200
    assert total(page.text) == "12"
    assert names(page.text)[:3] == ["run-011", "run-010", "run-009"]
    # The experiment's metric and param are columns by default (tags are in the picker).
    headers = re.findall(r'data-col="([^"]+)"', page.text)
    assert "m:loss" in headers and "p:optimizer" in headers and "t:team" not in headers
    assert 'value="t:team"' in page.text  # offered by the column picker
    assert "FINISHED" in page.text and "1.5s" in page.text  # status and duration


def test_filter_with_or_and_parentheses_counts_every_match(client: TestClient) -> None:
    experiment_id, _ = make_runs(client, 30)
    text = "(metrics.loss < 0.05 OR params.optimizer = 'sgd') AND tags.team != 't0'"
    page = client.get(f"/experiments/{experiment_id}", params={"filter": text, "size": "50"})
    assert page.status_code == 200
    expected = [
        f"run-{i:03d}" for i in reversed(range(30)) if (i / 100 < 0.05 or i % 2 == 1) and f"t{i % 3}" != "t0"
    ]
    assert names(page.text) == expected
    assert total(page.text) == str(len(expected))
    assert f'value="{escape(text)}"' in page.text  # the input keeps the filter


def test_sort_by_a_metric_and_the_header_flips_it(client: TestClient) -> None:
    experiment_id, _ = make_runs(client, 5)
    page = client.get(f"/experiments/{experiment_id}", params={"order": "metrics.loss ASC"})
    assert names(page.text) == [f"run-{i:03d}" for i in range(5)]
    header = re.search(
        r'<th class="kind-metric num"[^>]*aria-sort="ascending"[^>]*><a href="([^"]+)"', page.text
    )
    assert header is not None
    flipped = client.get(html.unescape(header.group(1)))
    assert names(flipped.text) == [f"run-{i:03d}" for i in reversed(range(5))]


def test_keyset_paging_keeps_the_total_and_counts_rows(client: TestClient) -> None:
    experiment_id, _ = make_runs(client, 60)
    first = client.get(f"/experiments/{experiment_id}", params={"size": "50"})
    assert total(first.text) == "60" and len(names(first.text)) == 50 and "rows 1–50" in first.text
    next_url = html.unescape(re.search(r'href="([^"]+)" rel="next"', first.text).group(1))  # type: ignore[union-attr]
    second = client.get(next_url)
    assert total(second.text) == "60" and "rows 51–60" in second.text
    assert names(second.text) == [f"run-{i:03d}" for i in reversed(range(10))]
    assert 'rel="next"' not in second.text
    previous = html.unescape(re.search(r'href="([^"]+)" rel="prev"', second.text).group(1))  # type: ignore[union-attr]
    assert names(client.get(previous).text) == names(first.text)
    assert client.get(f"/experiments/{experiment_id}", params={"prev": "a b"}).status_code == 400


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"filter": "metrics.loss >"}, "Invalid filter"),
        ({"filter": "nonsense.x = 1"}, "Invalid filter"),
        ({"order": "metrics.loss SIDEWAYS"}, "order_by"),
        ({"size": "7"}, "size must be one of 50, 100, 200"),
        ({"view": "sideways"}, "view must be one of"),
        ({"col": "zz"}, "col values look like"),
        ({"pin": "a:nope"}, "pin values look like"),
        ({"sel": "a,b'c"}, "sel holds run ids"),
        ({"page_token": "not-a-token"}, "page token"),
    ],
)
def test_bad_query_values_are_a_message_where_the_table_was(
    client: TestClient, query: dict[str, str], message: str
) -> None:
    experiment_id, _ = make_runs(client, 2)
    page = client.get(f"/experiments/{experiment_id}", params=query)
    assert page.status_code == 400
    assert "text/html" in page.headers["content-type"]
    problems = re.search(
        r'<div class="error problems" role="alert" id="problems">(.*?)</div>', page.text, re.S
    )
    assert problems is not None and message in html.unescape(problems.group(1))
    assert 'id="runs"' not in page.text  # no table, but the page and its inputs are there
    if "filter" in query:
        assert f'id="filter" value="{escape(query["filter"])}"' in page.text.replace(
            'name="filter" id="filter"', 'id="filter"'
        )


def test_unknown_experiment_is_a_404_page(client: TestClient) -> None:
    assert client.get("/experiments/98765").status_code == 404
    assert client.get("/experiments/not-a-number").status_code in (400, 404)


def test_user_strings_are_escaped(client: TestClient) -> None:
    experiment_id = call(client, "experiments/create", {"name": "<script>alert(1)</script>"})["experiment_id"]
    hostile = "<img src=x onerror=alert(1)>"
    run_id = call(client, "runs/create", {"experiment_id": experiment_id, "run_name": hostile})["run"][
        "info"
    ]["run_id"]
    call(
        client,
        "runs/log-batch",
        {
            "run_id": run_id,
            "params": [{"key": "p", "value": hostile}],
            "tags": [
                {"key": "mlflow.source.name", "value": hostile},
                {"key": "mlflow.user", "value": hostile},
            ],
        },
    )
    page = client.get(f"/experiments/{experiment_id}").text
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_nested_runs_follow_their_parent_and_name_a_parent_elsewhere(client: TestClient) -> None:
    experiment_id, ids = make_runs(client, 4)
    parent = ids[0]  # oldest, so last in the default order
    for child in ids[2:]:
        call(client, "runs/set-tag", {"run_id": child, "key": "mlflow.parentRunId", "value": parent})
    page = client.get(f"/experiments/{experiment_id}").text
    assert names(page) == ["run-001", "run-000", "run-003", "run-002"]
    assert f'data-run="{ids[3]}" data-depth="1"' in page and f'data-fold="{parent}"' in page
    # The children alone on a page name their parent.
    alone = client.get(
        f"/experiments/{experiment_id}", params={"filter": "tags.mlflow.parentRunId != ''"}
    ).text
    assert "↳ run-000" in alone
    folded = client.get(f"/experiments/{experiment_id}", params={"fold": parent}).text
    assert re.search(rf'data-run="{ids[3]}" data-depth="1" hidden', folded)


def test_csv_streams_every_matching_run_page_by_page(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id, ids = make_runs(client, 23)
    call(client, "runs/set-tag", {"run_id": ids[0], "key": "team", "value": '=HYPERLINK("x")'})
    pages: list[int] = []
    original = runs_csv.search_page

    def counting(store: Any, query: Any, size: int, token: str | None) -> Any:
        pages.append(size)
        return original(store, query, size, token)

    monkeypatch.setattr(runs_csv, "EXPORT_PAGE", 5)
    monkeypatch.setattr(runs_csv, "search_page", counting)
    response = client.get(
        f"/experiments/{experiment_id}/runs.csv",
        params={
            "filter": "metrics.loss >= 0.0",
            "order": "metrics.loss ASC",
            "cols": "1",
            "col": ["m:loss", "t:team"],
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="exp-runs.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["run_name"] for r in rows] == [f"run-{i:03d}" for i in range(23)]  # all of them, in order
    assert rows[1]["metrics.loss"] == "0.01" and rows[1]["tags.team"] == "t1"
    assert rows[0]["tags.team"] == '\'=HYPERLINK("x")'  # defused for spreadsheets
    assert rows[0]["status"] == "FINISHED" and rows[0]["duration_s"] == "1.5"
    # The first page comes from the route, the other four through the generator, 5 runs at a time.
    assert pages == [5, 5, 5, 5]


def test_csv_of_a_bad_filter_is_an_error_page(client: TestClient) -> None:
    experiment_id, _ = make_runs(client, 1)
    response = client.get(f"/experiments/{experiment_id}/runs.csv", params={"filter": "metrics.x <"})
    assert response.status_code == 400 and "text/html" in response.headers["content-type"]


def test_delete_and_restore_need_csrf_and_runs_of_this_experiment(client: TestClient) -> None:
    experiment_id, ids = make_runs(client, 3)
    other, other_ids = make_runs(client, 1, name="other")
    client.get(f"/experiments/{experiment_id}")
    token = client.cookies["modelyard_csrf"]
    url = f"/experiments/{experiment_id}/runs/delete"
    assert client.post(url, data={"run": ids[0]}, follow_redirects=False).status_code == 403
    # One stranger in the selection: nothing is deleted.
    mixed = client.post(url, content=f"csrf_token={token}&run={ids[0]}&run={other_ids[0]}".encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)  # fmt: skip
    assert mixed.status_code == 404
    assert total(client.get(f"/experiments/{experiment_id}").text) == "3"

    back = f"/experiments/{experiment_id}?filter=metrics.loss+%3E%3D+0&sel={ids[0]},{ids[1]}"
    body = f"csrf_token={token}&run={ids[0]}&run={ids[1]}&next={back.replace('&', '%26')}"
    done = client.post(url, content=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == f"/experiments/{experiment_id}?filter=metrics.loss+%3E%3D+0"
    assert names(client.get(f"/experiments/{experiment_id}").text) == ["run-002"]
    deleted = client.get(f"/experiments/{experiment_id}", params={"view": "deleted"}).text
    assert names(deleted) == ["run-001", "run-000"] and "/runs/restore" in deleted

    restore = f"/experiments/{experiment_id}/runs/restore"
    again = client.post(restore, content=f"csrf_token={token}&run={ids[0]}&next=https://evil.example/".encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)  # fmt: skip
    assert again.status_code == 303 and again.headers["location"] == f"/experiments/{experiment_id}"
    assert total(client.get(f"/experiments/{experiment_id}").text) == "2"
    assert client.get(f"/experiments/{other}").status_code == 200
    odd = client.post(f"/experiments/{experiment_id}/runs/explode", data={"csrf_token": token, "run": ids[2]})
    assert odd.status_code == 404 and total(client.get(f"/experiments/{experiment_id}").text) == "2"


def test_live_rows_refresh_running_runs_until_none_is_left(client: TestClient) -> None:
    experiment_id = call(client, "experiments/create", {"name": "live"})["experiment_id"]
    run_id = call(client, "runs/create", {"experiment_id": experiment_id, "run_name": "busy"})["run"]["info"][
        "run_id"
    ]
    page = client.get(f"/experiments/{experiment_id}").text
    poll = re.search(r'id="live" class="live muted" hx-get="([^"]+)" hx-trigger="every 3s"', page)
    assert poll is not None
    live_url = html.unescape(poll.group(1))
    assert f"live={run_id}%3A0%3A0" in live_url

    call(
        client,
        "runs/log-batch",
        {"run_id": run_id, "metrics": [{"key": "acc", "value": 0.5, "timestamp": 1}]},
    )
    fragment = client.get(live_url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert f'<tr id="run-{run_id}"' in fragment.text and 'hx-swap-oob="true"' in fragment.text
    assert "RUNNING" in fragment.text and 'hx-get="' in fragment.text  # still polling

    call(client, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 2_000_000_000_000})
    done = client.get(live_url, headers={"HX-Request": "true"})
    assert "FINISHED" in done.text and 'hx-get="' not in done.text  # the poller stops
    assert client.get(f"/experiments/{experiment_id}/live", params={"live": "x"}).status_code == 400


def test_registered_versions_link_from_their_run(client: TestClient) -> None:
    experiment_id, ids = make_runs(client, 1)
    run = client.get(f"{API}/runs/get", params={"run_id": ids[0]}).json()
    call(client, "registered-models/create", {"name": "my model/v"})
    body = {"name": "my model/v", "source": f"{run['run']['info']['artifact_uri']}/model", "run_id": ids[0]}
    call(client, "model-versions/create", body)
    page = client.get(f"/experiments/{experiment_id}").text
    assert (
        '<a class="chip" href="/model-version?name=my+model%2Fv&amp;version=1"' in page
        and "my model/v v1" in page
    )


@pytest.mark.postgres
def test_a_total_over_the_limit_is_shown_as_an_estimate(
    postgres_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an experiment over run_table.EXACT_VIEW_LIMIT runs the page shows an estimate, and says what it
    is made of; below, the count."""
    from modelyard.store.sql import migrate
    from modelyard.store.tracking import run_table

    migrate.upgrade(postgres_uri)
    settings = Settings(backend_store_uri=postgres_uri, artifacts_destination=str(tmp_path / "artifacts"))
    with TestClient(create_app(settings), base_url="http://localhost") as pg_client:
        experiment_id, _ids = make_runs(pg_client, 12)
        counted = pg_client.get(f"/experiments/{experiment_id}")
        assert re.search(r"<strong>12</strong> runs", counted.text), counted.text
        with psycopg.connect(postgres_uri, autocommit=True) as conn:
            conn.execute("ANALYZE")  # statistics, as autovacuum would gather them
        monkeypatch.setattr(run_table, "EXACT_VIEW_LIMIT", 3)
        monkeypatch.setattr(run_table, "SAMPLE_RUNS", 6)
        monkeypatch.setattr(run_table, "SAMPLE_MATCHES", 2)
        filtered = pg_client.get(
            f"/experiments/{experiment_id}", params={"filter": "params.optimizer = 'adam'"}
        )
        total = re.search(r'<p class="total" id="total">(.*?)</p>', filtered.text, re.S)
        assert total is not None, filtered.text
        # The newest 6 runs (run-011..run-006): 3 use adam, scaled to the 12 runs.
        assert '<strong class="estimate" title="An estimate: 3 of the newest 6 runs match' in total.group(1)
        assert re.search(r">about 6</strong> matching runs", total.group(1)), total.group(1)
        unfiltered = re.search(
            r'<p class="total" id="total">(.*?)</p>',
            pg_client.get(f"/experiments/{experiment_id}").text,
            re.S,
        )
        assert unfiltered is not None and "An estimate from the database" in unfiltered.group(1)
