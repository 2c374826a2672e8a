"""`synchronous=False` logging: calls run on one background thread, in submission order.

One thread (not a pool) because order matters: a metric series or a param written twice must land
in the order the user logged it. `RunOperations.wait()` blocks until the calls are written and
re-raises the first failure. MLFLOW_ENABLE_ASYNC_LOGGING=true makes asynchronous the default.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


class RunOperations:
    """Handle on asynchronously logged data; `wait()` blocks until it is written (or re-raises)."""

    def __init__(self, futures: Sequence[Future[Any]] = ()) -> None:
        self._futures = list(futures)

    def wait(self) -> None:
        for future in self._futures:
            future.result()


def is_synchronous(synchronous: bool | None) -> bool:
    if synchronous is not None:
        return synchronous
    return os.environ.get("MLFLOW_ENABLE_ASYNC_LOGGING", "").lower() not in ("1", "true")


def submit(call: Callable[..., Any], *args: Any, **kwargs: Any) -> RunOperations:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelyard-async-log")
            atexit.register(_pool.shutdown, wait=True)
        future = _pool.submit(call, *args, **kwargs)
    return RunOperations([future])
