"""Client-side artifact logging and download: run ids and artifact URIs -> the right repository.

Resolution: `mlflow-artifacts:/path` (what a tracking server in proxied mode hands out) becomes
`<tracking URI>/api/2.0/mlflow-artifacts/artifacts/path` (`mlflow-artifacts://host:port/path` names
another host), `runs:/<run_id>/<path>` goes through the run's `artifact_uri`, and `s3://`, `file:`,
`http(s)://` and local paths are used directly (`modelyard.artifact_repos.get_repository`). `Client` and
the fluent API delegate here, so both behave the same.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from modelyard.artifact_repos import get_repository
from modelyard.artifact_repos.base import ArtifactRepository, FileInfo
from modelyard.artifact_repos.http import ARTIFACTS_ROUTE
from modelyard.artifact_repos.paths import safe_relative_path
from modelyard.exceptions import ModelyardException

PROXY_SCHEME = "mlflow-artifacts"


def _tracking_uri(tracking_uri: str | None) -> str:
    if tracking_uri:
        return tracking_uri
    from modelyard.client.tracking_uri import get_tracking_uri

    return get_tracking_uri()


def resolve_artifact_uri(artifact_uri: str, tracking_uri: str | None = None) -> str:
    """A concrete location for `artifact_uri` (`mlflow-artifacts:` resolved against the tracking URI)."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != PROXY_SCHEME:
        return artifact_uri
    # Inside a cluster there is no single base URL: MODELYARD_ARTIFACTS_URI names the artifacts service.
    tracking = urlparse(os.environ.get("MODELYARD_ARTIFACTS_URI") or _tracking_uri(tracking_uri))
    if tracking.scheme not in ("http", "https"):
        raise ModelyardException.invalid_parameter(
            f"{artifact_uri!r} is served by a tracking server, but the tracking URI is "
            f"{tracking.scheme or 'a local path'}; set MLFLOW_TRACKING_URI to the server's http(s) URL"
        )
    path = safe_relative_path(parsed.path.strip("/"))
    base = f"{tracking.scheme}://{parsed.netloc or tracking.netloc}{tracking.path.rstrip('/')}"
    return f"{base}{ARTIFACTS_ROUTE}/{path}" if path else f"{base}{ARTIFACTS_ROUTE}"


def get_artifact_repository(artifact_uri: str, tracking_uri: str | None = None) -> ArtifactRepository:
    return get_repository(resolve_artifact_uri(artifact_uri, tracking_uri))


def run_artifact_uri(run_id: str, tracking_uri: str | None = None) -> str:
    from modelyard.client.tracking_uri import get_tracking_store

    run = get_tracking_store(_tracking_uri(tracking_uri)).get_run(run_id)
    if not run.info.artifact_uri:
        raise ModelyardException.invalid_parameter(f"Run {run_id} has no artifact location")
    return str(run.info.artifact_uri)


def run_repository(run_id: str, tracking_uri: str | None = None) -> ArtifactRepository:
    return get_artifact_repository(run_artifact_uri(run_id, tracking_uri), tracking_uri)


def _split_runs_uri(uri: str) -> tuple[str, str]:
    """`runs:/<run_id>/a/b` -> (run_id, "a/b")."""
    parsed = urlparse(uri)
    parts = (parsed.netloc + parsed.path).strip("/").split("/", 1)
    if not parts[0]:
        raise ModelyardException.invalid_parameter(f"{uri!r} must look like runs:/<run_id>/<path>")
    return parts[0], parts[1] if len(parts) > 1 else ""


