"""/invocations against `mlflow models serve` and modelyard's serving service on one model directory."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench import mlflow_env
from bench.httpc import Conn, HttpError
from bench.measure import connections_per_process, percentile, run_threads, timed
from bench.rows import Row, alternate, both, cpu_detail, cpu_row
from bench.stack import Side

FEATURES = 10

# Runs in MLflow's venv: the model directory is written by MLflow itself, so MLflow's own format is
# what modelyard must read.
_SAVE_MODEL = """
import sys
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
import mlflow.sklearn
from mlflow.models import infer_signature

rng = np.random.default_rng(3)
X = pd.DataFrame(rng.normal(size=(500, {n})), columns=[f"f{{i}}" for i in range({n})])
y = (X["f0"] + X["f1"] > 0).astype(int)
model = LogisticRegression().fit(X, y)
mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(X, model.predict(X)))
"""


def save_model(path: Path) -> Path:
    subprocess.run([str(mlflow_env.bin_path("python")), "-c", _SAVE_MODEL.format(n=FEATURES), str(path)], check=True,
                   capture_output=True)  # fmt: skip
    return path


def payload(rows: int) -> bytes:
    data = [[((r * 7 + c * 3) % 11) / 5 - 1 for c in range(FEATURES)] for r in range(rows)]
    return json.dumps(
        {"dataframe_split": {"columns": [f"f{c}" for c in range(FEATURES)], "data": data}}
    ).encode()


def _score(conn: Conn, body: bytes, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        t = time.perf_counter()
        status, data = conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        latencies.append(time.perf_counter() - t)
        if status != 200:
            raise HttpError(status, data, "POST /invocations")
    return latencies


def check_same_predictions(sides: list[Side]) -> None:
    body = payload(20)
    answers = []
    for side in sides:
        with Conn(side.serving_url) as conn:
            status, data = conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            if status != 200:
                raise HttpError(status, data, f"{side.name} /invocations")
            answers.append(json.loads(data))
    if answers[0] != answers[1]:
        raise AssertionError(f"predictions differ: mlflow {answers[0]} vs modelyard {answers[1]}")


def invocations(sides: list[Side], rows: int, clients: int, requests: int, repeats: int) -> list[Row]:
    body = payload(rows)
    per_client = max(1, requests // clients)
    conns = {s.name: [Conn(s.serving_url) for _ in range(clients)] for s in sides}

    spread: dict[str, list[list[int]]] = {side.name: [] for side in sides}

    def run(side: Side, r: int):  # type: ignore[no-untyped-def]
        cs = conns[side.name]
        for c in cs:  # warm connections; check the answer is one prediction per row
            status, data = c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            answer = json.loads(data)
            predictions = answer["predictions"] if isinstance(answer, dict) else answer
            if status != 200 or len(predictions) != rows:
                raise AssertionError(f"{side.name}: {rows} rows scored as {str(answer)[:200]}")
        spread[side.name].append(connections_per_process(side.serving_pids, cs[0].port))
        return timed(side.serving_pids, clients * per_client,
                     lambda: run_threads(clients, lambda i: _score(cs[i], body, per_client)))  # fmt: skip

    samples = alternate(sides, repeats, run)
    for cs in conns.values():
        for c in cs:
            c.close()
    ml, my = both(samples, lambda s: s.count / s.wall)
    label = (
        f"/invocations {rows:,} row{'s' if rows > 1 else ''}, {clients} client{'s' if clients > 1 else ''}"
    )
    target, check = ("", None)
    if rows == 1 and clients == 1:
        target, check = ">= 5x MLflow", (lambda a, b: b >= 5 * a)
    lat = {name: [x for s in ss for x in s.latencies] for name, ss in samples.items()}
    detail = {**cpu_detail(samples), "connections_per_worker": spread}
    out = [Row(label, "req/s", ml, my, True, target, check, detail=detail)]
    out.append(
        Row(
            f"{label} p99",
            "ms",
            1000 * percentile(lat["mlflow"], 99),
            1000 * percentile(lat["modelyard"], 99),
            False,
        )
    )
    if rows == 1 and clients == 1:
        out.append(cpu_row("/invocations 1 row", samples, at_most_ms=1.0))
    return out
