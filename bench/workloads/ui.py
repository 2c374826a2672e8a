"""The web UI, side by side: cold page loads in headless Chromium against modelyard's pages and
MLflow 3.17.2's React UI, on the same seeded data (issue #20, "Performance").

Data: a 10,000-run experiment (10 params, 10 metrics, 5 tags each) and a run with a 100,000-step
metric in its own experiment, written by COPY into both databases (bench/seed.py, as the search
and history workloads do). Pages, URLs and what "usable" means per page: bench/ui_pages.py. How a
load is measured: bench/browser.py. modelyard's server time per HTML page or fragment comes from its
own Prometheus metrics (`/metrics`: request-duration sum and count per route, read before and
after each load); for MLflow, whose server has no such metrics, the slowest time-to-first-byte of
its document and API requests stands in.

A page that answers 404 on a side is reported as missing there (its rows show "-" and say so); a
page that never becomes usable is reported with the reason. Neither stops the other pages.
"""

from __future__ import annotations

import html
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.browser import Browser, Load, NotUsable, PageMissing
from bench.httpc import Conn
from bench.measure import Sample, median, timed
from bench.mlflow_env import REPO_ROOT
from bench.registry_seed import Registry, deploy_endpoints, seed_registry
from bench.rows import Row, alternate
from bench.seed import Corpus
from bench.stack import BenchStack, Side
from bench.ui_pages import FILTER, HISTORY_KEY, PAGES, Fixture, Page
from bench.workloads.common import API, get_experiment
from bench.workloads.search import seed_corpus, seed_history_run
from bench.workloads.serving import save_model

#: Git-ignored, shared with the browser tests: the last load of every page, for a person to look at.
SCREENSHOTS = REPO_ROOT / "ui-screenshots"
#: Per cold load: a page not usable by then is reported as such (MLflow's slowest pages take ~10 s
#: on a busy 2-core machine).
TIMEOUT_S = 45.0
#: After this many failed loads in a row (the first counts), a side's page is not tried again.
GIVE_UP_AFTER = 2

USABLE_TARGET_S, BYTES_TARGET_KB, SERVER_TARGET_MS = 0.5, 300, 100
#: The corpus's random seed: not the search workload's, whose run ids (drawn from the seed) the same
#: database already holds when both workloads run.
CORPUS_SEED = 20


# --- data -----------------------------------------------------------------------------------------
#: The order each side's models page lists models in by default (its first row is waited for).
MODELS_ORDER = {"modelyard": "last_updated_timestamp DESC", "mlflow": "name ASC"}


def _fixture(conn: Conn, side: str, experiment_id: str, history: tuple[str, str], registry: Registry) -> Fixture:
    """What the pages of one side need, asked through its own REST API."""

    def newest(max_results: int, filter_string: str = "") -> list[dict[str, Any]]:
        body = {"experiment_ids": [experiment_id], "max_results": max_results, "filter": filter_string,
                "order_by": ["attributes.start_time DESC"]}  # fmt: skip
        return [r["info"] for r in conn.call("POST", f"{API}/runs/search", body)["runs"]]

    runs, first_match = newest(50), newest(1, FILTER)[0]
    return Fixture(
        experiment_id=experiment_id,
        experiment_name=get_experiment(conn, experiment_id)["name"],
        newest_run_id=runs[0]["run_id"],
        newest_run_name=runs[0]["run_name"],
        filtered_run_id=first_match["run_id"],
        filtered_run_name=first_match["run_name"],
        run_id=runs[0]["run_id"],
        run_name=runs[0]["run_name"],
        history_experiment_id=history[0],
        history_run_id=history[1],
        compare_ids=tuple(r["run_id"] for r in runs),
        compare_names=tuple(r["run_name"] for r in runs),
        first_model_name=conn.call(
            "GET", f"{API}/registered-models/search?max_results=1&order_by={MODELS_ORDER[side].replace(' ', '+')}"
        )["registered_models"][0]["name"],
        model_name=registry.model_name,
        model_version=str(registry.versions),
    )


