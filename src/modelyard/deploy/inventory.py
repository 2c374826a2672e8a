"""What is deployed: endpoints of the configured SageMaker API (the local endpoint service or AWS)
with their variants, read for the web UI's Deployments pages.

Variants are tied back to registered model versions through the registry's history: every
`deploy_succeeded` event names the endpoint, the variant and the version it deployed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.protocol import errors

#: Endpoints a page describes at most (each costs two API calls).
MAX_ENDPOINTS = 50


@dataclass(frozen=True)
class VariantStatus:
    name: str
    weight: float
    instance_type: str | None
    instance_count: int | None
    sagemaker_model: str | None
    #: (registered model, version) when the registry's history knows which version this is.
    model_version: tuple[str, str] | None = None


@dataclass(frozen=True)
class EndpointStatus:
    name: str
    status: str
    config_name: str | None
    created: int | None
    last_modified: int | None
    failure_reason: str | None
    variants: list[VariantStatus] = field(default_factory=list)


class SageMakerUnavailable(ModelyardException):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The SageMaker API is not reachable: {reason}", errors.TEMPORARILY_UNAVAILABLE)


def sagemaker_client() -> Any:
    """A boto3 SageMaker client as `modelyard deploy` builds it (AWS_ENDPOINT_URL_SAGEMAKER locally)."""
    import boto3
    from botocore.config import Config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
    return boto3.client("sagemaker", region_name=region, config=config)


def _millis(value: Any) -> int | None:
    timestamp = getattr(value, "timestamp", None)
    if callable(timestamp):
        return int(timestamp() * 1000)
    return int(float(value) * 1000) if isinstance(value, (int, float)) else None


def describe(client: Any, name: str, versions: dict[str, tuple[str, str]] | None = None) -> EndpointStatus:
    """One endpoint; `versions` maps variant names to the (model, version) they serve."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        endpoint = client.describe_endpoint(EndpointName=name)
        config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ValidationException", "ResourceNotFound"):
            raise ModelyardException.not_found(f"Endpoint {name} not found.") from exc
        raise SageMakerUnavailable(str(exc)) from exc
    except BotoCoreError as exc:
        raise SageMakerUnavailable(str(exc)) from exc
    configured = {v["VariantName"]: v for v in config.get("ProductionVariants", [])}
    variants = []
    for live in endpoint.get("ProductionVariants") or list(configured.values()):
        spec = configured.get(live["VariantName"], {})
        variants.append(
            VariantStatus(
                name=live["VariantName"],
                weight=float(live.get("CurrentWeight", spec.get("InitialVariantWeight", 1.0))),
                instance_type=spec.get("InstanceType"),
                instance_count=live.get("CurrentInstanceCount", spec.get("InitialInstanceCount")),
                sagemaker_model=spec.get("ModelName"),
                model_version=(versions or {}).get(live["VariantName"]),
            )
        )
    return EndpointStatus(
        name=name,
        status=str(endpoint.get("EndpointStatus", "")),
        config_name=endpoint.get("EndpointConfigName"),
        created=_millis(endpoint.get("CreationTime")),
        last_modified=_millis(endpoint.get("LastModifiedTime")),
        failure_reason=endpoint.get("FailureReason"),
        variants=variants,
    )


def endpoint_names(client: Any) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        listed = client.list_endpoints(MaxResults=MAX_ENDPOINTS, SortBy="CreationTime", SortOrder="Descending")
    except (BotoCoreError, ClientError) as exc:
        raise SageMakerUnavailable(str(exc)) from exc
    return [e["EndpointName"] for e in listed.get("Endpoints", [])][:MAX_ENDPOINTS]


def _call(action: Any, **kwargs: Any) -> Any:
    """A SageMaker call whose refusal is the user's to fix (a 400 with SageMaker's message)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return action(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in ("ValidationException", "ResourceNotFound"):
            raise ModelyardException.invalid_parameter(str(error.get("Message") or exc)) from exc
        raise SageMakerUnavailable(str(exc)) from exc
    except BotoCoreError as exc:
        raise SageMakerUnavailable(str(exc)) from exc


def shift_weights(client: Any, name: str, desired: list[dict[str, Any]]) -> None:
    _call(client.update_endpoint_weights_and_capacities, EndpointName=name, DesiredWeightsAndCapacities=desired)


def delete(client: Any, name: str) -> None:
    """The endpoint, its config and its models (what `modelyard deploy delete` removes)."""
    from modelyard.deploy.sagemaker import delete_endpoint

    _call(delete_endpoint, sagemaker=client, endpoint=name)
