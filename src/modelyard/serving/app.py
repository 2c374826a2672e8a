"""The scoring service app: `/invocations`, `/ping`, `/health`, `/version`.

The model is loaded once, when the app is built: gunicorn builds the app in each worker after the fork,
so each worker holds exactly one loaded model and no request ever pays for loading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.runtime import browser_guard, dispatch
from modelyard.runtime.metrics import instrument
from modelyard.serving.fast_path import compile_fast_path
from modelyard.serving.protocol import (
    ScoringRequest,
    UnsupportedContentType,
    decode_json,
    is_plain_json,
    parse_payload,
    parse_request,
    predictions_to_json,
)
from modelyard.settings import Settings
from modelyard.version import __version__

logger = logging.getLogger(__name__)

SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def resolve_model_uri(settings: Settings) -> str:
    """The configured URI, else the SageMaker model directory when it holds a model."""
    if settings.model_uri:
        return settings.model_uri
    if (Path(SAGEMAKER_MODEL_DIR) / "MLmodel").is_file():
        return SAGEMAKER_MODEL_DIR
    raise ModelyardException(
        f"No model to serve: set MODELYARD_MODEL_URI or mount a model at {SAGEMAKER_MODEL_DIR}.",
        errors.INVALID_PARAMETER_VALUE,
    )


def load_scoring_model(model_uri: str) -> Any:
    from modelyard import pyfunc

    return pyfunc.load_model(model_uri)


def create_app(settings: Settings, model: Any | None = None) -> FastAPI:
    if model is None:
        model = load_scoring_model(resolve_model_uri(settings))
    column_names = _input_column_names(model)
    schema = _input_schema(model)
    app = FastAPI(title="modelyard serving", version=__version__, docs_url=None, redoc_url=None)
    app.state.model = model
    browser_guard.install(app, settings)
    instrument(app, "serving")

    @app.get("/ping")
    @app.get("/health")
    async def ping() -> Response:
        return Response(content="\n", media_type="application/json")

    @app.get("/version")
    async def version() -> Response:
        return PlainTextResponse(__version__)

    fast = compile_fast_path(model)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type")
        try:
            if fast is not None and is_plain_json(content_type):
                payload = decode_json(body)
                rows = fast.parse(payload)
                if rows is not None:
                    if fast.inline(rows):  # small, and this model predicts quickly: no thread hop
                        predictions = _scored(lambda: fast.predict(rows))
                    else:
                        predictions = await asyncio.to_thread(_scored, lambda: fast.predict(rows))
                    return Response(content=predictions_to_json(predictions), media_type="application/json")
                scoring = _parse(lambda: parse_payload(payload, column_names, schema))
            else:
                scoring = _parse(lambda: parse_request(body, content_type, column_names, schema))
            # Off the event loop, so /ping keeps answering while a large batch scores.
            predictions = await asyncio.to_thread(_predict, model, scoring.data, scoring.params)
            return Response(content=predictions_to_json(predictions), media_type="application/json")
        except UnsupportedContentType as exc:
            return PlainTextResponse(str(exc), status_code=415)
        except ModelyardException as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    if settings.auth:
        from modelyard.auth.install import install

        install(app, settings, "serving")
    # Last, so it is the innermost middleware (inside auth): /invocations skips FastAPI's route scan.
    dispatch.install(app, [("", app.router)])
    return app


def _parse(parse: Callable[[], ScoringRequest]) -> ScoringRequest:
    try:
        return parse()
    except (ModelyardException, UnsupportedContentType):
        raise
    except Exception as exc:
        # Whatever odd shape a payload takes, it is the client's input that is wrong: a 400, never a 500.
        raise ModelyardException(f"Invalid input: {type(exc).__name__}: {exc}", errors.BAD_REQUEST) from exc


def _predict(model: Any, data: Any, params: dict[str, Any] | None) -> Any:
    return _scored(lambda: model.predict(data, params=params) if params else model.predict(data))


def _scored(predict: Callable[[], Any]) -> Any:
    try:
        return predict()
    except ModelyardException as exc:
        if exc.http_status >= 500:
            exc.error_code = errors.BAD_REQUEST
        raise
    except Exception as exc:
        # A model that cannot score this input is the caller's problem to fix, not a server fault,
        # and the worker must stay alive for the next request.
        logger.warning("prediction failed: %s", exc, exc_info=True)
        raise ModelyardException(
            "Encountered an unexpected error while evaluating the model. Verify that the input is "
            f"compatible with the model for inference. Error: {type(exc).__name__}: {exc}",
            errors.BAD_REQUEST,
        ) from exc


def _input_schema(model: Any) -> Any:
    metadata = getattr(model, "metadata", None)
    get_schema = getattr(metadata, "get_input_schema", None)
    return get_schema() if callable(get_schema) else None


def _input_column_names(model: Any) -> list[str] | None:
    schema = _input_schema(model)
    if schema is None:
        return None
    names = getattr(schema, "input_names", None)
    try:
        result = names() if callable(names) else None
    except Exception:  # tensor schemas have no column names
        return None
    return [str(n) for n in result] if result and all(n is not None for n in result) else None
