"""The artifacts service: MLflow's `/api/2.0/mlflow-artifacts/` API, streaming in bounded memory."""

from modelyard.artifact_proxy.app import create_app, mount
from modelyard.artifact_proxy.routes import create_router, server_info

__all__ = ["create_app", "create_router", "mount", "server_info"]
