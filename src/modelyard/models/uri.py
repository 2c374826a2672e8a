"""Model URIs: parsing, resolving to an artifact location, and downloading to a local folder.

Grammar (MLflow's):
  runs:/<run_id>/<path>            a run's artifact folder, or (MLflow 3) the logged model of that run
                                   named <path> when the run has no such folder
  models:/<name>/<version>         a registered model version
  models:/<name>/<stage>           the newest version in Production/Staging/Archived/None; `latest` = newest overall
  models:/<name>@<alias>           the version an alias points at
  models:/<model_id>               an MLflow 3 logged model (`m-<hex>`)
  mlflow-artifacts:/..., s3://..., file:/..., a local path   an artifact location as is
Registry and run lookups go through `modelyard.client.Client` with the current tracking URI.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from modelyard.exceptions import ModelyardException

STAGES = ("None", "Staging", "Production", "Archived")
_LATEST = "latest"
_NAME_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<ref>[^/]+)/?$")
_NAME_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?$")
_MODEL_ID = re.compile(r"^models:/(?P<model_id>[^/@]+)/?$")
_RUNS = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class ModelReference:
    """A parsed `models:/` URI: exactly one of version, stage, alias or model_id is set."""

    name: str | None = None
    version: str | None = None
    stage: str | None = None
    alias: str | None = None
    model_id: str | None = None


def _bad(message: str) -> ModelyardException:
    return ModelyardException.invalid_parameter(message)


def parse_models_uri(uri: str) -> ModelReference:
    if match := _NAME_ALIAS.match(uri):
        return ModelReference(name=unquote(match["name"]), alias=unquote(match["alias"]))
    if match := _NAME_VERSION.match(uri):
        name, ref = unquote(match["name"]), unquote(match["ref"])
        if ref.isdigit():
            return ModelReference(name=name, version=str(int(ref)))
        if ref.lower() == _LATEST:
            return ModelReference(name=name, stage=_LATEST)
        stage = next((s for s in STAGES if s.lower() == ref.lower()), None)
        if stage is None:
            raise _bad(
                f"Invalid model URI '{uri}': '{ref}' is not a version number, 'latest' or a stage ({', '.join(STAGES)})"
            )
        return ModelReference(name=name, stage=stage)
    if match := _MODEL_ID.match(uri):
        return ModelReference(model_id=unquote(match["model_id"]))
    raise _bad(
        f"Invalid model URI '{uri}': use models:/<name>/<version>, models:/<name>/<stage>, "
        "models:/<name>@<alias> or models:/<model_id>"
    )


def parse_runs_uri(uri: str) -> tuple[str, str]:
    match = _RUNS.match(uri)
    if not match or not match["run_id"]:
        raise _bad(f"Invalid runs URI '{uri}': use runs:/<run_id>/<path>")
    path = posixpath.normpath(match["path"] or "").lstrip("/")
    if path in (".", ""):
        path = ""
    if path.startswith(".."):
        raise _bad(f"Invalid runs URI '{uri}': the path must stay inside the run's artifacts")
    return match["run_id"], path


def _client(client: Any = None) -> Any:
    if client is not None:
        return client
    from modelyard.client import Client

    return Client()


def resolve_model_version(uri: str, client: Any = None) -> tuple[str, str] | None:
    """(name, version) a name-based `models:/` URI points at now; None for other URIs."""
    if not uri.startswith("models:/"):
        return None
    ref = parse_models_uri(uri)
    if ref.name is None:
        return None
    client = _client(client)
    if ref.version is not None:
        return ref.name, ref.version
    if ref.alias is not None:
        return ref.name, str(client.get_model_version_by_alias(ref.name, ref.alias).version)
    stages = None if ref.stage == _LATEST else [ref.stage]
    versions = client.get_latest_versions(ref.name, stages=stages)
    if not versions:
        where = "" if ref.stage == _LATEST else f" in stage '{ref.stage}'"
        raise ModelyardException.not_found(f"No versions of registered model '{ref.name}'{where}")
    newest = max(versions, key=lambda mv: int(mv.version))
    return ref.name, str(newest.version)


def resolve_model_uri(uri: str, client: Any = None) -> str:
    """The artifact location (`mlflow-artifacts:/`, `s3://`, a local path, ...) that holds the model directory."""
    uri = str(uri)
    if uri.startswith("models:/"):
        client = _client(client)
        ref = parse_models_uri(uri)
        if ref.model_id is not None:
            return str(client.get_logged_model(ref.model_id).artifact_location)
        resolved = resolve_model_version(uri, client)
        assert resolved is not None
        return _version_location(client, *resolved)
    if uri.startswith("runs:/"):
        return _run_location(_client(client), *parse_runs_uri(uri))
    return uri


def _version_location(client: Any, name: str, version: str) -> str:
    location = str(client.get_model_version_download_uri(name, version))
    if location.startswith("models:/"):
        # MLflow 3 versions may point at their logged model rather than a folder.
        return resolve_model_uri(location, client)
    if location.startswith("runs:/"):
        return _run_location(client, *parse_runs_uri(location))
    return location


def _run_location(client: Any, run_id: str, path: str) -> str:
    run = client.get_run(run_id)
    root = str(run.info.artifact_uri).rstrip("/")
    folder = f"{root}/{path}" if path else root
    if not path or _has_mlmodel(folder):
        return folder
    # MLflow 3 keeps models out of the run's folder: runs:/<id>/<name> means the run's logged model <name>.
    model = _logged_model_of_run(client, run, path)
    return folder if model is None else str(model.artifact_location)


def _has_mlmodel(folder: str) -> bool:
    local = _local_path(folder)
    if local is not None:
        return (local / "MLmodel").is_file()
    from modelyard.client.artifacts import list_artifacts

    try:
        return any(posixpath.basename(f.path) == "MLmodel" for f in list_artifacts(artifact_uri=folder))
    except ModelyardException:
        return False


def _logged_model_of_run(client: Any, run: Any, name: str) -> Any:
    search = getattr(client, "search_logged_models", None)
    if search is None:
        return None
    found = search(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{name}'",
        max_results=1,
    )
    items = getattr(found, "models", found)
    return items[0] if items else None


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise _bad(f"Unsupported file URI with a host: '{uri}'")
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and re.match(r"^[a-zA-Z]:[\\/]", uri)):
        return Path(uri)
    return None


def download_artifact_uri(uri: str, dst_path: str | None = None) -> str:
    """A local copy of the file or folder at `uri`; a local `uri` without `dst_path` is used in place."""
    local = _local_path(uri)
    if local is not None:
        if not local.exists():
            raise ModelyardException.not_found(f"No such file or directory: '{local}'")
        if dst_path is None:
            return str(local)
        target = Path(dst_path) / local.resolve().name
        Path(dst_path).mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, target)
        else:
            shutil.copy2(local, target)
        return str(target)
    from modelyard.client.artifacts import download_artifacts

    destination = dst_path or tempfile.mkdtemp(prefix="modelyard-artifact-")
    Path(destination).mkdir(parents=True, exist_ok=True)
    return str(download_artifacts(artifact_uri=uri, dst_path=destination))


def download_model(model_uri: str, dst_path: str | Path | None = None, client: Any = None) -> str:
    """The local model directory for any model URI; local directories are used in place unless `dst_path` is given."""
    location = resolve_model_uri(str(model_uri), client)
    local = _local_path(location)
    if local is not None:
        if not (local / "MLmodel").is_file():
            raise ModelyardException.not_found(f"No model (MLmodel file) at '{model_uri}'")
        if dst_path is None:
            return str(local)
        Path(dst_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local, dst_path, dirs_exist_ok=True)
        return str(dst_path)
    if dst_path is not None:
        Path(dst_path).mkdir(parents=True, exist_ok=True)
    downloaded = Path(download_artifact_uri(location, None if dst_path is None else str(dst_path)))
    if not (downloaded / "MLmodel").is_file():
        raise ModelyardException.not_found(
            f"No model (MLmodel file) at '{model_uri}' (resolved to '{location}')"
        )
    return str(downloaded)
