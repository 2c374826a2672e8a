"""The artifacts of a run, logged model or model version, read (and written) by the tracking service by location.

MLflow's tracking server serves a run's files itself (`/get-artifact`, `artifacts/list`, a model
version's and a logged model's files) wherever they live. A location is the entity's artifact URI:
`mlflow-artifacts:/<path>` is read from the artifacts destination, any other location (`s3://...`, a
local folder of an unproxied store) where it says (`modelyard.artifact_repos.locations`). Locations are
never taken from a request: they come from the database, where they were confined when written
(experiment roots, version sources).
"""

from __future__ import annotations

from modelyard.artifact_proxy.streaming import open_for_response
from modelyard.artifact_repos.base import ArtifactRepository, ArtifactStream, FileInfo
from modelyard.artifact_repos.locations import Locator
from modelyard.artifact_repos.paths import relative_to, safe_relative_path
from modelyard.exceptions import ModelyardException


class LocationReader:
    """Lists, opens and (for the UI's uploads) writes files under artifact locations (blocking: call it
    from the thread pool)."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator

    def locate(self, location: str) -> tuple[ArtifactRepository, str]:
        """The repository holding `location` and the location's key prefix inside it."""
        return self.locator.locate(location)

    def list(self, location: str, path: str) -> list[FileInfo]:
        """Direct children of `path` under `location`, with paths relative to `location` (MLflow's shape)."""
        repo, prefix = self.locate(location)
        rel = safe_relative_path(path)
        full = "/".join(p for p in (prefix, rel) if p)
        return [
            FileInfo(relative_to(info.path, prefix), info.is_dir, info.file_size)
            for info in repo.list_artifacts(full or None)
        ]

    def open(self, location: str, path: str) -> ArtifactStream | bytes:
        """The file `path` under `location`: its bytes when small, else an open stream. A folder is
        INVALID_PARAMETER_VALUE and a missing file RESOURCE_DOES_NOT_EXIST, as MLflow answers."""
        repo, prefix = self.locate(location)
        rel = safe_relative_path(path)
        full = "/".join(p for p in (prefix, rel) if p)
        try:
            return open_for_response(repo, full)
        except ModelyardException as exc:
            if exc.http_status == 404 and repo.is_dir(full):
                raise ModelyardException.invalid_parameter(
                    f"Artifact path refers to a directory, not a file: '{path}'"
                ) from exc
            if exc.http_status == 404:
                raise ModelyardException.not_found(f"No such artifact: '{path}'") from exc
            raise

    def write(self, location: str, path: str, data: bytes) -> None:
        """Store `data` as `path` under `location` (the UI's small uploads: one body, all or nothing)."""
        repo, prefix = self.locate(location)
        rel = safe_relative_path(path)
        if not rel:
            raise ModelyardException.invalid_parameter("An artifact path is required")
        repo.write_bytes("/".join(p for p in (prefix, rel) if p), data)
