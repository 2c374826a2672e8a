"""The model registry store: `base.RegistryStore` (interface), `sql_store.SqlRegistryStore`.

Nothing heavy is imported here: the client imports the interface without paying for SQLAlchemy.
"""

from modelyard.store.registry.base import RegistryStore

__all__ = ["RegistryStore"]
