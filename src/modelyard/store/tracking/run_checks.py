"""MLflow's answers for a write to a run that cannot take it, shared by every path that writes to runs."""

from __future__ import annotations

from modelyard.entities import LifecycleStage
from modelyard.exceptions import ModelyardException


def run_not_found(run_id: str) -> ModelyardException:
    return ModelyardException.not_found(f"Run with id={run_id} not found")


def require_active_run(run_id: str, lifecycle_stage: str | None) -> None:
    """404 RESOURCE_DOES_NOT_EXIST when the run is unknown (`lifecycle_stage` None), 400
    INVALID_PARAMETER_VALUE when it is not active (deleted): the write must not happen."""
    if lifecycle_stage is None:
        raise run_not_found(run_id)
    if lifecycle_stage != LifecycleStage.ACTIVE:
        raise ModelyardException.invalid_parameter(
            f"The run {run_id} must be in the 'active' state. Current state is {lifecycle_stage}."
        )
