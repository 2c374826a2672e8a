"""Per-integration autologging options, set by `<flavor>.autolog(...)` and read at every patched call.

A wrapper looks its options up when the user's code calls it, so calling `autolog()` again with other
options (or `disable=True`) takes effect at once without re-patching anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: The run tag naming the integration that created a run (only on runs autologging started).
AUTOLOGGING_TAG = "mlflow.autologging"


@dataclass(frozen=True)
class AutologConfig:
    log_models: bool = True
    log_input_examples: bool = False
    log_model_signatures: bool = True
    log_datasets: bool = True
    disable: bool = False
    exclusive: bool = False
    silent: bool = False
    max_tuning_runs: int | None = 5
    log_post_training_metrics: bool = True
    registered_model_name: str | None = None
    pos_label: Any = None
    extra_tags: dict[str, Any] = field(default_factory=dict)
    #: Integration-specific options (xgboost's importance_types, model_format, ...).
    extra: dict[str, Any] = field(default_factory=dict)


_configs: dict[str, AutologConfig] = {}
#: Integrations whose options came from `modelyard.autolog()`, not from their own `autolog()`.
_universal: set[str] = set()
_lock = threading.Lock()


def set_config(integration: str, config: AutologConfig) -> None:
    with _lock:
        _configs[integration] = config
        _universal.discard(integration)


def mark_universal(integration: str) -> None:
    """The integration's options were just set by `modelyard.autolog()`, which may set them again."""
    with _lock:
        _universal.add(integration)


def configured_by_user(integration: str) -> bool:
    """Whether the integration's own `autolog()` set its options (enabled or disabled): then
    `modelyard.autolog()` leaves them alone, as MLflow's `autolog()` does."""
    with _lock:
        return integration in _configs and integration not in _universal


def active_config(integration: str) -> AutologConfig | None:
    """The integration's options, or None when it is off (never enabled, or disabled)."""
    config = _configs.get(integration)
    return None if config is None or config.disable else config


class _Session:
    """Whether an autologged call is running: a fit inside a fit (a Pipeline's steps, a search's
    candidates, xgboost's sklearn API calling `train`) is the outer call's business, not a new run.
    Process-wide, not per thread, so the clones a search fits on joblib threads are skipped too.
    `thread()` marks one thread's calls alone as autologging's own (its background work): a fit the
    user makes meanwhile on another thread still logs."""

    def __init__(self) -> None:
        self.depth = 0
        self.lock = threading.Lock()
        self._threads = threading.local()

    @contextmanager
    def thread(self) -> Iterator[None]:
        self._threads.active = True
        try:
            yield
        finally:
            self._threads.active = False

    def __enter__(self) -> _Session:
        with self.lock:
            self.depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with self.lock:
            self.depth -= 1

    @property
    def active(self) -> bool:
        return self.depth > 0 or getattr(self._threads, "active", False)


SESSION = _Session()
