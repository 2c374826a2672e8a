"""Artifact repositories (local folder, S3, the HTTP artifacts API) behind one interface, chosen by URI.

`get_repository(uri)` takes a concrete location; `mlflow-artifacts:` and `runs:/` URIs need a tracking
server to resolve against, which `modelyard.client.artifacts` does before calling it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.artifacts.base import ArtifactRepository, ArtifactStream, ArtifactWriter, FileInfo
from modelyard.artifacts.paths import safe_relative_path
from modelyard.exceptions import ModelyardException

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ArtifactRepository",
    "ArtifactStream",
    "ArtifactWriter",
    "FileInfo",
    "download_artifacts",
    "get_repository",
    "list_artifacts",
    "safe_relative_path",
]


def get_repository(uri: str, chunk_size: int | None = None) -> ArtifactRepository:
    """The repository for a concrete location: `s3://`, `http(s)://.../mlflow-artifacts/artifacts/...`,
    `file:` or a plain local path."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri and not _is_windows_drive(uri) else ""
    extra = {"chunk_size": chunk_size} if chunk_size else {}
    if scheme in ("s3", "s3a"):
        from modelyard.artifacts.s3 import S3ArtifactRepository

        return S3ArtifactRepository(uri, **extra)
    if scheme in ("http", "https"):
        from modelyard.artifacts.http import HttpArtifactRepository

        return HttpArtifactRepository(uri)
    if scheme in ("", "file"):
        from modelyard.artifacts.local import LocalArtifactRepository

        return LocalArtifactRepository(uri, **extra)
    if scheme in ("mlflow-artifacts", "runs", "models"):
        raise ModelyardException.invalid_parameter(
            f"{uri!r} must be resolved against a tracking server first (modelyard.client.artifacts)"
        )
    raise ModelyardException.invalid_parameter(f"Unsupported artifact URI scheme {scheme!r} in {uri!r}")


def _is_windows_drive(uri: str) -> bool:
    return len(uri) > 1 and uri[1] == ":" and uri[0].isalpha() and (len(uri) == 2 or uri[2] in "\\/")


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | Path | None = None,
    tracking_uri: str | None = None,
) -> str:
    """MLflow's `mlflow.artifacts.download_artifacts`: by URI (any scheme, incl. `runs:/` and
    `mlflow-artifacts:`) or by run id + path; returns the local path."""
    from modelyard.client import artifacts as client_artifacts

    return client_artifacts.download_artifacts(
        artifact_uri=artifact_uri,
        run_id=run_id,
        artifact_path=artifact_path,
        dst_path=str(dst_path) if dst_path is not None else None,
        tracking_uri=tracking_uri,
    )


def list_artifacts(
    artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None
) -> list[FileInfo]:
    from modelyard.client import artifacts as client_artifacts

    return client_artifacts.list_artifacts(
        artifact_uri=artifact_uri, run_id=run_id, artifact_path=artifact_path
    )
