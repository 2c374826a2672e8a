"""The Deployments pages after real `modelyard deploy create` and a canary `update --mode add` to the
local endpoint service: both variants with their model versions and weights, and the deploy history.
Then the page's own actions against the same endpoint service: score the canary's version from its
version page, shift traffic, promote the canary, roll back, review a deploy from a version page, and
delete the endpoint by its typed name."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tests.support.browser import screenshot

from modelyard.devstack.process import free_port
from modelyard.devstack.services import GunicornService

pytestmark = [pytest.mark.s3, pytest.mark.compat, pytest.mark.slow]
MODEL = "ui-deploy"
ENDPOINT = "ui-canary"
SECOND = "ui-second"
#: A deploy on a busy 2-core machine starts a serving gunicorn: give the page time to reload.
DEPLOYED_MS = 120_000


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
    deploy_env = {"AWS_ENDPOINT_URL_S3": s3_endpoint, "MODELYARD_DEPLOY_BUCKET": s3_bucket}
    url = tracking_server(env={**aws, **deploy_env, "AWS_DEFAULT_REGION": "us-east-1"}, workers=1)
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

    # A canary keeps the old variant: both versions show the endpoint's chip on the model page.
    assert _deployed_chips(ui_page, url, [first, second]) == [[ENDPOINT], [ENDPOINT]]

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

    # Score the canary's version from its version page: the request goes to its variant alone.
    ui_page.goto(f"{url}/model-version?name={MODEL}&version={second}")
    form = ui_page.locator("#score-form")
    assert "dataframe_split" in form.locator("textarea").input_value()  # the version's input example
    assert form.locator("select[name=target] option").all_inner_texts() == [f"{ENDPOINT} / {_variant(ui_page, url, second)}"]
    form.get_by_role("button", name="Score").click()
    output = ui_page.locator("#score-output")
    output.wait_for()
    assert '"predictions"' in output.inner_text() and "answered 200" in ui_page.locator("#score-meta").inner_text()
    screenshot(ui_page, "version-score")

    # The endpoint page's invocation counts: the score above went to the canary; they refresh by
    # themselves after more invocations (one the model refuses: an error).
    from playwright.sync_api import expect

    ui_page.goto(f"{url}/deployments/{ENDPOINT}")
    canary = ui_page.locator(f"#invocation-counts tr[data-variant='{_variant(ui_page, url, second)}'] td")
    expect(canary.nth(1)).to_have_text("1")
    expect(canary.nth(2)).to_have_text("0")
    runtime = boto3.client(
        "sagemaker-runtime", endpoint_url=endpoints.url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip
    variant = _variant(ui_page, url, second)
    ui_page.evaluate("() => { window.notReloaded = true; }")
    runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetVariant=variant, ContentType="application/json",
                            Body=b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}')
    with pytest.raises(ClientError):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetVariant=variant, ContentType="application/json", Body=b'{"nope": 1}')
    expect(canary.nth(1)).to_have_text("3", timeout=15_000)  # the fragment's 5 s refresh
    expect(canary.nth(2)).to_have_text("1")
    assert ui_page.evaluate("() => window.notReloaded") is True and canary.nth(3).inner_text() != "never"
    screenshot(ui_page, "deployment-invocations")

    # Shift all traffic to the canary, after the review of the shares.
    ui_page.locator("#weights input[name^='weight:'] >> nth=0").fill("0")
    ui_page.locator("#weights input[name^='weight:'] >> nth=1").fill("1")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Review weights").click()
    assert [r.locator("td").all_inner_texts()[4] for r in ui_page.locator("#shares tbody tr").all()] == ["0.0%", "100.0%"]
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Apply weights").click()
    weights = [r.locator("td").all_inner_texts()[2] for r in ui_page.locator("#variants tbody tr").all()]
    assert weights == ["0", "1"]
    assert ui_page.locator("#timeline .what").first.inner_text().startswith("traffic shifted:")

    # Promote the canary: a review, then the endpoint serves it alone; the page follows the deploy.
    canary_row = ui_page.locator("#variants tbody tr", has_text=f"v{second}")
    with ui_page.expect_navigation():
        canary_row.get_by_role("button", name="Promote").click()
    assert ui_page.locator("h1").inner_text() == f"Deploy {MODEL} v{second} to {ENDPOINT}?"
    assert ui_page.locator("#traffic-after li").all_inner_texts() == [f"{MODEL} v{second} (new variant): 100.0%"]
    screenshot(ui_page, "deploy-review")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Replace").click()
    _served(ui_page, [f"{MODEL} v{second}"], "deploy-progress")
    # The promote replaced v1's variant: the model page shows the chip on v2 alone, v1 "was on" it.
    assert _deployed_chips(ui_page, url, [first, second]) == [[], [ENDPOINT]]
    assert ui_page.locator(f"#v{first} .was-on").inner_text() == f"was on {ENDPOINT}"
    screenshot(ui_page, "model-deployed-after-replace")
    ui_page.goto(f"{url}/model-version?name={MODEL}&version={first}")
    assert ui_page.locator(f"#lineage a.chip[href='/deployments/{ENDPOINT}']").count() == 0
    assert f"was on {ENDPOINT}" in ui_page.locator("#lineage").inner_text()
    ui_page.goto(f"{url}/deployments/{ENDPOINT}")

    # Roll back to the version served before: the history knows it.
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name=f"Roll back to {MODEL} v{first}").click()
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Replace").click()
    _served(ui_page, [f"{MODEL} v{first}"])
    newest = " ".join(ui_page.locator("#timeline .what").first.inner_text().split())
    assert newest == f"succeeded: {MODEL} v{first} (replace, weight 1) rollback"
    screenshot(ui_page, "deployment-rolled-back")

    # The version page's deploy form reaches the same review (a create through the UI runs in
    # test_deploy_actions_app.py; one more serving start here would only cost time).
    ui_page.goto(f"{url}/model-version?name={MODEL}&version={second}")
    ui_page.locator("summary", has_text=f"Deploy v{second} to an endpoint").click()
    ui_page.locator("#deploy-form input[name=endpoint]").fill(SECOND)
    screenshot(ui_page, "version-deploy-form")
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Review deploy").click()
    assert ui_page.locator("h1").inner_text() == f"Deploy {MODEL} v{second} to {SECOND}?"
    assert f"{SECOND} (new)" in ui_page.locator("#plan").inner_text()
    with ui_page.expect_navigation():
        ui_page.get_by_role("link", name="Cancel").click()
    assert "/model-version?" in ui_page.url

    # Delete by typed name: a wrong name is refused, the right one deletes.
    ui_page.goto(f"{url}/deployments/{ENDPOINT}")
    ui_page.locator("#delete-action summary").click()
    ui_page.locator("#delete-action input[name=confirm_name]").fill(ENDPOINT)
    with ui_page.expect_navigation():
        ui_page.get_by_role("button", name="Delete endpoint").click()
    assert ui_page.locator("#endpoints").count() == 0


def _deployed_chips(page: Any, url: str, versions: list[str]) -> list[list[str]]:
    """The endpoint chips in the model page's Deployed cell of each version."""
    page.goto(f"{url}/model?name={MODEL}")
    return [page.locator(f"#v{v} td.deployed .chip").all_inner_texts() for v in versions]