def seed(stack: BenchStack, sides: list[Side], runs: int, steps: int, registry: Registry) -> dict[str, Fixture]:
    """Both sides: the corpus and the history run (experiments through each side's REST API, rows by
    COPY), the registry (COPY, one real model folder), and modelyard's endpoints (real deploys)."""
    experiments = seed_corpus(stack, sides, Corpus(runs, seed=CORPUS_SEED), prefix="ui-runs")
    model_dir = save_model(stack.work / "ui-registry-model")
    seed_registry(stack, sides, registry, model_dir)
    deploy_endpoints(stack, next(s for s in sides if s.name == "modelyard"), registry, model_dir)
    fixtures = {}
    for side in sides:
        with Conn(side.tracking_url) as conn:
            history = seed_history_run(stack, side, conn, "ui-history", HISTORY_KEY, steps)
            fixtures[side.name] = _fixture(conn, side.name, experiments[side.name], history, registry)
    return fixtures


# --- modelyard's server time ----------------------------------------------------------------------
#: Label values hold braces (`route="/runs/{run_id}"`): the label set runs to the line's last "} ".
_SERIES = re.compile(r"^modelyard_http_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def route_durations(conn: Conn) -> dict[str, tuple[float, float]]:
    """(seconds, requests) so far per "METHOD route" of the tracking service, summed over workers."""
    status, data = conn.request("GET", "/metrics")
    if status != 200:
        return {}
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for kind, labels, value in _SERIES.findall(data.decode()):
        lab = dict(_LABEL.findall(labels))
        out[f"{lab.get('method')} {lab.get('route')}"][0 if kind == "sum" else 1] += float(value)
    return {k: (v[0], v[1]) for k, v in out.items()}


def server_ms_per_route(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Mean ms per request of each page/fragment route the load hit (static files left out)."""
    out = {}
    for route, (seconds, count) in after.items():
        s0, c0 = before.get(route, (0.0, 0.0))
        if count > c0 and "/static/" not in route:
            out[route] = round(1000 * (seconds - s0) / (count - c0), 2)
    return out


# --- measuring ------------------------------------------------------------------------------------
@dataclass
class PageSample(Sample):
    """One cold load (wall = usable seconds, cpu = the side's server CPU during it)."""

    load: Load | None = None
    error: str = ""
    missing: bool = False
    #: modelyard: mean ms per route from its /metrics; None for a side without them (MLflow).
    routes: dict[str, float] | None = None

    @property
    def server_ms(self) -> float | None:
        """The slowest route's mean (modelyard), else the slowest document/API time-to-first-byte."""
        if self.routes is not None:
            return max(self.routes.values(), default=None)
        return self.load.max_ttfb_ms if self.load is not None else None


class PageRunner:
    """Loads one page on one side, remembering failures so a missing page is not retried forever."""

    def __init__(self, browser: Browser, fixtures: dict[str, Fixture], metrics: dict[str, Conn]) -> None:
        self.browser = browser
        self.fixtures = fixtures
        self.metrics = metrics
        self.failures: dict[tuple[str, str], list[PageSample]] = defaultdict(list)

    def load(self, page: Page, side: Side, screenshot: Path | None = None) -> PageSample:
        failed = self.failures[(page.name, side.name)]
        if len(failed) >= GIVE_UP_AFTER:
            return failed[-1]
        view, fixture = page.view(side.name), self.fixtures[side.name]
        if view is None:
            failed += [PageSample(0.0, 0.0, 1, error=f"{side.name} has no such page", missing=True)] * GIVE_UP_AFTER
            return failed[-1]
        url = side.tracking_url + view.url(fixture)
        ready = [r.bind(fixture.values()) for r in view.ready]
        conn = self.metrics.get(side.name)
        before = route_durations(conn) if conn else {}
        out: dict[str, Any] = {}

        def go() -> None:
            out["load"] = self.browser.cold_load(url, ready, TIMEOUT_S, screenshot)

        try:
            sample = timed(side.pids, 1, go)
        except PageMissing as exc:
            failed.append(PageSample(0.0, 0.0, 1, error=str(exc), missing=True))
            return failed[-1]
        except NotUsable as exc:
            failed.append(PageSample(0.0, 0.0, 1, error=str(exc)))
            return failed[-1]
        failed.clear()
        load: Load = out["load"]
        routes = server_ms_per_route(before, route_durations(conn)) if conn else None
        return PageSample(load.usable_ms / 1000, sample.cpu, 1, load=load, routes=routes)


def _rows_for(page: Page, samples: dict[str, list[PageSample]]) -> list[Row]:
    good = {name: [s for s in ss if s.load is not None] for name, ss in samples.items()}

    def med(name: str, fn: Any) -> float | None:
        values = [fn(s) for s in good[name]]
        values = [v for v in values if v is not None]
        return median(values) if values else None

    def note_for(name: str) -> str:
        bad = [s for s in samples[name] if s.load is None]
        if not bad:
            return ""
        if bad[-1].missing:
            return f"{name} has no such page" if "no such page" in bad[-1].error else f"missing on {name} (404)"
        reason = bad[-1].error.split(":")[0]  # the whole message is in the JSON detail
        return f"{name}: {len(bad)} of {len(samples[name])} loads not usable ({reason})"

    note = "; ".join(n for n in (note_for("modelyard"), note_for("mlflow")) if n)
    detail = {
        name: {
            "url": ss[-1].load.url if ss and ss[-1].load else "",
            "usable_s": [round(s.wall, 3) for s in ss],
            "content_ms": [round(s.load.content_ms, 1) for s in ss if s.load],
            "network_ms": [round(s.load.network_ms, 1) for s in ss if s.load],
            "server_cpu_ms": [round(1000 * s.cpu, 1) for s in ss],
            "server_ms_per_route": [s.routes for s in ss],
            "max_ttfb_ms": [round(s.load.max_ttfb_ms, 1) for s in ss if s.load],
            "errors": [s.error for s in samples[name] if s.error],
            "last_requests": ss[-1].load.requests_detail if ss and ss[-1].load else [],
        }
        for name, ss in good.items()
    }
    first = page is PAGES[0]
    server_note = "MLflow: its slowest document/API time-to-first-byte" if first else ""
    return [
        Row(f"UI {page.name}: usable, cold", "s", med("mlflow", lambda s: s.wall), med("modelyard", lambda s: s.wall),
            False, f"< {USABLE_TARGET_S} s", lambda a, b: b < USABLE_TARGET_S, note=note, detail=detail, alone=True),
        Row(f"UI {page.name}: transferred, cold", "KB", med("mlflow", lambda s: s.load.bytes / 1024),
            med("modelyard", lambda s: s.load.bytes / 1024), False, f"< {BYTES_TARGET_KB} KB",
            lambda a, b: b < BYTES_TARGET_KB, alone=True),
        Row(f"UI {page.name}: requests, cold", "req", med("mlflow", lambda s: s.load.requests),
            med("modelyard", lambda s: s.load.requests), False),
        Row(f"UI {page.name}: server time, slowest HTML page/fragment", "ms", med("mlflow", lambda s: s.server_ms),
            med("modelyard", lambda s: s.server_ms), False, f"< {SERVER_TARGET_MS} ms",
            lambda a, b: b < SERVER_TARGET_MS, note=server_note, alone=True),
        Row(f"UI {page.name}: server CPU per cold load", "ms", med("mlflow", lambda s: 1000 * s.cpu),
            med("modelyard", lambda s: 1000 * s.cpu), False,
            note="service process trees, psutil (10 ms ticks)" if first else ""),
    ]  # fmt: skip


def no_javascript(browser: Browser, sides: list[Side], fixtures: dict[str, Fixture]) -> Row:
    """The runs page with JavaScript disabled: how many run rows its first paint shows."""
    page = next(p for p in PAGES if p.modelyard.rows)
    counts: dict[str, float | None] = {}
    notes = []
    for side in sides:
        view = page.view(side.name)
        assert view is not None
        try:
            counts[side.name] = browser.rows_without_javascript(
                side.tracking_url + view.url(fixtures[side.name]), view.rows, TIMEOUT_S
            )
        except PageMissing:
            counts[side.name] = None
            notes.append(f"missing on {side.name} (404)")
    return Row(f"UI {page.name} page without JavaScript: rows in the first paint", "rows", counts["mlflow"],
               counts["modelyard"], True, "> 0 (no JS needed)", lambda a, b: b > 0, note="; ".join(notes))  # fmt: skip


def screenshot_path(page: Page, side: Side) -> Path:
    return SCREENSHOTS / f"bench-{re.sub(r'[^a-z0-9]+', '-', page.name.lower()).strip('-')}-{side.name}.png"


#: Connections the warm-up holds open at once: the services spread new connections over their workers,
#: so each worker gets some (one connection stays on one worker and warmed only that one).
WARM_CONNECTIONS = 4


#: What a modelyard page fetches on its own as it loads: fragments htmx loads at once, preloaded and
#: chart series (`data-src`).
_LOADS_AT_ONCE = re.compile(
    r'<[^>]*\bhx-get="([^"]+)"[^>]*\bhx-trigger="load[^>]*>|<link rel="preload" href="([^"]+)"|\bdata-src="([^"]+)"'
)


def warm_up(runner: PageRunner, sides: list[Side]) -> None:
    """Untimed: one browser load of the first page per side (the servers' first answers, files into
    the page cache), and a plain GET of every page's document, and of what a modelyard page fetches
    on its own as it loads (its fragments and chart series), on each of `WARM_CONNECTIONS` open
    connections, so no measured load pays for a route's first request in whichever worker it lands
    on (each worker's first run of a route's statements and templates; MLflow serves index.html and
    its API routes)."""
    for side in sides:
        runner.load(PAGES[0], side)
        conns = [Conn(side.tracking_url) for _ in range(WARM_CONNECTIONS)]
        try:
            for page in PAGES:
                if (view := page.view(side.name)) is not None:
                    for conn in conns:
                        status, body = conn.request("GET", view.url(runner.fixtures[side.name]).split("#")[0] or "/")
                        if side.name == "modelyard" and status == 200:
                            for found in _LOADS_AT_ONCE.findall(body.decode("utf-8", "replace")):
                                conn.request("GET", html.unescape(next(u for u in found if u)))
        finally:
            for conn in conns:
                conn.close()
    runner.failures.clear()


def ui(
    stack: BenchStack, sides: list[Side], runs: int, steps: int, repeats: int, say: Any = print
) -> list[Row]:
    started = time.monotonic()
    registry = Registry()
    fixtures = seed(stack, sides, runs, steps, registry)
    say(
        f"  seeded {runs:,} runs, a {steps:,}-step metric, {registry.models} models x {registry.versions} versions"
        f" ({registry.events:,} history events on one) and 2 endpoints in {time.monotonic() - started:.1f} s"
    )
    metrics = {side.name: Conn(side.tracking_url) for side in sides if side.name == "modelyard"}
    rows: list[Row] = []
    try:
        with Browser() as browser:
            runner = PageRunner(browser, fixtures, metrics)
            warm_up(runner, sides)
            say(f"  warmed up; {repeats} cold load(s) per page and side")
            for page in PAGES:

                def run(side: Side, r: int, page: Page = page) -> PageSample:
                    return runner.load(page, side, screenshot_path(page, side) if r == repeats - 1 else None)

                samples = alternate(sides, repeats, run)
                say(
                    f"  {page.name}: " + ", ".join(f"{name} {_outcome(s[-1])}" for name, s in samples.items())
                )
                rows += _rows_for(page, samples)  # type: ignore[arg-type]
            rows.append(no_javascript(browser, sides, fixtures))
    finally:
        for conn in metrics.values():
            conn.close()
    return rows


def _outcome(sample: PageSample) -> str:
    if sample.load is not None:
        return f"{sample.wall:.3f} s, {sample.load.bytes / 1024:,.0f} KB"
    return "missing (404)" if sample.missing else "not usable"
