"""A page of a run search on PostgreSQL as MLflow's REST JSON objects (exactly what
`Run.to_dict()` gives for the entity path), in ONE statement and without entity objects.

The search's id SELECT becomes a CTE joined to `runs`; correlated subqueries build each run's
`{"info":..,"data":..}` JSON text (params, tags and latest metrics ordered by key, empty lists left
out), its dataset input bodies and its model outputs. Python parses each run's text with orjson and
the response is serialised by orjson as before, so the body is byte-for-byte the entity path's:
floats come back as the same doubles (PostgreSQL prints them round-trip exact; integral values get a
".0" so they stay floats), NaN/Infinity are spelled as MLflow does, and input bodies go through
`json.loads` as they always did. The entity path took seven round trips and ~1,100 Python objects
per page of 100 runs.

SQLite keeps the entity path (`SqlTrackingStore._load_runs`): it is in-process, and its JSON
functions print doubles with 15 digits, which would lose precision.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import Select, Table, literal_column, select
from sqlalchemy.orm import Session

from modelyard.store.sql.schema import SqlRun
from modelyard.store.tracking.sql_search import RunSearch, plan_each_search

runs_t: Table = SqlRun.__table__  # type: ignore[assignment]

# The run's JSON text, for the row of `runs` aliased `r` (PostgreSQL). json_build_object keeps key
# order; json_strip_nulls drops start_time/end_time when NULL (the entity omits them too).
_METRIC_VALUE = """CASE WHEN m.is_nan THEN '"NaN"'
    WHEN m.value = trunc(m.value) AND abs(m.value) < 1e15 THEN m.value::text || '.0'
    ELSE to_json(m.value)::text END"""
_RUN_JSON = f"""'{{"info":' || json_strip_nulls(json_build_object(
    'run_id', r.run_uuid, 'run_uuid', r.run_uuid, 'run_name', coalesce(r.name, ''),
    'experiment_id', r.experiment_id::text, 'user_id', coalesce(r.user_id, ''), 'status', r.status,
    'artifact_uri', coalesce(r.artifact_uri, ''), 'lifecycle_stage', r.lifecycle_stage,
    'start_time', r.start_time, 'end_time', r.end_time))::text
  || ',"data":{{' || concat_ws(',',
    (SELECT '"metrics":[' || string_agg('{{"key":' || to_json(m.key)::text || ',"value":' || {_METRIC_VALUE}
        || ',"timestamp":' || m.timestamp::text || ',"step":' || m.step::text || '}}', ',' ORDER BY m.key)
        || ']' FROM latest_metrics m WHERE m.run_uuid = r.run_uuid),
    (SELECT '"params":[' || string_agg('{{"key":' || to_json(p.key)::text || ',"value":'
        || to_json(p.value)::text || '}}', ',' ORDER BY p.key) || ']'
        FROM params p WHERE p.run_uuid = r.run_uuid),
    (SELECT '"tags":[' || string_agg('{{"key":' || to_json(t.key)::text || ',"value":'
        || to_json(coalesce(t.value, ''))::text || '}}', ',' ORDER BY t.key) || ']'
        FROM tags t WHERE t.run_uuid = r.run_uuid)
  ) || '}}}}'"""
_INPUTS = "(SELECT array_agg(i.body ORDER BY i.digest) FROM run_inputs i WHERE i.run_uuid = r.run_uuid)"
_OUTPUTS = """(SELECT '[' || string_agg('{"model_id":' || to_json(o.model_id)::text || ',"step":'
    || o.step::text || '}', ',' ORDER BY o.step, o.model_id) || ']'
    FROM run_model_outputs o WHERE o.run_uuid = r.run_uuid)"""


def search_page_dicts(session: Session, search: RunSearch) -> tuple[list[dict[str, Any]], str | None]:
    """The page of a compiled run search as REST dicts, and the next page's token (PostgreSQL)."""
    plan_each_search(session)
    rows, token = search.paginate(
        search.fetch(lambda ids: session.execute(_with_json(ids, search)).all()), slice(3, None)
    )
    return [_from_json_row(*row[:3]) for row in rows], token


def _with_json(ids: Select[Any], search: RunSearch) -> Select[Any]:
    """(run JSON, input bodies, outputs JSON, sort keys...) for each row of the id SELECT, in its
    order."""
    page = ids.cte("page")
    key_columns = [page.c[f"k{i}"] for i in range(len(search.keys))]
    r = runs_t.alias("r")
    return (
        select(
            literal_column(_RUN_JSON).label("run"),
            literal_column(_INPUTS).label("inputs"),
            literal_column(_OUTPUTS).label("outputs"),
            *key_columns,
        )
        .select_from(page.join(r, r.c.run_uuid == page.c.run_uuid))
        .order_by(*(key.order(column) for key, column in zip(search.keys, key_columns, strict=True)))
    )


def _from_json_row(run: str, inputs: list[str] | None, outputs: str | None) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(run)
    out["inputs"] = {"dataset_inputs": [json.loads(body) for body in inputs]} if inputs else {}
    if outputs:
        out["outputs"] = {"model_outputs": orjson.loads(outputs)}
    return out
