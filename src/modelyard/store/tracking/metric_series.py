"""Metric series for charts: a metric's history reduced in SQL to about `max_points` points per run.

Why: a 100,000-step metric is megabytes of JSON, and a chart cannot show more points than it has
pixels (MLflow's UI pulls whole histories, or summarises only the last page of one). Here the
database groups the points of the requested x range into at most `max_points` equal-width buckets
(`GROUP BY (x - lo) / width`, integer division) and returns, per bucket, the mean, the minimum and the
maximum value: a chart draws the mean as its line and the min/max as a band, so no spike is lost, and
at most `max_points` rows per run leave the database. When the range holds no more than `max_points`
points (a zoomed-in range, or a short metric) the real points come back unchanged instead.

The summary (count, min, max, last) is computed over the run's WHOLE history of the key, in SQL,
whatever range was asked for: it never comes from a sample. When the range is the whole history (a
chart's first load) it is folded out of the same scan that builds the buckets (the minimum of the
buckets' minima is the history's minimum), so a first load reads the points once; for a zoomed range
it costs one more scan, which a caller that already has it skips with `with_summary=False`.

Cost per run: the x extent (index endpoints for steps; one covering-index scan for time axes), one
read of at most `max_points + 1` points, and, only when the range holds more than that, one grouped
scan of the range (on PostgreSQL steered to hash aggregation: the planner otherwise sorts 100,000
rows by bucket, on disk).

x axes: `step`; `timestamp` (wall time, ms since the epoch); `relative` (ms since the run's first
point of this metric, a per-run zero). `x_min`/`x_max` are inclusive bounds in the axis's unit; None
means the run's own first/last x. NaN values are stored as 0 with `is_nan` set: they are counted,
never enter min/max/mean, and show as gaps (None) among real points.

On PostgreSQL a sampled whole-history series (a chart's first load) is also stored, in
`metric_series_cache` with the history's count, min and max, and read back as one row: a first load
of a 100,000-point metric took ~40 ms of PostgreSQL on an idle core (110-200 ms on a busy 2-core
machine), every time, for a history that seldom changes once its run is done. A stored series is
served only while it is its history's: every metric write of a key counts itself in the key's
`latest_metrics.history_version`, in the statement that inserts the points (`pg_metrics.LOG_METRICS`;
even a write of points older than the latest one, which leaves the latest point as it was), and a
series records the version it was read at BEFORE its points were, so a write since makes it out of
date (recomputed and stored again), never wrong. It also records the latest point, which moves on
any newer point whoever writes it. What nothing detects: a point older than the latest one added by
a writer that does not count writes (the release before this one, during a rollback, or an
operator's INSERT): that key's stored series stays out of date until its next counted write.
Zoomed ranges, short histories and SQLite are computed on each request; nothing is written on the
metric write path but the counter, in a row the write updates anyway.

Used by the run page's charts and, for overlaid charts, the compare page; keep the signature of
`metric_series` stable.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, case, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError

from modelyard.entities.run import float_from_json, float_to_json
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.schema import SqlLatestMetric, SqlMetric, SqlMetricSeriesCache

_log = logging.getLogger(__name__)
X_AXES = ("step", "timestamp", "relative")
#: About one point per horizontal pixel of a wide chart.
DEFAULT_MAX_POINTS = 1500
#: The most a caller may ask for per run (a request is bounded whatever its query string says).
MAX_POINTS_LIMIT = 10_000
MIN_POINTS = 10


@dataclass(frozen=True)
class SeriesSummary:
    """A run's whole history of one metric key (never a sample)."""

    #: Every point, NaN ones included.
    count: int
    #: Over the non-NaN values (may be +-inf); None when every value is NaN.
    min: float | None
    max: float | None
    #: The latest point as MLflow defines it (greatest step, then timestamp); NaN when that value is.
    last: float
    last_step: int
    last_timestamp: int
    min_step: int
    max_step: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": _json_number(self.min),
            "max": _json_number(self.max),
            "last": _json_number(self.last),
            "last_step": self.last_step,
            "last_timestamp": self.last_timestamp,
            "min_step": self.min_step,
            "max_step": self.max_step,
        }


