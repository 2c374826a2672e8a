"""The web UI's deploy actions through the ASGI app against moto's SageMaker and S3 (in-process): the
review page changes nothing, the confirmation deploys in the background from the service's own
artifact store, refusals are shown on the page with nothing written, a failed update is rolled back
and shown, delete needs the typed name (as a model's delete does), and an alias rollback offers to
redeploy its endpoints.

moto reports an endpoint InService at once and has no UpdateEndpoint, which makes every update fail
here: that is the failure path. The real endpoint service runs in tests/ui/test_deployments_page.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from modelyard.settings import Settings
from modelyard.tracking.app import create_app

API = "/api/2.0/mlflow"
HISTORY = "/api/2.0/modelyard/registry/events"
USER = {"X-Modelyard-User": "carol"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER", "MODELYARD_S3_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "MODELYARD_DEPLOY_BUCKET": "ui-deploys",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


@pytest.fixture
def app(tmp_path: Path, aws: None) -> Iterator[tuple[TestClient, Path]]:
    artifacts = tmp_path / "artifacts"
    settings = Settings(backend_store_uri=f"sqlite:///{tmp_path / 'ui.db'}", artifacts_destination=str(artifacts))
    with TestClient(create_app(settings), base_url="http://localhost", headers=USER) as client:
        client.get("/models")  # the CSRF cookie
        yield client, artifacts


def _register(client: TestClient, artifacts: Path, name: str, versions: int = 2) -> None:
    """Versions whose files (an MLmodel and a weights file) are in the service's artifact store."""
    experiment = client.post(f"{API}/experiments/create", json={"name": f"e-{name}"}).json()["experiment_id"]
    info = client.post(f"{API}/runs/create", json={"experiment_id": experiment}).json()["run"]["info"]
    folder = artifacts / info["artifact_uri"].removeprefix("mlflow-artifacts:/") / "model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: none\n")
    (folder / "weights.bin").write_bytes(b"\x00" * 100)
    client.post(f"{API}/registered-models/create", json={"name": name}).raise_for_status()
    for _ in range(versions):
        body = {"name": name, "source": f"{info['artifact_uri']}/model", "run_id": info["run_id"]}
        client.post(f"{API}/model-versions/create", json=body).raise_for_status()


def _form(client: TestClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": client.cookies["modelyard_csrf"], **fields}


def _events(client: TestClient, **query: str) -> list[dict[str, Any]]:
    return list(client.get(HISTORY, params=query).json().get("events", []))


def _outcome(client: TestClient, endpoint: str, after: int = 0) -> dict[str, Any]:
    """The deploy's outcome event, once the background thread recorded it (moto answers at once)."""
    for _ in range(300):
        found = [e for e in _events(client, endpoint=endpoint) if e["kind"] != "deploy_started" and int(e["event_id"]) > after]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no outcome recorded for {endpoint}: {_events(client, endpoint=endpoint)}")


def _deploy(client: TestClient, confirmed: bool = True, **fields: str) -> Any:
    data = _form(client, **fields, **({"confirmed": "1"} if confirmed else {}))
    return client.post("/deployments/deploy", data=data, follow_redirects=False)


def test_review_changes_nothing_then_the_confirmation_deploys_from_the_artifact_store(
    app: tuple[TestClient, Path],
) -> None:
    client, artifacts = app
    _register(client, artifacts, "churn")
    review = _deploy(client, confirmed=False, endpoint="churn-prod", model_uri="models:/churn/1", mode="create")
    assert review.status_code == 200
    assert "Deploy churn v1 to churn-prod?" in review.text
    assert "churn v1 (new variant): 100.0%" in review.text
    assert 'name="confirmed" value="1"' in review.text
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    assert sagemaker.list_endpoints()["Endpoints"] == [] and _events(client, endpoint="churn-prod") == []

    started = _deploy(client, endpoint="churn-prod", model_uri="models:/churn/1", mode="create")
    assert started.status_code == 303 and started.headers["location"] == "/deployments/churn-prod"
    outcome = _outcome(client, "churn-prod")
    assert outcome["kind"] == "deploy_succeeded" and outcome["version"] == "1", outcome
    assert outcome["actor"] == "carol" and outcome["details"]["mode"] == "create"
    # The archive SageMaker got holds the version's files, read by the service from its own store.
    config = sagemaker.describe_endpoint_config(EndpointConfigName=outcome["details"]["config"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://ui-deploys/")
    import io
    import tarfile

    body = boto3.client("s3", region_name="us-east-1").get_object(Bucket="ui-deploys", Key=key)["Body"].read()
    assert sorted(tarfile.open(fileobj=io.BytesIO(body), mode="r:gz").getnames()) == ["MLmodel", "weights.bin"]
    tag = client.get(f"{API}/model-versions/get", params={"name": "churn", "version": "1"}).json()
    assert json.loads(tag["model_version"]["tags"][0]["value"])["status"] == "InService"

    page = client.get("/deployments/churn-prod")
    assert page.status_code == 200 and "churn v1" in page.text and "deploy-progress" not in page.text
    # On AWS, the invocation counts are CloudWatch's sums of the last hour per variant.
    variant = outcome["details"]["variant"]
    dimensions = [{"Name": "EndpointName", "Value": "churn-prod"}, {"Name": "VariantName", "Value": variant}]
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 7.0},
            {"MetricName": "Invocation4XXErrors", "Dimensions": dimensions, "Value": 2.0},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Value": 1.0},
        ],
    )
    counts = client.get("/deployments/churn-prod/invocations", headers={"HX-Request": "true"})
    assert counts.status_code == 200 and "from CloudWatch" in counts.text
    row = re.search(rf'<tr data-variant="{variant}">(.*?)</tr>', counts.text, re.S)
    assert row is not None and "churn v1" in row.group(1)
    assert re.findall(r'<td class="num[^"]*">([^<]*)</td>', row.group(1)) == ["7", "3"]
    assert 'hx-get="/deployments/churn-prod/invocations"' in page.text
    # The version page links the endpoint and offers to deploy the version.
    version = client.get("/model-version", params={"name": "churn", "version": "1"})
    assert 'href="/deployments/churn-prod"' in version.text and 'action="/deployments/deploy"' in version.text


