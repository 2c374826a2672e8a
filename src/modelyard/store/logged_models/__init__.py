"""MLflow 3 logged models: `LoggedModelStore` (interface) and `SqlLoggedModelStore` (SQLite/PostgreSQL)."""

from modelyard.store.logged_models.base import LoggedModelStore
from modelyard.store.logged_models.outputs import load_model_outputs
from modelyard.store.logged_models.sql_store import SqlLoggedModelStore

__all__ = ["LoggedModelStore", "SqlLoggedModelStore", "load_model_outputs"]
