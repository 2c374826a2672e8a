"""modelyard's client over HTTP: against modelyard's tracking service (gunicorn) and a real `mlflow server`.

Running the same workflow against MLflow's own server checks that the REST store speaks MLflow's
protocol, not just whatever our service happens to accept. The HTTP layer's retry and error mapping
are checked against a small real HTTP server that answers what a test scripts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.conftest import SharedServer
from tests.integration.client_workflow import reset_fluent_state, run_client_workflow, run_fluent_workflow

from modelyard.client import http
from modelyard.client.rest_store import RestTrackingStore
from modelyard.devstack.process import (
    LOOPBACK,
    free_port,
)
from modelyard.exceptions import ModelyardException, RestException


@pytest.fixture
def modelyard_server(shared_sqlite_server: SharedServer) -> str:
    """The session's shared SQLite tracking service (the workflows name their experiments uniquely)."""
    return shared_sqlite_server.url


# `mlflow_server` (MLflow's own server, the reference implementation) is the session's, tests/conftest.py.


@pytest.fixture(params=["modelyard", pytest.param("mlflow", marks=pytest.mark.compat)])
def server_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    reset_fluent_state()
    yield request.getfixturevalue(f"{request.param}_server")
    reset_fluent_state()


def test_fluent_workflow_over_rest(server_url: str) -> None:
    run_fluent_workflow(server_url)


def test_client_workflow_over_rest(server_url: str) -> None:
    run_client_workflow(server_url)


def test_rest_store_pages_metric_history_when_asked_for_everything(server_url: str) -> None:
    store = RestTrackingStore(server_url)
    run = store.create_run("0", "tester", 1_700_000_000_000)
    from modelyard.entities import Metric

    store.log_batch(run.info.run_id, metrics=[Metric("m", float(i), 1_700_000_000_000, i) for i in range(30)])
    everything = store.get_metric_history(run.info.run_id, "m", max_results=None)
    assert [m.step for m in everything] == list(range(30))
    assert everything.token is None


def test_tracking_uri_from_environment_reaches_the_server(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelyard as mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_url)
    with mlflow.start_run() as run:
        mlflow.log_metric("env", 1.0)
    assert RestTrackingStore(server_url).get_run(run.info.run_id).data.metrics == {"env": 1.0}


