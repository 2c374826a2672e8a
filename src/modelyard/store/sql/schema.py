"""The SQL schema (SQLAlchemy 2 ORM). Alembic migrations under `store/migrations` must match it;
`tests/integration/test_migrations.py` checks that they do.

Table and column names follow MLflow's where a concept is shared (experiments, runs, params, tags,
metrics, latest_metrics), so that operators who know one can read the other.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelyard.store.sql import experiment_ids, run_docs


class Base(DeclarativeBase):
    pass


#: The runs index in the default search's order (PostgreSQL).
RUNS_ORDER_INDEX = "idx_runs_experiment_stage_order"


# Double precision on PostgreSQL (SQLAlchemy's Float maps to "FLOAT" = double there, REAL on SQLite,
# which is 8 bytes too).
DOUBLE = Float(precision=53)


class SqlExperiment(Base):
    __tablename__ = "experiments"

    experiment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False, unique=True)
    artifact_location: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default="active")
    creation_time: Mapped[int | None] = mapped_column(BigInteger)
    last_update_time: Mapped[int | None] = mapped_column(BigInteger)


class SqlExperimentTag(Base):
    __tablename__ = "experiment_tags"
    __table_args__ = (PrimaryKeyConstraint("experiment_id", "key", name="experiment_tag_pk"),)

    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str | None] = mapped_column(String(5000))


class SqlRun(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The default search: one experiment, active runs, newest first (SQLite; PostgreSQL's is below).
        Index("idx_runs_experiment_stage_start", "experiment_id", "lifecycle_stage", "start_time").ddl_if(
            dialect="sqlite"
        ),
    )

    run_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(250))
    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="RUNNING")
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    deleted_time: Mapped[int | None] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), nullable=False, default="active")
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    #: PostgreSQL: the run's params and tags as their REST JSON arrays, for search pages; kept by
    #: triggers on `params` and `tags` (`run_docs`, created below). NULL on SQLite. Deferred: the
    #: entity path reads params and tags from their tables.
    params_json: Mapped[str | None] = mapped_column(Text, deferred=True)
    tags_json: Mapped[str | None] = mapped_column(Text, deferred=True)


# The default search's index on PostgreSQL, in its exact order (start_time DESC NULLS LAST, then run_uuid
# bytewise), so a page is read from the index in order and the scan stops when it is full
# (sql_search). Ascending start_time gives NULLS FIRST backwards, which is not MLflow's order: every run
# of the experiment was read and sorted (0.5-2.4 s with 10-160 filter terms, issue #15).
Index(
    RUNS_ORDER_INDEX,
    SqlRun.experiment_id,
    SqlRun.lifecycle_stage,
    SqlRun.start_time.desc().nulls_last(),
    SqlRun.run_uuid.collate("C"),
).ddl_if(dialect="postgresql")

#: Attribute orders read in an index's order (PostgreSQL, migrations 0014 and 0015): the attribute
#: (bytewise for a string), then the default order's tie-breaks, so a page ordered by it ascending is one
#: range read in order, and descending the same range read backwards with only runs of one value sorted
#: (an Incremental Sort: cheap for attributes most runs differ in). Attributes most runs share (status,
#: user_id: GROUPED_ATTRIBUTES) are read one value at a time instead, each value's runs a range read
#: forward (`sql_attribute_groups`). Each index costs every run write (a rename or termination is no
#: longer a HOT update); artifact_uri (a value per run, rarely ordered by) has none.
ATTRIBUTE_ORDER_INDEXES = {
    "name": "idx_runs_experiment_stage_name",
    "end_time": "idx_runs_experiment_stage_end",
    "status": "idx_runs_experiment_stage_status",
    "user_id": "idx_runs_experiment_stage_user",
}
#: The indexed attributes whose values most runs share.
GROUPED_ATTRIBUTES = frozenset({"status", "user_id"})
_TIE_BREAKS = (SqlRun.start_time.desc().nulls_last(), SqlRun.run_uuid.collate("C"))
Index(
    ATTRIBUTE_ORDER_INDEXES["name"],
    SqlRun.experiment_id,
    SqlRun.lifecycle_stage,
    SqlRun.name.collate("C"),
    *_TIE_BREAKS,
).ddl_if(dialect="postgresql")
Index(
    ATTRIBUTE_ORDER_INDEXES["end_time"],
    SqlRun.experiment_id,
    SqlRun.lifecycle_stage,
    SqlRun.end_time,
    *_TIE_BREAKS,
).ddl_if(dialect="postgresql")
Index(
    ATTRIBUTE_ORDER_INDEXES["status"],
    SqlRun.experiment_id,
    SqlRun.lifecycle_stage,
    SqlRun.status.collate("C"),
    *_TIE_BREAKS,
).ddl_if(dialect="postgresql")
Index(
    ATTRIBUTE_ORDER_INDEXES["user_id"],
    SqlRun.experiment_id,
    SqlRun.lifecycle_stage,
    SqlRun.user_id.collate("C"),
    *_TIE_BREAKS,
).ddl_if(dialect="postgresql")


def _search_indexes(table: str) -> tuple[Index, Index]:
    """PostgreSQL's search indexes of `params` or `tags`. First: the experiments searched, the key, and
    the value's first VALUE_PREFIX characters (a btree entry is capped at ~2.7 KB; values may be 6,000
    characters) with text_pattern_ops, so `=`, IN and `LIKE 'prefix%'` are index ranges whatever the
    collation; then the run's start time and id (migration 0015): one value's runs in the default order.
    Second: a key's rows in the default order, the value's prefix last (migration 0016): a `LIKE
    'prefix%'` that many values share is tested inside the index while the page is read in order
    (`sql_prefix_heads.prefix_walk_in_page_order`)."""
    value = text(f"left(value, {experiment_ids.VALUE_PREFIX}) text_pattern_ops")
    # Spelled `substr`, not `left`: `=` and IN (on `left`) can never use this index's value, so the
    # planner does not trade their exact range of the first index for a scan of the key's rows.
    walk_value = text(f"substr(value, 1, {experiment_ids.VALUE_PREFIX}) text_pattern_ops")
    start, run = text("start_time DESC NULLS LAST"), text('run_uuid COLLATE "C"')
    return (
        Index(f"idx_{table}_experiment_key_value_start", "experiment_id", "key", value, start, run).ddl_if(
            dialect="postgresql"
        ),
        Index(f"idx_{table}_experiment_key_start_value", "experiment_id", "key", start, run, walk_value).ddl_if(
            dialect="postgresql"
        ),
    )


class SqlParam(Base):
    __tablename__ = "params"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", name="param_pk"),
        # SQLite's search: (key, run_uuid), not (key, value), as on PostgreSQL before migration 0011.
        Index("idx_params_key_run", "key", "run_uuid").ddl_if(dialect="sqlite"),
        *_search_indexes("params"),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str] = mapped_column(String(6000), nullable=False)
    #: The run's experiment, set by a trigger on PostgreSQL (`experiment_ids`); NULL on SQLite.
    experiment_id: Mapped[int | None] = mapped_column(Integer)
    #: The run's start time, set by the same trigger on PostgreSQL (migration 0015); NULL on SQLite.
    start_time: Mapped[int | None] = mapped_column(BigInteger)


#: PostgreSQL's planner multiplies the selectivities of `key = k` and `left(value, 200) = v` as if they
#: were independent and expects a few rows where thousands match; with that estimate it does not read
#: a page in an order index's order (sql_search's numbers-first SELECT, benchmark search: 16 -> 5 ms at
#: 10,000 runs, ~300 -> 5 ms at 100,000). Statistics on the most common (key, value prefix)
#: combinations fix the estimate. Statistics objects are not part of SQLAlchemy's model, so the ORM
#: creates these with the tables and migration 0011 creates them too (0004 created the first, on md5).
PARAMS_STATISTICS = "params_key_value_prefix"
TAGS_STATISTICS = "tags_key_value_prefix"


def statistics_ddl(name: str, table: str) -> str:
    """The statistics on (key, value prefix) of params or tags (the migration freezes its own copy)."""
    return f"CREATE STATISTICS {name} (mcv) ON key, (left(value, {experiment_ids.VALUE_PREFIX})) FROM {table}"


event.listen(
    SqlParam.__table__,
    "after_create",
    DDL(statistics_ddl(PARAMS_STATISTICS, "params")).execute_if(dialect="postgresql"),
)
# The triggers that keep runs.params_json / runs.tags_json (migration 0005 creates them too).
for _statement in run_docs.trigger_ddl("params"):
    event.listen(SqlParam.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))


class SqlTag(Base):
    __tablename__ = "tags"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", name="tag_pk"),
        Index("idx_tags_key", "key").ddl_if(dialect="sqlite"),
        *_search_indexes("tags"),  # as params'
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str | None] = mapped_column(String(8000))
    #: As params' (above).
    experiment_id: Mapped[int | None] = mapped_column(Integer)
    start_time: Mapped[int | None] = mapped_column(BigInteger)


event.listen(
    SqlTag.__table__,
    "after_create",
    DDL(statistics_ddl(TAGS_STATISTICS, "tags")).execute_if(dialect="postgresql"),
)
for _statement in run_docs.trigger_ddl("tags"):
    event.listen(SqlTag.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))


class SqlMetric(Base):
    """Full metric history. The primary key includes the value, as MLflow's does, so a retried
    batch that logs the same point again is absorbed instead of duplicated."""

    __tablename__ = "metrics"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", "step", "timestamp", "value", name="metric_pk"),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # NaN is stored as value 0 with is_nan set: SQLite cannot hold NaN (it becomes NULL).
    value: Mapped[float] = mapped_column(DOUBLE, nullable=False)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class SqlLatestMetric(Base):
    """One row per (run, key): the point with the highest (step, timestamp, value), maintained by
    upsert on every log so that search filters and orders on metrics with one indexed join."""

    __tablename__ = "latest_metrics"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", name="latest_metric_pk"),
        Index("idx_latest_metrics_key_value", "key", "value").ddl_if(dialect="sqlite"),
        # PostgreSQL: metric filters, and pages ordered by a metric read in value order, within the
        # experiments searched.
        Index("idx_latest_metrics_experiment_key_value", "experiment_id", "key", "value").ddl_if(
            dialect="postgresql"
        ),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[float] = mapped_column(DOUBLE, nullable=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: As params' (above).
    experiment_id: Mapped[int | None] = mapped_column(Integer)
    #: PostgreSQL: counts the metric writes of this key (every one upserts this row, even one whose
    #: points are older than the latest), so a stored chart series of the history knows whether it is
    #: still the history's (`metric_series_cache`). 0 on SQLite, which stores no series.
    history_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class SqlMetricSeriesCache(Base):
    """A big metric's whole history bucketed for a chart, with the history's count, min and max, as
    `store/tracking/metric_series` encodes it, and the key's latest point and history_version when it
    was built. PostgreSQL only."""

    __tablename__ = "metric_series_cache"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", "x_axis", "max_points", name="metric_series_cache_pk"),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    x_axis: Mapped[str] = mapped_column(String(16), nullable=False)
    max_points: Mapped[int] = mapped_column(Integer, nullable=False)
    history_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


# The triggers that set experiment_id on params, tags and latest_metrics (migration 0011 creates them too).
for _table in experiment_ids.TABLES:
    for _statement in experiment_ids.trigger_ddl(_table):
        event.listen(
            Base.metadata.tables[_table], "after_create", DDL(_statement).execute_if(dialect="postgresql")
        )


class SqlInput(Base):
    """Dataset inputs of a run (MLflow's log-inputs), kept as the JSON the client sent."""

    __tablename__ = "run_inputs"
    __table_args__ = (PrimaryKeyConstraint("run_uuid", "digest", name="run_input_pk"),)

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)


class SqlSchemaInfo(Base):
    """Facts about the schema for releases that did not write it (`migrate.OLDEST_COMPATIBLE_KEY`)."""

    __tablename__ = "schema_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), nullable=False)
