"""A run's artifacts as the UI reads them: through the same repository code the artifacts API uses,
never over HTTP, and bounded.

A run's `artifact_uri` is either proxied (`mlflow-artifacts:[//host]/<experiment>/<run>/artifacts`,
what a tracking service that serves artifacts hands out) or a concrete location (`s3://...`, a local
folder), resolved by the tracking service's one `Locator` (`modelyard.artifact_repos.locations`).
Proxied files are downloaded through the artifacts API's own URL, so in the team stack the bytes stream
through the artifacts service; concrete locations' files through the UI's file route.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from modelyard.artifact_repos import ArtifactRepository, FileInfo, safe_relative_path
from modelyard.artifact_repos.base import ArtifactStream
from modelyard.artifact_repos.locations import Locator, is_proxied
from modelyard.exceptions import ModelyardException

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts/"
#: The most a preview reads of one file.
PREVIEW_MAX_BYTES = 1024 * 1024



@dataclass(frozen=True)
class Head:
    """The first bytes of a file: `data` holds at most the limit; `size` is the whole file's, when known."""

    data: bytes
    size: int | None
    truncated: bool


@dataclass(frozen=True)
class RunArtifacts:
    run_id: str
    repository: ArtifactRepository
    #: The run's folder inside `repository` ("" when the repository is rooted at the run).
    prefix: str
    proxied: bool
    #: Set when these are the artifacts of one of the run's logged models (MLflow 3 keeps a model's
    #: files in the model's own location, not in the run's artifacts).
    model_id: str = ""

    def query(self, rel: str) -> str:
        """The query string naming `rel` in this tree (`path=...`, plus `model=...` for a model's)."""
        params = {"path": rel, **({"model": self.model_id} if self.model_id else {})}
        return urllib.parse.urlencode(params)

    def full_path(self, rel: str) -> str:
        rel = safe_relative_path(rel)
        return f"{self.prefix}/{rel}".strip("/") if self.prefix else rel

    def list(self, rel: str) -> list[FileInfo]:
        """The folder's children with paths relative to the run's artifact root, folders first."""
        infos = self.repository.list_artifacts(self.full_path(rel) or None)
        cut = len(self.prefix) + 1 if self.prefix else 0
        out = [FileInfo(info.path[cut:], info.is_dir, info.file_size) for info in infos]
        return sorted(out, key=lambda f: (not f.is_dir, f.path.lower()))

    def read_head(self, rel: str, limit: int | None = None) -> Head:
        """At most `limit` (default `PREVIEW_MAX_BYTES`) bytes from the start of the file
        (RESOURCE_DOES_NOT_EXIST when missing)."""
        limit = PREVIEW_MAX_BYTES if limit is None else limit
        stream = self.repository.open_read(self.full_path(rel))
        try:
            data = _read_at_most(stream, limit + 1)
        finally:
            stream.close()
        return Head(data[:limit], stream.size, len(data) > limit)

    def open(self, rel: str) -> ArtifactStream:
        return self.repository.open_read(self.full_path(rel))

    def download_url(self, rel: str) -> str:
        """Proxied: the artifacts API's URL (the artifacts service streams it); else the UI's file route."""
        rel = safe_relative_path(rel)
        if self.proxied:
            return ARTIFACTS_API + urllib.parse.quote(self.full_path(rel))
        return f"/runs/{self.run_id}/artifacts/file?{self.query(rel)}&download=1"


def run_artifacts(request: Request, run_id: str, artifact_uri: str, model_id: str = "") -> RunArtifacts:
    """Where the run's artifacts (or its logged model `model_id`'s, at `artifact_uri`) are, for this app."""
    if not artifact_uri:
        raise ModelyardException.not_found(f"Run {run_id} has no artifact location")
    repository, prefix = locator(request.app).locate(artifact_uri)
    return RunArtifacts(run_id, repository, prefix, is_proxied(artifact_uri), model_id)


def locator(app: Any) -> Locator:
    """The tracking service's locator (`app.state.artifact_reader`): the artifacts API's repository when
    it is mounted here (single-process mode), else one per worker over the configured destination."""
    return app.state.artifact_reader.locator  # type: ignore[no-any-return]


def _read_at_most(stream: ArtifactStream, limit: int) -> bytes:
    if stream.readinto is not None:
        buffer = bytearray(limit)
        view = memoryview(buffer)
        filled = 0
        while filled < limit:
            n = stream.readinto(view[filled:])
            if not n:
                break
            filled += n
        return bytes(buffer[:filled])
    parts: list[bytes] = []
    total = 0
    for chunk in stream.chunks:
        parts.append(chunk)
        total += len(chunk)
        if total >= limit:
            break
    return b"".join(parts)[:limit]
