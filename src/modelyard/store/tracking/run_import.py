"""Bulk import of whole runs (`modelyard import`): many finished runs with their params, tags and
metric histories written in one transaction, with a few statements per table for the whole batch.

Importing run by run through MLflow's API costs ~5 requests per run (create, log-batch of params, of
metrics, set-terminated, the completion tag); this writes a batch of hundreds in one request. The
rows are the ones those calls would write: a run row with the given name, user, times, status and
lifecycle stage and an artifact location under the experiment's, its params and tags (the run name
as `mlflow.runName`), every metric point and, per key, the greatest (step, timestamp, value) as its
latest. All or nothing: a batch with one invalid run writes nothing. New ids, so no row can exist
yet: plain INSERTs without run locks (nobody else knows the ids). Imported runs fire no
`run.finished` webhooks: they finished elsewhere, earlier.

On PostgreSQL the whole batch is ONE statement (data-modifying CTEs, each table's rows bound as
arrays): the runs rows carry their params/tags JSON (`store/sql/run_docs`), aggregated from the
same rows by the same expressions the triggers use, and every params/tags/latest_metrics row its
run's experiment_id; the transaction says so (`run_docs.UNCHANGED_DOCUMENTS`, `experiment_ids.GIVEN`),
and the triggers that would otherwise recompute them skip it. Per imported run (~26 rows) that was
~30% of PostgreSQL's time.

The foreign-key checks were then a third of what was left (one executor start per inserted row, ~37
per run, each looking up a runs row inserted by the same statement). When the database role may set
`session_replication_role` (a superuser; rds_superuser; PostgreSQL 15's GRANT SET), the import
transaction sets it to `replica`, which skips every trigger, the foreign keys' included, for that
transaction: the rows reference runs the same statement inserts (fresh ids) and an experiment the
transaction holds FOR KEY SHARE, which is all those checks would have found, and the JSON and
experiment ids are written as above. Otherwise the triggers run as for every writer. (The triggers
these tables have are pinned by tests/integration/test_migrations.py: one added there must be
written here too.)
SQLite takes one executemany per table.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from modelyard.entities import Metric, Param, RunStatus, RunTag
from modelyard.entities.lifecycle import LifecycleStage
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits, validation
from modelyard.store.sql import experiment_ids, run_docs
from modelyard.store.sql.dialect import execute_upsert, pg_array_literal
from modelyard.store.sql.schema import (
    SqlExperiment,
    SqlInput,
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from modelyard.store.tracking.run_names import generate_run_name
from modelyard.store.tracking.sql_run_data import input_rows

RUN_NAME_TAG = "mlflow.runName"
#: The most runs, and metric points over all of them, one import request may carry.
MAX_RUNS = 1000
MAX_POINTS = 200_000
#: The history tables' columns, in the order `_Rows` fills them.
HISTORY_COLUMNS = ("run_uuid", "key", "step", "timestamp", "value", "is_nan")
#: Each table's columns as `_Rows` holds them (experiment_id aside).
_COLUMNS: dict[Any, tuple[str, ...]] = {
    SqlRun: ("run_uuid", "name", "user_id", "status", "start_time", "end_time", "deleted_time", "lifecycle_stage",
             "artifact_uri"),
    SqlParam: ("run_uuid", "key", "value"),
    SqlTag: ("run_uuid", "key", "value"),
    SqlMetric: HISTORY_COLUMNS,
    SqlLatestMetric: HISTORY_COLUMNS,
    SqlInput: ("run_uuid", "digest", "body"),
}  # fmt: skip


@dataclass(frozen=True)
class ImportedRun:
    """One run as exported: what it was called, by whom, when, how it ended, and its data."""

    run_name: str | None = None  # None: a generated name, as create-run gives
    user_id: str = ""
    start_time: int | None = None
    end_time: int | None = None
    status: str = "FINISHED"
    lifecycle_stage: str = LifecycleStage.ACTIVE
    params: Sequence[Param] = field(default_factory=tuple)
    tags: Sequence[RunTag] = field(default_factory=tuple)
    metrics: Sequence[Metric] = field(default_factory=tuple)
    #: Dataset inputs, as log-inputs' `datasets` items ({"dataset": {...}, "tags": [...]}).
    inputs: Sequence[dict[str, Any]] = field(default_factory=tuple)


def validate(runs: Sequence[ImportedRun]) -> None:
    """Everything checkable without the database, for the whole batch, before anything is written.
    The same rules as log-batch's; a key is checked once per batch (hundreds of runs share a few)."""
    if not runs:
        raise ModelyardException.invalid_parameter("Give at least one run to import.")
    if len(runs) > MAX_RUNS:
        raise ModelyardException.invalid_parameter(f"An import request holds at most {MAX_RUNS} runs, not {len(runs)}.")
    points = sum(len(r.metrics) for r in runs)
    if points > MAX_POINTS:
        raise ModelyardException.invalid_parameter(
            f"An import request holds at most {MAX_POINTS} metric points, not {points}: split it."
        )
    param_keys: set[str] = set()
    tag_keys: set[str] = set()
    metric_keys: set[str] = set()
    for run in runs:
        if run.run_name is not None:
            validation.validate_run_name(run.run_name)
        input_rows(run.inputs)
        RunStatus.validate(run.status)
        if run.lifecycle_stage not in (LifecycleStage.ACTIVE, LifecycleStage.DELETED):
            raise ModelyardException.invalid_parameter(f"Run {run.run_name!r}: lifecycle_stage {run.lifecycle_stage!r}.")
        for value, name in ((run.start_time, "start_time"), (run.end_time, "end_time")):
            if value is not None:
                validation.validate_int64(value, name)
        validation.validate_metrics(run.metrics, metric_keys)
        seen: dict[str, str] = {}
        for param in run.params:
            _check(param.key, param.value, "param", param_keys, limits.MAX_PARAM_VALUE_LENGTH)
            if seen.setdefault(param.key, param.value) != param.value:
                raise ModelyardException.invalid_parameter(f"Run {run.run_name!r}: param {param.key!r} given twice.")
        for tag in run.tags:
            _check(tag.key, tag.value, "tag", tag_keys, limits.MAX_TAG_VALUE_LENGTH)


