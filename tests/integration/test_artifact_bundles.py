"""modelyard's bundle upload (`PUT /api/2.0/mlflow-artifacts/modelyard-bundle/<folder>`, a tar of small
files): what it stores, what it refuses (nothing written), and the client's use of it, against a
modelyard server (one request) and MLflow's (404, then file by file, remembered).

The server side runs in process (TestClient over the tracking app, which serves the artifacts API and
checks run ownership); the client side against the session's shared modelyard server and real
`mlflow server`.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from modelyard.artifact_repos import http as http_repo
from modelyard.settings import Settings

BUNDLE = "/api/2.0/mlflow-artifacts/modelyard-bundle"
FILES = "/api/2.0/mlflow-artifacts/artifacts"


def _tar(entries: list[tuple[str, bytes]], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path, str, str]]:
    """(client, artifacts folder, experiment id, run id) of an in-process tracking app serving artifacts."""
    from modelyard.tracking.app import create_app

    root = tmp_path_factory.mktemp("bundles")
    settings = Settings(backend_store_uri=f"sqlite:///{root / 'db.sqlite'}", artifacts_destination=str(root / "art"), ui=False)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        experiment = client.post("/api/2.0/mlflow/experiments/create", json={"name": "bundles"}).json()
        run = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment["experiment_id"]})
        yield client, root / "art", experiment["experiment_id"], run.json()["run"]["info"]["run_id"]


def test_a_bundle_stores_each_file_under_the_folder(app: tuple[TestClient, Path, str, str]) -> None:
    client, folder, experiment_id, _ = app
    files = [("MLmodel", b"flavors: {}\n"), ("model.pkl", bytes(range(256)) * 40), ("sub/conda.yaml", b"name: x\n")]
    target = f"{experiment_id}/models/m-{uuid.uuid4().hex}/artifacts"
    answer = client.put(f"{BUNDLE}/{target}", content=_tar(files), headers={"Content-Type": "application/x-tar"})
    assert (answer.status_code, answer.json()) == (200, {})
    for name, data in files:
        assert (folder / target / name).read_bytes() == data
        assert client.get(f"{FILES}/{target}/{name}").content == data


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not a tar at all" * 100, "not an uncompressed tar"),
        (_tar([("ok.txt", b"1"), ("../escape.txt", b"2")]), "'..' is not allowed"),
        (_tar([("ok.txt", b"1"), ("/abs.txt", b"2")]), "absolute paths"),
        (_tar([("ok.txt", b"1")], links=("link",)), "not a regular file"),
        (_tar([("ok.txt", b"1"), ("./ok.txt", b"2")]), "twice"),
        (_tar([]), "no files"),
    ],
)
def test_a_bad_bundle_is_a_400_and_writes_nothing(
    app: tuple[TestClient, Path, str, str], body: bytes, says: str
) -> None:
    client, folder, experiment_id, _ = app
    target = f"{experiment_id}/models/m-{uuid.uuid4().hex}/artifacts"
    answer = client.put(f"{BUNDLE}/{target}", content=body, headers={"Content-Type": "application/x-tar"})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert says in answer.json()["message"]
    assert not (folder / target).exists()


def test_a_bundle_into_another_experiments_run_is_refused(app: tuple[TestClient, Path, str, str]) -> None:
    client, folder, experiment_id, run_id = app
    wrong = f"{int(experiment_id) + 1000}/{run_id}/artifacts"
    answer = client.put(f"{BUNDLE}/{wrong}", content=_tar([("a.txt", b"1"), ("b.txt", b"2")]))
    assert (answer.status_code, answer.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert not (folder / wrong).exists()
    right = f"{experiment_id}/{run_id}/artifacts"
    assert client.put(f"{BUNDLE}/{right}", content=_tar([("a.txt", b"1"), ("b.txt", b"2")])).status_code == 200
    assert (folder / right / "b.txt").read_bytes() == b"2"


def _model_folder(tmp_path: Path) -> Path:
    local = tmp_path / "model"
    (local / "sub").mkdir(parents=True)
    for name, data in {"MLmodel": b"x: 1\n", "model.pkl": b"\x00" * 5000, "sub/req.txt": b"numpy\n"}.items():
        (local / name).write_bytes(data)
    return local


def _sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(method, URL) of every request the artifact repository's session sends."""
    sent: list[tuple[str, str]] = []
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return sent


def _uploaded(repo: Any) -> dict[str, int]:
    return {info.path: info.file_size for info in repo.list_artifacts("m")} | {
        info.path: info.file_size for info in repo.list_artifacts("m/sub")
    }


def test_the_client_sends_a_model_folder_in_one_request_to_modelyard(
    shared_sqlite_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _sent(monkeypatch)
    repo = http_repo.HttpArtifactRepository(f"{shared_sqlite_server.url}{FILES}/bundle-client-{uuid.uuid4().hex}")
    repo.log_artifacts(str(_model_folder(tmp_path)), "m")
    assert [method for method, _ in sent] == ["PUT"] and BUNDLE in sent[0][1]
    assert _uploaded(repo) == {"m/MLmodel": 5, "m/model.pkl": 5000, "m/sub": None, "m/sub/req.txt": 6}


@pytest.mark.compat
def test_the_client_falls_back_to_file_by_file_on_mlflows_server(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_repo, "_no_bundles", set())
    sent = _sent(monkeypatch)
    repo = http_repo.HttpArtifactRepository(f"{mlflow_server}{FILES}/bundle-client-{uuid.uuid4().hex}")
    local = _model_folder(tmp_path)
    repo.log_artifacts(str(local), "m")
    assert [m for m, url in sent if BUNDLE in url] == ["PUT"]  # asked once: 404
    assert sorted(url.rsplit("/", 1)[-1] for m, url in sent if FILES in url) == ["MLmodel", "model.pkl", "req.txt"]
    assert _uploaded(repo) == {"m/MLmodel": 5, "m/model.pkl": 5000, "m/sub": None, "m/sub/req.txt": 6}
    sent.clear()
    repo.log_artifacts(str(local), "again")
    assert not [url for _, url in sent if BUNDLE in url]  # remembered: straight to file by file
    assert len(sent) == 3
