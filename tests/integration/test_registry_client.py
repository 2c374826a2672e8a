"""modelyard's own client for the registry and logged models, over both backends of a tracking URI:
HTTP to a gunicorn tracking service, and the SQL stores in process (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import TrackingServerFactory

import modelyard
from modelyard.client import Client
from modelyard.client.registry_client import clear_registry_store_cache
from modelyard.client.tracking_uri import clear_store_cache
from modelyard.entities import LoggedModelStatus, ModelOutput
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.migrate import upgrade


@pytest.fixture(params=["http", "sql"])
def tracking_uri(
    request: pytest.FixtureRequest,
    db_uri: str,
    tracking_server: TrackingServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """`http`: a tracking service on the database; `sql`: the database itself, used in process."""
    if request.param == "http":
        uri = tracking_server(db_uri, workers=1)
    else:
        upgrade(db_uri)
        monkeypatch.setenv("MODELYARD_DEFAULT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
        uri = db_uri
    modelyard.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        modelyard.set_tracking_uri(None)
        clear_registry_store_cache()
        clear_store_cache()


def test_registry_calls_with_mlflow_names(tracking_uri: str) -> None:
    client = Client()
    experiment_id = client.create_experiment("reg-client")
    run = client.create_run(experiment_id)
    source = f"{run.info.artifact_uri}/model"

    model = client.create_registered_model("cm", tags={"team": "yard"}, description="d")
    assert model.name == "cm" and model.tags == {"team": "yard"}
    v1 = client.create_model_version("cm", source, run_id=run.info.run_id, tags={"k": "v"})
    v2 = client.create_model_version("cm", source, run_id=run.info.run_id)
    assert (v1.version, v2.version) == ("1", "2")

    client.transition_model_version_stage("cm", "1", "Production")
    promoted = client.transition_model_version_stage("cm", "2", "production", archive_existing_versions=True)
    assert promoted.current_stage == "Production"
    assert client.get_model_version("cm", "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("cm", ["Production"])] == ["2"]

    client.set_registered_model_alias("cm", "champion", "2")
    assert client.get_model_version_by_alias("cm", "champion").version == "2"
    client.delete_registered_model_alias("cm", "champion")
    with pytest.raises(ModelyardException) as exc:
        client.get_model_version_by_alias("cm", "champion")
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"

    client.set_registered_model_tag("cm", "owner", "ana")
    client.delete_registered_model_tag("cm", "team")
    client.set_model_version_tag("cm", "2", "ok", "yes")
    client.delete_model_version_tag("cm", "1", "k")
    client.update_registered_model("cm", "new description")
    client.update_model_version("cm", "2", "v2 description")
    got = client.get_registered_model("cm")
    assert got.tags == {"owner": "ana"} and got.description == "new description"
    assert client.get_model_version("cm", "2").tags == {"ok": "yes"}
    assert client.get_model_version_download_uri("cm", "2") == source

    page = client.search_registered_models("name LIKE 'c%'", max_results=1)
    assert [m.name for m in page] == ["cm"]
    assert [
        v.version for v in client.search_model_versions("name = 'cm'", order_by=["version_number ASC"])
    ] == [
        "1",
        "2",
    ]
    client.rename_registered_model("cm", "cm2")
    client.delete_model_version("cm2", "1")
    assert [v.version for v in client.search_model_versions("name = 'cm2'")] == ["2"]
    client.delete_registered_model("cm2")
    with pytest.raises(ModelyardException) as exc:
        client.get_model_version("cm2", "2")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(ModelyardException) as exc:
        client.create_model_version("cm2", "/etc/passwd")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_registered_model("cm2")
    with pytest.raises(ModelyardException) as exc:
        client.create_model_version("cm2", "/etc/passwd", run_id=run.info.run_id)
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"


def test_logged_models_and_register_model(tracking_uri: str) -> None:
    client = Client()
    experiment_id = client.create_experiment("lm-client")
    run = client.create_run(experiment_id)
    logged = client.create_logged_model(
        experiment_id, name="net", source_run_id=run.info.run_id, params={"lr": 0.1}, tags={"a": 1}
    )
    assert logged.status == LoggedModelStatus.PENDING
    assert logged.artifact_location.endswith(f"/models/{logged.model_id}/artifacts")
    client.log_model_params(logged.model_id, {"depth": 3})
    client.set_logged_model_tags(logged.model_id, {"b": "2"})
    client.delete_logged_model_tag(logged.model_id, "a")
    client.log_outputs(run.info.run_id, [ModelOutput(logged.model_id, 0)])
    ready = client.finalize_logged_model(logged.model_id, "READY")
    assert ready.status == LoggedModelStatus.READY
    assert ready.params == {"lr": "0.1", "depth": "3"} and ready.tags == {"b": "2"}
    found = client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    assert [m.model_id for m in found] == [logged.model_id]

    # runs:/<run>/<name> finds the run's logged model of that name; models:/<id> names it directly.
    first = modelyard.register_model(f"runs:/{run.info.run_id}/net", "registered-net")
    second = modelyard.register_model(f"models:/{logged.model_id}", "registered-net", tags={"t": "1"})
    assert (first.version, second.version) == ("1", "2")
    assert first.model_id == second.model_id == logged.model_id
    assert second.tags == {"t": "1"}
    assert client.get_model_version_download_uri("registered-net", "1") == logged.artifact_location
    # A runs:/ path that is not a logged model registers the run's own folder.
    third = modelyard.register_model(f"runs:/{run.info.run_id}/plain", "registered-net")
    assert (
        client.get_model_version_download_uri("registered-net", third.version)
        == f"{run.info.artifact_uri}/plain"
    )
    tag = client.get_logged_model(logged.model_id).tags["mlflow.modelVersions"]
    # Written by the server, as MLflow's does: version numbers as JSON integers.
    assert json.loads(tag) == [
        {"name": "registered-net", "version": 1},
        {"name": "registered-net", "version": 2},
    ]
