"""Where modelyard's tracking server spends a request: py-spy on one live gunicorn worker.

    python -m bench.profile search|history|log-metric|log-batch [--seconds 12]

Starts PostgreSQL and the tracking service with one worker (so every request lands in the profiled
process), seeds what the workload reads, then loops the same request the benchmark times while
`py-spy record` samples the worker. Prints the hottest frames (self and inclusive) and keeps the raw
folded stacks in bench/results/profiles/<workload>.txt (load them into speedscope or flamegraph.pl).
py-spy is not a project dependency: point PYSPY at its binary or put `py-spy` on PATH
(`pip install py-spy` into any environment ships it).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.httpc import Conn
from bench.measure import tree
from bench.report import RESULTS
from bench.seed import Corpus, analyze, seed_history, seed_runs
from bench.workloads import search, tracking
from bench.workloads.common import API, create_experiment, create_run, get_experiment, now_ms
from modelyard.devstack import GunicornService, PostgresServer, free_port
from modelyard.devstack.services import TRACKING


def summarize(folded: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per frame from py-spy's raw (folded) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        leaf[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples; self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f[:150]}" for f, n in leaf.most_common(top)]
    lines.append("inclusive, modelyard frames:")
    lines += [
        f"  {100 * n / total:5.1f}%  {f[:150]}" for f, n in inclusive.most_common() if "modelyard/" in f
    ][:top]
    return "\n".join(lines)


def workload(name: str, conn: Conn, pg_conninfo: str) -> Callable[[], None]:
    """The request loop body for `name`, after seeding what it needs."""
    import psycopg

    experiment_id = create_experiment(conn, name)
    if name == "search":
        root = get_experiment(conn, experiment_id)["artifact_location"]
        with psycopg.connect(pg_conninfo) as pg:
            seed_runs(pg, Corpus(10_000), int(experiment_id), root, now_ms())
            analyze(pg)
        body = search._search_body(experiment_id, None)
        return lambda: _ok(
            conn.request("POST", f"{API}/runs/search", body, {"Content-Type": "application/json"})
        )
    run_id = create_run(conn, experiment_id)
    if name == "history":
        with psycopg.connect(pg_conninfo) as pg:
            seed_history(pg, run_id, "loss", 100_000, now_ms())
            analyze(pg)

        def fetch() -> None:
            token = None
            while True:
                query = f"run_id={run_id}&metric_key=loss" + (f"&page_token={token}" if token else "")
                token = conn.call("GET", f"{API}/metrics/get-history?{query}").get("next_page_token")
                if not token:
                    return

        return fetch
    step = iter(range(10**9))
    if name == "log-metric":
        return lambda: _ok(conn.request("POST", f"{API}/runs/log-metric", json.dumps(
            {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": now_ms(), "step": next(step)}).encode(),
            {"Content-Type": "application/json"}))  # fmt: skip
    return lambda: _ok(conn.request("POST", f"{API}/runs/log-batch", tracking._batches(run_id, 1, 100 * next(step))[0],
                                    {"Content-Type": "application/json"}))  # fmt: skip


def _ok(answer: tuple[int, bytes]) -> None:
    if answer[0] != 200:
        raise RuntimeError(answer[1][:300])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("workload", choices=("search", "history", "log-metric", "log-batch"))
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args(argv)
    pyspy = os.environ.get("PYSPY") or shutil.which("py-spy")
    if not pyspy:
        print(
            "py-spy not found: set PYSPY=/path/to/py-spy or put it on PATH (pip install py-spy)",
            file=sys.stderr,
        )
        return 2
    out_dir = RESULTS.parent / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="modelyard-profile-"))
    work.chmod(0o711)
    pg = PostgresServer(work / "pg" / "data", free_port(), tied_to_parent=True)
    service: GunicornService | None = None
    try:
        pg.start()
        uri = pg.create_database("profile")
        env = {"MODELYARD_BACKEND_STORE_URI": uri, "MODELYARD_SERVE_ARTIFACTS": "false",
               "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/"}  # fmt: skip
        service = GunicornService(
            TRACKING, free_port(), out_dir / "tracking.log", env=env, workers=1, tied_to_parent=True
        )
        service.start()
        worker = tree(service.pid or 0)[-1].pid
        with Conn(service.url) as conn:
            body = workload(
                args.workload, conn, f"host=127.0.0.1 port={pg.port} user=postgres dbname=profile"
            )
            body()  # warm: imports, statement caches, prepared statements
            folded = out_dir / f"{args.workload}.txt"
            spy = subprocess.Popen(
                [
                    pyspy,
                    "record",
                    "--pid",
                    str(worker),
                    "--duration",
                    str(args.seconds),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(folded),
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            time.sleep(1)
            count, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds - 2:
                body()
                count += 1
            elapsed = time.perf_counter() - t0
            spy.wait()
        print(
            f"{args.workload}: {count} iterations, {1000 * elapsed / max(1, count):.1f} ms each (wall, client side)"
        )
        print(summarize(folded))
        print(f"folded stacks: {folded}")
        return 0
    finally:
        if service is not None:
            service.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
