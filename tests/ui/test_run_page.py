"""The run page in a real browser (chromium) against a real gunicorn tracking service, with a run
logged by the real `mlflow` client: a 100,000-step metric, params, tags, artifacts of every preview
kind, a nested run and a registered sklearn model."""

from __future__ import annotations

import json
import math
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.support.browser import screenshot
from tests.support.mlflow_client import mlflow_pointed_at

STEPS = 100_000
HOSTILE = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    child_id: str
    experiment_id: str
    model_id: str
    model_name: str


def _png(width: int = 40, height: int = 24) -> bytes:
    """A small opaque gradient PNG (no imaging library needed)."""
    raw = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (x * 6 % 256, y * 10 % 256, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _write_artifacts(folder: Path) -> None:
    (folder / "data").mkdir(parents=True)
    (folder / "notes.txt").write_text("Training notes\n<script>alert('xss')</script>\n")
    (folder / "config.json").write_text(json.dumps({"lr": 0.01, "layers": [64, 32], "name": HOSTILE}))
    (folder / "config.yaml").write_text("lr: 0.01\nlayers:\n  - 64\n  - 32\n")
    (folder / "data" / "table.csv").write_text(
        "id,score,label\n" + "".join(f"{i},{i / 10},{HOSTILE}\n" for i in range(250))
    )
    (folder / "data" / "table.tsv").write_text("a\tb\n1\t2\n3\t4\n")
    (folder / "plot.png").write_bytes(_png())
    (folder / "page.html").write_text("<html><body><script>alert(1)</script><h1>hi</h1></body></html>")
    (folder / "drawing.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="5"/></svg>'
    )
    (folder / f"{HOSTILE}.txt").write_text(HOSTILE)
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 4)


@pytest.fixture(scope="module")
def logged_run(ui_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedRun]:
    """One run logged once per module with the real mlflow client (env restored afterwards)."""
    import mlflow
    import pandas as pd
    from mlflow.entities import Metric, Param, RunTag
    from sklearn.linear_model import LogisticRegression

    with mlflow_pointed_at(ui_server):
        client = mlflow.MlflowClient()
        experiment_id = client.create_experiment(f"run-page-{uuid.uuid4().hex[:8]}")
        mlflow.set_experiment(experiment_id=experiment_id)
        model_name = f"ui-model-{uuid.uuid4().hex[:6]}"
        with mlflow.start_run(run_name=f"{HOSTILE} main") as run:
            run_id = run.info.run_id
            t0 = run.info.start_time
            for start in range(0, STEPS, 1000):
                metrics = [
                    Metric(
                        "loss",
                        2 * math.exp(-s / 30_000) + 0.1 * math.sin(s / 50) + (5.0 if s == 77_777 else 0.0),
                        t0 + s * 10,
                        s,
                    )
                    for s in range(start, start + 1000)
                ]
                client.log_batch(run_id, metrics=metrics)
            client.log_batch(
                run_id,
                metrics=[Metric("accuracy", 0.5 + s / 100, t0 + s * 1000, s) for s in range(40)],
                params=[Param("lr", "0.01"), Param("optimizer", HOSTILE), Param("epochs", "40")],
                tags=[RunTag("team", HOSTILE), RunTag("stage", "dev")],
            )
            mlflow.set_tag(
                "mlflow.note.content",
                "# Notes\n\nA **bold** run. <script>alert(1)</script> [bad](javascript:alert(1)) [docs](https://example.com)",
            )
            folder = tmp_path_factory.mktemp("artifacts")
            _write_artifacts(folder)
            mlflow.log_artifacts(str(folder))
            frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
            mlflow.log_input(mlflow.data.from_pandas(frame, name="train-frame"), context="training")
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(frame, [0, 1, 0, 1]),
                name="classifier",
                input_example=frame.head(2),
                registered_model_name=model_name,
            )
            with mlflow.start_run(run_name="child-run", nested=True) as child:
                mlflow.log_metric("child_metric", 1.0)
        yield LoggedRun(run.info.run_id, child.info.run_id, experiment_id, info.model_id, model_name)


def _no_dialogs(page: Any) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


