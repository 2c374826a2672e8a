"""Artifact downloads carry the headers MLflow's server sends, compared with a real `mlflow server`.

The same files are uploaded through the artifacts API of both servers and downloaded through both
download paths (the artifacts API and the tracking server's `/get-artifact`); the headers that say what
the file is and how a browser treats it must be equal. Active content (HTML, SVG, ...) is where
modelyard deliberately differs: it is never named as such (see `artifact_proxy/headers.py`).
"""

from __future__ import annotations

import uuid

import pytest
import requests
from tests.compat.conftest import CompatServer

pytestmark = pytest.mark.compat

#: A text file, an MLmodel, an image, a binary, and more of MLflow's text list.
SAME_AS_MLFLOW = [
    "notes.txt",
    "MLmodel",
    "MLproject",
    "plot.png",
    "model.pkl",
    "metrics.json",
    "table.csv",
    "noext",
]
ACTIVE = ["page.html", "x.xhtml", "icon.svg"]
COMPARED = ("content-type", "content-disposition", "x-content-type-options")


def _upload_to_run(base: str) -> tuple[str, str]:
    """A run whose artifacts hold every file; returns (run_id, the run's artifacts-API folder)."""
    api = f"{base}/api/2.0/mlflow"
    experiment = requests.post(
        f"{api}/experiments/create", json={"name": f"hdr-{uuid.uuid4().hex}"}, timeout=30
    )
    run = requests.post(
        f"{api}/runs/create", json={"experiment_id": experiment.json()["experiment_id"]}, timeout=30
    ).json()["run"]["info"]
    folder = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1].strip("/")
    for name in [*SAME_AS_MLFLOW, *ACTIVE]:
        put = requests.put(
            f"{base}/api/2.0/mlflow-artifacts/artifacts/{folder}/{name}", data=b"<b>hi</b>", timeout=30
        )
        assert put.status_code == 200, put.text
    return run["run_id"], folder


def _headers(base: str, run_id: str, folder: str, name: str) -> list[dict[str, str | None]]:
    answers = [
        requests.get(f"{base}/api/2.0/mlflow-artifacts/artifacts/{folder}/{name}", timeout=30),
        requests.get(f"{base}/get-artifact", params={"run_id": run_id, "path": name}, timeout=30),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.content == b"<b>hi</b>"
    return [{key: answer.headers.get(key) for key in COMPARED} for answer in answers]


def test_download_headers_equal_mlflows(compat_server: CompatServer, mlflow_server: str) -> None:
    ours, theirs = _upload_to_run(compat_server.url), _upload_to_run(mlflow_server)
    for name in SAME_AS_MLFLOW:
        assert _headers(compat_server.url, *ours, name) == _headers(mlflow_server, *theirs, name), name


def test_active_content_is_an_attachment_never_named_as_such(compat_server: CompatServer) -> None:
    run_id, folder = _upload_to_run(compat_server.url)
    for name in ACTIVE:
        for headers in _headers(compat_server.url, run_id, folder, name):
            assert headers == {
                "content-type": "text/plain",
                "content-disposition": f"attachment; filename={name}",
                "x-content-type-options": "nosniff",
            }