@dataclass(frozen=True)
class RunSeries:
    """One run's points of one metric in the requested range, in x order.

    `sampled` False: the real points (`y_min == y == y_max`, None for a NaN value).
    `sampled` True: one entry per non-empty bucket of `bucket_width` x units: `x` is the bucket's
    first x, `y` the mean of its non-NaN values, `y_min`/`y_max` their minimum/maximum (None when the
    bucket holds only NaN values).
    """

    run_id: str
    key: str
    x_axis: str
    #: None only when the caller asked for a part of the history `with_summary=False`.
    summary: SeriesSummary | None
    sampled: bool
    #: The bucket width in x units (1 when not sampled).
    bucket_width: int
    #: Points of the history inside the requested range (the sum over buckets when sampled).
    points_in_range: int
    #: The range actually covered, in x units: the request's bounds clipped to the history's extent.
    x_lo: int
    x_hi: int
    x: list[int] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)
    y_min: list[float | None] = field(default_factory=list)
    y_max: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite values in the arrays become None (a chart gap), the summary's become
        MLflow's strings ("NaN", "Infinity", "-Infinity")."""
        return {
            "run_id": self.run_id,
            "key": self.key,
            "x_axis": self.x_axis,
            "sampled": self.sampled,
            "bucket_width": self.bucket_width,
            "points_in_range": self.points_in_range,
            "x_lo": self.x_lo,
            "x_hi": self.x_hi,
            "summary": self.summary.to_dict() if self.summary is not None else None,
            "x": self.x,
            "y": [_finite(v) for v in self.y],
            "y_min": [_finite(v) for v in self.y_min],
            "y_max": [_finite(v) for v in self.y_max],
        }


def metric_summaries(engine: Engine, run_ids: Sequence[str], key: str) -> dict[str, SeriesSummary]:
    """The whole-history summary of `key` for each run that has it (one grouped scan of the history,
    one lookup in `latest_metrics`), in the order of `run_ids`."""
    ids = _ids(run_ids)
    if not ids:
        return {}
    m = SqlMetric.__table__
    value = _real_value(m)
    aggregates = (
        select(
            m.c.run_uuid,
            func.count(),
            func.min(value),
            func.max(value),
            func.min(m.c.step),
            func.max(m.c.step),
        )
        .where(m.c.run_uuid.in_(ids), m.c.key == key)
        .group_by(m.c.run_uuid)
    )
    with engine.execution_options(**READ_ONLY).connect() as conn:
        lasts = _last_points(conn, ids, key)
        found = {
            run_id: _summary(count, low, high, min_step, max_step, lasts.get(run_id))
            for run_id, count, low, high, min_step, max_step in conn.execute(aggregates)
        }
    return {r: found[r] for r in ids if r in found}


def metric_series(
    engine: Engine,
    run_ids: Sequence[str],
    key: str,
    x_axis: str = "step",
    x_min: float | None = None,
    x_max: float | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    *,
    with_summary: bool = True,
) -> dict[str, RunSeries]:
    """Each run's points of `key` between `x_min` and `x_max` (inclusive), at most `max_points` per run.

    Runs without the metric are absent; the rest keep the order of `run_ids`. `with_summary=False`
    leaves `summary` None when the range is not the whole history (no scan of the rest). A bad `x_axis`,
    `max_points` or bound is INVALID_PARAMETER_VALUE.
    """
    if x_axis not in X_AXES:
        raise ModelyardException.invalid_parameter(
            f"x_axis must be one of {', '.join(X_AXES)}, not {x_axis!r}."
        )
    if (
        isinstance(max_points, bool)
        or not isinstance(max_points, int)
        or not (MIN_POINTS <= max_points <= MAX_POINTS_LIMIT)
    ):
        raise ModelyardException.invalid_parameter(
            f"max_points must be an integer from {MIN_POINTS} to {MAX_POINTS_LIMIT}, not {max_points!r}."
        )
    for name, bound in (("x_min", x_min), ("x_max", x_max)):
        if bound is not None and not (isinstance(bound, (int, float)) and math.isfinite(bound)):
            raise ModelyardException.invalid_parameter(f"{name} must be a finite number, not {bound!r}.")
    ids = _ids(run_ids)
    out: dict[str, RunSeries] = {}
    if not ids:
        return out
    built: list[tuple[RunSeries, int]] = []
    with engine.execution_options(**READ_ONLY).connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        storable = postgres and x_min is None and x_max is None
        lasts = _last_points(conn, ids, key)  # first: a series built below is at least this new
        stored = _stored_series(conn, lasts, key, x_axis, max_points) if storable and lasts else {}
        if postgres and len(stored) < len(lasts):
            # Hash aggregation for the buckets: with a fresh table's statistics (or none) the planner
            # sorts every point by bucket instead, spilling to disk (~110 ms for 100,000 points).
            conn.execute(text("SET LOCAL enable_sort = off"))
        for run_id in ids:
            if run_id in stored:
                out[run_id] = stored[run_id]
            elif run_id in lasts:
                series = _run_series(
                    conn, run_id, key, x_axis, x_min, x_max, max_points, lasts[run_id], with_summary
                )
                if series is not None:
                    out[run_id] = series
                    if storable and series.sampled:
                        built.append((series, lasts[run_id][4]))
    if built:
        _store_series(engine, built, max_points)
    return out


