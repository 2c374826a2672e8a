"""Where a run's or logged model's files are, as places gc and the storage report can list and delete,
whatever the location's spelling (resolved by `modelyard.artifact_repos.locations.Locator`).

A place is rooted at the top of its store (`ArtifactRepository.at_root`: for S3, the bucket), so the
places of one store share a repository, gc lists and deletes a batch of them together, and a folder
inside another (a run's inside its experiment's) is recognised whichever location spelled it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.artifact_repos import ArtifactRepository, FileInfo
from modelyard.artifact_repos.locations import Locator


@dataclass(frozen=True)
class Place:
    repository: ArtifactRepository
    #: The folder inside the repository ("" = the repository's root): for S3, the key.
    path: str
    #: The location as the database spells it, for messages.
    location: str


def place(locator: Locator, location: str) -> Place:
    repository, path = locator.locate(location)
    repository, path = repository.at_root(path)
    return Place(repository, path, location)


def walk(place: Place) -> Iterator[FileInfo]:
    """Every file under the place, with its size (paths relative to the repository)."""
    yield from place.repository.walk(place.path or None)
