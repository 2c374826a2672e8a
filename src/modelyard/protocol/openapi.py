"""The OpenAPI 3.1 description of the REST API: every operation's parameters, typed as in MLflow's protos.

The routers read their arguments from a raw JSON body or query string (`modelyard.protocol.parsing`),
so FastAPI cannot describe them; this module is the one place that does. `document(routes, ...)`
describes exactly the operations a service serves (its routes), taking each one's parameters from
`OPERATIONS`; tests/unit/test_openapi.py checks that every route of every service has an entry here.

Conventions, as in MLflow: GET operations take their fields as query parameters (a list is a repeated
key), every other method a JSON object body; int64 fields are JSON integers (proto JSON's numeric
strings are accepted too, but not described). Every path is also served under `/ajax-api/` (MLflow's
UI prefix), which the document leaves out. Errors are `{"error_code", "message"}` with MLflow's codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INT64: Schema = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}
INT32: Schema = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
DOUBLE: Schema = {"type": "number", "format": "double"}
BOOL: Schema = {"type": "boolean"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(**properties: Schema) -> Schema:
    return {"type": "object", "properties": properties}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


KEY_VALUE = obj(key=STRING, value=STRING)
METRIC = {**obj(key=STRING, value=DOUBLE, timestamp=INT64, step=INT64), "required": ["key", "value", "timestamp"]}
DATASET = obj(name=STRING, digest=STRING, source_type=STRING, source=STRING, schema=STRING, profile=STRING)
DATASET_INPUT = obj(tags=array(KEY_VALUE), dataset=DATASET)
RUN_STATUS = enum("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
VIEW_TYPE = enum("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
LOGGED_MODEL_STATUS = enum(
    "LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"
)
ERROR: Schema = {
    "type": "object",
    "properties": {"error_code": STRING, "message": STRING},
    "required": ["error_code", "message"],
}


@dataclass(frozen=True)
class Op:
    """One operation: its fields (query parameters for GET, JSON body otherwise) and which are required.
    `body` replaces the JSON body by a raw one of that media type (artifact uploads); `path_params` are
    the `{name}` parts of the path; `produces` is the success media type."""

    summary: str
    fields: dict[str, Schema] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    path_params: tuple[str, ...] = ()
    body: str | None = None
    produces: str = "application/json"


API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts"
MY = "/api/2.0/modelyard"
RUN_ID = {"run_id": STRING, "run_uuid": STRING}
SEARCH = {"filter": STRING, "max_results": INT64, "order_by": array(STRING), "page_token": STRING}
MODEL_VERSION = {"name": STRING, "version": STRING}

#: (method, path) -> operation, for every operation any service serves.
OPERATIONS: dict[tuple[str, str], Op] = {
    # --- service meta ---------------------------------------------------------------------------
    ("GET", "/health"): Op("Liveness probe", produces="text/plain"),
    ("GET", "/version"): Op("The server's version", produces="text/plain"),
    ("GET", "/api/3.0/mlflow/server-info"): Op("Server capabilities (multipart artifact transfers)"),
    # --- runs -----------------------------------------------------------------------------------
    ("POST", f"{API}/runs/create"): Op(
        "Create a run",
        {"experiment_id": STRING, "user_id": STRING, "run_name": STRING, "start_time": INT64,
         "tags": array(KEY_VALUE)},
    ),  # fmt: skip
    ("GET", f"{API}/runs/get"): Op("Get a run", RUN_ID, ("run_id",)),
    ("POST", f"{API}/runs/update"): Op(
        "Update a run's status, end time or name",
        {**RUN_ID, "status": RUN_STATUS, "end_time": INT64, "run_name": STRING},
        ("run_id",),
    ),
    ("POST", f"{API}/runs/delete"): Op("Delete a run", {"run_id": STRING}, ("run_id",)),
    ("POST", f"{API}/runs/restore"): Op("Restore a deleted run", {"run_id": STRING}, ("run_id",)),
    ("POST", f"{API}/runs/set-tag"): Op(
        "Set a run tag", {**RUN_ID, "key": STRING, "value": STRING}, ("run_id", "key", "value")
    ),
    ("POST", f"{API}/runs/delete-tag"): Op("Delete a run tag", {"run_id": STRING, "key": STRING}, ("run_id", "key")),
    ("POST", f"{API}/runs/log-parameter"): Op(
        "Log a parameter", {**RUN_ID, "key": STRING, "value": STRING}, ("run_id", "key", "value")
    ),
    ("POST", f"{API}/runs/log-metric"): Op(
        "Log a metric value",
        {**RUN_ID, "key": STRING, "value": DOUBLE, "timestamp": INT64, "step": INT64, "model_id": STRING,
         "dataset_name": STRING, "dataset_digest": STRING},
        ("run_id", "key", "value", "timestamp"),
    ),  # fmt: skip
    ("POST", f"{API}/runs/log-batch"): Op(
        "Log metrics, params and tags at once (all or nothing)",
        {"run_id": STRING, "metrics": array(METRIC), "params": array(KEY_VALUE), "tags": array(KEY_VALUE)},
        ("run_id",),
    ),
    ("POST", f"{API}/runs/log-inputs"): Op(
        "Log dataset inputs of a run",
        {"run_id": STRING, "datasets": array(DATASET_INPUT), "models": array(obj(model_id=STRING))},
        ("run_id",),
    ),
    ("POST", f"{API}/runs/search"): Op(
        "Search runs",
        {"experiment_ids": array(STRING), "run_view_type": VIEW_TYPE, **SEARCH, "max_results": INT32},
    ),
    ("POST", f"{API}/runs/outputs"): Op(
        "Record logged models as outputs of a run",
        {"run_id": STRING, "models": array({**obj(model_id=STRING, step=INT64), "required": ["model_id"]})},
        ("run_id",),
    ),
    ("GET", f"{API}/metrics/get-history"): Op(
        "A metric's history, page by page",
        {**RUN_ID, "metric_key": STRING, "page_token": STRING, "max_results": INT32},
        ("run_id", "metric_key"),
    ),
    # --- experiments ----------------------------------------------------------------------------
    ("POST", f"{API}/experiments/create"): Op(
        "Create an experiment",
        {"name": STRING, "artifact_location": STRING, "tags": array(KEY_VALUE)},
        ("name",),
    ),
    ("GET", f"{API}/experiments/get"): Op("Get an experiment", {"experiment_id": STRING}, ("experiment_id",)),
    ("GET", f"{API}/experiments/get-by-name"): Op(
        "Get an experiment by name", {"experiment_name": STRING}, ("experiment_name",)
    ),
    ("GET", f"{API}/experiments/search"): Op("Search experiments", {**SEARCH, "view_type": VIEW_TYPE}),
    ("POST", f"{API}/experiments/search"): Op("Search experiments", {**SEARCH, "view_type": VIEW_TYPE}),
    ("POST", f"{API}/experiments/update"): Op(
        "Rename an experiment", {"experiment_id": STRING, "new_name": STRING}, ("experiment_id", "new_name")
    ),
    ("POST", f"{API}/experiments/delete"): Op(
        "Delete an experiment", {"experiment_id": STRING}, ("experiment_id",)
    ),
    ("POST", f"{API}/experiments/restore"): Op(
        "Restore a deleted experiment", {"experiment_id": STRING}, ("experiment_id",)
    ),
    ("POST", f"{API}/experiments/set-experiment-tag"): Op(
        "Set an experiment tag",
        {"experiment_id": STRING, "key": STRING, "value": STRING},
        ("experiment_id", "key", "value"),
    ),
    ("POST", f"{API}/experiments/delete-experiment-tag"): Op(
        "Delete an experiment tag", {"experiment_id": STRING, "key": STRING}, ("experiment_id", "key")
    ),
    # --- registered models ----------------------------------------------------------------------
    ("POST", f"{API}/registered-models/create"): Op(
        "Create a registered model",
        {"name": STRING, "tags": array(KEY_VALUE), "description": STRING},
        ("name",),
    ),
    ("GET", f"{API}/registered-models/get"): Op("Get a registered model", {"name": STRING}, ("name",)),
    ("POST", f"{API}/registered-models/rename"): Op(
        "Rename a registered model", {"name": STRING, "new_name": STRING}, ("name", "new_name")
    ),
    ("PATCH", f"{API}/registered-models/update"): Op(
        "Update a registered model's description", {"name": STRING, "description": STRING}, ("name",)
    ),
    ("DELETE", f"{API}/registered-models/delete"): Op(
        "Delete a registered model and its versions", {"name": STRING}, ("name",)
    ),
    ("GET", f"{API}/registered-models/search"): Op("Search registered models", SEARCH),
    ("POST", f"{API}/registered-models/search"): Op("Search registered models", SEARCH),
    ("GET", f"{API}/registered-models/get-latest-versions"): Op(
        "Latest version per stage", {"name": STRING, "stages": array(STRING)}, ("name",)
    ),
    ("POST", f"{API}/registered-models/get-latest-versions"): Op(
        "Latest version per stage", {"name": STRING, "stages": array(STRING)}, ("name",)
    ),
    ("POST", f"{API}/registered-models/set-tag"): Op(
        "Set a registered model tag", {"name": STRING, "key": STRING, "value": STRING}, ("name", "key", "value")
    ),
    ("DELETE", f"{API}/registered-models/delete-tag"): Op(
        "Delete a registered model tag", {"name": STRING, "key": STRING}, ("name", "key")
    ),
    ("POST", f"{API}/registered-models/alias"): Op(
        "Point an alias at a version",
        {"name": STRING, "alias": STRING, "version": STRING},
        ("name", "alias", "version"),
    ),
    ("DELETE", f"{API}/registered-models/alias"): Op(
        "Delete an alias", {"name": STRING, "alias": STRING}, ("name", "alias")
    ),
    ("GET", f"{API}/registered-models/alias"): Op(
        "The version an alias points at", {"name": STRING, "alias": STRING}, ("name", "alias")
    ),
    # --- model versions -------------------------------------------------------------------------
    ("POST", f"{API}/model-versions/create"): Op(
        "Register a model version",
        {"name": STRING, "source": STRING, "run_id": STRING, "tags": array(KEY_VALUE), "run_link": STRING,
         "description": STRING, "model_id": STRING},
        ("name", "source"),
    ),  # fmt: skip
    ("GET", f"{API}/model-versions/get"): Op("Get a model version", MODEL_VERSION, ("name", "version")),
    ("PATCH", f"{API}/model-versions/update"): Op(
        "Update a version's description", {**MODEL_VERSION, "description": STRING}, ("name", "version")
    ),
    ("DELETE", f"{API}/model-versions/delete"): Op("Delete a model version", MODEL_VERSION, ("name", "version")),
    ("POST", f"{API}/model-versions/transition-stage"): Op(
        "Move a version to a stage",
        {**MODEL_VERSION, "stage": STRING, "archive_existing_versions": BOOL},
        ("name", "version", "stage"),
    ),
    ("GET", f"{API}/model-versions/search"): Op("Search model versions", SEARCH),
    ("POST", f"{API}/model-versions/search"): Op("Search model versions", SEARCH),
    ("GET", f"{API}/model-versions/get-download-uri"): Op(
        "Where a version's files are", MODEL_VERSION, ("name", "version")
    ),
    ("POST", f"{API}/model-versions/set-tag"): Op(
        "Set a model version tag",
        {**MODEL_VERSION, "key": STRING, "value": STRING},
        ("name", "version", "key", "value"),
    ),
    ("DELETE", f"{API}/model-versions/delete-tag"): Op(
        "Delete a model version tag", {**MODEL_VERSION, "key": STRING}, ("name", "version", "key")
    ),
    # --- logged models (MLflow 3) ---------------------------------------------------------------
    ("POST", f"{API}/logged-models"): Op(
        "Create a logged model",
        {"experiment_id": STRING, "name": STRING, "model_type": STRING, "source_run_id": STRING,
         "params": array(KEY_VALUE), "tags": array(KEY_VALUE)},
        ("experiment_id",),
    ),  # fmt: skip
    ("POST", f"{API}/logged-models/search"): Op(
        "Search logged models",
        {"experiment_ids": array(STRING), "filter": STRING,
         "datasets": array(obj(dataset_name=STRING, dataset_digest=STRING)), "max_results": INT32,
         "order_by": array(obj(field_name=STRING, ascending=BOOL, dataset_name=STRING, dataset_digest=STRING)),
         "page_token": STRING},
    ),  # fmt: skip
    ("GET", f"{API}/logged-models/{{model_id}}"): Op("Get a logged model", path_params=("model_id",)),
    ("PATCH", f"{API}/logged-models/{{model_id}}"): Op(
        "Finalize a logged model", {"status": LOGGED_MODEL_STATUS}, ("status",), ("model_id",)
    ),
    ("DELETE", f"{API}/logged-models/{{model_id}}"): Op("Delete a logged model", path_params=("model_id",)),
    ("PATCH", f"{API}/logged-models/{{model_id}}/tags"): Op(
        "Set logged model tags", {"tags": array(KEY_VALUE)}, path_params=("model_id",)
    ),
    ("DELETE", f"{API}/logged-models/{{model_id}}/tags/{{tag_key}}"): Op(
        "Delete a logged model tag", path_params=("model_id", "tag_key")
    ),
    ("POST", f"{API}/logged-models/{{model_id}}/params"): Op(
        "Log logged model params", {"params": array(KEY_VALUE)}, path_params=("model_id",)
    ),
    ("GET", f"{API}/logged-models/{{model_id}}/artifacts/directories"): Op(
        "List a logged model's artifacts", {"artifact_directory_path": STRING}, path_params=("model_id",)
    ),
    ("GET", f"{API}/artifacts/list"): Op(
        "List a run's artifacts (tracking server)", {**RUN_ID, "path": STRING, "page_token": STRING}
    ),
    ("GET", f"{API}/metrics/get-history-bulk-interval"): Op(
        "Metric histories of several runs, sampled to max_results steps",
        {"run_ids": array(STRING), "metric_key": STRING, "start_step": INT64, "end_step": INT64, "max_results": INT64},
        ("run_ids", "metric_key"),
    ),
    # --- the registry's history (modelyard's own API) ------------------------------------------
    ("GET", f"{MY}/registry/events"): Op(
        "Registry events, newest first, of a model (and version) or an endpoint",
        {"name": STRING, "version": STRING, "endpoint": STRING, "max_results": INT64, "page_token": STRING},
    ),
    ("GET", f"{MY}/registry/held"): Op(
        "Which version(s) held an alias or stage at a time (ms)",
        {"name": STRING, "alias": STRING, "stage": STRING, "time": INT64},
        ("name",),
    ),
    ("POST", f"{MY}/registry/rollback"): Op(
        "Move an alias or stage back to what it held before", {"name": STRING, "alias": STRING, "stage": STRING}, ("name",)
    ),
    ("POST", f"{MY}/registry/events/deploy"): Op(
        "Record a deploy step's outcome on a version",
        {"name": STRING, "version": STRING, "kind": STRING, "endpoint": STRING, "details": {"type": "object"}},
        ("name", "version", "kind", "endpoint"),
    ),
    # --- bulk import (modelyard's own API; `modelyard import`) -----------------------------------
    ("POST", f"{MY}/runs/import"): Op(
        "Import up to 1,000 whole runs (200,000 metric points) into an experiment, all or nothing",
        {"experiment_id": STRING,
         "runs": array({**obj(run_name=STRING, user_id=STRING, start_time=INT64, end_time=INT64, status=RUN_STATUS,
                              lifecycle_stage=enum("active", "deleted"), params=array(KEY_VALUE),
                              tags=array(KEY_VALUE), metrics=array(METRIC)), "required": ["run_name"]})},
        ("experiment_id", "runs"),
    ),  # fmt: skip
    ("GET", f"{MY}/runs/export"): Op(
        "Every run of an experiment with every metric point, as JSON lines (`modelyard export`)",
        {"experiment_id": STRING}, ("experiment_id",), produces="application/x-ndjson",
    ),  # fmt: skip
    # --- webhooks (modelyard's own API) -----------------------------------------------------------
    ("POST", f"{MY}/webhooks/create"): Op(
        "Register a webhook (the answer shows its secret, once)",
        {"name": STRING, "url": STRING, "events": array(STRING), "description": STRING, "secret": STRING, "active": BOOL},
        ("name", "url"),
    ),
    ("GET", f"{MY}/webhooks/list"): Op("Every webhook (secrets never shown)"),
    ("GET", f"{MY}/webhooks/get"): Op("One webhook", {"id": STRING}, ("id",)),
    ("PATCH", f"{MY}/webhooks/update"): Op(
        "Change a webhook; rotate_secret answers the new secret",
        {"id": STRING, "name": STRING, "url": STRING, "events": array(STRING), "description": STRING,
         "active": BOOL, "rotate_secret": BOOL},
        ("id",),
    ),  # fmt: skip
    ("DELETE", f"{MY}/webhooks/delete"): Op("Delete a webhook and its delivery log", {"id": STRING}, ("id",)),
    ("POST", f"{MY}/webhooks/test"): Op("Queue a test delivery", {"id": STRING}, ("id",)),
    ("GET", f"{MY}/webhooks/deliveries"): Op(
        "A webhook's deliveries, newest first",
        {"id": STRING, "status": STRING, "max_results": INT64, "page_token": STRING},
        ("id",),
    ),
    # --- artifacts ------------------------------------------------------------------------------
    ("GET", f"{ART}/artifacts"): Op("List artifacts under a folder", {"path": STRING}),
    ("GET", f"{ART}/artifacts/{{path}}"): Op(
        "Download an artifact", path_params=("path",), produces="application/octet-stream"
    ),
    ("PUT", f"{ART}/artifacts/{{path}}"): Op(
        "Upload an artifact (the body is the file)", path_params=("path",), body="application/octet-stream"
    ),
    ("PUT", f"{ART}/modelyard-bundle/{{path}}"): Op(
        "modelyard's own: upload several small files into the folder `path` at once (the body is an "
        "uncompressed tar of regular files named relative to it, whatever its Content-Type; all are checked "
        "before any is written)",
        path_params=("path",),
        body="application/octet-stream",
    ),
    ("DELETE", f"{ART}/artifacts/{{path}}"): Op("Delete an artifact or folder", path_params=("path",)),
    ("POST", f"{ART}/mpu/create/{{path}}"): Op(
        "Start a multipart upload of the file `path` into the folder",
        {"path": STRING, "num_parts": INT64},
        ("path",),
        ("path",),
    ),
    ("POST", f"{ART}/mpu/complete/{{path}}"): Op(
        "Complete a multipart upload",
        {"path": STRING, "upload_id": STRING,
         "parts": array(obj(part_number=INT64, etag=STRING, url=STRING))},
        ("path", "upload_id"),
        ("path",),
    ),  # fmt: skip
    ("POST", f"{ART}/mpu/abort/{{path}}"): Op(
        "Abort a multipart upload", {"path": STRING, "upload_id": STRING}, ("path", "upload_id"), ("path",)
    ),
    ("GET", f"{ART}/presigned/{{path}}"): Op(
        "A presigned S3 GET URL for the file: {url, headers, file_size} (501 unless "
        "MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS is on and the destination is S3)",
        path_params=("path",),
    ),
}

UNDOCUMENTED = "x-modelyard-undocumented"


def operation(method: str, path: str) -> dict[str, Any]:
    """The OpenAPI operation object of one (method, path); marked `UNDOCUMENTED` when `OPERATIONS` lacks it."""
    op = OPERATIONS.get((method, path))
    if op is None:
        return {UNDOCUMENTED: True, "responses": {"200": {"description": "OK"}}}
    result: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(method, path)}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": STRING} for name in op.path_params
    ]
    if method == "GET":
        for name, schema in op.fields.items():
            parameter = {"name": name, "in": "query", "required": name in op.required, "schema": schema}
            if schema.get("type") == "array":
                parameter.update(style="form", explode=True)
            parameters.append(parameter)
    elif op.body is not None:
        result["requestBody"] = {"required": True, "content": {op.body: {"schema": {"type": "string", "format": "binary"}}}}
    else:
        body: Schema = {"type": "object", "properties": op.fields}
        if op.required:
            body["required"] = list(op.required)
        result["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if parameters:
        result["parameters"] = parameters
    result["responses"] = {
        "200": {"description": "OK", "content": {op.produces: {"schema": {} if op.produces != "text/plain" else STRING}}},
        "default": {
            "description": "An MLflow error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    }
    return result


def _operation_id(method: str, path: str) -> str:
    words = [w for w in path.replace("{", "").replace("}", "").replace("-", "/").split("/") if w]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words if w not in ("api", "2.0", "3.0"))


def described(method: str, path: str) -> bool:
    """Whether the document covers this route: the REST API under `/api/` and the listed service routes."""
    return path.startswith("/api/") or (method, path) in OPERATIONS


def document(routes: Iterable[tuple[str, str]], title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a service serving `routes` ((method, path) pairs): its REST API, every
    route under `/api/` and the service routes described in `OPERATIONS`; `/ajax-api/` copies and anything
    else a service serves (HTML pages of the UI) are left out."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(set(routes), key=lambda r: (r[1], r[0])):
        if not described(method, path):
            continue
        paths.setdefault(path, {})[method.lower()] = operation(method, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "MLflow-compatible REST API. Every /api/ path is also served under /ajax-api/.",
        },
        "paths": paths,
        "components": {"schemas": {"Error": ERROR}},
    }
