"""MLflow 3 logged models: `base.LoggedModelStore` (interface), `sql_store.SqlLoggedModelStore`,
and `outputs.load_model_outputs` (run -> model links, for whoever builds `Run` objects).

Nothing heavy is imported here: the client imports the interface without paying for SQLAlchemy.
"""

from modelyard.store.logged_models.base import LoggedModelStore

__all__ = ["LoggedModelStore"]
