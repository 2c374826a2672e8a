"""MLflow's own processes (`mlflow server`, `mlflow models serve`) as reference peers for the compat tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support import startups

from modelyard.devstack.process import (
    LOOPBACK,
    death_signal_hook,
    free_port,
    http_ok,
    log_tail,
    stop_group,
    wait_until,
)

#: `mlflow server` starts ~8 huey job consumers (each a Python process importing mlflow, ~8 CPU seconds in
#: all) for its GenAI job API, which no test here calls; a test that needs them can pass the variable.
_QUIET_SERVER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@contextmanager
def run_mlflow(
    args: list[str],
    workdir: Path,
    *,
    health_path: str = "/health",
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
) -> Iterator[str]:
    """`python -m mlflow <args> --host 127.0.0.1 --port <free>` in its own process group until the block
    exits; yields its base URL once `health_path` answers, and prints its log if anything fails."""
    startups.record(f"mlflow {args[0]}")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"mlflow-{args[0]}.log"
    command = [sys.executable, "-m", "mlflow", *args, "--host", LOOPBACK, "--port", str(port)]
    # mlflow execs some tools (uvicorn) by name: the venv's bin must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, **_QUIET_SERVER, **(env or {}), "PATH": path},
            start_new_session=True,
            preexec_fn=death_signal_hook(signal.SIGTERM),
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{url}{health_path}"),
            timeout=timeout,
            what=f"mlflow {args[0]}",
            alive=lambda: proc.poll() is None,
            log_path=log_path,
        )
        yield url
    except BaseException:
        sys.stdout.write(log_tail(log_path, 200))
        raise
    finally:
        stop_group(proc.pid, proc=proc)


@contextmanager
def mlflow_tracking_server(workdir: Path, backend_store_uri: str, workers: int = 2) -> Iterator[str]:
    """MLflow's own tracking server on `backend_store_uri`, artifacts proxied from `workdir`/artifacts."""
    # MLflow's SQLAlchemy default for postgresql:// is psycopg2, which we do not install.
    uri = backend_store_uri.replace("postgresql://", "postgresql+psycopg://", 1)
    args = [
        "server",
        "--workers",
        str(workers),
        "--backend-store-uri",
        uri,
        "--artifacts-destination",
        str(workdir / "artifacts"),
    ]
    # Its start-up (imports, migrations) can take minutes on a busy machine.
    with run_mlflow(args, workdir, timeout=300) as url:
        yield url