def _variant(page: Any, url: str, version: str) -> str:
    """The name of the endpoint's variant serving `version` (from its deploy history)."""
    import requests

    events = requests.get(f"{url}/api/2.0/modelyard/registry/events", params={"endpoint": ENDPOINT}, timeout=10).json()
    return next(e["details"]["variant"] for e in events["events"] if e["kind"] == "deploy_succeeded" and e["version"] == version)


def _served(page: Any, versions: list[str], progress_screenshot: str = "") -> None:
    """Wait until the endpoint page (reloaded by its progress poll) shows these versions InService."""
    from playwright.sync_api import expect

    if progress_screenshot and page.locator("#deploy-progress").count():
        screenshot(page, progress_screenshot)
    expect(page.locator("#deploy-progress")).to_have_count(0, timeout=DEPLOYED_MS)
    expect(page.locator("header .status")).to_have_text("InService")
    assert page.locator("#deploy-failure").count() == 0, page.locator("#deploy-failure").inner_text()
    assert [r.locator("td").all_inner_texts()[1] for r in page.locator("#variants tbody tr").all()] == versions


def test_an_unreachable_sagemaker_api_is_a_message_not_an_error(
    tracking_server: Callable[..., str], ui_page: Any
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    url = tracking_server(env={"AWS_ENDPOINT_URL_SAGEMAKER": closed, "AWS_DEFAULT_REGION": "us-east-1"}, workers=1)
    response = ui_page.goto(f"{url}/deployments")
    assert response.status == 200
    assert "The SageMaker API is not reachable" in ui_page.locator(".error").inner_text()
