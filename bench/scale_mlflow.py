"""MLflow's side of `python -m bench.scale --mlflow`: the same runs in MLflow 3.17.2's own schema, in a
database of the same PostgreSQL cluster, searched through `mlflow server` (its own venv,
`bench/mlflow_env.py`; one worker, as modelyard's side).

The schema is MLflow's: the server creates it on its first start; the experiments are created through
its REST API and the runs generated inside PostgreSQL (`scale_data.load_experiment(schema="mlflow")`,
its tables' indexes dropped for the load and built again). Each request is capped (`CAP_SECONDS`):
the database stops the statement (`statement_timeout` on MLflow's database) and the client stops
waiting; a capped cell is reported as such and not asked again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from bench import mlflow_env, scale_data
from bench.httpc import Conn
from bench.stack import ChildProcess
from modelyard.devstack import PostgresServer, free_port

DATABASE = "mlflow_scale"
#: Longest an MLflow request may take before the cell is reported as not finishing.
CAP_SECONDS = 30


class MlflowSide:
    """MLflow's database and `mlflow server` (started by `start`, stopped by `stop`)."""

    def __init__(self, server: PostgresServer, base: Path, say=print) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        self.base = base
        self.say = say
        self.uri = server.uri(DATABASE)
        self.process: ChildProcess | None = None
        self.url = ""

    def start(self) -> None:
        python = mlflow_env.ensure(self.say)
        if not self.server.database_exists(DATABASE):
            self.server.create_database(DATABASE)
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {DATABASE} SET statement_timeout = '{CAP_SECONDS}s'")
        port = free_port()
        self.process = ChildProcess(
            "mlflow server",
            [
                str(python.parent / "mlflow"), "server",
                # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; MLflow's venv has psycopg2.
                "--backend-store-uri", self.uri.replace("postgresql://", "postgresql+psycopg2://", 1),
                "--default-artifact-root", str(self.base / "mlflow-artifacts"),
                "--no-serve-artifacts",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--uvicorn-opts", "--timeout-worker-healthcheck 120",
            ],
            {},
            self.base / "mlflow-server.log",
            f"http://127.0.0.1:{port}/health",
        )  # fmt: skip
        self.process.launch()
        self.process.wait_ready(timeout=300)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def build(self, sizes: dict[str, int], root: str, t0: int) -> dict[str, str]:
        """Experiment ids by name; experiments missing are created (REST) and loaded (SQL)."""
        ids: dict[str, str] = {}
        missing: list[str] = []
        with Conn(self.url, timeout=CAP_SECONDS * 4) as conn:
            for name in sizes:
                status, data = conn.request(
                    "GET", f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
                )
                if status == 200:
                    ids[name] = json.loads(data)["experiment"]["experiment_id"]
                    continue
                ids[name] = conn.call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})[
                    "experiment_id"
                ]
                missing.append(name)
        if not missing:
            return ids
        started = time.monotonic()
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute("SET statement_timeout = 0")
            with scale_data.without_indexes(conn):
                for name in missing:
                    scale_data.load_experiment(conn, int(ids[name]), sizes[name], root, t0, schema="mlflow")
            scale_data.vacuum_analyze(conn)
        self.say(f"MLflow's database: loaded {', '.join(missing)} in {time.monotonic() - started:.0f} s")
        return ids
