"""The control plane: resources, endpoint lifecycle, and routing of invocations to variants.

Lifecycle, as SageMaker's: CreateEndpoint -> Creating -> InService | Failed. UpdateEndpoint -> Updating
while the old variants keep serving; the new variants start and pass /ping, routing swaps to them in one
step, and only then are the old ones stopped. A new config that fails to load rolls back: the old variants
never stopped, the endpoint returns to InService on its old config, and FailureReason says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelyard.endpoints.counters import InvocationCounters
from modelyard.endpoints.errors import SageMakerError, not_found, validation
from modelyard.endpoints.resources import Endpoint, EndpointConfig, Model, Variant, arn
from modelyard.endpoints.runner import (
    VariantProcess,
    VariantStartError,
    fetch_model,
    start_variant,
    wait_healthy,
)

logger = logging.getLogger(__name__)


class EndpointManager:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.models: dict[str, Model] = {}
        self.configs: dict[str, EndpointConfig] = {}
        self.endpoints: dict[str, Endpoint] = {}
        #: endpoint name -> the variant processes that serve it now (swapped whole, never edited).
        self.routes: dict[str, list[VariantProcess]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._rng = random.Random()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self.counters = InvocationCounters()

    # ---- models and configs ------------------------------------------------------------------
    def create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model = Model.from_request(body)
        if model.name in self.models:
            raise validation(f'Cannot create already existing model "{arn("model", model.name)}".')
        self.models[model.name] = model
        self._save()
        return {"ModelArn": arn("model", model.name)}

    def create_endpoint_config(self, body: dict[str, Any]) -> dict[str, Any]:
        config = EndpointConfig.from_request(body)
        if config.name in self.configs:
            raise validation(
                f'Cannot create already existing endpoint configuration "{arn("endpoint-config", config.name)}".'
            )
        for variant in config.variants:
            if variant.model_name not in self.models:
                raise not_found("model", variant.model_name)
        self.configs[config.name] = config
        self._save()
        return {"EndpointConfigArn": arn("endpoint-config", config.name)}

    def describe_model(self, name: str) -> dict[str, Any]:
        return self._model(name).describe()

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        return self._config(name).describe()

    def delete_model(self, name: str) -> dict[str, Any]:
        self._model(name)
        del self.models[name]
        self._save()
        return {}

    def delete_endpoint_config(self, name: str) -> dict[str, Any]:
        self._config(name)
        del self.configs[name]
        self._save()
        return {}

    def list_models(self) -> dict[str, Any]:
        items = sorted(self.models.values(), key=lambda m: m.creation_time, reverse=True)
        return {
            "Models": [
                {"ModelName": m.name, "ModelArn": arn("model", m.name), "CreationTime": m.creation_time}
                for m in items
            ]
        }

    def list_endpoint_configs(self) -> dict[str, Any]:
        items = sorted(self.configs.values(), key=lambda c: c.creation_time, reverse=True)
        return {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": c.name,
                    "EndpointConfigArn": arn("endpoint-config", c.name),
                    "CreationTime": c.creation_time,
                }
                for c in items
            ]
        }

    # ---- endpoints ---------------------------------------------------------------------------
    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("EndpointName") or "")
        config_name = str(body.get("EndpointConfigName") or "")
        if not name:
            raise validation("EndpointName is required.")
        if name in self.endpoints:
            raise validation(f'Cannot create already existing endpoint "{arn("endpoint", name)}".')
        config = self._config(config_name)
        endpoint = Endpoint(name=name, config_name=config.name)
        self.endpoints[name] = endpoint
        self._save()
        self._spawn(name, self._deploy(endpoint, config, rollback_to=None))
        return {"EndpointArn": arn("endpoint", name)}

    def update_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(str(body.get("EndpointName") or ""))
        config = self._config(str(body.get("EndpointConfigName") or ""))
        if endpoint.status not in ("InService", "Failed"):
            raise validation(f'Cannot update in-progress endpoint "{arn("endpoint", endpoint.name)}".')
        previous = endpoint.serving_config_name if endpoint.status == "InService" else None
        endpoint.config_name = config.name
        endpoint.weights = {}  # as SageMaker: a new config brings its own initial weights
        endpoint.touch("Updating")
        self._save()
        self._spawn(endpoint.name, self._deploy(endpoint, config, rollback_to=previous))
        return {"EndpointArn": arn("endpoint", endpoint.name)}

    def update_endpoint_weights_and_capacities(self, body: dict[str, Any]) -> dict[str, Any]:
        """Shift traffic between the running variants without a redeploy (instance counts are fixed
        here: each variant is one local serving process)."""
        endpoint = self._endpoint(str(body.get("EndpointName") or ""))
        if endpoint.status != "InService":
            raise validation(f'Cannot update in-progress endpoint "{arn("endpoint", endpoint.name)}".')
        desired = body.get("DesiredWeightsAndCapacities")
        if not isinstance(desired, list) or not desired:
            raise validation("DesiredWeightsAndCapacities must list at least one variant.")
        running = {v.variant_name: v for v in self.routes.get(endpoint.name, [])}
        weights: dict[str, float] = {}
        for item in desired:
            name = str(item.get("VariantName") or "") if isinstance(item, dict) else ""
            if name not in running:
                raise validation(f"The variant name {name or '(none)'} is not present in endpoint {endpoint.name}.")
            weight = item.get("DesiredWeight", running[name].weight)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1e6:
                raise validation(f"DesiredWeight of {name} must be a number from 0 to 1000000.")
            weights[name] = float(weight)
        if sum(weights.get(n, v.weight) for n, v in running.items()) <= 0:
            raise validation("At least one variant must keep a weight above 0.")
        for name, weight in weights.items():
            running[name].weight = weight
        endpoint.weights.update(weights)
        endpoint.touch("InService")
        self._save()
        return {"EndpointArn": arn("endpoint", endpoint.name)}

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        out = {
            **endpoint.summary(),
            "EndpointConfigName": endpoint.config_name,
            "ProductionVariants": [self._variant_summary(v) for v in self.routes.get(name, [])],
        }
        if endpoint.failure_reason:
            out["FailureReason"] = endpoint.failure_reason
        return out

    def list_endpoints(self, body: dict[str, Any]) -> dict[str, Any]:
        items = sorted(self.endpoints.values(), key=lambda e: e.creation_time, reverse=True)
        contains = body.get("NameContains")
        if contains:
            items = [e for e in items if str(contains) in e.name]
        status = body.get("StatusEquals")
        if status:
            items = [e for e in items if e.status == status]
        return {"Endpoints": [e.summary() for e in items]}

    async def delete_endpoint(self, name: str) -> dict[str, Any]:
        self._endpoint(name)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
        variants = self.routes.pop(name, [])
        del self.endpoints[name]
        self.counters.forget(name)
        self._save()
        await self._stop_all(variants)
        return {}

    async def shutdown(self) -> None:
        """Stop every serving worker, including those of deployments still starting."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop_all(v for vs in self.routes.values() for v in vs)
        self.routes.clear()

    # ---- invocation routing ------------------------------------------------------------------
    def pick_variant(self, name: str, target_variant: str | None = None) -> VariantProcess:
        endpoint = self._endpoint(name)
        variants = self.routes.get(name) or []
        if not variants:
            raise validation(f"Endpoint {arn('endpoint', name)} is not ready (status {endpoint.status}).")
        if target_variant:
            for v in variants:
                if v.variant_name == target_variant:
                    return v
            raise validation(f"Variant {target_variant} not found for endpoint {name}.")
        weights = [v.weight for v in variants]
        return self._rng.choices(variants, weights=weights, k=1)[0]

    def invocation_counts(self, name: str) -> dict[str, Any]:
        """The counts of the variants that serve `name` now (a modelyard-only read; 404 when unknown)."""
        if name not in self.endpoints:
            raise SageMakerError("ResourceNotFound", f"Could not find endpoint \"{name}\".", 404)
        return self.counters.report(name, [v.variant_name for v in self.routes.get(name, [])])

    # ---- deployment --------------------------------------------------------------------------
    def _spawn(self, name: str, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[name] = task
        task.add_done_callback(
            lambda _t: self._tasks.pop(name, None) if self._tasks.get(name) is _t else None
        )

    async def _deploy(self, endpoint: Endpoint, config: EndpointConfig, rollback_to: str | None) -> None:
        # Variants start side by side: an endpoint comes up as fast as its slowest variant, not their sum.
        tasks = [
            asyncio.ensure_future(asyncio.to_thread(self._start_variant, endpoint.name, v))
            for v in config.variants
        ]
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            # A start in a thread cannot be interrupted: let it finish, then stop what it started.
            await asyncio.wait(tasks)
            await self._stop_all(t.result() for t in tasks if not t.exception())
            raise
        started = [t.result() for t in tasks if not t.exception()]
        failures = [t.exception() for t in tasks if t.exception()]
        if failures:
            await self._stop_all(started)
            exc = failures[0]
            if not isinstance(exc, (VariantStartError, SageMakerError)):
                raise exc  # type: ignore[misc]
            reason = exc.message if isinstance(exc, SageMakerError) else str(exc)
            if rollback_to is not None and self.routes.get(endpoint.name):
                endpoint.config_name = rollback_to
                endpoint.touch("InService", f"Update failed and was rolled back: {reason}")
            else:
                endpoint.touch("Failed", reason)
            self._save()
            return
        for variant in started:  # weights shifted after this config was deployed (kept across restarts)
            variant.weight = endpoint.weights.get(variant.variant_name, variant.weight)
        old = self.routes.get(endpoint.name, [])
        self.routes[endpoint.name] = started  # the swap: one assignment, seen by the next request
        endpoint.serving_config_name = config.name
        endpoint.touch("InService")
        self._save()
        await self._stop_all(old)

    @staticmethod
    async def _stop_all(variants: Iterable[VariantProcess]) -> None:
        await asyncio.gather(*(asyncio.to_thread(v.stop) for v in variants))

    def _start_variant(self, endpoint_name: str, variant: Variant) -> VariantProcess:
        model = self.models.get(variant.model_name)
        if model is None:
            raise VariantStartError(f'Model "{variant.model_name}" no longer exists.')
        # Keyed by the archive too: a model deleted and re-created under its name may point elsewhere.
        digest = hashlib.sha256(model.model_data_url.encode()).hexdigest()[:12]
        workdir = self.state_dir / "models" / f"{model.name}-{digest}"
        model_dir = workdir / "model"
        # Two variants of one model start side by side: one downloads, the other waits for it.
        with self._fetch_locks.setdefault(workdir.name, threading.Lock()):
            if not (model_dir / "MLmodel").is_file():
                shutil.rmtree(workdir, ignore_errors=True)
                model_dir = fetch_model(model.model_data_url, workdir)
        process = start_variant(
            variant.variant_name,
            model.name,
            variant.initial_variant_weight,
            model_dir,
            variant.initial_instance_count,
            self.state_dir / "logs",
        )
        wait_healthy(process)
        return process

    def _variant_summary(self, v: VariantProcess) -> dict[str, Any]:
        return {
            "VariantName": v.variant_name,
            "CurrentWeight": v.weight,
            "DesiredWeight": v.weight,
            "CurrentInstanceCount": 1,
            "DesiredInstanceCount": 1,
            "DeployedImages": [
                {"SpecifiedImage": self.models[v.model_name].image if v.model_name in self.models else ""}
            ],
        }

    # ---- persistence -------------------------------------------------------------------------
    def _save(self) -> None:
        """Definitions survive a restart (make down / make up); running processes do not."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "models": [m.__dict__ for m in self.models.values()],
            "configs": [
                {
                    "name": c.name,
                    "creation_time": c.creation_time,
                    "variants": [v.__dict__ for v in c.variants],
                }
                for c in self.configs.values()
            ],
            "endpoints": [e.to_state() for e in self.endpoints.values()],
        }
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_dir / "state.json")

    def restore(self) -> None:
        """Reload definitions and redeploy endpoints that were serving when the service stopped."""
        path = self.state_dir / "state.json"
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        self.models = {m["name"]: Model(**m) for m in state.get("models", [])}
        self.configs = {
            c["name"]: EndpointConfig(c["name"], [Variant(**v) for v in c["variants"]], c["creation_time"])
            for c in state.get("configs", [])
        }
        for e in state.get("endpoints", []):
            endpoint = Endpoint(**e)
            self.endpoints[endpoint.name] = endpoint
            config_name = endpoint.serving_config_name or endpoint.config_name
            if endpoint.status in ("InService", "Updating", "Creating") and config_name in self.configs:
                endpoint.config_name = config_name
                endpoint.touch("Creating")
                self._spawn(
                    endpoint.name, self._deploy(endpoint, self.configs[config_name], rollback_to=None)
                )

    # ---- lookups -----------------------------------------------------------------------------
    def _model(self, name: str) -> Model:
        if name not in self.models:
            raise not_found("model", name)
        return self.models[name]

    def _config(self, name: str) -> EndpointConfig:
        if name not in self.configs:
            raise not_found("endpoint configuration", name)
        return self.configs[name]

    def _endpoint(self, name: str) -> Endpoint:
        if name not in self.endpoints:
            raise not_found("endpoint", name)
        return self.endpoints[name]
