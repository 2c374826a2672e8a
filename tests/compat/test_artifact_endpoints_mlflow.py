"""The tracking server's own artifact endpoints answer as MLflow's do, compared with a real `mlflow server`.

The same files go into a run, a logged model and three model versions (from a run folder, a logged
model, a `runs:/` URI) on both servers; then every listing and download, good paths and bad ones
(`..`, absolute, encoded, a folder, a missing file, no run), must give the same status, error code and
body (downloads) or JSON shape (listings, ids and times aside).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from tests.compat.conftest import CompatServer

pytestmark = pytest.mark.compat

FILES = {
    "run": ["model/MLmodel", "model/x.pkl", "dir/inner.json", "a.txt"],
    "model": ["MLmodel", "sub/x.pkl"],
}
BAD_PATHS = ["../x", "/etc/passwd", "a/../a.txt", "%2e%2e/x", "dir/../../x"]


@dataclass
class Seeded:
    base: str
    run_id: str
    model_id: str
    registered: str


def _seed(base: str) -> Seeded:
    api = f"{base}/api/2.0/mlflow"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(f"{api}/{path}", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    experiment_id = post("experiments/create", {"name": f"art-{uuid.uuid4().hex}"})["experiment_id"]
    run = post("runs/create", {"experiment_id": experiment_id})["run"]["info"]
    model = post(
        "logged-models", {"experiment_id": experiment_id, "name": "m", "source_run_id": run["run_id"]}
    )
    model_info = model["model"]["info"]
    for key, uri in (("run", run["artifact_uri"]), ("model", model_info["artifact_uri"])):
        folder = uri.split("mlflow-artifacts:/", 1)[1].strip("/")
        for name in FILES[key]:
            requests.put(
                f"{base}/api/2.0/mlflow-artifacts/artifacts/{folder}/{name}", data=b"hello", timeout=30
            )
    name = f"art-{uuid.uuid4().hex[:8]}"
    post("registered-models/create", {"name": name})
    post(
        "model-versions/create",
        {"name": name, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]},
    )
    post(
        "model-versions/create",
        {"name": name, "source": f"models:/{model_info['model_id']}", "model_id": model_info["model_id"]},
    )
    return Seeded(base, run["run_id"], model_info["model_id"], name)


def _requests(seeded: Seeded) -> list[tuple[str, dict[str, str]]]:
    api = "/api/2.0/mlflow"
    calls: list[tuple[str, dict[str, str]]] = []
    for prefix in (api, "/ajax-api/2.0/mlflow"):
        for path in [None, "dir", "missing", "a.txt", "../"]:
            params = {"run_id": seeded.run_id} | ({"path": path} if path is not None else {})
            calls.append((f"{prefix}/artifacts/list", params))
    calls += [
        (f"{api}/artifacts/list", {}),
        (f"{api}/artifacts/list", {"run_id": "ab" * 16}),
        (f"{api}/artifacts/list", {"run_uuid": seeded.run_id}),
        ("/get-artifact", {"path": "a.txt"}),
        ("/get-artifact", {"run_id": "ab" * 16, "path": "a.txt"}),
    ]
    for path in ["a.txt", "model/MLmodel", "dir/inner.json", "dir", "missing.txt", *BAD_PATHS]:
        calls.append(("/get-artifact", {"run_id": seeded.run_id, "path": path}))
    for version in ("1", "2"):
        for path in ["MLmodel", "x.pkl", "sub/x.pkl", "sub", "", "missing", *BAD_PATHS]:
            calls.append(
                (
                    "/model-versions/get-artifact",
                    {"name": seeded.registered, "version": version, "path": path},
                )
            )
    calls += [
        ("/model-versions/get-artifact", {"name": seeded.registered, "version": "9", "path": "MLmodel"}),
        ("/model-versions/get-artifact", {"version": "1", "path": "MLmodel"}),
    ]
    files = f"/ajax-api/2.0/mlflow/logged-models/{seeded.model_id}/artifacts/files"
    for path in ["MLmodel", "sub/x.pkl", "sub", "missing", "", *BAD_PATHS]:
        calls.append((files, {"artifact_file_path": path} if path else {}))
    calls.append(
        (f"/ajax-api/2.0/mlflow/logged-models/m-{'ab' * 16}/artifacts/files", {"artifact_file_path": "x"})
    )
    for prefix in (api, "/ajax-api/2.0/mlflow"):
        directories = f"{prefix}/logged-models/{seeded.model_id}/artifacts/directories"
        calls += [(directories, {}), (directories, {"artifact_directory_path": "sub"})]
    return calls


def _outcome(base: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
    answer = requests.get(f"{base}{path}", params=params, timeout=30)
    if answer.headers.get("content-type", "").startswith("application/json"):
        body = answer.json()
        if "error_code" in body:
            return answer.status_code, body["error_code"]
        return answer.status_code, _shape(body)
    return answer.status_code, (
        answer.content,
        answer.headers.get("content-type"),
        answer.headers.get("content-disposition"),
    )


def _shape(body: Any) -> Any:
    """Ids and generated locations aside: the keys, and the listed files as they are."""
    if isinstance(body, dict):
        return {
            key: (value if key == "files" else _shape(value))
            for key, value in body.items()
            if key != "root_uri"
        } | ({"root_uri": "<uri>"} if "root_uri" in body else {})
    return type(body).__name__


def test_artifact_endpoints_answer_as_mlflow(compat_server: CompatServer, mlflow_server: str) -> None:
    ours, theirs = _seed(compat_server.url), _seed(mlflow_server)
    mismatches = []
    for (path, params), (their_path, their_params) in zip(_requests(ours), _requests(theirs), strict=True):
        mine, reference = _outcome(ours.base, path, params), _outcome(theirs.base, their_path, their_params)
        if mine != reference:
            mismatches.append((path.replace(ours.model_id, "<model>"), params, mine, reference))
    assert mismatches == []
