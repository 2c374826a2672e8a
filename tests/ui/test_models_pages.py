"""Models and model pages in a real browser: aliases, stages, the history timeline and rollback."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

import requests
from tests.support.browser import screenshot

API = "/api/2.0/mlflow"


def _registered(base: str, name: str, versions: int, **model: Any) -> None:
    experiment = requests.post(f"{base}{API}/experiments/create", json={"name": f"e-{uuid.uuid4().hex[:8]}"}, timeout=10)
    run = requests.post(f"{base}{API}/runs/create", json={"experiment_id": experiment.json()["experiment_id"]}, timeout=10)
    info = run.json()["run"]["info"]
    requests.post(f"{base}{API}/registered-models/create", json={"name": name, **model}, timeout=10).raise_for_status()
    for _ in range(versions):
        requests.post(
            f"{base}{API}/model-versions/create",
            json={"name": name, "source": f"{info['artifact_uri']}/model", "run_id": info["run_id"]},
            timeout=10,
        ).raise_for_status()


def _alias(base: str, name: str, alias: str) -> str:
    got = requests.get(f"{base}{API}/registered-models/alias", params={"name": name, "alias": alias}, timeout=10)
    return str(got.json()["model_version"]["version"])


def test_alias_move_and_rollback_from_the_timeline(ui_server: str, ui_page: Any) -> None:
    name = f"churn-{uuid.uuid4().hex[:6]}"
    _registered(ui_server, name, 2, description="predicts churn")
    ui_page.goto(f"{ui_server}/models?q={name}")
    ui_page.locator("#models a", has_text=name).click()
    ui_page.wait_for_url("**/model?name=*")

    for version in ("1", "2"):
        row = ui_page.locator(f"#v{version}")
        row.locator("summary", has_text="Alias").click()
        row.locator("input[name=alias]").fill("champion")
        with ui_page.expect_navigation():
            row.get_by_role("button", name="Set alias").click()
    assert _alias(ui_server, name, "champion") == "2"
    timeline = ui_page.locator("#timeline")
    assert "alias @champion → v2 (was v1)" in " ".join(timeline.locator("li").first.inner_text().split())
    screenshot(ui_page, "model-before-rollback")

    with ui_page.expect_navigation():
        timeline.locator("li").first.get_by_role("button", name="Roll back").click()
    assert _alias(ui_server, name, "champion") == "1"
    newest = " ".join(ui_page.locator("#timeline li").first.inner_text().split())
    assert "alias @champion → v1 (was v2)" in newest and "rollback" in newest
    assert ui_page.locator("#timeline li", has_text="alias @champion").count() == 3  # set, moved, rolled back
    screenshot(ui_page, "model-after-rollback")


def test_models_page_filters_and_a_model_is_created_tagged_renamed_and_deleted(ui_server: str, ui_page: Any) -> None:
    """The list: the registry's filter grammar, the latest version of each stage, aliases as chips. A
    model made with the page's form, tagged, renamed and deleted (its name typed) from its page."""
    suffix = uuid.uuid4().hex[:6]
    name = f"fraud-{suffix}"
    _registered(ui_server, name, 3, tags=[{"key": "team", "value": f"risk-{suffix}"}])
    for version, stage in (("1", "Production"), ("2", "Staging")):
        requests.post(
            f"{ui_server}{API}/model-versions/transition-stage",
            json={"name": name, "version": version, "stage": stage, "archive_existing_versions": False},
            timeout=10,
        ).raise_for_status()
    requests.post(
        f"{ui_server}{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": "3"}, timeout=10
    ).raise_for_status()
    _registered(ui_server, f"other-{suffix}", 1, tags=[{"key": "team", "value": "growth"}])

    ui_page.goto(f"{ui_server}/models")
    ui_page.fill("input[name=filter]", f"tags.team = 'risk-{suffix}' and name LIKE 'fraud-%'")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Search").click()
    rows = ui_page.locator("#models tbody tr")
    assert rows.count() == 1 and rows.locator("td").first.inner_text() == name
    latest = rows.locator("td").nth(1).locator(".chip").all_inner_texts()
    assert sorted(latest) == ["v1 · Production", "v2 · Staging", "v3"]
    assert rows.locator(".chip.alias").all_inner_texts() == ["@champion → v3"]
    assert rows.locator("td.tags").inner_text() == f"team=risk-{suffix}"
    screenshot(ui_page, "models")

    made = f"created-{suffix}"
    ui_page.locator("summary", has_text="New model").click()
    ui_page.fill("form[action='/models'] input[name=name]", made)
    ui_page.fill("form[action='/models'] textarea[name=description]", "made in the browser")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Create").click()
    assert ui_page.locator("h1").inner_text() == made
    assert ui_page.locator("#description").inner_text() == "made in the browser"
    ui_page.fill("input[name=key]", "owner")
    ui_page.fill("input[name=value]", "<b>risk</b>")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Set tag").click()
    assert ui_page.locator("#model-tags tr", has_text="owner").locator("td").nth(1).inner_text() == "<b>risk</b>"

    ui_page.locator("summary", has_text="Rename").click()
    ui_page.fill("input[name=new_name]", f"{made}-v2")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Rename").click()
    assert ui_page.locator("h1").inner_text() == f"{made}-v2"
    kinds = " ".join(ui_page.locator("#timeline").inner_text().split())
    assert "renamed" in kinds and "tag" in kinds

    ui_page.locator("#delete-model summary").click()
    ui_page.fill("input[name=confirm_name]", f"{made}-v2")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Delete model").click()
    assert ui_page.url.endswith("/models")
    assert ui_page.locator("#models a", has_text=made).count() == 0
    assert requests.get(f"{ui_server}{API}/registered-models/get", params={"name": f"{made}-v2"}, timeout=10).status_code == 404


