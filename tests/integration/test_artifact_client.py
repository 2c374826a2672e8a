"""modelyard's client-side artifact API on the embedded store (SQLite + local artifact folder) and against
the tracking service in single-process mode: log_text/dict/figure/image, list, download, runs:/ URIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modelyard.artifacts import download_artifacts
from modelyard.client import artifacts
from modelyard.client.client import Client
from modelyard.exceptions import ModelyardException


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Client, str]:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'modelyard.db'}"
    client = Client(tracking_uri=uri)
    experiment_id = client.create_experiment("artifacts")
    return client, client.create_run(experiment_id).info.run_id


def _exercise(client: Client, run_id: str, tmp_path: Path) -> None:
    uri = client.tracking_uri
    artifacts.log_text(run_id, "héllo", "notes/a.txt", tracking_uri=uri)
    artifacts.log_dict(run_id, {"b": [1, 2]}, "conf/c.yaml", tracking_uri=uri)
    artifacts.log_dict(run_id, {"b": [1, 2]}, "conf/c.json", tracking_uri=uri)
    import numpy as np

    artifacts.log_image(run_id, np.zeros((4, 5, 3), dtype=np.float32), "img/zero.png", tracking_uri=uri)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    artifacts.log_figure(run_id, fig, "plots/line.png", tracking_uri=uri)
    plt.close(fig)

    assert [f.path for f in artifacts.list_artifacts(run_id=run_id, tracking_uri=uri)] == [
        "conf", "img", "notes", "plots",
    ]  # fmt: skip
    assert [f.path for f in artifacts.list_artifacts(run_id=run_id, artifact_path="conf", tracking_uri=uri)] == [
        "conf/c.json", "conf/c.yaml",
    ]  # fmt: skip
    out = Path(
        download_artifacts(run_id=run_id, artifact_path="conf", dst_path=tmp_path / "dl", tracking_uri=uri)
    )
    assert yaml.safe_load((out / "c.yaml").read_text()) == {"b": [1, 2]}
    assert json.loads((out / "c.json").read_text()) == {"b": [1, 2]}
    text = Path(
        download_artifacts(
            artifact_uri=f"runs:/{run_id}/notes/a.txt", dst_path=tmp_path / "r", tracking_uri=uri
        )
    )
    assert text.read_text(encoding="utf-8") == "héllo"
    png = Path(
        download_artifacts(
            run_id=run_id, artifact_path="img/zero.png", dst_path=tmp_path / "i", tracking_uri=uri
        )
    )
    assert png.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ModelyardException):
        artifacts.log_text(run_id, "x", "../escape.txt", tracking_uri=uri)
    with pytest.raises(ModelyardException):
        download_artifacts(
            run_id=run_id, artifact_path="../../modelyard.db", dst_path=tmp_path / "x", tracking_uri=uri
        )


def test_client_artifacts_on_the_embedded_store(embedded: tuple[Client, str], tmp_path: Path) -> None:
    client, run_id = embedded
    _exercise(client, run_id, tmp_path)
    artifact_uri = client.get_run(run_id).info.artifact_uri
    assert (Path(artifacts.get_artifact_repository(artifact_uri).root) / "notes" / "a.txt").is_file()  # type: ignore[attr-defined]


def test_client_artifacts_through_the_tracking_service(tracking_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = tracking_server(
        env={"MODELYARD_SERVE_ARTIFACTS": "true", "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/"}, workers=1
    )
    client = Client(tracking_uri=url)
    run = client.create_run(client.create_experiment("proxied"))
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    _exercise(client, run.info.run_id, tmp_path)


def test_mlflow_artifacts_uri_needs_an_http_tracking_uri() -> None:
    with pytest.raises(ModelyardException, match="tracking"):
        artifacts.resolve_artifact_uri("mlflow-artifacts:/1/r/artifacts", "sqlite:///x.db")
    resolved = artifacts.resolve_artifact_uri("mlflow-artifacts:/1/r/artifacts", "https://host:8443/prefix/")
    assert resolved == "https://host:8443/prefix/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
    other = artifacts.resolve_artifact_uri("mlflow-artifacts://other:9000/x", "http://host")
    assert other == "http://other:9000/api/2.0/mlflow-artifacts/artifacts/x"


def test_artifacts_uri_overrides_the_tracking_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # In a cluster the serving pods reach the artifacts service directly, not through an ingress.
    monkeypatch.setenv("MODELYARD_ARTIFACTS_URI", "http://rel-modelyard-artifacts:5000")
    resolved = artifacts.resolve_artifact_uri(
        "mlflow-artifacts:/1/r/artifacts", "http://rel-modelyard-tracking:5000"
    )
    assert resolved == "http://rel-modelyard-artifacts:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
