"""Registry calls of `Client` (MlflowClient's names), kept apart from tracking calls."""

from __future__ import annotations


class RegistryClientMixin:
    """Mixed into `modelyard.client.Client`; filled in by the model registry work."""
