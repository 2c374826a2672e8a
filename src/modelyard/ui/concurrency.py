"""Independent reads a page makes wait for their stores together.

A page's reads that do not depend on each other (the runs page's rows, its total and its key list;
a version's MLmodel and requirements; a model's two input examples) each cost a round trip to
PostgreSQL or S3 of a few to tens of ms; in a row they add up, at the same time the slowest is what
the page waits for.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_PREFIX = "ui-reads"
_READS = ThreadPoolExecutor(max_workers=16, thread_name_prefix=_PREFIX)


def concurrently(*calls: Callable[[], T]) -> list[T]:
    """The calls' results in order; the first runs on this thread, the others on the read pool (an
    exception is raised as the call itself would, after every call has finished; each sees the caller's
    context variables). Called from a
    pool thread it runs them in turn: a pool thread waiting on the pool's queue could wait forever."""
    if threading.current_thread().name.startswith(_PREFIX):
        return [call() for call in calls]
    # Each call in a copy of the caller's context: the request's query budget and actor go along.
    pending = [_READS.submit(contextvars.copy_context().run, call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        for future in pending:
            future.exception()  # wait for every call
    return [first, *(future.result() for future in pending)]
