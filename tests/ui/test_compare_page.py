"""The compare page in a real browser (chromium) against a real gunicorn tracking service."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from tests.support.browser import screenshot

API = "/api/2.0/mlflow"
HOSTILE = "<img src=x onerror=alert(1)>"
#: Counts a canvas's drawn pixels, and the coloured ones among them (lines and points; axes,
#: grid and text are grey).
CANVAS_PIXELS = """(selector) => {
  const c = document.querySelector(selector + ' canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, coloured = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 0) continue;
    drawn++;
    if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) coloured++;
  }
  return {drawn, coloured, width: c.width, cssWidth: c.clientWidth};
}"""


def _log_runs(base: str, runs: list[dict[str, Any]]) -> list[str]:
    """Runs in a new experiment through the REST API: name, params `p`, metrics `m` (one point, or a
    list of values at steps 0, 1, ...)."""
    experiment = requests.post(f"{base}{API}/experiments/create", json={"name": f"cmp-{uuid.uuid4().hex[:8]}"}, timeout=10)
    experiment.raise_for_status()
    ids = []
    for spec in runs:
        created = requests.post(
            f"{base}{API}/runs/create",
            json={"experiment_id": experiment.json()["experiment_id"], "run_name": spec["name"], "start_time": int(time.time() * 1000)},
            timeout=10,
        )
        created.raise_for_status()
        run_id = created.json()["run"]["info"]["run_id"]
        requests.post(
            f"{base}{API}/runs/log-batch",
            json={
                "run_id": run_id,
                "params": [{"key": k, "value": v} for k, v in spec["p"].items()],
                "metrics": [
                    {"key": k, "value": value, "timestamp": 1, "step": step}
                    for k, v in spec["m"].items()
                    for step, value in enumerate(v if isinstance(v, list) else [v])
                ],
            },
            timeout=10,
        ).raise_for_status()
        ids.append(run_id)
    return ids


def _forty() -> list[dict[str, Any]]:
    """40 runs: a numeric and a categorical param that matter, one that never changes, and a
    loss that follows the learning rate (one run without it)."""
    runs = []
    for i in range(40):
        lr = [0.001, 0.003, 0.01, 0.03, 0.1][i % 5]
        metrics = {"loss": round(math.exp(-30 * lr) + (i % 7) / 50, 4), "accuracy": round(0.5 + (i % 9) / 20, 3)}
        if i == 39:
            del metrics["loss"]
        runs.append({"name": f"trial-{i:02d}", "p": {"lr": str(lr), "optimizer": ["adam", "sgd", "rmsprop"][i % 3],
                                                      "seed": "42", "layers": str(2 + i % 4)}, "m": metrics})
    return runs


@pytest.fixture(scope="module")
def forty(ui_server: str) -> list[str]:
    return _log_runs(ui_server, _forty())


@pytest.fixture(scope="module")
def few(ui_server: str) -> list[str]:
    return _log_runs(ui_server, [
        {"name": HOSTILE, "p": {"lr": "0.1", "note": "<script>alert(2)</script>", "seed": "1"}, "m": {"loss": 0.4}},
        {"name": "plain", "p": {"lr": "0.01", "note": "fine", "seed": "1"}, "m": {"loss": 0.2}},
        {"name": "third", "p": {"lr": "0.05", "note": "fine", "seed": "1"}, "m": {"loss": 0.3}},
    ])


@pytest.fixture(scope="module")
def curves(ui_server: str) -> list[str]:
    """24 runs with 60-step loss curves (final loss i / 10 for run i) and a one-step accuracy."""
    return _log_runs(ui_server, [
        {"name": f"curve-{i:02d}", "p": {"width": str(32 * (1 + i % 4))},
         "m": {"loss": [round(i / 10 + 3 * math.exp(-step / 10), 5) for step in range(60)], "accuracy": 1 - i / 50}}
        for i in range(24)
    ])


def _query(page: Any) -> dict[str, list[str]]:
    """The page's query string now (`page.url` learns of history.replaceState a moment later)."""
    return parse_qs(urlsplit(page.evaluate("location.href")).query)


