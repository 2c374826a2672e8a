"""`python -m bench.scale`: the first page of a run search at 10,000, 100,000 and 1,000,000 runs, for
every filter kind and the searches around them (several experiments, every lifecycle stage, orders by
a param, a tag, an attribute), in one PostgreSQL database that holds all the experiments (so each is
searched beside other large ones), plus the 10,000-run experiment measured alone before the others
are loaded; and, with `--mlflow`, the same searches of the same runs through MLflow 3.17.2.

    .venv/bin/python -m bench.scale                       # build (~1.1M runs), measure, clean up
    .venv/bin/python -m bench.scale --keep /tmp/scale-db  # keep the cluster; the next run reuses it
    .venv/bin/python -m bench.scale --keep /tmp/scale-db --mlflow   # MLflow's side too
    .venv/bin/python -m bench.scale --sizes 10000 100000 --cases metric param  # smaller

What it does:
1. Starts its own PostgreSQL 15 (`modelyard.devstack`, 1 GB shared_buffers, not durable), migrates a
   database to this release's schema, creates the experiments through the store, and generates their
   runs inside PostgreSQL (`bench/scale_data.py`: generate_series, not the API; 4 params, 4 tags and
   4 metrics per run), plus a 10,000-run neighbour experiment for the searches of two experiments.
   A kept cluster built by an older release is upgraded first, and the upgrade's time printed.
2. Starts modelyard's tracking service (gunicorn, 1 worker) on it and asks each case's first page of
   100 runs over REST (POST runs/search). Interleaved: each round asks every case at every size in
   turn, one request each, the sizes' order rotating per round, so load that drifts on the shared
   machine falls on every size alike; CPU per request = CPU time of the service's processes (every
   thread) + PostgreSQL's (every process, and the parallel workers that ended: the postmaster's reaped
   time) from /proc, which a busy machine inflates less than wall time; p50 is wall time. The ratio
   of two sizes is the median of the rounds' ratios (with their interquartile range), so noise shows.
3. Runs each case once more in this process through the same store call the service makes
   (`search_runs_json`), with PostgreSQL's auto_explain reporting every statement's plan
   (EXPLAIN ANALYZE, BUFFERS) back to the client, and writes the plans to bench/scale-plans.md.
4. Measures the runs page's total (`run_table.count_runs`) in this process: its CPU plus the server
   side's (as above).
5. `--mlflow`: loads the same runs into MLflow's schema in a database of the same cluster and asks the
   same searches of `mlflow server` (1 worker), each request capped (`bench/scale_mlflow.py`).
6. Prints the tables and replaces the "Search at scale" section of bench/README.md (`--no-readme`
   leaves it alone).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event

from bench import scale_data, scale_report
from bench.httpc import Conn
from bench.measure import ServerCpu
from bench.scale_mlflow import CAP_SECONDS, MlflowSide
from bench.scale_report import Cell, cpu_text, median, ratio_text
from bench.workloads.common import API
from modelyard.devstack import GunicornService, PostgresServer, free_port
from modelyard.devstack.services import TRACKING
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import current_revision, upgrade
from modelyard.store.tracking import run_table
from modelyard.store.tracking.sql_store import SqlTrackingStore

PAGE = 100
T0 = 1_700_000_000_000
NEIGHBOURS, NEIGHBOUR_RUNS = "scale-neighbours", 10_000


@dataclass(frozen=True)
class Case:
    name: str
    filter: str = ""
    order_by: tuple[str, ...] = ()
    view: str = "ACTIVE_ONLY"
    #: Also search the 10,000-run neighbour experiment.
    neighbours: bool = False
    #: MLflow's grammar has it (no OR).
    mlflow: bool = True
    #: Costs the experiment, not the page (asked in fewer rounds).
    heavy: bool = False

    @property
    def what(self) -> str:
        parts = [f"`{self.filter}`" if self.filter else "no filter"]
        if self.order_by:
            parts.append(f"order by `{', '.join(self.order_by)}`")
        if self.view != "ACTIVE_ONLY":
            parts.append(self.view)
        if self.neighbours:
            parts.append("with the 10,000-run neighbour experiment")
        return ", ".join(parts)


CASES = (
    Case("no filter"),
    Case("metric <", "metrics.m0 < 0.5"),
    Case("param =", "params.optimizer = 'adam'"),
    Case("param prefix", "params.config LIKE 'cfg-1%'"),
    Case("param =, 1 run in 1,000", "params.lr = '0.500'"),
    Case("param =, 150 runs at every size", "params.lr = '1.000'"),
    Case("tag =", "tags.team = 'team-3'"),
    Case("tag prefix", "tags.team LIKE 'team-3%'"),
    Case("attribute", "attributes.status = 'FAILED'"),
    Case("OR", "metrics.m0 < 0.1 OR tags.team = 'team-3'", mlflow=False),
    Case(
        "metric + param, by metric", "metrics.m0 < 0.52 and params.optimizer = 'adam'", ("metrics.m1 DESC",)
    ),
    Case("2 experiments", neighbours=True),
    Case("2 experiments, tag =", "tags.team = 'team-3'", neighbours=True),
    Case("2 experiments, by metric", order_by=("metrics.m1 DESC",), neighbours=True),
    Case("all stages", view="ALL"),
    Case("all stages, param =", "params.optimizer = 'adam'", view="ALL"),
    Case("deleted only", view="DELETED_ONLY"),
    Case("by param, a value per run", order_by=("params.config",)),
    Case("by tag, 7 values", order_by=("tags.team DESC",), heavy=True),
    Case("by attribute", order_by=("attributes.run_name",), heavy=True),
    Case("by attribute, descending", order_by=("attributes.run_name DESC",), heavy=True),
    Case("by end time", order_by=("attributes.end_time DESC",), heavy=True),
    Case("by status", order_by=("attributes.status",)),
    Case("by status, descending", order_by=("attributes.status DESC",)),
    Case("by user", order_by=("attributes.user_id",)),
    Case("by user, descending", order_by=("attributes.user_id DESC",)),
    Case("by status, all stages", order_by=("attributes.status DESC",), view="ALL"),
)
#: Rounds of the heavy cases (at most).
HEAVY_ROUNDS = 3


# ---- the database ----------------------------------------------------------------------------------
def experiment_name(size: int) -> str:
    return f"scale-{size}"


def build(uri: str, sizes: dict[str, int], root: Path) -> dict[str, str]:
    """Create the experiments (name -> runs) and load their runs; an experiment already loaded is kept."""
    engine = create_engine_for(uri)
    store = SqlTrackingStore(engine, str(root))
    ids: dict[str, str] = {}
    missing: list[str] = []
    for name in sizes:
        found = store.get_experiment_by_name(name)
        if found is None:
            ids[name] = store.create_experiment(name)
            missing.append(name)
        else:
            ids[name] = found.experiment_id
    engine.dispose()
    if not missing:
        return ids
    started = time.monotonic()
    with psycopg.connect(uri, autocommit=True) as conn:
        loaded = conn.execute("SELECT count(*) FROM runs").fetchone()[0]  # type: ignore[index]
        small = sum(sizes[n] for n in missing) + loaded < 200_000
        with scale_data.without_indexes(conn) if not small else _nothing():
            for name in missing:
                t = time.monotonic()
                scale_data.load_experiment(conn, int(ids[name]), sizes[name], f"{root}/{ids[name]}", T0)
                _say(f"  loaded {name} ({sizes[name]:,} runs) in {time.monotonic() - t:.1f} s")
            t = time.monotonic()
        _say(f"  indexes in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        scale_data.vacuum_analyze(conn)
        _say(f"  VACUUM ANALYZE in {time.monotonic() - t:.1f} s")
        for name in missing:
            scale_data.check_documents(conn, int(ids[name]))
        database_size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    _say(f"built {', '.join(missing)} in {time.monotonic() - started:.0f} s; "
        f"database {database_size[0] if database_size else '?'}")  # fmt: skip
    return ids


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ---- measuring ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """A server to ask: its URL, its CPU, the experiment searched per column label, the neighbour
    experiment's id, and the longest a request may take (None: no cap)."""

    name: str
    url: str
    cpu: ServerCpu
    experiments: dict[str, str]
    neighbours: str
    cap: float | None = None


