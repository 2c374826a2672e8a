"""An autologged fit's model turns READY together with the run's end (`autologging/runs.at_end`): when
`fit` returns both are done, in a run autologging started and in the user's own; a failing finalize is a
warning, the fit still returns, the model ends FAILED and the run FINISHED. Against the shared SQLite
server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from tests.conftest import SharedServer

import modelyard
from modelyard.client import Client
from modelyard.client.registry_client import RegistryClientMixin

X = np.arange(40.0).reshape(20, 2)
Y = X[:, 0] * 2.0 + 1.0


@pytest.fixture
def experiment_id(shared_sqlite_server: SharedServer, unique_name: str) -> Iterator[str]:
    modelyard.set_tracking_uri(shared_sqlite_server.url)
    try:
        yield modelyard.set_experiment(unique_name).experiment_id
    finally:
        modelyard.sklearn.autolog(disable=True)
        modelyard.set_tracking_uri(None)


def _only_model(experiment_id: str) -> Any:
    (model,) = Client().search_logged_models(experiment_ids=[experiment_id])
    return model


def test_when_fit_returns_the_run_is_finished_and_its_model_ready(experiment_id: str) -> None:
    modelyard.sklearn.autolog()
    LinearRegression().fit(X, Y)
    model = _only_model(experiment_id)
    run = Client().get_run(model.source_run_id)
    assert (run.info.status, model.status) == ("FINISHED", "LOGGED_MODEL_READY")
    assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]


def test_in_the_users_own_run_the_model_is_ready_when_fit_returns(experiment_id: str) -> None:
    modelyard.sklearn.autolog()
    with modelyard.start_run() as run:
        LinearRegression().fit(X, Y)
        model = _only_model(experiment_id)
        assert model.status == "LOGGED_MODEL_READY"
        assert Client().get_run(run.info.run_id).info.status == "RUNNING"


def test_a_failing_finalize_is_a_warning_and_the_model_ends_failed(
    experiment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = RegistryClientMixin.finalize_logged_model

    def finalize(self: Any, model_id: str, status: Any) -> Any:
        if status == "READY":
            raise RuntimeError("finalize refused")
        return original(self, model_id, status)

    monkeypatch.setattr(RegistryClientMixin, "finalize_logged_model", finalize)
    modelyard.sklearn.autolog()
    with pytest.warns(UserWarning, match="finalize refused"):
        fitted = LinearRegression().fit(X, Y)
    assert fitted.coef_ is not None
    model = _only_model(experiment_id)
    assert model.status == "LOGGED_MODEL_UPLOAD_FAILED"
    assert Client().get_run(model.source_run_id).info.status == "FINISHED"
