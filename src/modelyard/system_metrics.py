"""System metrics: CPU, memory, disk, network (and NVIDIA GPUs) logged to a run as `system/*` metrics.

MLflow's switches and names: `start_run(log_system_metrics=True)` for one run, or
`enable_system_metrics_logging()` / MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true for every run (the
argument wins when given); a background thread takes a sample every
MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL seconds (10) and, every
MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING samples (1), logs their average in one log-batch at the
next step (0, 1, 2, ...). MLFLOW_SYSTEM_METRICS_NODE_ID puts the metrics under `system/<node>/`.
The thread stops when the run ends; a failed write is a warning, never an error in the user's code.

Names (as mlflow 3.17 logs them; sizes in MB of 10^6 bytes): cpu_utilization_percentage,
system_memory_usage_megabytes, system_memory_usage_percentage, disk_usage_megabytes,
disk_available_megabytes, disk_usage_percentage (of `/`), network_receive_megabytes and
network_transmit_megabytes (since the run started), and per GPU `gpu_<i>_utilization_percentage`,
`gpu_<i>_memory_usage_megabytes`, `gpu_<i>_memory_usage_percentage`, `gpu_<i>_power_usage_watts`,
`gpu_<i>_power_usage_percentage` (when pynvml finds NVIDIA GPUs).

psutil comes with the `system-metrics` extra and is imported only when a monitor starts: without it
the run goes on and a warning names the extra.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

ENABLE_VARIABLE = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
INTERVAL_VARIABLE = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
SAMPLES_VARIABLE = "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
NODE_VARIABLE = "MLFLOW_SYSTEM_METRICS_NODE_ID"
DEFAULT_INTERVAL = 10.0
DEFAULT_SAMPLES = 1
_MB = 1e6

__all__ = [
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval",
]

_log = logging.getLogger(__name__)
_monitors: dict[str, SystemMetricsMonitor] = {}
_monitors_lock = threading.Lock()


# ---- switches (environment variables, as MLflow: child processes inherit them) --------------------
def enable_system_metrics_logging() -> None:
    """Log system metrics for every run from now on (a run can still opt out with False)."""
    os.environ[ENABLE_VARIABLE] = "true"


def disable_system_metrics_logging() -> None:
    """Stop logging system metrics for new runs (a run can still opt in with True)."""
    os.environ[ENABLE_VARIABLE] = "false"


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Seconds between samples (None: back to the default, 10)."""
    _set_or_unset(INTERVAL_VARIABLE, interval)


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    """Samples averaged into each logged value (None: back to the default, 1)."""
    _set_or_unset(SAMPLES_VARIABLE, samples)


def set_system_metrics_node_id(node_id: str | None) -> None:
    """Name of this machine in multi-node training: metrics go under `system/<node_id>/`."""
    _set_or_unset(NODE_VARIABLE, node_id)


def _set_or_unset(name: str, value: Any) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def wanted(log_system_metrics: bool | None) -> bool:
    if log_system_metrics is not None:
        return bool(log_system_metrics)
    return os.environ.get(ENABLE_VARIABLE, "").strip().lower() in ("true", "1")


