"""`modelyard.autolog()`: autologging for every supported library that is installed.

The shared options go to each integration; a library that is not installed is skipped silently, and
one whose integration fails to start is reported as a warning, never an error, as in MLflow. As in
MLflow, an integration whose own `autolog()` was called (even with `disable=True`) keeps its options:
`autolog()` neither changes nor disables it.
It sits above the flavors (each integration lives in its flavor's package), and imports an integration
only when its library is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any

from modelyard.autologging import config
from modelyard.autologging.patching import warn


def _sklearn() -> ModuleType:
    from modelyard.sklearn import autologging

    return autologging


def _xgboost() -> ModuleType:
    from modelyard.xgboost import autologging

    return autologging


#: library module -> its integration module, imported on use (each has `autolog(**options)`).
INTEGRATIONS: dict[str, Callable[[], ModuleType]] = {"sklearn": _sklearn, "xgboost": _xgboost}


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    **unsupported: Any,
) -> None:
    """Enable (or with `disable=True`, disable) autologging for sklearn and xgboost."""
    options = {
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_models": log_models,
        "log_datasets": log_datasets,
        "disable": disable,
        "exclusive": exclusive,
        "silent": silent,
        "extra_tags": extra_tags,
    }
    for library, integration in INTEGRATIONS.items():
        if importlib.util.find_spec(library) is None or config.configured_by_user(library):
            continue
        try:
            integration().autolog(**options)
            config.mark_universal(library)
        except Exception as error:
            warn(library, error, silent)
