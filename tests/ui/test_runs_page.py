"""The runs page in a real browser (chromium) against a real gunicorn tracking service.

One experiment of 120 finished runs (tests/ui/runs_data.py) is shared by the read-only tests; tests
that change runs log their own. Every state a test reaches is saved as a screenshot.
"""

from __future__ import annotations

import csv
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from tests.support.browser import screenshot
from tests.ui.runs_data import Logged, api, create_experiment, log_runs

RUNS = 120


@pytest.fixture(scope="module")
def logged(ui_server: str) -> Logged:
    return log_runs(ui_server, RUNS)


def open_runs(page: Any, base: str, experiment_id: str, query: str = "") -> None:
    page.goto(f"{base}/experiments/{experiment_id}{query}")
    page.wait_for_selector("#total")


def row_names(page: Any) -> list[str]:
    return page.locator("#runs tbody tr:not([hidden]) td.name > a:first-of-type").all_inner_texts()


def total_text(page: Any) -> str:
    return page.locator("#total").inner_text()


def query_of(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def column_ids(page: Any) -> list[str]:
    headers = page.locator("#runs thead tr.keys th[data-col]")
    return [headers.nth(i).get_attribute("data-col") for i in range(headers.count())]


def column_values(page: Any, column: str) -> list[str]:
    """A column's cells, top to bottom (the selection box and the name come first)."""
    index = 3 + column_ids(page).index(column)
    return page.locator(f"#runs tbody tr:not([hidden]) > td:nth-child({index})").all_inner_texts()  # type: ignore[no-any-return]


def test_filter_with_or_using_key_suggestions(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    box = ui_page.locator("#filter")
    box.click()
    box.type("metrics.lo")
    suggestions = ui_page.locator("#filter-suggestions li")
    suggestions.first.wait_for()
    assert suggestions.all_inner_texts()[0].startswith("metrics.loss")
    screenshot(ui_page, "runs-filter-suggestions")
    box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == "metrics.loss "
    box.type("< 0.005 OR params.optimizer = 'sgd'")
    with ui_page.expect_navigation():
        box.press("Enter")
    expected = [name for name, loss, opt, _ in logged.runs.values() if loss < 0.005 or opt == "sgd"]
    assert query_of(ui_page)["filter"] == ["metrics.loss < 0.005 OR params.optimizer = 'sgd'"]
    assert total_text(ui_page).startswith(f"{len(expected)} matching runs")
    assert sorted(row_names(ui_page)) == sorted(expected)
    assert box.input_value() == "metrics.loss < 0.005 OR params.optimizer = 'sgd'"
    screenshot(ui_page, "runs-filtered-or")


def test_sort_by_clicking_a_metric_header(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    header = ui_page.locator("#runs thead th[data-col='m:loss'] a")
    with ui_page.expect_navigation():
        header.click()
    assert query_of(ui_page)["order"] == ["metrics.loss DESC"]
    assert row_names(ui_page)[:2] == [f"run-{RUNS - 1:03d}", f"run-{RUNS - 2:03d}"]
    assert ui_page.locator("#runs thead th[data-col='m:loss']").get_attribute("aria-sort") == "descending"
    with ui_page.expect_navigation():
        ui_page.locator("#runs thead th[data-col='m:loss'] a").click()
    assert query_of(ui_page)["order"] == ["metrics.loss ASC"]
    assert row_names(ui_page)[:2] == ["run-000", "run-001"]
    screenshot(ui_page, "runs-sorted-by-metric")
    # A param sorts server-side too (as text).
    with ui_page.expect_navigation():
        ui_page.locator("#runs thead th[data-col='p:optimizer'] a").click()
    optimizers = column_values(ui_page, "p:optimizer")
    assert query_of(ui_page)["order"] == ["params.optimizer ASC"]
    assert optimizers == sorted(optimizers) and optimizers[0] == "adam"


def test_paging_shows_the_true_total(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    assert total_text(ui_page) == f"{RUNS} runs · rows 1–100"
    with ui_page.expect_navigation():
        ui_page.select_option("form.page-size select", "50")  # runs.js submits on change
    assert total_text(ui_page) == f"{RUNS} runs · rows 1–50"
    assert len(row_names(ui_page)) == 50
    # The default columns fit a laptop screen: no sideways scrolling.
    assert ui_page.evaluate("(w => w.scrollWidth <= w.clientWidth)(document.getElementById('runs-wrap'))")
    screenshot(ui_page, "runs-page-1-of-3")
    with ui_page.expect_navigation():
        ui_page.locator("#next-page").click()
    assert total_text(ui_page) == f"{RUNS} runs · rows 51–100"
    assert row_names(ui_page)[0] == f"run-{RUNS - 51:03d}"
    with ui_page.expect_navigation():
        ui_page.locator("#next-page").click()
    assert total_text(ui_page) == f"{RUNS} runs · rows 101–120"
    assert len(row_names(ui_page)) == 20 and ui_page.locator("#next-page").count() == 0
    screenshot(ui_page, "runs-page-3-of-3")
    with ui_page.expect_navigation():
        ui_page.locator("#previous-page").click()
    assert total_text(ui_page) == f"{RUNS} runs · rows 51–100"
    assert row_names(ui_page)[0] == f"run-{RUNS - 51:03d}"
    with ui_page.expect_navigation():
        ui_page.locator("#previous-page").click()
    assert total_text(ui_page) == f"{RUNS} runs · rows 1–50" and ui_page.locator("#previous-page").count() == 0


def test_column_picker_adds_and_pins_columns(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    assert ui_page.locator("#runs thead th[data-col='t:team']").count() == 0
    ui_page.locator("#column-picker summary").click()
    ui_page.locator("#column-picker .picker-find").fill("tea")
    assert ui_page.locator("#column-picker .pick:visible").count() == 1
    ui_page.check("#column-picker input[name=col][value='t:team']")
    ui_page.locator("#column-picker .picker-find").fill("")
    ui_page.uncheck("#column-picker input[name=col][value='a:user']")
    ui_page.check("#column-picker input[name=pin][value='p:optimizer']")
    screenshot(ui_page, "runs-column-picker")
    with ui_page.expect_navigation():
        ui_page.locator("#column-picker button[type=submit]").click()
    query = query_of(ui_page)
    assert "t:team" in query["col"] and "a:user" not in query["col"] and query["pin"] == ["p:optimizer"]
    ids = column_ids(ui_page)
    assert ids[0] == "p:optimizer" and "t:team" in ids and "a:user" not in ids
    assert ui_page.locator("#runs thead tr.groups th").nth(2).inner_text().lower() == "pinned"
    assert column_values(ui_page, "t:team")[:2] == [f"t{(RUNS - 1) % 4}", f"t{(RUNS - 2) % 4}"]
    screenshot(ui_page, "runs-columns-picked")


def test_csv_export_has_the_filtered_set_and_columns(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(
        ui_page,
        ui_server,
        logged.experiment_id,
        "?filter=params.optimizer+%3D+%27adam%27&order=metrics.loss+ASC",
    )
    with ui_page.expect_download() as info:
        ui_page.locator("#csv-link").click()
    download = info.value
    assert download.suggested_filename == f"{logged.name}-runs.csv"
    with open(download.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = sorted((loss, name) for name, loss, opt, _ in logged.runs.values() if opt == "adam")
    assert [r["run_name"] for r in rows] == [name for _, name in expected]
    assert {
        "run_id",
        "status",
        "metrics.loss",
        "metrics.accuracy",
        "params.optimizer",
        "params.`batch size`",
    } <= set(rows[0])
    assert float(rows[1]["metrics.loss"]) == expected[1][0] and rows[0]["status"] == "FINISHED"


def test_selected_runs_make_the_compare_link(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    link = ui_page.locator("#compare-link")
    assert link.get_attribute("aria-disabled") == "true"
    rows = ui_page.locator("#runs tbody tr")
    first, second = rows.nth(0).get_attribute("data-run"), rows.nth(3).get_attribute("data-run")
    rows.nth(0).locator("input[type=checkbox]").check()
    rows.nth(3).locator("input[type=checkbox]").check()
    assert link.get_attribute("href") == f"/compare?runs={first},{second}"
    assert ui_page.locator("#selected-count").inner_text() == "2 selected"
    assert query_of(ui_page)["sel"] == [f"{first},{second}"]
    screenshot(ui_page, "runs-selected")
    # The selection is in the URL: a reload (or a shared link) keeps it.
    ui_page.reload()
    assert ui_page.locator("#compare-link").get_attribute("href") == f"/compare?runs={first},{second}"
    assert ui_page.locator(f"#run-{first} input[type=checkbox]").is_checked()
    # And it follows the table to another sort order.
    with ui_page.expect_navigation():
        ui_page.locator("#runs thead th[data-col='m:loss'] a").click()
    assert query_of(ui_page)["sel"] == [f"{first},{second}"]
    assert ui_page.locator("#selected-count").inner_text() == "2 selected"


def test_delete_and_restore_selected_runs(ui_server: str, ui_page: Any) -> None:
    mine = log_runs(ui_server, 3, prefix="delete")
    open_runs(ui_page, ui_server, mine.experiment_id)
    rows = ui_page.locator("#runs tbody tr")
    doomed = [rows.nth(0).get_attribute("data-run"), rows.nth(1).get_attribute("data-run")]
    for run_id in doomed:
        ui_page.locator(f"#run-{run_id} input[type=checkbox]").check()
    ui_page.locator("#delete-selected summary").click()
    screenshot(ui_page, "runs-delete-confirm")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Delete selected runs").click()
    assert total_text(ui_page).startswith("1 run")
    assert row_names(ui_page) == ["run-000"]
    assert "sel" not in query_of(ui_page)

    with ui_page.expect_navigation():
        ui_page.locator(".tabs a", has_text="Deleted").click()
    assert sorted(row_names(ui_page)) == ["run-001", "run-002"]
    screenshot(ui_page, "runs-deleted-tab")
    ui_page.locator("#select-all").check()
    with ui_page.expect_navigation():
        ui_page.locator("#restore-selected").click()
    assert ui_page.locator("#no-runs").inner_text() == "No deleted runs."
    open_runs(ui_page, ui_server, mine.experiment_id)
    assert total_text(ui_page).startswith("3 runs")


def test_a_hostile_run_name_is_shown_as_text(ui_server: str, ui_page: Any) -> None:
    experiment_id, _ = create_experiment(ui_server, "xss")
    hostile = "<img src=x onerror=alert(1)>"
    run = api(ui_server, "runs/create", {"experiment_id": experiment_id, "run_name": hostile})["run"]["info"]
    api(
        ui_server,
        "runs/log-batch",
        {"run_id": run["run_id"], "params": [{"key": "note", "value": hostile + "<b>bold</b>"}]},
    )
    dialogs: list[str] = []
    ui_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_runs(ui_page, ui_server, experiment_id)
    assert row_names(ui_page) == [hostile]
    assert ui_page.locator("#runs img").count() == 0 and ui_page.locator("#runs b").count() == 0
    assert ui_page.locator("#runs tbody td.text", has_text=hostile + "<b>bold</b>").count() == 1
    screenshot(ui_page, "runs-hostile-name")
    assert dialogs == []


def test_back_button_restores_filter_sort_and_columns(ui_server: str, ui_page: Any, logged: Logged) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    ui_page.fill("#filter", "tags.team = 't1'")
    with ui_page.expect_navigation():
        ui_page.press("#filter", "Enter")
    filtered_total = total_text(ui_page)
    with ui_page.expect_navigation():
        ui_page.locator("#runs thead th[data-col='m:loss'] a").click()
    sorted_first = row_names(ui_page)[0]
    ui_page.go_back()
    ui_page.wait_for_selector("#total")
    assert "order" not in query_of(ui_page)
    assert ui_page.locator("#filter").input_value() == "tags.team = 't1'"
    assert total_text(ui_page) == filtered_total
    ui_page.go_forward()
    ui_page.wait_for_selector("#total")
    assert row_names(ui_page)[0] == sorted_first
    ui_page.go_back()
    ui_page.go_back()
    ui_page.wait_for_selector("#total")
    assert ui_page.locator("#filter").input_value() == ""
    assert total_text(ui_page).startswith(f"{RUNS} runs")
    screenshot(ui_page, "runs-after-back")


def test_a_bad_filter_is_an_inline_message(
    ui_server: str, ui_page: Any, logged: Logged, console_errors: list[str]
) -> None:
    open_runs(ui_page, ui_server, logged.experiment_id)
    ui_page.fill("#filter", "metrics.loss < 0.1 OR (params.optimizer = 'adam'")
    with ui_page.expect_navigation():
        ui_page.press("#filter", "Enter")
    problem = ui_page.locator("#problems")
    assert "Invalid filter" in problem.inner_text()
    assert ui_page.locator("#filter").input_value() == "metrics.loss < 0.1 OR (params.optimizer = 'adam'"
    assert ui_page.locator("nav.side").is_visible()  # the page, not an error page
    screenshot(ui_page, "runs-bad-filter")
    assert console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    console_errors.clear()


def test_nested_runs_fold_under_their_parent(ui_server: str, ui_page: Any) -> None:
    mine = log_runs(ui_server, 4, prefix="nested")
    ids = list(mine.runs)
    for child in ids[:2]:
        api(ui_server, "runs/set-tag", {"run_id": child, "key": "mlflow.parentRunId", "value": ids[3]})
    open_runs(ui_page, ui_server, mine.experiment_id)
    assert row_names(ui_page) == ["run-003", "run-001", "run-000", "run-002"]
    screenshot(ui_page, "runs-nested")
    ui_page.locator(f"#run-{ids[3]} button.fold").click()
    assert row_names(ui_page) == ["run-003", "run-002"]
    assert query_of(ui_page)["fold"] == [ids[3]]
    ui_page.reload()
    assert row_names(ui_page) == ["run-003", "run-002"]
    ui_page.locator(f"#run-{ids[3]} button.fold").click()
    assert row_names(ui_page) == ["run-003", "run-001", "run-000", "run-002"]


def test_running_rows_refresh_live(ui_server: str, ui_page: Any) -> None:
    experiment_id, _ = create_experiment(ui_server, "live")
    run_id = api(ui_server, "runs/create", {"experiment_id": experiment_id, "run_name": "busy"})["run"][
        "info"
    ]["run_id"]
    open_runs(ui_page, ui_server, experiment_id)
    assert ui_page.locator(f"#run-{run_id} .status").inner_text() == "RUNNING"
    api(
        ui_server,
        "runs/log-batch",
        {"run_id": run_id, "metrics": [{"key": "acc", "value": 0.75, "timestamp": 1}]},
    )
    api(
        ui_server,
        "runs/update",
        {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
    )
    ui_page.locator(f"#run-{run_id} .status", has_text="FINISHED").wait_for(timeout=15_000)
    assert ui_page.locator("#live").get_attribute("hx-get") is None  # polling stopped
    assert ui_page.url.endswith(f"/experiments/{experiment_id}")  # no reload
    screenshot(ui_page, "runs-live-finished")


def test_runs_logged_with_the_mlflow_client_show_correctly(ui_server: str, ui_page: Any) -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(ui_server)
    name = f"mlflow-{uuid.uuid4().hex[:8]}"
    experiment = mlflow.set_experiment(name)
    with mlflow.start_run(run_name="sweep") as parent:
        mlflow.log_params({"model": "cnn", "layers": 3})
        mlflow.set_tag("team", "vision")
        for step in range(3):
            mlflow.log_metric("val_loss", 1.0 / (step + 1), step=step)
        for lr in (0.1, 0.01):
            with mlflow.start_run(run_name=f"lr-{lr}", nested=True):
                mlflow.log_param("lr", lr)
                mlflow.log_metric("val_loss", lr * 2)
    children = MlflowClient(ui_server).search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 2

    open_runs(ui_page, ui_server, experiment.experiment_id)
    screenshot(ui_page, "runs-mlflow-client")
    assert total_text(ui_page).startswith("3 runs")
    assert row_names(ui_page) == ["sweep", "lr-0.01", "lr-0.1"]
    parent_row = ui_page.locator(f"#run-{parent.info.run_id}")
    assert parent_row.get_attribute("data-depth") == "0" and parent_row.locator("button.fold").count() == 1
    for child in children:
        assert ui_page.locator(f"#run-{child.info.run_id}").get_attribute("data-depth") == "1"
    # By default: the metric and the two most recently used params (the children's lr, then the
    # parent's by name); the third is one click away in the picker.
    ids = column_ids(ui_page)
    assert [c for c in ids if c[0] in "mp"] == ["m:val_loss", "p:lr", "p:layers"]
    assert ui_page.locator("#column-picker input[name=col][value='p:model']").count() == 1
    columns = "&".join(
        f"col={c}" for c in ("a:status", "a:user", "a:source", "m:val_loss", "p:lr", "p:layers", "p:model")
    )
    open_runs(ui_page, ui_server, experiment.experiment_id, "?cols=1&" + columns)
    ids = column_ids(ui_page)

    def cell(run_id: str, column: str) -> str:
        return str(ui_page.locator(f"#run-{run_id} td").nth(2 + ids.index(column)).inner_text())

    assert cell(parent.info.run_id, "m:val_loss") == "0.333333"  # the latest step's value, 6 digits
    assert cell(parent.info.run_id, "p:model") == "cnn" and cell(parent.info.run_id, "p:layers") == "3"
    by_name = {c.info.run_name: c.info.run_id for c in children}
    assert cell(by_name["lr-0.01"], "p:lr") == "0.01" and cell(by_name["lr-0.01"], "m:val_loss") == "0.02"
    assert cell(parent.info.run_id, "a:status") == "FINISHED"
    logged = MlflowClient(ui_server).get_run(parent.info.run_id)
    assert cell(parent.info.run_id, "a:user") == (logged.info.user_id or logged.data.tags["mlflow.user"])
    source = ui_page.locator(f"#run-{parent.info.run_id} td.source")
    assert source.get_attribute("title").startswith(logged.data.tags["mlflow.source.name"])


def test_first_paint_needs_no_javascript(ui_server: str, browser: Any, logged: Logged) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{ui_server}/experiments/{logged.experiment_id}?order=metrics.loss+ASC&size=50")
        assert page.locator("#total").inner_text() == f"{RUNS} runs · rows 1–50"
        assert row_names(page)[:3] == ["run-000", "run-001", "run-002"]
        assert page.locator("#runs tbody tr").count() == 50
        screenshot(page, "runs-without-javascript")
    finally:
        context.close()


AUTOLOG_METRICS = (
    "accuracy_score", "example_count", "f1_score", "log_loss", "precision_score", "recall_score", "roc_auc",
    "training_accuracy_score", "training_precision_score",
)
AUTOLOG_PARAMS = ("fit_intercept", "max_iter", "multi_class", "random_state", "warm_start")
LONG_KEY = "averagedvalidationcrossentropyoverallfolds"  # one word longer than a header's 9rem

# For every metric/param header: the characters after which its text moves to a new line, and whether
# the link is cut short (its text wider than the box, shown with an ellipsis).
_HEADER_BREAKS = """() => [...document.querySelectorAll(
    '#runs thead tr.keys th.kind-metric > a, #runs thead tr.keys th.kind-param > a')].map(a => {
  const text = a.textContent, breaks = [];
  const walker = document.createTreeWalker(a, NodeFilter.SHOW_TEXT), nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  let previous = null, lastChar = null;
  for (const t of nodes) for (let i = 0; i < t.length; i++) {
    const r = document.createRange(); r.setStart(t, i); r.setEnd(t, i + 1);
    const top = Math.round(r.getBoundingClientRect().top);
    if (previous !== null && top > previous + 2) breaks.push(lastChar);
    previous = top; lastChar = t.data[i];
  }
  return {text, breaks, cut: a.scrollWidth > a.clientWidth + 1 || a.scrollHeight > a.clientHeight + 1, lines: Math.round(a.getBoundingClientRect().height / parseFloat(getComputedStyle(a).lineHeight)), title: a.parentElement.title};
})"""


def test_headers_break_between_words_not_inside_them(ui_server: str, browser: Any) -> None:
    """Autolog's keys (accuracy_score, example_count, ...) wrap only after `_` etc., never mid-word
    ("accuracy_sc/ore"); a single word too long for a header is cut with an ellipsis and its tooltip."""
    experiment_id, _ = create_experiment(ui_server, "headers")
    for i in range(3):
        run_id = api(ui_server, "runs/create", {"experiment_id": experiment_id, "run_name": f"autolog-{i}"})["run"][
            "info"
        ]["run_id"]
        metrics = [{"key": k, "value": 0.5 + i / 10, "timestamp": 0, "step": 0} for k in (*AUTOLOG_METRICS, LONG_KEY)]
        params = [{"key": k, "value": "v"} for k in AUTOLOG_PARAMS]
        api(ui_server, "runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": params})
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        columns = [f"a:{a}" for a in ("created", "duration", "status", "user")]
        columns += [f"m:{k}" for k in (*AUTOLOG_METRICS, LONG_KEY)] + [f"p:{k}" for k in AUTOLOG_PARAMS]
        open_runs(page, ui_server, experiment_id, "?" + urlencode({"col": columns}, doseq=True))
        screenshot(page, "runs-autolog-headers")
        headers = {h["text"]: h for h in page.evaluate(_HEADER_BREAKS)}
        assert set(AUTOLOG_METRICS) | set(AUTOLOG_PARAMS) | {LONG_KEY} <= set(headers)
        for key in (*AUTOLOG_METRICS, *AUTOLOG_PARAMS):
            assert all(char == "_" for char in headers[key]["breaks"]), headers[key]
            assert not headers[key]["cut"] and headers[key]["lines"] <= 2, headers[key]
        assert headers[LONG_KEY]["cut"] and headers[LONG_KEY]["lines"] == 1, headers[LONG_KEY]
        assert headers[LONG_KEY]["title"] == f"metric: {LONG_KEY}"
    finally:
        context.close()
