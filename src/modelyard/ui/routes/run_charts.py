"""The run page's metric charts: the Charts tab's context and the series JSON its charts load.

`GET /runs/{run_id}/metric-series?key=&x=step&min=&max=&points=&summary=` answers `metric_series` for
one run and key: at most `points` points (min/max/mean buckets, or the real points when the range
holds fewer), with the whole-history summary. A chart loads the whole range first; a zoom asks again
for the zoomed range (with `summary=0`: the chart has it already), which comes back at full
resolution once it holds fewer points than the budget.

The page names each chart's first request (`series_urls`) and asks the browser to preload the first
PRELOAD_CHARTS of them (<link rel=preload as=fetch>): their series load while the scripts do, instead
of after them, and the script starts those charts at once (a preload left unused is a console warning).
"""

from __future__ import annotations

import gzip
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.entities import Run
from modelyard.exceptions import ModelyardException
from modelyard.store.tracking.metric_series import DEFAULT_MAX_POINTS, X_AXES, metric_series
from modelyard.ui.render import UiRoute, bad_request
from modelyard.ui.routes.experiments import tracking_store

router = APIRouter(route_class=UiRoute, include_in_schema=False)
SCALES = ("linear", "log")
#: Charts drawn at once; more metrics are picked with the page's metric chooser.
DEFAULT_CHARTS = 24
#: Charts whose series the page preloads: the first two rows of the grid at 1366x768.
PRELOAD_CHARTS = 4
_COMPRESS_MIN_BYTES = 1024


def charts_context(request: Request, run: Run) -> dict[str, Any]:
    """Chart options from the query string (`x`, `scale`, `smooth`, `keys`), checked."""
    query = request.query_params
    x_axis = query.get("x", "step")
    if x_axis not in X_AXES:
        raise bad_request(f"x must be one of {', '.join(X_AXES)}, not {x_axis!r}.")
    scale = query.get("scale", "linear")
    if scale not in SCALES:
        raise bad_request(f"scale must be one of {', '.join(SCALES)}, not {scale!r}.")
    try:
        smooth = float(query.get("smooth", "0"))
    except ValueError:
        raise bad_request(f"smooth must be a number from 0 to 0.99, not {query.get('smooth')!r}.") from None
    if not 0 <= smooth <= 0.99:
        raise bad_request(f"smooth must be a number from 0 to 0.99, not {smooth!r}.")
    all_keys = sorted(run.data.metrics)
    wanted = list(dict.fromkeys(k for value in query.getlist("keys") for k in value.split(",") if k))
    unknown = [k for k in wanted if k not in run.data.metrics]
    if unknown:
        raise bad_request(f"This run has no metric {unknown[0]!r}.")
    chosen = wanted or all_keys[:DEFAULT_CHARTS]
    base = f"/runs/{run.info.run_id}/metric-series?"
    urls = {k: base + urlencode({"key": k, "x": x_axis, "points": DEFAULT_MAX_POINTS}) for k in chosen}
    return {
        "chart_keys": chosen,
        "series_urls": urls,
        "preload_urls": [urls[k] for k in chosen[:PRELOAD_CHARTS]],
        "all_metric_keys": all_keys,
        "keys_chosen": bool(wanted),
        "x_axis": x_axis,
        "x_axes": X_AXES,
        "scale": scale,
        "smooth": smooth,
        "max_points": DEFAULT_MAX_POINTS,
    }


@router.get("/runs/{run_id}/metric-series")
def series_json(
    request: Request,
    run_id: str,
    key: str,
    x: str = "step",
    min: float | None = None,  # noqa: A002 - the query string's names
    max: float | None = None,  # noqa: A002
    points: int = DEFAULT_MAX_POINTS,
    summary: bool = True,
) -> Response:
    engine = tracking_store(request).engine  # type: ignore[attr-defined]
    found = metric_series(engine, [run_id], key, x, min, max, points, with_summary=summary)
    if run_id not in found:
        tracking_store(request).get_run(run_id)  # 404 for an unknown run
        raise ModelyardException.not_found(f"Run {run_id} has no metric {key!r}.")
    return json_response(request, found[run_id].to_dict())


def json_response(request: Request, payload: dict[str, Any]) -> Response:
    """JSON for the page's scripts: compressed like the HTML, never cached, never sniffed."""
    body = orjson.dumps(payload)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    if len(body) >= _COMPRESS_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        # Level 1: a chart's ~100 KB of numbers in ~2 ms of CPU instead of ~6 (level 5), for 4% more bytes.
        body = gzip.compress(body, compresslevel=1, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)
