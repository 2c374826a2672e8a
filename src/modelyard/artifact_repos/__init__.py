"""Artifact repositories (local folder, S3, the HTTP artifacts API) behind one interface, chosen by URI.

`get_repository(uri)` takes a concrete location; `mlflow-artifacts:` and `runs:/` URIs need a tracking
server to resolve against, which `modelyard.client.artifacts` does before calling it. This package is the
storage layer: it imports nothing of the client, so the client, the services and the public
`modelyard.artifacts` module all build on it.
"""

from __future__ import annotations

from modelyard.artifact_repos.base import ArtifactRepository, ArtifactStream, ArtifactWriter, FileInfo
from modelyard.artifact_repos.paths import safe_relative_path
from modelyard.exceptions import ModelyardException

__all__ = [
    "ArtifactRepository",
    "ArtifactStream",
    "ArtifactWriter",
    "FileInfo",
    "get_repository",
    "safe_relative_path",
]


def get_repository(uri: str, chunk_size: int | None = None) -> ArtifactRepository:
    """The repository for a concrete location: `s3://`, `http(s)://.../mlflow-artifacts/artifacts/...`,
    `file:` or a plain local path."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri and not _is_windows_drive(uri) else ""
    extra = {"chunk_size": chunk_size} if chunk_size else {}
    if scheme in ("s3", "s3a"):
        from modelyard.artifact_repos.s3 import S3ArtifactRepository

        return S3ArtifactRepository(uri, **extra)
    if scheme in ("http", "https"):
        from modelyard.artifact_repos.http import HttpArtifactRepository

        return HttpArtifactRepository(uri)
    if scheme in ("", "file"):
        from modelyard.artifact_repos.local import LocalArtifactRepository

        return LocalArtifactRepository(uri, **extra)
    if scheme in ("mlflow-artifacts", "runs", "models"):
        raise ModelyardException.invalid_parameter(
            f"{uri!r} must be resolved against a tracking server first (modelyard.client.artifacts)"
        )
    raise ModelyardException.invalid_parameter(f"Unsupported artifact URI scheme {scheme!r} in {uri!r}")


def _is_windows_drive(uri: str) -> bool:
    return len(uri) > 1 and uri[1] == ":" and uri[0].isalpha() and (len(uri) == 2 or uri[2] in "\\/")
