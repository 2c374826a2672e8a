"""`make up` / `make down` for real: the native stack on free ports in a temp root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from modelyard.devstack.process import free_port, http_ok, pid_alive, port_in_use
from modelyard.devstack.services import SERVICES
from modelyard.devstack.stack import Stack, load_config, read_env_file

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


def _run(command: str, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Exactly what the Makefile runs, as a separate process that exits while the stack lives on.
    return subprocess.run(
        [sys.executable, "-m", "modelyard.devstack", command, "--root", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def stack_env() -> dict[str, str]:
    ports = {
        "MODELYARD_PG_PORT": free_port(),
        "MODELYARD_S3_PORT": free_port(),
        **{spec.port_var: free_port() for spec in SERVICES},
    }
    return {**os.environ, **{key: str(port) for key, port in ports.items()}}


@pytest.fixture
def stack_root(tmp_path: Path, stack_env: dict[str, str]) -> Iterator[Path]:
    # tmp_path's parents are 0700: as root, the cluster's owner (`postgres`) cannot enter them, so the
    # cluster is relocated and `clean` must find it there.
    root = tmp_path / "checkout"
    root.mkdir()
    yield root
    _run("clean", root, stack_env)


def test_up_is_healthy_and_idempotent_down_leaves_nothing_and_data_survives(
    stack_root: Path, stack_env: dict[str, str]
) -> None:
    up = _run("up", stack_root, stack_env)
    assert up.returncode == 0, up.stdout + up.stderr

    stack = Stack(stack_root, load_config(environ=stack_env))
    components = {c.name: c for c in stack.status()}
    expected = {"postgres", "s3", *(spec.name for spec in stack.services())}
    assert set(components) == expected, up.stdout
    unhealthy = [c.name for c in components.values() if not c.healthy]
    assert unhealthy == [], up.stdout + "".join(
        (stack.log_dir / f"{name}.log").read_text() for name in unhealthy
    )
    for spec in stack.services():
        assert http_ok(f"{stack.service_url(spec)}{spec.health_path}")
    with psycopg.connect(stack.database_uri) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (stack.config["MODELYARD_PG_USER"],)
    buckets = {b["Name"] for b in stack._s3().client().list_buckets()["Buckets"]}
    assert {stack.config["MODELYARD_ARTIFACTS_BUCKET"], stack.config["MODELYARD_DEPLOY_BUCKET"]} <= buckets

    env_file = read_env_file(stack.state_dir / "env")
    assert env_file["AWS_ENDPOINT_URL_S3"] == stack.s3_endpoint
    assert env_file["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{stack_env['MODELYARD_GATEWAY_PORT']}"
    assert {
        "AWS_ENDPOINT_URL_SAGEMAKER",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "MODELYARD_DEPLOY_BUCKET",
    } <= set(env_file)
    # The database and bucket of the stack, for `modelyard gc`/`users`/... only: apart, and private.
    assert "MODELYARD_BACKEND_STORE_URI" not in env_file
    admin_env = read_env_file(stack.state_dir / "admin-env")
    assert admin_env["MODELYARD_BACKEND_STORE_URI"] == stack.database_uri
    assert admin_env["MODELYARD_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert (stack.state_dir / "admin-env").stat().st_mode & 0o077 == 0

    status = _run("status", stack_root, stack_env)
    assert status.returncode == 0, status.stdout + status.stderr
    pids = [c.pid for c in components.values()]

    # `make up` again is a no-op: the same processes keep running.
    again = _run("up", stack_root, stack_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [c.pid for c in stack.status()] == pids

    with psycopg.connect(stack.database_uri) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")

    # The real mlflow client, configured only by .stack/env, logs a run with an artifact and a model.
    client_env = {**stack_env, **env_file, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    logged = subprocess.run(
        [sys.executable, "-c", LOG_WITH_MLFLOW], env=client_env, capture_output=True, text=True, timeout=300
    )
    assert logged.returncode == 0, logged.stdout + logged.stderr
    run_id = logged.stdout.strip().splitlines()[-1]
    # Artifact bytes went through the gateway to the artifacts service and into S3 (tracking does not
    # serve the artifacts API in the stack, so the upload could not have gone there).
    keys = [
        o["Key"]
        for o in stack._s3()
        .client()
        .list_objects_v2(Bucket=stack.config["MODELYARD_ARTIFACTS_BUCKET"])
        .get("Contents", [])
    ]
    assert any(k.endswith("notes/hello.txt") for k in keys), keys

    down = _run("down", stack_root, stack_env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert [pid for pid in pids if pid is not None and pid_alive(pid)] == []
    assert [c.port for c in components.values() if port_in_use(c.port)] == []
    assert list(stack.status()) == []
    assert "not running" in _run("status", stack_root, stack_env).stdout

    # PostgreSQL's data lives in .data/postgres and survives down/up.
    restarted = _run("up", stack_root, stack_env)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    with psycopg.connect(stack.database_uri) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("still here",)]
    # ...and so do the run, its artifact and its model, read back by the mlflow client.
    read = subprocess.run(
        [sys.executable, "-c", READ_WITH_MLFLOW, run_id],
        env=client_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0, read.stdout + read.stderr
    assert read.stdout.strip().splitlines()[-1] == "hello from the stack|0.5|[3.0]"

    # `make clean` removes the data (PostgreSQL's, wherever it was relocated, and the S3 snapshot) and
    # leaves no empty .data behind.
    cluster = stack.data_dir / "postgres"
    relocated = cluster.resolve() if cluster.is_symlink() else None
    cleaned = _run("clean", stack_root, stack_env)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "S3" in cleaned.stdout
    assert not stack.data_dir.exists() and not stack.state_dir.exists()
    assert relocated is None or not relocated.exists()


LOG_WITH_MLFLOW = """
import mlflow
from sklearn.linear_model import LinearRegression

mlflow.set_experiment("stack-check")
with mlflow.start_run() as run:
    mlflow.log_metric("m", 0.5)
    mlflow.log_text("hello from the stack", "notes/hello.txt")
    model = LinearRegression().fit([[0.0], [1.0]], [1.0, 2.0])
    mlflow.sklearn.log_model(model, name="model", registered_model_name="stack-check-model")
print(run.info.run_id)
"""

READ_WITH_MLFLOW = """
import sys
import mlflow

run_id = sys.argv[1]
text = mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt")
metric = mlflow.get_run(run_id).data.metrics["m"]
model = mlflow.pyfunc.load_model("models:/stack-check-model/1")
print(f"{text}|{metric}|{[round(float(x), 6) for x in model.predict([[2.0]])]}")
"""


def test_up_refuses_a_port_taken_by_someone_else(stack_root: Path, stack_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(stack_env["MODELYARD_S3_PORT"])))
        squatter.listen()
        up = _run("up", stack_root, stack_env)
    assert up.returncode == 1
    assert "port" in up.stderr and "taken" in up.stderr
    # What it had started before the failure (PostgreSQL) was stopped again.
    stack = Stack(stack_root, load_config(environ=stack_env))
    assert list(stack.status()) == []
