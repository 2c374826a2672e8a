"""Which tracking backend the client talks to, and the store object for it.

Resolution order: `set_tracking_uri()` in this process, then MODELYARD_TRACKING_URI, then
MLFLOW_TRACKING_URI, then the embedded default `sqlite:///modelyard.db` in the working directory
(artifacts in `./modelyard-artifacts`), so a notebook logs somewhere useful with nothing configured.

Schemes: `http(s)://` -> the REST store (modelyard's tracking service or `mlflow server`);
`sqlite:///` and `postgresql(+driver)://` (also `postgres://`) -> the SQL store in this process, no
server needed. A bare local path or `file:` URI is refused with a message naming the alternative:
MLflow would open its file store there, which modelyard does not have, and silently turning a folder
into a SQLite file would put runs where an MLflow user does not expect them.

Stores are cached per URI: one connection pool (SQL) or HTTP session pool (REST) per backend.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from pathlib import Path

from modelyard.exceptions import ModelyardException
from modelyard.store.tracking.base import TrackingStore

DEFAULT_TRACKING_URI = "sqlite:///modelyard.db"
DEFAULT_ARTIFACT_FOLDER = "modelyard-artifacts"
TRACKING_URI_ENV_VARS = ("MODELYARD_TRACKING_URI", "MLFLOW_TRACKING_URI")

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres")

_tracking_uri: str | None = None
_stores: dict[str, TrackingStore] = {}
_lock = threading.Lock()


def set_tracking_uri(uri: str | Path | None) -> None:
    """Set the process-wide tracking URI (None goes back to the environment / default)."""
    global _tracking_uri
    if uri is None:
        _tracking_uri = None
        return
    text = str(uri)
    check_tracking_uri(text)
    _tracking_uri = text


def get_tracking_uri() -> str:
    if _tracking_uri is not None:
        return _tracking_uri
    for name in TRACKING_URI_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return DEFAULT_TRACKING_URI


def is_tracking_uri_set() -> bool:
    return _tracking_uri is not None or any(os.environ.get(name) for name in TRACKING_URI_ENV_VARS)


def scheme_of(uri: str) -> str:
    """`postgresql+psycopg` -> `postgresql`; a Windows drive letter or bare path -> ''."""
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if len(scheme) <= 1:
        return ""
    return scheme.split("+", 1)[0]


def check_tracking_uri(uri: str) -> str:
    """The backend family of `uri` ("rest" or "sql"), or INVALID_PARAMETER_VALUE saying what to use."""
    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        return "rest"
    if scheme in _SQL_SCHEMES:
        return "sql"
    if scheme in ("", "file"):
        raise ModelyardException.invalid_parameter(
            f"Tracking URI {uri!r} is a local path; modelyard has no file store. Use "
            f"'sqlite:///{_suggested_db_path(uri)}' for a local database, or an http(s):// server URL."
        )
    raise ModelyardException.invalid_parameter(
        f"Unsupported tracking URI {uri!r}: expected http(s)://, sqlite:/// or postgresql://."
    )


def _suggested_db_path(uri: str) -> str:
    path = urllib.parse.urlsplit(uri).path if uri.startswith("file:") else uri
    return str(Path(path or ".").expanduser().absolute() / "modelyard.db")


def default_artifact_root() -> str:
    """Where runs tracked in-process keep artifacts: MODELYARD_DEFAULT_ARTIFACT_ROOT or ./modelyard-artifacts."""
    configured = os.environ.get("MODELYARD_DEFAULT_ARTIFACT_ROOT")
    if configured:
        return configured
    return str(Path.cwd() / DEFAULT_ARTIFACT_FOLDER)


def get_tracking_store(uri: str | None = None) -> TrackingStore:
    """The cached store for `uri` (default: the current tracking URI)."""
    uri = uri or get_tracking_uri()
    with _lock:
        store = _stores.get(uri)
        if store is None:
            store = _make_store(uri)
            _stores[uri] = store
        return store


def _make_store(uri: str) -> TrackingStore:
    if check_tracking_uri(uri) == "rest":
        from modelyard.client.rest_store import RestTrackingStore

        return RestTrackingStore(uri)
    # The SQL store pulls in SQLAlchemy; only embedded use pays for that import.
    from modelyard.store.tracking.sql_store import SqlTrackingStore

    return SqlTrackingStore.from_uri(uri, default_artifact_root=default_artifact_root())


def clear_store_cache() -> None:
    """Forget cached stores (tests, or after a fork, where pooled connections must not be shared)."""
    with _lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        engine = getattr(store, "engine", None) or getattr(store, "_engine", None)
        dispose = getattr(engine, "dispose", None)
        if callable(dispose):
            dispose()
