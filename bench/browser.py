"""One cold page load in headless Chromium, measured: time until usable, bytes on the wire, requests.

Each load gets a NEW browser context: an empty profile (no HTTP cache, cookies or storage), as a
first visit. The browser is Debian's chromium driven through the playwright pip package; every
host name other than 127.0.0.1 fails to resolve (`--host-resolver-rules`), so nothing leaves the
machine and nothing the page asks of the internet can stall it.

Definitions (all times in ms from the navigation's `performance.timeOrigin`):
- content_ms: the first animation frame on which every `Ready` condition of the page holds
  (bench/ui_pages.py); the check runs in the page on each frame, so it costs the page little.
- network_ms: when the last request of the load finished, once no request has been in flight (nor
  started or ended) for QUIET_MS = 1 s (the quiet window is waited for but not counted). Requests are seen through a CDP session
  on the page (Network domain): every request, including XHR/fetch and those the app makes after
  its first paint; CDP's monotonic timestamps are converted to the page's clock through the
  document request's wallTime. Not waited for (but counted in bytes and requests): the favicon,
  which the browser, not the page, fetches after the load event, whenever its UI process gets to it
  (up to ~0.8 s later on a loaded machine), and a SharedWorker's requests (see NetLog).
- usable_ms = max(content_ms, network_ms).
- bytes: sum of CDP Network.loadingFinished `encodedDataLength`: what came over the wire, i.e.
  compressed bodies plus response headers. requests: requests sent (data: URLs excluded).
- ttfb per request: CDP's response timing, receiveHeadersEnd - sendEnd (on loopback: the server's
  time to answer, plus its compression).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1366, "height": 768}
#: Playwright's "networkidle" waits 500 ms; MLflow's metric page pauses ~0.5 s between its 3 MB
#: get-history pages while it parses one (measured at load 15-18), and 500 ms cut some loads short.
QUIET_MS = 1000
#: See Browser._wait_usable.
GIVE_UP_S = 5.0
#: Installed before the page's own scripts (CDP's addScriptToEvaluateOnNewDocument, which the page's
#: Content-Security-Policy does not govern): checks every Ready condition on each animation frame and
#: records performance.now() in window.__benchReady on the first frame where all hold.
_READY_INIT = """
(() => {
  const conds = %s;
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return false;
    const s = getComputedStyle(el);
    return s.visibility !== 'hidden' && s.display !== 'none';
  };
  const drawn = (el, how) => {
    if (how === 'canvas') {
      if (!(el instanceof HTMLCanvasElement) || !el.width || !el.height) return false;
      const ctx = el.getContext('2d');
      if (!ctx) return false;
      const data = ctx.getImageData(0, 0, el.width, el.height).data;
      for (let i = 3; i < data.length; i += 4 * 5) if (data[i] !== 0) return true;
      return false;
    }
    if (how === 'path') return (el.getAttribute('d') || '').length > 20;
    return true;
  };
  const holds = (c) => {
    let n = 0;
    for (const el of document.querySelectorAll(c.selector)) {
      if (c.text && !(el.textContent || '').includes(c.text)) continue;
      if (!visible(el) || (c.drawn && !drawn(el, c.drawn))) continue;
      if (++n >= c.min) return true;
    }
    return false;
  };
  const tick = (now) => {
    if (conds.every(holds)) window.__benchReady = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


class PageMissing(Exception):
    """The page answered 404: not built (yet) on this side."""


class NotUsable(Exception):
    """The page did not become usable (content or quiet network) within the timeout."""


@dataclass
class Request:
    url: str
    kind: str = ""
    status: int = 0
    bytes: int = 0
    ttfb_ms: float | None = None
    started: float = 0.0
    finished: float | None = None
    failed: str = ""
    #: Made by a shared/service worker: not waited for (see NetLog).
    worker: bool = False
    #: The tab's icon: fetched by the browser, not the page, after its load event; not waited for.
    icon: bool = False

    @property
    def waited_for(self) -> bool:
        return not (self.worker or self.icon)


@dataclass
class Load:
    """One cold load's measurements (times in ms since the navigation started)."""

    url: str
    content_ms: float
    network_ms: float
    usable_ms: float
    bytes: int
    requests: int
    failed_requests: int
    #: Slowest time-to-first-byte among the document and XHR/fetch requests (what waits on the server).
    max_ttfb_ms: float
    requests_detail: list[dict[str, Any]] = field(default_factory=list)


class NetLog:
    """Every request of one page load, from CDP Network events (timestamps: CDP monotonic seconds).

    A SharedWorker's requests run outside the page (MLflow's UI starts one for its telemetry): the page
    sees its script request and response headers but never its end, nor the worker's own requests.
    Such a request is counted, with its Content-Length as bytes, and not waited for."""

    def __init__(self) -> None:
        self.requests: dict[str, Request] = {}
        self.wall_offset: float | None = None  # wallTime - timestamp, from the first request
        self.last_event = time.monotonic()

    def attach(self, cdp: Any) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestWillBeSentExtraInfo", self._sent_extra)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.responseReceivedExtraInfo", self._response_extra)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.loadingFailed", self._failed)
        cdp.send("Network.enable")

    def _sent(self, ev: dict[str, Any]) -> None:
        url = ev["request"]["url"]
        if url.startswith("data:"):
            return
        if self.wall_offset is None and "wallTime" in ev:
            self.wall_offset = ev["wallTime"] - ev["timestamp"]
        rid = ev["requestId"]
        old = self.requests.get(rid)
        if old is not None and ev.get("redirectResponse"):  # a redirect keeps the id: keep the hop too
            old.finished = ev["timestamp"]
            self.requests[f"{rid}#{len(self.requests)}"] = old
        worker = old.worker if old is not None else False  # the ExtraInfo event may come first
        icon = ev.get("type") == "Other" and "favicon" in url.rsplit("/", 1)[-1]
        req = Request(url, ev.get("type", ""), started=ev["timestamp"], worker=worker, icon=icon)
        self.requests[rid] = req
        if req.waited_for:
            self.last_event = time.monotonic()

    def _sent_extra(self, ev: dict[str, Any]) -> None:
        dest = {k.lower(): v for k, v in ev.get("headers", {}).items()}.get("sec-fetch-dest", "")
        if dest in ("sharedworker", "serviceworker"):
            self.requests.setdefault(ev["requestId"], Request("", started=0.0)).worker = True

    def _response(self, ev: dict[str, Any]) -> None:
        req = self.requests.get(ev["requestId"])
        if req is None:
            return
        resp = ev["response"]
        req.status = resp.get("status", 0)
        req.kind = ev.get("type", req.kind)
        timing = resp.get("timing")
        if timing and timing.get("receiveHeadersEnd", -1) >= 0 and timing.get("sendEnd", -1) >= 0:
            req.ttfb_ms = timing["receiveHeadersEnd"] - timing["sendEnd"]

    def _response_extra(self, ev: dict[str, Any]) -> None:
        req = self.requests.get(ev["requestId"])
        if req is not None and req.worker:
            headers = {k.lower(): v for k, v in ev.get("headers", {}).items()}
            req.status = ev.get("statusCode", req.status)
            req.bytes = int(headers.get("content-length", "0") or 0) + len(ev.get("headersText", ""))

    def _finished(self, ev: dict[str, Any]) -> None:
        req = self.requests.get(ev["requestId"])
        if req is not None:
            req.bytes = int(ev.get("encodedDataLength", 0))
            req.finished = ev["timestamp"]
            if req.waited_for:
                self.last_event = time.monotonic()

    def _failed(self, ev: dict[str, Any]) -> None:
        req = self.requests.get(ev["requestId"])
        if req is not None:
            req.failed = ev.get("errorText", "failed")
            req.finished = ev["timestamp"]
            if req.waited_for:
                self.last_event = time.monotonic()

    def seen(self) -> list[Request]:
        return [r for r in self.requests.values() if r.url]

    def in_flight(self) -> list[Request]:
        return [r for r in self.seen() if r.finished is None and r.waited_for]

    def quiet_for(self) -> float:
        """Seconds since the last request started or ended, 0 while one is in flight (as the events
        reached us: a first look; `quiet_since_ms` is exact)."""
        return 0.0 if self.in_flight() else time.monotonic() - self.last_event

    def quiet_since_ms(self, time_origin_ms: float) -> float:
        """When, on the page's clock, the last waited-for request started or ended."""
        times = [t for r in self.seen() if r.waited_for for t in (r.started, r.finished) if t is not None]
        return max(self.page_ms(t, time_origin_ms) for t in times)

    def page_ms(self, cdp_timestamp: float, time_origin_ms: float) -> float:
        """A CDP monotonic timestamp in ms since the page's timeOrigin."""
        assert self.wall_offset is not None
        return (cdp_timestamp + self.wall_offset) * 1000 - time_origin_ms


class Browser:
    """Chromium, launched once; each `cold_load` runs in a fresh context."""

    def __init__(self) -> None:
        self._pw: Any = None
        self.browser: Any = None

    def __enter__(self) -> Browser:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} not found: run infra/tools/install-chromium.sh")
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    @contextmanager
    def context(self, **options: Any) -> Iterator[Any]:
        context = self.browser.new_context(viewport=VIEWPORT, **options)
        try:
            yield context
        finally:
            context.close()

    def cold_load(self, url: str, ready: list[dict[str, object]], timeout_s: float,
                  screenshot: Path | None = None) -> Load:  # fmt: skip
        """Load `url` in a fresh context and measure it (see the module docstring)."""
        with self.context() as context:
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            net = NetLog()
            net.attach(cdp)
            page.add_init_script(script=_READY_INIT % json.dumps(ready))
            deadline = time.monotonic() + timeout_s
            response = page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
            if response is None:
                raise NotUsable("no response")
            if response.status == 404:
                raise PageMissing(f"HTTP 404 for {url}")
            if response.status >= 400:
                raise NotUsable(f"HTTP {response.status} for {url}")
            content_ms = self._wait_usable(page, net, deadline, ready)
            origin = float(page.evaluate("performance.timeOrigin"))
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
            reqs = net.seen()
            ends = [net.page_ms(r.finished, origin) for r in reqs if r.finished is not None and r.waited_for]
            network_ms = max(ends, default=0.0)
            waits = [
                r.ttfb_ms for r in reqs if r.ttfb_ms is not None and r.kind in ("Document", "XHR", "Fetch")
            ]
            return Load(
                url=url,
                content_ms=content_ms,
                network_ms=network_ms,
                usable_ms=max(content_ms, network_ms),
                bytes=sum(r.bytes for r in reqs),
                requests=len(reqs),
                failed_requests=sum(1 for r in reqs if r.failed),
                max_ttfb_ms=max(waits, default=0.0),
                requests_detail=[
                    {
                        "url": r.url[:200],
                        "type": r.kind,
                        "status": r.status,
                        "bytes": r.bytes,
                        "ttfb_ms": None if r.ttfb_ms is None else round(r.ttfb_ms, 2),
                        "start_ms": round(net.page_ms(r.started, origin), 1),
                        "end_ms": None if r.finished is None else round(net.page_ms(r.finished, origin), 1),
                        "failed": r.failed,
                        "worker": r.worker,
                        "icon": r.icon,
                    }
                    for r in reqs
                ],  # fmt: skip
            )

    @staticmethod
    def _wait_usable(page: Any, net: NetLog, deadline: float, ready: list[dict[str, object]]) -> float:
        """Wait until the content is ready and no request has been in flight (nor started or ended)
        for QUIET_MS; returns content_ms. A page whose content is still not there after the network
        has been quiet for GIVE_UP_S will not get it: it fails then rather than at the deadline."""
        content: float | None = None
        while True:
            page.wait_for_timeout(50)  # CDP events are dispatched while playwright waits
            if content is None:
                try:
                    content = page.evaluate("window.__benchReady ?? null")
                except Exception:  # noqa: BLE001 - the document is being replaced; ask again
                    content = None
            quiet = net.quiet_for()
            if content is not None and quiet >= QUIET_MS / 1000:
                # Exact, on the page's clock. Every CDP event the browser sent before answering this
                # evaluate has been handled by now, so a request that just started is in the log.
                origin, now = page.evaluate("[performance.timeOrigin, performance.now()]")
                if not net.in_flight() and now - net.quiet_since_ms(origin) >= QUIET_MS:
                    return float(content)
            if content is None and quiet >= GIVE_UP_S:
                raise NotUsable(f"content not there {GIVE_UP_S:.0f} s after the network went quiet: {ready}")
            if time.monotonic() > deadline:
                if content is None:
                    raise NotUsable(f"content not there before the timeout: {ready}")
                busy = [r.url[:120] for r in net.in_flight()]
                raise NotUsable(f"network not quiet before the timeout; in flight: {busy}")

    def rows_without_javascript(self, url: str, rows_selector: str, timeout_s: float) -> int:
        """How many table rows the page shows with JavaScript disabled (its first paint as served)."""
        with self.context(java_script_enabled=False) as context:
            page = context.new_page()
            response = page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            if response is not None and response.status == 404:
                raise PageMissing(f"HTTP 404 for {url}")
            return int(page.locator(rows_selector).count())
