"""Runs: info (identity and lifecycle) and data (metrics, params, tags), in MLflow's shapes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0
    run_id: str | None = None  # only set on get-history-bulk answers and a logged model's metrics
    #: MLflow 3: the logged model the metric describes and the dataset it was computed on.
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "value": float_to_json(self.value),
            "timestamp": self.timestamp,
            "step": self.step,
        }
        if self.dataset_name is not None:
            out["dataset_name"] = self.dataset_name
        if self.dataset_digest is not None:
            out["dataset_digest"] = self.dataset_digest
        if self.model_id is not None:
            out["model_id"] = self.model_id
        if self.run_id is not None:
            out["run_id"] = self.run_id
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        return cls(
            key=d["key"],
            value=float_from_json(d.get("value", 0.0)),
            timestamp=int(d.get("timestamp", 0)),
            step=int(d.get("step", 0)),
            run_id=d.get("run_id"),
            model_id=d.get("model_id") or None,
            dataset_name=d.get("dataset_name") or None,
            dataset_digest=d.get("dataset_digest") or None,
        )


@dataclass(frozen=True)
class Param:
    key: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str

    @property
    def run_uuid(self) -> str:
        return self.run_id

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "run_uuid": self.run_id,
            "run_name": self.run_name,
            "experiment_id": self.experiment_id,
            "user_id": self.user_id,
            "status": self.status,
            "artifact_uri": self.artifact_uri,
            "lifecycle_stage": self.lifecycle_stage,
        }
        if self.start_time is not None:
            out["start_time"] = self.start_time
        if self.end_time is not None:
            out["end_time"] = self.end_time
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        return cls(
            run_id=d.get("run_id") or d["run_uuid"],
            experiment_id=str(d.get("experiment_id", "")),
            run_name=d.get("run_name", ""),
            user_id=d.get("user_id", ""),
            status=d.get("status", "RUNNING"),
            start_time=None if d.get("start_time") is None else int(d["start_time"]),
            end_time=None if d.get("end_time") is None else int(d["end_time"]),
            artifact_uri=d.get("artifact_uri", ""),
            lifecycle_stage=d.get("lifecycle_stage", "active"),
        )


@dataclass
class RunData:
    """Latest metric values, params and tags as dicts (what users index), plus the metric objects."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_objects: list[Metric] = field(default_factory=list, repr=False)

    @classmethod
    def build(cls, metrics: list[Metric], params: list[Param], tags: list[RunTag]) -> RunData:
        return cls(
            metrics={m.key: m.value for m in metrics},
            params={p.key: p.value for p in params},
            tags={t.key: t.value for t in tags},
            metric_objects=list(metrics),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.metric_objects:
            out["metrics"] = [m.to_dict() for m in self.metric_objects]
        if self.params:
            out["params"] = [{"key": k, "value": v} for k, v in self.params.items()]
        if self.tags:
            out["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunData:
        return cls.build(
            [Metric.from_dict(m) for m in d.get("metrics", [])],
            [Param(p["key"], p.get("value", "")) for p in d.get("params", [])],
            [RunTag(t["key"], t.get("value", "")) for t in d.get("tags", [])],
        )


@dataclass
class RunInputs:
    dataset_inputs: list[dict[str, Any]] = field(default_factory=list)
    #: MLflow 3's logged models the run used (`log-inputs` `models`): `{"model_id": ...}` each.
    model_inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.dataset_inputs:
            out["dataset_inputs"] = self.dataset_inputs
        if self.model_inputs:
            out["model_inputs"] = self.model_inputs
        return out


@dataclass(frozen=True)
class ModelOutput:
    """A run's link to a logged model it produced (MLflow 3's `runs/outputs`)."""

    model_id: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "step": self.step}


@dataclass
class RunOutputs:
    model_outputs: list[ModelOutput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model_outputs": [m.to_dict() for m in self.model_outputs]} if self.model_outputs else {}


@dataclass
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)

    def to_dict(self) -> dict[str, Any]:
        out = {"info": self.info.to_dict(), "data": self.data.to_dict(), "inputs": self.inputs.to_dict()}
        if self.outputs.model_outputs:
            out["outputs"] = self.outputs.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        inputs = d.get("inputs") or {}
        outputs = (d.get("outputs") or {}).get("model_outputs") or []
        return cls(
            info=RunInfo.from_dict(d["info"]),
            data=RunData.from_dict(d.get("data") or {}),
            inputs=RunInputs(list(inputs.get("dataset_inputs", [])), list(inputs.get("model_inputs", []))),
            outputs=RunOutputs([ModelOutput(o["model_id"], int(o.get("step", 0))) for o in outputs]),
        )


def float_to_json(value: float) -> float | str:
    """MLflow (proto3 JSON) writes non-finite doubles as the strings NaN, Infinity, -Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def float_from_json(value: Any) -> float:
    return float(value)  # float() already reads "NaN", "Infinity" and "-Infinity"
