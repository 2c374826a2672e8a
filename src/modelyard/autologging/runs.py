"""The run an autologged call logs to: the active run, or one it starts and ends itself (as MLflow).

A run autologging starts carries `mlflow.autologging=<integration>` and ends FINISHED when the call
returns, FAILED when it raises (KILLED on Ctrl-C). With `exclusive=True` nothing is logged into a
run the user started. If the run cannot be created (server down), the call runs unlogged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelyard.autologging.config import AUTOLOGGING_TAG, AutologConfig
from modelyard.autologging.patching import warn


@contextmanager
def autolog_run(integration: str, config: AutologConfig) -> Iterator[str | None]:
    """Yields the run id to log to, or None when this call must not log."""
    from modelyard.client import fluent
    from modelyard.entities import RunStatus

    active = fluent.active_run()
    if active is not None:
        yield None if config.exclusive else active.info.run_id
        return
    try:
        tags = {AUTOLOGGING_TAG: integration, **{k: str(v) for k, v in config.extra_tags.items()}}
        run_id = fluent.start_run(tags=tags).info.run_id
    except Exception as error:
        warn(integration, error, config.silent)
        yield None
        return
    status = RunStatus.FAILED
    try:
        yield run_id
        status = RunStatus.FINISHED
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        raise
    finally:
        try:
            fluent.end_run(status, run_id=run_id)
        except Exception as error:
            warn(integration, error, config.silent)


def artifact_repository(run_id: str) -> Any:
    """The run's artifact repository, from the active run's info when it is that run (one get-run
    round trip fewer per fit)."""
    from modelyard.client import fluent
    from modelyard.client.artifacts import get_artifact_repository, run_repository

    active = fluent.active_run()
    if active is not None and active.info.run_id == run_id and active.info.artifact_uri:
        return get_artifact_repository(active.info.artifact_uri)
    return run_repository(run_id)
