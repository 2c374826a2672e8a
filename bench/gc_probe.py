"""`python -m bench.gc_probe [--runs N] [--files F] [--live L] [--dry-run]`: `modelyard gc` alone, without
the rest of the lifecycle workload (issue #19, "gc of 10,000 deleted runs ... finishes in minutes").

Starts its own PostgreSQL and moto S3 server, makes one experiment whose artifacts are proxied to
`s3://probe/artifacts`, seeds N runs by COPY (the bench corpus: 10 params, 10 metrics, 5 tags each),
puts F files of 1 KB under each run's folder, marks the runs deleted (and, with `--live L`, seeds L
more runs with files that stay active, interleaved with the deleted ones by id), then runs the function
`modelyard gc` runs (`lifecycle.gc.collect`) in this process. Prints the wall time, this process's CPU,
its peak RSS growth during gc, the S3 requests gc made by operation (counted on boto3's shared client),
and the load average before and after; then checks that exactly the deleted runs' objects and rows are
gone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.seed import Corpus, analyze, seed_runs
from bench.workloads.common import now_ms
from bench.workloads.lifecycle import _run_sampling_rss
from modelyard.devstack import DUMMY_AWS_ENV, PostgresServer, S3Server, free_port

BUCKET = "probe"


def _count_calls(client: Any) -> tuple[Counter[str], Counter[str]]:
    """S3 requests on `client` from now on by operation: (how many, seconds waited for them in total)."""
    calls: Counter[str] = Counter()
    waited: Counter[str] = Counter()
    started = threading.local()

    def before(model: Any, **_: Any) -> None:
        calls.update([model.name])
        started.at = time.perf_counter()

    def after(model: Any, **_: Any) -> None:
        waited[model.name] += round(time.perf_counter() - started.at, 3)

    client.meta.events.register("before-call.s3", before)
    client.meta.events.register("after-call.s3", after)
    return calls, waited


def _keys(s3: Any, prefix: str) -> int:
    return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_probe", description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--live", type=int, default=0, help="active runs with files in the same experiment")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)

    import psycopg

    from modelyard.artifact_repos.s3_client import get_s3_client
    from modelyard.lifecycle import gc as collector
    from modelyard.store.sql.engine import create_engine_for
    from modelyard.store.sql.migrate import upgrade
    from modelyard.store.tracking.sql_store import SqlTrackingStore

    work = Path(tempfile.mkdtemp(prefix="modelyard-gcprobe-"))
    work.chmod(0o711)
    postgres = PostgresServer(work / "postgres" / "data", free_port(), durable=False, tied_to_parent=True)
    s3_server = S3Server(free_port(), work / "moto.log", tied_to_parent=True)
    try:
        postgres.start()
        s3_server.start()
        s3_server.create_bucket(BUCKET)
        os.environ.update(DUMMY_AWS_ENV)
        os.environ["MODELYARD_S3_ENDPOINT_URL"] = s3_server.endpoint
        uri = postgres.create_database("gcprobe")
        upgrade(uri)
        store = SqlTrackingStore.from_uri(uri, default_artifact_root="mlflow-artifacts:/")
        experiment_id = store.create_experiment("probe")
        location = store.get_experiment(experiment_id).artifact_location
        with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname=gcprobe") as pg:
            seed_runs(pg, Corpus(args.runs, seed=41), int(experiment_id), location, now_ms())
            pg.execute("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = 0")
            pg.commit()
            if args.live:
                seed_runs(pg, Corpus(args.live, seed=42), int(experiment_id), location, now_ms())
            analyze(pg)
            ids = [r for (r,) in pg.execute("SELECT run_uuid FROM runs")]
        s3 = s3_server.client()
        keys = [f"artifacts/{experiment_id}/{run_id}/artifacts/part-{i}.txt" for run_id in ids for i in range(args.files)]
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            for _ in pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 1024), keys):
                pass  # the responses are not kept
        print(f"seeded {len(ids):,} runs, {len(keys):,} objects in {time.monotonic() - started:.1f} s", flush=True)

        engine = create_engine_for(uri)
        calls, waited = _count_calls(get_s3_client())
        selection = collector.Selection(experiment_ids=[experiment_id])
        load = os.getloadavg()
        wall, cpu, growth = _run_sampling_rss(
            lambda: collector.collect(engine, f"s3://{BUCKET}/artifacts", selection, dry_run=args.dry_run)
        )
        after = os.getloadavg()
        left = _keys(s3, f"artifacts/{experiment_id}/")
        with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname=gcprobe") as pg:
            rows = pg.execute("SELECT count(*) FROM runs").fetchone()[0]  # type: ignore[index]
        print(f"gc{' --dry-run' if args.dry_run else ''} of {args.runs:,} runs x {args.files} files "
              f"({args.live:,} live): {wall:.1f} s, {cpu:.1f} s CPU, peak RSS growth {growth:.1f} MB; "
              f"S3 calls {dict(sorted(calls.items()))} waited {dict(sorted(waited.items()))} s; load {load[0]:.1f} -> {after[0]:.1f}; "
              f"left {left:,} objects, {rows:,} runs", flush=True)  # fmt: skip
        expected = (len(keys), len(ids)) if args.dry_run else (args.live * args.files, args.live)
        if (left, rows) != expected:
            raise AssertionError(f"expected {expected} objects and runs left, found {(left, rows)}")
    finally:
        s3_server.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
