"""The whole path in one test: train -> log with the real `mlflow` client -> register -> Production ->
`modelyard deploy create` -> boto3 `invoke_endpoint` -> v2 promoted and `modelyard deploy update` with
no failed request during the swap -> a broken v3 fails to deploy and v2 keeps serving.

Everything is a real process on loopback: the tracking service (serving artifacts itself), moto's S3,
the local SageMaker-style endpoint service and the serving workers it starts; the CLI runs as a
subprocess configured only by environment, as `make up` configures a shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from tests.integration.serving_models import FEATURES, frame, import_source

from modelyard.devstack.services import GunicornService

pytestmark = [pytest.mark.s3, pytest.mark.compat, pytest.mark.slow]

MODEL = "churn"
ENDPOINT = "churn"
DEPLOY_TAG = f"modelyard.deploy.{ENDPOINT}"

BROKEN_SOURCE = """
import mlflow.pyfunc


class CorruptModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        raise RuntimeError("weights file is corrupt: refusing to serve")

    def predict(self, context, model_input, params=None):
        return model_input
"""


@pytest.fixture
def mlflow_client(tracking_server: Callable[..., str]) -> Iterator[tuple[str, Any]]:
    import mlflow

    url = tracking_server()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("deploy-e2e")
    try:
        yield url, mlflow.MlflowClient(tracking_uri=url)
    finally:
        mlflow.set_tracking_uri(previous)


def _train_and_register(coefficients: list[float], intercept: float) -> tuple[Any, str]:
    """A regression whose predictions tell its version apart; logged and registered by MLflow."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    x = frame(80, seed=int(intercept))
    y = x.to_numpy() @ np.array(coefficients) + intercept
    model = LinearRegression().fit(x, y)
    with mlflow.start_run():
        mlflow.log_param("intercept", intercept)
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=MODEL, signature=infer_signature(x, model.predict(x))
        )
    return model, str(info.registered_model_version)


def _promote(client: Any, version: str) -> None:
    client.transition_model_version_stage(MODEL, version, "Production", archive_existing_versions=True)


def _modelyard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "modelyard"), "deploy", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


class Invoker(threading.Thread):
    """Calls the endpoint back to back through boto3 (no retries), keeping every answer and failure."""

    def __init__(self, runtime: Any, body: str) -> None:
        super().__init__(daemon=True)
        self.runtime = runtime
        self.body = body
        self.answers: list[list[float]] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                response = self.runtime.invoke_endpoint(
                    EndpointName=ENDPOINT, ContentType="application/json", Body=self.body
                )
                self.answers.append(json.loads(response["Body"].read())["predictions"])
            except Exception as exc:  # every kind of failure counts
                self.failures.append(repr(exc))
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(
                lambda: len(self.answers) + len(self.failures) >= count, timeout=120
            )


