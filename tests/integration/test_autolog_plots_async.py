"""A classifier's autologged plots are drawn and stored after `fit` returns (`autologging/background.py`):
each run's figures are its own fit's even when the same estimator object is refit at once and the user's
arrays are reused; `modelyard.flush_async_logging()` waits for them; a script that exits right after
`fit` still stores them; a server that refuses the upload costs a warning, never an exception. Against
the shared SQLite modelyard server, and MLflow's own server for the upload to an ended run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from tests.conftest import SharedServer

import modelyard
from modelyard.autologging import sklearn_metrics, sklearn_plots
from modelyard.client import Client

PLOTS = {"training_confusion_matrix.png", "training_roc_curve.png", "training_precision_recall_curve.png"}
X_BINARY, Y_BINARY = load_breast_cancer(return_X_y=True)
X_BINARY = X_BINARY[:, :8]  # fewer features: a quick, converging fit
X_IRIS, Y_IRIS = load_iris(return_X_y=True)


@contextmanager
def _pointed_at(url: str, experiment: str) -> Iterator[None]:
    """modelyard logging to `experiment` on `url`; afterwards the background plots stored, autolog off."""
    modelyard.set_tracking_uri(url)
    modelyard.set_experiment(experiment)
    try:
        yield
    finally:
        modelyard.flush_async_logging()
        modelyard.sklearn.autolog(disable=True)
        modelyard.set_tracking_uri(None)


@pytest.fixture
def tracking_uri(request: pytest.FixtureRequest, unique_name: str) -> Iterator[str]:
    """modelyard's shared SQLite server, or (param "mlflow") MLflow's own."""
    kind = getattr(request, "param", "modelyard")
    server = "shared_sqlite_server" if kind == "modelyard" else "mlflow_server"
    url = request.getfixturevalue(server)
    url = url if isinstance(url, str) else url.url
    with _pointed_at(url, unique_name):
        yield url


def _runs(experiment_name: str) -> list[str]:
    """The experiment's run ids, oldest first."""
    experiment = modelyard.get_experiment_by_name(experiment_name)
    runs = Client().search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [run.info.run_id for run in runs]


def _pngs(run_id: str) -> set[str]:
    return {a.path for a in Client().list_artifacts(run_id) if a.path.endswith(".png")}


def _pixels(path: str | Path) -> Any:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.mark.parametrize("tracking_uri", ["modelyard", "mlflow"], indirect=True)
def test_each_runs_plots_are_its_own_fits_when_the_estimator_is_refit_at_once(
    tracking_uri: str, unique_name: str, tmp_path: Path
) -> None:
    modelyard.sklearn.autolog(log_models=False)
    estimator = LogisticRegression(max_iter=5000)
    y = Y_BINARY.copy()
    estimator.fit(X_BINARY, y)
    y[:] = 0  # the user reuses their array and refits the same object before the plots are drawn
    estimator.set_params(C=0.01).fit(X_IRIS, Y_IRIS)
    first, second = _runs(unique_name)
    modelyard.flush_async_logging()
    assert _pngs(first) == PLOTS  # a binary problem: the curves too
    assert _pngs(second) == {"training_confusion_matrix.png"}
    assert Client().get_run(first).info.status == "FINISHED"

    # The first run's figures are those of a twin fitted on the first data, pixel for pixel.
    twin = LogisticRegression(max_iter=5000).fit(X_BINARY, Y_BINARY)
    outputs = sklearn_metrics.classifier_outputs(twin, X_BINARY)
    data = sklearn_plots.plot_data(twin, X_BINARY, Y_BINARY, None, outputs)
    assert data is not None
    (tmp_path / "expected").mkdir()
    expected = sklearn_plots.draw(data, str(tmp_path / "expected"))
    assert len(expected) == 3
    for path in expected:
        name = Path(path).name
        stored = Client().download_artifacts(first, name, str(tmp_path / "stored"))
        assert np.array_equal(_pixels(stored), _pixels(path)), name


