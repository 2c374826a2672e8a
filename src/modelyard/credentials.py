"""The caller's credentials for a modelyard or MLflow server, read from the environment.

Shared by the REST client (`modelyard.client.http`) and the HTTP artifact repository
(`modelyard.artifact_repos.http`), which sit on different layers: neither imports the other.
"""

from __future__ import annotations

import os


def env_value(*names: str) -> str | None:
    """The first of `names` set to a non-empty value in the environment (modelyard's name before MLflow's)."""
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return value
    return None


def credentials_from_env() -> dict[str, str | None]:
    """The client's credentials: `username`/`password` (basic) and `token` (bearer)."""
    return {
        "username": env_value("MODELYARD_TRACKING_USERNAME", "MLFLOW_TRACKING_USERNAME"),
        "password": env_value("MODELYARD_TRACKING_PASSWORD", "MLFLOW_TRACKING_PASSWORD"),
        "token": env_value("MODELYARD_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN"),
    }
