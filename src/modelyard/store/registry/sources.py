"""Where a model version's `source` may point: inside the artifact store, and inside the run it names.

A registered version's source is later downloaded by whoever loads the model (serving, deploy, the
`models:/` URIs), so an unchecked source is a file-read primitive: MLflow shipped exactly that hole
(local paths, `file:` URIs, other runs' folders) and then a series of bypasses through URL syntax
(`#`, `?`, `;` and percent-encoded `..`). The rules here are deliberately strict and simple:

1. the text itself: no control characters, backslashes, `#`, `?`, `;` or `%` (no encoded anything),
   and no `.` / `..` path segment;
2. `runs:/<run_id>/<path>` must name an existing run, the same run as `run_id` when both are given;
3. `models:/<model_id>` must name an existing logged model (produced by `run_id`, when both are given),
   `models:/<name>/<version>` an existing registered version;
4. any other URI must lie inside the artifact location of the run given as `run_id` (or of a logged
   model that run produced); without a run, inside one of the configured artifact roots;
5. local paths and `file:` URIs are accepted only under rule 4's run case, when that run's own
   artifact location is itself local (an embedded or unproxied store); never without a run.

The checks that need the database are asked through `SourceLookup`, so this module stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard.exceptions import ModelyardException
from modelyard.store.tracking.artifact_locations import NormalisedLocation, normalise

_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f\\#?;%]")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{8,64}$")
_RUNS_URI = re.compile(r"^runs:/+(?P<run_id>[^/]+)(?:/(?P<path>.*))?$")
_MODELS_URI = re.compile(r"^models:/+(?P<rest>.+)$")


@dataclass(frozen=True)
class RunRef:
    run_id: str
    artifact_uri: str


@dataclass(frozen=True)
class LoggedModelRef:
    model_id: str
    artifact_location: str
    source_run_id: str | None
    name: str


class SourceLookup(Protocol):
    """What the rules need to know from the database (None: no such entity)."""

    def run(self, run_id: str) -> RunRef | None: ...

    def logged_model(self, model_id: str) -> LoggedModelRef | None: ...

    def logged_models_of_run(self, run_id: str) -> Sequence[LoggedModelRef]: ...

    def model_version_location(self, name: str, version: str) -> str | None: ...


@dataclass(frozen=True)
class ResolvedSource:
    """The accepted source, where its files are (get-download-uri), and the logged model it names."""

    source: str
    storage_location: str
    model_id: str | None = None


def _invalid(source: str, why: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(f"Invalid model version source '{source}': {why}.")


def resolve_source(
    source: str, run_id: str | None, roots: Sequence[str], lookup: SourceLookup
) -> ResolvedSource:
    """Check `source` against the rules above; INVALID_PARAMETER_VALUE names the broken one."""
    if not source:
        raise ModelyardException.invalid_parameter("Model version source must be a non-empty string.")
    if _FORBIDDEN_CHARS.search(source):
        raise _invalid(source, "it must not contain control characters, backslashes, '#', '?', ';' or '%'")
    run = _named_run(source, run_id, lookup)
    if source.startswith("runs:"):
        return _runs_source(source, run_id, lookup)
    if source.startswith("models:"):
        return _models_source(source, run_id, lookup)
    _check_segments(source, source.split(":", 1)[-1] if _has_scheme(source) else source)
    target = _normalised(source)
    if run is not None:
        allowed = [run.artifact_uri, *(m.artifact_location for m in lookup.logged_models_of_run(run.run_id))]
        if any(_within(target, location) for location in allowed):
            return ResolvedSource(source, source)
        raise _invalid(source, f"it is not inside the artifact location of run '{run.run_id}'")
    if target.scheme == "file":
        raise _invalid(source, "local paths and file: URIs are only accepted inside the run's artifacts")
    if any(_within(target, root) for root in roots if root and not _is_local(root)):
        return ResolvedSource(source, source)
    raise _invalid(source, "it is not inside the artifact store")


def _named_run(source: str, run_id: str | None, lookup: SourceLookup) -> RunRef | None:
    if not run_id:
        return None
    run = lookup.run(run_id)
    if run is None:
        raise ModelyardException.invalid_parameter(f"Invalid model version run_id '{run_id}': no such run.")
    return run


def _runs_source(source: str, run_id: str | None, lookup: SourceLookup) -> ResolvedSource:
    match = _RUNS_URI.match(source)
    if match is None:
        raise _invalid(source, "expected runs:/<run_id>/<path>")
    uri_run_id, path = match["run_id"], (match["path"] or "").strip("/")
    _check_segments(source, path)
    if run_id and uri_run_id != run_id:
        raise _invalid(source, f"it names run '{uri_run_id}' but the version's run_id is '{run_id}'")
    run = lookup.run(uri_run_id)
    if run is None:
        raise _invalid(source, f"run '{uri_run_id}' does not exist")
    # MLflow 3 keeps a model logged under a run in the logged model's own folder, named by path.
    for model in lookup.logged_models_of_run(uri_run_id):
        if path and model.name == path:
            return ResolvedSource(source, model.artifact_location, model.model_id)
    location = run.artifact_uri.rstrip("/")
    return ResolvedSource(source, f"{location}/{path}" if path else location)


def _models_source(source: str, run_id: str | None, lookup: SourceLookup) -> ResolvedSource:
    match = _MODELS_URI.match(source)
    rest = match["rest"].strip("/") if match else ""
    _check_segments(source, rest)
    if _LOGGED_MODEL_ID.match(rest):
        model = lookup.logged_model(rest)
        if model is None:
            raise _invalid(source, f"logged model '{rest}' does not exist")
        if run_id and model.source_run_id and model.source_run_id != run_id:
            raise _invalid(source, f"logged model '{rest}' was not produced by run '{run_id}'")
        return ResolvedSource(source, model.artifact_location, model.model_id)
    parts = rest.split("/")
    if len(parts) == 2 and parts[1].isdigit():
        location = lookup.model_version_location(parts[0], parts[1])
        if location is None:
            raise _invalid(source, f"model version {parts[0]} {parts[1]} does not exist")
        return ResolvedSource(source, location)
    raise _invalid(source, "expected models:/<model_id> or models:/<name>/<version>")


def _check_segments(source: str, path: str) -> None:
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _invalid(source, "'.' and '..' path segments are not allowed")


def _has_scheme(location: str) -> bool:
    head, sep, _ = location.partition(":")
    return bool(sep) and len(head) > 1 and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", head) is not None


def _is_local(location: str) -> bool:
    return not _has_scheme(location) or location.lower().startswith("file:")


def _normalised(location: str) -> NormalisedLocation:
    try:
        return normalise(location)
    except ModelyardException as exc:
        raise _invalid(location, exc.message) from exc


def _within(target: NormalisedLocation, root: str) -> bool:
    try:
        return target.is_within(normalise(root))
    except ModelyardException:
        return False
