"""`python -m bench [--quick] [--scale N] [--only NAME ...]`: run every workload against MLflow's
server and modelyard's services side by side, print the table, write results/latest.json and the
README tables (the UI workload has its own, rewritten whenever it ran, also alone with `--only ui`).
Each workload that fails is reported in the table's footer instead of ending the run.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import report
from bench.httpc import Conn
from bench.measure import tree, tree_rss_bytes
from bench.rows import Row
from bench.seed import Corpus
from bench.stack import BenchStack, Side
from bench.workloads import artifacts, lifecycle, registry, search, serving, tracking, ui
from bench.workloads.common import API

WORKLOADS = (
    "memory",
    "ingest",
    "log-metric",
    "search",
    "history",
    "artifacts",
    "small-files",
    "serving",
    "registry",
    "ui",
    "lifecycle",
)


@dataclass(frozen=True)
class Plan:
    """Sizes per mode; `scale` multiplies the data sizes (runs, history, registry, small files)."""

    mode: str
    scale: int
    repeats: int
    ingest_batches: int
    log_metric_requests: int
    runs: int
    search_requests: int
    history_steps: int
    big_mb: int
    small_files: int
    serving_requests: int
    models: int
    versions_per_model: int
    registry_requests: int
    #: Cold browser loads per page and side (bench/workloads/ui.py); MLflow's pages take seconds each.
    ui_repeats: int
    #: Deleted runs (with 10 files each) for the gc row (bench/workloads/lifecycle.py).
    gc_runs: int

    @classmethod
    def make(cls, quick: bool, scale: int) -> Plan:
        if quick:
            return cls("quick", scale, 2, 4, 200, 10_000 * scale, 10, 100_000 * scale, 100, 200 * scale, 200,
                       10 * scale, 10, 10, 1, 1_000 * scale)  # fmt: skip
        return cls("full", scale, 3, 80, 400, 10_000 * scale, 100, 100_000 * scale, 200, 1000 * scale, 2000,
                   100 * scale, 10, 100, 3, 10_000 * scale)  # fmt: skip


def idle_memory(label: str, sides: list[Side], pids: Callable[[Side], list[int]]) -> Row:
    mb = {s.name: tree_rss_bytes(pids(s)) / 2**20 for s in sides}
    target, check = (
        ("< 400 MB", (lambda a, b: b < 400)) if label.startswith("idle RSS, tracking") else ("", None)
    )
    return Row(label, "MB", mb["mlflow"], mb["modelyard"], False, target, check)


def _command(proc: psutil.Process) -> str:
    """The start of a process's command line; one that just exited (a zombie) has none."""
    try:
        return " ".join(proc.cmdline()[:4])[:120]
    except psutil.Error:
        return f"<pid {proc.pid}, exited>"