def _stored_series(
    conn: Connection, lasts: dict[str, tuple[Any, ...]], key: str, x_axis: str, max_points: int
) -> dict[str, RunSeries]:
    """The stored series of these runs that are still their history's: built at the key's current
    history_version and latest point (a release that does not count writes still moves the latter)."""
    cache = SqlMetricSeriesCache.__table__
    rows = conn.execute(
        select(cache.c.run_uuid, cache.c.history_version, cache.c.body).where(
            cache.c.run_uuid.in_(list(lasts)),
            cache.c.key == key,
            cache.c.x_axis == x_axis,
            cache.c.max_points == max_points,
        )
    )
    out = {}
    for run_id, version, body in rows:
        value, is_nan, step, timestamp, current = lasts[run_id]
        series = _decode(body, run_id, key, x_axis)
        if (
            version == current
            and series.summary
            and _last_of(series.summary) == (step, timestamp, value, is_nan)
        ):
            out[run_id] = series
    return out


def _store_series(engine: Engine, built: list[tuple[RunSeries, int]], max_points: int) -> None:
    """Keep sampled whole-history series, each with the history_version it was built at (read before
    its points were): a write of the key since makes it out of date, never wrong. Rows go in in run
    order (two requests storing the same runs lock them in one order). Best effort: a database that
    refuses the write (a read-only user, a lock or statement timeout) costs the next load a recompute,
    not this one its answer."""
    cache = SqlMetricSeriesCache.__table__
    rows = [
        {
            "run_uuid": series.run_id,
            "key": series.key,
            "x_axis": series.x_axis,
            "max_points": max_points,
            "history_version": version,
            "body": _encode(series),
        }
        for series, version in sorted(built, key=lambda item: item[0].run_id)
    ]
    insert = pg_insert(cache).values(rows)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(
                    constraint="metric_series_cache_pk",
                    set_={"history_version": insert.excluded.history_version, "body": insert.excluded.body},
                    where=cache.c.history_version < insert.excluded.history_version,
                )
            )
    except SQLAlchemyError as exc:
        _log.warning(
            "Could not store the chart series of %d run(s) for %r: %s", len(rows), built[0][0].key, exc
        )


def _last_of(summary: SeriesSummary) -> tuple[int, int, float, bool]:
    """The latest point as latest_metrics holds it (NaN as 0 with is_nan)."""
    nan = math.isnan(summary.last)
    return (summary.last_step, summary.last_timestamp, 0.0 if nan else summary.last, nan)


#: A stored series: a JSON header, then x (int64) and y, y_min, y_max (float64, NaN for None), little-endian.
_HEADER_LENGTH = struct.Struct("<I")