def _check(key: str, value: str, kind: str, valid_keys: set[str], max_length: int) -> None:
    """`validation.validate_param` / `validate_tag`, with the key checked only the first time."""
    if key not in valid_keys:
        validation.validate_key(key, kind)
        valid_keys.add(key)
    validation.validate_string_value(value, f"{kind} '{key}'", max_length)


def import_runs(engine: Engine, experiment_id: str, runs: Sequence[ImportedRun]) -> list[str]:
    """Write the runs into the (active) experiment in one transaction; their new ids, in order."""
    validate(runs)
    with Session(engine) as session, session.begin():
        # FOR KEY SHARE, as the runs' foreign key would hold it: nobody deletes it until this commits.
        experiment = session.get(SqlExperiment, _experiment_key(experiment_id), with_for_update={"key_share": True})
        if experiment is None:
            raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise ModelyardException.invalid_parameter(f"The experiment {experiment_id} must be in the 'active' state.")
        root = (experiment.artifact_location or "").rstrip("/")
        if not root:
            raise ModelyardException.invalid_parameter(f"The experiment {experiment_id} has no artifact location.")
        rows = _Rows(runs, root)
        if session.get_bind().dialect.name == "postgresql":
            _insert_postgres(session, experiment.experiment_id, rows)
        else:
            _insert_rows(session, experiment.experiment_id, rows)
    return rows.ids


