"""The experiments page in a real browser (chromium) against a real gunicorn tracking service."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from tests.support.browser import screenshot


def _create(base: str, name: str) -> str:
    response = requests.post(f"{base}/api/2.0/mlflow/experiments/create", json={"name": name}, timeout=10)
    response.raise_for_status()
    return str(response.json()["experiment_id"])


def test_root_opens_the_experiments_page_with_counts(ui_server: str, ui_page: Any) -> None:
    name = f"exp-{uuid.uuid4().hex[:8]}"
    experiment_id = _create(ui_server, name)
    for _ in range(3):
        requests.post(
            f"{ui_server}/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id}, timeout=10
        ).raise_for_status()

    ui_page.goto(ui_server + "/")
    assert ui_page.url.endswith("/experiments")
    row = ui_page.locator("#experiments tbody tr", has_text=name)
    assert row.locator("td.num").inner_text() == "3"
    # Last activity is shown in the viewer's local time, with UTC on hover.
    assert "UTC" in row.locator("time").get_attribute("title")
    screenshot(ui_page, "experiments")


def test_search_create_rename_delete_restore(ui_server: str, ui_page: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    ui_page.goto(ui_server + "/experiments")
    ui_page.locator("summary", has_text="New experiment").click()
    ui_page.fill("input[name=name]", f"created-{tag}")
    ui_page.get_by_role("button", name="Create").click()
    ui_page.wait_for_url("**/experiments/*")  # the new experiment's runs page
    assert ui_page.locator("h1").inner_text() == f"created-{tag}"

    ui_page.goto(f"{ui_server}/experiments?q=created-{tag}")
    rows = ui_page.locator("#experiments tbody tr")
    assert rows.count() == 1
    rows.first.locator("summary", has_text="Rename").click()
    ui_page.locator("form[action$='/rename'] input[name=name]").fill(f"renamed-{tag}")
    with ui_page.expect_navigation():
        ui_page.locator("form[action$='/rename'] button").click()
    ui_page.goto(f"{ui_server}/experiments?q={tag}")
    assert ui_page.locator("#experiments tbody tr", has_text=f"renamed-{tag}").count() == 1

    ui_page.goto(f"{ui_server}/experiments?q={tag}")
    ui_page.locator("#experiments tbody tr").first.locator("summary", has_text="Delete").click()
    with ui_page.expect_navigation():
        ui_page.locator("form[action$='/delete'] button", has_text="Delete").click()
    assert ui_page.locator("#experiments", has_text=f"renamed-{tag}").count() == 0

    ui_page.goto(f"{ui_server}/experiments?view=deleted&q={tag}")
    screenshot(ui_page, "experiments-deleted")
    with ui_page.expect_navigation():
        ui_page.locator("#experiments tbody tr").first.get_by_role("button", name="Restore").click()
    ui_page.goto(f"{ui_server}/experiments?q={tag}")
    assert ui_page.locator("#experiments tbody tr").count() == 1


def test_a_hostile_name_is_shown_as_text(ui_server: str, ui_page: Any) -> None:
    hostile = f"<img src=x onerror=alert(1)>{uuid.uuid4().hex[:6]}"
    _create(ui_server, hostile)
    dialogs: list[str] = []
    ui_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ui_page.goto(ui_server + "/experiments")
    assert ui_page.locator("#experiments a", has_text=hostile).count() == 1
    assert ui_page.locator("#experiments img").count() == 0
    assert dialogs == []


def test_a_bad_query_value_is_a_message_on_the_page(
    ui_server: str, ui_page: Any, console_errors: list[str]
) -> None:
    response = ui_page.goto(ui_server + "/experiments?view=sideways")
    assert response.status == 400
    assert "view must be one of" in ui_page.locator(".error").inner_text()
    assert console_errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    console_errors.clear()


def _background_luminance(page: Any) -> float:
    """The page background's relative luminance (0 black .. 1 white)."""
    rgb = page.evaluate(
        "() => getComputedStyle(document.body).backgroundColor.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number)"
    )
    return float(0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255


def test_first_visit_shows_description_and_tags_no_dialog_works_by_keyboard_and_follows_the_theme(
    ui_server: str, ui_page: Any, browser: Any
) -> None:
    name = f"look-{uuid.uuid4().hex[:8]}"
    experiment_id = _create(ui_server, name)
    for key, value in (("mlflow.note.content", "Churn model, <b>v2</b> data"), ("team", "risk")):
        requests.post(
            f"{ui_server}/api/2.0/mlflow/experiments/set-experiment-tag",
            json={"experiment_id": experiment_id, "key": key, "value": value},
            timeout=10,
        ).raise_for_status()
    ui_page.goto(f"{ui_server}/experiments?q={name}")
    row = ui_page.locator("#experiments tbody tr", has_text=name)
    assert row.locator("td.clip").inner_text() == "Churn model, <b>v2</b> data"  # the description, as text
    assert row.locator("td.tags .chip").all_inner_texts() == ["team=risk"]
    # Nothing stands between a first visitor and the page: no dialog, modal, banner or overlay.
    assert ui_page.locator("dialog, [role=dialog], [role=alertdialog], [aria-modal=true], .modal, .banner, .toast").count() == 0
    covering = ui_page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter(e => {"
        " const s = getComputedStyle(e), r = e.getBoundingClientRect();"
        " return s.position === 'fixed' && r.width * r.height > innerWidth * innerHeight / 4; }).length"
    )
    assert covering == 0
    # By keyboard alone: Tab reaches the experiment's link, Enter opens its runs.
    link = f"/experiments/{experiment_id}"
    for _ in range(60):
        ui_page.keyboard.press("Tab")
        if ui_page.evaluate("() => document.activeElement && document.activeElement.getAttribute('href')") == link:
            break
    else:
        raise AssertionError("Tab never reached the experiment's link")
    with ui_page.expect_navigation():
        ui_page.keyboard.press("Enter")
    assert ui_page.url.endswith(link)
    # Light and dark themes follow the system setting.
    assert _background_luminance(ui_page) > 0.8
    dark = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme="dark")
    try:
        page = dark.new_page()
        page.goto(f"{ui_server}/experiments?q={name}")
        assert _background_luminance(page) < 0.25
        screenshot(page, "experiments-dark")
    finally:
        dark.close()


def test_links_the_mlflow_client_prints_open_modelyards_pages(ui_server: str, ui_page: Any) -> None:
    """`mlflow` prints `View run NAME at: http://HOST/#/experiments/N/runs/ID` and `View experiment at:
    http://HOST/#/experiments/N`; the fragment never reaches the server, so `/` forwards it in the browser."""
    experiment_id = _create(ui_server, f"links-{uuid.uuid4().hex[:8]}")
    info = requests.post(
        f"{ui_server}/api/2.0/mlflow/runs/create",
        json={"experiment_id": experiment_id, "run_name": "linked-run"},
        timeout=10,
    ).json()["run"]["info"]
    run_id = info["run_id"]
    model = f"linked model/{uuid.uuid4().hex[:6]}"  # a space and a slash, as MLflow's UI encodes them
    requests.post(
        f"{ui_server}/api/2.0/mlflow/registered-models/create", json={"name": model}, timeout=10
    ).raise_for_status()
    requests.post(
        f"{ui_server}/api/2.0/mlflow/model-versions/create", json={"name": model, "source": f"{info['artifact_uri']}/model", "run_id": run_id},
        timeout=10,
    ).raise_for_status()

    ui_page.goto(f"{ui_server}/#/experiments/{experiment_id}/runs/{run_id}")
    ui_page.wait_for_url(f"{ui_server}/runs/{run_id}")
    assert "linked-run" in ui_page.locator("h1").inner_text()

    ui_page.goto(f"{ui_server}/#/experiments/{experiment_id}")
    ui_page.wait_for_url(f"{ui_server}/experiments/{experiment_id}")
    ui_page.wait_for_selector("#total")

    encoded = quote(model, safe="")
    ui_page.goto(f"{ui_server}/#/models/{encoded}")
    ui_page.wait_for_url(f"{ui_server}/model?name={encoded}")
    assert model in ui_page.locator("h1").inner_text()
    ui_page.goto(f"{ui_server}/#/models/{encoded}/versions/1")
    ui_page.wait_for_url(f"{ui_server}/model-version?name={encoded}&version=1")

    # Anything else stays on the experiments list: no URL is made from arbitrary fragment text.
    for fragment in ("#/experiments/1x/runs/abc", "#/experiments/1/runs/a.b", "#//evil.example/x", "#top"):
        ui_page.goto(f"{ui_server}/{fragment}")
        ui_page.wait_for_selector("h1")
        assert urlsplit(ui_page.url).path == "/experiments", fragment