def test_stage_transition_with_archive_existing(ui_server: str, ui_page: Any) -> None:
    name = f"stages-{uuid.uuid4().hex[:6]}"
    _registered(ui_server, name, 2)
    ui_page.goto(f"{ui_server}/model?name={quote(name)}")
    for version in ("1", "2"):
        row = ui_page.locator(f"#v{version}")
        row.locator("summary", has_text="Stage").click()
        row.locator("select[name=stage]").select_option("Production")
        row.locator("input[name=archive_existing]").check()
        with ui_page.expect_navigation():
            row.get_by_role("button", name="Transition").click()
    assert ui_page.locator("#v1 .stage").inner_text() == "Archived"
    assert ui_page.locator("#v2 .stage").inner_text() == "Production"
    assert ui_page.locator("#timeline li", has_text="archived by v2").count() == 1
    screenshot(ui_page, "model-stages")


def test_hostile_names_descriptions_and_tags_are_text(ui_server: str, ui_page: Any) -> None:
    hostile = f"<img src=x onerror=alert(1)>-{uuid.uuid4().hex[:6]}"
    _registered(
        ui_server, hostile, 1, description="<script>alert(2)</script>", tags=[{"key": "note", "value": "<i>v</i>"}]
    )
    dialogs: list[str] = []
    ui_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ui_page.goto(f"{ui_server}/models")
    assert ui_page.locator("#models a", has_text=hostile).count() == 1
    ui_page.goto(f"{ui_server}/model?name={quote(hostile)}")
    assert ui_page.locator("h1").inner_text() == hostile
    assert ui_page.locator("#description").inner_text() == "<script>alert(2)</script>"
    assert ui_page.locator("#model-tags", has_text="<i>v</i>").count() == 1
    assert ui_page.locator("main img, main b, main i, main script").count() == 0
    assert dialogs == []
    screenshot(ui_page, "model-hostile")


def test_tags_nested_deeper_than_a_json_parser_goes_still_render(ui_server: str, ui_page: Any) -> None:
    """A deploy tag (read as JSON by the model and version pages) nested 5,000 deep: Python's json raises
    RecursionError for it, which was a 500."""
    name = f"deep-{uuid.uuid4().hex[:6]}"
    _registered(ui_server, name, 1)
    for key in ("modelyard.deploy.prod",):
        requests.post(f"{ui_server}{API}/model-versions/set-tag", json={"name": name, "version": "1", "key": key, "value": "[" * 5000},
                      timeout=10).raise_for_status()  # fmt: skip
    for url in (f"/model?name={name}", f"/model-version?name={name}&version=1"):
        response = ui_page.goto(ui_server + url)
        assert response is not None and response.status == 200, url


def test_an_unknown_model_is_a_404_page(ui_server: str, ui_page: Any, console_errors: list[str]) -> None:
    response = ui_page.goto(f"{ui_server}/model?name=no-such-model-{uuid.uuid4().hex[:6]}")
    assert response.status == 404
    assert "not found" in ui_page.locator(".error").inner_text()
    console_errors.clear()