def _body(side: Side, label: str, case: Case) -> bytes:
    ids = [side.experiments[label], *([side.neighbours] if case.neighbours else [])]
    body: dict[str, Any] = {"experiment_ids": ids, "max_results": PAGE}
    if case.filter:
        body["filter"] = case.filter
    if case.order_by:
        body["order_by"] = list(case.order_by)
    if case.view != "ACTIVE_ONLY":
        body["run_view_type"] = case.view
    return json.dumps(body).encode()


def measure_rest(
    sides: list[Side], cases: tuple[Case, ...], rounds: int
) -> list[dict[tuple[str, str], Cell]]:
    """Every (case, size) of every side once per round, the sizes' (and sides') order rotating; each
    request measured alone. One dict of cells per side."""
    labels = list(sides[0].experiments)
    cells = [{(label, case.name): Cell() for label in labels for case in cases} for _ in sides]
    headers = {"Content-Type": "application/json"}
    conns = [Conn(side.url, timeout=side.cap or 600) for side in sides]

    def ask(i: int, label: str, case: Case, measured: bool) -> None:
        side, conn, cell = sides[i], conns[i], cells[i][(label, case.name)]
        if cell.capped:
            return
        body = _body(side, label, case)
        spent: list[tuple[int, int]] = []
        t = time.perf_counter()
        try:
            with side.cpu.measure(spent):
                status, data = conn.request("POST", f"{API}/runs/search", body, headers)
        except TimeoutError:
            conn.close()
            cell.capped = True
            return
        wall = time.perf_counter() - t
        if status != 200:
            if side.cap is not None and wall >= side.cap * 0.9:
                cell.capped = True  # the database's statement_timeout stopped it
                return
            raise AssertionError(f"{side.name} {case.name} {label}: HTTP {status} {data[:300]!r}")
        cell.rows = len(json.loads(data).get("runs", []))
        if measured:
            cell.service.append(spent[0][0] / 1e6)
            cell.database.append(spent[0][1] / 1e6)
            cell.wall.append(wall * 1000)

    order = list(range(len(sides)))
    try:
        for case in cases:  # warm: plans cached, pages read once; a capped cell is not asked again
            for label in labels:
                for i in order:
                    ask(i, label, case, measured=False)
        for r in range(rounds):
            for case in cases:
                if case.heavy and r >= HEAVY_ROUNDS:
                    continue
                for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                    for i in order if r % 2 == 0 else order[::-1]:
                        ask(i, label, case, measured=True)
            _say(
                f"  {', '.join(s.name for s in sides)}: round {r + 1}/{rounds}, load {os.getloadavg()[0]:.1f}"
            )
    finally:
        for conn in conns:
            conn.close()
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
    side: Side,
    cases: tuple[Case, ...],
    cells: dict[tuple[str, str], Cell],
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
    for label, experiment_id in side.experiments.items():
        for case in cases:
            notices.clear()
            ids = [experiment_id, *([side.neighbours] if case.neighbours else [])]
            explained.search_runs_json(ids, case.filter, case.view, PAGE, list(case.order_by))
            texts = [_plan_text(n) for n in notices if "actual" in n]
            plans[(label, case.name)] = texts
            cells[(label, case.name)].buffers = sum(_top_buffers(t) for t in texts) if texts else None
    engine.dispose()

    plain = create_engine_for(uri, pool_size=1, max_overflow=0)
    for label, experiment_id in side.experiments.items():
        for case in cases:
            if case.heavy or case.order_by:
                continue  # the total does not depend on the order
            spent: list[float] = []
            answer: Any = None
            ids = [experiment_id, *([side.neighbours] if case.neighbours else [])]
            for _ in range(rounds):
                server: list[tuple[int, int]] = []
                own = time.process_time_ns()
                with side.cpu.measure(server):
                    answer = run_table.count_runs(plain, ids, case.filter, case.view)
                spent.append((time.process_time_ns() - own + sum(server[0])) / 1e6)
            cell = cells[(label, case.name)]
            cell.total = _total_text(answer)
            cell.total_cpu = median(spent)
    plain.dispose()
    return plans


