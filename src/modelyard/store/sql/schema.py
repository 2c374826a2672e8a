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
    PrimaryKeyConstraint,
    String,
    Text,
    event,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelyard.store.sql import run_docs


class Base(DeclarativeBase):
    pass


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
        # The default search: one experiment, active runs, newest first.
        Index("idx_runs_experiment_stage_start", "experiment_id", "lifecycle_stage", "start_time"),
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


class SqlParam(Base):
    __tablename__ = "params"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", name="param_pk"),
        # (key, run_uuid), not (key, value): a btree entry is capped at ~2.7 KB on PostgreSQL and
        # param values may be 6,000 characters.
        Index("idx_params_key_run", "key", "run_uuid"),
        # `params.k = 'v'` on PostgreSQL: the search tests md5(value) through this index and then
        # the value itself (sql_search). SQLite has no md5() and no entry size cap; it does without.
        Index("idx_params_key_value_md5", "key", func.md5(text("value"))).ddl_if(dialect="postgresql"),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str] = mapped_column(String(6000), nullable=False)


#: PostgreSQL's planner multiplies the selectivities of `key = k`, `md5(value) = md5(v)` and
#: `value = v` as if they were independent and expects a few rows where thousands match; with that
#: estimate it does not read a page in the order metric's index order (sql_search's numbers-first
#: SELECT, benchmark search: 16 -> 5 ms at 10,000 runs, ~300 -> 5 ms at 100,000). Functional
#: dependencies (value and md5(value) determine each other) plus the most common (key, value)
#: combinations fix the estimate. Statistics objects are not part of SQLAlchemy's model, so the ORM
#: creates this one with the table and migration 0004 creates it too.
PARAMS_STATISTICS = "params_key_value_md5"
event.listen(
    SqlParam.__table__,
    "after_create",
    DDL(
        f"CREATE STATISTICS {PARAMS_STATISTICS} (dependencies, mcv) ON key, value, md5(value) FROM params"
    ).execute_if(dialect="postgresql"),
)


# The triggers that keep runs.params_json / runs.tags_json (migration 0005 creates them too).
for _statement in run_docs.trigger_ddl("params"):
    event.listen(SqlParam.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))


class SqlTag(Base):
    __tablename__ = "tags"
    __table_args__ = (
        PrimaryKeyConstraint("run_uuid", "key", name="tag_pk"),
        Index("idx_tags_key", "key"),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str | None] = mapped_column(String(8000))


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
        Index("idx_latest_metrics_key_value", "key", "value"),
    )

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[float] = mapped_column(DOUBLE, nullable=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


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
