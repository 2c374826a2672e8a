"""The local SageMaker-style endpoint service, driven by plain boto3 clients over real sockets.

Models are real scikit-learn models saved in the MLmodel format, packaged as model.tar.gz on moto's S3;
the endpoint service starts real serving workers for them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.integration.serving_models import child_pids
from tests.support.services import start_service

from modelyard.deploy.packaging import package_model
from modelyard.devstack.services import ENDPOINTS, GunicornService

pytestmark = pytest.mark.s3


def _train(seed: int):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, 3))
    y = x @ np.array([1.0, 2.0, 3.0]) * seed + 0.5
    return LinearRegression().fit(x, y)


def _save(model, path: Path) -> Path:  # type: ignore[no-untyped-def]
    from modelyard import sklearn as my_sklearn

    my_sklearn.save_model(model, str(path))
    return path


@pytest.fixture
def endpoints(tmp_path: Path, s3_endpoint: str) -> Iterator[GunicornService]:
    env = {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "MODELYARD_ENDPOINTS_STATE_DIR": str(tmp_path / "endpoints-state"),
        "MODELYARD_ENDPOINT_START_TIMEOUT": "60",
    }
    # Asked for 2 workers, as `make up` asks every service: the service's config pins it to one.
    with start_service(ENDPOINTS, tmp_path / "endpoints", env=env, workers=2) as service:
        assert service.pid is not None
        assert len(child_pids(service.pid)) == 1
        yield service


@pytest.fixture
def clients(endpoints: GunicornService, s3_endpoint: str):  # type: ignore[no-untyped-def]
    config = Config(retries={"max_attempts": 1})
    sm = boto3.client("sagemaker", endpoint_url=endpoints.url, region_name="us-east-1", config=config)
    runtime = boto3.client(
        "sagemaker-runtime", endpoint_url=endpoints.url, region_name="us-east-1", config=config
    )
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    return sm, runtime, s3


def _upload(s3, bucket: str, model_dir: Path, tmp: Path) -> str:  # type: ignore[no-untyped-def]
    archive = package_model(model_dir, tmp / f"{uuid.uuid4().hex}.tar.gz")
    key = f"models/{archive.name}"
    s3.upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def _deploy_config(sm, name: str, url: str, variants: list[tuple[str, float]] | None = None) -> str:  # type: ignore[no-untyped-def]
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": "local", "ModelDataUrl": url},
        ExecutionRoleArn="arn:aws:iam::0:role/x",
    )
    config = f"{name}-cfg"
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": v,
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": w,
            }
            for v, w in (variants or [("primary", 1.0)])
        ],
    )
    return config


def _wait(sm, name: str) -> dict:  # type: ignore[no-untyped-def]
    waiter = sm.get_waiter("endpoint_in_service")
    try:
        waiter.wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    except Exception:
        pass
    return sm.describe_endpoint(EndpointName=name)


def _predict(runtime, name: str, rows: list[list[float]]) -> tuple[list[float], str]:  # type: ignore[no-untyped-def]
    response = runtime.invoke_endpoint(
        EndpointName=name, ContentType="application/json", Body=json.dumps({"inputs": rows})
    )
    return json.loads(response["Body"].read())["predictions"], response["InvokedProductionVariant"]


def test_create_invoke_update_and_rollback(clients, s3_bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sm, runtime, s3 = clients
    rows = [[0.1, 0.2, 0.3], [1.0, -1.0, 2.0]]
    v1, v2 = _train(1), _train(2)
    url1 = _upload(s3, s3_bucket, _save(v1, tmp_path / "m1"), tmp_path)
    url2 = _upload(s3, s3_bucket, _save(v2, tmp_path / "m2"), tmp_path)

    cfg1 = _deploy_config(sm, "churn-v1", url1)
    sm.create_endpoint(EndpointName="churn", EndpointConfigName=cfg1)
    assert sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] in ("Creating", "InService")
    described = _wait(sm, "churn")
    assert described["EndpointStatus"] == "InService", described
    predictions, variant = _predict(runtime, "churn", rows)
    assert np.allclose(predictions, v1.predict(np.array(rows)))
    assert variant == "primary"

    cfg2 = _deploy_config(sm, "churn-v2", url2)
    sm.update_endpoint(EndpointName="churn", EndpointConfigName=cfg2)
    assert sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "Updating"
    # The old version answers while the new one starts.
    predictions, _ = _predict(runtime, "churn", rows)
    assert np.allclose(predictions, v1.predict(np.array(rows)))
    assert _wait(sm, "churn")["EndpointConfigName"] == cfg2
    predictions, _ = _predict(runtime, "churn", rows)
    assert np.allclose(predictions, v2.predict(np.array(rows)))

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: no_such_module_anywhere\n"
    )
    cfg3 = _deploy_config(sm, "churn-v3", _upload(s3, s3_bucket, broken, tmp_path))
    sm.update_endpoint(EndpointName="churn", EndpointConfigName=cfg3)
    described = _wait(sm, "churn")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == cfg2, "a failed update rolls back to the old config"
    assert "no_such_module_anywhere" in described["FailureReason"]
    predictions, _ = _predict(runtime, "churn", rows)
    assert np.allclose(predictions, v2.predict(np.array(rows)))

    sm.delete_endpoint(EndpointName="churn")
    with pytest.raises(ClientError) as info:
        sm.describe_endpoint(EndpointName="churn")
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_a_model_that_fails_to_load_leaves_the_endpoint_failed(
    clients, s3_bucket: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sm, runtime, s3 = clients
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: no_such_module_anywhere\n"
    )
    cfg = _deploy_config(sm, "bad-v1", _upload(s3, s3_bucket, broken, tmp_path))
    sm.create_endpoint(EndpointName="bad", EndpointConfigName=cfg)
    described = _wait(sm, "bad")
    assert described["EndpointStatus"] == "Failed"
    assert "no_such_module_anywhere" in described["FailureReason"]
    with pytest.raises(ClientError) as info:
        _predict(runtime, "bad", [[1.0, 2.0, 3.0]])
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_traffic_is_split_by_variant_weight(clients, s3_bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sm, runtime, s3 = clients
    url = _upload(s3, s3_bucket, _save(_train(1), tmp_path / "m"), tmp_path)
    cfg = _deploy_config(sm, "ab-v1", url, variants=[("blue", 1.0), ("green", 1.0)])
    sm.create_endpoint(EndpointName="ab", EndpointConfigName=cfg)
    assert _wait(sm, "ab")["EndpointStatus"] == "InService"
    seen = {_predict(runtime, "ab", [[1.0, 2.0, 3.0]])[1] for _ in range(60)}
    assert seen == {"blue", "green"}
    only_green = runtime.invoke_endpoint(
        EndpointName="ab",
        ContentType="application/json",
        Body=b'{"inputs": [[1, 2, 3]]}',
        TargetVariant="green",
    )
    assert only_green["InvokedProductionVariant"] == "green"

    # Shift all traffic to blue without a redeploy; describe reports the new weights.
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ab", DesiredWeightsAndCapacities=[{"VariantName": "green", "DesiredWeight": 0.0}]
    )
    weights = {v["VariantName"]: v["CurrentWeight"] for v in sm.describe_endpoint(EndpointName="ab")["ProductionVariants"]}
    assert weights == {"blue": 1.0, "green": 0.0}
    assert {_predict(runtime, "ab", [[1.0, 2.0, 3.0]])[1] for _ in range(30)} == {"blue"}
    for bad in ([{"VariantName": "red", "DesiredWeight": 1.0}], [{"VariantName": "blue", "DesiredWeight": 0.0}]):
        with pytest.raises(ClientError) as info:
            sm.update_endpoint_weights_and_capacities(EndpointName="ab", DesiredWeightsAndCapacities=bad)
        assert info.value.response["Error"]["Code"] == "ValidationException"


def test_bad_requests_get_sagemaker_errors(clients, s3_bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sm, runtime, s3 = clients
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="x", EndpointConfigName="missing")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError):
        sm.create_model(
            ModelName="m",
            PrimaryContainer={"Image": "i", "ModelDataUrl": "/etc/passwd"},
            ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
        )
    url = _upload(s3, s3_bucket, _save(_train(1), tmp_path / "m"), tmp_path)
    cfg = _deploy_config(sm, "err-v1", url)
    sm.create_endpoint(EndpointName="err", EndpointConfigName=cfg)
    assert _wait(sm, "err")["EndpointStatus"] == "InService"
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="err", ContentType="application/json", Body=b'{"nope": 1}')
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert sm.list_endpoints()["Endpoints"][0]["EndpointName"] == "err"

    # modelyard's own read of the invocation counts: the model's refusal is an error, a refusal before
    # any variant (an unknown variant) is not an invocation; an unknown endpoint is a 404.
    _predict(runtime, "err", [[0.1, 0.2, 0.3]])
    with pytest.raises(ClientError):
        runtime.invoke_endpoint(EndpointName="err", TargetVariant="nope", ContentType="application/json", Body=b"{}")
    counts = requests.get(f"{sm.meta.endpoint_url}/modelyard/endpoints/err/invocations", timeout=10)
    assert counts.status_code == 200, counts.text
    primary = counts.json()["variants"]["primary"]
    assert (primary["invocations"], primary["errors"]) == (2, 1)
    assert counts.json()["since"] <= primary["last_invocation"] <= time.time() * 1000
    assert requests.get(f"{sm.meta.endpoint_url}/modelyard/endpoints/nope/invocations", timeout=10).status_code == 404

    # A control-plane body nested deeper than Python's JSON parser goes is the client's mistake (4xx).
    deep = requests.post(sm.meta.endpoint_url, data=b"[" * 5000, timeout=10,
                         headers={"X-Amz-Target": "SageMaker.CreateEndpoint", "Content-Type": "application/x-amz-json-1.1"})  # fmt: skip
    assert deep.status_code == 400, deep.text
    assert deep.json()["__type"].endswith("SerializationException")
