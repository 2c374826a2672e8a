"""REST calls both sides answer identically (the MLflow 2.0 API), shared by the workloads."""

from __future__ import annotations

import time
import uuid

from bench.httpc import Conn

API = "/api/2.0/mlflow"


def now_ms() -> int:
    return int(time.time() * 1000)


def create_experiment(conn: Conn, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return str(conn.call("POST", f"{API}/experiments/create", {"name": name})["experiment_id"])


def get_experiment(conn: Conn, experiment_id: str) -> dict:  # type: ignore[type-arg]
    return conn.call("GET", f"{API}/experiments/get?experiment_id={experiment_id}")["experiment"]


def create_run(conn: Conn, experiment_id: str) -> str:
    body = {"experiment_id": experiment_id, "start_time": now_ms()}
    return str(conn.call("POST", f"{API}/runs/create", body)["run"]["info"]["run_id"])
