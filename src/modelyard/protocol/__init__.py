"""The MLflow REST contract: error codes, limits and URI schemes shared by client and services."""
