"""The one exception type that crosses layers: it carries an MLflow error code to the HTTP edge."""

from __future__ import annotations

from typing import Any

from modelyard import errors


class ModelyardException(Exception):
    """An error with an MLflow error code; routers turn it into `{"error_code", "message"}`."""

    def __init__(self, message: str, error_code: str = errors.INTERNAL_ERROR, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.details = details

    @property
    def http_status(self) -> int:
        return errors.http_status_for(self.error_code)

    def to_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message, **self.details}

    @classmethod
    def invalid_parameter(cls, message: str) -> ModelyardException:
        return cls(message, errors.INVALID_PARAMETER_VALUE)

    @classmethod
    def not_found(cls, message: str) -> ModelyardException:
        return cls(message, errors.RESOURCE_DOES_NOT_EXIST)

    @classmethod
    def already_exists(cls, message: str) -> ModelyardException:
        return cls(message, errors.RESOURCE_ALREADY_EXISTS)


# MLflow's name, so `except MlflowException` ports over with a one-word change.
MlflowException = ModelyardException


class RestException(ModelyardException):
    """An error answered by a remote tracking server, re-raised client-side with its code."""

    def __init__(self, payload: dict[str, Any], status_code: int | None = None) -> None:
        code = str(payload.get("error_code") or errors.INTERNAL_ERROR)
        message = str(payload.get("message") or payload)
        super().__init__(f"{code}: {message}", code)
        self.status_code = status_code
        self.json = payload
