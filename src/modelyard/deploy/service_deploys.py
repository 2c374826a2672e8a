"""Deploys the tracking service starts itself (the web UI's deploy, canary, promote and rollback
actions): the same `SageMakerDeployer` as `modelyard deploy`, with its registry calls answered by
this process's stores and the model's files read from this process's artifact store, never through
the service's own API over HTTP.

A deploy takes seconds locally and minutes on AWS, so it runs in a background thread of the worker
that accepted it. The request only checks the plan (the version exists and is READY; the endpoint
exists, or not, as the mode needs, and is InService; no other deploy of it is under way) and
returns. Progress and outcome are the registry's history (`deploy_started`, then `deploy_succeeded`
/ `deploy_failed` / `deploy_rolled_back`), which every worker reads (`inventory.deploy_state`). A
failure at any step after `deploy_started` is undone by the deployer (the endpoint keeps serving
its previous config) and recorded, so no half-done deploy is left behind; a worker that stops in
the middle leaves a `deploy_started` without outcome, which the pages report as interrupted once
the deployer's timeout has passed.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.deploy import inventory
from modelyard.deploy.sagemaker import MODES, DeployOptions, SageMakerDeployer
from modelyard.exceptions import ModelyardException
from modelyard.models.uri import parse_models_uri, resolve_model_version
from modelyard.store.registry import events, history
from modelyard.store.registry.base import RegistryStore

log = logging.getLogger(__name__)

#: SageMaker's endpoint names: letters, digits and inner hyphens, at most 63.
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
INSTANCE_TYPE = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,62}$")
MAX_INSTANCES = 10
MAX_WEIGHT = 1e6
REASONS = ("", "promote", "rollback")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
#: Seconds a deploy started here may take to reach InService (the deployer's `--timeout`).
TIMEOUT_SECONDS = 600.0

_running: set[str] = set()
_running_lock = threading.Lock()


def version_uri(name: str, version: str) -> str:
    """As users type it (and as `registry_history.deployed_endpoints` matches history against)."""
    return f"models:/{name}/{version}"


class StoreRegistry:
    """The registry calls `SageMakerDeployer` and `models.uri` make, answered by a store in this process."""

    def __init__(self, registry_store: RegistryStore) -> None:
        self.registry_store = registry_store

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        return self.registry_store.get_model_version_by_alias(name, alias)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> Any:
        return self.registry_store.get_latest_versions(name, stages)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.registry_store.set_model_version_tag(name, version, key, value)


def model_fetcher(registry_store: RegistryStore, reader: Any) -> Any:
    """`fetch(model_uri, dst)` for the deployer: the version's files from its stored location, read
    through `reader` (the service's `artifact_proxy.locations.LocationReader`)."""

    def fetch(model_uri: str, dst: Path) -> str:
        resolved = resolve_model_version(model_uri, StoreRegistry(registry_store))
        if resolved is None:
            raise ModelyardException.invalid_parameter(f"{model_uri} does not name a registered model version.")
        location = registry_store.get_model_version_download_uri(*resolved)
        if not location or location.startswith(("runs:", "models:")):
            raise ModelyardException.invalid_parameter(
                f"The files of {resolved[0]} version {resolved[1]} are not in this server's artifact store "
                f"({location or 'no location'}): deploy it with `modelyard deploy` from a client that can read them."
            )
        repository, prefix = reader.locate(location)
        local = Path(repository.download_artifacts(prefix, str(dst)))
        if not (local / "MLmodel").is_file():
            raise ModelyardException.not_found(f"No model (MLmodel file) at {location}.")
        return str(local)

    return fetch


@dataclass(frozen=True)
class DeployPlan:
    """A checked deploy: what goes where, and what the endpoint serves now (None: it is new)."""

    endpoint: str
    model_uri: str
    name: str
    version: str
    mode: str
    weight: float
    instance_type: str
    instance_count: int
    reason: str = ""
    current: inventory.EndpointStatus | None = None

    def traffic_after(self) -> list[tuple[str, float]]:
        """(what serves, share of traffic in %) once the deploy is done."""
        new = f"{self.name} v{self.version} (new variant)"
        if self.mode != "add" or self.current is None:
            return [(new, 100.0)]
        shares = [(_label(v), v.weight) for v in self.current.variants] + [(new, self.weight)]
        total = sum(w for _, w in shares) or 1.0
        return [(label, round(100 * w / total, 1)) for label, w in shares]


def _label(variant: inventory.VariantStatus) -> str:
    if variant.model_version is not None:
        return f"{variant.model_version[0]} v{variant.model_version[1]}"
    return variant.sagemaker_model or variant.name


def plan_deploy(
    registry_store: RegistryStore,
    sagemaker: Any,
    *,
    endpoint: str,
    model_uri: str,
    mode: str,
    weight: float = 1.0,
    instance_type: str = "",
    instance_count: int | None = None,
    reason: str = "",
    variant_versions: dict[str, tuple[str, str]] | None = None,
    timeline: list[events.RegistryEvent] | None = None,
    now_ms: int = 0,
) -> DeployPlan:
    """Check everything a deploy can be refused for before anything is started; each refusal is a
    ModelyardException whose message says what to change."""
    if not ENDPOINT_NAME.match(endpoint):
        raise ModelyardException.invalid_parameter(
            f"Endpoint name {endpoint!r}: use 1 to 63 letters, digits and hyphens, starting and ending with a "
            "letter or digit (SageMaker's rule)."
        )
    if mode not in MODES:
        raise ModelyardException.invalid_parameter(f"Mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if reason not in REASONS:
        raise ModelyardException.invalid_parameter(f"Unknown reason {reason!r}.")
    reference = parse_models_uri(model_uri)
    if reference.name is None:
        raise ModelyardException.invalid_parameter(
            f"{model_uri}: deploy a registered model version (models:/NAME/VERSION or models:/NAME@ALIAS)."
        )
    resolved = resolve_model_version(model_uri, StoreRegistry(registry_store))
    assert resolved is not None
    name, version = resolved
    found = registry_store.get_model_version(name, version)
    if found.status != "READY":
        raise ModelyardException.invalid_parameter(f"{name} version {version} is {found.status}, not READY.")
    if not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT:
        raise ModelyardException.invalid_parameter(f"The weight must be above 0 and at most {MAX_WEIGHT:g}.")
    if instance_type and not INSTANCE_TYPE.match(instance_type):
        raise ModelyardException.invalid_parameter(f"Instance type {instance_type!r} is not a SageMaker instance type.")
    if instance_count is not None and not 1 <= instance_count <= MAX_INSTANCES:
        raise ModelyardException.invalid_parameter(f"Instances must be 1 to {MAX_INSTANCES}.")
    current = _current(sagemaker, endpoint, variant_versions or {})
    if mode == "create" and current is not None:
        raise ModelyardException.invalid_parameter(
            f"Endpoint {endpoint} already exists: replace what it serves, or add a canary variant to it."
        )
    if mode != "create":
        if current is None:
            raise ModelyardException.invalid_parameter(f"Endpoint {endpoint} does not exist: create it.")
        if current.status not in ("InService", "Failed"):
            raise ModelyardException.invalid_parameter(
                f"Endpoint {endpoint} is {current.status}: wait until it is InService."
            )
    state = inventory.deploy_state(timeline or [], now_ms, TIMEOUT_SECONDS)
    if state.pending is not None or _is_running(endpoint):
        raise ModelyardException.invalid_parameter(f"A deploy of endpoint {endpoint} is under way: wait for its outcome.")
    first = current.variants[0] if current is not None and current.variants else None
    return DeployPlan(
        endpoint=endpoint,
        model_uri=model_uri,
        name=name,
        version=str(version),
        mode=mode,
        weight=weight if mode == "add" else 1.0,
        instance_type=instance_type or (first.instance_type if first and first.instance_type else DEFAULT_INSTANCE_TYPE),
        instance_count=instance_count or (first.instance_count if first and first.instance_count else 1),
        reason=reason,
        current=current,
    )


def _current(sagemaker: Any, endpoint: str, versions: dict[str, tuple[str, str]]) -> inventory.EndpointStatus | None:
    try:
        return inventory.describe(sagemaker, endpoint, versions)
    except inventory.SageMakerUnavailable:
        raise
    except ModelyardException as exc:
        if exc.http_status == 404:
            return None
        raise


def _is_running(endpoint: str) -> bool:
    with _running_lock:
        return endpoint in _running


def start(plan: DeployPlan, registry_store: RegistryStore, reader: Any, wait_seconds: float = 15.0) -> None:
    """Run the plan in a background thread as the current request's user. Returns once its
    `deploy_started` is in the history (or it failed before that), so the page the browser goes to
    next shows the deploy; the rest happens in the background."""
    with _running_lock:
        if plan.endpoint in _running:
            raise ModelyardException.invalid_parameter(f"A deploy of endpoint {plan.endpoint} is under way.")
        _running.add(plan.endpoint)
    begun = threading.Event()
    actor = events.current_actor.get()
    thread = threading.Thread(
        target=_run, args=(plan, registry_store, reader, actor, begun), name=f"deploy-{plan.endpoint}", daemon=True
    )
    try:
        thread.start()
    except BaseException:
        with _running_lock:
            _running.discard(plan.endpoint)
        raise
    begun.wait(wait_seconds)


def _run(
    plan: DeployPlan, registry_store: RegistryStore, reader: Any, actor: str | None, begun: threading.Event
) -> None:
    options = DeployOptions(
        region=inventory.region(),
        mode=plan.mode,
        variant_weight=plan.weight,
        instance_type=plan.instance_type,
        instance_count=plan.instance_count,
        timeout_seconds=TIMEOUT_SECONDS,
        reason=plan.reason,
    )

    def heard(kind: str) -> None:
        if kind == events.DEPLOY_STARTED:
            begun.set()

    try:
        with events.acting_as(actor):
            try:
                deployer = SageMakerDeployer(
                    options, StoreRegistry(registry_store), model_fetcher(registry_store, reader), on_event=heard
                )
                if plan.mode == "create":
                    deployer.create(plan.endpoint, plan.model_uri)
                else:
                    deployer.update(plan.endpoint, plan.model_uri)
            except Exception as exc:
                log.warning("Deploy of %s v%s to %s failed: %s", plan.name, plan.version, plan.endpoint, exc)
                if not getattr(exc, "recorded", False):
                    _record_failure(plan, registry_store, exc)
    finally:
        with _running_lock:
            _running.discard(plan.endpoint)
        begun.set()


def _record_failure(plan: DeployPlan, registry_store: RegistryStore, exc: Exception) -> None:
    """A failure before the deployer's first step (so nothing to undo) still reaches the history."""
    try:
        history.record_deploy(
            registry_store.engine,  # type: ignore[attr-defined]
            plan.name, plan.version, events.DEPLOY_FAILED, plan.endpoint,
            {"mode": plan.mode, "model_uri": plan.model_uri, "error": str(exc)[:1000]},
        )  # fmt: skip
    except Exception as cannot:
        log.error("Could not record the failed deploy of %s to %s: %s", plan.name, plan.endpoint, cannot)
