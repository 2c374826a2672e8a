"""gunicorn config of the local endpoint service: the shared runtime settings, and exactly one worker.

    gunicorn -c python:modelyard.endpoints.gunicorn_conf modelyard.endpoints.asgi:app

Endpoint state (definitions, the serving processes of each variant, routing) lives in the one worker
process; a second worker would answer DescribeEndpoint for endpoints it never saw. A `--workers` flag
(the dev stack passes its global worker count) outranks a config file, so the count is pinned when the
master starts instead. Throughput comes from the serving workers each variant runs, not from here.
"""

from __future__ import annotations

from typing import Any

from modelyard.runtime.gunicorn_conf import *  # noqa: F403
from modelyard.runtime.gunicorn_conf import __all__ as _shared

workers = 1


def on_starting(server: Any) -> None:
    if server.num_workers != 1:
        server.log.info(
            "endpoints service keeps its state in one process: 1 worker, not %s", server.num_workers
        )
        server.num_workers = 1


__all__ = [*_shared, "on_starting"]
