"""Autologging work that goes out after the autologged call returns: a classifier's plots (matplotlib
drawing costs more than the rest of a small fit's logging together), drawn and uploaded here.

ONE worker thread, steps in submission order: the work is CPU-bound Python (the GIL gains nothing from
a second thread) and two fits' plots then land in the order of the fits. A step gets only data of its
own (copies made on the fit's thread), never the estimator or the user's arrays. Its failure is a
warning like every autologging error (a debug log when `silent`), never an exception in the user's
later code. `flush()` (public: `modelyard.flush_async_logging()`) blocks until every step queued so far
is done; the interpreter's exit waits for them too (concurrent.futures joins its workers at exit, after
the queued steps), so a `python train.py` never loses its plots. The run a step uploads to may have
ended by then: artifacts of an ended run are accepted by modelyard's and MLflow's servers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelyard.autologging.patching import safely
from modelyard.client.async_logging import OrderedWorker

_worker = OrderedWorker("modelyard-autolog-background")


def submit(integration: str, silent: bool, step: Callable[..., Any], *args: Any) -> None:
    """Queue `step(*args)`; run it now when the interpreter is already shutting down (a fit in an
    atexit handler), when no new thread can start."""
    try:
        _worker.submit(safely, integration, silent, step, *args)
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        safely(integration, silent, step, *args)


def flush() -> None:
    """Block until every step queued before this call is done (its failure was a warning already)."""
    _worker.flush()


def flush_async_logging() -> None:
    """Wait for everything logged asynchronously so far: `synchronous=False` calls (`RunOperations`) and
    autologging's background steps (plots). MLflow's name; failures were reported already (a call's own
    `RunOperations.wait()` re-raises its failure)."""
    from modelyard.client import async_logging

    async_logging.flush()
    flush()
