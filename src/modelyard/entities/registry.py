"""Registered models and their versions, in MLflow's REST shapes (model_registry.proto)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.exceptions import ModelyardException


class ModelVersionStage:
    """MLflow's four stages; input is matched case-insensitively, output is always canonical."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"
    ALL = (NONE, STAGING, PRODUCTION, ARCHIVED)
    #: The stages whose other versions `archive_existing_versions` moves to Archived.
    ARCHIVE_TRIGGERS = (STAGING, PRODUCTION)
    _BY_LOWER = {stage.lower(): stage for stage in ALL}

    @classmethod
    def canonical(cls, stage: str) -> str:
        found = cls._BY_LOWER.get(str(stage).lower())
        if found is None:
            raise ModelyardException.invalid_parameter(
                f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(cls.ALL)}."
            )
        return found


class ModelVersionStatus:
    READY = "READY"
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"


@dataclass(frozen=True)
class RegisteredModelAlias:
    alias: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"alias": self.alias, "version": self.version}


@dataclass
class ModelVersion:
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int | None = None
    description: str | None = None
    user_id: str | None = None
    current_stage: str = ModelVersionStage.NONE
    source: str | None = None
    run_id: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_link: str | None = None
    aliases: list[str] = field(default_factory=list)
    model_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "user_id": self.user_id,
            "current_stage": self.current_stage,
            "description": self.description,
            "source": self.source,
            "run_id": self.run_id,
            "status": self.status,
            "status_message": self.status_message,
            "run_link": self.run_link,
            "model_id": self.model_id,
        }
        out = {key: value for key, value in out.items() if value is not None}
        if self.tags:
            out["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(
            name=d.get("name", ""),
            version=str(d.get("version", "")),
            creation_timestamp=int(d.get("creation_timestamp") or 0),
            last_updated_timestamp=_int_or_none(d.get("last_updated_timestamp")),
            description=d.get("description"),
            user_id=d.get("user_id"),
            current_stage=d.get("current_stage") or ModelVersionStage.NONE,
            source=d.get("source"),
            run_id=d.get("run_id") or None,
            status=d.get("status") or ModelVersionStatus.READY,
            status_message=d.get("status_message"),
            tags={t["key"]: t.get("value", "") for t in d.get("tags", [])},
            run_link=d.get("run_link") or None,
            aliases=list(d.get("aliases", [])),
            model_id=d.get("model_id") or None,
        )


@dataclass
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int | None = None
    description: str | None = None
    user_id: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[RegisteredModelAlias] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "user_id": self.user_id,
            "description": self.description,
        }
        out = {key: value for key, value in out.items() if value is not None}
        if self.latest_versions:
            out["latest_versions"] = [mv.to_dict() for mv in self.latest_versions]
        if self.tags:
            out["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        if self.aliases:
            out["aliases"] = [a.to_dict() for a in self.aliases]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegisteredModel:
        return cls(
            name=d.get("name", ""),
            creation_timestamp=int(d.get("creation_timestamp") or 0),
            last_updated_timestamp=_int_or_none(d.get("last_updated_timestamp")),
            description=d.get("description"),
            user_id=d.get("user_id"),
            latest_versions=[ModelVersion.from_dict(mv) for mv in d.get("latest_versions", [])],
            tags={t["key"]: t.get("value", "") for t in d.get("tags", [])},
            aliases=[RegisteredModelAlias(a["alias"], str(a["version"])) for a in d.get("aliases", [])],
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