def _brush(page: Any, axis_index: int, axes: int, top: float, bottom: float) -> None:
    """Drag along the parallel-coordinates axis `axis_index` from `top` to `bottom` (fractions of the
    axis's height, 0 = its top), as parcoords.js lays it out (PAD 56/56/46/34, n/a slot 20)."""
    page.locator("#parcoords").scroll_into_view_if_needed()
    box = page.locator("#parcoords").bounding_box()
    x = box["x"] + 56 + axis_index * (box["width"] - 112) / (axes - 1)
    y_top, y_bottom = box["y"] + 46, box["y"] + box["height"] - 54
    page.mouse.move(x, y_top + top * (y_bottom - y_top))
    page.mouse.down()
    page.mouse.move(x, y_top + (top + bottom) / 2 * (y_bottom - y_top), steps=3)
    page.mouse.move(x, y_top + bottom * (y_bottom - y_top), steps=3)
    page.mouse.up()


def test_forty_runs_draw_a_scatter_and_parallel_coordinates(ui_server: str, ui_page: Any, forty: list[str]) -> None:
    ui_page.goto(f"{ui_server}/compare?runs={','.join(forty)}&sort=loss")
    assert ui_page.locator("h1").inner_text() == "Compare 40 runs"
    # runs as rows, best loss first, the run without loss last
    names = ui_page.locator("#compare-table tbody th.key").all_inner_texts()
    assert len(names) == 40 and names[-1] == "trial-39"
    assert ui_page.locator("#parcoords").get_attribute("data-selected") == "40"
    assert ui_page.locator("#parcoords-count").inner_text() == "40 runs"
    assert "No metric of these runs was logged over steps" in ui_page.locator("main").inner_text()
    # x: the first differing param; y: the sort metric; the run without loss is not a point
    assert ui_page.locator("#scatter-y").input_value() == "metric:loss"
    assert ui_page.locator("#scatter").get_attribute("data-points") == "39"
    for plot in ("#scatter", "#parcoords"):
        pixels = ui_page.evaluate(CANVAS_PIXELS, plot)
        assert pixels["coloured"] > 200, (plot, pixels)
    # sharp on HiDPI: the canvas has the device's pixels (1 here), sized to its box
    assert ui_page.evaluate(CANVAS_PIXELS, "#parcoords")["width"] == ui_page.evaluate(CANVAS_PIXELS, "#parcoords")["cssWidth"]
    screenshot(ui_page, "compare-40-runs")

    # another x axis: the picker redraws and keeps the choice in the URL
    ui_page.select_option("#scatter-x", "param:optimizer")
    assert _query(ui_page)["x"] == ["param:optimizer"]
    assert ui_page.locator("#scatter").get_attribute("data-points") == "39"
    screenshot(ui_page, "compare-scatter-categorical")
    ui_page.select_option("#scatter-x", "param:lr")
    ui_page.check("#scatter-xlog")
    assert _query(ui_page)["xlog"] == ["1"]
    assert ui_page.evaluate(CANVAS_PIXELS, "#scatter")["coloured"] > 200
    screenshot(ui_page, "compare-scatter-log")
    # a new sort reloads the page and keeps the plot choices made in place
    with ui_page.expect_navigation():
        ui_page.select_option("#compare-form select[name=sort]", "accuracy")
    query = _query(ui_page)
    assert query["sort"] == ["accuracy"] and query["x"] == ["param:lr"] and query["xlog"] == ["1"]
    assert ui_page.locator("#scatter-x").input_value() == "param:lr" and ui_page.is_checked("#scatter-xlog")


