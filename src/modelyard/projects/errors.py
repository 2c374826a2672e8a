"""The error a project run raises: MLflow's `ExecutionException` name, modelyard's exception type."""

from __future__ import annotations

from modelyard import errors
from modelyard.exceptions import ModelyardException


class ExecutionException(ModelyardException):
    """A project could not be run as asked (bad project, entry point, parameter or environment), or its run failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errors.INVALID_PARAMETER_VALUE)
