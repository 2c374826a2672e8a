"""`modelyard ui`: the seeds' `mlflow ui` habit, the tracking service (UI, REST API and artifacts) on one URL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from modelyard.devstack.process import LOOPBACK, death_signal_hook, free_port, http_ok, stop_group, wait_until

CLI = [sys.executable, "-m", "modelyard.cli"]


@pytest.mark.parametrize("store", ["default", "given"])
def test_ui_serves_the_api_and_artifacts_on_the_url_it_prints(tmp_path: Path, store: str) -> None:
    port = free_port()
    args = [*CLI, "ui", "--port", str(port)]
    db = tmp_path / "modelyard.db"
    if store == "given":
        db = tmp_path / "mlflow.db"
        args += ["--backend-store-uri", f"sqlite:///{db}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "MLFLOW_"))}
    log_path = tmp_path / "ui.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                                start_new_session=True, preexec_fn=death_signal_hook(signal.SIGTERM))  # fmt: skip
    try:
        url = f"http://{LOOPBACK}:{port}"
        wait_until(lambda: http_ok(f"{url}/health"), timeout=60, what="modelyard ui",
                   alive=lambda: proc.poll() is None, log_path=log_path)  # fmt: skip
        printed = re.search(r"^modelyard UI at (\S+)", log_path.read_text(), re.MULTILINE)
        assert printed is not None and printed.group(1) == url, log_path.read_text()

        api = f"{url}/api/2.0/mlflow"
        created = requests.post(f"{api}/experiments/create", json={"name": "seeds"}, timeout=10)
        assert created.status_code == 200, created.text
        experiment = requests.get(
            f"{api}/experiments/get", params={"experiment_id": created.json()["experiment_id"]}, timeout=10
        ).json()["experiment"]
        # Artifacts are served by the same process: new experiments point at its artifacts API.
        assert experiment["artifact_location"].startswith("mlflow-artifacts:/")
        artifact = f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment['experiment_id']}/notes.txt"
        assert requests.put(artifact, data=b"hello", timeout=10).status_code == 200
        assert requests.get(artifact, timeout=10).content == b"hello"

        home = requests.get(f"{url}/", timeout=10)  # the web UI on the same URL: `/` opens the experiments
        assert home.status_code == 200 and home.url == f"{url}/experiments" and ">seeds<" in home.text

        assert db.is_file()  # the embedded default lives in the folder it was started from
        assert (
            tmp_path / "modelyard-artifacts" / experiment["experiment_id"] / "notes.txt"
        ).read_bytes() == b"hello"
        group = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(group) == 2  # gunicorn's master and one worker: a personal server
    finally:
        stop_group(proc.pid, proc=proc)


def test_ui_on_a_port_in_use_says_so_and_prints_no_url(tmp_path: Path) -> None:
    """With `make up`'s tracking service on 5000, `modelyard ui --port 5000` printed its URL (which opened
    the other server), then gunicorn retried for seconds and exited."""
    import socket

    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "MLFLOW_"))}
        done = subprocess.run([*CLI, "ui", "--host", LOOPBACK, "--port", str(port)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "modelyard UI at" not in done.stdout
    assert f"Cannot listen on {LOOPBACK}:{port}" in done.stderr and "pass --port" in done.stderr
    assert not (tmp_path / "modelyard.db").exists()  # nothing created either


def test_ui_and_server_never_print_the_stores_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "MLFLOW_"))}
    store = f"postgresql://yard:s3cret-pw@{LOOPBACK}:1/yard"  # nothing listens: the migration fails after the announcement
    for command in ("ui", "server"):
        done = subprocess.run([*CLI, command, "--backend-store-uri", store, "--port", str(free_port())], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode != 0 and "yard:***@" in output, output
        assert "s3cret-pw" not in output
        # An unreachable database is one line, not a traceback.
        assert f"Cannot reach the database postgresql://yard:***@{LOOPBACK}:1/yard" in output and "Traceback" not in output
