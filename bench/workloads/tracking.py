"""Write path: log-batch ingest with 1, 4 and 8 clients; single log-metric latency with one client."""

from __future__ import annotations

import json

from bench.httpc import Conn, HttpError
from bench.measure import connections_per_process, percentile, run_threads, timed
from bench.rows import Row, alternate, both, cpu_detail, cpu_row
from bench.stack import Side
from bench.workloads.common import API, create_experiment, create_run, now_ms

BATCH = 1000  # MLflow's per-request metric limit
KEYS = 10


def _batches(run_id: str, count: int, start_step: int) -> list[bytes]:
    """`count` pre-encoded log-batch bodies (JSON encoding stays out of the timed loop)."""
    ts = now_ms()
    bodies = []
    for b in range(count):
        step0 = start_step + b * (BATCH // KEYS)
        metrics = [
            {"key": f"k{k}", "value": (s * 0.001 + k) % 1.0, "timestamp": ts + s, "step": s}
            for s in range(step0, step0 + BATCH // KEYS)
            for k in range(KEYS)
        ]
        bodies.append(json.dumps({"run_id": run_id, "metrics": metrics}).encode())
    return bodies


def _post_all(conn: Conn, path: str, bodies: list[bytes]) -> list[float]:
    import time

    latencies = []
    for body in bodies:
        t = time.perf_counter()
        status, data = conn.request("POST", path, body, {"Content-Type": "application/json"})
        latencies.append(time.perf_counter() - t)
        if status != 200:
            raise HttpError(status, data, path)
    return latencies


def ingest(sides: list[Side], clients: int, total_batches: int, repeats: int) -> list[Row]:
    per_client = max(2, total_batches // clients)
    conns = {side.name: [Conn(side.tracking_url) for _ in range(clients)] for side in sides}
    experiments = {side.name: create_experiment(conns[side.name][0], f"ingest{clients}") for side in sides}

    spread: dict[str, list[list[int]]] = {side.name: [] for side in sides}

    def run(side: Side, r: int):  # type: ignore[no-untyped-def]
        cs = conns[side.name]
        run_ids = [create_run(c, experiments[side.name]) for c in cs]
        bodies = [_batches(run_ids[i], per_client, 0) for i in range(clients)]
        for c in cs:  # open every keep-alive connection before the clock starts
            c.call("GET", f"{API}/experiments/get?experiment_id={experiments[side.name]}")
        spread[side.name].append(connections_per_process(side.pids, cs[0].port))
        return timed(
            side.pids,
            clients * per_client,
            lambda: run_threads(clients, lambda i: _post_all(cs[i], f"{API}/runs/log-batch", bodies[i])),
        )

    samples = alternate(sides, repeats, run)
    for cs in conns.values():
        for c in cs:
            c.close()
    ml, my = both(samples, lambda s: s.count * BATCH / s.wall)
    rows = [
        Row(
            f"log-batch ingest, {clients} client{'s' if clients > 1 else ''}",
            "metrics/s",
            ml,
            my,
            True,
            target=">= 50k metrics/s" if clients == 4 else "",
            check=(lambda a, b: b >= 50_000) if clients == 4 else None,
            detail={
                **cpu_detail(samples, "batch"),
                "batches_per_repeat": clients * per_client,
                "connections_per_worker": spread,
            },
        )
    ]
    if clients == 4:
        rows.append(cpu_row("log-batch 1,000 metrics", samples, "batch"))
    return rows


#: Untimed log-metric requests at the start of each repeat, on the connection the timed ones use.
WARM_UP_REQUESTS = 5


def log_metric(sides: list[Side], requests: int, repeats: int) -> list[Row]:
    conns = {side.name: Conn(side.tracking_url) for side in sides}
    run_ids = {
        s.name: create_run(conns[s.name], create_experiment(conns[s.name], "logmetric")) for s in sides
    }
    path = f"{API}/runs/log-metric"

    def run(side: Side, r: int):  # type: ignore[no-untyped-def]
        conn = conns[side.name]
        ts = now_ms()
        per_repeat = WARM_UP_REQUESTS + requests
        bodies = [
            json.dumps(
                {
                    "run_id": run_ids[side.name],
                    "key": "loss",
                    "value": i * 0.5,
                    "timestamp": ts + i,
                    "step": r * per_repeat + i,
                }
            ).encode()  # fmt: skip
            for i in range(per_repeat)
        ]
        # A repeat's connection may be new and land on a worker that never logged a metric (or a run that
        # has none yet): that first request takes a colder path (2-7 ms against ~1 ms), on both sides.
        # Untimed, so the p99 is of steady-state requests rather than nearly the maximum of a few.
        _post_all(conn, path, bodies[:WARM_UP_REQUESTS])
        return timed(side.pids, requests, lambda: _post_all(conn, path, bodies[WARM_UP_REQUESTS:]))

    samples = alternate(sides, repeats, run)
    for c in conns.values():
        c.close()
    all_lat = {name: [x for s in ss for x in s.latencies] for name, ss in samples.items()}
    ml, my = both(samples, lambda s: s.count / s.wall)
    return [
        Row(
            "log-metric, 1 keep-alive client",
            "req/s",
            ml,
            my,
            True,
            ">= 700 req/s and >= 5x MLflow",
            lambda a, b: b >= 700 and b >= 5 * a,
            detail=cpu_detail(samples),
        ),  # fmt: skip
        Row(
            "log-metric p50",
            "ms",
            1000 * percentile(all_lat["mlflow"], 50),
            1000 * percentile(all_lat["modelyard"], 50),
            False,
        ),  # fmt: skip
        Row(
            "log-metric p99",
            "ms",
            1000 * percentile(all_lat["mlflow"], 99),
            1000 * percentile(all_lat["modelyard"], 99),
            False,
            "< 5 ms",
            lambda a, b: b < 5,
        ),  # fmt: skip
        cpu_row("log-metric", samples, at_most_ms=0.7),
    ]
