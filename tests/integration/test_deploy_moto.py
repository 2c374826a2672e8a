"""`SageMakerDeployer` against moto's SageMaker and S3 mocks: the calls and arguments AWS would receive.

moto's SageMaker records models, configs and endpoints (and reports InService at once) but does not
implement UpdateEndpoint, so an update is answered here by a botocore hook that does to moto what
SageMaker would do (point the endpoint at the new config); the request itself is recorded unchanged.
The registry is the in-process SQLite store, so the deploy history lands on real model versions.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from tests.integration.serving_models import train_classifier

import modelyard
from modelyard import sklearn as my_sklearn
from modelyard.client import Client
from modelyard.deploy import DeploymentError, DeployOptions, SageMakerDeployer
from modelyard.deploy.sagemaker import DEPLOY_TAG_PREFIX

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelyard-serving:0.1.0"
BUCKET = "deploy-artifacts"


@dataclass
class Recorder:
    """Every SageMaker call the deployer makes, with its parameters as the API received them."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, json.loads(json.dumps(params, default=str))))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def only(self, name: str) -> dict[str, Any]:
        found = [params for op, params in self.calls if op == name]
        assert len(found) == 1, (name, self.names())
        return found[0]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SAGEMAKER",
        "MODELYARD_S3_ENDPOINT_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    with mock_aws():
        yield


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """Two versions of `churn` in a SQLite registry; version 1 in Production."""
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    modelyard.set_tracking_uri(uri)
    for seed in (1, 2):
        model, _ = train_classifier(seed)
        with modelyard.start_run():
            my_sklearn.log_model(model, name="model", registered_model_name="churn")
    client = Client(tracking_uri=uri)
    client.transition_model_version_stage("churn", "1", "Production")
    yield client
    modelyard.set_tracking_uri(None)


def _emulate_update_endpoint(recorder: Recorder) -> Any:
    """Answer UpdateEndpoint as SageMaker would, by re-pointing moto's endpoint at the new config."""
    raw = boto3.client("sagemaker", region_name="us-east-1")

    def handler(model: Any, **_: Any) -> Any:
        if model.name != "UpdateEndpoint":
            return None
        params = [p for op, p in recorder.calls if op == "UpdateEndpoint"][-1]
        raw.delete_endpoint(EndpointName=params["EndpointName"])
        raw.create_endpoint(
            EndpointName=params["EndpointName"], EndpointConfigName=params["EndpointConfigName"]
        )
        arn = raw.describe_endpoint(EndpointName=params["EndpointName"])["EndpointArn"]
        return AWSResponse("https://sagemaker.us-east-1.amazonaws.com/", 200, {}, None), {"EndpointArn": arn}

    return handler


def _deployer(registry: Client, recorder: Recorder, **options: Any) -> SageMakerDeployer:
    opts = DeployOptions(
        region="us-east-1",
        execution_role_arn=ROLE,
        image_uri=IMAGE,
        instance_type="ml.c5.xlarge",
        instance_count=2,
        bucket=BUCKET,
        poll_seconds=0.01,
        timeout_seconds=30,
        **options,
    )
    deployer = SageMakerDeployer(opts, tracking_client=registry)
    events = deployer.sagemaker.meta.events
    events.register("before-parameter-build.sagemaker", recorder.record)
    events.register("before-call.sagemaker.UpdateEndpoint", _emulate_update_endpoint(recorder))
    return deployer


def _archive_names(s3_url: str) -> list[str]:
    bucket, key = s3_url.removeprefix("s3://").split("/", 1)
    body = boto3.client("s3", region_name="us-east-1").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return tar.getnames()


def _history(registry: Client, version: str, endpoint: str = "churn", model: str = "churn") -> dict[str, Any]:
    return json.loads(registry.get_model_version(model, version).tags[DEPLOY_TAG_PREFIX + endpoint])


def _events(registry: Client, endpoint: str = "churn") -> list[tuple[str, str | None, dict[str, Any]]]:
    from modelyard.client import registry_history

    found = registry_history.list_events(registry.registry_store, endpoint=endpoint)
    return [(e.kind, e.version, e.details) for e in found]