class _Rows:
    """Every row the batch writes, column by column per table (the shape both writers bind)."""

    def __init__(self, runs: Sequence[ImportedRun], root: str) -> None:
        now = int(time.time() * 1000)
        self.ids = [uuid.uuid4().hex for _ in runs]
        self.tables: dict[Any, dict[str, list[Any]]] = {t: {c: [] for c in names} for t, names in _COLUMNS.items()}
        for run_id, run in zip(self.ids, runs, strict=True):
            deleted = run.lifecycle_stage == LifecycleStage.DELETED
            name = run.run_name or generate_run_name()
            row = (run_id, name, run.user_id or "", run.status, run.start_time, run.end_time,
                   now if deleted else None, run.lifecycle_stage, f"{root}/{run_id}/artifacts")  # fmt: skip
            self._append(SqlRun, row)
            self._pairs(SqlParam, run_id, {p.key: p.value for p in run.params})
            self._pairs(SqlTag, run_id, {t.key: t.value for t in run.tags} | {RUN_NAME_TAG: name})
            self._history(run_id, run.metrics)
            for dataset in input_rows(run.inputs):
                self._append(SqlInput, (run_id, dataset["digest"], dataset["body"]))

    def _append(self, table: Any, row: tuple[Any, ...]) -> None:
        for column, value in zip(self.tables[table].values(), row, strict=True):
            column.append(value)

    def _pairs(self, table: Any, run_id: str, pairs: dict[str, str]) -> None:
        run_ids, keys, values = self.tables[table].values()
        for key in sorted(pairs):
            run_ids.append(run_id)
            keys.append(key)
            values.append(pairs[key])

    def _history(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """History rows, a repeated point once (the table's key includes the value, as log-batch's),
        and per key the greatest (step, timestamp, value) as its latest."""
        unique: dict[tuple[str, int, int, float], bool] = {}
        for m in metrics:
            is_nan = math.isnan(m.value)
            unique[(m.key, int(m.step), int(m.timestamp), 0.0 if is_nan else float(m.value))] = is_nan
        latest: dict[str, tuple[str, str, int, int, float, bool]] = {}
        for (key, step, timestamp, value), is_nan in sorted(unique.items()):
            point = (run_id, key, step, timestamp, value, is_nan)
            self._append(SqlMetric, point)
            latest[key] = point  # sorted by (key, step, timestamp, value): the last of a key is its greatest
        for point in latest.values():
            self._append(SqlLatestMetric, point)


#: Per database URL: whether its role may skip triggers (see above); found out on the first import.
_REPLICA_ALLOWED: dict[str, bool] = {}


def _insert_postgres(session: Session, experiment_id: int, rows: _Rows) -> None:
    """The batch in one statement; the triggers that would recompute what it writes skip it."""
    connection = session.connection()
    settings = f"set_config('{run_docs.UNCHANGED_DOCUMENTS}', 'on', true), set_config('{experiment_ids.GIVEN}', 'on', true)"
    url = connection.engine.url.render_as_string(hide_password=True)
    if url not in _REPLICA_ALLOWED:
        _REPLICA_ALLOWED[url] = _try_replica(session)
    elif _REPLICA_ALLOWED[url]:
        settings += ", set_config('session_replication_role', 'replica', true)"
    connection.exec_driver_sql(f"SELECT {settings}")
    params: dict[str, Any] = {"experiment_id": experiment_id}
    for table, columns in rows.tables.items():
        sql_table: Table = table.__table__
        for name, values in columns.items():
            params[f"{sql_table.name}_{name}"] = pg_array_literal(values, sql_table.c[name].type.python_type)
    connection.exec_driver_sql(_postgres_statement(), params)


def _try_replica(session: Session) -> bool:
    """Set session_replication_role to replica for this transaction, if the role may (in a savepoint:
    a refusal leaves the transaction as it was)."""
    from sqlalchemy.exc import DBAPIError

    try:
        with session.begin_nested():
            session.connection().exec_driver_sql("SELECT set_config('session_replication_role', 'replica', true)")
    except DBAPIError:
        return False
    return True


def _insert_rows(session: Session, experiment_id: int, rows: _Rows) -> None:
    """SQLite: one executemany per table (its key/value tables leave experiment_id NULL)."""
    for table, columns in rows.tables.items():
        names, extra = (*columns, "experiment_id"), (experiment_id,)
        if table is not SqlRun:
            names, extra = tuple(columns), ()
        by_row = [dict(zip(names, (*values, *extra), strict=True)) for values in zip(*columns.values(), strict=True)]
        execute_upsert(session, table, by_row, _plain)


def _plain(stmt: Any) -> Any:
    """No ON CONFLICT clause: every row is new (fresh run ids)."""
    return stmt


@cache
def _postgres_statement() -> str:
    """INSERT ... SELECT FROM unnest(arrays) into the six tables, as data-modifying CTEs of one
    statement (the foreign-key checks run at its end, when the runs rows are there)."""
    def unnest(table: Any, alias: str) -> str:
        sql_table: Table = table.__table__
        names = list(_COLUMNS[table])
        arrays = ", ".join(f"CAST(%({sql_table.name}_{n})s AS {_array_type(sql_table.c[n].type)})" for n in names)
        return f"unnest({arrays}) AS {alias}({', '.join(names)})"

    run_columns = ", ".join(_COLUMNS[SqlRun])
    with_experiment = "CAST(%(experiment_id)s AS INTEGER)"
    # params and tags carry their run's start_time (experiment_ids: what the skipped trigger would set).
    started = "SELECT {0}.*, " + with_experiment + ", r.start_time FROM {0} LEFT JOIN r ON r.run_uuid = {0}.run_uuid"
    return f"""WITH p AS (SELECT * FROM {unnest(SqlParam, "p")}),
t AS (SELECT * FROM {unnest(SqlTag, "t")}),
r AS (SELECT * FROM {unnest(SqlRun, "r")}),
new_runs AS (
    INSERT INTO runs ({run_columns}, experiment_id, params_json, tags_json)
    SELECT {", ".join(f"r.{c}" for c in _COLUMNS[SqlRun])}, {with_experiment}, pj.doc, tj.doc
    FROM r
    LEFT JOIN (SELECT p.run_uuid, {run_docs.PARAMS_ARRAY} AS doc FROM p GROUP BY p.run_uuid) pj ON pj.run_uuid = r.run_uuid
    LEFT JOIN (SELECT t.run_uuid, {run_docs.TAGS_ARRAY} AS doc FROM t GROUP BY t.run_uuid) tj ON tj.run_uuid = r.run_uuid
),
new_params AS (INSERT INTO params (run_uuid, key, value, experiment_id, start_time) {started.format("p")}),
new_tags AS (INSERT INTO tags (run_uuid, key, value, experiment_id, start_time) {started.format("t")}),
new_metrics AS (INSERT INTO metrics ({", ".join(HISTORY_COLUMNS)}) SELECT * FROM {unnest(SqlMetric, "m")}),
new_inputs AS (INSERT INTO run_inputs ({", ".join(_COLUMNS[SqlInput])}) SELECT * FROM {unnest(SqlInput, "i")})
INSERT INTO latest_metrics ({", ".join(HISTORY_COLUMNS)}, experiment_id)
SELECT l.*, {with_experiment} FROM {unnest(SqlLatestMetric, "l")}"""


def _array_type(column_type: Any) -> str:
    """The array type a column's values are bound as: strings as text[] (a VARCHAR(n)[] cast would cut
    a longer string silently; the column refuses it instead), others as the column's type."""
    if column_type.python_type is str:
        return "TEXT[]"
    return f"{column_type.compile(dialect=postgresql.dialect())}[]"


def _experiment_key(experiment_id: str) -> int:
    if not validation.is_experiment_id(experiment_id):
        raise ModelyardException.not_found(f"No Experiment with id={experiment_id} exists")
    return int(experiment_id)
