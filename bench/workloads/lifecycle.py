"""Storage lifecycle (issue #19, "Performance"): `modelyard gc` of deleted runs with their files, and
`modelyard export` / `import` of a whole experiment, on modelyard's side only (MLflow has neither:
`mlflow gc` leaves files behind and export-import is a separate project).

- gc: `runs` deleted runs (10 params, 10 metrics, 5 tags each, written by COPY) with `files` small
  files each in the artifacts bucket (the S3 server, under the runs' own folders), removed by the
  same function `modelyard gc` runs (`lifecycle.gc.collect`), in this process; the row shows the
  seconds and the growth of this process's peak RSS over the gc (flat memory: the same at 10x the runs).
- export / import: a `runs`-run experiment (the search workload's corpus, by COPY), exported to a
  folder bundle through the tracking service's REST API and imported back under a new experiment
  name, by the functions `modelyard export` / `import` run, in this process; runs per second each,
  and the CPU per run of each process: this one (the exporting/importing client, with its system
  time apart: the run folders' filesystem work), the tracking service's, PostgreSQL's. No artifacts:
  the target excludes artifact bytes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from bench.httpc import Conn
from bench.measure import ServerCpu
from bench.rows import Row
from bench.seed import Corpus, analyze, seed_runs
from bench.stack import BUCKET, BenchStack, Side
from bench.workloads.common import create_experiment, get_experiment, now_ms

GC_TARGET_S = 300.0
RUNS_PER_S_TARGET = 1000.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_sampling_rss(fn: Callable[[], object]) -> tuple[float, float, float]:
    """Run `fn` in this process: (wall s, this process's CPU s, its RSS growth in MB at the peak)."""
    me = psutil.Process()
    base = me.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], me.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return time.perf_counter() - t0, _cpu_s() - cpu0, (max(peak[0], me.memory_info().rss) - base) / 2**20


def _experiment(stack: BenchStack, side: Side, corpus: Corpus, prefix: str) -> tuple[str, str, str]:
    """A new experiment with the corpus's runs: (id, name, artifact location)."""
    with Conn(side.tracking_url) as conn:
        experiment_id = create_experiment(conn, prefix)
        experiment = get_experiment(conn, experiment_id)
    with stack.psql(side.database) as pg:
        seed_runs(pg, corpus, int(experiment_id), experiment["artifact_location"], now_ms())
        analyze(pg)
    return experiment_id, experiment["name"], experiment["artifact_location"]


def gc(stack: BenchStack, side: Side, runs: int, files: int) -> list[Row]:
    import boto3

    from modelyard.lifecycle import gc as collector
    from modelyard.store.sql.engine import create_engine_for

    experiment_id, _, _ = _experiment(stack, side, Corpus(runs, seed=41), "gc")
    with stack.psql(side.database) as pg:
        ids = [r[0] for r in pg.execute("SELECT run_uuid FROM runs WHERE experiment_id = %s", (int(experiment_id),))]
        pg.execute("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = 0 WHERE experiment_id = %s", (int(experiment_id),))
        pg.commit()
    s3 = boto3.client("s3", endpoint_url=stack.s3.endpoint, region_name="us-east-1")
    keys = [f"{side.s3_prefix}/{experiment_id}/{run_id}/artifacts/part-{i}.txt" for run_id in ids for i in range(files)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 1024), keys))
    upload_s = time.monotonic() - started

    os.environ["MODELYARD_S3_ENDPOINT_URL"] = stack.s3.endpoint
    engine = create_engine_for(f"postgresql://postgres@127.0.0.1:{stack.postgres.port}/{side.database}")
    destination = f"s3://{BUCKET}/{side.s3_prefix}"
    selection = collector.Selection(experiment_ids=[experiment_id])
    wall, cpu, growth = _run_sampling_rss(lambda: collector.collect(engine, destination, selection, dry_run=False))
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{side.s3_prefix}/{experiment_id}/").get("KeyCount", 0)
    with stack.psql(side.database) as pg:
        rows_left = pg.execute("SELECT count(*) FROM runs WHERE experiment_id = %s", (int(experiment_id),)).fetchone()[0]
    if left or rows_left:
        raise AssertionError(f"gc left {left} objects and {rows_left} runs")
    detail = {"objects": len(keys), "upload_s": round(upload_s, 1), "gc_process_cpu_s": round(cpu, 2),
              "peak_rss_growth_mb": round(growth, 1)}  # fmt: skip
    return [
        Row(f"gc: {runs:,} deleted runs x {files} files", "s", None, wall, False, f"< {GC_TARGET_S:.0f} s",
            lambda a, b: b < GC_TARGET_S, note=f"{len(keys):,} objects", detail=detail, alone=True),
        Row(f"gc: peak RSS growth of the gc process ({runs:,} runs)", "MB", None, growth, False),
    ]  # fmt: skip