def test_version_page_links_its_run_and_edits_its_description(ui_server: str, ui_page: Any) -> None:
    name = f"ver-{uuid.uuid4().hex[:6]}"
    _registered(ui_server, name, 1)
    ui_page.goto(f"{ui_server}/model?name={quote(name)}")
    ui_page.locator("#v1 a", has_text="v1").click()
    ui_page.wait_for_url("**/model-version?*")
    run_link = ui_page.locator("#version-facts a[href^='/runs/']")
    assert run_link.count() == 1
    assert "not deployed" in ui_page.locator("#lineage").inner_text()
    assert ui_page.locator("details.env-file").count() == 0  # no MLmodel here: no environment files offered
    ui_page.locator("summary", has_text="Edit description").click()
    ui_page.fill("textarea[name=description]", "**validated** on March data\n\n- <b>raw</b> stays text")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Save").click()
    # Markdown, as the run page's description: emphasis and lists render, raw HTML shows as text.
    assert ui_page.locator("#description strong").inner_text() == "validated"
    assert ui_page.locator("#description li").inner_text() == "<b>raw</b> stays text"
    assert ui_page.locator("#description b").count() == 0
    assert "version description set" in ui_page.locator("#timeline").inner_text()
    screenshot(ui_page, "model-version")
    href = run_link.get_attribute("href")
    ui_page.goto(f"{ui_server}{href}")  # version -> run
    assert ui_page.url.endswith(href)


def test_version_page_shows_the_signature_and_input_example(ui_server: str, ui_page: Any) -> None:
    """A version logged by the real mlflow client: its MLmodel's signature and input example as tables."""
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    name = f"signed-{uuid.uuid4().hex[:6]}"
    frame = pd.DataFrame({"age": np.arange(10.0), "<b>bmi</b>": np.arange(10.0) / 3})
    model = LinearRegression().fit(frame, frame["age"] * 2)
    mlflow.set_tracking_uri(ui_server)
    try:
        mlflow.set_experiment(f"exp-{name}")
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model, name="model", input_example=frame.head(3), serialization_format="cloudpickle",
                registered_model_name=name,
            )  # fmt: skip
    finally:
        mlflow.set_tracking_uri(None)
    ui_page.goto(f"{ui_server}/model-version?name={quote(name)}&version=1")
    inputs = ui_page.locator("#model-files table.signature[data-part=inputs]")
    assert inputs.locator("tbody tr").count() == 2
    assert "<b>bmi</b>" in inputs.inner_text()  # a column name is text, not markup
    example = ui_page.locator("#model-files table.input-example")
    assert example.locator("tbody tr").count() == 3
    assert "sklearn" in ui_page.locator("#model-files .mlmodel-flavors").inner_text()
    facts = dict(zip(ui_page.locator("#model-files dl.facts dt").all_inner_texts(),
                     ui_page.locator("#model-files dl.facts dd").all_inner_texts(), strict=True))  # fmt: skip
    assert re.fullmatch(r"\d+(\.\d)? (Bytes|kB)", facts["Size"]), facts  # the MLmodel's model_size_bytes
    for path, expected in (("conda.yaml", "dependencies"), ("python_env.yaml", "build_dependencies")):
        section = ui_page.locator("#model-files details.env-file", has_text=path)
        section.locator("summary").click()  # the file loads when its section opens
        ui_page.wait_for_function(
            "([path, text]) => [...document.querySelectorAll('details.env-file')].some("
            "d => d.textContent.includes(path) && d.querySelector('.env-body').textContent.includes(text))",
            arg=[path, expected],
        )
    ui_page.evaluate("window.scrollTo(0, 0)")  # opening the sections scrolled: sticky table heads would stick mid-page
    screenshot(ui_page, "model-version-signature")
    without_js = requests.get(f"{ui_server}/model-version/file", params={"name": name, "version": "1", "path": "conda.yaml"}, timeout=10)
    assert without_js.status_code == 200 and "<html" in without_js.text and "dependencies" in without_js.text
    other = requests.get(f"{ui_server}/model-version/file", params={"name": name, "version": "1", "path": "model.pkl"}, timeout=10)
    assert other.status_code == 400  # environment files only