def _total_text(answer: Any) -> str:
    if isinstance(answer, int):
        return f"{answer:,}"
    return f"{'' if answer.exact else '~'}{answer.value:,}"


# ---- report ------------------------------------------------------------------------------------------
def tables(
    cases: tuple[Case, ...],
    labels: list[str],
    ours: dict[tuple[str, str], Cell],
    theirs: dict[tuple[str, str], Cell] | None,
) -> str:
    names = [c.name for c in cases]
    sized = [label for label in labels if not label.endswith("alone")]
    small, large = sized[0], sized[-1]

    def by(cells: dict[tuple[str, str], Cell]) -> Any:
        return lambda name: {label: cells[(label, name)] for label in labels if (label, name) in cells}

    mine = by(ours)
    out = scale_report.table(
        "modelyard: server + PostgreSQL CPU per first page of 100 runs, ms (median of the rounds); p50 wall ms"
        f" in brackets; {large} / {small}: the median of the rounds' ratios (interquartile range):",
        names, labels, lambda name, label: cpu_text(ours.get((label, name))),
        [(f"{large} / {small}", lambda name: ratio_text(mine(name), small, large)),
         (f"PostgreSQL's share at {large}", lambda name: _share(ours.get((large, name))))],
    )  # fmt: skip
    if theirs is not None:
        mlflow_names = {c.name for c in cases if c.mlflow}
        out += scale_report.table(
            f"MLflow 3.17.2, same runs and searches: CPU (p50) per first page, ms; `> {CAP_SECONDS} s`: did not"
            " finish within the cap; n/a: not in MLflow's filter grammar:",
            names, sized,
            lambda name, label: cpu_text(theirs.get((label, name)), CAP_SECONDS) if name in mlflow_names else "n/a",
            [(f"MLflow / modelyard at {large}", lambda name: _versus(theirs.get((large, name)), ours.get((large, name))))],
        )  # fmt: skip
    out += scale_report.table(
        "PostgreSQL shared buffers read per page (its statements, EXPLAIN ANALYZE); rows on the page:",
        names, labels,
        lambda name, label: f"{ours[(label, name)].buffers if ours[(label, name)].buffers is not None else '?'}"
        f" ({ours[(label, name)].rows})",
    )  # fmt: skip
    counted = [c.name for c in cases if not (c.heavy or c.order_by)]
    out += scale_report.table(
        "The runs page's total (`run_table.count_runs`, in process; `~`: an estimate) and its CPU ms "
        "(this process + the server side):",
        counted, labels,
        lambda name, label: f"{ours[(label, name)].total} ({ours[(label, name)].total_cpu:.1f})"
        if ours[(label, name)].total_cpu is not None else "",
    )  # fmt: skip
    return "\n".join(out).rstrip()