# ---- the monitor ---------------------------------------------------------------------------------
def start_monitor(run_id: str, client: Any) -> SystemMetricsMonitor | None:
    """Start logging for `run_id` (no-op if already logging it); None when psutil is missing."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        _log.warning(
            "System metrics are not logged for run %s: psutil is not installed "
            "(pip install 'modelyard[system-metrics]').",
            run_id,
        )
        return None
    with _monitors_lock:
        if run_id in _monitors:
            return _monitors[run_id]
        monitor = SystemMetricsMonitor(run_id, client.log_batch)
        _monitors[run_id] = monitor
    monitor.start()
    return monitor


def stop_monitor(run_id: str) -> None:
    with _monitors_lock:
        monitor = _monitors.pop(run_id, None)
    if monitor is not None:
        monitor.stop()


class SystemMetricsMonitor:
    """Samples on a daemon thread and logs averages through `log_batch(run_id, metrics=...)`."""

    def __init__(
        self,
        run_id: str,
        log_batch: Callable[..., Any],
        interval: float | None = None,
        samples_before_logging: int | None = None,
        node_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self._log_batch = log_batch
        self.interval = float(
            interval if interval is not None else _env_number(INTERVAL_VARIABLE, DEFAULT_INTERVAL)
        )
        self.samples_before_logging = max(
            1, int(samples_before_logging or _env_number(SAMPLES_VARIABLE, DEFAULT_SAMPLES))
        )
        node = node_id if node_id is not None else os.environ.get(NODE_VARIABLE)
        self.prefix = f"system/{node}/" if node else "system/"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"system-metrics-{run_id}", daemon=True)
        self._samplers: list[Callable[[], dict[str, float]]] = []
        self.step = 0

    def start(self) -> None:
        self._samplers = _samplers()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        samples: list[dict[str, float]] = []
        while not self._stop.wait(self.interval):
            samples.append(self.sample())
            if len(samples) >= self.samples_before_logging:
                self._publish(average(samples))
                samples = []

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for sampler in self._samplers:
            try:
                values.update(sampler())
            except Exception as exc:  # a sensor that fails once must not end the monitor
                _log.debug("system metrics sampler failed: %s", exc)
        return values

    def _publish(self, values: dict[str, float]) -> None:
        from modelyard.clock import now_ms
        from modelyard.entities import Metric

        timestamp = now_ms()
        metrics = [Metric(self.prefix + name, value, timestamp, self.step) for name, value in values.items()]
        try:
            self._log_batch(self.run_id, metrics=metrics)
        except Exception as exc:
            _log.warning("Could not log system metrics to run %s: %s", self.run_id, exc)
        self.step += 1


def average(samples: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the samples that have it."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for sample in samples:
        for name, value in sample.items():
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + 1
    return {name: sums[name] / counts[name] for name in sums}


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        _log.warning("Ignoring %s=%r: not a number; using %s", name, raw, default)
        return default


# ---- samplers ------------------------------------------------------------------------------------
def _samplers() -> list[Callable[[], dict[str, float]]]:
    import psutil

    psutil.cpu_percent(interval=None)  # the first call only sets the baseline
    start = psutil.net_io_counters()

    def cpu() -> dict[str, float]:
        return {"cpu_utilization_percentage": psutil.cpu_percent(interval=None)}

    def memory() -> dict[str, float]:
        memory = psutil.virtual_memory()
        return {
            "system_memory_usage_megabytes": memory.used / _MB,
            "system_memory_usage_percentage": memory.used / memory.total * 100,
        }

    def disk() -> dict[str, float]:
        usage = psutil.disk_usage(os.path.abspath(os.sep))
        return {
            "disk_usage_percentage": usage.percent,
            "disk_usage_megabytes": usage.used / _MB,
            "disk_available_megabytes": usage.free / _MB,
        }

    def network() -> dict[str, float]:
        now = psutil.net_io_counters()
        return {
            "network_receive_megabytes": (now.bytes_recv - start.bytes_recv) / _MB,
            "network_transmit_megabytes": (now.bytes_sent - start.bytes_sent) / _MB,
        }

    samplers = [cpu, memory, disk, network]
    gpu = _gpu_sampler()
    if gpu is not None:
        samplers.append(gpu)
    return samplers


def _gpu_sampler() -> Callable[[], dict[str, float]] | None:
    """NVIDIA GPUs through pynvml, when it is installed and finds a driver; else None."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # no driver or no device
        return None
    return lambda: gpu_values(pynvml, handles)


def gpu_values(nvml: Any, handles: list[Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for i, handle in enumerate(handles):
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        values[f"gpu_{i}_memory_usage_percentage"] = memory.used / memory.total * 100
        values[f"gpu_{i}_memory_usage_megabytes"] = memory.used / _MB
        values[f"gpu_{i}_utilization_percentage"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        try:
            watts = nvml.nvmlDeviceGetPowerUsage(handle) / 1000
            limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
        except Exception:  # some boards do not report power
            continue
        values[f"gpu_{i}_power_usage_watts"] = watts
        values[f"gpu_{i}_power_usage_percentage"] = watts / limit * 100 if limit else 0.0
    return values
