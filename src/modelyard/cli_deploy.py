"""`modelyard deploy`: put a registered model behind a SageMaker(-style) endpoint and manage it.

Every option defaults to something that works against the local stack (`source .stack/env` gives boto3
its endpoints), so `modelyard deploy create --endpoint churn --model-uri models:/churn/Production` is the
whole command locally; on AWS, leave --endpoint-url empty and pass --execution-role-arn and --image-uri.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from modelyard.deploy.sagemaker import MODES, DeploymentError, DeployOptions, SageMakerDeployer
from modelyard.exceptions import ModelyardException


def _options(f: Any) -> Any:
    decorators = [
        click.option("--target", type=click.Choice(["sagemaker"]), default="sagemaker", show_default=True),
        click.option("--region", default=None, help="AWS region (default: boto3's configuration)."),
        click.option(
            "--endpoint-url",
            default=None,
            help="SageMaker API URL; empty for AWS or AWS_ENDPOINT_URL_SAGEMAKER.",
        ),
        click.option(
            "--runtime-endpoint-url", default=None, help="SageMaker runtime URL (defaults to --endpoint-url)."
        ),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def _deployer(
    target: str, region: str | None, endpoint_url: str | None, runtime_endpoint_url: str | None, **kw: Any
) -> SageMakerDeployer:
    options = DeployOptions(
        region=region, endpoint_url=endpoint_url, runtime_endpoint_url=runtime_endpoint_url
    )
    for key, value in kw.items():
        if value is not None:
            setattr(options, key, value)
    return SageMakerDeployer(options)


def _deploy_options(f: Any) -> Any:
    decorators = [
        click.option("--endpoint", "endpoint", required=True, help="Endpoint name."),
        click.option(
            "--model-uri", "-m", required=True, help="models:/name/Production, models:/name@alias, runs:/..."
        ),
        click.option("--execution-role-arn", default=None, help="IAM role SageMaker assumes (AWS only)."),
        click.option(
            "--image-uri",
            default=None,
            help="Serving image (AWS: an ECR image of services/serving/Dockerfile).",
        ),
        click.option("--instance-type", default=None, help="Instance type [ml.m5.large]."),
        click.option(
            "--instance-count", type=int, default=None, help="Instances (local: serving workers) [1]."
        ),
        click.option("--bucket", default=None, help="S3 bucket for model.tar.gz [$MODELYARD_DEPLOY_BUCKET]."),
        click.option(
            "--mode",
            type=click.Choice(MODES),
            default=None,
            help="create | replace | add (a second variant).",
        ),
        click.option(
            "--variant-weight", type=float, default=None, help="Traffic weight of the new variant [1.0]."
        ),
        click.option(
            "--timeout",
            "timeout_seconds",
            type=float,
            default=None,
            help="Seconds to wait for InService [600].",
        ),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def _print(data: Any) -> None:
    """The answer as JSON, without boto3's `ResponseMetadata` (request id, HTTP headers, retries): the
    endpoint's description is what a user asked for."""
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key != "ResponseMetadata"}
    click.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def _errors() -> Iterator[None]:
    """What went wrong, in one line on stderr and exit status 1, not a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (DeploymentError, ModelyardException, ClientError, BotoCoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.group("deploy")
def deploy() -> None:
    """Deploy models to SageMaker or the local SageMaker-style endpoint service."""


@deploy.command("create")
@_options
@_deploy_options
def create(
    target: str,
    region: str | None,
    endpoint_url: str | None,
    runtime_endpoint_url: str | None,
    endpoint: str,
    model_uri: str,
    **kw: Any,
) -> None:
    """Create an endpoint serving MODEL_URI (waits for InService; rolls back on failure)."""
    with _errors():
        _print(
            _deployer(target, region, endpoint_url, runtime_endpoint_url, **kw).create(endpoint, model_uri)
        )


@deploy.command("update")
@_options
@_deploy_options
def update(
    target: str,
    region: str | None,
    endpoint_url: str | None,
    runtime_endpoint_url: str | None,
    endpoint: str,
    model_uri: str,
    **kw: Any,
) -> None:
    """Move an endpoint to MODEL_URI (replace, or add a variant); the old version serves until the new one is up."""
    kw["mode"] = kw.get("mode") or "replace"
    with _errors():
        _print(
            _deployer(target, region, endpoint_url, runtime_endpoint_url, **kw).update(endpoint, model_uri)
        )


@deploy.command("delete")
@_options
@click.option("--endpoint", "endpoint", required=True)
def delete(
    target: str, region: str | None, endpoint_url: str | None, runtime_endpoint_url: str | None, endpoint: str
) -> None:
    """Delete an endpoint, its config and its models."""
    with _errors():
        _deployer(target, region, endpoint_url, runtime_endpoint_url).delete(endpoint)
    click.echo(f"deleted {endpoint}")


@deploy.command("list")
@_options
def list_(
    target: str, region: str | None, endpoint_url: str | None, runtime_endpoint_url: str | None
) -> None:
    """List endpoints."""
    with _errors():
        endpoints = _deployer(target, region, endpoint_url, runtime_endpoint_url).list()
    for e in endpoints:
        click.echo(f"{e['EndpointName']}\t{e['EndpointStatus']}")


@deploy.command("get")
@_options
@click.option("--endpoint", "endpoint", required=True)
def get(
    target: str, region: str | None, endpoint_url: str | None, runtime_endpoint_url: str | None, endpoint: str
) -> None:
    """Describe an endpoint."""
    with _errors():
        _print(_deployer(target, region, endpoint_url, runtime_endpoint_url).get(endpoint))


@deploy.command("predict")
@_options
@click.option("--endpoint", "endpoint", required=True)
@click.option(
    "--input-path",
    "-i",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON in MLflow's scoring format, or CSV (by extension).",
)
def predict(
    target: str,
    region: str | None,
    endpoint_url: str | None,
    runtime_endpoint_url: str | None,
    endpoint: str,
    input_path: Path,
) -> None:
    """Score a file through the endpoint."""
    content_type = "text/csv" if input_path.suffix.lower() == ".csv" else "application/json"
    with _errors():
        deployer = _deployer(target, region, endpoint_url, runtime_endpoint_url)
        _print(deployer.predict(endpoint, input_path.read_bytes(), content_type))
