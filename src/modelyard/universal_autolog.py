"""`modelyard.autolog()`: autologging for every supported library that is installed.

The shared options go to each integration; a library that is not installed is skipped silently, and
one whose integration fails to start is reported as a warning, never an error, as in MLflow.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from modelyard.autologging.patching import warn

#: library module -> integration module (each has `autolog(**options)`).
INTEGRATIONS = {
    "sklearn": "modelyard.sklearn.autologging",
    "xgboost": "modelyard.xgboost.autologging",
}


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
    for library, module_name in INTEGRATIONS.items():
        if importlib.util.find_spec(library) is None:
            continue
        try:
            importlib.import_module(module_name).autolog(**options)
        except Exception as error:
            warn(library, error, silent)
