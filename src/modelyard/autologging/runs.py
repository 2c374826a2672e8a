"""The run an autologged call logs to: the active run, or one it starts and ends itself (as MLflow).

A run autologging starts carries `mlflow.autologging=<integration>` and ends FINISHED when the call
returns, FAILED when it raises (KILLED on Ctrl-C). With `exclusive=True` nothing is logged into a
run the user started. If the run cannot be created (server down), the call runs unlogged.

`at_end` defers a last step of the call's logging (a logged model's finalize) to the run's end, where
it goes out together with the end-run request instead of one round trip before it; both are done
before the call returns, and the step's failure is a warning like any logging error. In a run the
user started, deferred steps run when the call's logging is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from modelyard.autologging.config import AUTOLOGGING_TAG, AutologConfig
from modelyard.autologging.patching import warn

#: The steps `at_end` deferred, per thread: a list while an autologged call runs on this thread.
_deferred = threading.local()


def at_end(step: Callable[[], None]) -> None:
    """Run `step` when this thread's autologged call ends its run (alongside the end-run request), or
    now when no autologged call is running here."""
    pending: list[Callable[[], None]] | None = getattr(_deferred, "steps", None)
    if pending is None:
        step()
    else:
        pending.append(step)


@contextmanager
def autolog_run(integration: str, config: AutologConfig) -> Iterator[str | None]:
    """Yields the run id to log to, or None when this call must not log."""
    from modelyard.client import fluent
    from modelyard.entities import RunStatus

    active = fluent.active_run()
    if active is not None:
        if config.exclusive:
            yield None
            return
        with _deferring() as pending:
            try:
                yield active.info.run_id
            finally:
                _finish(pending, None, integration, config.silent)
        return
    try:
        tags = {AUTOLOGGING_TAG: integration, **{k: str(v) for k, v in config.extra_tags.items()}}
        run_id = fluent.start_run(tags=tags).info.run_id
    except Exception as error:
        warn(integration, error, config.silent)
        yield None
        return
    status = RunStatus.FAILED
    with _deferring() as pending:
        try:
            yield run_id
            status = RunStatus.FINISHED
        except KeyboardInterrupt:
            status = RunStatus.KILLED
            raise
        finally:
            _finish(pending, lambda: fluent.end_run(status, run_id=run_id), integration, config.silent)


@contextmanager
def _deferring() -> Iterator[list[Callable[[], None]]]:
    outer = getattr(_deferred, "steps", None)
    _deferred.steps = pending = []
    try:
        yield pending
    finally:
        _deferred.steps = outer


def _finish(
    pending: list[Callable[[], None]], end: Callable[[], None] | None, integration: str, silent: bool
) -> None:
    """The deferred steps on other threads while this one ends the run (the fluent API's run stack is
    this thread's); every failure a warning."""
    from modelyard.client.async_logging import Tasks

    steps, pending[:] = list(pending), []
    with Tasks() as pool:
        futures = [pool.submit(step) for step in steps]
        if end is not None:
            try:
                end()
            except Exception as error:
                warn(integration, error, silent)
        for future in futures:
            try:
                future.result()
            except Exception as error:
                warn(integration, error, silent)


def artifact_repository(run_id: str) -> Any:
    """The run's artifact repository, from the active run's info when it is that run (one get-run
    round trip fewer per fit)."""
    from modelyard.client import fluent
    from modelyard.client.artifacts import get_artifact_repository, run_repository

    active = fluent.active_run()
    if active is not None and active.info.run_id == run_id and active.info.artifact_uri:
        return get_artifact_repository(active.info.artifact_uri)
    return run_repository(run_id)
