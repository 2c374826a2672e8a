"""Runs logged with the real `mlflow` client, compared in the browser: what mlflow reads back is
what the compare page shows."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.browser import screenshot

from modelyard.ui.render import format_number


def test_runs_logged_with_mlflow_compare_correctly(ui_server: str, ui_page: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=ui_server)
    experiment_id = client.create_experiment(f"mlflow-compare-{uuid.uuid4().hex[:8]}")
    run_ids = []
    for i, (lr, optimizer) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.001, "adam")]):
        run = client.create_run(experiment_id, run_name=f"mlflow-{i}")
        run_id = run.info.run_id
        client.log_param(run_id, "lr", lr)
        client.log_param(run_id, "optimizer", optimizer)
        client.log_param(run_id, "epochs", 40)
        for step in range(40):
            client.log_metric(run_id, "loss", (1 + i) / (1 + step), step=step)
        client.log_metric(run_id, "accuracy", 0.9 - i / 10)
        client.set_terminated(run_id)
        run_ids.append(run_id)
    runs = {r: client.get_run(r) for r in run_ids}

    ui_page.goto(f"{ui_server}/compare?runs={','.join(run_ids)}&sort=loss")
    headers = ui_page.locator("#compare-table thead th a").all_inner_texts()
    assert headers == ["mlflow-0", "mlflow-1", "mlflow-2"]  # lowest final loss first
    for key, kind in (("loss", "metrics"), ("accuracy", "metrics"), ("lr", "params"), ("optimizer", "params")):
        cells = ui_page.locator(f"#compare-table tr[data-key='{kind[:-1]}:{key}'] td").all_inner_texts()
        expected = [getattr(runs[r].data, kind)[key] for r in run_ids]
        assert cells == [format_number(v) if kind == "metrics" else v for v in expected], key
    statuses = ui_page.locator("#compare-table tbody tr").nth(0).locator("td").all_inner_texts()
    assert statuses == ["FINISHED"] * 3

    ui_page.get_by_role("switch", name="Only differences").click()
    ui_page.wait_for_url("**diff=1**")
    assert ui_page.locator("#compare-table tr[data-key='param:epochs']").count() == 0
    assert ui_page.locator("#compare-table tr[data-key='param:lr']").count() == 1

    loss = ui_page.locator("figure.overlay[data-key='loss']")
    loss.scroll_into_view_if_needed()
    ui_page.wait_for_selector("figure.overlay[data-key='loss'][data-lines='3']")
    assert ui_page.locator("#parcoords").get_attribute("data-selected") == "3"
    assert ui_page.locator("#scatter").get_attribute("data-points") == "3"
    screenshot(ui_page, "compare-mlflow-runs")
