"""Every run of an experiment with everything `modelyard export` keeps of it, as JSON lines, for
`GET /api/2.0/modelyard/runs/export` (modelyard's own API: MLflow has none).

Export read each page of runs through runs/search and then every metric's history through
get-history-bulk (100 runs per request and key): for the 10,000-run experiment of the benchmark that
was ~1,000 requests, ~0.8 ms of tracking-service CPU per run. Here the runs are read a page
(`PAGE_RUNS`, in run id order) at a time with one query per table, whatever the number of metric
keys, and written out as they are read: a run is one line, `{"run": <the run's REST JSON without its
latest metrics>, "metrics": [<points>]}`, and a run with more than `CHUNK_POINTS` points continues on
lines of `{"metrics": [...]}`; the last line is `{"end": {"runs": N}}`, so a reader can tell a whole
answer from a cut one. Points are get-history's JSON (`key`, `value` with MLflow's NaN/Infinity
spellings, `timestamp`, `step`), in (key, step, timestamp, value) order. Memory follows a page's
runs and a few thousand points: the histories come through a streaming cursor, never whole.

Deleted runs are included (an export moves an experiment as it is). Each page is its own short
read, keyset-paged by run id, so a run added or deleted while the export runs is written at most
once and no transaction stays open for the whole export.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.entities.run import float_to_json
from modelyard.exceptions import ModelyardException
from modelyard.protocol import validation
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.schema import SqlExperiment, SqlInput, SqlMetric, SqlParam, SqlRun, SqlTag
from modelyard.store.tracking.run_loading import run_info

#: Runs read (and their params, tags and inputs held) at once.
PAGE_RUNS = 500
#: Points on one line at most; more continue on the next lines.
CHUNK_POINTS = 10_000
#: The response is written in pieces of about this many bytes (each piece is one trip through the
#: service's thread pool).
PIECE_BYTES = 256 * 1024


def check_experiment(engine: Engine, experiment_id: str) -> int:
    """The experiment's id as stored; RESOURCE_DOES_NOT_EXIST when there is none (deleted ones export)."""
    key = int(experiment_id) if validation.is_experiment_id(experiment_id) else None
    with Session(engine.execution_options(**READ_ONLY)) as session:
        found = key is not None and session.get(SqlExperiment, key) is not None
    if not found or key is None:
        raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
    return key


def export_lines(engine: Engine, experiment_id: int) -> Iterator[bytes]:
    """The experiment's runs as JSON lines (see above), in pieces of about `PIECE_BYTES`."""
    piece: list[bytes] = []
    size = 0
    count = 0
    after = ""
    reader = engine.execution_options(**READ_ONLY)
    while True:
        with reader.connect() as connection:
            runs = connection.execute(
                select(SqlRun.__table__)
                .where(SqlRun.experiment_id == experiment_id, SqlRun.run_uuid > after)
                .order_by(SqlRun.run_uuid)
                .limit(PAGE_RUNS)
            ).all()
            if not runs:
                break
            for line in _page_lines(connection, runs):
                piece.append(line)
                size += len(line)
                if size >= PIECE_BYTES:
                    yield b"".join(piece)
                    piece, size = [], 0
        count += len(runs)
        after = runs[-1].run_uuid
    piece.append(orjson.dumps({"end": {"runs": count}}) + b"\n")
    yield b"".join(piece)


def _page_lines(connection: Any, runs: list[Any]) -> Iterator[bytes]:
    ids = [run.run_uuid for run in runs]
    params = _pairs(connection, SqlParam, ids)
    tags = _pairs(connection, SqlTag, ids)
    inputs: dict[str, list[orjson.Fragment]] = {}
    for run_uuid, body in connection.execute(
        select(SqlInput.run_uuid, SqlInput.body).where(SqlInput.run_uuid.in_(ids)).order_by(SqlInput.run_uuid, SqlInput.digest)
    ):
        inputs.setdefault(run_uuid, []).append(orjson.Fragment(body))
    m = SqlMetric.__table__
    points = connection.execution_options(stream_results=True, yield_per=CHUNK_POINTS).execute(
        select(m.c.run_uuid, m.c.key, m.c.value, m.c.timestamp, m.c.step, m.c.is_nan)
        .where(m.c.run_uuid.in_(ids))
        .order_by(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value)
    )
    pending = next(points, None)
    for run in runs:
        run_id = run.run_uuid
        document: dict[str, Any] = {
            "info": run_info(run).to_dict(),
            "data": {"params": params.get(run_id, []), "tags": tags.get(run_id, [])},
            "inputs": {"dataset_inputs": inputs.get(run_id, [])},
        }
        chunk: list[dict[str, Any]] = []
        first = True
        while pending is not None and pending[0] == run_id:
            _, key, value, timestamp, step, is_nan = pending
            chunk.append({"key": key, "value": "NaN" if is_nan else float_to_json(value), "timestamp": timestamp,
                          "step": step})  # fmt: skip
            if len(chunk) == CHUNK_POINTS:
                yield _line(document if first else None, chunk)
                chunk, first = [], False
            pending = next(points, None)
        if first or chunk:
            yield _line(document if first else None, chunk)
    points.close()


def _line(run: dict[str, Any] | None, points: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"run": run, "metrics": points} if run is not None else {"metrics": points}) + b"\n"


def _pairs(connection: Any, table: Any, ids: list[str]) -> dict[str, list[dict[str, str]]]:
    """run id -> its params or tags as REST JSON ({key, value}, by key; a NULL tag value is "")."""
    out: dict[str, list[dict[str, str]]] = {}
    for run_uuid, key, value in connection.execute(
        select(table.run_uuid, table.key, table.value).where(table.run_uuid.in_(ids)).order_by(table.run_uuid, table.key)
    ):
        out.setdefault(run_uuid, []).append({"key": key, "value": value or ""})
    return out
