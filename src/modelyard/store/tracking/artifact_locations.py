"""Where experiments may keep artifacts: the configured default root, or an explicitly allowed root.

A client-supplied `artifact_location` is a write target the service (or the artifacts proxy) will
honour later, so it is checked on a normalised form: scheme + host + decoded path segments, with any
`..` segment refused outright rather than resolved (`s3://ok/../other`, `/root/%2e%2e/etc`).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from modelyard.exceptions import ModelyardException

_LOCAL_SCHEMES = ("", "file")


@dataclass(frozen=True)
class NormalisedLocation:
    scheme: str
    netloc: str
    segments: tuple[str, ...]

    def is_within(self, root: NormalisedLocation) -> bool:
        return (
            self.scheme == root.scheme
            and self.netloc == root.netloc
            and self.segments[: len(root.segments)] == root.segments
        )


def resolve_root(root: str) -> str:
    """A relative local path becomes absolute (as MLflow does); URIs are kept, minus trailing '/'."""
    if _scheme(root) == "":
        return os.path.abspath(root)
    return root if root.endswith(":/") else root.rstrip("/")


def location_for(root: str, experiment_id: str | int) -> str:
    return f"{root.rstrip('/')}/{experiment_id}"


def normalise(location: str) -> NormalisedLocation:
    scheme = _scheme(location)
    parts = urllib.parse.urlsplit(location)
    if parts.query or parts.fragment:
        raise _outside(location, "it must not carry a query or fragment")
    if scheme == "":
        raw_path, netloc = location, ""
    else:
        raw_path, netloc = parts.path, parts.netloc.lower()
        if scheme == "file" and netloc in ("localhost",):
            netloc = ""
    raw_segments = urllib.parse.unquote(raw_path).replace("\\", "/").split("/")
    if ".." in raw_segments:
        raise _outside(location, "'..' path segments are not allowed")
    if scheme in _LOCAL_SCHEMES:
        path = os.path.abspath(urllib.parse.unquote(raw_path)) if scheme == "" else raw_path
        segments = tuple(s for s in urllib.parse.unquote(path).split("/") if s not in ("", "."))
        return NormalisedLocation("file", netloc, segments)
    segments = tuple(s for s in raw_segments if s not in ("", "."))
    return NormalisedLocation(scheme, netloc, segments)


def check_within_roots(location: str, roots: tuple[str, ...]) -> str:
    """Return the location to store, or INVALID_PARAMETER_VALUE when no root contains it."""
    target = normalise(location)
    if not any(target.is_within(normalise(root)) for root in roots if root):
        allowed = ", ".join(repr(r) for r in roots if r)
        raise _outside(location, f"it must lie inside one of the allowed artifact roots ({allowed})")
    return resolve_root(location)


def _scheme(location: str) -> str:
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    # A one-letter scheme is a Windows drive (C:\...), i.e. a local path.
    return "" if len(scheme) == 1 else scheme


def _outside(location: str, why: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(f"Invalid artifact_location '{location}': {why}.")