def versus_table(
    cases: tuple[Case, ...],
    labels: list[str],
    new: dict[tuple[str, str], Cell],
    old: dict[tuple[str, str], Cell],
    name: str,
) -> str:
    """This tree against another, per case and size: CPU ms each and the median of the rounds' ratios."""

    def cell(case: str, label: str) -> str:
        a, b = old[(label, case)], new[(label, case)]
        ratios = [y / x for x, y in zip(a.cpu, b.cpu, strict=False) if x > 0]
        low, high = scale_report.quartiles(ratios)
        return f"{_ms(median(b.cpu))} / {_ms(median(a.cpu))}: {median(ratios):.2f}x ({low:.2f}-{high:.2f})"

    title = (f"This tree / {name}, interleaved on the same database: CPU ms per first page (this / {name}: the"
             " median of the rounds' ratios, interquartile range):")  # fmt: skip
    return "\n".join(scale_report.table(title, [c.name for c in cases], labels, cell))


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _share(cell: Cell | None) -> str:
    if cell is None or not cell.service:
        return "-"
    return f"{median(cell.database) / median(cell.cpu):.0%}"


def _versus(theirs: Cell | None, ours: Cell | None) -> str:
    if theirs is None or ours is None or not ours.service:
        return "-"
    if theirs.capped:
        return f"> {CAP_SECONDS * 1000 / median(ours.cpu):,.0f}x"
    if not theirs.service:
        return "-"
    return f"{median(theirs.cpu) / median(ours.cpu):,.0f}x"