def export_import(stack: BenchStack, side: Side, runs: int, work: Path) -> list[Row]:
    from modelyard.lifecycle.export import export_bundle
    from modelyard.lifecycle.importer import import_bundle

    _, name, _ = _experiment(stack, side, Corpus(runs, seed=43), "export")
    # The tracking service does not serve the artifacts API here (the team-stack shape, no gateway).
    os.environ["MODELYARD_ARTIFACTS_URI"] = side.artifacts_url
    bundle = work / f"bundle-{uuid.uuid4().hex[:6]}"
    servers = ServerCpu(side.pids[0], stack.postgres.pid or 0)
    exported = _per_process(servers, lambda: export_bundle(side.tracking_url, str(bundle), experiments=[name]))
    folder = next((bundle / "experiments").iterdir())
    meta = json.loads((folder / "experiment.json").read_text())
    meta["name"] = f"{name}-imported"
    (folder / "experiment.json").write_text(json.dumps(meta))
    imported = _per_process(servers, lambda: import_bundle(str(bundle), side.tracking_url))
    with stack.psql(side.database) as pg:
        count = pg.execute(
            "SELECT count(*) FROM runs r JOIN experiments e USING (experiment_id) WHERE e.name = %s", (meta["name"],)
        ).fetchone()[0]
    shutil.rmtree(bundle, ignore_errors=True)
    if count != runs:
        raise AssertionError(f"imported {count} of {runs} runs")

    def row(what: str, sample: dict[str, float]) -> Row:
        wall = sample["wall"]
        detail = {"seconds": round(wall, 2), "load": round(os.getloadavg()[0], 1)}
        detail |= {f"{k}_cpu_ms_per_run": round(1000 * v / runs, 3) for k, v in sample.items() if k != "wall"}
        return Row(f"{what} a {runs:,}-run experiment (no artifacts)", "runs/s", None, runs / wall, True,
                   f"> {RUNS_PER_S_TARGET:,.0f}", lambda a, b: b > RUNS_PER_S_TARGET, detail=detail, alone=True)  # fmt: skip

    return [row("export", exported), row("import", imported)]


def _per_process(servers: ServerCpu, fn: Callable[[], object]) -> dict[str, float]:
    """Run `fn` in this process: wall s and CPU s of this process (user+system, and system apart), of
    the tracking service and of PostgreSQL."""
    spent: list[tuple[int, int]] = []
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with servers.measure(spent):
        fn()
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    (tracking_ns, postgres_ns), = spent
    system = after.ru_stime - before.ru_stime
    return {"wall": wall, "client": after.ru_utime - before.ru_utime + system, "client_system": system,
            "tracking": tracking_ns / 1e9, "postgres": postgres_ns / 1e9}  # fmt: skip


def lifecycle(stack: BenchStack, sides: list[Side], runs: int, gc_runs: int, files: int, work: Path) -> list[Row]:
    side = next(s for s in sides if s.name == "modelyard")
    return [*export_import(stack, side, runs, work), *gc(stack, side, gc_runs, files)]