def test_overview_shows_what_mlflow_logged_as_text(
    ui_server: str, ui_page: Any, logged_run: LoggedRun
) -> None:
    dialogs = _no_dialogs(ui_page)
    ui_page.goto(f"{ui_server}/runs/{logged_run.run_id}")
    assert ui_page.locator("h1#run-name").inner_text() == f"{HOSTILE} main"
    assert ui_page.locator("main img").count() == 0  # every hostile string is text
    assert ui_page.locator(".status").first.inner_text() == "FINISHED"
    # The description is markdown, without raw HTML or javascript: links.
    assert ui_page.locator("#description .markdown strong").inner_text() == "bold"
    assert ui_page.locator("#description .markdown script").count() == 0
    assert "<script>alert(1)</script>" in ui_page.locator("#description .markdown").inner_text()
    assert ui_page.locator("#description a").evaluate_all("els => els.map(e => e.getAttribute('href'))") == [
        "https://example.com"
    ]
    params = ui_page.locator("#params-table")
    assert params.locator("tr", has_text="optimizer").locator("td").nth(1).inner_text() == HOSTILE
    assert ui_page.locator("#tags-table tr", has_text="team").locator("td").nth(1).inner_text() == HOSTILE
    loss = ui_page.locator("#metrics-table tr", has_text="loss")
    assert loss.locator("td").nth(2).inner_text() == str(STEPS - 1)
    assert ui_page.locator("#children a", has_text="child-run").count() == 1
    dataset = ui_page.locator("#datasets tbody tr")
    assert dataset.locator("td").nth(0).inner_text() == "train-frame"
    assert dataset.locator("td").nth(1).inner_text() == "training"
    assert ui_page.locator("#logged-models td", has_text=logged_run.model_id).count() == 1
    assert ui_page.locator("#model-versions a", has_text=logged_run.model_name).count() == 1
    # The search box filters the table in place.
    ui_page.fill("input[data-filter='#params-table']", "epo")
    assert params.locator("tbody tr:visible").count() == 1
    screenshot(ui_page, "run-overview")
    ui_page.emulate_media(color_scheme="dark")
    screenshot(ui_page, "run-overview-dark")

    ui_page.goto(f"{ui_server}/runs/{logged_run.child_id}")
    assert ui_page.locator(".run-facts a", has_text=f"{HOSTILE} main").count() == 1  # the parent
    assert dialogs == []


def test_metric_chart_draws_and_zoom_loads_full_resolution(
    ui_server: str, ui_page: Any, logged_run: LoggedRun
) -> None:
    series: list[dict[str, Any]] = []
    ui_page.on(
        "response",
        lambda r: series.append({"url": r.url, **r.json()}) if "/metric-series?" in r.url and r.ok else None,
    )
    ui_page.goto(f"{ui_server}/runs/{logged_run.run_id}?tab=charts&keys=loss")
    card = ui_page.locator(".chart-card[data-key='loss']")
    card.locator("canvas").wait_for()
    ui_page.wait_for_function(
        "() => document.querySelector(\".chart-card[data-key='loss']\").dataset.sampled !== undefined"
    )
    first = series[-1]
    # One request for the first load: the page's <link rel=preload>, which the chart's script reused.
    assert (
        len(series) == 1
        and ui_page.locator("link[rel=preload][as=fetch]").get_attribute("href") in first["url"]
    )
    assert first["sampled"] and first["points_in_range"] == STEPS and len(first["x"]) <= 1500
    assert first["summary"]["count"] == STEPS
    assert first["summary"]["max"] == pytest.approx(
        2 * math.exp(-77_777 / 30_000) + 0.1 * math.sin(77_777 / 50) + 5
    )
    assert card.locator("[data-stat=count]").inner_text().replace(",", "") == str(STEPS)
    assert _drawn_pixels(card) > 500
    screenshot(ui_page, "run-chart")

    # Drag across a tenth of the plot: the zoomed range comes back at full resolution.
    box = card.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    ui_page.mouse.move(box["x"] + box["width"] * 0.45, y)
    ui_page.mouse.down()
    ui_page.mouse.move(box["x"] + box["width"] * 0.46, y, steps=5)
    with ui_page.expect_response(lambda r: "/metric-series?" in r.url and "min=" in r.url) as zoomed:
        ui_page.mouse.up()
    body = zoomed.value.json()
    assert "max=" in zoomed.value.url and not body["sampled"]
    assert body["points_in_range"] == len(body["x"]) < 1500 and body["x"] == list(
        range(body["x"][0], body["x"][-1] + 1)
    )
    ui_page.wait_for_function(
        "() => document.querySelector(\".chart-card[data-key='loss']\").dataset.sampled === 'false'"
    )
    assert card.locator(".reset-zoom").is_visible()
    assert _drawn_pixels(card) > 300
    screenshot(ui_page, "run-chart-zoomed")

    # Options: log scale, wall time, smoothing — all in the URL.
    ui_page.select_option("select[name=scale]", "log")
    with ui_page.expect_response(lambda r: "/metric-series?" in r.url and "x=relative" in r.url) as relative:
        ui_page.select_option("select[name=x]", "relative")
    body = relative.value.json()
    assert body["x_axis"] == "relative" and body["x"][0] == 0 and body["sampled"]
    ui_page.wait_for_function(
        "() => location.search.includes('x=relative') && location.search.includes('scale=log')"
    )
    ui_page.locator("input[name=smooth]").fill("0.9")
    ui_page.locator("input[name=smooth]").dispatch_event("change")
    ui_page.wait_for_function("() => location.search.includes('smooth=0.9')")
    assert _drawn_pixels(card) > 500
    screenshot(ui_page, "run-chart-log-relative-smoothed")

    # The dark theme follows the system setting; the chart takes its colours from the page's.
    ui_page.emulate_media(color_scheme="dark")
    ui_page.reload()
    ui_page.wait_for_function(
        "() => document.querySelector(\".chart-card[data-key='loss']\").dataset.sampled === 'true'"
    )
    assert _drawn_pixels(card) > 500
    screenshot(ui_page, "run-chart-dark")


