"""MLflow 3 logged models: a model's own identity (`m-<hex>`), apart from the run that produced it.

`ModelOutput` (a run -> model link) lives with the run entities and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.entities.run import Metric, ModelOutput
from modelyard.exceptions import ModelyardException


class LoggedModelStatus:
    """Wire names of MLflow's LoggedModelStatus enum; short forms are accepted on input."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED"
    UNSPECIFIED = "LOGGED_MODEL_STATUS_UNSPECIFIED"
    _ALIASES = {
        "PENDING": PENDING,
        "READY": READY,
        "FAILED": FAILED,
        "UPLOAD_FAILED": FAILED,
        "1": PENDING,
        "2": READY,
        "3": FAILED,
    }
    _WIRE = (PENDING, READY, FAILED)

    @classmethod
    def parse(cls, value: Any) -> str:
        text = str(value).upper() if value is not None else ""
        if text in cls._WIRE:
            return text
        if text in cls._ALIASES:
            return cls._ALIASES[text]
        raise ModelyardException.invalid_parameter(
            f"Invalid logged model status {value!r}. Expected one of {', '.join(cls._WIRE)}."
        )


@dataclass
class LoggedModel:
    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: str = LoggedModelStatus.PENDING
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "model_id": self.model_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "creation_timestamp_ms": self.creation_timestamp,
            "last_updated_timestamp_ms": self.last_updated_timestamp,
            "artifact_uri": self.artifact_location,
            "status": self.status,
            "model_type": self.model_type,
            "source_run_id": self.source_run_id,
            "status_message": self.status_message,
        }
        info = {key: value for key, value in info.items() if value is not None}
        if self.tags:
            info["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        data: dict[str, Any] = {}
        if self.params:
            data["params"] = [{"key": k, "value": v} for k, v in self.params.items()]
        if self.metrics:
            data["metrics"] = [m.to_dict() for m in self.metrics]
        return {"info": info, "data": data}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoggedModel:
        info = d.get("info") or {}
        data = d.get("data") or {}
        return cls(
            model_id=info["model_id"],
            experiment_id=str(info.get("experiment_id", "")),
            name=info.get("name", ""),
            artifact_location=info.get("artifact_uri", ""),
            creation_timestamp=int(info.get("creation_timestamp_ms") or 0),
            last_updated_timestamp=int(info.get("last_updated_timestamp_ms") or 0),
            status=info.get("status") or LoggedModelStatus.UNSPECIFIED,
            model_type=info.get("model_type") or None,
            source_run_id=info.get("source_run_id") or None,
            status_message=info.get("status_message") or None,
            tags={t["key"]: t.get("value", "") for t in info.get("tags", [])},
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            metrics=[Metric.from_dict(m) for m in data.get("metrics", [])],
        )


__all__ = ["LoggedModel", "LoggedModelStatus", "ModelOutput"]
