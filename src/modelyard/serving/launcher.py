"""`modelyard models serve`: become the gunicorn master of the scoring service.

The CLI process replaces itself with gunicorn (exec), so signals, exit codes and graceful shutdown are
gunicorn's own, exactly as in the serving container; the model is downloaded once by the master
(see `modelyard.serving.gunicorn_conf`).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

GUNICORN_CONF = "python:modelyard.serving.gunicorn_conf"
APP = "modelyard.serving.asgi:app"


def scoring_server_command(host: str, port: int, workers: int | None, timeout: int | None) -> list[str]:
    command = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "--bind", f"{host}:{port}"]
    if workers is not None:
        command += ["--workers", str(workers)]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    return [*command, APP]


def exec_scoring_server(
    model_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int | None = None,
    timeout: int | None = None,
) -> NoReturn:
    env = {
        **os.environ,
        "MODELYARD_MODEL_URI": model_uri,
        "MODELYARD_HOST": host,
        "MODELYARD_PORT": str(port),
    }
    command = scoring_server_command(host, port, workers, timeout)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
