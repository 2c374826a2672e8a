"""The real `mlflow` client (3.17.2) drives the model registry of a gunicorn tracking service, on
SQLite and PostgreSQL: registration, stages with archiving, aliases, tags, search, errors, and
MLflow 3's log_model -> register -> load round trip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from tests.conftest import SharedServer


@pytest.fixture
def mlflow_uri(shared_server: SharedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session's shared tracking service of each backend: tests name their models uniquely."""
    import mlflow

    url = shared_server.url
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)
    try:
        yield url
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


@pytest.fixture
def client(mlflow_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


@pytest.fixture
def p() -> str:
    """This test's prefix for registered model names (the server is shared)."""
    return f"m{uuid.uuid4().hex[:8]}"


def _code(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.error_code)


def _run_with_model_folder(client: MlflowClient) -> tuple[str, str]:
    """A run and a source inside its artifact folder (what `runs:/` registration resolves to)."""
    experiment_id = client.create_experiment(f"reg-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    return run.info.run_id, f"{run.info.artifact_uri}/model"


def test_register_versions_promote_with_archiving_and_aliases(client: MlflowClient, p: str) -> None:
    run_id, source = _run_with_model_folder(client)
    churn = f"{p}-churn"
    created = client.create_registered_model(churn, tags={"team": "yard"}, description="first")
    assert created.name == churn and created.tags == {"team": "yard"} and created.description == "first"

    versions = [client.create_model_version(churn, source, run_id=run_id) for _ in range(3)]
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert all(v.current_stage == "None" and v.status == "READY" and v.run_id == run_id for v in versions)

    client.transition_model_version_stage(churn, "1", "staging")
    client.transition_model_version_stage(churn, "1", "Production")
    client.transition_model_version_stage(churn, "2", "Production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{churn}'")}
    assert stages == {"1": "Archived", "2": "Production", "3": "None"}

    latest = client.get_latest_versions(churn, stages=["Production"])
    assert [(v.version, v.current_stage) for v in latest] == [("2", "Production")]
    assert {v.version for v in client.get_latest_versions(churn)} == {"1", "2", "3"}

    client.set_registered_model_alias(churn, "champion", "2")
    client.set_registered_model_alias(churn, "challenger", "3")
    by_alias = client.get_model_version_by_alias(churn, "champion")
    assert by_alias.version == "2" and by_alias.aliases == ["champion"]
    model = client.get_registered_model(churn)
    assert model.aliases == {"champion": "2", "challenger": "3"}
    client.delete_registered_model_alias(churn, "challenger")
    assert client.get_registered_model(churn).aliases == {"champion": "2"}

    assert client.get_model_version_download_uri(churn, "2") == source


def test_tags_descriptions_and_rename(client: MlflowClient, p: str) -> None:
    run_id, source = _run_with_model_folder(client)
    tagged, renamed = f"{p}-tagged", f"{p}-tagged-renamed"
    client.create_registered_model(tagged)
    client.create_model_version(tagged, source, run_id=run_id, tags={"k": "v"}, description="d1")
    client.set_registered_model_tag(tagged, "owner", "ana")
    client.set_model_version_tag(tagged, "1", "validated", "true")
    client.delete_model_version_tag(tagged, "1", "k")
    client.update_registered_model(tagged, description="updated")
    client.update_model_version(tagged, "1", description="d2")
    version = client.get_model_version(tagged, "1")
    assert version.tags == {"validated": "true"} and version.description == "d2"

    client.rename_registered_model(tagged, renamed)
    model = client.get_registered_model(renamed)
    assert model.tags == {"owner": "ana"} and model.description == "updated"
    assert client.get_model_version(renamed, "1").tags == {"validated": "true"}
    client.delete_registered_model_tag(renamed, "owner")
    assert client.get_registered_model(renamed).tags == {}
    with pytest.raises(MlflowException) as exc:
        client.get_registered_model(tagged)
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_search_filters_order_and_pages(client: MlflowClient, p: str) -> None:
    run_id, source = _run_with_model_folder(client)
    a, b, c, other = (f"{p}-search-a", f"{p}-search-b", f"{p}-search-c", f"{p}-other-x")
    for name in (a, b, c, other):
        client.create_registered_model(name, tags={"kind": f"{p}-clf" if name != b else f"{p}-reg"})
        client.create_model_version(name, source, run_id=run_id)
    client.create_model_version(a, source, run_id=run_id)

    assert [m.name for m in client.search_registered_models(f"name LIKE '{p}-search-%'")] == [a, b, c]
    assert [
        m.name for m in client.search_registered_models(f"name ILIKE '{p.upper()}-SEARCH-%'", order_by=["name DESC"])
    ] == [c, b, a]
    assert [m.name for m in client.search_registered_models(f"tags.kind = '{p}-reg'")] == [b]

    first = client.search_registered_models(f"name LIKE '{p}-search-%'", max_results=2)
    assert len(first) == 2 and first.token
    second = client.search_registered_models(f"name LIKE '{p}-search-%'", max_results=2, page_token=first.token)
    assert [m.name for m in second] == [c] and not second.token

    found = client.search_model_versions(f"run_id = '{run_id}' and name = '{a}'")
    assert sorted(v.version for v in found) == ["1", "2"]
    newest = client.search_model_versions(f"name = '{a}'", order_by=["version_number DESC"], max_results=1)
    assert [v.version for v in newest] == ["2"]


def test_errors_carry_mlflow_codes(client: MlflowClient, p: str) -> None:
    run_id, source = _run_with_model_folder(client)
    errs = f"{p}-errs"
    client.create_registered_model(errs)
    client.create_model_version(errs, source, run_id=run_id)

    with pytest.raises(MlflowException) as exc:
        client.create_registered_model(errs)
    assert _code(exc) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as exc:
        client.transition_model_version_stage(errs, "1", "Shipped")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(RestException) as exc:
        client.get_model_version_by_alias(errs, "missing")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.get_model_version(errs, "9")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_registered_model(errs)
    with pytest.raises(MlflowException) as exc:
        client.get_model_version(errs, "1")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "bad_source",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "{root}/../../other",
        "{root}/%2e%2e/%2e%2e/other",
        "{root}/model#frag",
        "{root}/model?x=1",
        "{root}/model;param",
        "mlflow-artifacts:/0/someone-elses-run/artifacts/model",
    ],
)
def test_version_source_must_stay_inside_the_runs_artifacts(client: MlflowClient, bad_source: str) -> None:
    run_id, source = _run_with_model_folder(client)
    root = source.rsplit("/", 1)[0]
    name = f"safe-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as exc:
        client.create_model_version(name, bad_source.format(root=root), run_id=run_id)
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    assert client.search_model_versions(f"name = '{name}'") == []


def test_sklearn_log_model_registers_and_loads_by_stage(mlflow_uri: str, p: str) -> None:
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 3.0]])
    y = X @ np.array([1.5, -0.5]) + 2.0
    model = LinearRegression().fit(X, y)
    sk_model = f"{p}-sk-model"
    mlflow.set_experiment(f"sk-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X, y), registered_model_name=sk_model
        )
    assert str(info.registered_model_version) == "1"
    second = mlflow.register_model(info.model_uri, sk_model)
    assert second.version == "2"

    client = MlflowClient()
    client.transition_model_version_stage(sk_model, "1", "Staging")
    client.transition_model_version_stage(sk_model, "1", "Production", archive_existing_versions=True)
    client.set_registered_model_alias(sk_model, "prod", "1")

    expected = model.predict(X)
    for uri in (f"models:/{sk_model}/Production", f"models:/{sk_model}@prod", f"models:/{sk_model}/2"):
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_allclose(loaded.predict(X), expected)

    listed = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "requirements.txt"} <= listed

    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status.to_proto() == 2  # LOGGED_MODEL_READY
    assert sk_model in logged.tags.get("mlflow.modelVersions", "")