def _drawn_pixels(card: Any) -> int:
    """Pixels of the chart's canvas that are not blank (uPlot draws on one canvas)."""
    return int(
        card.locator("canvas").evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
        )
    )


def test_artifact_previews_of_each_kind(ui_server: str, ui_page: Any, logged_run: LoggedRun) -> None:
    dialogs = _no_dialogs(ui_page)
    base = f"{ui_server}/runs/{logged_run.run_id}"
    ui_page.goto(f"{base}?tab=artifacts")
    tree = ui_page.locator(".artifact-tree")
    assert tree.locator("a.file", has_text=f"{HOSTILE}.txt").count() == 1
    screenshot(ui_page, "run-artifacts")

    def open_file(name: str, kind: str) -> Any:
        tree.locator("a.file", has_text=name).first.click()
        heading = ui_page.locator("h3", has_text=name)
        ui_page.locator(f"#artifact-preview .preview[data-kind={kind}]", has=heading).wait_for()
        return ui_page.locator("#artifact-preview")

    preview = open_file("notes.txt", "text")
    assert "<script>alert('xss')</script>" in preview.locator("pre").inner_text()
    assert ui_page.url.endswith("?tab=artifacts&path=notes.txt")  # the URL names the file
    preview = open_file("config.json", "json")
    assert json.loads(preview.locator("pre").inner_text())["layers"] == [64, 32]
    preview = open_file("config.yaml", "yaml")
    assert "layers:" in preview.locator("pre").inner_text()
    preview = open_file("page.html", "text")
    assert "<script>alert(1)</script>" in preview.locator("pre").inner_text()
    preview = open_file("drawing.svg", "text")
    assert preview.locator("svg, img").count() == 0
    preview = open_file("weights.bin", "binary")
    preview = open_file("plot.png", "image")
    ui_page.wait_for_function("() => document.querySelector('img.preview-image').naturalWidth === 40")
    screenshot(ui_page, "run-artifact-image")
    preview = open_file(f"{HOSTILE}.txt", "text")
    assert preview.locator("pre").inner_text() == HOSTILE

    # Folders load their entries when opened.
    tree.locator("summary.folder", has_text="data").click()
    preview = open_file("table.csv", "table")
    assert preview.locator("thead th").all_inner_texts() == ["id", "score", "label"]
    assert preview.locator("tbody tr").count() == 100
    assert preview.locator("tbody tr").first.locator("td").nth(2).inner_text() == HOSTILE
    screenshot(ui_page, "run-artifact-csv")
    preview = open_file("table.tsv", "table")
    assert preview.locator("tbody tr").count() == 2

    # The logged model's files (MLflow 3 keeps them outside the run's artifacts): MLmodel preview.
    ui_page.locator("details.tree-root", has_text=logged_run.model_id).locator("summary").first.click()
    preview = open_file("MLmodel", "mlmodel")
    assert "sklearn" in preview.locator(".mlmodel-flavors").inner_text()
    assert "python_function" in preview.locator(".mlmodel-flavors").inner_text()
    inputs = preview.locator("table.signature[data-part=inputs] tbody tr")
    assert inputs.locator("td:first-child").all_inner_texts() == ["x1", "x2"]
    assert preview.locator("table.input-example thead th").all_inner_texts() == ["x1", "x2"]
    assert preview.locator("table.input-example tbody tr").count() == 2
    screenshot(ui_page, "run-artifact-mlmodel")

    # A shared link opens the same file, its folders expanded; previews never sniff.
    ui_page.goto(f"{base}?tab=artifacts&path=data/table.csv")
    assert ui_page.locator("#artifact-preview .preview[data-kind=table]").count() == 1
    assert ui_page.locator("a.file[aria-current]").inner_text() == "table.csv"
    download = ui_page.locator("#artifact-preview a", has_text="Download").get_attribute("href")
    assert download.startswith("/api/2.0/mlflow-artifacts/artifacts/")  # streamed by the artifacts API
    response = requests.get(ui_server + download, timeout=10)
    assert response.status_code == 200 and response.text.startswith("id,score,label")
    for path in ("page.html", "drawing.svg", "plot.png"):
        raw = requests.get(f"{base}/artifacts/file", params={"path": path}, timeout=10)
        assert raw.headers["x-content-type-options"] == "nosniff"
        assert raw.headers["content-type"] == (
            "image/png" if path.endswith(".png") else "application/octet-stream"
        )
        assert "sandbox" in raw.headers["content-security-policy"]
        fragment = requests.get(f"{base}/artifacts/preview", params={"path": path}, timeout=10)
        assert fragment.headers["x-content-type-options"] == "nosniff"
    assert dialogs == []


