"""The scoring service under real gunicorn: every input format, params, errors, and workers that survive.

One service per model for the whole module (starting gunicorn and loading scikit-learn is the slow
part); every test talks to it over a real socket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.integration.serving_models import (
    FEATURES,
    SERVING,
    child_pids,
    frame,
    save_classifier,
    save_scale_model,
    train_classifier,
)
from tests.support.services import start_service

from modelyard.devstack.process import free_port, http_ok, wait_until
from modelyard.devstack.services import GunicornService
from modelyard.version import __version__


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GunicornService, Any]]:
    base = tmp_path_factory.mktemp("serving-classifier")
    model, _ = save_classifier(base / "model")
    env = {"MODELYARD_MODEL_URI": str(base / "model")}
    with start_service(SERVING, base / "service", env=env, workers=2) as service:
        yield service, model


@pytest.fixture(scope="module")
def scale_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornService]:
    base = tmp_path_factory.mktemp("serving-scale")
    save_scale_model(base / "model", base / "code", offset=0.5)
    env = {"MODELYARD_MODEL_URI": str(base / "model")}
    with start_service(SERVING, base / "service", env=env, workers=1) as service:
        yield service


def _post(
    service: GunicornService, body: str | bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return httpx.post(f"{service.url}/invocations", content=body, headers=headers, timeout=60)


ROWS = frame(5, seed=7)


def _bodies(rows: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    records = rows.to_dict(orient="records")
    return {
        "dataframe_split": (
            json.dumps({"dataframe_split": rows.to_dict(orient="split")}),
            "application/json",
        ),
        "dataframe_split without index": (
            json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows.values.tolist()}}),
            "application/json",
        ),
        "dataframe_records": (json.dumps({"dataframe_records": records}), "application/json"),
        "instances as records": (json.dumps({"instances": records}), "application/json"),
        "inputs as columns": (json.dumps({"inputs": rows.to_dict(orient="list")}), "application/json"),
        "inputs as positional rows": (json.dumps({"inputs": rows.values.tolist()}), "application/json"),
        "csv": (rows.to_csv(index=False), "text/csv"),
        "csv with charset": (rows.to_csv(index=False), "text/csv; charset=utf-8"),
        "json with charset": (json.dumps({"dataframe_records": records}), "application/json; charset=UTF-8"),
        "no content type means json": (json.dumps({"dataframe_records": records}), None),
    }


@pytest.mark.parametrize("case", list(_bodies(ROWS)))
def test_every_input_format_scores_like_the_model(classifier: tuple[GunicornService, Any], case: str) -> None:
    service, model = classifier
    body, content_type = _bodies(ROWS)[case]
    response = _post(service, body, content_type)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": model.predict(ROWS).tolist()}


def test_a_thousand_rows_in_one_request(classifier: tuple[GunicornService, Any]) -> None:
    service, model = classifier
    rows = frame(1000, seed=3)
    response = _post(service, json.dumps({"dataframe_split": rows.to_dict(orient="split")}))
    assert response.status_code == 200
    assert response.json()["predictions"] == model.predict(rows).tolist()


def test_ping_health_and_version(classifier: tuple[GunicornService, Any]) -> None:
    service, _ = classifier
    for path in ("/ping", "/health"):
        assert httpx.get(service.url + path).status_code == 200
    version = httpx.get(service.url + "/version")
    assert version.status_code == 200 and version.text == __version__


BAD_REQUESTS: dict[str, tuple[str, str, int, str]] = {
    # case: (body, content type, status, text the message must contain)
    "malformed json": ("{not json", "application/json", 400, "valid JSON"),
    "empty body": ("", "application/json", 400, "valid JSON"),
    "a json list": ("[1, 2]", "application/json", 400, "exactly one of the input fields"),
    "no input field": ('{"foo": 1}', "application/json", 400, "exactly one of the input fields"),
    "two input fields": (
        '{"inputs": [[1, 2, 3]], "instances": [[1, 2, 3]]}',
        "application/json",
        400,
        "exactly one",
    ),
    "missing column": (
        json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}),
        "application/json",
        400,
        "'c'",
    ),
    "missing column in csv": ("a,b\n1.0,2.0\n", "text/csv", 400, "'c'"),
    "column of the wrong type": (
        json.dumps({"dataframe_records": [{"a": "x", "b": 1.0, "c": 2.0}]}),
        "application/json",
        400,
        "column a",
    ),
    "rows of the wrong width": (
        json.dumps({"inputs": [[1.0, 2.0]]}),
        "application/json",
        400,
        "3 input columns",
    ),
    "ragged rows": (json.dumps({"inputs": [[1.0, 2.0, 3.0], [1.0]]}), "application/json", 400, "inputs"),
    "split data not matching columns": (
        json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[1.0, 2.0]]}}),
        "application/json",
        400,
        "dataframe_split",
    ),
    "dataframe_split not an object": (
        json.dumps({"dataframe_split": "x"}),
        "application/json",
        400,
        "dataframe_split",
    ),
    "records not objects": (
        json.dumps({"dataframe_records": [1, 2]}),
        "application/json",
        400,
        "dataframe_records",
    ),
    "params not an object": (
        json.dumps({"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0}], "params": [1]}),
        "application/json",
        400,
        "params",
    ),
    "nan the model rejects": ("a,b,c\n1.0,2.0\n", "text/csv", 400, "NaN"),
    "deeply nested junk": (
        json.dumps({"inputs": {"a": [{"x": [1, {"y": 2}]}]}}),
        "application/json",
        400,
        "",
    ),
}

UNSUPPORTED_TYPES = [
    "application/xml",
    "text/plain",
    "application/json; charset=latin-1",
    "text/csv; foo=bar",
]


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_payloads_get_400_with_a_message(classifier: tuple[GunicornService, Any], case: str) -> None:
    service, _ = classifier
    body, content_type, status, text = BAD_REQUESTS[case]
    response = _post(service, body, content_type)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    assert text in error["message"]


@pytest.mark.parametrize("content_type", UNSUPPORTED_TYPES)
def test_unsupported_content_types_get_415(
    classifier: tuple[GunicornService, Any], content_type: str
) -> None:
    service, _ = classifier
    response = _post(service, "a,b,c\n1,2,3\n", content_type)
    assert response.status_code == 415
    assert response.text


def test_bad_requests_never_kill_a_worker(classifier: tuple[GunicornService, Any]) -> None:
    service, model = classifier
    assert service.pid is not None
    workers = child_pids(service.pid)
    assert len(workers) == 2
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for _ in range(3):
            for body, content_type, _status, _text in BAD_REQUESTS.values():
                assert (
                    client.post(
                        "/invocations", content=body, headers={"content-type": content_type}
                    ).status_code
                    < 500
                )
            for content_type in UNSUPPORTED_TYPES:
                assert (
                    client.post(
                        "/invocations", content="x", headers={"content-type": content_type}
                    ).status_code
                    == 415
                )
        good = client.post("/invocations", json={"dataframe_split": ROWS.to_dict(orient="split")})
    assert good.status_code == 200
    assert good.json()["predictions"] == model.predict(ROWS).tolist()
    assert child_pids(service.pid) == workers, "a worker died and was replaced"


def test_params_reach_the_model_and_are_checked(scale_service: GunicornService) -> None:
    rows = frame(3, seed=1)
    records = rows.to_dict(orient="records")
    default = _post(scale_service, json.dumps({"dataframe_records": records}))
    assert default.status_code == 200, default.text
    assert default.json() == {"predictions": [{"y": a + 0.5, "label": "ok"} for a in rows["a"]]}
    scaled = _post(scale_service, json.dumps({"dataframe_records": records, "params": {"scale": 3}}))
    assert scaled.status_code == 200, scaled.text
    assert np.allclose([p["y"] for p in scaled.json()["predictions"]], rows["a"] * 3 + 0.5)
    wrong = _post(scale_service, json.dumps({"dataframe_records": records, "params": {"scale": "big"}}))
    assert wrong.status_code == 400
    assert "scale" in wrong.json()["message"]


def test_models_serve_cli_serves_until_sigterm(tmp_path: Path) -> None:
    model, _ = save_classifier(tmp_path / "model", seed=2)
    port = free_port()
    log = tmp_path / "serve.log"
    cli = [sys.executable, "-c", "from modelyard.cli import main; main()"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*cli, "models", "serve", "-m", str(tmp_path / "model"), "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(url + "/ping"),
            timeout=60,
            what="models serve",
            alive=lambda: process.poll() is None,
            log_path=log,
        )
        response = httpx.post(url + "/invocations", json={"dataframe_split": ROWS.to_dict(orient="split")})
        assert response.status_code == 200
        assert response.json()["predictions"] == model.predict(ROWS).tolist()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()


@pytest.mark.parametrize(
    "reference", ["models:/{name}@champion", "models:/{name}/Production", "runs:/{run_id}/model"]
)
def test_registry_and_run_uris_are_downloaded_once_by_the_master(
    tmp_path: Path, tracking_server: Callable[..., str], reference: str
) -> None:
    import modelyard
    from modelyard import sklearn as my_sklearn
    from modelyard.client import Client
    from modelyard.models import infer_signature

    url = tracking_server(workers=1)
    model, x = train_classifier(seed=4)
    name = f"serving-{tmp_path.name}"[:60]
    modelyard.set_tracking_uri(url)
    try:
        with modelyard.start_run() as run:
            my_sklearn.log_model(
                model, name="model", registered_model_name=name, signature=infer_signature(x)
            )
    finally:
        modelyard.set_tracking_uri(None)
    client = Client(tracking_uri=url)
    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "1", "Production")
    uri = reference.format(name=name, run_id=run.info.run_id)

    env = {"MODELYARD_MODEL_URI": uri, "MLFLOW_TRACKING_URI": url}
    with start_service(SERVING, tmp_path / "service", env=env, workers=2) as service:
        response = _post(service, json.dumps({"dataframe_split": ROWS.to_dict(orient="split")}))
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": model.predict(ROWS).tolist()}
        assert service.log().count(f"Downloaded {uri}") == 1