# ---- main ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--mlflow", action="store_true", help="MLflow's side too")
    parser.add_argument("--mlflow-rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", help="only the cases whose name contains one of these")
    parser.add_argument("--keep", type=Path, help="keep the cluster in this folder (reused when it exists)")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--against", type=Path, help="also measure this tree's service, interleaved (A/B)")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    cases = tuple(c for c in CASES if not args.cases or any(word in c.name for word in args.cases))
    base = args.keep or Path(tempfile.mkdtemp(prefix="modelyard-bench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(
        base / "data", free_port(), durable=False, tied_to_parent=True, shared_buffers="1GB"
    )
    server.start()
    service: GunicornService | None = None
    mlflow: MlflowSide | None = None
    stoppers: list[Any] = []
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
        assert service.pid is not None and server.pid is not None
        cells: dict[tuple[str, str], Cell] = {}
        plans: dict[tuple[str, str], list[str]] = {}
        labels: list[str] = []
        wanted = {experiment_name(s): s for s in sizes}
        if fresh and len(sizes) > 1:
            # The smallest experiment alone in the database first, then beside the large ones.
            ids = build(uri, {experiment_name(sizes[0]): sizes[0], NEIGHBOURS: NEIGHBOUR_RUNS}, root)
            alone = Side("modelyard", service.url, ServerCpu(service.pid, server.pid),
                         {f"{sizes[0]:,} alone": ids[experiment_name(sizes[0])]}, ids[NEIGHBOURS])  # fmt: skip
            cells.update(measure_rest([alone], cases, args.rounds)[0])
            plans.update(explain_and_totals(uri, root, alone, cases, cells, 3))
            labels += list(alone.experiments)
        ids = build(uri, {**wanted, NEIGHBOURS: NEIGHBOUR_RUNS}, root)
        ours = Side("modelyard", service.url, ServerCpu(service.pid, server.pid),
                    {f"{s:,}": ids[experiment_name(s)] for s in sizes}, ids[NEIGHBOURS])  # fmt: skip
        sides = [ours]
        if args.against is not None:
            # The same service from another tree (its src/ first on PYTHONPATH), on the same database.
            base_service = GunicornService(
                TRACKING, free_port(), base / "tracking-against.log",
                env={"MODELYARD_BACKEND_STORE_URI": uri, "MODELYARD_ARTIFACTS_DESTINATION": str(root),
                     "PYTHONPATH": str(args.against.resolve() / "src")},
                workers=1, tied_to_parent=True,
            )  # fmt: skip
            base_service.start(timeout=120)
            assert base_service.pid is not None
            stoppers.append(base_service.stop)
            sides.append(Side(f"{args.against.name}", base_service.url, ServerCpu(base_service.pid, server.pid),
                              ours.experiments, ours.neighbours))  # fmt: skip
        measured = measure_rest(sides, cases, args.rounds)
        cells.update(measured[0])
        if args.against is not None:
            print(versus_table(cases, list(ours.experiments), measured[0], measured[1], args.against.name))
            stoppers.pop()()
        plans.update(explain_and_totals(uri, root, ours, cases, cells, 3))
        labels += list(ours.experiments)
        service.stop()
        service = None
        theirs: dict[tuple[str, str], Cell] | None = None
        if args.mlflow:
            mlflow = MlflowSide(server, base, _say)
            mlflow.start()
            ml_ids = mlflow.build({**wanted, NEIGHBOURS: NEIGHBOUR_RUNS}, str(base / "mlflow-artifacts"), T0)
            side = Side("mlflow", mlflow.url, ServerCpu(mlflow.pid, server.pid),
                        {f"{s:,}": ml_ids[experiment_name(s)] for s in sizes}, ml_ids[NEIGHBOURS], CAP_SECONDS)  # fmt: skip
            theirs = measure_rest([side], tuple(c for c in cases if c.mlflow), args.mlflow_rounds)[0]
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        header = (
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load}, git {_git_head()}"
        )
        section = f"Last run: {header}.\n\n{tables(cases, labels, cells, theirs)}"
        print(section)
        scale_report.write_plans(plans, header, [(c.name, c.what) for c in cases])
        if not args.no_readme:
            scale_report.update_readme(section)
    finally:
        for stop in stoppers:
            stop()
        if mlflow is not None:
            mlflow.stop()
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
        ["git", "-C", str(Path(__file__).resolve().parent.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or "?"


if __name__ == "__main__":
    raise SystemExit(main())
