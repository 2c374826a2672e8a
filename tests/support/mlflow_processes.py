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
            env={**os.environ, **(env or {}), "PATH": path},
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
