"""MLflow's `mlflow.artifacts` module: download, list and read a run's or a model's artifacts by URI.

The functions live in `modelyard.client.artifacts`, which resolves `runs:/`, `models:/` and
`mlflow-artifacts:` URIs against a tracking server and reads through the repositories of
`modelyard.artifact_repos`; this module is their public name.
"""

from __future__ import annotations

from modelyard.client.artifacts import download_artifacts, list_artifacts, load_dict, load_text

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_text"]
