"""The registry REST API in process (the real app and SQL store, on SQLite and PostgreSQL): JSON
shapes, MLflow's error codes and statuses, and the rules on where a version's source may point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.settings import Settings
from modelyard.tracking.app import create_app

API = "/api/2.0/mlflow"


@pytest.fixture
def client(db_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        backend_store_uri=db_uri,
        artifacts_destination=str(tmp_path / "artifacts"),
        allowed_artifact_roots=("s3://models-bucket/team",),
    )
    with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as test_client:
        yield test_client


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: Any, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert fragment in body["message"], body


def new_run(client: TestClient) -> dict[str, Any]:
    return ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]  # type: ignore[no-any-return]


def new_version(client: TestClient, name: str, run: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"name": name, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"], **extra}
    return ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]  # type: ignore[no-any-return]


def test_registered_model_json_shape(client: TestClient) -> None:
    run = new_run(client)
    body = {"name": "shape", "tags": [{"key": "a", "value": "1"}], "description": "about"}
    created = ok(client.post(f"{API}/registered-models/create", json=body))["registered_model"]
    assert set(created) == {"name", "creation_timestamp", "last_updated_timestamp", "description", "tags"}
    assert created["tags"] == [{"key": "a", "value": "1"}]

    version = new_version(client, "shape", run, tags=[{"key": "t", "value": "v"}], run_link="http://x/run")
    assert version["version"] == "1" and version["current_stage"] == "None" and version["status"] == "READY"
    assert version["tags"] == [{"key": "t", "value": "v"}] and version["run_link"] == "http://x/run"
    ok(client.post(f"{API}/registered-models/alias", json={"name": "shape", "alias": "best", "version": "1"}))

    got = ok(client.get(f"{API}/registered-models/get", params={"name": "shape"}))["registered_model"]
    assert got["aliases"] == [{"alias": "best", "version": "1"}]
    assert [v["version"] for v in got["latest_versions"]] == ["1"]
    assert got["last_updated_timestamp"] >= got["creation_timestamp"]
    mv = ok(client.get(f"{API}/model-versions/get", params={"name": "shape", "version": "1"}))[
        "model_version"
    ]
    assert mv["aliases"] == ["best"]
    # The UI's prefix serves the same API.
    assert ok(client.get("/ajax-api/2.0/mlflow/registered-models/get", params={"name": "shape"}))


#: Names PostgreSQL's array text must quote and escape (the loaders bind a page's names as one array), and
#: one longer than PostgreSQL's 63-byte `name` type (the unnested array's column was once read as one).
ODD_NAMES = ["plain", 'with "quotes"', "back\\slash", "comma,brace{}", "NULL", "it's", " padded ", "long-" + "x" * 95]


def test_a_search_page_loads_every_models_tags_aliases_and_latest_versions(client: TestClient) -> None:
    run = new_run(client)
    for name in ODD_NAMES:
        ok(client.post(f"{API}/registered-models/create", json={"name": name, "tags": [{"key": "k", "value": name}]}))
        for _ in range(3):
            new_version(client, name, run)
        ok(client.post(f"{API}/model-versions/transition-stage", json={"name": name, "version": "2", "stage": "Production"}))
        ok(client.post(f"{API}/registered-models/alias", json={"name": name, "alias": "best", "version": "3"}))
        ok(client.post(f"{API}/model-versions/set-tag", json={"name": name, "version": "3", "key": "v", "value": name}))
    ok(client.post(f"{API}/registered-models/create", json={"name": "no versions"}))

    page = ok(client.post(f"{API}/registered-models/search", json={"max_results": 100}))["registered_models"]
    assert [m["name"] for m in page] == sorted([*ODD_NAMES, "no versions"])
    for model in page:
        name = model["name"]
        if name == "no versions":
            assert "latest_versions" not in model and "tags" not in model
            continue
        assert model["tags"] == [{"key": "k", "value": name}]
        assert model["aliases"] == [{"alias": "best", "version": "3"}]
        latest = model["latest_versions"]
        assert [(v["name"], v["version"], v["current_stage"]) for v in latest] == [(name, "3", "None"), (name, "2", "Production")]
        assert latest[0]["aliases"] == ["best"] and latest[0]["tags"] == [{"key": "v", "value": name}]
        assert "aliases" not in latest[1] and "tags" not in latest[1]
        assert model == ok(client.get(f"{API}/registered-models/get", params={"name": name}))["registered_model"]
    versions = ok(client.post(f"{API}/model-versions/search", json={"filter": "name = 'with \"quotes\"'"}))
    assert sorted(v["version"] for v in versions["model_versions"]) == ["1", "2", "3"]


def test_get_latest_versions_per_stage_post_and_get(client: TestClient) -> None:
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "lv"}))
    for _ in range(4):
        new_version(client, "lv", run)
    for version, stage in (("1", "Production"), ("2", "staging"), ("3", "PRODUCTION")):
        body = {"name": "lv", "version": version, "stage": stage}
        ok(client.post(f"{API}/model-versions/transition-stage", json=body))
    latest = ok(client.post(f"{API}/registered-models/get-latest-versions", json={"name": "lv"}))
    assert [(v["version"], v["current_stage"]) for v in latest["model_versions"]] == [
        ("4", "None"),
        ("2", "Staging"),
        ("3", "Production"),
    ]
    only = ok(
        client.get(
            f"{API}/registered-models/get-latest-versions", params={"name": "lv", "stages": "production"}
        )
    )
    assert [v["version"] for v in only["model_versions"]] == ["3"]
    error(
        client.post(f"{API}/registered-models/get-latest-versions", json={"name": "lv", "stages": ["Live"]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_archive_existing_versions_only_touches_the_target_stage(client: TestClient) -> None:
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "arch"}))
    for _ in range(3):
        new_version(client, "arch", run)
    transition = f"{API}/model-versions/transition-stage"
    ok(client.post(transition, json={"name": "arch", "version": "1", "stage": "Production"}))
    ok(client.post(transition, json={"name": "arch", "version": "2", "stage": "Staging"}))
    body = {"name": "arch", "version": "3", "stage": "Production", "archive_existing_versions": True}
    ok(client.post(transition, json=body))
    stages = {
        v["version"]: v["current_stage"]
        for v in ok(client.get(f"{API}/model-versions/search", params={"filter": "name='arch'"}))[
            "model_versions"
        ]
    }
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}
    bad = {"name": "arch", "version": "1", "stage": "None", "archive_existing_versions": True}
    error(client.post(transition, json=bad), 400, "INVALID_PARAMETER_VALUE")


def test_errors(client: TestClient) -> None:
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "e"}))
    new_version(client, "e", run)
    error(client.post(f"{API}/registered-models/create", json={"name": "e"}), 400, "RESOURCE_ALREADY_EXISTS")
    error(client.post(f"{API}/registered-models/create", json={}), 400, "INVALID_PARAMETER_VALUE")
    error(client.get(f"{API}/registered-models/get", params={"name": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        client.get(f"{API}/model-versions/get", params={"name": "e", "version": "x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        client.get(f"{API}/registered-models/alias", params={"name": "e", "alias": "gone"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "alias gone not found",
    )
    for alias in ("v1", "latest"):
        body = {"name": "e", "alias": alias, "version": "1"}
        error(client.post(f"{API}/registered-models/alias", json=body), 400, "INVALID_PARAMETER_VALUE")
    error(
        client.post(f"{API}/registered-models/alias", json={"name": "e", "alias": "a", "version": "7"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    body = {"name": "missing", "source": f"{run['artifact_uri']}/m", "run_id": run["run_id"]}
    error(client.post(f"{API}/model-versions/create", json=body), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        client.get(f"{API}/registered-models/search", params={"filter": "name = "}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        client.get(f"{API}/registered-models/search", params={"order_by": "color ASC"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        client.get(f"{API}/model-versions/search", params={"page_token": "garbage"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_delete_model_cascades_and_versions_404(client: TestClient) -> None:
    run = new_run(client)
    ok(
        client.post(
            f"{API}/registered-models/create", json={"name": "gone", "tags": [{"key": "k", "value": "v"}]}
        )
    )
    new_version(client, "gone", run, tags=[{"key": "k", "value": "v"}])
    ok(client.post(f"{API}/registered-models/alias", json={"name": "gone", "alias": "a", "version": "1"}))
    ok(client.request("DELETE", f"{API}/registered-models/delete", json={"name": "gone"}))
    error(
        client.get(f"{API}/model-versions/get", params={"name": "gone", "version": "1"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    # The name is free again, with a fresh version sequence and no leftovers.
    ok(client.post(f"{API}/registered-models/create", json={"name": "gone"}))
    again = new_version(client, "gone", run)
    assert again["version"] == "1" and "tags" not in again and "aliases" not in again


def test_delete_version_removes_its_aliases_and_never_reuses_the_number(client: TestClient) -> None:
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "dv"}))
    new_version(client, "dv", run)
    new_version(client, "dv", run)
    ok(client.post(f"{API}/registered-models/alias", json={"name": "dv", "alias": "top", "version": "2"}))
    ok(client.request("DELETE", f"{API}/model-versions/delete", json={"name": "dv", "version": "2"}))
    got = ok(client.get(f"{API}/registered-models/get", params={"name": "dv"}))["registered_model"]
    assert "aliases" not in got
    assert new_version(client, "dv", run)["version"] == "3"


def test_rename_carries_versions_tags_and_aliases(client: TestClient) -> None:
    run = new_run(client)
    ok(
        client.post(
            f"{API}/registered-models/create", json={"name": "old", "tags": [{"key": "k", "value": "v"}]}
        )
    )
    ok(client.post(f"{API}/registered-models/create", json={"name": "taken"}))
    new_version(client, "old", run, tags=[{"key": "vt", "value": "1"}])
    ok(client.post(f"{API}/registered-models/alias", json={"name": "old", "alias": "a", "version": "1"}))
    error(
        client.post(f"{API}/registered-models/rename", json={"name": "old", "new_name": "taken"}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    renamed = ok(client.post(f"{API}/registered-models/rename", json={"name": "old", "new_name": "new"}))
    assert renamed["registered_model"]["name"] == "new"
    mv = ok(client.get(f"{API}/registered-models/alias", params={"name": "new", "alias": "a"}))[
        "model_version"
    ]
    assert mv["name"] == "new" and mv["tags"] == [{"key": "vt", "value": "1"}]
    error(client.get(f"{API}/registered-models/get", params={"name": "old"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_search_model_versions_filters(client: TestClient) -> None:
    run_a, run_b = new_run(client), new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "sv"}))
    new_version(client, "sv", run_a, tags=[{"key": "env", "value": "prod"}])
    new_version(client, "sv", run_b)
    new_version(client, "sv", run_b)

    def versions(filter_string: str, **params: Any) -> list[str]:
        answer = ok(client.get(f"{API}/model-versions/search", params={"filter": filter_string, **params}))
        return [v["version"] for v in answer.get("model_versions", [])]

    assert versions(f"run_id = '{run_b['run_id']}'") == ["3", "2"]
    assert versions(
        f"run_id IN ('{run_a['run_id']}', '{run_b['run_id']}')", order_by="version_number ASC"
    ) == [
        "1",
        "2",
        "3",
    ]
    assert versions("version_number >= 2 AND name = 'sv'") == ["3", "2"]
    assert versions("tags.env = 'prod'") == ["1"]
    assert versions(f"source_path = '{run_a['artifact_uri']}/model'") == ["1"]
    assert versions("source_path LIKE '%/model'") == ["3", "2", "1"]


def test_get_download_uri_resolves_runs_uris(client: TestClient) -> None:
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "dl"}))
    body = {"name": "dl", "source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"]}
    ok(client.post(f"{API}/model-versions/create", json=body))
    answer = ok(client.get(f"{API}/model-versions/get-download-uri", params={"name": "dl", "version": "1"}))
    assert answer == {"artifact_uri": f"{run['artifact_uri']}/model"}


@pytest.mark.parametrize(
    ("source", "with_run"),
    [
        ("/etc/passwd", True),
        ("/etc/passwd", False),
        ("file:///etc/passwd", False),
        ("file://localhost/etc/passwd", True),
        ("relative/model", True),
        ("{root}/../../1/other/artifacts", True),
        ("{root}/%2e%2e/%2e%2e/x", True),
        ("{root}/%252e%252e/x", True),
        ("{root}/model#x", True),
        ("{root}/model?x", True),
        ("{root}/model;x", True),
        ("{root}\\..\\x", True),
        ("mlflow-artifacts:/0/another-run/artifacts/model", True),
        ("mlflow-artifacts://evil.example/0/x", False),
        ("mlflow-artifacts:/0/any/where", False),
        ("s3://other-bucket/model", False),
        ("s3://other-bucket/model", True),
        ("s3://models-bucket/team-b/model", False),
        ("runs:/{other_run}/model", True),
        ("runs:/{run}/model", False),
        ("runs:/does-not-exist/model", False),
        ("runs:/{run}/../{other_run}/model", False),
        ("models:/m-0123456789abcdef0123456789abcdef", False),
        ("http://example.com/model.tar.gz", False),
        ("https://example.com/model.tar.gz", True),
        ("", True),
    ],
)
def test_unsafe_sources_are_refused(client: TestClient, source: str, with_run: bool) -> None:
    run, other = new_run(client), new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "safe"}))
    text = source.format(root=run["artifact_uri"], run=run["run_id"], other_run=other["run_id"])
    body: dict[str, Any] = {"name": "safe", "source": text}
    if with_run:
        body["run_id"] = run["run_id"]
    error(client.post(f"{API}/model-versions/create", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert "model_versions" not in ok(
        client.get(f"{API}/model-versions/search", params={"filter": "name='safe'"})
    )


@pytest.mark.parametrize(
    ("source", "with_run"),
    [
        ("{root}/model", True),
        ("{root}", True),
        ("runs:/{run}/model", True),
        ("s3://models-bucket/team/model", False),
        ("s3://models-bucket/team/model", True),
    ],
)
def test_safe_sources_are_accepted(client: TestClient, source: str, with_run: bool) -> None:
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "fine"}))
    body: dict[str, Any] = {
        "name": "fine",
        "source": source.format(root=run["artifact_uri"], run=run["run_id"]),
    }
    if with_run:
        body["run_id"] = run["run_id"]
    assert ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]["version"] == "1"


def _logged_model(client: TestClient, source_run_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"experiment_id": "0", "name": "m"}
    if source_run_id:
        body["source_run_id"] = source_run_id
    return ok(client.post(f"{API}/logged-models", json=body))["model"]["info"]  # type: ignore[no-any-return]


def test_a_versions_tag_nested_deeper_than_json_goes_is_started_afresh(client: TestClient) -> None:
    """A user may set the logged model's `mlflow.modelVersions` tag to anything; registering a version
    from it reads that tag as JSON. Nested 3,000 deep, Python's parser raised RecursionError: a 500."""
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "deep"}))
    model = _logged_model(client, run["run_id"])
    tags = {"tags": [{"key": "mlflow.modelVersions", "value": "[" * 3000}]}
    ok(client.patch(f"{API}/logged-models/{model['model_id']}/tags", json=tags))
    body = {"name": "deep", "source": f"models:/{model['model_id']}", "model_id": model["model_id"]}
    assert ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]["version"] == "1"
    found = ok(client.get(f"{API}/logged-models/{model['model_id']}"))["model"]["info"]["tags"]
    assert {"key": "mlflow.modelVersions", "value": '[{"name": "deep", "version": 1}]'} in found


