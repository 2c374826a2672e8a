"""Deploy a registered model version to a SageMaker(-style) endpoint, and manage it.

create/update: resolve the model URI -> package `model.tar.gz` to S3 -> CreateModel ->
CreateEndpointConfig -> CreateEndpoint or UpdateEndpoint -> wait for InService -> on failure delete
what this call created (the endpoint keeps serving its previous config) -> record the outcome as a tag on
the model version. boto3 resolves endpoints itself (`AWS_ENDPOINT_URL_SAGEMAKER`, `AWS_ENDPOINT_URL_S3`,
... as `make up` writes them), so the same code reaches AWS or the local stack.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelyard.deploy.packaging import package_model

LOCAL_EXECUTION_ROLE = "arn:aws:iam::000000000000:role/modelyard-local"
LOCAL_IMAGE = "modelyard-serving:latest"
DEPLOY_TAG_PREFIX = "modelyard.deploy."
MODES = ("create", "replace", "add")
#: The deploy tag's `status` of a version whose variant a replace took off the endpoint, or whose
#: endpoint was deleted (besides "InService" and "Failed", which `_record` writes).
REPLACED, DELETED = "Replaced", "Deleted"
#: Deploy events of an endpoint read to name its variants' versions (the web UI reads as many).
HISTORY_SIZE = 200

logger = logging.getLogger(__name__)


class DeploymentError(Exception):
    """A deployment that did not reach InService; the endpoint keeps what it served before.

    `recorded`: the failure is already in the registry's history (and on the version's tag)."""

    def __init__(self, message: str, recorded: bool = False) -> None:
        super().__init__(message)
        self.recorded = recorded


@dataclass
class DeployOptions:
    region: str | None = None
    #: SageMaker control-plane URL; None lets boto3 resolve it (AWS, or AWS_ENDPOINT_URL_SAGEMAKER).
    endpoint_url: str | None = None
    runtime_endpoint_url: str | None = None
    execution_role_arn: str = field(
        default_factory=lambda: os.environ.get("MODELYARD_SAGEMAKER_ROLE_ARN", LOCAL_EXECUTION_ROLE)
    )
    image_uri: str = field(
        default_factory=lambda: os.environ.get("MODELYARD_SAGEMAKER_IMAGE_URI", LOCAL_IMAGE)
    )
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    bucket: str = field(default_factory=lambda: os.environ.get("MODELYARD_DEPLOY_BUCKET", "modelyard-deploy"))
    prefix: str = "deployments"
    #: create | replace | add (add = one more variant taking `variant_weight` of the traffic).
    mode: str = "create"
    variant_weight: float = 1.0
    timeout_seconds: float = 600.0
    poll_seconds: float = 1.0
    #: Why this deployment happens ("promote", "rollback"), recorded with it in the registry's history.
    reason: str = ""


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-zA-Z0-9-]+", "-", text).strip("-")
    return (slug or "model")[:limit].strip("-")


def delete_endpoint(sagemaker: Any, endpoint: str) -> list[str]:
    """The endpoint, its config and the models its variants ran; returns the variants' names."""
    description = sagemaker.describe_endpoint(EndpointName=endpoint)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=description["EndpointConfigName"])
    sagemaker.delete_endpoint(EndpointName=endpoint)
    sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
    for variant in config["ProductionVariants"]:
        SageMakerDeployer._ignore_missing(sagemaker.delete_model, ModelName=variant["ModelName"])
    return [str(variant["VariantName"]) for variant in config["ProductionVariants"]]


