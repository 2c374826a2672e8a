"""`synchronous=False` logging: calls run on one background thread, in submission order.

One thread (not a pool) because order matters: a metric series or a param written twice must land
in the order the user logged it. `RunOperations.wait()` blocks until the calls are written and
re-raises the first failure; `flush()` waits for everything queued so far. MLFLOW_ENABLE_ASYNC_LOGGING=true
makes asynchronous the default. The interpreter's exit waits for queued calls (concurrent.futures joins its
workers at exit, after the calls queued before).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any


class OrderedWorker:
    """One thread, started on first use, running calls in submission order."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # A forked child has no copy of the thread: it starts its own (its parent's queue is the parent's).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool = None
        self._lock = threading.Lock()

    def submit(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Raises RuntimeError once the interpreter is shutting down (no new work then)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
            return self._pool.submit(call, *args, **kwargs)

    def flush(self) -> None:
        """Block until every call submitted before this one has run (their errors are their futures')."""
        with self._lock:
            if self._pool is None:
                return
            try:
                marker = self._pool.submit(lambda: None)
            except RuntimeError:  # shutting down: the exit joins the worker after its queued calls
                return
        marker.result()  # one worker, in order: what was queued before the marker has run


#: Threads of the shared pool at most (started as needed, then kept).
SHARED_THREADS = 16
_shared: ThreadPoolExecutor | None = None
_shared_lock = threading.Lock()


def _forget_shared() -> None:
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_shared)  # a forked child starts threads of its own


class Tasks:
    """Calls run at once on threads shared by every logging call and kept between calls; the `with`
    block's end waits for all of them (as a ThreadPoolExecutor's would, its failures left in the
    futures). Starting a thread costs the starter a wait until the new thread gets the GIL, up to the
    5 ms switch interval while another thread computes: ~2.5 ms a start in an autologged fit, which
    started six (its log-batch, metrics, artifacts, the model's creation and link, the finalize).
    A task may wait only for tasks submitted before it: the queue is first in, first out, so those
    are running or done whenever it runs, and a full pool cannot deadlock."""

    def __init__(self) -> None:
        self._futures: list[Future[Any]] = []

    def submit(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Raises RuntimeError once the interpreter is shutting down (no new work then)."""
        global _shared
        with _shared_lock:
            if _shared is None:
                _shared = ThreadPoolExecutor(max_workers=SHARED_THREADS, thread_name_prefix="modelyard-io")
            future = _shared.submit(call, *args, **kwargs)
        self._futures.append(future)
        return future

    def __enter__(self) -> Tasks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        wait(self._futures)


_worker = OrderedWorker("modelyard-async-log")


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
    return RunOperations([_worker.submit(call, *args, **kwargs)])


def flush() -> None:
    """Wait for every call submitted so far (`RunOperations.wait()` re-raises a call's failure)."""
    _worker.flush()
