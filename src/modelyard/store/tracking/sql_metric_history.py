"""Metric histories in the SQL tracking store: keyset pages of one run's points of one key."""

from __future__ import annotations

import math
from collections.abc import Sequence
from math import isfinite
from typing import Any

from sqlalchemy import select, text, tuple_

from modelyard.entities import Metric, PagedList
from modelyard.entities.run import float_to_json
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits
from modelyard.store.search.paging import decode_position, next_keyset_page, query_fingerprint
from modelyard.store.sql.rows import fetch_tuples
from modelyard.store.sql.schema import SqlMetric
from modelyard.store.tracking.sql_sessions import SqlSessions

#: A history page token's sort key: (step, timestamp, stored value).
_HISTORY_KEY_TYPES = ("int", "int", "float")


class SqlMetricHistory(SqlSessions):
    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int = limits.GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        rows, token = self._metric_history_rows(run_id, metric_key, max_results, page_token)
        return PagedList(
            [Metric(metric_key, math.nan if is_nan else value, ts, step) for value, ts, step, is_nan in rows],
            token,
        )

    def get_metric_history_dicts(
        self,
        run_id: str,
        metric_key: str,
        max_results: int = limits.GET_METRIC_HISTORY_MAX_RESULTS,
        page_token: str | None = None,
    ) -> PagedList[dict[str, Any]]:
        # Straight from row tuples: a Metric per point plus its to_dict() was half of a page.
        rows, token = self._metric_history_rows(run_id, metric_key, max_results, page_token)
        return PagedList(
            [
                {
                    "key": metric_key,
                    "value": "NaN" if is_nan else value if isfinite(value) else float_to_json(value),
                    "timestamp": ts,
                    "step": step,
                }
                for value, ts, step, is_nan in rows
            ],
            token,
        )

    def _metric_history_rows(
        self, run_id: str, metric_key: str, max_results: int | None, page_token: str | None
    ) -> tuple[list[Sequence[Any]], str | None]:
        """One page of (stored value, timestamp, step, is_nan) in (step, timestamp, value) order.

        Keyset paging on the metrics primary key: the token holds the page's last (step, timestamp,
        stored value), which is unique per run and key, and the next page starts right after it in
        the index, however deep into the series it is (OFFSET re-read every earlier page)."""
        if max_results is None:
            max_results = limits.GET_METRIC_HISTORY_MAX_RESULTS
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise ModelyardException.invalid_parameter(
                f"Invalid value {max_results!r} for parameter 'max_results': it must be a positive integer."
            )
        max_results = min(max_results, limits.GET_METRIC_HISTORY_MAX_RESULTS)
        fingerprint = query_fingerprint("metric-history", run_id, metric_key)
        position = decode_position(page_token, fingerprint, _HISTORY_KEY_TYPES)
        m = SqlMetric.__table__
        sort_key = (m.c.step, m.c.timestamp, m.c.value)
        stmt = (
            select(m.c.value, m.c.timestamp, m.c.step, m.c.is_nan)
            .where(m.c.run_uuid == run_id, m.c.key == metric_key)
            .order_by(*sort_key)
            .limit(max_results + 1)
        )
        if position.after is not None:
            stmt = stmt.where(tuple_(*sort_key) > tuple_(*position.after))
        elif position.offset:
            stmt = stmt.offset(position.offset)
        with self._read() as session:
            self._run_columns(session, run_id)
            if session.get_bind().dialect.name == "postgresql":
                # The one good plan is the primary key's index scan, already in order. Per-column
                # statistics badly underestimate how many points of one run lie after the key, and
                # PostgreSQL then picks a bitmap scan of the whole rest plus a sort that spills to disk
                # (85 ms instead of 7 ms for a 25,000-point page).
                session.execute(text("SET LOCAL enable_sort = off"))
            rows = fetch_tuples(session, stmt)
        return next_keyset_page(rows, max_results, fingerprint, lambda row: (row[2], row[1], row[0]))
