"""The part of MLflow 3.17's GraphQL schema that modelyard serves, written from the server's own
introspection (types and field names as MLflow's server reports them), and its resolvers.

Resolvers call the same stores as the REST routers and hand back the REST JSON (`to_dict()`) with
camelCase keys, so a field means exactly what its REST twin means. As MLflow's server does: 64-bit
integers are `LongString` (decimal strings), a NaN or infinite metric is `null`, a failed root field is
`null` with its message in `errors`. `mlflowSearchDatasets`, named in issue #22, is not in MLflow
3.17's schema (its UI uses `experiments/search-datasets`), so it is not served either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
    get_nullable_type,
    is_list_type,
)

from modelyard.auth.identity import readable, require
from modelyard.entities import ViewType
from modelyard.protocol.limits import SEARCH_MAX_RESULTS_DEFAULT
from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL
from modelyard.store.tracking import metric_views

SDL = """
scalar LongString

type Query {
  mlflowGetExperiment(input: MlflowGetExperimentInput): MlflowGetExperimentResponse
  mlflowGetMetricHistoryBulkInterval(input: MlflowGetMetricHistoryBulkIntervalInput): MlflowGetMetricHistoryBulkIntervalResponse
  mlflowGetRun(input: MlflowGetRunInput): MlflowGetRunResponse
  mlflowListArtifacts(input: MlflowListArtifactsInput): MlflowListArtifactsResponse
  mlflowSearchRuns(input: MlflowSearchRunsInput): MlflowSearchRunsResponse
}

type ErrorDetail { field: String message: String }
type ApiError { code: String message: String helpUrl: String traceId: String errorDetails: [ErrorDetail] }

input MlflowGetExperimentInput { experimentId: String }
type MlflowExperimentTag { key: String value: String }
type MlflowExperiment {
  experimentId: String
  name: String
  artifactLocation: String
  lifecycleStage: String
  lastUpdateTime: LongString
  creationTime: LongString
  tags: [MlflowExperimentTag!]
  effectiveTraceArchivalRetention: String
  workspace: String
}
type MlflowGetExperimentResponse { experiment: MlflowExperiment apiError: ApiError }

input MlflowGetMetricHistoryBulkIntervalInput {
  runIds: [String]
  metricKey: String
  startStep: Int
  endStep: Int
  maxResults: Int
}
type MlflowMetricWithRunId { key: String value: Float timestamp: LongString step: LongString runId: String }
type MlflowGetMetricHistoryBulkIntervalResponse { metrics: [MlflowMetricWithRunId!] apiError: ApiError }

input MlflowListArtifactsInput { runId: String runUuid: String path: String pageToken: String }
type MlflowFileInfo { path: String isDir: Boolean fileSize: LongString }
type MlflowListArtifactsResponse { rootUri: String files: [MlflowFileInfo!] nextPageToken: String apiError: ApiError }

