"""The Deployments pages after real `modelyard deploy create` and a canary `update --mode add` to the
local endpoint service: both variants with their model versions and weights, and the deploy history."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.browser import screenshot

from modelyard.devstack.process import free_port
from modelyard.devstack.services import GunicornService

pytestmark = [pytest.mark.s3, pytest.mark.compat, pytest.mark.slow]
MODEL = "ui-deploy"
ENDPOINT = "ui-canary"


def _register(version_offset: float) -> str:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model = LinearRegression().fit(x, x["a"] * 2 + version_offset)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL, input_example=x.head(2))
    return str(info.registered_model_version)


def test_a_canary_shows_both_variants_their_weights_and_the_history(
    tracking_server: Callable[..., str],
    endpoints: GunicornService,
    s3_endpoint: str,
    s3_bucket: str,
    ui_page: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    aws = {"AWS_ENDPOINT_URL_SAGEMAKER": endpoints.url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoints.url}
    url = tracking_server(env={**aws, "AWS_DEFAULT_REGION": "us-east-1"})
    monkeypatch.setattr(mlflow, "get_tracking_uri", mlflow.get_tracking_uri)
    mlflow.set_tracking_uri(url)
    try:
        mlflow.set_experiment("ui-deploy")
        first, second = _register(0.0), _register(5.0)
    finally:
        mlflow.set_tracking_uri(None)
    env = {
        **os.environ, **aws, "MLFLOW_TRACKING_URI": url, "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "MODELYARD_DEPLOY_BUCKET": s3_bucket,
    }  # fmt: skip
    cli = str(Path(sys.executable).parent / "modelyard")
    for args in (
        ["create", "--endpoint", ENDPOINT, "--model-uri", f"models:/{MODEL}/{first}"],
        ["update", "--endpoint", ENDPOINT, "--model-uri", f"models:/{MODEL}/{second}", "--mode", "add",
         "--variant-weight", "0.25"],
    ):  # fmt: skip
        done = subprocess.run([cli, "deploy", *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    ui_page.goto(f"{url}/deployments")
    row = ui_page.locator("#endpoints tbody tr", has_text=ENDPOINT)
    assert row.locator(".status").inner_text() == "InService"
    chips = row.locator(".chip").all_inner_texts()
    assert chips == [f"{MODEL} v{first} · 1", f"{MODEL} v{second} · 0.25"]
    screenshot(ui_page, "deployments")

    row.locator("a", has_text=ENDPOINT).click()
    ui_page.wait_for_url(f"**/deployments/{ENDPOINT}")
    cells = [r.locator("td").all_inner_texts() for r in ui_page.locator("#variants tbody tr").all()]
    assert [(c[1], c[2], c[3]) for c in cells] == [
        (f"{MODEL} v{first}", "1", "80.0%"),
        (f"{MODEL} v{second}", "0.25", "20.0%"),
    ]
    history = [" ".join(t.split()) for t in ui_page.locator("#timeline .what").all_inner_texts()]
    assert history[0] == f"succeeded: {MODEL} v{second} (add, weight 0.25)"
    assert history[-1].startswith(f"started: {MODEL} v{first}")
    screenshot(ui_page, "deployment")

    # Shift all traffic to the canary, then delete the endpoint, from the page.
    ui_page.locator("#weights input[name^='weight:'] >> nth=0").fill("0")
    ui_page.locator("#weights input[name^='weight:'] >> nth=1").fill("1")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Apply weights").click()
    weights = [r.locator("td").all_inner_texts()[2] for r in ui_page.locator("#variants tbody tr").all()]
    assert weights == ["0", "1"]
    assert ui_page.locator("#timeline .what").first.inner_text().startswith("traffic shifted:")
    ui_page.locator("header summary", has_text="Delete").click()
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Delete endpoint").click()
    assert ui_page.locator("#endpoints", has_text=ENDPOINT).count() == 0


def test_an_unreachable_sagemaker_api_is_a_message_not_an_error(
    tracking_server: Callable[..., str], ui_page: Any
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    url = tracking_server(env={"AWS_ENDPOINT_URL_SAGEMAKER": closed, "AWS_DEFAULT_REGION": "us-east-1"})
    response = ui_page.goto(f"{url}/deployments")
    assert response.status == 200
    assert "The SageMaker API is not reachable" in ui_page.locator(".error").inner_text()
