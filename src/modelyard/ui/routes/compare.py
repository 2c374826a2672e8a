"""The compare page (`/compare?runs=ID,ID,...`): 2 to 1,000 runs side by side.

One store call loads the runs' params and latest metrics (`store.tracking.comparison`). The page
shows them as a table (runs as columns up to `COLUMNS_UP_TO` runs, where reading across a row is a
diff; runs as rows beyond, where a thousand runs scroll down, not sideways), and hands the same
values to the canvas modules (scatter, parallel coordinates) as one JSON block, column by column.
Everything the user chose (only differences, sort metric, axes, brushes) is in the query string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard.store.tracking.comparison import ComparedRun, compared_runs, metric_band
from modelyard.store.tracking.metric_series import metric_series
from modelyard.ui.render import UiRoute, bad_request, format_number, page
from modelyard.ui.routes.experiments import tracking_store
from modelyard.ui.routes.run_charts import json_response

router = APIRouter(route_class=UiRoute, include_in_schema=False)

#: More ids than this in one link is a mistake or an attack, not a comparison.
MAX_RUNS = 1000
#: Up to this many runs the table has a column per run; more, a row per run.
COLUMNS_UP_TO = 8
#: Runs as rows, the table shows this many (the best by the sort metric) unless asked for all: the
#: plots show every run, and a thousand table rows cost more to send than they are read.
TABLE_ROWS = 100
#: Beyond this many runs an overlaid chart draws the best ones as lines and the rest as a band.
TOP_LINES = 20
#: Points per run of an overlaid chart (half a wide screen: more would not be seen).
SERIES_POINTS = 400
#: Parallel coordinates start with at most this many axes (the user picks others).
DEFAULT_AXES = 10
_RUN_ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,255}$", re.ASCII)
_DIRECTIONS = ("asc", "desc")
#: Metrics whose best value is the lowest, for the default direction of a sort.
_LOWER_IS_BETTER = re.compile(r"loss|err|mse|mae|rmse|perplexity|time|latency", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    """One param or metric across the compared runs, as the table and the plots use it."""

    id: str  # "param:lr", "metric:loss": the name in URLs and in the JSON block
    kind: str  # "param" | "metric"
    key: str
    #: Per run: the param's text or the metric's value; None when the run lacks it.
    raw: list[Any]
    #: Per run, for the plots: a number, or an index into `categories` (an ordinal axis); None
    #: when missing or not finite.
    plot: list[float | int | None]
    categories: list[str] | None
    differs: bool

    @property
    def numeric(self) -> bool:
        return self.categories is None

    def cells(self, count: int) -> list[str]:
        """What the table shows for the first `count` runs."""
        if self.kind == "param":
            return ["" if v is None else v for v in self.raw[:count]]
        return [format_number(v) for v in self.raw[:count]]


def parse_run_ids(values: list[str]) -> list[str]:
    """`runs=a,b&runs=c` -> [a, b, c], in order, without repeats; refuses what cannot be a run id."""
    ids: list[str] = []
    for value in values:
        ids.extend(part.strip() for part in value.split(",") if part.strip())
    if len(ids) > MAX_RUNS:
        raise bad_request(
            f"At most {MAX_RUNS:,} runs can be compared at once; this link names {len(ids):,}. "
            "Narrow the selection on the runs page."
        )
    bad = [i for i in ids if not _RUN_ID.match(i)]
    if bad:
        shown = ", ".join(repr(b[:40]) for b in bad[:5])
        raise bad_request(f"Not a run id: {shown}{' and more' if len(bad) > 5 else ''}.")
    unique = list(dict.fromkeys(ids))
    if len(unique) < 2:
        raise bad_request("Compare needs at least two runs: /compare?runs=ID,ID,... (select them on the runs page).")
    return unique


def _parse_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _plot_number(value: float | None) -> float | None:
    """7 significant digits: what a plot can show, and a third of the JSON of 17."""
    return float(f"{value:.7g}") if value is not None and math.isfinite(value) else None


def build_columns(runs: list[ComparedRun]) -> list[Column]:
    """Metrics (the outcome, read first) then params, each sorted by key. `differs` when any two runs
    disagree (a missing value is a value of its own, NaN equals NaN). A param whose values all read
    as numbers is numeric; any other is categorical, its sorted distinct values an ordinal axis."""
    columns: list[Column] = []
    for key in sorted({k for r in runs for k in r.metrics}):
        values = [r.metrics.get(key) for r in runs]
        distinct = {"NaN" if v is not None and math.isnan(v) else v for v in values}
        columns.append(
            Column(f"metric:{key}", "metric", key, values, [_plot_number(v) for v in values], None, len(distinct) > 1)
        )
    for key in sorted({k for r in runs for k in r.params}):
        texts = [r.params.get(key) for r in runs]
        numbers = [None if t is None else _parse_number(t) for t in texts]
        categorical = any(n is None and t is not None for t, n in zip(texts, numbers, strict=True))
        categories: list[str] | None = None
        plot: list[float | int | None] = list(numbers)
        if categorical:
            categories = sorted({t for t in texts if t is not None})
            index = {c: i for i, c in enumerate(categories)}
            plot = [None if t is None else index[t] for t in texts]
        columns.append(Column(f"param:{key}", "param", key, texts, plot, categories, len(set(texts)) > 1))
    return columns


def plot_data(runs: list[ComparedRun], columns: list[Column]) -> dict[str, Any]:
    """The JSON block for the canvas modules: the runs' ids and names, and each column's plot values."""
    data_columns = []
    for column in columns:
        entry: dict[str, Any] = {"id": column.id, "kind": column.kind, "key": column.key, "values": column.plot}
        if column.categories is not None:
            entry["categories"] = column.categories
        data_columns.append(entry)
    return {
        "runs": [{"id": r.run_id, "name": r.name or r.run_id[:8]} for r in runs],
        "columns": data_columns,
    }


def sort_runs(runs: list[ComparedRun], key: str, direction: str) -> list[ComparedRun]:
    """Best first by the metric; runs without it (or with NaN) last, in their given order."""
    def rank(run: ComparedRun) -> tuple[int, float]:
        value = run.metrics.get(key)
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, value if direction == "asc" else -value)

    return sorted(runs, key=rank)


def default_axes(columns: list[Column], sort_key: str) -> list[str]:
    """Params and metrics that differ, params first, the sort metric last (the right-most axis is
    where a reader looks for the outcome)."""
    differing = [c.id for c in columns if c.differs and c.kind == "param"]
    differing += [c.id for c in columns if c.differs and c.kind == "metric" and c.key != sort_key]
    chosen = differing[: DEFAULT_AXES - 1] if sort_key else differing[:DEFAULT_AXES]
    if sort_key:
        chosen.append(f"metric:{sort_key}")
    return chosen


def chart_keys(runs: list[ComparedRun], metric_keys: list[str], sort: str) -> list[str]:
    """The metrics worth a chart over steps: logged beyond step 0 by some run (their latest step
    says so); the sort metric first."""
    stepped = [k for k in metric_keys if any(r.steps.get(k, 0) > 0 for r in runs)]
    return sorted(stepped, key=lambda k: (k != sort, k))


def page_url(run_ids: list[str], **state: Any) -> str:
    """This page's URL with `state` (query-string values; None or "" left out)."""
    query: list[tuple[str, str]] = []
    for name, value in state.items():
        if isinstance(value, list):
            query.extend((name, v) for v in value)
        elif value not in (None, ""):
            query.append((name, str(value)))
    # Run ids are letters, digits, `_` and `-` (parse_run_ids): nothing to escape, and quoting
    # 33 KB of them character by character cost more than the rest of the page.
    rest = "&" + urlencode(query) if query else ""
    return "/compare?runs=" + ",".join(run_ids) + rest