def test_create_sends_model_config_and_endpoint_with_the_packaged_model(aws: None, registry: Client) -> None:
    recorder = Recorder()
    described = _deployer(registry, recorder).create("churn", "models:/churn/Production")
    assert described["EndpointStatus"] == "InService"

    assert recorder.names()[:1] == ["DescribeEndpoint"]  # does it exist yet?
    assert [n for n in recorder.names() if n.startswith("Create")] == [
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
    ]
    model = recorder.only("CreateModel")
    assert model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"]["Image"] == IMAGE
    url = model["PrimaryContainer"]["ModelDataUrl"]
    assert url.startswith(f"s3://{BUCKET}/deployments/churn/") and url.endswith("/model.tar.gz")
    assert model["ModelName"].startswith("churn-churn-v1-")
    names = _archive_names(url)
    assert "MLmodel" in names and "model.pkl" in names, names
    assert not any(n.startswith(("model/", "/", "..")) for n in names)

    config = recorder.only("CreateEndpointConfig")
    assert config["ProductionVariants"] == [
        {
            "VariantName": config["ProductionVariants"][0]["VariantName"],
            "ModelName": model["ModelName"],
            "InitialInstanceCount": 2,
            "InstanceType": "ml.c5.xlarge",
            "InitialVariantWeight": 1.0,
        }
    ]
    assert recorder.only("CreateEndpoint") == {
        "EndpointName": "churn",
        "EndpointConfigName": config["EndpointConfigName"],
    }
    history = _history(registry, "1")
    assert history["status"] == "InService" and history["config"] == config["EndpointConfigName"]
    assert "time" in history
    (done, done_version, done_details), (started, _, _) = _events(registry)
    assert (started, done, done_version) == ("deploy_started", "deploy_succeeded", "1")
    assert done_details["model_uri"] == "models:/churn/Production" and done_details["weight"] == 1.0


def test_update_add_mode_keeps_the_old_variant_and_weights_the_new(aws: None, registry: Client) -> None:
    recorder = Recorder()
    _deployer(registry, recorder).create("churn", "models:/churn/1")
    first = recorder.only("CreateEndpointConfig")
    recorder.clear()

    _deployer(registry, recorder, mode="add", variant_weight=0.25).update("churn", "models:/churn/2")
    config = recorder.only("CreateEndpointConfig")
    old, new = config["ProductionVariants"]
    assert old == first["ProductionVariants"][0]
    assert new["InitialVariantWeight"] == 0.25 and new["ModelName"].startswith("churn-churn-v2-")
    assert recorder.only("UpdateEndpoint") == {
        "EndpointName": "churn",
        "EndpointConfigName": config["EndpointConfigName"],
    }
    # The old config is retired; both models stay, since both serve.
    assert recorder.only("DeleteEndpointConfig") == {"EndpointConfigName": first["EndpointConfigName"]}
    assert "DeleteModel" not in recorder.names()
    assert _history(registry, "2")["mode"] == "add"
    # The old variant still serves: its version's tag stays InService.
    assert [_history(registry, v)["status"] for v in ("1", "2")] == ["InService", "InService"]
    kind, version, details = _events(registry)[0]
    assert (kind, version, details["mode"], details["weight"]) == ("deploy_succeeded", "2", "add", 0.25)


def test_update_replace_retires_the_old_model(aws: None, registry: Client) -> None:
    recorder = Recorder()
    _deployer(registry, recorder).create("churn", "models:/churn/1")
    old_model = recorder.only("CreateModel")["ModelName"]
    recorder.clear()

    described = _deployer(registry, recorder, mode="replace").update("churn", "models:/churn/2")
    config = recorder.only("CreateEndpointConfig")
    assert described["EndpointConfigName"] == config["EndpointConfigName"]
    assert len(config["ProductionVariants"]) == 1
    assert recorder.only("DeleteModel") == {"ModelName": old_model}
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [
        config["ProductionVariants"][0]["ModelName"]
    ]
    # The version taken off says so (and by what); the new one serves.
    replaced, serving = _history(registry, "1"), _history(registry, "2")
    assert (replaced["status"], replaced["by"], replaced["config"]) == (
        "Replaced", "models:/churn/2", config["EndpointConfigName"]
    )
    assert serving["status"] == "InService"

    # Deploying the serving version again keeps it InService; another model's replace marks it.
    _deployer(registry, recorder, mode="replace").update("churn", "models:/churn/2")
    assert _history(registry, "2")["status"] == "InService"
    model, _ = train_classifier(3)
    with modelyard.start_run():
        my_sklearn.log_model(model, name="model", registered_model_name="fraud")
    _deployer(registry, recorder, mode="replace").update("churn", "models:/fraud/1")
    assert (_history(registry, "2")["status"], _history(registry, "2")["by"]) == ("Replaced", "models:/fraud/1")
    assert _history(registry, "1", model="fraud")["status"] == "InService"


