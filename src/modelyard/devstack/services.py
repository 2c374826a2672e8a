"""modelyard's HTTP services run the way production runs them: gunicorn with uvicorn workers.

One `ServiceSpec` per deployable service (adding a service to the dev stack is one entry in
`SERVICES`); `GunicornService` starts one as its own process group, waits for its health check and
stops the whole group (master and workers) again.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.devstack.process import (
    LOOPBACK,
    http_ok,
    log_tail,
    pid_alive,
    spawn,
    stop_group,
    wait_started,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_GUNICORN_CONF = "modelyard.runtime.gunicorn_conf"
FALLBACK_WORKER_CLASS = "uvicorn_worker.UvicornWorker"


@dataclass(frozen=True)
class ServiceSpec:
    """What it takes to run one service: its ASGI app and where it reports healthy."""

    name: str
    app: str
    health_path: str = "/health"
    #: Environment variable in `infra/local/stack.env` holding its port.
    port_var: str = ""
    #: Service-specific environment for the dev stack, on top of the stack's common variables.
    env: tuple[tuple[str, str], ...] = ()

    @property
    def module(self) -> str:
        return self.app.split(":", 1)[0]

    def available(self) -> bool:
        """Whether its code has landed (services appear in the stack as their modules are written)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def gunicorn_config(self, repo_root: Path = REPO_ROOT) -> list[str]:
        """`-c ...` for gunicorn: the service's own file, else the shared module, else bare flags."""
        own = repo_root / "services" / self.name / "gunicorn.conf.py"
        if own.is_file():
            return ["-c", str(own)]
        try:
            shared = importlib.util.find_spec(SHARED_GUNICORN_CONF) is not None
        except ModuleNotFoundError:
            shared = False
        if shared:
            return ["-c", f"python:{SHARED_GUNICORN_CONF}"]
        return ["-k", FALLBACK_WORKER_CLASS]


# The tracking service also serves the artifacts API itself (single-process mode), so a client with
# only MLFLOW_TRACKING_URI set can log artifacts; the separate artifacts service is the team-stack shape.
TRACKING = ServiceSpec(
    "tracking",
    "modelyard.tracking.asgi:app",
    port_var="MODELYARD_TRACKING_PORT",
    env=(("MODELYARD_DEFAULT_ARTIFACT_ROOT", "mlflow-artifacts:/"), ("MODELYARD_SERVE_ARTIFACTS", "true")),
)
ARTIFACTS = ServiceSpec("artifacts", "modelyard.artifact_proxy.asgi:app", port_var="MODELYARD_ARTIFACTS_PORT")
ENDPOINTS = ServiceSpec("endpoints", "modelyard.endpoints.asgi:app", port_var="MODELYARD_ENDPOINTS_PORT")
# The stack's one base URL: artifacts API -> artifacts service, the rest -> tracking (as the chart's ingress).
GATEWAY = ServiceSpec(
    "gateway", "modelyard.gateway.asgi:app", health_path="/gateway/health", port_var="MODELYARD_GATEWAY_PORT"
)

#: The services `make up` runs, in start order.
SERVICES: tuple[ServiceSpec, ...] = (TRACKING, ARTIFACTS, ENDPOINTS, GATEWAY)


@dataclass
class GunicornService:
    """One gunicorn master (and its workers) serving `spec.app` on 127.0.0.1:`port`.

    `env` is layered over the current environment; `MODELYARD_HOST/PORT/WORKERS` are set from the
    arguments and `--bind`/`--workers` are passed too, so a service never listens beyond loopback
    whatever its config file says.
    """

    spec: ServiceSpec
    port: int
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 2
    tied_to_parent: bool = False
    cwd: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    pid: int | None = field(default=None, init=False)
    #: Size of the (appended) log when this run was launched: where this run's lines begin.
    _log_offset: int = field(default=0, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn",
            *self.spec.gunicorn_config(),
            "--bind", f"{LOOPBACK}:{self.port}",
            "--workers", str(self.workers),
            self.spec.app,
        ]  # fmt: skip

    def start(self, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Spawn gunicorn without waiting, so several services can boot side by side."""
        env = {
            **os.environ,
            **self.env,
            "MODELYARD_HOST": LOOPBACK,
            "MODELYARD_PORT": str(self.port),
            "MODELYARD_WORKERS": str(self.workers),
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._proc = spawn(
            self.command(),
            self.log_path,
            death_signal=signal.SIGTERM,
            tied_to_parent=self.tied_to_parent,
            env=env,
            cwd=self.cwd,
        )
        self.pid = self._proc.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the health check; on failure stop the group and raise with the log tail."""
        wait_started(
            self._proc,
            self.healthy,
            timeout=timeout,
            what=f"{self.spec.name} service ({self.spec.app}) on port {self.port}",
            log_path=self.log_path,
            stop=self.stop,
        )

    def healthy(self) -> bool:
        return http_ok(self.url + self.spec.health_path)

    def wait_all_workers(self, timeout: float = 60.0) -> None:
        """Wait until every worker has finished its start-up, not just the one that answered the health
        check: the others may still be importing the app, growing and not yet accepting. Counts uvicorn's
        one start-up line per worker, logged at INFO (the default `MODELYARD_LOG_LEVEL`)."""
        wait_until(
            lambda: self._startups_logged() >= self.workers,
            timeout=timeout,
            what=f"all {self.workers} workers of the {self.spec.name} service",
            log_path=self.log_path,
        )

    def _startups_logged(self) -> int:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return log.read().count(b"Application startup complete")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM is gunicorn's graceful shutdown; the group kill also reaches every worker."""
        if self.pid is None:
            return
        stop_group(self.pid, sig=signal.SIGTERM, grace=grace, proc=self._proc)
        self.pid = None
        self._proc = None

    def adopt(self, pid: int) -> None:
        self.pid = pid if pid_alive(pid) else None

    def log(self) -> str:
        return log_tail(self.log_path, lines=200)
