"""Artifact path safety: one function decides whether a client-supplied relative path is acceptable.

Every entry point (the proxy's URL paths and `?path=` values, repository methods, the client's
`artifact_path` arguments) goes through `safe_relative_path`, so a path that would leave the run's
root is refused before any byte is read or written. Rules: no `..` segment, no absolute path (POSIX
or Windows drive), no backslash, no NUL or control characters, and no percent-encoded form of any of
these (URL paths arrive decoded once; `%252e%252e` would survive one decode, so we decode until stable).
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from modelyard import errors
from modelyard.exceptions import ModelyardException

_DRIVE = re.compile(r"^[a-zA-Z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Decoding more often than this means someone is stacking encodings on purpose.
_MAX_DECODES = 4


def _refuse(path: str, why: str) -> ModelyardException:
    return ModelyardException(f"Invalid artifact path {path!r}: {why}", errors.INVALID_PARAMETER_VALUE)


def _fully_decoded(path: str) -> str:
    current = path
    for _ in range(_MAX_DECODES):
        decoded = unquote(current)
        if decoded == current:
            return current
        current = decoded
    raise _refuse(path, "too many levels of percent-encoding")


def safe_relative_path(path: str | None) -> str:
    """The normalised POSIX form of `path` ("" for the root), or INVALID_PARAMETER_VALUE (HTTP 400).

    Redundant slashes and `.` segments are dropped (`a//./b/` -> `a/b`); anything that could point
    outside the root is refused rather than "cleaned", so a hostile path never maps onto a real one.
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise _refuse(repr(path), "not a string")
    for candidate in {path, _fully_decoded(path)}:
        if _CONTROL.search(candidate):
            raise _refuse(path, "control characters are not allowed")
        if "\\" in candidate:
            raise _refuse(path, "backslashes are not allowed")
        if candidate.startswith("/") or _DRIVE.match(candidate) or candidate.startswith("~"):
            raise _refuse(path, "absolute paths are not allowed")
        if ".." in candidate.split("/"):
            raise _refuse(path, "'..' is not allowed")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/".join(parts)


def join(root: str, *relative: str | None) -> str:
    """`root` joined with validated relative parts (each checked by `safe_relative_path`)."""
    parts = [p for p in (safe_relative_path(r) for r in relative) if p]
    if not parts:
        return root
    return posixpath.join(root, *parts) if root else posixpath.join(*parts)


def relative_to(child: str, root: str) -> str:
    """`child` relative to `root` (both POSIX keys); raises if `child` is not under `root`."""
    root = root.rstrip("/")
    if not root:
        return child.lstrip("/")
    if child == root:
        return ""
    if not child.startswith(root + "/"):
        raise ModelyardException(f"{child!r} is outside {root!r}", errors.PERMISSION_DENIED)
    return child[len(root) + 1 :]
