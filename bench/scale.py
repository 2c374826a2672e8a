"""`python -m bench.scale`: the first page of a run search at 10,000, 100,000 and 1,000,000 runs, for
every filter kind, in one PostgreSQL database that holds all three experiments (so each is searched
beside other large ones), plus the 10,000-run experiment measured alone before the others are loaded.

    .venv/bin/python -m bench.scale                       # build (~1.1M runs), measure, clean up
    .venv/bin/python -m bench.scale --keep /tmp/scale-db  # keep the cluster; the next run reuses it
    .venv/bin/python -m bench.scale --sizes 10000 100000  # smaller

What it does:
1. Starts its own PostgreSQL 15 (`modelyard.devstack`, 1 GB shared_buffers, not durable), migrates a
   database to this release's schema, creates the experiments through the store, and generates their
   runs inside PostgreSQL (`bench/scale_data.py`: generate_series, not the API; 4 params, 4 tags and
   4 metrics per run). A kept cluster built by an older release is upgraded first, and the upgrade's
   time printed: that is what a team's upgrade of a database of this size costs.
2. Starts modelyard's tracking service (gunicorn, 1 worker) on it and asks each case's first page of
   100 runs over REST (POST runs/search), in rounds that go through every size and case in turn.
   CPU per request = CPU time of the service's processes (every thread) + PostgreSQL's (every
   process, and the parallel workers that ended: the postmaster's reaped time) from /proc, which a busy
   shared machine does not inflate as it does wall time; p50 is wall time.
3. Runs each case once more in this process through the same store call the service makes
   (`search_runs_json`), with PostgreSQL's auto_explain reporting every statement's plan
   (EXPLAIN ANALYZE, BUFFERS) back to the client, and writes the plans to bench/scale-plans.md.
4. Measures the runs page's total (`run_table.count_runs`) in this process: its CPU plus the server
   side's (as above).
5. Prints the tables and replaces the "Search at scale" section of bench/README.md (`--no-readme`
   leaves it alone).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
from sqlalchemy import event

from bench import scale_data
from bench.httpc import Conn
from bench.workloads.common import API
from modelyard.devstack import GunicornService, PostgresServer, free_port
from modelyard.devstack.services import TRACKING
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import current_revision, upgrade
from modelyard.store.tracking import run_table
from modelyard.store.tracking.sql_store import SqlTrackingStore

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLANS = HERE / "scale-plans.md"
BEGIN, END = "<!-- bench-scale-results:begin -->", "<!-- bench-scale-results:end -->"
PAGE = 100
T0 = 1_700_000_000_000


@dataclass(frozen=True)
class Case:
    name: str
    filter: str
    order_by: tuple[str, ...] = ()


CASES = (
    Case("no filter", ""),
    Case("metric <", "metrics.m0 < 0.5"),
    Case("param =", "params.optimizer = 'adam'"),
    Case("param prefix", "params.config LIKE 'cfg-1%'"),
    Case("param =, 1 run in 1,000", "params.lr = '0.500'"),
    Case("tag =", "tags.team = 'team-3'"),
    Case("tag prefix", "tags.team LIKE 'team-3%'"),
    Case("attribute", "attributes.status = 'FAILED'"),
    Case("OR", "metrics.m0 < 0.1 OR tags.team = 'team-3'"),
    Case(
        "metric + param, by metric", "metrics.m0 < 0.52 and params.optimizer = 'adam'", ("metrics.m1 DESC",)
    ),
)


@dataclass
class Cell:
    """One (experiment, case): per-request CPU (ms) and wall time (ms) samples, rows on the page."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    rows: int = 0
    buffers: int | None = None
    total: str = ""
    total_cpu: float | None = None


