"""System metrics on a real run: psutil's real readings, logged by the background thread to SQLite."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.client_workflow import reset_fluent_state

import modelyard
from modelyard import system_metrics
from modelyard.client import tracking_uri as tracking_uri_module

#: What mlflow 3.17 logs on a machine without GPUs (tests/compat/test_system_metrics_mlflow.py checks it).
MLFLOW_NAMES = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/disk_usage_percentage",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    reset_fluent_state()
    for name in (system_metrics.ENABLE_VARIABLE, system_metrics.NODE_VARIABLE, "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(system_metrics.INTERVAL_VARIABLE, "0.1")
    monkeypatch.setenv(system_metrics.SAMPLES_VARIABLE, "2")
    monkeypatch.setenv("MODELYARD_DEFAULT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    modelyard.set_tracking_uri(uri)
    yield uri
    reset_fluent_state()
    tracking_uri_module.clear_store_cache()


def _wait_for_steps(run_id: str, key: str, steps: int) -> None:
    client = modelyard.MlflowClient()
    deadline = time.monotonic() + 60
    while len(client.get_metric_history(run_id, key)) < steps:
        assert time.monotonic() < deadline, f"fewer than {steps} points of {key} logged"
        time.sleep(0.05)


def test_a_run_logs_mlflows_system_metrics_until_it_ends(tracking: str) -> None:
    with modelyard.start_run(log_system_metrics=True) as run:
        _wait_for_steps(run.info.run_id, "system/cpu_utilization_percentage", 2)
        monitor = system_metrics._monitors[run.info.run_id]
    assert not monitor._thread.is_alive() and run.info.run_id not in system_metrics._monitors
    client = modelyard.MlflowClient()
    metrics = client.get_run(run.info.run_id).data.metrics
    assert set(metrics) == MLFLOW_NAMES
    history = client.get_metric_history(run.info.run_id, "system/disk_usage_percentage")
    assert [m.step for m in history] == list(range(len(history)))
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100
    assert 0 < metrics["system/system_memory_usage_percentage"] < 100
    assert metrics["system/disk_available_megabytes"] > 0 and metrics["system/network_receive_megabytes"] >= 0
    # the thread has stopped: nothing arrives after the end
    assert len(client.get_metric_history(run.info.run_id, "system/disk_usage_percentage")) == len(history)


def test_the_global_switch_the_per_run_override_and_the_node_id(tracking: str) -> None:
    modelyard.enable_system_metrics_logging()
    modelyard.set_system_metrics_node_id("node7")
    try:
        with modelyard.start_run(log_system_metrics=False) as quiet:
            assert quiet.info.run_id not in system_metrics._monitors
        with modelyard.start_run() as loud:
            _wait_for_steps(loud.info.run_id, "system/node7/cpu_utilization_percentage", 1)
    finally:
        modelyard.disable_system_metrics_logging()
        modelyard.set_system_metrics_node_id(None)
    client = modelyard.MlflowClient()
    assert client.get_run(quiet.info.run_id).data.metrics == {}
    names = set(client.get_run(loud.info.run_id).data.metrics)
    assert names == {name.replace("system/", "system/node7/") for name in MLFLOW_NAMES}
    with modelyard.start_run() as off:
        assert off.info.run_id not in system_metrics._monitors


def test_without_psutil_the_run_goes_on_with_a_warning(
    tracking: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` now raises ImportError
    with caplog.at_level(logging.WARNING, logger="modelyard.system_metrics"):
        with modelyard.start_run(log_system_metrics=True) as run:
            modelyard.log_metric("x", 1.0)
    assert "modelyard[system-metrics]" in caplog.text
    assert modelyard.get_run(run.info.run_id).info.status == "FINISHED"


def test_gpu_readings_get_mlflows_names() -> None:
    """pynvml and a GPU are absent here: the naming and arithmetic are checked on a stand-in NVML."""

    class Memory:
        used, total = 2_000_000_000, 8_000_000_000

    class Rates:
        gpu = 37

    class FakeNvml:
        nvmlDeviceGetMemoryInfo = staticmethod(lambda handle: Memory)
        nvmlDeviceGetUtilizationRates = staticmethod(lambda handle: Rates)
        nvmlDeviceGetPowerUsage = staticmethod(lambda handle: 150_000)
        nvmlDeviceGetEnforcedPowerLimit = staticmethod(lambda handle: 300_000)

    assert system_metrics.gpu_values(FakeNvml, ["h0", "h1"]) == {
        f"gpu_{i}_{name}": value
        for i in (0, 1)
        for name, value in {
            "memory_usage_percentage": 25.0,
            "memory_usage_megabytes": 2000.0,
            "utilization_percentage": 37.0,
            "power_usage_watts": 150.0,
            "power_usage_percentage": 50.0,
        }.items()
    }
