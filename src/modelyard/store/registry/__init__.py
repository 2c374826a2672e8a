"""The model registry store: `RegistryStore` (interface) and `SqlRegistryStore` (SQLite/PostgreSQL)."""

from modelyard.store.registry.base import RegistryStore
from modelyard.store.registry.sql_store import SqlRegistryStore

__all__ = ["RegistryStore", "SqlRegistryStore"]