def record_off_endpoint(
    tracking: Any, endpoint: str, versions: Iterable[tuple[str, str]], status: str, **details: str
) -> None:
    """Each version's deploy tag for `endpoint` says it no longer serves there (`status` REPLACED
    or DELETED), so the model page stops showing it as deployed. Best-effort, like `_record`."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for name, version in sorted(set(versions)):
        _write_tag(tracking, name, version, endpoint, {"endpoint": endpoint, "status": status, "time": now, **details})


def _write_tag(tracking: Any, name: str, version: str, endpoint: str, value: dict[str, Any]) -> None:
    try:
        tracking.set_model_version_tag(name, version, DEPLOY_TAG_PREFIX + endpoint, json.dumps(value))
    except Exception as exc:
        # The endpoint is what it is whether or not the registry heard about it: say so, do not fail.
        logger.warning("Could not record the deployment on %s version %s: %s", name, version, exc)


#: Puts the model directory of a model URI at a local path and returns it (default: `download_model`).
ModelFetcher = Callable[[str, Path], str]


class SageMakerDeployer:
    def __init__(
        self,
        options: DeployOptions | None = None,
        tracking_client: Any | None = None,
        fetch_model: ModelFetcher | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        """`tracking_client` answers the registry calls (a `Client` from the environment by default);
        `fetch_model` reads the model's files (the tracking service passes one that reads its own
        artifact store, since it cannot resolve `mlflow-artifacts:` through itself over HTTP);
        `on_event` hears each history kind (`deploy_started`, ...) once it is recorded."""
        import boto3

        self.options = options or DeployOptions()
        o = self.options
        self.sagemaker = boto3.client("sagemaker", region_name=o.region, endpoint_url=o.endpoint_url or None)
        self.runtime = boto3.client(
            "sagemaker-runtime",
            region_name=o.region,
            endpoint_url=o.runtime_endpoint_url or o.endpoint_url or None,
        )
        self.s3 = boto3.client(
            "s3", region_name=o.region, endpoint_url=os.environ.get("MODELYARD_S3_ENDPOINT_URL") or None
        )
        self._client = tracking_client
        self._fetch_model = fetch_model
        self._on_event = on_event

    # ---- public API --------------------------------------------------------------------------
    def create(self, endpoint: str, model_uri: str) -> dict[str, Any]:
        if self._exists(endpoint):
            if self.options.mode == "create":
                raise DeploymentError(
                    f"Endpoint {endpoint} already exists: use update (or --mode replace/add)."
                )
            return self.update(endpoint, model_uri)
        return self._deploy(endpoint, model_uri, existing=None)

    def update(self, endpoint: str, model_uri: str) -> dict[str, Any]:
        if not self._exists(endpoint):
            raise DeploymentError(f"Endpoint {endpoint} does not exist: use create.")
        return self._deploy(
            endpoint, model_uri, existing=self.sagemaker.describe_endpoint(EndpointName=endpoint)
        )

    def delete(self, endpoint: str) -> None:
        variants = delete_endpoint(self.sagemaker, endpoint)
        served = self._record_off(endpoint, variants, DELETED, {})
        from modelyard.store.registry.events import ENDPOINT_DELETED

        for variant, version in served.items():  # the history says so too, as the web UI's delete records it
            self._history(version, endpoint, ENDPOINT_DELETED, {"variant": variant})

    def list(self) -> list[dict[str, Any]]:
        return list(self.sagemaker.list_endpoints().get("Endpoints", []))

    def get(self, endpoint: str) -> dict[str, Any]:
        return dict(self.sagemaker.describe_endpoint(EndpointName=endpoint))

    def predict(
        self, endpoint: str, payload: dict[str, Any] | bytes, content_type: str = "application/json"
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = self.runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type)
        return json.loads(response["Body"].read())

    # ---- steps -------------------------------------------------------------------------------
    def _deploy(self, endpoint: str, model_uri: str, existing: dict[str, Any] | None) -> dict[str, Any]:
        o = self.options
        if o.mode not in MODES:
            raise DeploymentError(f"Unknown mode {o.mode!r}; expected one of {MODES}.")
        version = self._resolve_version(model_uri)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S%f")[:17]
        label = f"{version[0]}-v{version[1]}" if version else "model"
        # Names are at most 63 characters: 41 + "-" + 17-digit stamp + "-cfg".
        model_name = _slug(f"{endpoint}-{label}", 41) + f"-{stamp}"
        config_name = model_name + "-cfg"
        started = {"config": config_name, "mode": o.mode, "model_uri": model_uri, **self._reason()}
        self._history(version, endpoint, "deploy_started", started)
        model_created = config_created = endpoint_created = False
        try:
            # Everything after "started" either reaches InService or is undone and recorded as failed.
            model_data_url = self._upload(model_uri, endpoint, model_name)
            self.sagemaker.create_model(
                ModelName=model_name,
                PrimaryContainer={"Image": o.image_uri, "ModelDataUrl": model_data_url, "Environment": {}},
                ExecutionRoleArn=o.execution_role_arn,
            )
            model_created = True
            variants = self._variants(existing, model_name)
            self.sagemaker.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=variants)
            config_created = True
            if existing is None:
                self.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
                endpoint_created = True
            else:
                self.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
            description = self._wait(endpoint, config_name)
        except Exception as exc:
            try:
                self._roll_back(
                    endpoint,
                    config_name if config_created else None,
                    model_name if model_created else None,
                    delete_endpoint=endpoint_created,
                )
            except Exception as cleanup:  # the outcome is still recorded; what is left is logged
                logger.warning("Could not undo the failed deployment %s of %s: %s", config_name, endpoint, cleanup)
            self._record(version, endpoint, "Failed", config_name, str(exc))
            # An update that failed leaves the endpoint on its old config: say so in the history.
            kind = "deploy_rolled_back" if existing is not None else "deploy_failed"
            self._history(version, endpoint, kind, {"config": config_name, "error": str(exc)[:1000]})
            raise DeploymentError(str(exc), recorded=version is not None) from exc
        removed = self._retire(existing, keep={v["ModelName"] for v in variants}) if existing is not None else []
        self._record(version, endpoint, "InService", config_name, None)
        by = f"models:/{version[0]}/{version[1]}" if version else model_uri
        self._record_off(endpoint, removed, REPLACED, {"config": config_name, "by": by, "mode": o.mode}, keep=version)
        self._history(
            version,
            endpoint,
            "deploy_succeeded",
            {
                "config": config_name,
                "mode": o.mode,
                "model_uri": model_uri,
                "variant": variants[-1]["VariantName"],
                "weight": variants[-1]["InitialVariantWeight"],
                "instance_type": o.instance_type,
                "instance_count": o.instance_count,
                **self._reason(),
            },
        )
        return description

    def _reason(self) -> dict[str, str]:
        return {"reason": self.options.reason} if self.options.reason else {}

    def _variants(self, existing: dict[str, Any] | None, model_name: str) -> list[dict[str, Any]]:
        o = self.options
        new = {
            "VariantName": _slug(model_name, 63),
            "ModelName": model_name,
            "InitialInstanceCount": o.instance_count,
            "InstanceType": o.instance_type,
            "InitialVariantWeight": o.variant_weight,
        }
        if existing is None or o.mode != "add":
            return [new]
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=existing["EndpointConfigName"])
        return [*config["ProductionVariants"], new]

    def _wait(self, endpoint: str, config_name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.options.timeout_seconds
        while True:
            description = self.sagemaker.describe_endpoint(EndpointName=endpoint)
            status = description["EndpointStatus"]
            if status == "InService":
                if description.get("EndpointConfigName") == config_name:
                    return dict(description)
                # Still on the old config: rolled back if it says why, else the update has not begun yet.
                if description.get("FailureReason"):
                    raise DeploymentError(f"Endpoint {endpoint} rolled back: {description['FailureReason']}")
            if status in ("Failed", "RollingBack", "UpdateRollbackFailed"):
                raise DeploymentError(
                    f"Endpoint {endpoint} is {status}: {description.get('FailureReason', '')}"
                )
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"Endpoint {endpoint} not InService after {self.options.timeout_seconds:.0f}s."
                )
            time.sleep(self.options.poll_seconds)

    def _roll_back(
        self, endpoint: str, config_name: str | None, model_name: str | None, delete_endpoint: bool
    ) -> None:
        """Delete what this deployment created; an updated endpoint keeps serving its old config."""
        if delete_endpoint:
            self._ignore_missing(self.sagemaker.delete_endpoint, EndpointName=endpoint)
            self._wait_gone(endpoint)
        if config_name is not None:
            self._ignore_missing(self.sagemaker.delete_endpoint_config, EndpointConfigName=config_name)
        if model_name is not None:
            self._ignore_missing(self.sagemaker.delete_model, ModelName=model_name)

    def _retire(self, previous: dict[str, Any], keep: set[str]) -> list[str]:
        """Delete the config and models the endpoint no longer uses; returns the variants it took off."""
        config_name = previous["EndpointConfigName"]
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        self._ignore_missing(self.sagemaker.delete_endpoint_config, EndpointConfigName=config_name)
        removed = []
        for variant in config["ProductionVariants"]:
            if variant["ModelName"] not in keep:
                self._ignore_missing(self.sagemaker.delete_model, ModelName=variant["ModelName"])
                removed.append(str(variant["VariantName"]))
        return removed

    def _wait_gone(self, endpoint: str) -> None:
        for _ in range(int(self.options.timeout_seconds / max(self.options.poll_seconds, 0.1))):
            if not self._exists(endpoint):
                return
            time.sleep(self.options.poll_seconds)

    def _exists(self, endpoint: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.sagemaker.describe_endpoint(EndpointName=endpoint)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
                return False
            raise

    @staticmethod
    def _ignore_missing(call: Any, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            call(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise

    # ---- model resolution, packaging, history -------------------------------------------------
    def _upload(self, model_uri: str, endpoint: str, model_name: str) -> str:
        from modelyard.models.uri import download_model

        key = f"{self.options.prefix}/{endpoint}/{model_name}/model.tar.gz"
        self._ensure_bucket()
        with tempfile.TemporaryDirectory(prefix="modelyard-deploy-") as tmp:
            if self._fetch_model is not None:
                model_dir = Path(self._fetch_model(model_uri, Path(tmp) / "model"))
            else:
                model_dir = Path(download_model(model_uri, Path(tmp) / "model", client=self._client))
            archive = package_model(model_dir, Path(tmp) / "model.tar.gz")
            self.s3.upload_file(str(archive), self.options.bucket, key)
        return f"s3://{self.options.bucket}/{key}"

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.options.bucket)
        except ClientError:
            kwargs: dict[str, Any] = {"Bucket": self.options.bucket}
            region = self.s3.meta.region_name
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.s3.create_bucket(**kwargs)

    def _resolve_version(self, model_uri: str) -> tuple[str, str] | None:
        """(name, version) of a `models:/` URI, so the deployment is recorded on that version."""
        if not model_uri.startswith("models:/"):
            return None
        from modelyard.models.uri import resolve_model_version

        resolved = resolve_model_version(model_uri, self._client)
        return None if resolved is None else (str(resolved[0]), str(resolved[1]))

    def _record(
        self, version: tuple[str, str] | None, endpoint: str, status: str, config: str, error: str | None
    ) -> None:
        if version is None:
            return
        value = {
            "endpoint": endpoint,
            "status": status,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": config,
            "mode": self.options.mode,
        }
        if error:
            value["error"] = error[:1000]
        _write_tag(self._tracking(), version[0], version[1], endpoint, value)

    def _record_off(
        self, endpoint: str, variants: list[str], status: str, details: dict[str, str], keep: tuple[str, str] | None = None
    ) -> dict[str, tuple[str, str]]:
        """The versions `variants` served (named by the endpoint's deploy history, of any registered
        model) no longer serve there: their tags say so, except `keep`'s (deployed again just now).
        Returns variant -> version of those named. A registry without history (MLflow) or an outage is
        a warning."""
        if not variants:
            return {}
        from modelyard.client import registry_history
        from modelyard.store.registry.events import variant_versions

        try:
            timeline = registry_history.list_events(self._tracking().registry_store, endpoint=endpoint, max_results=HISTORY_SIZE)
        except Exception as exc:
            logger.warning("Could not read the deploy history of %s to record %s: %s", endpoint, status, exc)
            return {}
        served = variant_versions(timeline)
        named = {v: served[v] for v in variants if v in served and served[v] != keep}
        record_off_endpoint(self._tracking(), endpoint, named.values(), status, **details)
        return named

    def _tracking(self) -> Any:
        if self._client is None:
            from modelyard.client import Client

            self._client = Client()
        return self._client

    def _history(self, version: tuple[str, str] | None, endpoint: str, kind: str, details: dict[str, Any]) -> None:
        """Append the step to the registry's history (`modelyard models history`); a server without
        history (MLflow) or an outage is a warning, never a failed deployment."""
        if version is None:
            return
        from modelyard.client import registry_history

        try:
            store = self._tracking().registry_store
            registry_history.record_deploy(store, version[0], version[1], kind, endpoint, details)
        except Exception as exc:
            logger.warning("Could not record %s of %s version %s: %s", kind, version[0], version[1], exc)
        if self._on_event is not None:
            self._on_event(kind)
