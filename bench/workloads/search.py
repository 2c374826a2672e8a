"""Read path: filtered runs/search over a seeded corpus, and metrics/get-history of a long metric."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from bench.httpc import Conn
from bench.measure import RssSampler, percentile, timed, tree_rss_bytes
from bench.rows import Row, alternate, both, cpu_detail, cpu_row
from bench.seed import Corpus, analyze, seed_history, seed_runs
from bench.stack import BenchStack, Side
from bench.workloads.common import API, create_experiment, create_run, get_experiment, now_ms

FILTER = "metrics.m0 < 0.52 and params.optimizer = 'adam'"
ORDER_BY = ["metrics.m1 DESC"]
PAGE = 100


def seed_corpus(
    stack: BenchStack, sides: list[Side], corpus: Corpus, prefix: str = "search"
) -> dict[str, str]:
    """The same runs in both databases, in a new experiment `<prefix>-<hex>` on each side; returns its ids."""
    experiments = {}
    ts = now_ms()
    for side in sides:
        with Conn(side.tracking_url) as conn:
            experiment_id = create_experiment(conn, prefix)
            root = get_experiment(conn, experiment_id)["artifact_location"]
        with stack.psql(side.database) as pg:
            seed_runs(pg, corpus, int(experiment_id), root, ts)
            analyze(pg)
        experiments[side.name] = experiment_id
    return experiments


def _search_body(experiment_id: str, token: str | None) -> bytes:
    body: dict[str, object] = {"experiment_ids": [experiment_id], "filter": FILTER, "max_results": PAGE,
                               "order_by": ORDER_BY}  # fmt: skip
    if token:
        body["page_token"] = token
    return json.dumps(body).encode()


def _all_pages(conn: Conn, experiment_id: str) -> tuple[int, int, list[str]]:
    """(matches, pages, first page's run ids)."""
    token: str | None = None
    matches = pages = 0
    first: list[str] = []
    while True:
        status, data = conn.request("POST", f"{API}/runs/search", _search_body(experiment_id, token),
                                    {"Content-Type": "application/json"})  # fmt: skip
        assert status == 200, data[:300]
        page = json.loads(data)
        runs = page.get("runs", [])
        if not pages:
            first = [r["info"]["run_name"] for r in runs]
        matches += len(runs)
        pages += 1
        token = page.get("next_page_token")
        if not token:
            return matches, pages, first


def search(stack: BenchStack, sides: list[Side], corpus: Corpus, requests: int, repeats: int) -> list[Row]:
    experiments = seed_corpus(stack, sides, corpus)
    conns = {side.name: Conn(side.tracking_url) for side in sides}
    answers = {s.name: _all_pages(conns[s.name], experiments[s.name]) for s in sides}
    note = ""
    if answers["mlflow"][0] != answers["modelyard"][0] or answers["mlflow"][2] != answers["modelyard"][2]:
        note = f"ANSWERS DIFFER: mlflow {answers['mlflow'][:2]}, modelyard {answers['modelyard'][:2]}"

    def first_page(side: Side, r: int):  # type: ignore[no-untyped-def]
        conn, body = conns[side.name], _search_body(experiments[side.name], None)

        def go() -> list[float]:
            latencies = []
            for _ in range(requests):
                t = time.perf_counter()
                status, data = conn.request(
                    "POST", f"{API}/runs/search", body, {"Content-Type": "application/json"}
                )
                latencies.append(time.perf_counter() - t)
                assert status == 200, data[:300]
            return latencies

        return timed(side.pids, requests, go)

    def all_pages(side: Side, r: int):  # type: ignore[no-untyped-def]
        return timed(
            side.pids,
            answers[side.name][1],
            lambda: [_all_pages(conns[side.name], experiments[side.name])] and None,
        )

    firsts = alternate(sides, repeats, first_page)
    alls = alternate(sides, repeats, all_pages)
    for c in conns.values():
        c.close()
    lat = {name: [x for s in ss for x in s.latencies] for name, ss in firsts.items()}
    matches, pages = answers["modelyard"][0], answers["modelyard"][1]
    size = f"{corpus.runs:,} runs"
    ml_all, my_all = both(alls, lambda s: s.wall)
    return [
        Row(
            f"runs/search first page of {PAGE} ({size}) p50",
            "ms",
            1000 * percentile(lat["mlflow"], 50),
            1000 * percentile(lat["modelyard"], 50),
            False,
            "< 15 ms",
            lambda a, b: b < 15,
            note=note,
            detail={
                **cpu_detail(firsts),
                "filter": FILTER,
                "order_by": ORDER_BY,
                "matches": {k: v[0] for k, v in answers.items()},
            },
        ),  # fmt: skip
        Row(
            "runs/search first page p99",
            "ms",
            1000 * percentile(lat["mlflow"], 99),
            1000 * percentile(lat["modelyard"], 99),
            False,
        ),  # fmt: skip
        cpu_row("runs/search page", firsts, "page"),
        Row(
            f"runs/search all pages ({matches:,} matches, {pages} pages)",
            "s",
            ml_all,
            my_all,
            False,
            "< 0.3 s",
            lambda a, b: b < 0.3,
            detail=cpu_detail(alls, "page"),
        ),  # fmt: skip
    ]


def seed_history_run(
    stack: BenchStack, side: Side, conn: Conn, prefix: str, key: str, steps: int
) -> tuple[str, str]:
    """A run with a `steps`-point metric `key` in a new experiment `<prefix>-<hex>`: (experiment id, run id)."""
    experiment_id = create_experiment(conn, prefix)
    run_id = create_run(conn, experiment_id)
    with stack.psql(side.database) as pg:
        seed_history(pg, run_id, key, steps, now_ms())
        analyze(pg)
    return experiment_id, run_id


def history(stack: BenchStack, sides: list[Side], steps: int, repeats: int) -> list[Row]:
    conns = {side.name: Conn(side.tracking_url) for side in sides}
    run_ids = {
        side.name: seed_history_run(stack, side, conns[side.name], "history", "loss", steps)[1]
        for side in sides
    }
    peaks: dict[str, list[float]] = {side.name: [] for side in sides}

    def fetch(side: Side) -> int:
        conn, token, points, pages = conns[side.name], None, 0, 0
        while True:
            query = {"run_id": run_ids[side.name], "metric_key": "loss"}
            if token:
                query["page_token"] = token
            page = conn.call("GET", f"{API}/metrics/get-history?{urlencode(query)}")
            points += len(page.get("metrics", []))
            pages += 1
            token = page.get("next_page_token")
            if not token:
                if points != steps:
                    raise AssertionError(f"{side.name}: get-history returned {points} of {steps} points")
                return pages

    def run(side: Side, r: int):  # type: ignore[no-untyped-def]
        idle = tree_rss_bytes(side.pids)
        sampler = RssSampler(side.pids)
        with sampler.running():
            sample = timed(side.pids, 1, lambda: [fetch(side)] and None)
        peaks[side.name].append((sampler.peak - idle) / 2**20)
        return sample

    samples = alternate(sides, repeats, run)
    for c in conns.values():
        c.close()
    ml, my = both(samples, lambda s: s.wall)
    return [
        Row(
            f"metrics/get-history, {steps:,} steps (all pages)",
            "s",
            ml,
            my,
            False,
            "< 0.4 s",
            lambda a, b: b < 0.4,
            detail=cpu_detail(samples, "fetch"),
        ),  # fmt: skip
        Row(
            "get-history: server RSS growth during fetch",
            "MB",
            max(peaks["mlflow"]),
            max(peaks["modelyard"]),
            False,
            "bounded",
        ),  # fmt: skip
    ]
