"""Where a model version's `source` may point, checked as strictly as MLflow's server on the wire.

A registered version's source is later downloaded by whoever loads the model (serving, deploy, the
`models:/` URIs, `model-versions/get-artifact`), so an unchecked source is a read primitive with the
server's own credentials: MLflow shipped exactly that hole (local paths, `file:` URIs, other runs'
folders) and then a series of bypasses through URL syntax (`#`, `?`, `;`, percent-encoded `..`).

MLflow's rule is that the request must name the resource that holds the source; modelyard follows it
and keeps two protections of its own (both only refuse what MLflow would read from the server):

1. the text itself: no control characters, backslashes, `#`, `?`, `;` or `%` (no encoded anything),
   and no `.` / `..` path segment;
2. with `model_id`: that logged model must exist and the source must be `models:/<model_id>` or lie in
   its artifact location; the version's `run_id` defaults to the model's `source_run_id` (MLflow 3's
   `log_model(registered_model_name=...)` sends no run id);
3. `models:/m-...` without `model_id`, and `runs:/<id>/...` whose run is not `run_id`, are refused; the
   run of a `runs:/` source need not exist here (it may live on another server, as MLflow allows);
4. `models:/<name>/<version>` must name an existing version, whose run the new version inherits;
5. local paths, `file:` and `mlflow-artifacts:` URIs must lie inside the artifact location of the run
   given as `run_id` (or of a logged model that run produced); local ones only when that location is
   itself local;
6. host-addressed schemes (`http`, `https`, `ftp`, ...) are refused, as MLflow does by default; any
   other URI (`s3://...`) must lie inside the run's location, a logged model of it, or one of the
   configured artifact roots. (MLflow accepts any bucket here; modelyard does not let a version make
   the server read a bucket outside its artifact store with the server's credentials.)

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
#: Schemes that address an arbitrary host: the server would connect wherever the source says.
_HOST_ADDRESSED = frozenset({"http", "https", "ftp", "sftp"})


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


@dataclass(frozen=True)
class VersionRef:
    location: str
    run_id: str | None


class SourceLookup(Protocol):
    """What the rules need to know from the database (None: no such entity)."""

    def run(self, run_id: str) -> RunRef | None: ...

    def logged_model(self, model_id: str) -> LoggedModelRef | None: ...

    def logged_models_of_run(self, run_id: str) -> Sequence[LoggedModelRef]: ...

    def model_version(self, name: str, version: str) -> VersionRef | None: ...


@dataclass(frozen=True)
class ResolvedSource:
    """The accepted source, where its files are (get-download-uri; None: resolved when read), the
    logged model it names and the run the version records."""

    source: str
    storage_location: str | None
    model_id: str | None = None
    run_id: str | None = None


def _invalid(source: str, why: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(f"Invalid model version source: '{source}'. {why}")


def _must_identify(source: str, parameter: str) -> ModelyardException:
    return _invalid(
        source, f"The {parameter} request parameter must identify the resource that contains the source."
    )


def resolve_source(
    source: str,
    run_id: str | None,
    roots: Sequence[str],
    lookup: SourceLookup,
    model_id: str | None = None,
) -> ResolvedSource:
    """Check `source` against the rules above; INVALID_PARAMETER_VALUE names the broken one."""
    if not source:
        raise ModelyardException.invalid_parameter("Model version source must be a non-empty string.")
    if _FORBIDDEN_CHARS.search(source):
        raise _invalid(source, "It must not contain control characters, backslashes, '#', '?', ';' or '%'.")
    _check_segments(source, _path_of(source))
    if model_id:
        return _logged_model_source(source, run_id, model_id, lookup)
    if source.startswith("runs:"):
        return _runs_source(source, run_id, lookup)
    if source.startswith("models:"):
        return _models_source(source, run_id, lookup)
    return _location_source(source, run_id, roots, lookup)


def _logged_model_source(
    source: str, run_id: str | None, model_id: str, lookup: SourceLookup
) -> ResolvedSource:
    model = lookup.logged_model(model_id)
    if model is None:
        raise _must_identify(source, "model_id")
    recorded_run = run_id or model.source_run_id
    if source.rstrip("/") == f"models:/{model_id}":
        return ResolvedSource(source, model.artifact_location, model_id, recorded_run)
    if source.startswith(("runs:", "models:")) or not _within(_normalised(source), model.artifact_location):
        raise _must_identify(source, "model_id")
    return ResolvedSource(source, source, model_id, recorded_run)


def _runs_source(source: str, run_id: str | None, lookup: SourceLookup) -> ResolvedSource:
    match = _RUNS_URI.match(source)
    if match is None:
        raise _invalid(source, "Expected runs:/<run_id>/<path>.")
    uri_run_id, path = match["run_id"], (match["path"] or "").strip("/")
    if uri_run_id != run_id:
        raise _must_identify(source, "run_id")
    run = lookup.run(uri_run_id)
    if run is None:  # a run of another server or workspace: resolved when the model is read
        return ResolvedSource(source, None, None, run_id)
    # MLflow 3 keeps a model logged under a run in the logged model's own folder, named by path.
    for model in lookup.logged_models_of_run(uri_run_id):
        if path and model.name == path:
            return ResolvedSource(source, model.artifact_location, model.model_id, run_id)
    location = run.artifact_uri.rstrip("/")
    return ResolvedSource(source, f"{location}/{path}" if path else location, None, run_id)


def _models_source(source: str, run_id: str | None, lookup: SourceLookup) -> ResolvedSource:
    match = _MODELS_URI.match(source)
    rest = match["rest"].strip("/") if match else ""
    if _LOGGED_MODEL_ID.match(rest):
        raise _must_identify(source, "model_id")
    parts = rest.split("/")
    if len(parts) == 2 and parts[1].isdigit():
        version = lookup.model_version(parts[0], parts[1])
        if version is None:
            raise ModelyardException.not_found(
                f"Model Version (name={parts[0]}, version={parts[1]}) not found"
            )
        return ResolvedSource(source, version.location, None, run_id or version.run_id)
    raise _invalid(source, "Expected models:/<model_id> or models:/<name>/<version>.")


def _location_source(
    source: str, run_id: str | None, roots: Sequence[str], lookup: SourceLookup
) -> ResolvedSource:
    target = _normalised(source)
    if target.scheme in _HOST_ADDRESSED:
        raise _invalid(source, f"The '{target.scheme}' scheme addresses a host outside the artifact store.")
    run = lookup.run(run_id) if run_id else None
    if run is not None:
        allowed = [run.artifact_uri, *(m.artifact_location for m in lookup.logged_models_of_run(run.run_id))]
        if any(_within(target, location) for location in allowed):
            return ResolvedSource(source, source, None, run_id)
    if target.scheme == "file":
        raise _invalid(
            source,
            "To use a local path as a model version source, the run_id request parameter has to be specified "
            "and the local path has to be contained within the artifact directory of the run.",
        )
    if target.scheme == "mlflow-artifacts":
        raise _must_identify(source, "run_id")
    if any(_within(target, root) for root in roots if root and not _is_local(root)):
        return ResolvedSource(source, source, None, run_id)
    raise _invalid(source, "It is not inside the artifact store of this server.")


def _path_of(source: str) -> str:
    for prefix in ("runs:", "models:"):
        if source.startswith(prefix):
            return source[len(prefix) :]
    return source.split(":", 1)[-1] if _has_scheme(source) else source


def _check_segments(source: str, path: str) -> None:
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _invalid(source, "An absolute path without relative path references ('.', '..') is required.")


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
