"""MLflow's error codes and the HTTP status each one travels with.

The `mlflow` client decides whether to retry from the status alone (408/429/5xx are retried for
minutes), so a client mistake must map to a 4xx here, never to a 5xx.
"""

from __future__ import annotations

INTERNAL_ERROR = "INTERNAL_ERROR"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
MALFORMED_REQUEST = "MALFORMED_REQUEST"
BAD_REQUEST = "BAD_REQUEST"
INVALID_STATE = "INVALID_STATE"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
ABORTED = "ABORTED"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"

HTTP_STATUS: dict[str, int] = {
    INTERNAL_ERROR: 500,
    TEMPORARILY_UNAVAILABLE: 503,
    INVALID_PARAMETER_VALUE: 400,
    MALFORMED_REQUEST: 400,
    BAD_REQUEST: 400,
    INVALID_STATE: 400,
    ENDPOINT_NOT_FOUND: 404,
    RESOURCE_ALREADY_EXISTS: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    RESOURCE_CONFLICT: 409,
    PERMISSION_DENIED: 403,
    UNAUTHENTICATED: 401,
    REQUEST_LIMIT_EXCEEDED: 429,
    NOT_IMPLEMENTED: 501,
    ABORTED: 409,
    # MLflow answers it with 429, which its client retries for minutes; modelyard uses it for a full
    # disk or quota, which retrying does not fix: 507 Insufficient Storage, not in the retried set.
    RESOURCE_EXHAUSTED: 507,
}


def http_status_for(error_code: str) -> int:
    """Unknown codes are treated as client errors: a 5xx would make the mlflow client retry."""
    return HTTP_STATUS.get(error_code, 400)
