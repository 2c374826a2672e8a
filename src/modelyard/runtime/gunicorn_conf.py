"""gunicorn settings for every modelyard service, read from `MODELYARD_*` (see `modelyard.settings`).

Use as `gunicorn -c python:modelyard.runtime.gunicorn_conf ...`, or `from modelyard.runtime.gunicorn_conf
import *` in a service's own `gunicorn.conf.py`. The app is not preloaded: each worker builds it after the
fork, so database pools and loaded models are never shared across processes.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from modelyard.runtime import service_logs
from modelyard.settings import Settings

_settings = Settings.from_env()
service_logs.configure(_settings.log_level)

if _settings.auth:
    # The workers' shared auth change counter must exist before the master forks them.
    import modelyard.auth.cache  # noqa: F401

# Metrics of all workers are summed from files in one folder per master (see modelyard.runtime.metrics);
# it must be set before any worker imports prometheus_client, and never inherited: a folder shared with
# another server would add its counts to ours.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelyard-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's gauges must not linger in the sums, nor its connections on the load board
    (a worker killed mid-request never cleared its slot itself)."""
    from prometheus_client import multiprocess

    from modelyard.runtime.balance import BOARD

    multiprocess.mark_process_dead(worker.pid)
    BOARD.leave(worker.age)


bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
worker_class = "modelyard.runtime.worker.UvicornWorker"
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
loglevel = _settings.log_level
errorlog = "-"
accesslog = "-" if _settings.access_log else None
preload_app = False
# gunicorn >= 26 opens a control socket at one fixed path per user: several services (or test servers) on
# one host would fight over it, and a read-only container home cannot hold it. Nothing here uses it.
control_socket_disable = True

__all__ = [
    "accesslog",
    "child_exit",
    "bind",
    "control_socket_disable",
    "errorlog",
    "graceful_timeout",
    "keepalive",
    "loglevel",
    "preload_app",
    "timeout",
    "worker_class",
    "workers",
]