REFUSALS = [
    ({"endpoint": "bad_name!", "model_uri": "models:/churn/1", "mode": "create"}, "letters, digits and hyphens"),
    ({"endpoint": "e1", "model_uri": "models:/churn/9", "mode": "create"}, "not found"),
    ({"endpoint": "e1", "name": "churn", "version": "@nobody", "mode": "create"}, "alias"),
    ({"endpoint": "e1", "model_uri": "runs:/abc/model", "mode": "create"}, "Invalid model URI"),
    ({"endpoint": "e1", "model_uri": "models:/churn/1", "mode": "replace"}, "does not exist: create it"),
    ({"endpoint": "e1", "model_uri": "models:/churn/1", "mode": "create", "instance_count": "50"}, "Instances must be"),
    ({"endpoint": "e1", "model_uri": "models:/churn/1", "mode": "create", "weight": "lots"}, "must be a number"),
    ({"endpoint": "e1", "model_uri": "models:/churn/1", "mode": "sideways"}, "Mode must be one of"),
]


def test_refusals_are_shown_on_the_review_page_and_write_nothing(app: tuple[TestClient, Path]) -> None:
    client, artifacts = app
    _register(client, artifacts, "churn", versions=1)
    for fields, message in REFUSALS:
        refused = _deploy(client, **fields)
        assert refused.status_code in (400, 404), (fields, refused.text)
        assert message in refused.text, fields
        assert 'id="deploy-error"' in refused.text and "Review again" in refused.text
    assert _events(client, endpoint="e1") == [] and _events(client, endpoint="bad_name!") == []
    assert boto3.client("sagemaker", region_name="us-east-1").list_endpoints()["Endpoints"] == []


def test_a_failed_update_is_undone_recorded_and_shown_and_the_endpoint_keeps_serving(
    app: tuple[TestClient, Path],
) -> None:
    client, artifacts = app
    _register(client, artifacts, "churn")
    _deploy(client, endpoint="churn-prod", model_uri="models:/churn/1", mode="create")
    first = _outcome(client, "churn-prod")
    exists = _deploy(client, endpoint="churn-prod", model_uri="models:/churn/2", mode="create")
    assert exists.status_code == 400 and "already exists" in exists.text

    _deploy(client, endpoint="churn-prod", model_uri="models:/churn/2", mode="add", weight="0.25")
    failed = _outcome(client, "churn-prod", after=int(first["event_id"]))
    assert failed["kind"] == "deploy_rolled_back" and failed["version"] == "2", failed
    assert "update_endpoint action has not been implemented" in failed["details"]["error"]  # moto
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    endpoint = sagemaker.describe_endpoint(EndpointName="churn-prod")
    assert endpoint["EndpointConfigName"] == first["details"]["config"]  # still the first deploy's
    assert len(sagemaker.list_models()["Models"]) == 1  # the failed deploy's model is gone
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1
    page = client.get("/deployments/churn-prod")
    assert 'id="deploy-failure"' in page.text and "was rolled back" in page.text
    assert "kept serving what it served before" in page.text
    # The model page: v1 still serves there; v2's failed deploy is no chip.
    assert (_deployed_cell(client, "1"), _deployed_cell(client, "2")) == ("churn-prod", "")


