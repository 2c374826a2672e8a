"""How run-search cost grows with the number of AND terms, on a 10,000-run PostgreSQL store.

    .venv/bin/python -m bench.search_terms                 # 10/40/80/160 terms, 10,000 runs
    .venv/bin/python -m bench.search_terms --runs 1000 --terms 10 40

Starts its own PostgreSQL (`modelyard.devstack`, in a temp dir), seeds the runs/search corpus of the main
benchmark (`bench/seed.py`: 10 params, 10 metrics, 5 tags per run) by COPY, and times the first page
(100 runs, `order_by metrics.m1 DESC`, and in the default order) of a filter of N AND terms through the store's REST search path
(`search_runs_json`: the one statement the tracking service runs), median of 3 after one untimed run.
The terms cycle over metrics, params and tags, each true for most runs, so the planner cannot stop
early. The search limits are lifted for the measurement (the default `MODELYARD_SEARCH_MAX_TERMS` is 200)
and each statement gets 120 s. bench/README.md records the curve.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.seed import Corpus, analyze, seed_runs
from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import free_port
from modelyard.store.search.limits import SearchLimits, configure
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import upgrade
from modelyard.store.tracking.sql_store import SqlTrackingStore


def term(i: int) -> str:
    """The i-th term: true for most runs, and different from its neighbours."""
    kind = i % 3
    if kind == 0:
        return f"metrics.m{i % 10} >= {0.001 * (i % 7)}"
    if kind == 1:
        return f"params.p{1 + i % 9} != 'x{i}'"
    return "tags.team LIKE 'team-%'" if i % 2 else f"tags.stage != 'none-{i}'"


def filter_of(n: int) -> str:
    return " and ".join(term(i) for i in range(n))


def measure(
    store: SqlTrackingStore, experiment_id: str, n: int, order_by: list[str], repeats: int = 3
) -> tuple[float, int]:
    text = filter_of(n)
    page = store.search_runs_json([experiment_id], text, max_results=100, order_by=order_by)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        page = store.search_runs_json([experiment_id], text, max_results=100, order_by=order_by)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), len(page)


def cell(store: SqlTrackingStore, experiment_id: str, n: int, order_by: list[str]) -> str:
    try:
        seconds, count = measure(store, experiment_id, n, order_by)
    except Exception as exc:  # noqa: BLE001 - a timeout is a result too
        return f"failed: {str(exc).splitlines()[0][:60]}"
    return f"{seconds * 1000:.1f} ({count} runs)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--terms", type=int, nargs="+", default=[10, 40, 80, 160])
    args = parser.parse_args(argv)
    configure(SearchLimits(10**7, 10_000, 1_000, 10**6, 1_000))
    base = Path(tempfile.mkdtemp(prefix="modelyard-bench-terms-"))
    server = PostgresServer(base / "data", free_port(), durable=False, tied_to_parent=True)
    server.start()
    try:
        uri = server.create_database("terms")
        upgrade(uri)
        engine = create_engine_for(uri, statement_timeout=120)
        store = SqlTrackingStore(engine, default_artifact_root=str(base / "artifacts"))
        experiment_id = store.create_experiment("terms")
        with psycopg.connect(uri) as conn:
            seed_runs(conn, Corpus(args.runs), int(experiment_id), str(base / "artifacts"), int(time.time() * 1000))
            analyze(conn)
        print(f"{args.runs} runs; first page of 100 through search_runs_json; ms, median of 3")
        print("| AND terms | order_by metrics.m1 DESC | default order (start_time DESC) |")
        print("|---:|---:|---:|")
        for n in args.terms:
            by_metric = cell(store, experiment_id, n, ["metrics.m1 DESC"])
            default = cell(store, experiment_id, n, [])
            print(f"| {n} | {by_metric} | {default} |", flush=True)
        engine.dispose()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
