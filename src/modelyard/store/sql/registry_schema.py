"""Model registry tables, on the tracking schema's `Base` (one database, one migration history).

Versions, tags and aliases hang off `registered_models.name` with ON UPDATE CASCADE, so a rename is
one UPDATE, and ON DELETE CASCADE, so deleting a model removes everything under it in one statement.
`registered_models.last_version` is the version counter: a new version takes `last_version + 1` in
the same UPDATE that bumps it, which row-locks the model and makes concurrent registrations queue
instead of colliding (and a deleted version's number is never handed out again, as in MLflow).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.sql.schema import Base


class SqlRegisteredModel(Base):
    __tablename__ = "registered_models"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    description: Mapped[str | None] = mapped_column(String(5000))
    last_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class SqlRegisteredModelTag(Base):
    __tablename__ = "registered_model_tags"
    __table_args__ = (PrimaryKeyConstraint("name", "key", name="registered_model_tag_pk"),)

    name: Mapped[str] = mapped_column(
        String(256),
        ForeignKey("registered_models.name", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    )
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str | None] = mapped_column(String(5000))


class SqlModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        PrimaryKeyConstraint("name", "version", name="model_version_pk"),
        Index("idx_model_versions_run_id", "run_id"),
    )

    name: Mapped[str] = mapped_column(
        String(256),
        ForeignKey("registered_models.name", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    description: Mapped[str | None] = mapped_column(String(5000))
    user_id: Mapped[str | None] = mapped_column(String(256))
    current_stage: Mapped[str] = mapped_column(String(20), nullable=False, default="None")
    source: Mapped[str | None] = mapped_column(Text)
    #: Where the files are (what get-download-uri answers): `source` itself, or the artifact
    #: location of the logged model / run a `models:/` or `runs:/` source names.
    storage_location: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))
    run_link: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="READY")
    status_message: Mapped[str | None] = mapped_column(String(500))
    model_id: Mapped[str | None] = mapped_column(String(64))


class SqlModelVersionTag(Base):
    __tablename__ = "model_version_tags"
    __table_args__ = (
        PrimaryKeyConstraint("name", "version", "key", name="model_version_tag_pk"),
        ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    )

    name: Mapped[str] = mapped_column(String(256), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[str | None] = mapped_column(String(5000))


class SqlRegisteredModelAlias(Base):
    """An alias points at one version; deleting that version deletes the alias (MLflow does too)."""

    __tablename__ = "registered_model_aliases"
    __table_args__ = (
        PrimaryKeyConstraint("name", "alias", name="registered_model_alias_pk"),
        ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    )

    name: Mapped[str] = mapped_column(String(256), nullable=False)
    alias: Mapped[str] = mapped_column(String(256), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class SqlRegistryEvent(Base):
    """One change to the registry, appended in the transaction that made the change (see
    `modelyard.store.registry.events`). No foreign keys: history outlives the versions it names and
    goes only when its model is deleted with `purge_history`. A rename rewrites `model_name`."""

    __tablename__ = "registry_events"
    __table_args__ = (
        Index("idx_registry_events_model", "model_name", "event_id"),
        Index("idx_registry_events_endpoint", "endpoint", "event_id"),
    )

    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    model_name: Mapped[str] = mapped_column(String(256), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    #: The alias or stage a move concerns (what "who held X at time T" looks up).
    subject: Mapped[str | None] = mapped_column(String(256))
    endpoint: Mapped[str | None] = mapped_column(String(256))
    actor: Mapped[str | None] = mapped_column(String(256))
    #: JSON object: from/to versions and stages, tag key and value, new name, variant, weight...
    details: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