def test_brushing_an_axis_selects_the_runs_inside_it(ui_server: str, ui_page: Any, forty: list[str]) -> None:
    ui_page.goto(f"{ui_server}/compare?runs={','.join(forty)}&sort=loss")
    axes = ui_page.evaluate("() => JSON.parse(document.getElementById('compare-data').textContent).axes")
    assert axes[-1] == "metric:loss"
    before = ui_page.evaluate(CANVAS_PIXELS, "#parcoords")["coloured"]
    _brush(ui_page, len(axes) - 1, len(axes), 0.55, 1.0)  # the lower half of the loss axis: low losses

    brush = _query(ui_page)["brush"]
    assert len(brush) == 1 and brush[0].startswith("metric:loss:")
    low, high = (float(v) for v in brush[0].rsplit(":", 2)[1:])
    losses = [r["m"].get("loss") for r in _forty()]
    expected = sum(1 for v in losses if v is not None and low <= v <= high)
    assert 0 < expected < 39
    assert ui_page.locator("#parcoords").get_attribute("data-selected") == str(expected)
    assert ui_page.locator("#parcoords-count").inner_text() == f"{expected} of 40 runs selected"
    # the unselected lines turn grey; the scatter greys the same runs
    assert ui_page.evaluate(CANVAS_PIXELS, "#parcoords")["coloured"] < before
    assert ui_page.locator("#scatter").get_attribute("data-selected") == str(expected)
    screenshot(ui_page, "compare-brushed")

    # the brush is in the URL: a reload shows the same selection
    ui_page.reload()
    assert ui_page.locator("#parcoords").get_attribute("data-selected") == str(expected)
    # a second brush narrows it; a click on an axis clears that axis's brush
    _brush(ui_page, 0, len(axes), 0.0, 0.6)
    narrowed = int(ui_page.locator("#parcoords").get_attribute("data-selected"))
    assert narrowed < expected
    box = ui_page.locator("#parcoords").bounding_box()
    ui_page.mouse.click(box["x"] + 56, box["y"] + 100)
    assert ui_page.locator("#parcoords").get_attribute("data-selected") == str(expected)
    ui_page.get_by_role("button", name="Clear filters").click()
    assert ui_page.locator("#parcoords").get_attribute("data-selected") == "40"
    assert "brush" not in _query(ui_page)


def test_only_differences_toggle_and_back_button(ui_server: str, ui_page: Any, few: list[str]) -> None:
    ui_page.goto(f"{ui_server}/compare?runs={','.join(few)}")
    assert ui_page.locator("#compare-table tr[data-key='param:seed']").count() == 1
    toggle = ui_page.locator("#only-diff")
    assert toggle.get_attribute("aria-checked") == "false"
    toggle.click()
    ui_page.wait_for_url("**diff=1**")
    assert ui_page.locator("#only-diff").get_attribute("aria-checked") == "true"
    assert ui_page.locator("#compare-table tr[data-key='param:seed']").count() == 0
    assert ui_page.locator("#compare-table tr[data-key='param:lr']").count() == 1
    assert "1 identical hidden" in ui_page.locator("#table-title").inner_text()
    screenshot(ui_page, "compare-only-differences")
    ui_page.go_back()
    assert ui_page.locator("#compare-table tr[data-key='param:seed']").count() == 1
    assert ui_page.locator("#only-diff").get_attribute("aria-checked") == "false"


def test_hostile_names_and_params_are_text(ui_server: str, ui_page: Any, few: list[str]) -> None:
    dialogs: list[str] = []
    ui_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ui_page.goto(f"{ui_server}/compare?runs={','.join(few)}")
    assert ui_page.locator("#compare-table thead a", has_text=HOSTILE).count() == 1
    assert ui_page.locator("#compare-table td", has_text="<script>alert(2)</script>").count() == 1
    assert ui_page.locator("main img").count() == 0
    assert ui_page.evaluate("() => JSON.parse(document.getElementById('compare-data').textContent).data.runs[0].name") == HOSTILE
    assert ui_page.evaluate(CANVAS_PIXELS, "#parcoords")["coloured"] > 50
    screenshot(ui_page, "compare-hostile-names")
    assert dialogs == []


@pytest.mark.parametrize(
    ("case", "runs", "message"),
    [
        ("none", "", "Compare needs at least two runs"),
        ("garbage", "not-a-run,<b>x</b>", "Not a run id: '<b>x</b>'"),
        ("unknown", "0123456789abcdef0123456789abcdef,fedcba9876543210fedcba9876543210", "No run with id 0123456789abcdef"),
        ("too-many", ",".join(f"{i:032x}" for i in range(1001)), "At most 1,000 runs can be compared at once"),
    ],
    ids=lambda value: value if value in ("none", "garbage", "unknown", "too-many") else "",
)
def test_bad_run_lists_are_messages_on_the_page(
    ui_server: str, ui_page: Any, console_errors: list[str], case: str, runs: str, message: str
) -> None:
    response = ui_page.goto(f"{ui_server}/compare?runs={runs}")
    assert response.status == 400
    assert message in ui_page.locator(".error").inner_text()
    assert ui_page.locator("main b").count() == 0
    screenshot(ui_page, f"compare-bad-{case}")
    assert console_errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    console_errors.clear()


