"""A run's artifact folder belongs to its experiment: writes that name a run of another experiment, or
no run at all, are refused with 403 and touch nothing — in single-process mode and in the standalone
artifacts service reading the tracking database."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from tests.support.services import start_service

from modelyard.client import Client
from modelyard.devstack.services import ARTIFACTS

API = "/api/2.0/mlflow-artifacts/artifacts"


def _two_runs(tracking_url: str) -> tuple[str, str, str, str]:
    client = Client(tracking_uri=tracking_url)
    first = client.create_run(client.create_experiment("owner-a")).info
    second = client.create_run(client.create_experiment("owner-b")).info
    return first.experiment_id, first.run_id, second.experiment_id, second.run_id


def _check(artifacts_url: str, exp_a: str, run_a: str, exp_b: str, run_b: str, folder: Path) -> None:
    own = f"{artifacts_url}{API}/{exp_a}/{run_a}/artifacts/ok.txt"
    assert requests.put(own, data=b"mine").status_code == 200
    for target in (
        f"{exp_b}/{run_a}/artifacts/x.txt",  # run a, but under experiment b's folder
        f"{exp_a}/{run_b}/artifacts/x.txt",  # experiment a's folder, run of experiment b
        f"{exp_a}/{'0' * 32}/artifacts/x.txt",  # no such run
    ):
        response = requests.put(f"{artifacts_url}{API}/{target}", data=b"theirs")
        assert response.status_code == 403, (target, response.text)
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert requests.delete(f"{artifacts_url}{API}/{target}").status_code == 403
        assert not (folder / target).exists()
    assert (folder / exp_a / run_a / "artifacts" / "ok.txt").read_bytes() == b"mine"


def test_single_process_mode_checks_run_ownership(tracking_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "store"
    url = tracking_server(
        env={
            "MODELYARD_SERVE_ARTIFACTS": "true",
            "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/",
            "MODELYARD_ARTIFACTS_DESTINATION": str(folder),
        },
        workers=1,
    )
    _check(url, *_two_runs(url), folder)


@pytest.mark.postgres
def test_standalone_artifacts_service_checks_run_ownership(
    tracking_server, postgres_uri: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "store"
    tracking = tracking_server(
        postgres_uri,
        env={"MODELYARD_SERVE_ARTIFACTS": "false", "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/"},
        workers=1,
    )
    env = {"MODELYARD_BACKEND_STORE_URI": postgres_uri, "MODELYARD_ARTIFACTS_DESTINATION": str(folder)}
    with start_service(ARTIFACTS, tmp_path / "artifacts", env=env, workers=1) as artifacts:
        _check(artifacts.url, *_two_runs(tracking), folder)