def _encode(series: RunSeries) -> bytes:
    summary = series.summary
    assert summary is not None  # a whole-history series always has its summary
    header = orjson.dumps(
        {
            "n": len(series.x),
            "count": summary.count,
            "min": _json_number(summary.min),
            "max": _json_number(summary.max),
            "last": _json_number(summary.last),
            "last_step": summary.last_step,
            "last_timestamp": summary.last_timestamp,
            "min_step": summary.min_step,
            "max_step": summary.max_step,
            "bucket_width": series.bucket_width,
            "points_in_range": series.points_in_range,
            "x_lo": series.x_lo,
            "x_hi": series.x_hi,
        }
    )
    n = len(series.x)
    floats = [math.nan if v is None else v for v in (*series.y, *series.y_min, *series.y_max)]
    return b"".join(
        (
            _HEADER_LENGTH.pack(len(header)),
            header,
            struct.pack(f"<{n}q", *series.x),
            struct.pack(f"<{3 * n}d", *floats),
        )
    )


def _decode(body: bytes, run_id: str, key: str, x_axis: str) -> RunSeries:
    (length,) = _HEADER_LENGTH.unpack_from(body)
    start = _HEADER_LENGTH.size + length
    head = orjson.loads(body[_HEADER_LENGTH.size : start])
    n = head["n"]
    xs = list(struct.unpack_from(f"<{n}q", body, start))
    floats = [None if v != v else v for v in struct.unpack_from(f"<{3 * n}d", body, start + 8 * n)]
    summary = SeriesSummary(
        count=head["count"],
        min=None if head["min"] is None else float_from_json(head["min"]),
        max=None if head["max"] is None else float_from_json(head["max"]),
        last=float_from_json(head["last"]),
        last_step=head["last_step"],
        last_timestamp=head["last_timestamp"],
        min_step=head["min_step"],
        max_step=head["max_step"],
    )
    return RunSeries(
        run_id,
        key,
        x_axis,
        summary,
        sampled=True,
        bucket_width=head["bucket_width"],
        points_in_range=head["points_in_range"],
        x_lo=head["x_lo"],
        x_hi=head["x_hi"],
        x=xs,
        y=floats[:n],
        y_min=floats[n : 2 * n],
        y_max=floats[2 * n :],
    )


