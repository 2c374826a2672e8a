"""The same sequence of REST calls against modelyard and a real `mlflow server`, compared.

Every endpoint modelyard's tracking server serves is called at least once (good requests and typical
mistakes); each answer's status, error code, and JSON shape (keys and value types, ids and times
aside) must equal MLflow 3.17's. Where modelyard differs on purpose, `KNOWN` says where and why: the
list is the record of our deliberate divergences, and anything else that differs fails the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from tests.compat.conftest import CompatServer

pytestmark = pytest.mark.compat

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class Call:
    name: str
    method: str
    path: str
    body: Any = None
    params: dict[str, Any] | None = None
    data: bytes | None = None
    save: Callable[[Any], dict[str, str]] = field(default=lambda _: {})


def _scenario(tag: str) -> list[Call]:
    """The calls, with `{name}` placeholders filled from what earlier answers saved."""
    experiment = f"sbs-{tag}"
    model = f"sbs-model-{tag}"
    metric = {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 1}
    return [
        Call("health", "GET", "/health"),
        Call("server-info", "GET", "/api/3.0/mlflow/server-info"),
        Call(
            "create experiment",
            "POST",
            f"{API}/experiments/create",
            {"name": experiment},
            save=lambda j: {"exp": j["experiment_id"]},
        ),
        Call("duplicate experiment", "POST", f"{API}/experiments/create", {"name": experiment}),
        Call("experiment without name", "POST", f"{API}/experiments/create", {}),
        Call("get experiment", "GET", f"{API}/experiments/get", params={"experiment_id": "{exp}"}),
        Call("get unknown experiment", "GET", f"{API}/experiments/get", params={"experiment_id": "987654"}),
        Call(
            "get experiment by name",
            "GET",
            f"{API}/experiments/get-by-name",
            params={"experiment_name": experiment},
        ),
        Call(
            "search experiments",
            "POST",
            f"{API}/experiments/search",
            {"filter": f"name = '{experiment}'", "max_results": 5},
        ),
        Call(
            "set experiment tag",
            "POST",
            f"{API}/experiments/set-experiment-tag",
            {"experiment_id": "{exp}", "key": "k", "value": "v"},
        ),
        Call(
            "delete experiment tag",
            "POST",
            f"{API}/experiments/delete-experiment-tag",
            {"experiment_id": "{exp}", "key": "k"},
        ),
        Call(
            "rename experiment",
            "POST",
            f"{API}/experiments/update",
            {"experiment_id": "{exp}", "new_name": experiment + "-r"},
        ),
        Call(
            "create run",
            "POST",
            f"{API}/runs/create",
            {"experiment_id": "{exp}", "run_name": "r1", "start_time": 1},
            save=lambda j: {
                "run": j["run"]["info"]["run_id"],
                "run_art": j["run"]["info"]["artifact_uri"].split(":/", 1)[1],
            },
        ),
        Call(
            "create second run",
            "POST",
            f"{API}/runs/create",
            {"experiment_id": "{exp}"},
            save=lambda j: {"run2": j["run"]["info"]["run_id"]},
        ),
        Call("log param", "POST", f"{API}/runs/log-parameter", {"run_id": "{run}", "key": "p", "value": "1"}),
        Call(
            "change param", "POST", f"{API}/runs/log-parameter", {"run_id": "{run}", "key": "p", "value": "2"}
        ),
        Call("log metric", "POST", f"{API}/runs/log-metric", {"run_id": "{run}", **metric}),
        Call(
            "log metric bad value",
            "POST",
            f"{API}/runs/log-metric",
            {"run_id": "{run}", "key": "x", "value": "abc", "timestamp": 1},
        ),
        Call("log metric unknown run", "POST", f"{API}/runs/log-metric", {"run_id": "ab" * 16, **metric}),
        Call(
            "log batch",
            "POST",
            f"{API}/runs/log-batch",
            {
                "run_id": "{run}",
                "metrics": [
                    {"key": "loss", "value": 0.25 * i, "timestamp": 1000 + i, "step": i} for i in range(2, 12)
                ],
                "params": [{"key": "q", "value": "x"}],
                "tags": [{"key": "t", "value": "y"}],
            },
        ),
        Call(
            "log NaN",
            "POST",
            f"{API}/runs/log-batch",
            {"run_id": "{run2}", "metrics": [{"key": "loss", "value": "NaN", "timestamp": 1, "step": 0}]},
        ),
        Call("set tag", "POST", f"{API}/runs/set-tag", {"run_id": "{run}", "key": "a", "value": "b"}),
        Call("delete tag", "POST", f"{API}/runs/delete-tag", {"run_id": "{run}", "key": "a"}),
        Call("delete missing tag", "POST", f"{API}/runs/delete-tag", {"run_id": "{run}", "key": "zzz"}),
        Call(
            "log inputs",
            "POST",
            f"{API}/runs/log-inputs",
            {
                "run_id": "{run}",
                "datasets": [
                    {
                        "dataset": {"name": "ds", "digest": "d1", "source_type": "local", "source": "{}"},
                        "tags": [{"key": "mlflow.data.context", "value": "train"}],
                    }
                ],
            },
        ),
        Call("get run", "GET", f"{API}/runs/get", params={"run_id": "{run}"}),
        Call("get unknown run", "GET", f"{API}/runs/get", params={"run_id": "ab" * 16}),
        Call(
            "update run",
            "POST",
            f"{API}/runs/update",
            {"run_id": "{run2}", "status": "FINISHED", "end_time": 5},
        ),
        Call(
            "search runs",
            "POST",
            f"{API}/runs/search",
            {"experiment_ids": ["{exp}"], "filter": "metrics.loss > 0", "order_by": ["metrics.loss DESC"]},
        ),
        Call(
            "search runs bad filter",
            "POST",
            f"{API}/runs/search",
            {"experiment_ids": ["{exp}"], "filter": "metrics.loss >>> 1"},
        ),
        Call(
            "metric history",
            "GET",
            f"{API}/metrics/get-history",
            params={"run_id": "{run}", "metric_key": "loss"},
        ),
        Call(
            "history bulk interval",
            "GET",
            f"{API}/metrics/get-history-bulk-interval",
            params={"run_ids": ["{run}", "{run2}"], "metric_key": "loss", "max_results": 4},
        ),
        Call(
            "history bulk interval ajax",
            "GET",
            f"{AJAX}/metrics/get-history-bulk-interval",
            params={"run_ids": ["{run}"], "metric_key": "loss"},
        ),
        Call(
            "history bulk interval no key",
            "GET",
            f"{API}/metrics/get-history-bulk-interval",
            params={"run_ids": ["{run}"]},
        ),
        Call(
            "history bulk",
            "GET",
            f"{AJAX}/metrics/get-history-bulk",
            params={"run_id": ["{run}", "{run2}"], "metric_key": "loss"},
        ),
        Call("search datasets", "POST", f"{AJAX}/experiments/search-datasets", {"experiment_ids": ["{exp}"]}),
        Call(
            "upload artifact (UI)",
            "POST",
            f"{AJAX}/upload-artifact",
            params={"run_uuid": "{run}", "path": "ui/a.txt"},
            data=b"hi",
        ),
        Call(
            "upload artifact bad path",
            "POST",
            f"{AJAX}/upload-artifact",
            params={"run_uuid": "{run}", "path": "../a.txt"},
            data=b"hi",
        ),
        Call("put artifact", "PUT", f"{ART}/{{run_art}}/dir/b.json", data=b'{"a": 1}'),
        Call("list artifacts (proxy)", "GET", f"{ART}", params={"path": "{run_art}/dir"}),
        Call("get artifact (proxy)", "GET", f"{ART}/{{run_art}}/dir/b.json"),
        Call("list artifacts", "GET", f"{API}/artifacts/list", params={"run_id": "{run}"}),
        Call("get-artifact", "GET", "/get-artifact", params={"run_id": "{run}", "path": "ui/a.txt"}),
        Call("get-artifact traversal", "GET", "/get-artifact", params={"run_id": "{run}", "path": "../../x"}),
        Call("delete artifact (proxy)", "DELETE", f"{ART}/{{run_art}}/dir/b.json"),
        Call(
            "create logged model",
            "POST",
            f"{API}/logged-models",
            {"experiment_id": "{exp}", "name": "lm", "source_run_id": "{run}"},
            save=lambda j: {
                "lm": j["model"]["info"]["model_id"],
                "lm_art": j["model"]["info"]["artifact_uri"].split(":/", 1)[1],
            },
        ),
        Call(
            "logged model metric",
            "POST",
            f"{API}/runs/log-metric",
            {"run_id": "{run}", **metric, "model_id": "{lm}", "dataset_name": "ds", "dataset_digest": "d1"},
        ),
        Call(
            "log model input",
            "POST",
            f"{API}/runs/log-inputs",
            {"run_id": "{run}", "models": [{"model_id": "{lm}"}]},
        ),
        Call(
            "logged model params",
            "POST",
            f"{API}/logged-models/{{lm}}/params",
            {"model_id": "{lm}", "params": [{"key": "lr", "value": "0.1"}]},
        ),
        Call(
            "logged model tags",
            "PATCH",
            f"{API}/logged-models/{{lm}}/tags",
            {"tags": [{"key": "t", "value": "1"}]},
        ),
        Call("delete logged model tag", "DELETE", f"{API}/logged-models/{{lm}}/tags/t"),
        Call(
            "finalize logged model",
            "PATCH",
            f"{API}/logged-models/{{lm}}",
            {"model_id": "{lm}", "status": "LOGGED_MODEL_READY"},
        ),
        Call("put model file", "PUT", f"{ART}/{{lm_art}}/MLmodel", data=b"flavors: {}\n"),
        Call("logged model artifacts", "GET", f"{API}/logged-models/{{lm}}/artifacts/directories"),
        Call(
            "logged model file",
            "GET",
            f"{AJAX}/logged-models/{{lm}}/artifacts/files",
            params={"artifact_file_path": "MLmodel"},
        ),
        Call("get logged model", "GET", f"{API}/logged-models/{{lm}}"),
        Call(
            "search logged models",
            "POST",
            f"{API}/logged-models/search",
            {"experiment_ids": ["{exp}"], "datasets": [{"dataset_name": "ds", "dataset_digest": "d1"}]},
        ),
        Call(
            "run outputs",
            "POST",
            f"{API}/runs/outputs",
            {"run_id": "{run}", "models": [{"model_id": "{lm}", "step": 0}]},
        ),
        Call("create registered model", "POST", f"{API}/registered-models/create", {"name": model}),
        Call("duplicate registered model", "POST", f"{API}/registered-models/create", {"name": model}),
        Call(
            "version from logged model",
            "POST",
            f"{API}/model-versions/create",
            {"name": model, "source": "models:/{lm}", "model_id": "{lm}"},
        ),
        Call(
            "version from foreign run",
            "POST",
            f"{API}/model-versions/create",
            {"name": model, "source": f"runs:/{'cd' * 16}/m", "run_id": "cd" * 16},
        ),
        Call(
            "version from a local path",
            "POST",
            f"{API}/model-versions/create",
            {"name": model, "source": "/etc", "run_id": "{run}"},
        ),
        Call("get version", "GET", f"{API}/model-versions/get", params={"name": model, "version": "1"}),
        Call(
            "version artifact",
            "GET",
            "/model-versions/get-artifact",
            params={"name": model, "version": "1", "path": "MLmodel"},
        ),
        Call(
            "version download uri",
            "GET",
            f"{API}/model-versions/get-download-uri",
            params={"name": model, "version": "1"},
        ),
        Call(
            "update version",
            "PATCH",
            f"{API}/model-versions/update",
            {"name": model, "version": "1", "description": "d"},
        ),
        Call(
            "transition stage",
            "POST",
            f"{API}/model-versions/transition-stage",
            {"name": model, "version": "1", "stage": "Staging", "archive_existing_versions": False},
        ),
        Call(
            "set version tag",
            "POST",
            f"{API}/model-versions/set-tag",
            {"name": model, "version": "1", "key": "k", "value": "v"},
        ),
        Call(
            "delete version tag",
            "DELETE",
            f"{API}/model-versions/delete-tag",
            {"name": model, "version": "1", "key": "k"},
        ),
        Call(
            "search versions", "GET", f"{API}/model-versions/search", params={"filter": f"name = '{model}'"}
        ),
        Call(
            "set alias",
            "POST",
            f"{API}/registered-models/alias",
            {"name": model, "alias": "champ", "version": "1"},
        ),
        Call(
            "get by alias", "GET", f"{API}/registered-models/alias", params={"name": model, "alias": "champ"}
        ),
        Call("delete alias", "DELETE", f"{API}/registered-models/alias", {"name": model, "alias": "champ"}),
        Call(
            "set model tag",
            "POST",
            f"{API}/registered-models/set-tag",
            {"name": model, "key": "k", "value": "v"},
        ),
        Call(
            "delete model tag", "DELETE", f"{API}/registered-models/delete-tag", {"name": model, "key": "k"}
        ),
        Call("update model", "PATCH", f"{API}/registered-models/update", {"name": model, "description": "d"}),
        Call("get model", "GET", f"{API}/registered-models/get", params={"name": model}),
        Call("latest versions", "POST", f"{API}/registered-models/get-latest-versions", {"name": model}),
        Call(
            "search models", "GET", f"{API}/registered-models/search", params={"filter": f"name = '{model}'"}
        ),
        Call(
            "graphql",
            "POST",
            "/graphql",
            {
                "query": 'query { mlflowGetExperiment(input: {experimentId: "{exp}"}) { experiment { name tags { key } } apiError { code } } '
                'mlflowSearchRuns(input: {experimentIds: ["{exp}"]}) { runs { info { runId status startTime } data { metrics { key value step } params { key value } } inputs { datasetInputs { dataset { name } } modelInputs { modelId } } experiment { name } } } '
                'mlflowListArtifacts(input: {runId: "{run}"}) { rootUri files { path isDir } } '
                'mlflowGetMetricHistoryBulkInterval(input: {runIds: ["{run}", "{run2}"], metricKey: "loss"}) { metrics { key value step timestamp runId } } }'
            },
        ),
        Call(
            "graphql without NaN",
            "POST",
            "/graphql",
            {
                "query": 'query { mlflowSearchRuns(input: {experimentIds: ["{exp}"], filter: "attributes.run_name = \'r1\'"}) '
                "{ runs { info { runId status startTime } data { metrics { key value step timestamp } "
                "params { key value } tags { key value } } inputs { datasetInputs { dataset { name digest } "
                "tags { key value } } } experiment { name } modelVersions { version } } nextPageToken } }"
            },
        ),
        Call(
            "graphql error",
            "POST",
            "/graphql",
            {
                "query": 'query { mlflowGetExperiment(input: {experimentId: "987654"}) { experiment { name } } }'
            },
        ),
        Call("graphql bad query", "POST", "/graphql", {"query": "query { nope }"}),
        Call("delete version", "DELETE", f"{API}/model-versions/delete", {"name": model, "version": "2"}),
        Call(
            "rename model",
            "POST",
            f"{API}/registered-models/rename",
            {"name": model, "new_name": model + "-r"},
        ),
        Call("delete model", "DELETE", f"{API}/registered-models/delete", {"name": model + "-r"}),
        Call("delete logged model", "DELETE", f"{API}/logged-models/{{lm}}"),
        Call("delete run", "POST", f"{API}/runs/delete", {"run_id": "{run2}"}),
        Call("restore run", "POST", f"{API}/runs/restore", {"run_id": "{run2}"}),
        Call("delete experiment", "POST", f"{API}/experiments/delete", {"experiment_id": "{exp}"}),
        Call("restore experiment", "POST", f"{API}/experiments/restore", {"experiment_id": "{exp}"}),
        Call("unknown endpoint", "GET", f"{API}/no-such-thing"),
    ]


#: Where modelyard answers differently on purpose: call name -> why. (Also: a model version's JSON
#: carries its `model_id` in modelyard's answers, which MLflow stores but leaves out; `shape` drops it.
#: In GraphQL an unset 64-bit field (a folder's `fileSize`, a running run's `endTime`) is null in
#: modelyard's answers and "0" in MLflow's: those fields are not queried.)
KNOWN: dict[str, str] = {
    "server-info": "modelyard reports its own capabilities (no trace archival, workspaces or gateway)",
    "graphql": "MLflow answers a NaN metric in mlflowSearchRuns with an error, modelyard with null "
    "('graphql without NaN' compares the rest)",
    "unknown endpoint": "MLflow answers an HTML 404 page; modelyard answers MLflow's JSON error shape",
    "put artifact": "the artifacts API answers an upload with `{}`; MLflow with an empty body",
    "get experiment": "MLflow 3.17 adds `workspace`; modelyard has no workspaces",
    "get experiment by name": "MLflow 3.17 adds `workspace`; modelyard has no workspaces",
    "search experiments": "MLflow 3.17 adds `workspace`; modelyard has no workspaces",
    "history bulk": 'a NaN point is "NaN" as in every REST answer; MLflow prints a bare NaN (not JSON)',
    "put model file": "the artifacts API answers an upload with `{}`; MLflow with an empty body",
}


def _fill(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in saved.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, saved) for k, v in value.items()}
    return value


def shape(value: Any) -> Any:
    """Keys and value types; an error is its code; a list is the set of its elements' shapes. Empty
    values (`""`, `{}`, `[]`, null) count as absent: proto3 JSON may leave out a field at its default,
    and MLflow's server and modelyard differ only in whether they print such fields."""
    if isinstance(value, dict):
        if "error_code" in value:
            return {"error_code": value["error_code"]}
        ignored = {"sqlstate", "error_class", *(["model_id"] if "current_stage" in value else [])}
        return {
            k: shape(v) for k, v in sorted(value.items()) if k not in ignored and v not in ("", {}, [], None)
        }
    if isinstance(value, list):
        return sorted({json.dumps(shape(v), sort_keys=True) for v in value})
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _run(base: str, tag: str) -> dict[str, tuple[int, Any]]:
    saved: dict[str, str] = {}
    answers = {}
    with requests.Session() as session:
        for call in _scenario(tag):
            kwargs: dict[str, Any] = {"params": _fill(call.params, saved), "timeout": 60}
            if call.body is not None:
                kwargs["json"] = _fill(call.body, saved)
            if call.data is not None:
                kwargs["data"] = call.data
            answer = session.request(call.method, base + _fill(call.path, saved), **kwargs)
            if answer.headers.get("content-type", "").startswith("application/json") and answer.content:
                body = answer.json()
                if answer.status_code == 200:
                    saved.update(call.save(body))
                answers[call.name] = (answer.status_code, shape(body))
            else:
                answers[call.name] = (
                    answer.status_code,
                    answer.headers.get("content-type", "").split(";")[0],
                )
    return answers


def test_every_endpoint_answers_as_mlflow(compat_server: CompatServer, mlflow_server: str) -> None:
    tag = uuid.uuid4().hex[:8]
    ours, theirs = _run(compat_server.url, tag), _run(mlflow_server, tag)
    differences = {
        name: (ours[name], theirs[name]) for name in ours if ours[name] != theirs[name] and name not in KNOWN
    }
    assert differences == {}
    assert set(ours) == {call.name for call in _scenario(tag)}
