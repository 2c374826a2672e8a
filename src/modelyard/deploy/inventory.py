"""What is deployed: endpoints of the configured SageMaker API (the local endpoint service or AWS)
with their variants, read for the web UI's Deployments pages.

Variants are tied back to registered model versions through the registry's history: every
`deploy_succeeded` event names the endpoint, the variant and the version it deployed.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.store.registry import events
from modelyard.store.registry.events import RegistryEvent

#: Endpoints a page describes at most (each costs two API calls).
MAX_ENDPOINTS = 50
#: The outcomes a deploy step records after its `deploy_started`.
OUTCOMES = (events.DEPLOY_SUCCEEDED, events.DEPLOY_FAILED, events.DEPLOY_ROLLED_BACK)

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


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


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def sagemaker_client(service: str = "sagemaker") -> Any:
    """A boto3 SageMaker (or `sagemaker-runtime`, or `cloudwatch` for its invocation counts) client as
    `modelyard deploy` builds it (AWS_ENDPOINT_URL_SAGEMAKER(_RUNTIME) locally)."""
    import boto3
    from botocore.config import Config

    # A prediction may take a while; the endpoint page's counts must not (`deploy.invocations`).
    read_timeout = {"sagemaker-runtime": 60, "cloudwatch": 1}.get(service, 10)
    config = Config(connect_timeout=min(2, read_timeout), read_timeout=read_timeout, retries={"max_attempts": 1})
    return boto3.client(service, region_name=region(), config=config)


def has_shared_client(service: str = "sagemaker") -> bool:
    with _clients_lock:
        return any(key.startswith(service + "|") for key in _clients)


def shared_client(service: str = "sagemaker") -> Any:
    """One client per worker, service and environment (boto3 clients are thread-safe and cost ~40 ms
    to build; a changed AWS_ENDPOINT_URL_* or region gets a new one)."""
    key = "|".join([service, region(), *(os.environ.get(k, "") for k in _ENDPOINT_VARIABLES)])
    with _clients_lock:
        if key not in _clients:
            _clients[key] = sagemaker_client(service)
        return _clients[key]


def _millis(value: Any) -> int | None:
    timestamp = getattr(value, "timestamp", None)
    if callable(timestamp):
        return int(timestamp() * 1000)
    return int(float(value) * 1000) if isinstance(value, (int, float)) else None


def describe(
    client: Any, name: str, versions: dict[str, tuple[str, str]] | None = None, *, with_config: bool = True
) -> EndpointStatus:
    """One endpoint; `versions` maps variant names to the (model, version) they serve. Without its
    config (one call instead of two): the live variants' names and weights, not their instance types
    and SageMaker models (nor any variant of an endpoint that has none live yet)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        endpoint = client.describe_endpoint(EndpointName=name)
        config = (
            client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"]) if with_config else {}
        )
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


def plan_weights(endpoint: EndpointStatus, weights: dict[str, str]) -> list[dict[str, Any]]:
    """`{variant: typed weight}` checked against the endpoint as SageMaker would (every name one of
    its variants, each weight a number from 0 to 1,000,000, at least one above 0), as
    UpdateEndpointWeightsAndCapacities' `DesiredWeightsAndCapacities`."""
    import math

    if endpoint.status != "InService":
        raise ModelyardException.invalid_parameter(f"Endpoint {endpoint.name} is {endpoint.status}: wait until it is InService.")
    known = {v.name: v for v in endpoint.variants}
    desired: list[dict[str, Any]] = []
    for variant, raw in weights.items():
        if variant not in known:
            raise ModelyardException.invalid_parameter(f"Endpoint {endpoint.name} has no variant {variant!r}.")
        try:
            weight = float(raw)
        except ValueError as exc:
            raise ModelyardException.invalid_parameter(f"The weight of {variant} must be a number, not {raw!r}.") from exc
        if not math.isfinite(weight) or not 0 <= weight <= 1e6:
            raise ModelyardException.invalid_parameter(f"The weight of {variant} must be from 0 to 1000000.")
        desired.append({"VariantName": variant, "DesiredWeight": weight})
    if not desired:
        raise ModelyardException.invalid_parameter("Give at least one variant's weight.")
    after = {v.name: v.weight for v in endpoint.variants} | {d["VariantName"]: d["DesiredWeight"] for d in desired}
    if sum(after.values()) <= 0:
        raise ModelyardException.invalid_parameter("At least one variant must keep a weight above 0.")
    return desired