def test_lineage_rules_follow_mlflow(client: TestClient) -> None:
    """What MLflow 3.17's server answers (observed): a version from a logged model takes the model's
    source run; a runs:/ source needs the same run_id but not a run of this store; a logged model's
    source run may be unknown; the logged model records its versions in `mlflow.modelVersions`."""
    run = new_run(client)
    ok(client.post(f"{API}/registered-models/create", json={"name": "lin"}))
    model = _logged_model(client, run["run_id"])
    body = {"name": "lin", "source": f"models:/{model['model_id']}", "model_id": model["model_id"]}
    version = ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]
    assert version["run_id"] == run["run_id"]
    assert (
        ok(client.get(f"{API}/model-versions/get", params={"name": "lin", "version": "1"}))["model_version"][
            "run_id"
        ]
        == run["run_id"]
    )
    body = {"name": "lin", "source": f"{model['artifact_uri']}/sub", "model_id": model["model_id"]}
    assert (
        ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]["run_id"] == run["run_id"]
    )
    tags = ok(client.get(f"{API}/logged-models/{model['model_id']}"))["model"]["info"]["tags"]
    assert tags == [
        {
            "key": "mlflow.modelVersions",
            "value": '[{"name": "lin", "version": 1}, {"name": "lin", "version": 2}]',
        }
    ]

    foreign_run = "ab" * 16
    orphan = _logged_model(client, foreign_run)
    assert orphan["source_run_id"] == foreign_run
    body = {"name": "lin", "source": f"models:/{orphan['model_id']}", "model_id": orphan["model_id"]}
    assert (
        ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]["run_id"] == foreign_run
    )

    body = {"name": "lin", "source": f"runs:/{foreign_run}/model", "run_id": foreign_run}
    assert (
        ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]["run_id"] == foreign_run
    )
    body = {"name": "lin", "source": "models:/lin/1"}
    assert (
        ok(client.post(f"{API}/model-versions/create", json=body))["model_version"]["run_id"] == run["run_id"]
    )

    refused = [
        {"source": f"runs:/{foreign_run}/model", "run_id": "cd" * 16},
        {"source": f"models:/{model['model_id']}"},
        {"source": f"models:/{model['model_id']}", "model_id": orphan["model_id"]},
        {"source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"], "model_id": model["model_id"]},
        {
            "source": "models:/m-0123456789abcdef0123456789abcdef",
            "model_id": "m-0123456789abcdef0123456789abcdef",
        },
    ]
    for extra in refused:
        error(
            client.post(f"{API}/model-versions/create", json={"name": "lin", **extra}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
    error(
        client.post(f"{API}/model-versions/create", json={"name": "lin", "source": "models:/nope/3"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