def test_delete_needs_the_typed_name_and_records_it(app: tuple[TestClient, Path]) -> None:
    client, artifacts = app
    _register(client, artifacts, "churn", versions=1)
    _deploy(client, endpoint="churn-prod", model_uri="models:/churn/1", mode="create")
    _outcome(client, "churn-prod")
    assert _deployed_cell(client) == "churn-prod"
    wrong = client.post("/deployments/churn-prod/delete", data=_form(client, confirm_name="churn"), follow_redirects=False)
    assert wrong.status_code == 400 and "type its name (churn-prod)" in wrong.text
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    assert len(sagemaker.list_endpoints()["Endpoints"]) == 1
    forged = client.post("/deployments/churn-prod/delete", data={"confirm_name": "churn-prod"}, follow_redirects=False)
    assert forged.status_code == 403
    gone = client.post("/deployments/churn-prod/delete", data=_form(client, confirm_name="churn-prod"), follow_redirects=False)
    assert gone.status_code == 303
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert _events(client, endpoint="churn-prod")[0]["kind"] == "endpoint_deleted"
    # The version's deploy tag says so; the model page no longer shows it as deployed.
    tags = client.get(f"{API}/model-versions/get", params={"name": "churn", "version": "1"}).json()["model_version"]["tags"]
    tag = json.loads(next(t["value"] for t in tags if t["key"] == "modelyard.deploy.churn-prod"))
    assert tag["status"] == "Deleted" and tag["endpoint"] == "churn-prod"
    assert _deployed_cell(client) == "was on churn-prod"
    version_page = client.get("/model-version", params={"name": "churn", "version": "1"}).text
    lineage = version_page.split('id="lineage"', 1)[1].split("</ol>", 1)[0]
    assert 'class="chip" href="/deployments/churn-prod"' not in lineage and "was on" in lineage
    # A deleted endpoint's page keeps its history instead of a 404.
    page = client.get("/deployments/churn-prod")
    assert page.status_code == 200 and 'id="no-endpoint"' in page.text and "endpoint deleted" in page.text


def _deployed_cell(client: TestClient, version: str = "1") -> str:
    """The text of the model page's Deployed cell of `version` (chips of the endpoints it serves on)."""
    row = client.get("/model", params={"name": "churn"}).text.split(f'<tr id="v{version}">', 1)[1].split("</tr>", 1)[0]
    return re.sub(r"<[^>]+>", "", row.split('class="deployed">', 1)[1].split("</td>", 1)[0]).strip()


def test_an_alias_rollback_offers_to_redeploy_the_endpoints_deployed_from_it(app: tuple[TestClient, Path]) -> None:
    client, artifacts = app
    _register(client, artifacts, "churn")
    for version in ("1", "2"):
        client.post(f"{API}/registered-models/alias", json={"name": "churn", "alias": "champion", "version": version})
    review = _deploy(client, confirmed=False, endpoint="churn-prod", name="churn", version="@champion", mode="create")
    assert "Deploy churn v2 to churn-prod?" in review.text and "models:/churn@champion" in review.text
    _deploy(client, endpoint="churn-prod", name="churn", version="@champion", mode="create")
    assert _outcome(client, "churn-prod")["details"]["model_uri"] == "models:/churn@champion"

    offer = client.post("/model/rollback", data=_form(client, name="churn", alias="champion"), follow_redirects=False)
    assert offer.status_code == 200
    assert 'id="redeploy"' in offer.text and "Review redeploy of churn-prod" in offer.text
    assert 'value="models:/churn@champion"' in offer.text and 'value="rollback"' in offer.text
    alias = client.get(f"{API}/registered-models/alias", params={"name": "churn", "alias": "champion"}).json()
    assert alias["model_version"]["version"] == "1"


def test_deleting_a_model_needs_its_typed_name(app: tuple[TestClient, Path]) -> None:
    client, artifacts = app
    _register(client, artifacts, "churn", versions=1)
    wrong = client.post("/model/delete", data=_form(client, name="churn", confirm_name="chur"), follow_redirects=False)
    assert wrong.status_code == 400 and "type its name (churn)" in wrong.text
    assert client.get(f"{API}/registered-models/get", params={"name": "churn"}).status_code == 200
    gone = client.post("/model/delete", data=_form(client, name="churn", confirm_name="churn"), follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/models"
    assert client.get(f"{API}/registered-models/get", params={"name": "churn"}).status_code == 404
    kinds = [e["kind"] for e in client.get(HISTORY, params={"name": "churn"}).json()["events"]]
    assert kinds[0] == "model_deleted" and "version_created" in kinds  # the history stays
    client.post(f"{API}/registered-models/create", json={"name": "churn"}).raise_for_status()
    purged = client.post(
        "/model/delete", data=_form(client, name="churn", confirm_name="churn", purge_history="1"), follow_redirects=False
    )
    assert purged.status_code == 303
    assert client.get(HISTORY, params={"name": "churn"}).json().get("events", []) == []  # and now it goes