# ---- CPU of the server side ------------------------------------------------------------------------
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process (a worker's thread pool runs the sync routes)."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _reaped_ns(pid: int) -> int:
    """CPU time of the children `pid` has waited for (cutime + cstime, clock ticks): PostgreSQL's
    parallel workers live for one query, and this is where their time ends up."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return (int(fields[13]) + int(fields[14])) * _TICK_NS


def _tree(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


class ServerCpu:
    """CPU time of the tracking service's processes and of PostgreSQL's (every backend, the parallel
    workers a query started and ended, the background processes, which are idle but for noise)."""

    def __init__(self, service_pid: int, postmaster_pid: int) -> None:
        self.service_pid = service_pid
        self.postmaster_pid = postmaster_pid

    def _now(self, pids: set[int]) -> dict[int, int]:
        return {pid: _cpu_ns(pid) for pid in pids}

    @contextmanager
    def measure(self, out: list[int]) -> Iterator[None]:
        before_pids = {*_tree(self.service_pid), *_tree(self.postmaster_pid)}
        before, reaped = self._now(before_pids), _reaped_ns(self.postmaster_pid)
        yield
        after = self._now(before_pids | {*_tree(self.service_pid), *_tree(self.postmaster_pid)})
        live = sum(ns - before.get(pid, 0) for pid, ns in after.items() if ns)
        # A process that ended inside the window counts through its parent's reaped time.
        gone = sum(before[pid] for pid in before_pids if after.get(pid, 0) == 0)
        out.append(live + _reaped_ns(self.postmaster_pid) - reaped - gone)


# ---- the database ----------------------------------------------------------------------------------
def experiment_name(size: int) -> str:
    return f"scale-{size}"


def build(uri: str, sizes: list[int], root: Path) -> dict[int, str]:
    """Create the experiments and load their runs; an experiment already loaded is kept."""
    engine = create_engine_for(uri)
    store = SqlTrackingStore(engine, str(root))
    ids: dict[int, str] = {}
    missing: list[int] = []
    for size in sizes:
        found = store.get_experiment_by_name(experiment_name(size))
        if found is None:
            ids[size] = store.create_experiment(experiment_name(size))
            missing.append(size)
        else:
            ids[size] = found.experiment_id
    engine.dispose()
    if not missing:
        return ids
    started = time.monotonic()
    with psycopg.connect(uri, autocommit=True) as conn:
        loaded = conn.execute("SELECT count(*) FROM runs").fetchone()[0]  # type: ignore[index]
        small = sum(missing) + loaded < 200_000
        with scale_data.without_indexes(conn) if not small else _nothing():
            for size in missing:
                t = time.monotonic()
                scale_data.load_experiment(conn, int(ids[size]), size, f"{root}/{ids[size]}", T0)
                _say(f"  loaded {size:,} runs in {time.monotonic() - t:.1f} s")
            t = time.monotonic()
        _say(f"  indexes in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        scale_data.vacuum_analyze(conn)
        _say(f"  VACUUM ANALYZE in {time.monotonic() - t:.1f} s")
        for size in missing:
            scale_data.check_documents(conn, int(ids[size]))
        database_size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    _say(f"built {', '.join(f'{s:,}' for s in missing)} runs in {time.monotonic() - started:.0f} s; "
        f"database {database_size[0] if database_size else '?'}")  # fmt: skip
    return ids


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ---- measuring ---------------------------------------------------------------------------------------
def _body(experiment_id: str, case: Case) -> bytes:
    body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": PAGE}
    if case.filter:
        body["filter"] = case.filter
    if case.order_by:
        body["order_by"] = list(case.order_by)
    return json.dumps(body).encode()


def measure_rest(
    url: str, cpu: ServerCpu, experiments: dict[str, str], rounds: int, requests: int
) -> dict[tuple[str, str], Cell]:
    """Every (experiment, case) `rounds` times, `requests` requests each, in turn."""
    cells = {(label, case.name): Cell() for label in experiments for case in CASES}
    headers = {"Content-Type": "application/json"}
    with Conn(url) as conn:
        for r in range(rounds):
            order = list(experiments.items())
            for label, experiment_id in order if r % 2 == 0 else reversed(order):
                for case in CASES:
                    cell = cells[(label, case.name)]
                    body = _body(experiment_id, case)
                    status, data = conn.request("POST", f"{API}/runs/search", body, headers)  # warm
                    assert status == 200, data[:300]
                    cell.rows = len(json.loads(data).get("runs", []))
                    spent: list[int] = []
                    with cpu.measure(spent):
                        for _ in range(requests):
                            t = time.perf_counter()
                            status, data = conn.request("POST", f"{API}/runs/search", body, headers)
                            cell.wall.append((time.perf_counter() - t) * 1000)
                    assert status == 200, data[:300]
                    cell.cpu.append(spent[0] / requests / 1e6)
    return cells


_PLAN_START = re.compile(r"^\S.*\(actual ")


def _top_buffers(plan: str) -> int:
    """Shared buffers hit + read by a plan's top node (which counts its children's): its lines come
    before the first child's `->`."""
    top = plan.split("->", 1)[0]
    found = re.search(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?", top)
    return sum(int(n) for n in found.groups() if n) if found else 0


_COSTS = re.compile(r"  \(cost=[0-9.]+\.\.[0-9.]+ rows=\d+ width=\d+\)")


def _plan_text(message: str) -> str:
    """The plan of an auto_explain message, without the query text nor the planner's cost estimates."""
    lines = message.splitlines()
    start = next((i for i, line in enumerate(lines) if _PLAN_START.match(line)), 0)
    return _COSTS.sub("", "\n".join(lines[start:]))


def explain_and_totals(
    uri: str,
    root: Path,
    experiments: dict[str, str],
    cells: dict[tuple[str, str], Cell],
    cpu: ServerCpu,
    rounds: int,
) -> dict[tuple[str, str], list[str]]:
    """Each case's plans through the store's own call (auto_explain, ANALYZE + BUFFERS), and the cost of
    the runs page's total."""
    notices: list[str] = []
    engine = create_engine_for(uri)

    @event.listens_for(engine, "connect")
    def _auto_explain(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        with dbapi_connection.cursor() as cur:
            cur.execute("LOAD 'auto_explain'")
            for setting in (
                "log_min_duration = 0",
                "log_analyze = on",
                "log_buffers = on",
                "log_timing = on",
            ):
                cur.execute(f"SET auto_explain.{setting}")
            cur.execute("SET client_min_messages = log")
        dbapi_connection.commit()

    explained = SqlTrackingStore(engine, str(root))
    plans: dict[tuple[str, str], list[str]] = {}
    for label, experiment_id in experiments.items():
        for case in CASES:
            notices.clear()
            explained.search_runs_json(
                [experiment_id], case.filter, max_results=PAGE, order_by=list(case.order_by)
            )
            texts = [_plan_text(n) for n in notices if "actual" in n]
            plans[(label, case.name)] = texts
            cells[(label, case.name)].buffers = sum(_top_buffers(t) for t in texts) if texts else None
    engine.dispose()

    plain = create_engine_for(uri, pool_size=1, max_overflow=0)
    for label, experiment_id in experiments.items():
        for case in CASES:
            spent: list[float] = []
            answer: Any = None
            for _ in range(rounds):
                server: list[int] = []
                own = time.process_time_ns()
                with cpu.measure(server):
                    answer = run_table.count_runs(plain, [experiment_id], case.filter, None)
                spent.append((time.process_time_ns() - own + server[0]) / 1e6)
            cell = cells[(label, case.name)]
            cell.total = _total_text(answer)
            cell.total_cpu = statistics.median(spent)
    plain.dispose()
    return plans


def _total_text(answer: Any) -> str:
    if isinstance(answer, int):
        return f"{answer:,}"
    return f"{'' if answer.exact else '~'}{answer.value:,}"


# ---- report ------------------------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def tables(cells: dict[tuple[str, str], Cell], labels: list[str]) -> str:
    """Three tables, a row per case and a column per experiment: CPU (and p50), buffers, totals."""
    parts: list[tuple[str, Callable[[Cell], str]]] = [
        ("Server + database CPU per first page of 100 runs, ms (median over rounds); p50 wall ms in brackets:",
         lambda c: f"{_median(c.cpu):.2f} ({_median(c.wall):.1f})"),
        ("PostgreSQL shared buffers read per page (its statements, EXPLAIN ANALYZE); rows on the page:",
         lambda c: f"{c.buffers if c.buffers is not None else '?'} ({c.rows})"),
        ("The runs page's total (`run_table.count_runs`, in process; `~`: an estimate) and its CPU ms "
         "(this process + the server side):",
         lambda c: f"{c.total} ({c.total_cpu:.1f})" if c.total_cpu is not None else ""),
    ]  # fmt: skip
    out: list[str] = []
    for title, cell in parts:
        out += [title, "", "| case | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        for case in CASES:
            out.append(
                f"| {case.name} | " + " | ".join(cell(cells[(label, case.name)]) for label in labels) + " |"
            )
        out.append("")
    return "\n".join(out).rstrip()


def write_plans(plans: dict[tuple[str, str], list[str]], header: str) -> None:
    out = ["# Plans of `python -m bench.scale`", "", header, "",
           "Each statement a first page ran (auto_explain: EXPLAIN ANALYZE, BUFFERS), per case and experiment.", ""]  # fmt: skip
    for case in CASES:
        out += [
            f"## {case.name}: `{case.filter or '(none)'}`"
            + (f" order by `{', '.join(case.order_by)}`" if case.order_by else ""),
            "",
        ]
        for (label, name), texts in plans.items():
            if name != case.name:
                continue
            out += [f"### {label}", ""]
            for text in texts:
                out += ["```", text, "```", ""]
    PLANS.write_text("\n".join(out))


def update_readme(section: str) -> None:
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    block = f"{BEGIN}\n{section}\n{END}"
    text = (
        text[:start] + block + text[end + len(END) :]
        if start >= 0 and end >= 0
        else text + "\n" + block + "\n"
    )
    README.write_text(text)


# ---- main ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10, help="requests per case and round")
    parser.add_argument("--keep", type=Path, help="keep the cluster in this folder (reused when it exists)")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    base = args.keep or Path(tempfile.mkdtemp(prefix="modelyard-bench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(
        base / "data", free_port(), durable=False, tied_to_parent=True, shared_buffers="1GB"
    )
    server.start()
    service: GunicornService | None = None
    try:
        uri = server.uri("scale") if server.database_exists("scale") else server.create_database("scale")
        engine = create_engine_for(uri)
        before = current_revision(engine)
        t = time.monotonic()
        upgrade(uri)
        _say(f"schema {before} -> {current_revision(engine)} in {time.monotonic() - t:.1f} s")
        engine.dispose()
        root = base / "artifacts"
        fresh = not _experiment_exists(uri, experiment_name(sizes[-1]))
        service = GunicornService(
            TRACKING, free_port(), base / "tracking.log",
            env={"MODELYARD_BACKEND_STORE_URI": uri, "MODELYARD_ARTIFACTS_DESTINATION": str(root)},
            workers=1, tied_to_parent=True,
        )  # fmt: skip
        service.start(timeout=120)
        assert service.pid is not None
        cells: dict[tuple[str, str], Cell] = {}
        plans: dict[tuple[str, str], list[str]] = {}
        assert server.pid is not None
        cpu = ServerCpu(service.pid, server.pid)
        labels: dict[str, str] = {}
        if fresh and len(sizes) > 1:
            # The smallest experiment alone in the database first, then beside the large ones.
            ids = build(uri, sizes[:1], root)
            alone = {f"{sizes[0]:,} alone": ids[sizes[0]]}
            cells.update(measure_rest(service.url, cpu, alone, args.rounds, args.requests))
            plans.update(explain_and_totals(uri, root, alone, cells, cpu, 3))
            labels.update(alone)
        ids = build(uri, sizes, root)
        sized = {f"{size:,}": ids[size] for size in sizes}
        cells.update(measure_rest(service.url, cpu, sized, args.rounds, args.requests))
        plans.update(explain_and_totals(uri, root, sized, cells, cpu, 3))
        labels.update(sized)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        header = (
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load}, git {_git_head()}"
        )
        section = f"Last run: {header}.\n\n{tables(cells, list(labels))}"
        print(section)
        write_plans(plans, header)
        if not args.no_readme:
            update_readme(section)
    finally:
        if service is not None:
            service.stop()
        server.stop()
        if args.keep is None:
            server.remove()
            shutil.rmtree(base, ignore_errors=True)
    return 0


def _say(text: str) -> None:
    print(text, flush=True)


def _experiment_exists(uri: str, name: str) -> bool:
    with psycopg.connect(uri) as conn:
        return conn.execute("SELECT 1 FROM experiments WHERE name = %s", (name,)).fetchone() is not None


def _git_head() -> str:
    result = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() or "?"


if __name__ == "__main__":
    raise SystemExit(main())
