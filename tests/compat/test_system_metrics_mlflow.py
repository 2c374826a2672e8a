"""System metrics: modelyard's names are mlflow 3.17's, both logged to the compat session's real mlflow server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.integration.client_workflow import reset_fluent_state
from tests.integration.test_system_metrics import MLFLOW_NAMES
from tests.support.mlflow_client import mlflow_pointed_at

import modelyard
from modelyard import system_metrics
from modelyard.client import tracking_uri as tracking_uri_module

pytestmark = pytest.mark.compat


@pytest.fixture
def pointed(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    monkeypatch.setenv(system_metrics.INTERVAL_VARIABLE, "0.2")
    monkeypatch.setenv(system_metrics.SAMPLES_VARIABLE, "1")
    reset_fluent_state()
    with mlflow_pointed_at(mlflow_server) as uri:
        yield uri
    reset_fluent_state()
    tracking_uri_module.clear_store_cache()


def _logged_names(client, run_id: str, at_least: int) -> set[str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while len(names := set(client.get_run(run_id).data.metrics)) < at_least:
        assert time.monotonic() < deadline, f"only {sorted(names)} logged"
        time.sleep(0.1)
    return names


def test_system_metric_names_equal_mlflows(pointed: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(pointed)
    with mlflow.start_run(log_system_metrics=True) as theirs:
        their_names = _logged_names(client, theirs.info.run_id, len(MLFLOW_NAMES))
    with modelyard.start_run(log_system_metrics=True) as ours:
        our_names = _logged_names(client, ours.info.run_id, len(MLFLOW_NAMES))
    assert our_names == their_names == MLFLOW_NAMES  # no GPU here: the GPU names are not compared