def selection(
    request: Request, sort: str, dir: str, chart_key: str | None = None
) -> tuple[list[str], list[ComparedRun], list[str], str]:
    """The runs of `?runs=` that exist, best first by `sort` (else in the link's order): the ids as
    given, the runs, the ids not found, and the sort direction. Fewer than two runs is a 400.
    With `chart_key`, the runs carry only that metric and the sort metric (for one chart)."""
    run_ids = parse_run_ids(request.query_params.getlist("runs"))
    if dir and dir not in _DIRECTIONS:
        raise bad_request(f"dir must be asc or desc, not {dir[:40]!r}.")
    engine = tracking_store(request).engine  # type: ignore[attr-defined]
    if chart_key is None:
        runs = compared_runs(engine, run_ids)
    else:
        runs = compared_runs(engine, run_ids, params=False, metric_keys=[chart_key, sort] if sort else [chart_key])
    found = {r.run_id for r in runs}
    missing = [i for i in run_ids if i not in found]
    if len(runs) < 2:
        if missing:
            raise bad_request(
                f"No run with id {', '.join(missing[:5])}{' and more' if len(missing) > 5 else ''}: "
                f"{len(runs)} of the {len(run_ids)} runs in this link exist, and comparing needs two."
            )
        raise bad_request("Compare needs at least two runs.")
    if sort and not any(sort in r.metrics for r in runs):
        raise bad_request(f"None of these runs has a metric named {sort[:250]!r} to sort by.")
    direction = dir or ("asc" if sort and _LOWER_IS_BETTER.search(sort) else "desc")
    if sort:
        runs = sort_runs(runs, sort, direction)
    return run_ids, runs, missing, direction


