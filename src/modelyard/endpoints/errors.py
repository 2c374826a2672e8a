"""SageMaker's error shape: JSON 1.1 `{"__type": ..., "message": ...}`, read by botocore into ClientError codes."""

from __future__ import annotations


class SageMakerError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def to_dict(self) -> dict[str, object]:
        return {"__type": self.code, "message": self.message, **self.extra}


def validation(message: str) -> SageMakerError:
    return SageMakerError("ValidationException", message)


def not_found(kind: str, name: str) -> SageMakerError:
    # SageMaker answers a missing resource with a ValidationException, not a 404.
    return SageMakerError("ValidationException", f'Could not find {kind} "{name}".')


def in_use(message: str) -> SageMakerError:
    return SageMakerError("ResourceInUse", message)