def test_a_script_that_exits_right_after_fit_still_stores_its_plots(
    shared_sqlite_server: SharedServer, unique_name: str
) -> None:
    code = textwrap.dedent(
        f"""
        import modelyard
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        modelyard.set_tracking_uri({shared_sqlite_server.url!r})
        modelyard.set_experiment({unique_name!r})
        modelyard.sklearn.autolog(log_models=False)
        LogisticRegression(max_iter=300).fit(*load_iris(return_X_y=True))
        print(modelyard.last_active_run().info.run_id)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "autologging" not in done.stderr, done.stderr  # no warning either
    run_id = done.stdout.split()[-1]
    listed = {a.path for a in Client(tracking_uri=shared_sqlite_server.url).list_artifacts(run_id)}
    assert {"training_confusion_matrix.png", "estimator.html"} <= listed


class _RefusingProxy(ThreadingHTTPServer):
    """Forwards every request to a real tracking server, except PNG uploads and folder (bundle) uploads:
    403 in MLflow's shape. (After `fit`, a plain estimator's estimator.html and its plots go up
    together, as one bundle.)"""

    daemon_threads = True
    block_on_close = False

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target = target
        self.refused: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _RefusingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT" and (self.path.endswith(".png") or "/modelyard-bundle/" in self.path):
            self.server.refused.append(self.path)
            payload = json.dumps({"error_code": "PERMISSION_DENIED", "message": "uploads refused"}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(
            self.command, self.server.target + self.path, data=body, headers=headers, timeout=60
        )
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_proxy(shared_sqlite_server: SharedServer, unique_name: str) -> Iterator[_RefusingProxy]:
    proxy = _RefusingProxy(shared_sqlite_server.url)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with _pointed_at(proxy.url, unique_name):
            yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()


def test_a_refused_plot_upload_is_a_warning_after_fit_returned(refusing_proxy: _RefusingProxy) -> None:
    modelyard.sklearn.autolog(log_models=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = LogisticRegression(max_iter=300).fit(X_IRIS, Y_IRIS)
        assert fitted.coef_ is not None
        run_id = modelyard.last_active_run().info.run_id
        modelyard.flush_async_logging()  # the failure stays on the background thread: no exception here
    messages = [str(w.message) for w in caught]
    assert refusing_proxy.refused  # the plots (with estimator.html) went up after fit, and were refused
    assert any("sklearn autologging" in m and "uploads refused" in m for m in messages), messages
    listed = {a.path for a in Client().list_artifacts(run_id)}
    assert "training_confusion_matrix.png" not in listed
    assert Client().get_run(run_id).info.status == "FINISHED"


def test_silent_keeps_a_refused_plot_upload_out_of_warnings(refusing_proxy: _RefusingProxy) -> None:
    modelyard.sklearn.autolog(log_models=False, silent=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LogisticRegression(max_iter=300).fit(X_IRIS, Y_IRIS)
        modelyard.flush_async_logging()
    assert refusing_proxy.refused
    assert not [w for w in caught if "autologging" in str(w.message)]


def test_estimator_html_is_the_fits_own_even_when_params_change_at_once(tracking_uri: str) -> None:
    """A plain estimator's estimator.html is rendered after `fit` returns, from a copy taken at the
    fit: params set right after (before the background thread renders it) do not reach it."""
    modelyard.sklearn.autolog(log_models=False)
    estimator = LogisticRegression(C=0.125, max_iter=300)
    estimator.fit(X_IRIS, Y_IRIS)
    run_id = modelyard.last_active_run().info.run_id
    estimator.set_params(C=64.0, max_iter=777)
    modelyard.flush_async_logging()
    html = Path(Client().download_artifacts(run_id, "estimator.html")).read_text()
    assert "0.125" in html and "300" in html
    assert "64.0" not in html and "777" not in html