def settle(sides: list[Side], say: Callable[[str], None], quiet: float = 5.0, limit: float = 90.0) -> None:
    """Wait until no side's process tree has changed for `quiet` seconds: `mlflow server` starts its job
    runner and huey consumers some seconds after it answers /health, and they belong to its footprint."""
    deadline = time.monotonic() + limit
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = tuple(sorted(p.pid for s in sides for pid in s.pids for p in tree(pid)))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)
    say(f"process trees still changing after {limit:.0f}s; measuring anyway")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts and 2 repeats (< 5 minutes)")
    parser.add_argument("--scale", type=int, default=1, help="multiply data sizes (runs, history, registry)")
    parser.add_argument("--repeats", type=int, help="override the mode's repeat count")
    parser.add_argument("--workers", type=int, default=2, help="workers per service, both sides")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, help="run only these workloads")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md's table")
    args = parser.parse_args(argv)
    plan = Plan.make(args.quick, args.scale)
    if args.repeats:
        plan = Plan(**{**plan.__dict__, "repeats": args.repeats, "ui_repeats": args.repeats})
    selected = set(args.only or WORKLOADS)
    # A plain SIGTERM (make interrupted, CI timeout) still stops every server through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()

    def say(msg: str) -> None:
        print(f"[bench {time.monotonic() - started:6.1f}s] {msg}", flush=True)

    logs = report.RESULTS.parent / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    work.chmod(0o711)  # PostgreSQL runs as `postgres` when we are root and must reach its data dir
    stack = BenchStack(work, logs, workers=args.workers, say=say)
    rows: list[Row] = []
    ui_rows: list[Row] = []
    errors: dict[str, str] = {}
    trees: dict[str, list[str]] = {}

    def step(name: str, fn: Callable[[], list[Row]]) -> None:
        if name not in selected:
            return
        say(f"{name} ...")
        try:
            new = fn()
        except Exception as exc:  # noqa: BLE001 - one broken workload must not hide the others
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"
            return
        rows.extend(new)
        if name == "ui":
            ui_rows.extend(new)
        print(report.text_table(new), flush=True)

    try:
        ml, my = stack.start()
        sides = [ml, my]
        trees = {s.name: [_command(p) for pid in s.pids for p in tree(pid)] for s in sides}
        for side in sides:  # one real request each, so "idle" means a warmed-up, serving process
            with Conn(side.tracking_url) as conn:
                conn.call("POST", f"{API}/experiments/search", {"max_results": 10})
        settle(sides, say)
        step(
            "memory",
            lambda: [idle_memory("idle RSS, tracking + artifacts service trees", sides, lambda s: s.pids)],
        )
        step(
            "ingest",
            lambda: [
                r for n in (1, 4, 8) for r in tracking.ingest(sides, n, plan.ingest_batches, plan.repeats)
            ],
        )
        step("log-metric", lambda: tracking.log_metric(sides, plan.log_metric_requests, plan.repeats))
        step(
            "search",
            lambda: search.search(stack, sides, Corpus(plan.runs), plan.search_requests, plan.repeats),
        )
        step("history", lambda: search.history(stack, sides, plan.history_steps, plan.repeats))
        step("artifacts", lambda: artifacts.big_file(stack, sides, work, plan.big_mb, plan.repeats))
        step("small-files", lambda: artifacts.small_files(stack, sides, plan.small_files, plan.repeats))
        step("registry", lambda: registry.registry(sides, plan.models, plan.versions_per_model,
                                                   plan.registry_requests, plan.repeats))  # fmt: skip
        step("ui", lambda: ui.ui(stack, sides, plan.runs, plan.history_steps, plan.ui_repeats, say))

        def serve() -> list[Row]:
            stack.start_serving(serving.save_model(work / "model"))
            serving.check_same_predictions(sides)
            time.sleep(1)
            out = [idle_memory("idle RSS, serving trees", sides, lambda s: s.serving_pids)]
            out += serving.invocations(sides, 1, 1, plan.serving_requests // 4, plan.repeats)
            out += serving.invocations(sides, 1, 8, plan.serving_requests, plan.repeats)
            out += serving.invocations(sides, 1000, 8, plan.serving_requests // 10, plan.repeats)
            return out

        step("serving", serve)
        # Last: gc of the full mode's 10,000 runs x 10 files is bound by moto's listings, which slow down
        # with the bucket's size (2026-12-05, 100,000 objects, load ~8: ~190 runs a minute, most of it
        # moto's CPU), so the rows above do not wait the better part of an hour for it.
        step("lifecycle", lambda: lifecycle.lifecycle(stack, sides, plan.runs, plan.gc_runs, 10, work))
        if "memory" in selected:
            rows.append(
                idle_memory("RSS after the workloads, tracking + artifacts trees", sides, lambda s: s.pids)
            )
    finally:
        say("stopping servers")
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)

    config = {**plan.__dict__, "workers": args.workers, "workloads": sorted(selected),
              "elapsed_s": round(time.monotonic() - started, 1), "process_trees": trees}  # fmt: skip
    doc = report.write(rows, config, errors)
    print()
    print(report.text_table(rows))
    for name, msg in errors.items():
        print(f"FAILED {name}: {msg}")
    print(f"\nwrote {report.RESULTS} ({config['elapsed_s']} s)")
    if not args.no_readme and not args.only:
        report.update_readme([r for r in rows if all(r is not u for u in ui_rows)],
                             {**doc, "errors": {k: v for k, v in errors.items() if k != "ui"}})  # fmt: skip
    if not args.no_readme and "ui" in selected:
        ui_errors = {k: v for k, v in errors.items() if k == "ui"}
        ui_doc = {**doc, "errors": ui_errors, "config": {**config, "repeats": plan.ui_repeats}}
        report.update_readme(ui_rows, ui_doc, report.UI_BEGIN, report.UI_END)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
