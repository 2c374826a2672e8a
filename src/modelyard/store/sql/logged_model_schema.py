"""MLflow 3 logged-model tables, on the tracking schema's `Base`.

A logged model belongs to an experiment and may name the run that produced it; deleting is a soft
delete (`lifecycle_stage`), because registered versions and run outputs keep pointing at the id.
`run_model_outputs` is the run -> model link of `runs/outputs` (`Run.outputs.model_outputs`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.sql.schema import DOUBLE, Base


class SqlLoggedModel(Base):
    __tablename__ = "logged_models"
    __table_args__ = (
        Index("idx_logged_models_experiment_created", "experiment_id", "creation_timestamp_ms"),
        Index("idx_logged_models_source_run", "source_run_id"),
    )

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    artifact_location: Mapped[str] = mapped_column(Text, nullable=False)
    creation_timestamp_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_timestamp_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(40), nullable=False)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default="active")
    model_type: Mapped[str | None] = mapped_column(String(500))
    source_run_id: Mapped[str | None] = mapped_column(String(32))
    status_message: Mapped[str | None] = mapped_column(Text)


class SqlLoggedModelTag(Base):
    __tablename__ = "logged_model_tags"
    __table_args__ = (PrimaryKeyConstraint("model_id", "key", name="logged_model_tag_pk"),)

    model_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class SqlLoggedModelParam(Base):
    __tablename__ = "logged_model_params"
    __table_args__ = (PrimaryKeyConstraint("model_id", "key", name="logged_model_param_pk"),)

    model_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class SqlRunModelOutput(Base):
    __tablename__ = "run_model_outputs"
    __table_args__ = (PrimaryKeyConstraint("run_uuid", "model_id", name="run_model_output_pk"),)

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    model_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), nullable=False
    )
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class SqlLoggedModelMetric(Base):
    """A metric point logged against a logged model (log-metric / log-batch with `model_id`), with the
    dataset it was computed on. The run's own history keeps the point too (`metrics`)."""

    __tablename__ = "logged_model_metrics"
    __table_args__ = (
        PrimaryKeyConstraint(
            "model_id", "run_uuid", "key", "step", "timestamp", "value", name="logged_model_metric_pk"
        ),
    )

    model_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), nullable=False
    )
    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    value: Mapped[float] = mapped_column(DOUBLE, nullable=False)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False)
    dataset_name: Mapped[str | None] = mapped_column(String(500))
    dataset_digest: Mapped[str | None] = mapped_column(String(36))


class SqlRunModelInput(Base):
    """A run -> logged model input (log-inputs `models`); like MLflow, the model need not exist here."""

    __tablename__ = "run_model_inputs"
    __table_args__ = (PrimaryKeyConstraint("run_uuid", "model_id", name="run_model_input_pk"),)

    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    )
    model_id: Mapped[str] = mapped_column(String(64), nullable=False)