# ---- logging ---------------------------------------------------------------------------------
def log_artifact(
    run_id: str,
    local_path: str | os.PathLike[str],
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> None:
    local = os.fspath(local_path)
    if os.path.islink(local):
        raise ModelyardException.invalid_parameter(f"Refusing to upload symlink {local!r}")
    if not os.path.isfile(local):
        raise ModelyardException.invalid_parameter(f"{local!r} is not a file")
    run_repository(run_id, tracking_uri).log_artifact(local, safe_relative_path(artifact_path) or None)


def log_artifacts(
    run_id: str,
    local_dir: str | os.PathLike[str],
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> None:
    run_repository(run_id, tracking_uri).log_artifacts(
        os.fspath(local_dir), safe_relative_path(artifact_path) or None
    )


@contextmanager
def _staged(artifact_file: str) -> Iterator[str]:
    """A temp file named like the artifact's basename; yields its local path."""
    rel = safe_relative_path(artifact_file)
    if not rel:
        raise ModelyardException.invalid_parameter("artifact_file is required")
    with tempfile.TemporaryDirectory(prefix="modelyard-log-") as tmp:
        yield os.path.join(tmp, posixpath.basename(rel))


def _log_staged(run_id: str, artifact_file: str, local: str, tracking_uri: str | None) -> None:
    folder = posixpath.dirname(safe_relative_path(artifact_file))
    log_artifact(run_id, local, folder or None, tracking_uri)


def log_text(run_id: str, text: str, artifact_file: str, tracking_uri: str | None = None) -> None:
    with _staged(artifact_file) as local:
        with open(local, "w", encoding="utf-8") as f:
            f.write(text)
        _log_staged(run_id, artifact_file, local, tracking_uri)


def log_dict(run_id: str, dictionary: Any, artifact_file: str, tracking_uri: str | None = None) -> None:
    """YAML for `.yaml`/`.yml`, JSON otherwise (MLflow's rule)."""
    with _staged(artifact_file) as local:
        with open(local, "w", encoding="utf-8") as f:
            if artifact_file.endswith((".yaml", ".yml")):
                import yaml

                yaml.safe_dump(dictionary, f, default_flow_style=False, sort_keys=False)
            else:
                json.dump(dictionary, f, indent=2)
        _log_staged(run_id, artifact_file, local, tracking_uri)


def log_figure(
    run_id: str,
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> None:
    """A matplotlib figure (`savefig`) or a plotly figure (`.html` via `write_html`, else `write_image`)."""
    with _staged(artifact_file) as local:
        kwargs = save_kwargs or {}
        if hasattr(figure, "savefig"):
            figure.savefig(local, **kwargs)
        elif hasattr(figure, "write_html"):
            if local.endswith(".html"):
                figure.write_html(local, **kwargs)
            else:
                figure.write_image(local, **kwargs)
        else:
            raise ModelyardException.invalid_parameter(
                f"Unsupported figure type {type(figure).__name__}: expected a matplotlib or plotly figure"
            )
        _log_staged(run_id, artifact_file, local, tracking_uri)


def log_image(run_id: str, image: Any, artifact_file: str, tracking_uri: str | None = None) -> None:
    """A PIL image or a numpy array (HxW, HxWx3, HxWx4; uint8, or floats in [0, 1]); needs Pillow."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ModelyardException.invalid_parameter("log_image needs Pillow: pip install pillow") from exc
    if not isinstance(image, Image.Image):
        image = Image.fromarray(_as_uint8(image))
    with _staged(artifact_file) as local:
        image.save(local)
        _log_staged(run_id, artifact_file, local, tracking_uri)


def _as_uint8(array: Any) -> Any:
    import numpy as np

    values = np.asarray(array)
    if values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] not in (1, 3, 4)):
        raise ModelyardException.invalid_parameter(
            f"Image array must be HxW or HxWxC (C=1,3,4), got {values.shape}"
        )
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.dtype == np.uint8:
        return values
    if np.issubdtype(values.dtype, np.floating):
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ModelyardException.invalid_parameter("Float image values must be within [0, 1]")
        return (values * 255).round().astype(np.uint8)
    if np.issubdtype(values.dtype, np.integer):
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ModelyardException.invalid_parameter("Integer image values must be within [0, 255]")
        return values.astype(np.uint8)
    raise ModelyardException.invalid_parameter(f"Unsupported image dtype {values.dtype}")


# ---- reading ---------------------------------------------------------------------------------
def _locate(
    artifact_uri: str | None, run_id: str | None, artifact_path: str | None, tracking_uri: str | None
) -> tuple[ArtifactRepository, str]:
    """(repository, relative path) for either an artifact URI or a run id + path, not both."""
    if (artifact_uri is None) == (run_id is None):
        raise ModelyardException.invalid_parameter("Pass exactly one of artifact_uri and run_id")
    if run_id is not None:
        return run_repository(run_id, tracking_uri), safe_relative_path(artifact_path)
    assert artifact_uri is not None
    if artifact_path is not None:
        raise ModelyardException.invalid_parameter("artifact_path goes with run_id; put it in artifact_uri")
    if urlparse(artifact_uri).scheme == "runs":
        rid, rel = _split_runs_uri(artifact_uri)
        return run_repository(rid, tracking_uri), safe_relative_path(rel)
    # The last segment may be a file: open the parent and address the child, like MLflow does.
    resolved = resolve_artifact_uri(artifact_uri, tracking_uri)
    parent, _, name = resolved.rstrip("/").rpartition("/")
    at_root = resolved.rstrip("/").endswith(ARTIFACTS_ROUTE)
    if at_root or not name or parent.endswith((":", ":/", "://")):
        return get_repository(resolved), ""
    return get_repository(parent), safe_relative_path(name)


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """MLflow's `mlflow.artifacts.download_artifacts`: by URI (any scheme, incl. `runs:/` and
    `mlflow-artifacts:`) or by run id + path; returns the local path."""
    repo, rel = _locate(artifact_uri, run_id, artifact_path, tracking_uri)
    return repo.download_artifacts(rel, os.fspath(dst_path) if dst_path is not None else None)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    if artifact_uri is not None and artifact_path is None and urlparse(artifact_uri).scheme != "runs":
        return get_artifact_repository(artifact_uri, tracking_uri).list_artifacts()
    repo, rel = _locate(artifact_uri, run_id, artifact_path, tracking_uri)
    return repo.list_artifacts(rel or None)


def load_text(artifact_uri: str, tracking_uri: str | None = None) -> str:
    with tempfile.TemporaryDirectory(prefix="modelyard-load-") as tmp:
        local = download_artifacts(artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=tracking_uri)
        with open(local, encoding="utf-8") as f:
            return f.read()


def load_dict(artifact_uri: str, tracking_uri: str | None = None) -> Any:
    text = load_text(artifact_uri, tracking_uri)
    if artifact_uri.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


# ---- the Client and fluent surfaces (MLflow's names and signatures) ----------------------------
class ArtifactsClientMixin:
    """`Client` methods: `Client(...).log_artifact(run_id, local_path, artifact_path=None)` etc."""

    _tracking_uri: str

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        log_artifact(run_id, local_path, artifact_path, self._tracking_uri)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        log_artifacts(run_id, local_dir, artifact_path, self._tracking_uri)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        log_text(run_id, text, artifact_file, self._tracking_uri)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        log_dict(run_id, dictionary, artifact_file, self._tracking_uri)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
    ) -> None:
        log_figure(run_id, figure, artifact_file, save_kwargs=save_kwargs, tracking_uri=self._tracking_uri)

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        log_image(run_id, image, artifact_file, self._tracking_uri)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return list_artifacts(run_id=run_id, artifact_path=path, tracking_uri=self._tracking_uri)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        return download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=dst_path, tracking_uri=self._tracking_uri
        )


def _active_run_id(run_id: str | None = None) -> str:
    if run_id:
        return run_id
    from modelyard.client.fluent import _active_run_id as active

    return active()


def fluent_log_artifact(local_path: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    log_artifact(_active_run_id(run_id), local_path, artifact_path)


def fluent_log_artifacts(local_dir: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    log_artifacts(_active_run_id(run_id), local_dir, artifact_path)


def fluent_log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    log_text(_active_run_id(run_id), text, artifact_file)


def fluent_log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    log_dict(_active_run_id(run_id), dictionary, artifact_file)


def fluent_log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None, run_id: str | None = None
) -> None:
    log_figure(_active_run_id(run_id), figure, artifact_file, save_kwargs=save_kwargs)


def fluent_log_image(
    image: Any, artifact_file: str | None = None, run_id: str | None = None, **_: Any
) -> None:
    if not artifact_file:
        raise ModelyardException.invalid_parameter("artifact_file is required")
    log_image(_active_run_id(run_id), image, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """MLflow's `mlflow.get_artifact_uri`: the active run's artifact URI (plus a relative path)."""
    base = run_artifact_uri(_active_run_id())
    rel = safe_relative_path(artifact_path)
    return f"{base.rstrip('/')}/{rel}" if rel else base
