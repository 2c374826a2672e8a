"""A page of a run search on PostgreSQL as MLflow's REST JSON (exactly what `Run.to_dict()`
serialises to on the entity path), in ONE statement and without entity objects or parsing.

The search's id SELECT, widened with the `runs` columns a run's `info` needs and its ready-made params
and tags JSON (`store/sql/run_docs`), becomes a CTE; a correlated subquery builds its latest metrics' JSON
(ordered by key; empty lists are left out) and others fetch its dataset input bodies and model outputs.
Python does not parse that text: each run goes into the response as an `orjson.Fragment`, with
`"inputs"`/`"outputs"` appended, so the body is byte-for-byte the entity path's: floats come back as
the same doubles (PostgreSQL prints them round-trip exact; integral values get a ".0" so they stay
floats), NaN/Infinity are spelled as MLflow does, and input bodies go through `json.loads` and
orjson as they always did. (Parsing and re-serialising 100 runs was ~1.3 ms of a ~7 ms page.)

The compiled SQL is kept with the search's statements (`RunSearch.memo`) and runs on an
autocommitted connection, unprepared: one round trip, planned for this page's values (a generic
plan of a prepared search was 7x slower), without BEGIN, `SET LOCAL plan_cache_mode` and COMMIT.

SQLite keeps the entity path (`run_loading.load_runs`): it is in-process, and its JSON
functions print doubles with 15 digits, which would lose precision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Select, literal_column, select, text, true

from modelyard.store.sql.rows import fetch_compiled
from modelyard.store.tracking.sql_run_page import RunSearch

_INFO_COLUMNS = ("name", "experiment_id", "user_id", "status", "artifact_uri", "lifecycle_stage", "start_time",
                 "end_time", "params_json", "tags_json")  # fmt: skip

# The run's JSON text, for the page row `r` (run_uuid and _INFO_COLUMNS; PostgreSQL) and its metrics
# `lm` (below). json_build_object keeps key order; json_strip_nulls drops start_time/end_time when
# NULL (the entity omits them too). Params and tags come ready-made from the run's row
# (`store/sql/run_docs`); empty lists are NULL there and left out, as the entity leaves them out.
_RUN_JSON = """'{"info":' || json_strip_nulls(json_build_object(
    'run_id', r.run_uuid, 'run_uuid', r.run_uuid, 'run_name', coalesce(r.name, ''),
    'experiment_id', r.experiment_id::text, 'user_id', coalesce(r.user_id, ''), 'status', r.status,
    'artifact_uri', coalesce(r.artifact_uri, ''), 'lifecycle_stage', r.lifecycle_stage,
    'start_time', r.start_time, 'end_time', r.end_time))::text
  || ',"data":{' || concat_ws(',',
    lm.json, '"params":' || r.params_json, '"tags":' || r.tags_json
  ) || '}}'"""
# A metric value as orjson spells it, where PostgreSQL prints it in plain notation (1e-4 <= |v| <
# 1e15, and 0; integral values get a ".0"); NaN and infinities as MLflow spells them. Elsewhere
# PostgreSQL writes an exponent (1e-05, and digits that are not always the shortest above 2**53):
# valid JSON for the same double, but not orjson's text, so `exponents` marks the run for Python.
_METRIC_VALUE = """CASE WHEN m.is_nan THEN '"NaN"'
    WHEN m.value = trunc(m.value) AND abs(m.value) < 1e15 THEN m.value::text || '.0'
    ELSE to_json(m.value)::text END"""
_METRICS_JSON = f"""'"metrics":[' || string_agg('{{"key":' || to_json(m.key)::text || ',"value":'
    || {_METRIC_VALUE} || ',"timestamp":' || m.timestamp::text || ',"step":' || m.step::text || '}}',
    ',' ORDER BY m.key) || ']'"""
_METRICS_EXPONENTS = (
    "bool_or(NOT m.is_nan AND m.value <> 0 AND NOT (abs(m.value) >= 1e-4 AND abs(m.value) < 1e15))"
)
_INPUTS = "(SELECT array_agg(i.body ORDER BY i.digest) FROM run_inputs i WHERE i.run_uuid = r.run_uuid)"
_OUTPUTS = """(SELECT '[' || string_agg('{"model_id":' || to_json(o.model_id)::text || ',"step":'
    || o.step::text || '}', ',' ORDER BY o.step, o.model_id) || ']'
    FROM run_model_outputs o WHERE o.run_uuid = r.run_uuid)"""


def search_page_json(connection: Connection, search: RunSearch) -> tuple[list[orjson.Fragment], str | None]:
    """The page of a compiled run search as each run's REST JSON, and the next page's token
    (PostgreSQL, on an autocommitted connection: each statement is consistent on its own)."""

    def execute(ids: Select[Any]) -> Sequence[Sequence[Any]]:
        key = "pg-json"
        if ids is search.numbers_first:
            key = "pg-json-numbers"
        elif ids is search.non_numbers:
            key = "pg-json-non-numbers"
        elif ids is search.walk:
            key = "pg-json-walk"
        elif ids is search.heads_walk:
            key = "pg-json-heads"
        elif any(ids is walk for walk in search.group_walks):
            key = f"pg-json-group-{[w is ids for w in search.group_walks].index(True)}"
        elif any(ids is driven for driven in search.anchored):
            key = f"pg-json-anchored-{[d is ids for d in search.anchored].index(True)}"
        sql = search.memo.get(key)
        if sql is None:
            sql = search.memo.setdefault(key, _compile(connection, _with_json(ids, search)))
        return fetch_compiled(connection, sql[0], {**sql[1], **search.params}, prepare=False)

    def count(statement: Select[Any]) -> Sequence[Any]:
        key = "pg-groups"
        if search.anchors is not None and statement is search.anchors.counts:
            key = "pg-anchors"
        elif search.heads is not None and statement is search.heads.probe:
            key = "pg-heads"
        elif search.attribute_groups is not None:
            key = "pg-first-value" if statement is search.attribute_groups.first else "pg-next-value"
        sql = search.memo.get(key)
        if sql is None:
            sql = search.memo.setdefault(key, _compile(connection, statement))
        # Prepared once repeated: a plan that does not depend on the values (planning was ~0.4 ms).
        return fetch_compiled(connection, sql[0], {**sql[1], **search.params})[0]

    keys = slice(4, None)
    rows, token = search.paginate(search.fetch(execute, keys, count), keys)
    return [_fragment(*row[:4]) for row in rows], token


def _compile(connection: Connection, stmt: Select[Any]) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for the driver and its constant parameters (the filter's values)."""
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    return compiled.string, {k: v for k, v in compiled.params.items() if not k.startswith("pos_")}