def test_edit_name_description_and_tags(ui_server: str, ui_page: Any, logged_run: LoggedRun) -> None:
    created = requests.post(
        f"{ui_server}/api/2.0/mlflow/runs/create",
        json={"experiment_id": logged_run.experiment_id, "run_name": "editable"},
        timeout=10,
    )
    run_id = created.json()["run"]["info"]["run_id"]
    dialogs = _no_dialogs(ui_page)
    ui_page.goto(f"{ui_server}/runs/{run_id}")

    ui_page.locator(".run-head summary", has_text="Rename").click()
    ui_page.locator("form[action$='/rename'] input[name=name]").fill(f"renamed {HOSTILE}")
    with ui_page.expect_navigation():
        ui_page.locator("form[action$='/rename'] button").click()
    assert ui_page.locator("h1#run-name").inner_text() == f"renamed {HOSTILE}"

    ui_page.locator("#description summary", has_text="Edit").click()
    ui_page.locator("textarea[name=description]").fill("## Result\n\n*good* <img src=x onerror=alert(1)>")
    with ui_page.expect_navigation():
        ui_page.locator("form[action$='/description'] button").click()
    assert ui_page.locator("#description .markdown h2").inner_text() == "Result"
    assert ui_page.locator("#description .markdown em").inner_text() == "good"
    assert ui_page.locator("main img").count() == 0

    ui_page.locator("#tags summary", has_text="Add tag").click()
    ui_page.locator("#tags form.card input[name=key]").first.fill("owner")
    ui_page.locator("#tags form.card input[name=value]").first.fill(HOSTILE)
    with ui_page.expect_navigation():
        ui_page.locator("#tags form.card button", has_text="Add").click()
    row = ui_page.locator("#tags-table tr", has_text="owner")
    assert row.locator("td").nth(1).inner_text() == HOSTILE
    row.locator("summary", has_text="Edit").click()
    row.locator("input[name=value]").fill("alice")
    with ui_page.expect_navigation():
        row.locator("button", has_text="Save").click()
    assert ui_page.locator("#tags-table tr", has_text="owner").locator("td").nth(1).inner_text() == "alice"
    screenshot(ui_page, "run-edited")
    with ui_page.expect_navigation():
        ui_page.locator("#tags-table tr", has_text="owner").get_by_role(
            "button", name="Delete tag owner"
        ).click()
    assert ui_page.locator("#tags-table").count() == 0

    tags = requests.get(f"{ui_server}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=10).json()
    values = {t["key"]: t["value"] for t in tags["run"]["data"]["tags"]}
    assert values["mlflow.runName"] == f"renamed {HOSTILE}" and "owner" not in values
    assert values["mlflow.note.content"].startswith("## Result")
    # Without the page's token the same POST is refused.
    forged = requests.post(f"{ui_server}/runs/{run_id}/tags", data={"key": "x", "value": "y"}, timeout=10)
    assert forged.status_code == 403
    assert dialogs == []


def test_the_nav_runs_the_whole_height_of_a_long_page(ui_server: str, ui_page: Any) -> None:
    """On a page taller than the screen the left nav's background and border reach the page's end (they
    used to stop at the first screen's height) and its links stay in view while scrolling."""
    api = f"{ui_server}/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create", json={"name": f"long-{uuid.uuid4().hex[:8]}"}, timeout=10)
    run_id = requests.post(
        f"{api}/runs/create", json={"experiment_id": experiment.json()["experiment_id"]}, timeout=10
    ).json()["run"]["info"]["run_id"]
    notes = "\n\n".join(f"Note {i}: what this run tried." for i in range(80))  # a long description
    requests.post(
        f"{api}/runs/set-tag", json={"run_id": run_id, "key": "mlflow.note.content", "value": notes}, timeout=10
    ).raise_for_status()

    ui_page.goto(f"{ui_server}/runs/{run_id}")
    page_height = ui_page.evaluate("document.documentElement.scrollHeight")
    assert page_height > 2 * 768  # a long page
    nav = ui_page.locator("nav.side").bounding_box()
    assert nav["y"] == 0 and abs(nav["height"] - page_height) <= 1
    screenshot(ui_page, "run-long-page-nav")
    ui_page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    brand = ui_page.locator("nav.side .brand").bounding_box()  # relative to the viewport
    assert 0 <= brand["y"] < 100
