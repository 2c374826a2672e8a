"""`python -m bench.ab OLD_TREE NEW_TREE WORKLOAD...`: one change measured against its base, interleaved.

Both trees' services run side by side under real gunicorn (one worker each unless `--workers`), on one
PostgreSQL, and take turns: round r runs A then B, round r+1 B then A, so drifting load on a shared
machine falls on both. For each round it reads the CPU the service's process tree used (from /proc,
via psutil) and that PostgreSQL's processes used, per request, and keeps the latencies; it prints the
median of the rounds per side, and B/A. A tree is a checkout's root (its `src/` goes first on
PYTHONPATH): `git worktree add /tmp/base main` or `git archive main src | tar -x -C /tmp/base`.

Workloads: `log-metric` (one client, sequential calls), `registered-models-search` (100 models with
versions, tags and aliases; one page of 100), `experiments-search` (100 experiments with tags; one
page of 100), `invocations` (the bench's 10-feature sklearn model, 1 row, `dataframe_split`),
`run-chart` (the UI's whole-history series of a 100,000-step metric, as a run page's chart loads it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from bench.httpc import Conn
from bench.measure import percentile, tree_cpu_seconds
from modelyard.devstack import GunicornService, PostgresServer, free_port
from modelyard.devstack.services import TRACKING, ServiceSpec

API = "/api/2.0/mlflow"
SERVING = ServiceSpec("serving", "modelyard.serving.asgi:app", health_path="/ping")


@dataclass
class Result:
    cpu_ms: list[float] = field(default_factory=list)
    db_ms: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


@dataclass
class Workload:
    """`prepare(conn)` seeds a side and returns the request to repeat: (method, path, body)."""

    service: ServiceSpec
    requests: int
    prepare: Callable[[Conn], Callable[[Conn, int], tuple[str, str, bytes | None]]]
    #: Sent with every request besides Content-Type (the UI's JSON: a browser's Accept-Encoding).
    headers: dict[str, str] = field(default_factory=dict)


def _call(conn: Conn, method: str, path: str, body: object = None) -> dict:  # type: ignore[type-arg]
    return conn.call(method, path, body)  # type: ignore[no-any-return]


def _log_metric(conn: Conn) -> Callable[[Conn, int], tuple[str, str, bytes | None]]:
    experiment = _call(conn, "POST", f"{API}/experiments/create", {"name": f"ab-{time.time()}"})["experiment_id"]
    run = _call(conn, "POST", f"{API}/runs/create", {"experiment_id": experiment, "start_time": 1})
    run_id = run["run"]["info"]["run_id"]
    counter = iter(range(10**9))

    def request(_conn: Conn, _i: int) -> tuple[str, str, bytes | None]:
        step = next(counter)
        body = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1000 + step, "step": step}
        return "POST", f"{API}/runs/log-metric", json.dumps(body).encode()

    return request


def _run_chart(conn: Conn) -> Callable[[Conn, int], tuple[str, str, bytes | None]]:
    """A run with a 100,000-step metric (100 log-batch calls of 1,000), then what the run page's chart
    asks first: the whole history, bucketed (`/runs/{id}/metric-series`, the UI's JSON)."""
    experiment = _call(conn, "POST", f"{API}/experiments/create", {"name": f"ab-chart-{time.time()}"})["experiment_id"]
    run_id = _call(conn, "POST", f"{API}/runs/create", {"experiment_id": experiment, "start_time": 1})["run"]["info"]["run_id"]
    for start in range(0, 100_000, 1000):
        points = [{"key": "loss", "value": (s * 7919 % 1000) / 1000, "timestamp": 1000 + s, "step": s}
                  for s in range(start, start + 1000)]  # fmt: skip
        _call(conn, "POST", f"{API}/runs/log-batch", {"run_id": run_id, "metrics": points})
    path = f"/runs/{run_id}/metric-series?key=loss&x=step&points=1500"
    return lambda _conn, _i: ("GET", path, None)


def _registered_models(conn: Conn) -> Callable[[Conn, int], tuple[str, str, bytes | None]]:
    experiment = _call(conn, "POST", f"{API}/experiments/create", {"name": "ab-registry"})["experiment_id"]
    run = _call(conn, "POST", f"{API}/runs/create", {"experiment_id": experiment, "start_time": 1})["run"]
    root, run_id = run["info"]["artifact_uri"], run["info"]["run_id"]
    for i in range(100):
        name = f"ab-model-{i:03d}"
        _call(conn, "POST", f"{API}/registered-models/create", {"name": name, "tags": [{"key": "team", "value": "a"}]})
        for v in range(3):
            _call(conn, "POST", f"{API}/model-versions/create",
                  {"name": name, "source": f"{root}/m/{name}/{v}", "run_id": run_id})  # fmt: skip
        _call(conn, "POST", f"{API}/model-versions/transition-stage",
              {"name": name, "version": "2", "stage": "Production", "archive_existing_versions": False})  # fmt: skip
        _call(conn, "POST", f"{API}/registered-models/alias", {"name": name, "alias": "champion", "version": "3"})
    # What the mlflow client sends for `search_registered_models(max_results=100)`.
    query = urlencode({"max_results": 100, "filter": "tags.`mlflow.prompt.is_prompt` != 'true'"})
    return lambda _conn, _i: ("GET", f"{API}/registered-models/search?{query}", None)


def _experiments(conn: Conn) -> Callable[[Conn, int], tuple[str, str, bytes | None]]:
    for i in range(100):
        tags = [{"key": "team", "value": "a"}, {"key": "mlflow.note.content", "value": f"experiment {i}"}]
        _call(conn, "POST", f"{API}/experiments/create", {"name": f"ab-exp-{i:03d}", "tags": tags})
    body = json.dumps({"max_results": 100}).encode()
    return lambda _conn, _i: ("POST", f"{API}/experiments/search", body)


def _invocations(conn: Conn) -> Callable[[Conn, int], tuple[str, str, bytes | None]]:
    from bench.workloads.serving import payload

    body = payload(1)
    return lambda _conn, _i: ("POST", "/invocations", body)


WORKLOADS = {
    "log-metric": Workload(TRACKING, 2000, _log_metric),
    "run-chart": Workload(TRACKING, 20, _run_chart, {"Accept-Encoding": "gzip"}),
    "registered-models-search": Workload(TRACKING, 200, _registered_models),
    "experiments-search": Workload(TRACKING, 400, _experiments),
    "invocations": Workload(SERVING, 2000, _invocations),
}


def _save_model(path: Path) -> Path:
    """The bench's serving model, saved by the mlflow in this venv (MLflow's own format)."""
    import subprocess
    import sys

    from bench.workloads.serving import _SAVE_MODEL, FEATURES

    subprocess.run([sys.executable, "-c", _SAVE_MODEL.format(n=FEATURES), str(path)], check=True, capture_output=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("workloads", nargs="+", choices=sorted(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, help="requests per round (default: per workload)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    pg = PostgresServer(work / "pg" / "data", free_port(), durable=False, tied_to_parent=True)
    pg.start()
    model = _save_model(work / "model") if "invocations" in args.workloads else None
    trees = {"A": args.old.resolve(), "B": args.new.resolve()}
    try:
        for name in args.workloads:
            _run(name, WORKLOADS[name], trees, pg, work, model, args)
    finally:
        pg.stop()


def _run(name: str, workload: Workload, trees: dict[str, Path], pg: PostgresServer, work: Path,  # noqa: PLR0913
         model: Path | None, args: argparse.Namespace) -> None:  # fmt: skip
    services, conns, requests = {}, {}, {}
    try:
        for side, tree in trees.items():
            env = {"PYTHONPATH": str(tree / "src"), "MODELYARD_WEBHOOK_DELIVERY": "false"}
            if workload.service is SERVING:
                env["MODELYARD_MODEL_URI"] = str(model)
            else:
                env["MODELYARD_BACKEND_STORE_URI"] = pg.create_database(f"ab_{name.replace('-', '_')}_{side.lower()}")
                env["MODELYARD_DEFAULT_ARTIFACT_ROOT"] = str(work / f"artifacts-{side}")
            service = GunicornService(workload.service, free_port(), work / f"{name}-{side}.log", env=env,
                                      workers=args.workers, tied_to_parent=True)  # fmt: skip
            service.start(timeout=180)
            services[side] = service
            conns[side] = Conn(service.url)
            requests[side] = workload.prepare(conns[side])
        results = {side: Result() for side in trees}
        count = args.requests or workload.requests
        for _ in range(50):  # warm both sides: pools, caches, first-request learning
            for side in trees:
                conns[side].request(*requests[side](conns[side], 0), {"Content-Type": "application/json", **workload.headers})
        for r in range(args.rounds):
            for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                _round(services[side].pid, pg.pid, conns[side], requests[side], count, results[side],
                       workload.headers)  # fmt: skip
        _report(name, trees, results)
    finally:
        for conn in conns.values():
            conn.close()
        for service in services.values():
            service.stop()


def _round(pid: int | None, pg_pid: int | None, conn: Conn, request: Callable[[Conn, int], tuple[str, str, bytes | None]],  # noqa: E501
           count: int, result: Result, extra_headers: dict[str, str]) -> None:  # fmt: skip
    assert pid is not None and pg_pid is not None
    headers = {"Content-Type": "application/json", **extra_headers}
    cpu0, db0 = tree_cpu_seconds([pid]), tree_cpu_seconds([pg_pid])
    for i in range(count):
        method, path, body = request(conn, i)
        t = time.perf_counter()
        status, data = conn.request(method, path, body, headers)
        result.latencies.append(time.perf_counter() - t)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
    result.cpu_ms.append((tree_cpu_seconds([pid]) - cpu0) / count * 1000)
    result.db_ms.append((tree_cpu_seconds([pg_pid]) - db0) / count * 1000)


def _report(name: str, trees: dict[str, Path], results: dict[str, Result]) -> None:
    def line(side: str) -> dict[str, float]:
        res = results[side]
        return {
            "cpu_ms": statistics.median(res.cpu_ms),
            "db_ms": statistics.median(res.db_ms),
            "p50_ms": 1000 * percentile(res.latencies, 50),
            "p99_ms": 1000 * percentile(res.latencies, 99),
        }

    a, b = line("A"), line("B")
    print(f"\n{name}  (median of {len(results['A'].cpu_ms)} interleaved rounds)")
    for side, values in (("A", a), ("B", b)):
        shown = "  ".join(f"{k} {v:7.3f}" for k, v in values.items())
        rounds = ", ".join(f"{x:.3f}" for x in results[side].cpu_ms)
        print(f"  {side} {trees[side]}: {shown}   (cpu_ms per round: {rounds})")
    print("  B/A: " + "  ".join(f"{k} {b[k] / a[k]:.2f}" for k in a if a[k]))


if __name__ == "__main__":
    main()