def test_train_register_deploy_update_and_survive_a_broken_version(
    tmp_path: Path,
    mlflow_client: tuple[str, Any],
    endpoints: GunicornService,
    s3_endpoint: str,
    s3_bucket: str,
) -> None:
    import mlflow

    tracking_url, client = mlflow_client
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": endpoints.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoints.url,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "MODELYARD_DEPLOY_BUCKET": s3_bucket,
    }
    config = Config(retries={"max_attempts": 1}, read_timeout=60)
    runtime = boto3.client(
        "sagemaker-runtime", endpoint_url=endpoints.url, region_name="us-east-1", config=config
    )
    rows = frame(4, seed=99)
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows.values.tolist()}})

    def predict() -> list[float]:
        response = runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json", Body=body)
        return list(json.loads(response["Body"].read())["predictions"])

    # v1: train, log, register, promote, deploy.
    v1, version1 = _train_and_register([1.0, 2.0, 3.0], 1.0)
    _promote(client, version1)
    created = _modelyard(
        env,
        "create",
        "--target",
        "sagemaker",
        "--endpoint",
        ENDPOINT,
        "--model-uri",
        f"models:/{MODEL}/Production",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["EndpointStatus"] == "InService"
    assert np.allclose(predict(), v1.predict(rows))

    # v2: promote and update while two clients call the endpoint continuously.
    v2, version2 = _train_and_register([-1.0, 0.5, 4.0], 10.0)
    _promote(client, version2)
    invokers = [Invoker(runtime, body), Invoker(runtime, body)]
    for invoker in invokers:
        invoker.start()
    try:
        for invoker in invokers:
            invoker.wait_for(5)
        updated = _modelyard(
            env, "update", "--endpoint", ENDPOINT, "--model-uri", f"models:/{MODEL}/Production"
        )
        assert updated.returncode == 0, updated.stderr
        done = [len(i.answers) + len(i.failures) for i in invokers]
        for invoker, seen in zip(invokers, done, strict=True):
            invoker.wait_for(seen + 10)
    finally:
        for invoker in invokers:
            invoker.stopping.set()
        for invoker in invokers:
            invoker.join(timeout=120)
    expected1, expected2 = v1.predict(rows), v2.predict(rows)
    for invoker in invokers:
        assert invoker.failures == [], invoker.failures[:3]
        sources = [
            "v1" if np.allclose(a, expected1) else "v2" if np.allclose(a, expected2) else "?"
            for a in invoker.answers
        ]
        assert "?" not in sources
        switch = sources.index("v2")
        assert sources[:switch] == ["v1"] * switch and sources[switch:] == ["v2"] * (len(sources) - switch), (
            "once v2 answers, v1 never does again"
        )
        assert switch > 0
        print(f"invoker: {switch} answers from v1, {len(sources) - switch} from v2")
    assert np.allclose(predict(), expected2)
    csv = tmp_path / "rows.csv"
    rows.to_csv(csv, index=False)
    from_cli = _modelyard(env, "predict", "--endpoint", ENDPOINT, "--input-path", str(csv))
    assert from_cli.returncode == 0, from_cli.stderr
    assert np.allclose(json.loads(from_cli.stdout)["predictions"], expected2)

    # v3 cannot load: the update fails with the reason, and v2 keeps serving.
    module, source = import_source(tmp_path / "src", "corrupt_model", BROKEN_SOURCE)
    with mlflow.start_run():
        broken = mlflow.pyfunc.log_model(
            name="model",
            python_model=module.CorruptModel(),
            code_paths=[str(source)],
            registered_model_name=MODEL,
        )
    version3 = str(broken.registered_model_version)
    _promote(client, version3)
    failed = _modelyard(
        env,
        "update",
        "--endpoint",
        ENDPOINT,
        "--model-uri",
        f"models:/{MODEL}/Production",
        "--timeout",
        "180",
    )
    assert failed.returncode != 0
    assert "weights file is corrupt" in failed.stderr, failed.stderr
    assert np.allclose(predict(), expected2)
    described = json.loads(_modelyard(env, "get", "--endpoint", ENDPOINT).stdout)
    assert described["EndpointStatus"] == "InService"
    assert "weights file is corrupt" in described["FailureReason"]
    listed = _modelyard(env, "list")
    assert listed.stdout.split() == [ENDPOINT, "InService"]

    # The deploy history is on the model versions.
    history = {
        v: json.loads(client.get_model_version(MODEL, v).tags[DEPLOY_TAG])
        for v in (version1, version2, version3)
    }
    # v2's replace took v1 off the endpoint; v3's failed update took nothing off.
    assert [history[v]["status"] for v in (version1, version2, version3)] == [
        "Replaced",
        "InService",
        "Failed",
    ]
    assert history[version1]["by"] == f"models:/{MODEL}/{version2}"
    assert history[version2]["mode"] == "replace"
    assert "weights file is corrupt" in history[version3]["error"]

    # Roll the failed promotion back: v3 leaves Production, v2 (archived by it) returns, and the
    # endpoint last deployed from models:/MODEL/Production is redeployed with it, all in the history.
    rolled = subprocess.run(
        [str(Path(sys.executable).parent / "modelyard"), "models", "rollback", MODEL, "--stage", "Production", "--yes"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rolled.returncode == 0, rolled.stderr
    assert f"endpoint {ENDPOINT} is InService" in rolled.stdout
    stages = {v: client.get_model_version(MODEL, v).current_stage for v in (version2, version3)}
    assert stages == {version2: "Production", version3: "None"}
    assert np.allclose(predict(), expected2)
    lines = subprocess.run(
        [str(Path(sys.executable).parent / "modelyard"), "models", "history", MODEL, "--max-results", "6"],
        env=env, capture_output=True, text=True, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    assert f"deploy_succeeded v{version2} endpoint={ENDPOINT}" in lines[0], lines
    assert any(f"stage_transitioned Production v{version2} (was Archived)" in line for line in lines), lines
    assert any(f"deploy_rolled_back v{version3}" in line for line in lines), lines

    deleted = _modelyard(env, "delete", "--endpoint", ENDPOINT)
    assert deleted.returncode == 0, deleted.stderr
    assert _modelyard(env, "list").stdout.strip() == ""
    # The version the endpoint served when deleted says so (through the server's REST API).
    assert json.loads(client.get_model_version(MODEL, version2).tags[DEPLOY_TAG])["status"] == "Deleted"
