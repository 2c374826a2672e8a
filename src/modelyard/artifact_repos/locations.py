"""Where an entity's artifacts are: its stored location turned into (repository, key prefix).

A run's, logged model's or model version's location is either proxied (`mlflow-artifacts:[//host]/<path>`,
what a tracking service that serves artifacts hands out), which lives at `<path>` under the artifacts
destination (`s3://bucket/prefix` or a local folder), or concrete (`s3://...`, `/local/path`,
`file:///...`), a repository rooted at the location. The artifacts API on the tracking service, the web
UI, deploys and gc all resolve locations here, so they agree on every spelling. Locations come from the
database, where they were confined when written; paths under them are checked by `safe_relative_path`.
"""

from __future__ import annotations

import threading
import urllib.parse

from modelyard.artifact_repos import ArtifactRepository, get_repository, safe_relative_path

PROXY_SCHEME = "mlflow-artifacts:"


def is_proxied(location: str) -> bool:
    return location.startswith(PROXY_SCHEME)


class Locator:
    """Resolves locations against one artifacts destination. The destination's repository is built once
    (an S3 client costs ~0.3 s and ~40 MB, so only on first use) and shared by every thread; a concrete
    location's repository is cheap (S3 clients are shared per process) and built per call."""

    def __init__(
        self,
        destination: str,
        chunk_size: int | None = None,
        destination_repository: ArtifactRepository | None = None,
    ) -> None:
        self.destination = destination
        self.chunk_size = chunk_size
        self._destination_repository = destination_repository
        self._lock = threading.Lock()

    def has_destination_repository(self) -> bool:
        """Whether the destination's repository is built already (the UI's warm-up asks)."""
        return self._destination_repository is not None

    def destination_repository(self) -> ArtifactRepository:
        with self._lock:
            if self._destination_repository is None:
                self._destination_repository = get_repository(self.destination, chunk_size=self.chunk_size)
            return self._destination_repository

    def locate(self, location: str) -> tuple[ArtifactRepository, str]:
        """The repository holding `location` and the location's folder inside it ("" = its root)."""
        if is_proxied(location):
            path = urllib.parse.unquote(urllib.parse.urlsplit(location).path).strip("/")
            return self.destination_repository(), safe_relative_path(path) if path else ""
        return get_repository(location, chunk_size=self.chunk_size), ""
