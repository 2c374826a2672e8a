"""Where a run's or logged model's files are, as (repository, path) pairs gc and the storage report can
list and delete, whatever the location's spelling.

`mlflow-artifacts:/<exp>/<run>/artifacts` (proxied: what the tracking service hands out when it serves
artifacts) lives under the artifacts destination (`s3://bucket/prefix` or a local folder) at
`<exp>/<run>/artifacts`; a concrete location (`s3://...`, `/local/path`, `file:///...`) is its own
repository, rooted at the location. Repositories are built once per URI (an S3 client is expensive).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

from modelyard.artifact_repos import ArtifactRepository, FileInfo, get_repository, safe_relative_path

PROXY_SCHEME = "mlflow-artifacts:"


@dataclass(frozen=True)
class Place:
    repository: ArtifactRepository
    #: The folder inside the repository ("" = the repository's root).
    path: str
    #: The location as the database spells it, for messages.
    location: str


@dataclass
class Locator:
    """Resolves locations against one artifacts destination, caching repositories by URI."""

    destination: str
    _repositories: dict[str, ArtifactRepository] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def repository(self, uri: str) -> ArtifactRepository:
        """Thread-safe: gc measures and deletes a batch's runs from several threads."""
        with self._lock:
            if uri not in self._repositories:
                self._repositories[uri] = get_repository(uri)
            return self._repositories[uri]

    def place(self, location: str) -> Place:
        if location.startswith(PROXY_SCHEME):
            path = urllib.parse.unquote(urllib.parse.urlsplit(location).path).strip("/")
            return Place(self.repository(self.destination), safe_relative_path(path) if path else "", location)
        return Place(self.repository(location), "", location)


def walk(place: Place) -> Iterator[FileInfo]:
    """Every file under the place, with its size (paths relative to the repository)."""
    yield from place.repository.walk(place.path or None)
