"""`POST /graphql`, answered as MLflow's server answers: always `{"data", "errors"}` with `errors` a list
of messages (or null), at most 10 root fields per query. A JSON array of queries is a batch, answered
with an array of results (MLflow 3.17 answers a batch with a 500; modelyard never does from input)."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from fastapi import APIRouter, Request
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, graphql_sync, parse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.protocol.responses import json_response
from modelyard.tracking.graphql.schema import build, default_field

MAX_ROOT_FIELDS = 10
MAX_BATCH = 20

router = APIRouter(tags=["graphql"])


@functools.cache
def schema() -> GraphQLSchema:
    return build()


@router.post("/graphql")
async def graphql_endpoint(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError as exc:
        raise ModelyardException("The request body is not valid JSON.", errors.MALFORMED_REQUEST) from exc
    context = {
        "store": request.app.state.tracking_store,
        "registry": request.app.state.registry_store,
        "reader": request.app.state.artifact_reader,
        # The caller's permissions (no-ops with auth off): each resolver checks what it reads.
        "request": request,
    }
    if isinstance(body, list):
        if len(body) > MAX_BATCH:
            raise ModelyardException.invalid_parameter(f"A GraphQL batch holds at most {MAX_BATCH} queries.")
        return json_response([await run_in_threadpool(execute, item, dict(context)) for item in body])
    return json_response(await run_in_threadpool(execute, body, context))


def execute(body: Any, context: dict[str, Any]) -> dict[str, Any]:
    """One GraphQL request; every failure is in `errors` (messages, as MLflow's server sends them)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"data": None, "errors": ["A GraphQL request needs a 'query' string."]}
    try:
        document = parse(body["query"])
    except GraphQLError as exc:
        return {"data": None, "errors": [exc.message]}
    roots = sum(
        len(node.selection_set.selections)
        for node in document.definitions
        if isinstance(node, OperationDefinitionNode)
    )
    if roots > MAX_ROOT_FIELDS:
        return {
            "data": None,
            "errors": [
                f"GraphQL queries should have at most {MAX_ROOT_FIELDS} root fields, got {roots} root fields."
            ],
        }
    variables = body.get("variables")
    operation = body.get("operationName")
    result = graphql_sync(
        schema(),
        body["query"],
        variable_values=variables if isinstance(variables, dict) else None,
        operation_name=operation if isinstance(operation, str) else None,
        context_value=context,
        field_resolver=default_field,
    )
    messages = [_message(error) for error in result.errors or []]
    return {"data": result.data, "errors": messages or None}


def _message(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, ModelyardException):
        return original.message
    return error.message
