"""Both sides of the comparison, started on one PostgreSQL server and one moto S3 server.

modelyard's services are started with `modelyard.devstack` exactly as `make up` starts them; MLflow's
`mlflow server` and `mlflow models serve` run from their own venv (bench/mlflow_env.py) as plain
child processes in their own session, stopped with the same group kill. Every server listens on
127.0.0.1 and gets the same number of workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import mlflow_env
from modelyard.devstack import (
    DUMMY_AWS_ENV,
    GunicornService,
    PostgresServer,
    S3Server,
    ServiceSpec,
    free_port,
)
from modelyard.devstack.process import LOOPBACK, death_signal_hook, http_ok, stop_group, wait_until
from modelyard.devstack.services import ARTIFACTS, ENDPOINTS, TRACKING

SERVING = ServiceSpec("serving", "modelyard.serving.asgi:app", health_path="/ping")
BUCKET = "bench"


@dataclass
class Side:
    """One system under test: where its tracking API, artifacts API and process trees are."""

    name: str
    tracking_url: str
    artifacts_url: str
    #: Root pids of the process trees serving tracking + artifacts (one for MLflow, two for modelyard).
    pids: list[int]
    #: Name of its database on the shared PostgreSQL server.
    database: str
    #: S3 prefix its artifacts destination points at (s3://bench/<prefix>/...).
    s3_prefix: str
    #: Root pids of the process tree serving the artifacts API (the whole server for MLflow).
    artifact_pids: list[int] = field(default_factory=list)
    serving_url: str = ""
    serving_pids: list[int] = field(default_factory=list)


class ChildProcess:
    """A non-gunicorn server (MLflow's) in its own session, tied to our life, stopped as a group."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_path: Path, health_url: str
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.health_url = health_url
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def launch(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # MLflow execs `uvicorn`/`gunicorn` by name: its venv's bin goes first on PATH.
                env={
                    **os.environ,
                    **self.env,
                    "PATH": f"{mlflow_env.VENV / 'bin'}:{os.environ.get('PATH', '')}",
                },
                start_new_session=True,
                preexec_fn=death_signal_hook(signal.SIGTERM),
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        proc = self.proc
        assert proc is not None
        wait_until(
            lambda: http_ok(self.health_url),
            timeout=timeout,
            what=self.name,
            alive=lambda: proc.poll() is None,
            log_path=self.log_path,
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc.pid, sig=signal.SIGTERM, grace=20, proc=self.proc)
            self.proc = None


class BenchStack:
    """PostgreSQL + moto + MLflow server + modelyard tracking and artifacts services."""

    def __init__(self, work_dir: Path, logs: Path, workers: int = 2, say=print) -> None:  # type: ignore[no-untyped-def]
        self.work = work_dir
        self.workers = workers
        self.say = say
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresServer(work_dir / "postgres" / "data", free_port(), tied_to_parent=True)
        self.s3 = S3Server(free_port(), self.logs / "moto.log", tied_to_parent=True)
        self._stoppers: list = []  # type: ignore[type-arg]
        self.mlflow: Side | None = None
        self.modelyard: Side | None = None
        #: modelyard's SageMaker-style endpoint service (the Deployments pages read it; not in any
        #: side's process trees: MLflow has no counterpart).
        self.endpoints_url = ""

    # --- life cycle -----------------------------------------------------------------------------
    def start(self) -> tuple[Side, Side]:
        mlflow_python = mlflow_env.ensure(self.say)
        os.environ.update(DUMMY_AWS_ENV)
        self.say("starting PostgreSQL and moto S3")
        self.postgres.start()
        self._stoppers.append(self.postgres.stop)
        self.s3.start()
        self._stoppers.append(self.s3.stop)
        self.s3.create_bucket(BUCKET)
        ml_db = self.postgres.create_database("bench_mlflow")
        my_db = self.postgres.create_database("bench_modelyard")

        aws = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL_S3": self.s3.endpoint}
        ml_port = free_port()
        mlflow = ChildProcess(
            "mlflow server",
            [
                str(mlflow_python.parent / "mlflow"),
                "server",
                # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; MLflow's venv has psycopg2.
                "--backend-store-uri",
                ml_db.replace("postgresql://", "postgresql+psycopg2://", 1),
                "--serve-artifacts",
                "--artifacts-destination",
                f"s3://{BUCKET}/mlflow",
                "--host",
                LOOPBACK,
                "--port",
                str(ml_port),
                "--workers",
                str(self.workers),
                # uvicorn's supervisor kills a worker that misses its 5 s health ping; at load 15-20
                # on 2 cores (other engineers' suites) it killed busy workers mid-benchmark
                # ("Child process died", connections closed without a response).
                "--uvicorn-opts",
                "--timeout-worker-healthcheck 60",
            ],  # fmt: skip
            {**aws, "MLFLOW_S3_ENDPOINT_URL": self.s3.endpoint},
            self.logs / "mlflow-server.log",
            f"http://{LOOPBACK}:{ml_port}/health",
        )
        common = {
            **aws,
            "MODELYARD_S3_ENDPOINT_URL": self.s3.endpoint,
            "MODELYARD_S3_ADDRESSING_STYLE": "path",
        }
        endpoints = GunicornService(
            ENDPOINTS,
            free_port(),
            self.logs / "modelyard-endpoints.log",
            env={**common, "MODELYARD_ENDPOINTS_STATE_DIR": str(self.work / "endpoints")},
            workers=1,
            tied_to_parent=True,
        )
        tracking = GunicornService(
            TRACKING,
            free_port(),
            self.logs / "modelyard-tracking.log",
            env={
                **common,
                "MODELYARD_BACKEND_STORE_URI": my_db,
                "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/",
                # The team-stack shape: artifacts go to the separate artifacts service below; the
                # UI reads model files from the same destination, as in `make up`.
                "MODELYARD_SERVE_ARTIFACTS": "false",
                "MODELYARD_ARTIFACTS_DESTINATION": f"s3://{BUCKET}/modelyard",
                "MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS": "true",
                "AWS_ENDPOINT_URL_SAGEMAKER": endpoints.url,
                "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoints.url,
            },
            workers=self.workers,
            tied_to_parent=True,
        )
        artifacts = GunicornService(
            ARTIFACTS,
            free_port(),
            self.logs / "modelyard-artifacts.log",
            # Presigned downloads on: the proxy rows read `/artifacts/...` as before, and the presigned
            # rows time the mlflow client's way to the same files (`workloads/artifacts.presigned_client`).
            env={**common, "MODELYARD_ARTIFACTS_DESTINATION": f"s3://{BUCKET}/modelyard",
                 "MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS": "true"},  # fmt: skip
            workers=self.workers,
            tied_to_parent=True,
        )
        self.say(f"starting mlflow server and modelyard tracking + artifacts ({self.workers} workers each)")
        for proc in (mlflow, tracking, artifacts, endpoints):
            proc.launch()
            self._stoppers.append(proc.stop)
        mlflow.wait_ready()
        tracking.wait_ready(timeout=120)
        artifacts.wait_ready(timeout=120)
        endpoints.wait_ready(timeout=120)
        self.endpoints_url = endpoints.url
        self.mlflow = Side("mlflow", f"http://{LOOPBACK}:{ml_port}", f"http://{LOOPBACK}:{ml_port}",
                           [mlflow.pid], "bench_mlflow", "mlflow", [mlflow.pid])  # fmt: skip
        self.modelyard = Side("modelyard", tracking.url, artifacts.url, [tracking.pid or 0, artifacts.pid or 0],
                              "bench_modelyard", "modelyard", [artifacts.pid or 0])  # fmt: skip
        return self.mlflow, self.modelyard

    def start_serving(self, model_dir: Path) -> None:
        """`mlflow models serve` and modelyard's serving service on the same model directory."""
        assert self.mlflow is not None and self.modelyard is not None
        mlflow_python = mlflow_env.bin_path("python")
        ml_port = free_port()
        ml_serve = ChildProcess(
            "mlflow models serve",
            [
                str(mlflow_python.parent / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "-h",
                LOOPBACK,
                "-p",
                str(ml_port),
                "-w",
                str(self.workers),
            ],  # fmt: skip
            {},
            self.logs / "mlflow-serve.log",
            f"http://{LOOPBACK}:{ml_port}/ping",
        )
        my_serve = GunicornService(
            SERVING,
            free_port(),
            self.logs / "modelyard-serving.log",
            env={"MODELYARD_MODEL_URI": str(model_dir)},
            workers=self.workers,
            tied_to_parent=True,
        )
        for proc in (ml_serve, my_serve):
            proc.launch()
            self._stoppers.append(proc.stop)
        ml_serve.wait_ready()
        my_serve.wait_ready(timeout=120)
        self.mlflow.serving_url, self.mlflow.serving_pids = f"http://{LOOPBACK}:{ml_port}", [ml_serve.pid]
        self.modelyard.serving_url, self.modelyard.serving_pids = my_serve.url, [my_serve.pid or 0]

    def stop(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                self.say(f"while stopping: {exc}")

    def psql(self, database: str):  # type: ignore[no-untyped-def]
        """A psycopg connection to one side's database (seeding and ANALYZE)."""
        import psycopg

        return psycopg.connect(
            f"host={LOOPBACK} port={self.postgres.port} user=postgres dbname={database}", autocommit=False
        )
