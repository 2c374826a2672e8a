"""Pointing the real `mlflow` client at a server for a while, and putting everything back after; running
one scenario with both clients."""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

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


def run_with_both_clients(
    scenario: Callable[[ModuleType, str], None], tracking_uri: str, prefix: str
) -> dict[str, str]:
    """`scenario(client, experiment)` run once with `mlflow` and once with `modelyard` as `mlflow`
    against one server, each into an experiment of its own: {"mlflow": id, "modelyard": id}.

    The clients work in a scratch folder (nothing they write locally lands in the checkout), warnings
    off, and mlflow's requirements inference cut to 1 s per model (it infers them in a Python
    subprocess, ~5 s of CPU each; past the timeout it writes its defaults, which tests do not compare).
    Autologging is off for both afterwards, even when the scenario failed half-way, and modelyard's
    asynchronous logging (autologged plots) is stored."""
    import mlflow

    import modelyard

    tag = uuid.uuid4().hex[:8]
    ids = {}
    cwd = os.getcwd()
    saved_timeout = os.environ.get("MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT")
    os.environ["MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT"] = "1"
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.chdir(tmp)
        try:
            with mlflow_pointed_at(tracking_uri):
                scenario(mlflow, f"{prefix}-mlflow-{tag}")
                ids["mlflow"] = mlflow.get_experiment_by_name(f"{prefix}-mlflow-{tag}").experiment_id
            modelyard.set_tracking_uri(tracking_uri)
            scenario(modelyard, f"{prefix}-modelyard-{tag}")
            ids["modelyard"] = modelyard.get_experiment_by_name(f"{prefix}-modelyard-{tag}").experiment_id
        finally:
            modelyard.flush_async_logging()  # autologged plots are stored after `fit` returns
            # Each integration's own autolog(): the universal one leaves integrations configured so alone.
            for client in (mlflow, modelyard):
                client.sklearn.autolog(disable=True)
                client.xgboost.autolog(disable=True)
            while modelyard.active_run() is not None:
                modelyard.end_run()
            modelyard.set_tracking_uri(None)
            os.chdir(cwd)
            if saved_timeout is None:
                os.environ.pop("MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT", None)
            else:
                os.environ["MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT"] = saved_timeout
    return ids
