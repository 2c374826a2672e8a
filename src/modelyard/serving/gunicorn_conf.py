"""gunicorn config of the scoring service: the shared runtime settings, plus one model download.

    gunicorn -c python:modelyard.serving.gunicorn_conf modelyard.serving.asgi:app

Workers build the app after the fork (no preload), so each loads the model itself; a remote URI
(`models:/`, `runs:/`, `s3://`, ...) would then be downloaded once per worker. The master resolves and
downloads it once before any worker starts and hands the workers the local folder instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from modelyard.runtime.gunicorn_conf import *  # noqa: F403
from modelyard.runtime.gunicorn_conf import __all__ as _shared

MODEL_URI_ENV = "MODELYARD_MODEL_URI"
_download_dir: list[str] = []


def is_local_model(uri: str) -> bool:
    return "://" not in uri and not uri.startswith(("models:/", "runs:/", "mlflow-artifacts:/"))


def on_starting(server: Any) -> None:
    uri = os.environ.get(MODEL_URI_ENV, "")
    if not uri or is_local_model(uri):
        return
    from modelyard.models.uri import download_model

    folder = tempfile.mkdtemp(prefix="modelyard-serving-")
    _download_dir.append(folder)
    local = download_model(uri, os.path.join(folder, "model"))
    server.log.info("Downloaded %s to %s", uri, local)
    # Workers are forked from this process and inherit its environment.
    os.environ[MODEL_URI_ENV] = local


def on_exit(server: Any) -> None:
    for folder in _download_dir:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = [*_shared, "on_exit", "on_starting"]