def test_overlaid_charts_draw_the_best_runs_and_a_band(ui_server: str, ui_page: Any, curves: list[str]) -> None:
    ui_page.goto(f"{ui_server}/compare?runs={','.join(curves[::-1])}&sort=loss")
    assert "the best 20 runs by loss as lines, the other 4 as a min–max band" in ui_page.locator("#charts-title").inner_text()
    loss = ui_page.locator("figure.overlay[data-key='loss']")
    loss.scroll_into_view_if_needed()
    ui_page.wait_for_selector("figure.overlay[data-key='loss'][data-lines]")
    assert loss.get_attribute("data-lines") == "20" and loss.get_attribute("data-band") == "4"
    pixels = ui_page.evaluate(CANVAS_PIXELS, "figure.overlay[data-key='loss'] .chart-box")
    assert pixels["coloured"] > 500, pixels
    # a metric logged once per run (at step 0) is not a curve: no chart for it
    assert ui_page.locator("figure.overlay[data-key='accuracy']").count() == 0
    # hovering the best run's line names it
    box = loss.locator(".chart-box canvas").first.bounding_box()
    found = False
    for fraction in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for height in range(int(box["height"] * 0.5), int(box["height"]), 3):
            ui_page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + height)
            if "curve-" in loss.locator(".chart-legend").inner_text():
                found = True
                break
        if found:
            break
    assert found
    screenshot(ui_page, "compare-overlaid-charts")


def test_plots_are_drawn_at_the_screens_pixel_density(ui_server: str, browser: Any, few: list[str]) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(f"{ui_server}/compare?runs={','.join(few)}")
        for plot in ("#scatter", "#parcoords"):
            pixels = page.evaluate(CANVAS_PIXELS, plot)
            assert pixels["width"] == 2 * pixels["cssWidth"] and pixels["coloured"] > 100, (plot, pixels)
        screenshot(page, "compare-hidpi")
    finally:
        context.close()


def test_runs_with_nothing_logged_show_empty_states(ui_server: str, ui_page: Any) -> None:
    ids = _log_runs(ui_server, [{"name": "bare-1", "p": {}, "m": {}}, {"name": "bare-2", "p": {}, "m": {}}])
    ui_page.goto(f"{ui_server}/compare?runs={','.join(ids)}")
    text = ui_page.locator("main").inner_text()
    assert "These runs have no params or metrics." in text and "These runs have no metrics." in text
    assert ui_page.locator("#scatter, #parcoords").count() == 0  # no empty plot boxes
    screenshot(ui_page, "compare-nothing-logged")


def test_one_differing_metric_gets_a_two_column_scatter_and_no_lone_axis(ui_server: str, ui_page: Any) -> None:
    """Runs that differ only in r2 (their params alike): the scatter plots r2 against a param, not
    against itself, and parallel coordinates say why they draw nothing instead of one bare axis."""
    ids = _log_runs(ui_server, [
        {"name": f"same-{i}", "p": {"alpha": "0.5", "fit_intercept": "True"}, "m": {"r2": 0.7 + i / 20}}
        for i in range(3)
    ])
    ui_page.goto(f"{ui_server}/compare?runs={','.join(ids)}")
    ui_page.wait_for_function("document.querySelector('#scatter canvas')")
    assert ui_page.locator("#scatter-y").input_value() == "metric:r2"
    assert ui_page.locator("#scatter-x").input_value() == "param:alpha"  # numeric before categorical
    note = ui_page.locator("#parcoords .empty")
    assert "Only metric r2 differs" in note.inner_text() and "two axes" in note.inner_text()
    assert ui_page.locator("#parcoords canvas").count() == 0 and not ui_page.locator("#parcoords-clear").is_visible()
    screenshot(ui_page, "compare-one-metric")

    # two metrics and no params: one against the other
    ids = _log_runs(ui_server, [{"name": f"two-{i}", "p": {}, "m": {"r2": 0.7 + i / 20, "rmse": 1 - i / 10}} for i in range(3)])
    ui_page.goto(f"{ui_server}/compare?runs={','.join(ids)}")
    ui_page.wait_for_function("document.querySelector('#parcoords canvas')")
    assert {ui_page.locator("#scatter-x").input_value(), ui_page.locator("#scatter-y").input_value()} == {
        "metric:r2", "metric:rmse"
    }
