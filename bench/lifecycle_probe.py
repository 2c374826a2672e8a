"""`python -m bench.lifecycle_probe [--runs N] [--backend postgresql|sqlite] [--rounds R]`: where
`modelyard export` / `import` of an N-run experiment spend their time, per process.

Starts PostgreSQL (always: its processes are measured even when the tracking store is SQLite, where
they stay idle) and the tracking service (gunicorn, 2 workers, serving its own artifacts from a local
folder), seeds the bench's search corpus (10 params, 10 one-point metrics, 5 tags per run) into one
experiment, then exports it to a folder bundle and imports that under a new name, `rounds` times (`--tar`: each
round also exports to a streamed `.tar` right after the folder, and unpacks it as import would). For
each step it prints the wall time, runs/s, and the CPU per run of this process (the exporting or
importing client, all its threads), of the tracking service's process tree and of PostgreSQL's, read
from /proc through psutil, with the load average: on a shared machine the CPU per run is the steady
number, wall time is not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.httpc import Conn
from bench.measure import ServerCpu
from bench.seed import COLUMNS, Corpus, analyze, seed_runs
from bench.workloads.common import create_experiment, get_experiment, now_ms
from modelyard.devstack import GunicornService, PostgresServer, free_port
from modelyard.devstack.services import TRACKING


def _self_cpu() -> tuple[float, float]:
    """This process's (user, system) CPU seconds, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def measure(what: str, runs: int, servers: ServerCpu, fn: Callable[[], object]) -> dict[str, float]:
    """Run `fn` once: wall s, runs/s and CPU ms per run of this process (and of that its system
    part), of the tracking service's processes and of PostgreSQL's."""
    spent: list[tuple[int, int]] = []
    mine, t0 = _self_cpu(), time.perf_counter()
    with servers.measure(spent):
        fn()
    wall = time.perf_counter() - t0
    user, system = (after - before for after, before in zip(_self_cpu(), mine, strict=True))
    (tracking_ns, postgres_ns), = spent
    row = {"wall_s": wall, "runs_per_s": runs / wall, "client_ms": 1000 * (user + system) / runs,
           "client_system_ms": 1000 * system / runs, "tracking_ms": tracking_ns / 1e6 / runs,
           "postgres_ms": postgres_ns / 1e6 / runs}  # fmt: skip
    load = os.getloadavg()[0]
    cpu = "  ".join(f"{k[:-3]} {v:.3f}" for k, v in row.items() if k.endswith("_ms"))
    print(f"{what:<8} {runs:>6} runs  {wall:6.2f} s  {row['runs_per_s']:7.0f} runs/s   CPU ms/run: {cpu}"
          f"   (load {load:.1f})", flush=True)  # fmt: skip
    return row


def seed_sqlite(path: Path, corpus: Corpus, experiment_id: int, artifact_root: str) -> None:
    """The corpus's rows straight into the SQLite file the tracking service uses."""
    tables = corpus.rows(experiment_id, artifact_root, now_ms())
    with sqlite3.connect(path) as db:
        for table in ("runs", "params", "tags", "metrics", "latest_metrics"):
            columns = COLUMNS[table]
            marks = ",".join("?" * len(columns))
            db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", tables[table])


def _unpacked(bundle: Any) -> None:
    with bundle:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_probe", description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tar", action="store_true", help="Also export to a .tar each round, and unpack it.")
    args = parser.parse_args(argv)

    from modelyard.lifecycle import bundle_io
    from modelyard.lifecycle.export import export_bundle
    from modelyard.lifecycle.importer import import_bundle

    work = Path(tempfile.mkdtemp(prefix="modelyard-lcprobe-"))
    work.chmod(0o711)
    postgres = PostgresServer(work / "postgres" / "data", free_port(), tied_to_parent=True)
    tracking = None
    try:
        postgres.start()
        if args.backend == "postgresql":
            store = postgres.create_database("lcprobe")
        else:
            store = f"sqlite:///{work / 'tracking.db'}"
        tracking = GunicornService(
            TRACKING, free_port(), work / "tracking.log",
            env={"MODELYARD_BACKEND_STORE_URI": store, "MODELYARD_ARTIFACTS_DESTINATION": str(work / "artifacts"),
                 "MODELYARD_SERVE_ARTIFACTS": "true", "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/"},
            workers=args.workers, tied_to_parent=True,
        )  # fmt: skip
        tracking.start(timeout=120)
        with Conn(tracking.url) as conn:
            experiment_id = create_experiment(conn, "probe")
            experiment = get_experiment(conn, experiment_id)
        corpus = Corpus(args.runs, seed=43)
        if args.backend == "postgresql":
            import psycopg

            with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname=lcprobe") as pg:
                seed_runs(pg, corpus, int(experiment_id), experiment["artifact_location"], now_ms())
                analyze(pg)
        else:
            seed_sqlite(work / "tracking.db", corpus, int(experiment_id), experiment["artifact_location"])
        servers = ServerCpu(tracking.pid or 0, postgres.pid or 0)
        print(f"{args.backend}, {args.runs:,} runs, {args.workers} tracking workers", flush=True)
        for _ in range(args.rounds):
            bundle = work / f"bundle-{uuid.uuid4().hex[:6]}"
            measure("export", args.runs, servers, lambda b=bundle: export_bundle(tracking.url, str(b), [experiment["name"]]))  # type: ignore[union-attr]
            if args.tar:
                tar = work / f"{bundle.name}.tar"
                measure("tar", args.runs, servers, lambda t=tar: export_bundle(tracking.url, str(t), [experiment["name"]]))  # type: ignore[union-attr]
                measure("untar", args.runs, servers, lambda t=tar: _unpacked(bundle_io.opened(str(t))))
                tar.unlink()
            folder = next((bundle / "experiments").iterdir())
            meta = json.loads((folder / "experiment.json").read_text())
            meta["name"] = f"{meta['name']}-{uuid.uuid4().hex[:6]}"
            (folder / "experiment.json").write_text(json.dumps(meta))
            measure("import", args.runs, servers, lambda b=bundle: import_bundle(str(b), tracking.url))  # type: ignore[union-attr]
            shutil.rmtree(bundle, ignore_errors=True)
    finally:
        if tracking is not None:
            tracking.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