# ---- the HTTP layer against a scripted real server ---------------------------------------------
class _Scripted(BaseHTTPRequestHandler):
    """Answers from `server.script` (a list of (status, body, content_type)) in order; records requests."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, body, dict(self.headers)))  # type: ignore[attr-defined]
        status, payload, content_type = self.server.script.pop(0)  # type: ignore[attr-defined]
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _Scripted)
    server.script, server.seen = [], []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://{LOOPBACK}:{server.server_address[1]}"


def _config(**kw: object) -> http.HttpConfig:
    return http.HttpConfig(**{"read_timeout": 10.0, "max_retries": 3, "backoff_factor": 0.0, **kw})  # type: ignore[arg-type]


def test_retries_503_and_429_then_succeeds(scripted: ThreadingHTTPServer) -> None:
    scripted.script += [
        (503, "busy", "text/plain"),
        (429, "{}", "application/json"),
        (200, '{"ok": 1}', "application/json"),
    ]
    assert http.call(_url(scripted), "POST", "/x", json_body={"a": 1}, config=_config()) == {"ok": 1}
    assert len(scripted.seen) == 3


def test_gives_up_after_the_retry_budget(scripted: ThreadingHTTPServer) -> None:
    scripted.script += [(503, "busy", "text/plain")] * 3
    with pytest.raises(ModelyardException) as err:
        http.call(_url(scripted), "GET", "/x", config=_config(max_retries=2))
    assert len(scripted.seen) == 3
    assert err.value.error_code in ("TEMPORARILY_UNAVAILABLE",)


def test_client_errors_are_not_retried_and_carry_the_mlflow_code(scripted: ThreadingHTTPServer) -> None:
    scripted.script += [
        (404, json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}), "application/json")
    ]
    with pytest.raises(RestException) as err:
        http.call(_url(scripted), "GET", "/x", config=_config())
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert err.value.status_code == 404
    assert "no run" in str(err.value)
    assert len(scripted.seen) == 1


def test_non_json_error_becomes_an_exception_with_the_status(scripted: ThreadingHTTPServer) -> None:
    scripted.script += [(403, "<html>forbidden</html>", "text/html")]
    with pytest.raises(ModelyardException) as err:
        http.call(_url(scripted), "GET", "/x", config=_config())
    assert not isinstance(err.value, RestException)
    assert err.value.details["status_code"] == 403
    assert err.value.error_code == "PERMISSION_DENIED"


def test_get_lists_become_repeated_query_keys_and_delete_carries_json(scripted: ThreadingHTTPServer) -> None:
    scripted.script += [(200, "{}", "application/json"), (200, "{}", "application/json")]
    http.call(
        _url(scripted), "GET", "/q", params={"ids": ["1", "2"], "flag": True, "none": None}, config=_config()
    )
    http.call(_url(scripted), "DELETE", "/d", json_body={"name": "m"}, config=_config())
    (get_method, get_path, _, _), (del_method, _, del_body, _) = scripted.seen
    assert (get_method, get_path) == ("GET", "/q?ids=1&ids=2&flag=true")
    assert (del_method, json.loads(del_body)) == ("DELETE", {"name": "m"})


def test_auth_from_mlflow_environment(scripted: ThreadingHTTPServer) -> None:
    scripted.script += [(200, "{}", "application/json"), (200, "{}", "application/json")]
    http.call(_url(scripted), "GET", "/a", config=_config(token="tok"))
    http.call(_url(scripted), "GET", "/b", config=_config(username="u", password="p"))
    assert scripted.seen[0][3]["Authorization"] == "Bearer tok"
    assert scripted.seen[1][3]["Authorization"].startswith("Basic ")


def test_config_reads_modelyard_then_mlflow_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t")
    assert http.HttpConfig.from_env().read_timeout == 7.0
    monkeypatch.setenv("MODELYARD_HTTP_REQUEST_TIMEOUT", "3")
    config = http.HttpConfig.from_env()
    assert (config.read_timeout, config.token) == (3.0, "t")


def test_unreachable_server_fails_with_temporarily_unavailable() -> None:
    with pytest.raises(ModelyardException) as err:
        http.call(f"http://{LOOPBACK}:{free_port()}", "GET", "/x", config=_config(max_retries=0))
    assert err.value.error_code == "TEMPORARILY_UNAVAILABLE"


QUICKSTART = """
import modelyard as mlflow
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

X, y = datasets.load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
params = {"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}
lr = LogisticRegression(**params).fit(X_train, y_train)
accuracy = accuracy_score(y_test, lr.predict(X_test))

mlflow.set_tracking_uri(uri=TRACKING_URI)
mlflow.set_experiment("MLflow Quickstart")
with mlflow.start_run():
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", accuracy)
    mlflow.set_tag("Training Info", "Basic LR model for iris data")
    signature = mlflow.models.infer_signature(X_train, lr.predict(X_train))
    model_info = mlflow.sklearn.log_model(
        sk_model=lr, name="iris_model", signature=signature, input_example=X_train,
        registered_model_name="tracking-quickstart",
    )
loaded_model = mlflow.pyfunc.load_model(model_info.model_uri)
predictions = loaded_model.predict(X_test)
assert list(predictions) == list(lr.predict(X_test))
frame = mlflow.search_runs()
print(frame.loc[0, "metrics.accuracy"], frame.loc[0, "params.solver"], len(frame))
"""


def test_mlflow_quickstart_runs_with_import_modelyard_as_mlflow(
    modelyard_server: str, tmp_path: Path
) -> None:
    """MLflow's tracking quickstart, unchanged except for the import line, as a user would run it."""
    script = tmp_path / "quickstart.py"
    script.write_text(f"TRACKING_URI = {modelyard_server!r}\n" + QUICKSTART)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MODELYARD_TRACKING_URI")}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy, solver, runs = result.stdout.split()
    assert (float(accuracy), solver, int(runs)) == (1.0, "lbfgs", 1)
