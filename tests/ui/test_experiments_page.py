"""The experiments page in a real browser (chromium) against a real gunicorn tracking service."""

from __future__ import annotations

import uuid
from typing import Any

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