enum MlflowViewType { ACTIVE_ONLY DELETED_ONLY ALL }
input MlflowSearchRunsInput {
  experimentIds: [String]
  filter: String
  runViewType: MlflowViewType
  maxResults: Int
  orderBy: [String]
  pageToken: String
}
input MlflowGetRunInput { runId: String runUuid: String }
enum MlflowRunStatus { RUNNING SCHEDULED FINISHED FAILED KILLED }
type MlflowRunInfo {
  runId: String
  runUuid: String
  runName: String
  experimentId: String
  userId: String
  status: MlflowRunStatus
  startTime: LongString
  endTime: LongString
  artifactUri: String
  lifecycleStage: String
}
type MlflowMetricExtension {
  key: String
  value: Float
  timestamp: LongString
  step: LongString
  datasetName: String
  datasetDigest: String
  modelId: String
  runId: String
}
type MlflowParam { key: String value: String }
type MlflowRunTag { key: String value: String }
type MlflowRunData { metrics: [MlflowMetricExtension!] params: [MlflowParam!] tags: [MlflowRunTag!] }
type MlflowInputTag { key: String value: String }
type MlflowDataset { name: String digest: String sourceType: String source: String schema: String profile: String }
type MlflowDatasetInput { tags: [MlflowInputTag!] dataset: MlflowDataset }
type MlflowModelInput { modelId: String }
type MlflowRunInputs { datasetInputs: [MlflowDatasetInput!] modelInputs: [MlflowModelInput!] }
type MlflowModelOutput { modelId: String step: LongString }
type MlflowRunOutputs { modelOutputs: [MlflowModelOutput!] }
enum MlflowModelVersionStatus { PENDING_REGISTRATION FAILED_REGISTRATION READY }
type MlflowModelVersionTag { key: String value: String }
type MlflowModelVersion {
  name: String
  version: String
  creationTimestamp: LongString
  lastUpdatedTimestamp: LongString
  userId: String
  currentStage: String
  description: String
  source: String
  runId: String
  status: MlflowModelVersionStatus
  statusMessage: String
  tags: [MlflowModelVersionTag!]
  runLink: String
  aliases: [String]
  modelId: String
}
type MlflowRunExtension {
  info: MlflowRunInfo
  data: MlflowRunData
  inputs: MlflowRunInputs
  outputs: MlflowRunOutputs
  experiment: MlflowExperiment
  modelVersions: [MlflowModelVersion!]
}
type MlflowGetRunResponse { run: MlflowRunExtension apiError: ApiError }
type MlflowSearchRunsResponse { runs: [MlflowRunExtension!] nextPageToken: String apiError: ApiError }
"""

_CAMEL = re.compile(r"_([a-z0-9])")


def camel(value: Any) -> Any:
    """REST JSON -> GraphQL JSON: camelCase keys, non-finite metric values (REST's "NaN", "Infinity") null."""
    if isinstance(value, dict):
        return {_CAMEL.sub(lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    if value in ("NaN", "Infinity", "-Infinity") or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _float(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def _input(kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs.get("input") or {}


def _ctx(info: GraphQLResolveInfo, name: str) -> Any:
    return info.context[name]


def _may_read_experiment(info: GraphQLResolveInfo, experiment_id: Any) -> None:
    request = info.context.get("request")
    if request is not None:
        require(request, EXPERIMENT, str(experiment_id), "read")


def get_experiment(_root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> dict[str, Any]:
    experiment_id = _input(kwargs).get("experimentId") or ""
    _may_read_experiment(info, experiment_id)
    experiment = _ctx(info, "store").get_experiment(experiment_id)
    return {"experiment": camel(experiment.to_dict())}


def get_run(_root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> dict[str, Any]:
    args = _input(kwargs)
    run = _ctx(info, "store").get_run(args.get("runId") or args.get("runUuid") or "")
    _may_read_experiment(info, run.info.experiment_id)
    return {"run": camel(run.to_dict())}


def search_runs(_root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> dict[str, Any]:
    args = _input(kwargs)
    experiment_ids = [str(e) for e in args.get("experimentIds") or []]
    for experiment_id in experiment_ids:
        _may_read_experiment(info, experiment_id)
    page = _ctx(info, "store").search_runs(
        experiment_ids=experiment_ids,
        filter_string=args.get("filter") or "",
        run_view_type=ViewType.parse(args.get("runViewType")),
        max_results=args.get("maxResults") or SEARCH_MAX_RESULTS_DEFAULT,
        order_by=args.get("orderBy") or None,
        page_token=args.get("pageToken") or None,
    )
    return {"runs": [camel(run.to_dict()) for run in page], "nextPageToken": page.token or ""}


def metric_history_bulk_interval(_root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> dict[str, Any]:
    args = _input(kwargs)
    run_ids = [str(r) for r in args.get("runIds") or []]
    for run_id in run_ids:
        _may_read_experiment(info, _ctx(info, "store").get_run(run_id).info.experiment_id)
    metrics = metric_views.history_bulk_interval(
        _ctx(info, "store").engine,
        run_ids,
        args.get("metricKey") or "",
        max_results=args.get("maxResults") or metric_views.INTERVAL_DEFAULT_RESULTS,
        start_step=args.get("startStep"),
        end_step=args.get("endStep"),
    )
    return {"metrics": [camel(m.to_dict()) for m in metrics]}


def list_artifacts(_root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> dict[str, Any]:
    args = _input(kwargs)
    run = _ctx(info, "store").get_run(args.get("runId") or args.get("runUuid") or "")
    _may_read_experiment(info, run.info.experiment_id)
    root = run.info.artifact_uri
    files = _ctx(info, "reader").list(root, args.get("path") or "")
    return {"rootUri": root, "files": [camel(f.to_dict()) for f in files], "nextPageToken": ""}


def run_experiment(run: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any] | None:
    """A run's experiment, read once per request however many runs share it."""
    cache: dict[str, Any] = info.context.setdefault("experiments", {})
    experiment_id = (run.get("info") or {}).get("experimentId")
    if experiment_id not in cache:
        cache[experiment_id] = camel(_ctx(info, "store").get_experiment(experiment_id).to_dict())
    return cache[experiment_id]  # type: ignore[no-any-return]


def run_model_versions(run: dict[str, Any], info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    run_id = (run.get("info") or {}).get("runId")
    request = info.context.get("request")
    visible = readable(request, REGISTERED_MODEL) if request is not None else None
    versions = _ctx(info, "registry").search_model_versions(filter_string=f"run_id = '{run_id}'", visible=visible)
    return [camel(v.to_dict()) for v in versions]


def default_field(source: Any, info: GraphQLResolveInfo, **_args: Any) -> Any:
    """A field of the REST JSON; a list the JSON omits (REST leaves out empty lists) is `[]`, as MLflow
    answers."""
    value = (
        source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)
    )
    if value is None and is_list_type(get_nullable_type(info.return_type)):
        return []
    return value


def _long_string(value: Any) -> str | None:
    return None if value is None else str(value)


def _root_resolvers() -> dict[str, Callable[..., Any]]:
    return {
        "mlflowGetExperiment": get_experiment,
        "mlflowGetRun": get_run,
        "mlflowSearchRuns": search_runs,
        "mlflowGetMetricHistoryBulkInterval": metric_history_bulk_interval,
        "mlflowListArtifacts": list_artifacts,
    }


def build() -> GraphQLSchema:
    schema = build_schema(SDL)
    for name, resolver in _root_resolvers().items():
        schema.query_type.fields[name].resolve = resolver  # type: ignore[union-attr]
    run_type = schema.get_type("MlflowRunExtension")
    run_type.fields["experiment"].resolve = run_experiment  # type: ignore[union-attr]
    run_type.fields["modelVersions"].resolve = run_model_versions  # type: ignore[union-attr]
    scalar = schema.get_type("LongString")
    assert isinstance(scalar, GraphQLScalarType)
    scalar.serialize = _long_string  # type: ignore[method-assign]
    scalar.parse_value = _long_string  # type: ignore[method-assign]
    for type_name in ("MlflowMetricWithRunId", "MlflowMetricExtension"):
        schema.get_type(type_name).fields["value"].resolve = (  # type: ignore[union-attr]
            lambda parent, _info: _float(parent.get("value"))
        )
    return schema
