"""The services' own log lines (the `modelyard.*` loggers) on stderr, beside gunicorn's, at
`MODELYARD_LOG_LEVEL`.

Python leaves a library's loggers unconfigured, and gunicorn configures only its own: without this, the
services' INFO lines (the admin user created at start-up, authentication on, webhook deliveries) never
appeared, and their warnings came out through logging's last-resort handler with no time, process or
logger name. Only the services call this (from their gunicorn settings, in the master, so the workers
inherit it); the client library configures no logging in a user's process.
"""

from __future__ import annotations

import logging
import sys

#: gunicorn's error log's layout, with the logger's name.
FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A marker type: configuring twice (a service's settings importing the shared ones) adds one handler."""


def configure(level: str) -> None:
    logger = logging.getLogger("modelyard")
    logger.setLevel(level.upper())
    if not any(isinstance(handler, _ServiceHandler) for handler in logger.handlers):
        handler = _ServiceHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
    logger.propagate = False
