"""Every error leaves the service as MLflow's JSON `{"error_code", "message"}` with the matching status.

The mlflow client retries 5xx answers for minutes, so only server-side faults may be 5xx: routing misses
(unknown path, wrong method) and request-validation errors are JSON 4xx like everything else, a
database that is briefly unavailable is a 503 worth retrying, and anything unforeseen a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.protocol.responses import json_response
from modelyard.store.sql.budget import query_refusal

logger = logging.getLogger("modelyard.tracking")

#: Status codes Starlette raises itself, mapped to the MLflow code closest in meaning.
_HTTP_STATUS_CODES = {
    400: errors.BAD_REQUEST,
    401: errors.UNAUTHENTICATED,
    403: errors.PERMISSION_DENIED,
    404: errors.ENDPOINT_NOT_FOUND,
    405: errors.BAD_REQUEST,
    413: errors.BAD_REQUEST,
    429: errors.REQUEST_LIMIT_EXCEEDED,
}


def error_response(error_code: str, message: str, status_code: int | None = None) -> Response:
    status = status_code if status_code is not None else errors.http_status_for(error_code)
    return json_response({"error_code": error_code, "message": message}, status_code=status)


async def _modelyard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelyardException)
    status = exc.http_status
    if status >= 500:
        logger.error(
            "%s %s failed (%s, HTTP %d): %s", request.method, request.url.path, exc.error_code, status,
            exc.message, exc_info=exc,
        )
    return json_response(exc.to_dict(), status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No API endpoint {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
    else:
        message = str(exc.detail)
    code = _HTTP_STATUS_CODES.get(
        exc.status_code, errors.BAD_REQUEST if exc.status_code < 500 else errors.INTERNAL_ERROR
    )
    response = error_response(code, message, status_code=exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(errors.INVALID_PARAMETER_VALUE, f"Invalid request: {exc.errors()}")


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # A statement over its time budget or too large to run (from a path that bypasses the engine's
    # own translation, the async metric writes): the request's fault, a 400 (store/sql/budget.py).
    refusal = query_refusal(exc)
    if refusal is not None:
        return json_response(refusal.to_dict(), status_code=refusal.http_status)
    # Database down, unreachable or locked, or the pool exhausted: transient, so a 503 the mlflow
    # client retries rather than an INTERNAL_ERROR.
    logger.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return error_response(errors.TEMPORARILY_UNAVAILABLE, "The tracking database is temporarily unavailable.")


async def _value_rejected(request: Request, exc: Exception) -> Response:
    # The database refused a value the request carried (a NUL byte in PostgreSQL text, say): the
    # request's fault, so a 400 naming the reason, not a 500 the client would retry for minutes.
    assert isinstance(exc, DataError)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return error_response(
        errors.INVALID_PARAMETER_VALUE, f"The database rejected a value in the request: {reason}"
    )


async def _unencodable_text(request: Request, exc: Exception) -> Response:
    # A string the validators missed that no database can store (a lone surrogate from a JSON
    # escape): the request's fault. The validators name the field; this is the safety net.
    assert isinstance(exc, UnicodeEncodeError)
    return error_response(
        errors.INVALID_PARAMETER_VALUE, f"The request carries text that is not valid Unicode: {exc.reason}."
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after sending this answer, so the server logs the traceback exactly once.
    return error_response(errors.INTERNAL_ERROR, f"Internal server error: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ModelyardException, _modelyard_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _value_rejected)
    app.add_exception_handler(UnicodeEncodeError, _unencodable_text)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
