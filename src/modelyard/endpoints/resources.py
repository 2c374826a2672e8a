"""The control-plane resources (models, endpoint configs, endpoints) and their JSON forms."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.endpoints.errors import validation

REGION = "us-east-1"
ACCOUNT = "000000000000"


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise validation(
            f"1 validation error detected: Value at '{key}' failed to satisfy constraint: Member must not be null"
        )
    if len(value) > 63 or not all(c.isalnum() or c == "-" for c in value):
        raise validation(f"Value '{value}' at '{key}' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}")
    return value


@dataclass
class Model:
    name: str
    image: str
    model_data_url: str
    execution_role_arn: str
    environment: dict[str, str] = field(default_factory=dict)
    creation_time: float = field(default_factory=time.time)

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> Model:
        name = _required_str(body, "ModelName")
        container = body.get("PrimaryContainer") or (body.get("Containers") or [None])[0]
        if not isinstance(container, dict):
            raise validation("PrimaryContainer is required.")
        url = container.get("ModelDataUrl")
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise validation("PrimaryContainer.ModelDataUrl must be an s3:// URL of a model.tar.gz.")
        return cls(
            name=name,
            image=str(container.get("Image", "")),
            model_data_url=url,
            execution_role_arn=str(body.get("ExecutionRoleArn", "")),
            environment=dict(container.get("Environment") or {}),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "ModelName": self.name,
            "ModelArn": arn("model", self.name),
            "PrimaryContainer": {
                "Image": self.image,
                "ModelDataUrl": self.model_data_url,
                "Environment": self.environment,
            },
            "ExecutionRoleArn": self.execution_role_arn,
            "CreationTime": self.creation_time,
        }


@dataclass
class Variant:
    variant_name: str
    model_name: str
    initial_instance_count: int = 1
    instance_type: str = "ml.m5.large"
    initial_variant_weight: float = 1.0

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> Variant:
        try:
            count = int(body.get("InitialInstanceCount", 1))
            weight = float(body.get("InitialVariantWeight", 1.0))
        except (TypeError, ValueError) as exc:
            raise validation(f"Invalid production variant: {exc}") from exc
        if count < 1 or weight < 0:
            raise validation("InitialInstanceCount must be >= 1 and InitialVariantWeight >= 0.")
        return cls(
            variant_name=_required_str(body, "VariantName"),
            model_name=_required_str(body, "ModelName"),
            initial_instance_count=count,
            instance_type=str(body.get("InstanceType", "ml.m5.large")),
            initial_variant_weight=weight,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "VariantName": self.variant_name,
            "ModelName": self.model_name,
            "InitialInstanceCount": self.initial_instance_count,
            "InstanceType": self.instance_type,
            "InitialVariantWeight": self.initial_variant_weight,
        }


@dataclass
class EndpointConfig:
    name: str
    variants: list[Variant]
    creation_time: float = field(default_factory=time.time)

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> EndpointConfig:
        name = _required_str(body, "EndpointConfigName")
        raw = body.get("ProductionVariants")
        if not isinstance(raw, list) or not raw:
            raise validation("ProductionVariants must list at least one variant.")
        variants = [Variant.from_request(v if isinstance(v, dict) else {}) for v in raw]
        names = [v.variant_name for v in variants]
        if len(set(names)) != len(names):
            raise validation("VariantName must be unique within an endpoint config.")
        if sum(v.initial_variant_weight for v in variants) <= 0:
            raise validation("At least one variant must have a positive InitialVariantWeight.")
        return cls(name=name, variants=variants)

    def describe(self) -> dict[str, Any]:
        return {
            "EndpointConfigName": self.name,
            "EndpointConfigArn": arn("endpoint-config", self.name),
            "ProductionVariants": [v.describe() for v in self.variants],
            "CreationTime": self.creation_time,
        }


@dataclass
class Endpoint:
    name: str
    config_name: str
    status: str = "Creating"
    failure_reason: str | None = None
    creation_time: float = field(default_factory=time.time)
    last_modified_time: float = field(default_factory=time.time)
    #: The config whose variants are serving now (differs from config_name while Updating).
    serving_config_name: str | None = None
    #: Weights set by UpdateEndpointWeightsAndCapacities since the config was deployed, by variant.
    weights: dict[str, float] = field(default_factory=dict)

    def touch(self, status: str, failure_reason: str | None = None) -> None:
        self.status = status
        self.failure_reason = failure_reason
        self.last_modified_time = time.time()

    def summary(self) -> dict[str, Any]:
        return {
            "EndpointName": self.name,
            "EndpointArn": arn("endpoint", self.name),
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "EndpointStatus": self.status,
        }

    def to_state(self) -> dict[str, Any]:
        return asdict(self)
