"""Pointing the real `mlflow` client at a server for a while, and putting everything back after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: mlflow writes some of these itself (set_experiment exports MLFLOW_EXPERIMENT_ID for subprocesses),
#: which monkeypatch would not undo: they are snapshotted and restored whole.
MLFLOW_GLOBAL_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


@contextmanager
def mlflow_pointed_at(tracking_uri: str) -> Iterator[str]:
    """The mlflow client (its env and cached globals) aimed at `tracking_uri`; afterwards stray runs
    are ended and the previous environment comes back."""
    import mlflow
    import mlflow.tracking.fluent

    saved = {name: os.environ.get(name) for name in MLFLOW_GLOBAL_ENV}
    for name in MLFLOW_GLOBAL_ENV:
        os.environ.pop(name, None)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield tracking_uri
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.tracking.fluent._active_experiment_id = None
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
