"""infra/compose.yaml, checked without a Docker engine: structure, health checks, pinning, loopback ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose.yaml"
ONE_SHOT = {"create-buckets", "migrate"}


def _services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_dependency_exists_with_a_condition() -> None:
    services = _services()
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec["condition"] == expected, (name, dep)


def test_long_running_services_have_healthchecks_and_one_shots_do_not_restart() -> None:
    for name, svc in _services().items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", name
        else:
            assert svc.get("healthcheck", {}).get("test"), name


def test_images_are_pinned_and_ports_bound_to_loopback() -> None:
    for name, svc in _services().items():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, (name, image)
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_the_gateway_routes_to_tracking_and_artifacts() -> None:
    env = _services()["gateway"]["environment"]
    assert env["MODELYARD_GATEWAY_TRACKING_URL"] == "http://tracking:5000"
    assert env["MODELYARD_GATEWAY_ARTIFACTS_URL"] == "http://artifacts:5000"
    tracking = _services()["tracking"]["environment"]
    assert tracking["MODELYARD_SERVE_ARTIFACTS"] == "false"