def _run_series(
    conn: Connection,
    run_id: str,
    key: str,
    x_axis: str,
    x_min: float | None,
    x_max: float | None,
    max_points: int,
    last: tuple[Any, ...],
    with_summary: bool = True,
) -> RunSeries | None:
    m = SqlMetric.__table__
    of_run = (m.c.run_uuid == run_id, m.c.key == key)
    # The extent: steps from the index's two ends; timestamps from one covering-index scan.
    first_step = select(func.min(m.c.step)).where(*of_run).scalar_subquery()
    last_step = select(func.max(m.c.step)).where(*of_run).scalar_subquery()
    if x_axis == "step":
        min_step, max_step = conn.execute(select(first_step, last_step)).one()
        if min_step is None:
            return None
        x_col: Any = m.c.step
        full = (int(min_step), int(max_step))
    else:
        min_step, max_step, first_ts, last_ts = conn.execute(
            select(first_step, last_step, func.min(m.c.timestamp), func.max(m.c.timestamp)).where(*of_run)
        ).one()
        if min_step is None:
            return None
        zero = int(first_ts) if x_axis == "relative" else 0
        x_col = m.c.timestamp - literal(zero) if zero else m.c.timestamp
        full = (int(first_ts) - zero, int(last_ts) - zero)
    # Integer bounds that keep every point of the asked range (x values are whole numbers).
    lo = full[0] if x_min is None else max(full[0], math.ceil(x_min))
    hi = full[1] if x_max is None else min(full[1], math.floor(x_max))
    whole = (lo, hi) == full
    in_range = (*of_run, x_col >= lo, x_col <= hi)

    # The real points, when there are few enough: reading stops after max_points + 1 rows. Read in
    # the index's order (no sort of the whole range for a time axis), put in x order here.
    raw = (
        conn.execute(
            select(x_col, m.c.value, m.c.is_nan)
            .where(*in_range)
            .order_by(m.c.step, m.c.timestamp, m.c.value)
            .limit(max_points + 1)
        ).all()
        if hi >= lo
        else []
    )
    if x_axis != "step":
        raw.sort(key=lambda row: row[0])  # stable: points at one time stay in step order
    if len(raw) <= max_points:
        sampled, width, total = False, 1, len(raw)
        xs = [int(x) for x, _, _ in raw]
        means = [None if is_nan else float(v) for _, v, is_nan in raw]
        lows, highs = list(means), list(means)
    else:
        # Too many: equal-width buckets over [lo, hi], at most max_points of them, in one grouped scan.
        sampled, width = True, max(1, -(-(hi - lo + 1) // max_points))
        bucket = ((x_col - literal(lo)) // literal(width)).label("bucket")
        value = _real_value(m)
        grouped = (
            select(bucket, func.min(x_col), func.avg(value), func.min(value), func.max(value), func.count())
            .where(*in_range)
            .group_by(bucket)
        )
        rows = sorted(conn.execute(grouped).all(), key=lambda row: row[0])
        xs = [int(row[1]) for row in rows]
        means = [_number(row[2]) for row in rows]
        lows = [None if row[3] is None else float(row[3]) for row in rows]
        highs = [None if row[4] is None else float(row[4]) for row in rows]
        total = sum(int(row[5]) for row in rows)
    summary: SeriesSummary | None = None
    if whole:  # the series covers the whole history: its extremes are the history's
        low = min((v for v in lows if v is not None), default=None)
        high = max((v for v in highs if v is not None), default=None)
        summary = _summary(total, low, high, min_step, max_step, last)
    elif with_summary:
        summary = _range_summary(conn, of_run, min_step, max_step, last)
    return RunSeries(
        run_id,
        key,
        x_axis,
        summary,
        sampled=sampled,
        bucket_width=width,
        points_in_range=total,
        x_lo=lo,
        x_hi=hi,
        x=xs,
        y=means,
        y_min=lows,
        y_max=highs,
    )


def _range_summary(
    conn: Connection, of_run: tuple[Any, ...], min_step: Any, max_step: Any, last: tuple[Any, ...]
) -> SeriesSummary:
    """The whole history's count, min and max when the series itself covered only part of it."""
    value = _real_value(SqlMetric.__table__)
    count, low, high = conn.execute(
        select(func.count(), func.min(value), func.max(value)).where(*of_run)
    ).one()
    return _summary(count, low, high, min_step, max_step, last)


def _last_points(conn: Connection, run_ids: list[str], key: str) -> dict[str, tuple[Any, ...]]:
    """run id -> (value, is_nan, step, timestamp, history_version) of its latest point of `key`."""
    latest = SqlLatestMetric.__table__
    rows = conn.execute(
        select(
            latest.c.run_uuid,
            latest.c.value,
            latest.c.is_nan,
            latest.c.step,
            latest.c.timestamp,
            latest.c.history_version,
        ).where(latest.c.run_uuid.in_(run_ids), latest.c.key == key)
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def _summary(
    count: Any, low: Any, high: Any, min_step: Any, max_step: Any, last: tuple[Any, ...] | None
) -> SeriesSummary:
    last_value, last_nan, last_step, last_ts = last[:4] if last is not None else (math.nan, True, max_step, 0)
    return SeriesSummary(
        count=int(count),
        min=None if low is None else float(low),
        max=None if high is None else float(high),
        last=math.nan if last_nan else float(last_value),
        last_step=int(last_step),
        last_timestamp=int(last_ts),
        min_step=int(min_step),
        max_step=int(max_step),
    )


def _ids(run_ids: Sequence[str]) -> list[str]:
    return [r for r in dict.fromkeys(run_ids) if isinstance(r, str) and r]


def _real_value(m: Any) -> Any:
    """The stored value, NULL for a NaN point (aggregates then skip it)."""
    return case((m.c.is_nan, None), else_=m.c.value)


def _number(value: Any) -> float | None:
    """A bucket's mean: None for no value, and for NaN (a bucket holding both infinities)."""
    return None if value is None or value != value else float(value)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _json_number(value: float | None) -> float | str | None:
    return None if value is None else float_to_json(value)
