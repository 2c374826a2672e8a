"""The client side: `Client` (MlflowClient's API), the fluent API, the REST store and HTTP plumbing.

`Client` picks its backend from the tracking URI (`tracking_uri.get_tracking_store`); the REST store
(`rest_store`) and the SQL store are interchangeable behind it.
"""

from modelyard.client.client import Client, MlflowClient

__all__ = ["Client", "MlflowClient"]
