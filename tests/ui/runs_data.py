"""Runs for the runs-page tests, logged through the REST API (fast: one log-batch per run)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import requests

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass
class Logged:
    experiment_id: str
    name: str
    #: run id -> (name, loss, optimizer, team)
    runs: dict[str, tuple[str, float, str, str]] = field(default_factory=dict)


def api(base: str, path: str, body: dict) -> dict:
    response = requests.post(f"{base}/api/2.0/mlflow/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def create_experiment(base: str, prefix: str = "runs") -> tuple[str, str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return api(base, "experiments/create", {"name": name})["experiment_id"], name


def log_runs(base: str, count: int, *, finished: bool = True, prefix: str = "runs") -> Logged:
    """`count` runs: run-000.. with metric `loss` = i/1000, param `optimizer` cycling through
    OPTIMIZERS, tag `team` = t<i % 4>, started one second apart (run-000 first)."""
    experiment_id, name = create_experiment(base, prefix)
    logged = Logged(experiment_id, name)
    for i in range(count):
        run_name = f"run-{i:03d}"
        start = 1_700_000_000_000 + i * 1000
        run_id = api(
            base,
            "runs/create",
            {"experiment_id": experiment_id, "run_name": run_name, "start_time": start, "user_id": "ada"},
        )["run"]["info"]["run_id"]
        loss, optimizer, team = i / 1000, OPTIMIZERS[i % 3], f"t{i % 4}"
        api(
            base,
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": loss, "timestamp": start, "step": 0},
                    {"key": "accuracy", "value": 1 - loss, "timestamp": start, "step": 0},
                ],
                "params": [
                    {"key": "optimizer", "value": optimizer},
                    {"key": "batch size", "value": str(32 + i % 2)},
                ],
                "tags": [{"key": "team", "value": team}, {"key": "mlflow.source.name", "value": "train.py"}],
            },
        )
        if finished:
            api(base, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": start + 2500})
        logged.runs[run_id] = (run_name, loss, optimizer, team)
    return logged
