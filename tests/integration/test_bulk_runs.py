"""`POST /api/2.0/modelyard/runs/import` (what `modelyard import` sends): whole runs written in one
transaction, read back through MLflow's API as if logged call by call (search included, which reads
PostgreSQL's per-run params/tags JSON), all or nothing. `GET /api/2.0/modelyard/runs/export` (what
`modelyard export` reads): every run of an experiment with every point, as get-run and get-history
answer them. SQLite and PostgreSQL, in-process app."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.settings import Settings
from modelyard.store.sql.migrate import upgrade
from modelyard.tracking.app import create_app

API = "/api/2.0/mlflow"
IMPORT = "/api/2.0/modelyard/runs/import"
EXPORT = "/api/2.0/modelyard/runs/export"


@pytest.fixture
def client(db_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    upgrade(db_uri)
    settings = Settings(backend_store_uri=db_uri, artifacts_destination=str(tmp_path), webhook_delivery=False)
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def _run(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "run_name": name, "user_id": "ana", "start_time": 1_700_000_000_000, "end_time": 1_700_000_060_000,
        "status": "FINISHED", "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "team", "value": "ml"}],
        "metrics": [{"key": "loss", "value": v, "timestamp": 1_700_000_000_000 + s, "step": s}
                    for s, v in enumerate([1.0, 0.5, "NaN", 0.25])],  # NaN as MLflow's JSON spells it
        **extra,
    }  # fmt: skip


def test_imported_runs_read_back_as_logged_ones(client: TestClient) -> None:
    experiment_id = client.post(f"{API}/experiments/create", json={"name": "imports"}).json()["experiment_id"]
    runs = [_run("a"), _run("b", status="FAILED", lifecycle_stage="deleted", params=[]), _run("c", metrics=[])]
    answer = client.post(IMPORT, json={"experiment_id": experiment_id, "runs": runs})
    assert answer.status_code == 200, answer.text
    ids = answer.json()["run_ids"]
    assert len(set(ids)) == 3

    got = client.get(f"{API}/runs/get", params={"run_id": ids[0]}).json()["run"]
    info, data = got["info"], got["data"]
    assert (info["run_name"], info["user_id"], info["status"], info["lifecycle_stage"]) == ("a", "ana", "FINISHED", "active")
    assert (info["start_time"], info["end_time"]) == (1_700_000_000_000, 1_700_000_060_000)
    assert info["artifact_uri"].endswith(f"/{ids[0]}/artifacts")
    assert data["params"] == [{"key": "lr", "value": "0.1"}]
    assert {t["key"]: t["value"] for t in data["tags"]} == {"team": "ml", "mlflow.runName": "a"}
    assert data["metrics"] == [{"key": "loss", "value": 0.25, "timestamp": 1_700_000_000_003, "step": 3}]
    history = client.get(f"{API}/metrics/get-history", params={"run_id": ids[0], "metric_key": "loss"}).json()["metrics"]
    values = [m["value"] for m in sorted(history, key=lambda m: m["step"])]
    assert values[:2] == [1.0, 0.5] and values[3] == 0.25 and (values[2] == "NaN" or math.isnan(values[2]))

    found = client.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id], "filter": "params.lr = '0.1'"}).json()
    assert sorted(r["info"]["run_name"] for r in found["runs"]) == ["a", "c"]  # b is deleted
    deleted = client.get(f"{API}/runs/get", params={"run_id": ids[1]}).json()["run"]["info"]
    assert (deleted["lifecycle_stage"], deleted["status"]) == ("deleted", "FAILED")


def test_dataset_inputs_and_generated_names_as_log_inputs_and_create_run_give_them(client: TestClient) -> None:
    """What autologging's child runs send: no run_name (the server names them, as create-run does) and
    the training dataset as an input, read back as log-inputs would have left it."""
    experiment_id = client.post(f"{API}/experiments/create", json={"name": "children"}).json()["experiment_id"]
    dataset = {"name": "train", "digest": "abc123", "source_type": "code", "source": "{}", "schema": "{}"}
    entry = {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "train"}]}
    runs = [{k: v for k, v in _run("x", inputs=[entry, entry]).items() if k != "run_name"}, _run("named")]
    answer = client.post(IMPORT, json={"experiment_id": experiment_id, "runs": runs})
    assert answer.status_code == 200, answer.text
    first, second = (client.get(f"{API}/runs/get", params={"run_id": i}).json()["run"] for i in answer.json()["run_ids"])
    name = first["info"]["run_name"]
    assert name and name != "x" and {t["key"]: t["value"] for t in first["data"]["tags"]}["mlflow.runName"] == name
    assert first["inputs"]["dataset_inputs"] == [entry]  # the same dataset twice: one input
    assert not second.get("inputs", {}).get("dataset_inputs")
    bad = {"experiment_id": experiment_id, "runs": [_run("ok"), _run("y", inputs=[{"dataset": {"name": "n"}}])]}
    refused = client.post(IMPORT, json=bad)
    assert refused.status_code == 400 and "'digest'" in refused.json()["message"]


def test_a_bad_run_refuses_the_whole_batch(client: TestClient) -> None:
    experiment_id = client.post(f"{API}/experiments/create", json={"name": "bad"}).json()["experiment_id"]
    cases = [
        ({"experiment_id": experiment_id, "runs": [_run("ok"), _run("x", status="EXPLODED")]}, 400, "Invalid run status"),
        ({"experiment_id": experiment_id, "runs": [_run("ok"), {**_run("y"), "params": [{"key": "lr", "value": "1"},
                                                                                       {"key": "lr", "value": "2"}]}]},
         400, "given twice"),  # fmt: skip
        ({"experiment_id": experiment_id, "runs": [_run("ok", metrics=[{"key": "m", "value": "high", "timestamp": 1}])]}, 400, "value"),
        ({"experiment_id": experiment_id, "runs": []}, 400, "at least one run"),
        ({"experiment_id": experiment_id, "runs": [_run(str(i)) for i in range(1001)]}, 400, "at most 1000 runs"),
        ({"experiment_id": "424242", "runs": [_run("ok")]}, 404, "No Experiment"),
    ]
    for body, status, message in cases:
        answer = client.post(IMPORT, json=body)
        assert answer.status_code == status, (message, answer.text)
        assert message in answer.json()["message"]
    left = client.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id], "run_view_type": "ALL"}).json()
    assert left.get("runs", []) == []
    client.post(f"{API}/experiments/delete", json={"experiment_id": experiment_id})
    closed = client.post(IMPORT, json={"experiment_id": experiment_id, "runs": [_run("ok")]})
    assert closed.status_code == 400 and "active" in closed.json()["message"]


def test_history_bulk_reads_many_runs_in_mlflows_order(client: TestClient) -> None:
    """get-history-bulk (export reads pages through it): sorted runs, each run's points by (timestamp,
    step, value), at most max_results per run; an unknown run is a 404, more than 100 runs a 400."""
    experiment_id = client.post(f"{API}/experiments/create", json={"name": "bulk"}).json()["experiment_id"]
    points = [{"key": "loss", "value": v, "timestamp": ts, "step": s} for s, ts, v in ((2, 10, 0.5), (1, 30, 0.7), (0, 20, "NaN"))]
    ids = client.post(IMPORT, json={"experiment_id": experiment_id, "runs": [_run("a", metrics=points), _run("b")]}).json()["run_ids"]
    url = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    got = client.get(url, params={"run_id": [ids[1], ids[0], ids[1]], "metric_key": "loss"}).json()["metrics"]
    assert [m["run_id"] for m in got] == sorted([ids[0]] * 3 + [ids[1]] * 4)
    mine = [(m["timestamp"], m["step"], m["value"]) for m in got if m["run_id"] == ids[0]]
    assert mine == [(10, 2, 0.5), (20, 0, "NaN"), (30, 1, 0.7)]
    capped = client.get(url, params={"run_id": ids, "metric_key": "loss", "max_results": 2}).json()["metrics"]
    assert sorted(m["run_id"] for m in capped) == sorted(ids * 2)
    assert client.get(url, params={"run_id": [ids[0], "f" * 32], "metric_key": "loss"}).status_code == 404
    assert client.get(url, params={"run_id": [f"{i:032x}" for i in range(101)], "metric_key": "loss"}).status_code == 400


def test_export_streams_each_run_with_every_point(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 2 runs and lines of at most 3 points here, so paging and a history split over several
    lines are both exercised; what comes out is get-run's info, params, tags and inputs and
    get-history's points, for every run of the experiment (deleted ones too) and no other."""
    from modelyard.store.tracking import run_export

    monkeypatch.setattr(run_export, "PAGE_RUNS", 2)
    monkeypatch.setattr(run_export, "CHUNK_POINTS", 3)
    experiment_id = client.post(f"{API}/experiments/create", json={"name": "exported"}).json()["experiment_id"]
    other = client.post(f"{API}/experiments/create", json={"name": "not-exported"}).json()["experiment_id"]
    special = [{"key": "odd", "value": v, "timestamp": 5, "step": s} for s, v in enumerate(["NaN", "Infinity", "-Infinity", 1e-7])]
    runs = [
        _run("a", metrics=_run("a")["metrics"] + [{"key": "acc", "value": 0.9, "timestamp": 9, "step": 0}] + special),
        _run("b", status="FAILED", lifecycle_stage="deleted"),
        _run("c", metrics=[], params=[], tags=[], user_id=""),
        _run("d"),
        _run("e"),
    ]  # fmt: skip
    ids = client.post(IMPORT, json={"experiment_id": experiment_id, "runs": runs}).json()["run_ids"]
    client.post(IMPORT, json={"experiment_id": other, "runs": [_run("elsewhere")]})
    dataset = {"name": "train", "digest": "abc123", "source_type": "local", "source": '{"uri": "/d.csv"}'}
    logged = client.post(f"{API}/runs/log-inputs", json={"run_id": ids[3], "datasets": [{"tags": [], "dataset": dataset}]})
    assert logged.status_code == 200, logged.text

    answer = client.get(EXPORT, params={"experiment_id": experiment_id})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines[-1] == {"end": {"runs": 5}}
    exported: dict[str, dict[str, Any]] = {}
    current = None
    for line in lines[:-1]:
        assert len(line["metrics"]) <= 3
        if "run" in line:
            current = line["run"]["info"]["run_id"]
            exported[current] = {**line["run"], "points": []}
        assert current is not None
        exported[current]["points"] += line["metrics"]
    assert list(exported) == sorted(ids)  # run id order, each once
    assert sum("run" not in line for line in lines[:-1]) >= 3  # run a's 9 points took 3 lines

    for run_id in ids:
        got = client.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
        mine = exported[run_id]
        assert mine["info"] == got["info"]
        assert mine["data"] == {"params": got["data"].get("params", []), "tags": got["data"].get("tags", [])}
        assert mine["inputs"]["dataset_inputs"] == got["inputs"].get("dataset_inputs", [])
        history = []
        for key in sorted({m["key"] for m in got["data"].get("metrics", [])}):
            params = {"run_id": run_id, "metric_key": key}
            history += client.get(f"{API}/metrics/get-history", params=params).json()["metrics"]
        def order(m: dict[str, Any]) -> tuple[Any, ...]:
            return (m["key"], m["step"], m["timestamp"])
        assert sorted(mine["points"], key=order) == sorted(history, key=order)
    assert {m["value"] for m in exported[ids[0]]["points"] if m["key"] == "odd"} == {"NaN", "Infinity", "-Infinity", 1e-7}
    assert exported[ids[1]]["info"]["lifecycle_stage"] == "deleted"
    assert exported[ids[3]]["inputs"]["dataset_inputs"][0]["dataset"]["digest"] == "abc123"

    for params, status in (({"experiment_id": "424242"}, 404), ({"experiment_id": "x"}, 404), ({}, 400)):
        refused = client.get(EXPORT, params=params)
        assert refused.status_code == status and refused.json()["error_code"], refused.text