def traffic_shares(weights: dict[str, float]) -> dict[str, float]:
    """Each variant's share of the traffic in %, from its weight."""
    total = sum(weights.values())
    return {name: round(100 * w / total, 1) if total else 0.0 for name, w in weights.items()}


def delete(client: Any, name: str) -> None:
    """The endpoint, its config and its models (what `modelyard deploy delete` removes)."""
    from modelyard.deploy.sagemaker import delete_endpoint

    _call(delete_endpoint, sagemaker=client, endpoint=name)


def invoke(runtime: Any, endpoint: str, variant: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    """One prediction from one variant of an endpoint (TargetVariant: the version asked for, not the
    one the weights pick). A model's refusal (SageMaker's 424 ModelError) is answered, not raised:
    (the model's status, its message)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint, TargetVariant=variant, Body=body, ContentType=content_type, Accept="application/json"
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ModelError" or exc.response.get("OriginalStatusCode"):
            status = int(exc.response.get("OriginalStatusCode") or 424)
            return status, str(exc.response.get("OriginalMessage") or error.get("Message") or exc).encode()
        if error.get("Code") in ("ValidationError", "ValidationException"):
            raise ModelyardException.invalid_parameter(str(error.get("Message") or exc)) from exc
        raise SageMakerUnavailable(str(exc)) from exc
    except BotoCoreError as exc:
        raise SageMakerUnavailable(str(exc)) from exc
    return 200, answer["Body"].read()


def serving(client: Any, candidates: dict[str, dict[str, tuple[str, str]]], name: str, version: str) -> list[tuple[str, str]]:
    """(endpoint, variant) pairs that serve model `name` version `version` now, among `candidates`
    (endpoint -> its variants' versions, from the history); an endpoint gone or not InService is left out."""
    from concurrent.futures import ThreadPoolExecutor

    def described(item: tuple[str, dict[str, tuple[str, str]]]) -> EndpointStatus | None:
        try:
            return describe(client, *item, with_config=False)  # which variants serve: no config needed
        except SageMakerUnavailable:
            raise
        except ModelyardException:
            return None  # deleted since

    chosen = list(candidates.items())[:MAX_ENDPOINTS]
    # The endpoints' descriptions are independent, so they wait together.
    with ThreadPoolExecutor(max(1, min(8, len(chosen)))) as pool:
        statuses = list(pool.map(described, chosen))
    out = []
    for (endpoint, _), status in zip(chosen, statuses, strict=True):
        if status is not None and status.status == "InService":
            out += [(endpoint, v.name) for v in status.variants if v.model_version == (name, str(version))]
    return out


# --- what the registry's history says about an endpoint ----------------------------------------
@dataclass(frozen=True)
class DeployState:
    """From an endpoint's history, newest first: a deploy under way, one that stopped without an
    outcome (its process ended), and the last outcome when it was a failure."""

    pending: RegistryEvent | None = None
    interrupted: RegistryEvent | None = None
    failure: RegistryEvent | None = None


def deploy_state(timeline: list[RegistryEvent], now_ms: int, timeout_seconds: float) -> DeployState:
    """A `deploy_started` without an outcome for its config is pending until its deployer's timeout
    (plus a minute) has passed, then reported as interrupted."""
    finished = {e.details.get("config") for e in timeline if e.kind in OUTCOMES}
    pending = interrupted = failure = None
    started = next((e for e in timeline if e.kind == events.DEPLOY_STARTED), None)
    if started is not None and started.details.get("config") not in finished:
        if now_ms - started.timestamp < (timeout_seconds + 60) * 1000:
            pending = started
        else:
            interrupted = started
    outcome = next((e for e in timeline if e.kind in OUTCOMES), None)
    if outcome is not None and outcome.kind != events.DEPLOY_SUCCEEDED:
        failure = outcome
    return DeployState(pending, interrupted, failure)


def rollback_target(timeline: list[RegistryEvent]) -> tuple[str, str] | None:
    """The version to roll an endpoint back to: the newest successful deploy's version other than
    the newest deploy's own (so a rollback after a canary drops it, and a second rollback undoes
    the first)."""
    deployed = [(e.name, e.version) for e in timeline if e.kind == events.DEPLOY_SUCCEEDED and e.version]
    if not deployed:
        return None
    return next((d for d in deployed[1:] if d != deployed[0]), None)
