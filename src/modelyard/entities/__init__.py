"""Plain data objects with MLflow's attribute names and MLflow's REST JSON shapes.

`to_dict()` produces exactly the JSON the REST API sends, `from_dict()` reads it back; the
client, the services and the stores all speak these objects.
"""

from modelyard.entities.experiment import Experiment, ExperimentTag
from modelyard.entities.lifecycle import LifecycleStage, RunStatus, ViewType
from modelyard.entities.logged_model import LoggedModel, LoggedModelStatus, ModelOutput
from modelyard.entities.paged_list import PagedList
from modelyard.entities.registry import (
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    RegisteredModel,
    RegisteredModelAlias,
)
from modelyard.entities.run import Metric, Param, Run, RunData, RunInfo, RunInputs, RunOutputs, RunTag

__all__ = [
    "Experiment",
    "ExperimentTag",
    "LifecycleStage",
    "LoggedModel",
    "LoggedModelStatus",
    "Metric",
    "ModelOutput",
    "ModelVersion",
    "ModelVersionStage",
    "ModelVersionStatus",
    "PagedList",
    "Param",
    "RegisteredModel",
    "RegisteredModelAlias",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunOutputs",
    "RunStatus",
    "RunTag",
    "ViewType",
]