def _with_json(ids: Select[Any], search: RunSearch) -> Select[Any]:
    """(run JSON, input bodies, outputs JSON, sort keys...) for each row of the id SELECT, in its
    order. The id SELECT already reads each run's row (for its filter and sort keys), so it carries
    the columns `info` needs: joining `runs` again cost a scan of the table and a hash join."""
    source = search.source(ids)
    page = ids.add_columns(*(source.c[name] for name in _INFO_COLUMNS)).cte("page")
    r = page.alias("r")
    # A LATERAL subquery rather than a scalar one, for its two columns from one pass over the rows.
    lm = (
        select(
            literal_column(_METRICS_JSON).label("json"), literal_column(_METRICS_EXPONENTS).label("exponents")
        )
        .select_from(text("latest_metrics m"))
        .where(text("m.run_uuid = r.run_uuid"))
        .lateral("lm")
    )
    key_columns = [r.c[f"k{i}"] for i in range(len(search.keys))]
    return (
        select(
            literal_column(_RUN_JSON).label("run"),
            literal_column(_INPUTS).label("inputs"),
            literal_column(_OUTPUTS).label("outputs"),
            lm.c.exponents,
            *key_columns,
        )
        .select_from(r.outerjoin(lm, true()))
        .order_by(*(key.order(column) for key, column in zip(search.keys, key_columns, strict=True)))
    )


def _fragment(
    run: str, inputs: list[str] | None, outputs: str | None, exponents: bool | None
) -> orjson.Fragment:
    """The run's JSON with `inputs` (always, `{}` when none) and `outputs` (when any) after `data`,
    as `Run.to_dict()` orders them; re-serialised by orjson when a metric value has an exponent."""
    tail = (
        ',"inputs":{}'
        if not inputs
        else ',"inputs":' + orjson.dumps({"dataset_inputs": [json.loads(body) for body in inputs]}).decode()
    )
    if outputs:
        tail += ',"outputs":{"model_outputs":' + outputs + "}"
    if exponents:
        return orjson.Fragment(orjson.dumps(orjson.loads(run[:-1] + tail + "}")))
    return orjson.Fragment(run[:-1] + tail + "}")