def test_a_failed_create_is_rolled_back_and_recorded(aws: None, registry: Client) -> None:
    recorder = Recorder()
    deployer = _deployer(registry, recorder)

    def failed(model: Any, params: dict[str, Any], **_: Any) -> Any:
        if "CreateEndpoint" not in recorder.names():
            return None  # the existence check before anything was created
        body = {
            "EndpointName": "churn",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn",
            "EndpointConfigName": recorder.only("CreateEndpointConfig")["EndpointConfigName"],
            "EndpointStatus": "Failed",
            "FailureReason": "The primary container did not pass the ping health check.",
            "CreationTime": 0,
            "LastModifiedTime": 0,
        }
        return AWSResponse("https://sagemaker.us-east-1.amazonaws.com/", 200, {}, None), body

    deployer.sagemaker.meta.events.register("before-call.sagemaker.DescribeEndpoint", failed)
    with pytest.raises(DeploymentError, match="ping health check"):
        deployer.create("churn", "models:/churn/Production")
    deletes = [n for n in recorder.names() if n.startswith("Delete")]
    assert deletes == ["DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]
    history = _history(registry, "1")
    assert history["status"] == "Failed" and "ping health check" in history["error"]
    assert [kind for kind, _, _ in _events(registry)] == ["deploy_failed", "deploy_started"]


def test_create_refuses_an_existing_endpoint_and_update_a_missing_one(aws: None, registry: Client) -> None:
    recorder = Recorder()
    deployer = _deployer(registry, recorder)
    with pytest.raises(DeploymentError, match="does not exist"):
        deployer.update("churn", "models:/churn/1")
    deployer.create("churn", "models:/churn/1")
    with pytest.raises(DeploymentError, match="already exists"):
        deployer.create("churn", "models:/churn/2")
    assert recorder.names().count("CreateEndpoint") == 1


def test_delete_removes_endpoint_config_and_models(aws: None, registry: Client) -> None:
    recorder = Recorder()
    deployer = _deployer(registry, recorder)
    deployer.create("churn", "models:/churn/1")
    deployer.delete("churn")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    deleted = _history(registry, "1")
    assert deleted["status"] == "Deleted" and deleted["endpoint"] == "churn" and "time" in deleted
    # The registry's history says so, as after the web UI's delete.
    kind, version, details = _events(registry)[0]
    assert (kind, version) == ("endpoint_deleted", "1") and details["variant"]


def test_cli_errors_are_one_line_and_exit_1(aws: None, registry: Client) -> None:
    from click.testing import CliRunner

    from modelyard.cli_deploy import deploy

    runner = CliRunner()
    missing = runner.invoke(deploy, ["get", "--endpoint", "nope", "--region", "us-east-1"])
    assert missing.exit_code == 1
    assert missing.output.startswith("error: ") and "nope" in missing.output
    bad_uri = runner.invoke(
        deploy,
        [
            "create",
            "--endpoint",
            "churn",
            "--model-uri",
            "models:/no-such-model/Production",
            "--region",
            "us-east-1",
        ],
    )
    assert bad_uri.exit_code == 1
    assert bad_uri.output.startswith("error: ") and "no-such-model" in bad_uri.output
    assert "Traceback" not in bad_uri.output


def test_cli_prints_the_endpoint_without_boto3s_response_metadata(aws: None, registry: Client) -> None:
    from click.testing import CliRunner

    from modelyard.cli_deploy import deploy

    _deployer(registry, Recorder()).create("churn", "models:/churn/1")
    shown = CliRunner().invoke(deploy, ["get", "--endpoint", "churn", "--region", "us-east-1"])
    assert shown.exit_code == 0, shown.output
    described = json.loads(shown.output)
    assert described["EndpointName"] == "churn" and described["EndpointStatus"] == "InService"
    assert "ResponseMetadata" not in described