@router.get("/compare")
def compare_page(
    request: Request,
    diff: str = "",
    sort: str = "",
    dir: str = "",
    x: str = "",
    y: str = "",
    table: str = "",
) -> Response:
    """The page: table, plots, and the overlaid charts' placeholders (filled from `/compare/series`)."""
    if diff not in ("", "0", "1"):
        raise bad_request(f"diff must be 1 or 0, not {diff[:40]!r}.")
    if table not in ("", "all"):
        raise bad_request(f"table must be all or left out, not {table[:40]!r}.")
    run_ids, runs, missing, direction = selection(request, sort, dir)
    metric_keys = sorted({k for r in runs for k in r.metrics})
    columns = build_columns(runs)
    known = {c.id for c in columns}
    axes = [a for a in request.query_params.getlist("axis") if a in known] or default_axes(columns, sort)
    only_diff = diff == "1"
    shown = [c for c in columns if c.differs or not only_diff]
    query = request.query_params
    state = {
        "sort": sort, "dir": dir, "x": x, "y": y, "xlog": query.get("xlog"), "ylog": query.get("ylog"),
        "axis": query.getlist("axis"), "brush": query.getlist("brush"), "table": table,
    }
    layout = "columns" if len(runs) <= COLUMNS_UP_TO else "rows"
    table_runs = len(runs) if layout == "columns" or table == "all" else min(len(runs), TABLE_ROWS)
    return page(
        request,
        "compare.html",
        runs=runs,
        run_ids=run_ids,
        missing=missing,
        columns=shown,
        rows=list(zip(*[c.cells(table_runs) for c in shown], strict=True)) if shown else [()] * table_runs,
        table_runs=table_runs,
        table_all=table == "all",
        all_rows_url=page_url(run_ids, diff=diff, **{**state, "table": "all"}),
        all_columns=columns,
        hidden_count=len(columns) - len(shown),
        layout=layout,
        only_diff=only_diff,
        toggle_url=page_url(run_ids, diff="" if only_diff else "1", **state),
        sort=sort,
        direction=direction,
        metric_keys=metric_keys,
        chart_keys=chart_keys(runs, metric_keys, sort),
        top_lines=TOP_LINES,
        scales={"xlog": query.get("xlog") == "1", "ylog": query.get("ylog") == "1"},
        brushes=query.getlist("brush"),
        axes=axes,
        plot={"data": plot_data(runs, columns), "x": x, "y": y, "axes": axes, "sort": sort,
              "best": "low" if direction == "asc" else "high"},
        experiments=sorted({(r.experiment_id, r.experiment_name) for r in runs}),
    )


@router.get("/compare/series")
def compare_series(request: Request, key: str = "", sort: str = "", dir: str = "") -> Response:
    """One overlaid chart's data as JSON: `key`'s history for the best `TOP_LINES` runs (by `sort`,
    else the link's order), each downsampled to about `SERIES_POINTS` points (`metric_series`), and
    for the rest, when there are more, their min/max band in as many step buckets (`metric_band`)."""
    if not key:
        raise bad_request("Say which metric to chart: key=<metric key>.")
    _, runs, _, _ = selection(request, sort, dir, chart_key=key)
    engine = tracking_store(request).engine  # type: ignore[attr-defined]
    having = [r for r in runs if key in r.metrics]
    top, rest = having[:TOP_LINES], having[TOP_LINES:]
    series = metric_series(engine, [r.run_id for r in top], key, max_points=SERIES_POINTS)
    band = metric_band(engine, [r.run_id for r in rest], key, SERIES_POINTS) if rest else None
    payload = {
        "key": key,
        "runs": len(having),
        "lines": [
            {"run_id": r.run_id, "name": r.name or r.run_id[:8], "x": s.x, "y": [_finite(v) for v in s.y],
             "sampled": s.sampled}
            for r in top
            if (s := series.get(r.run_id)) is not None
        ],
        "band": None if band is None else {
            "runs": len(rest), "x": band.x, "low": [_plot_number(v) for v in band.low],
            "high": [_plot_number(v) for v in band.high],
        },
    }
    return json_response(request, payload)
