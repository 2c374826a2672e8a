"""`modelyard models predict|list|describe` run as a real subprocess, against files and a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard.sklearn
from modelyard.models import infer_signature

FRAME = pd.DataFrame({"a": [0.1, 2.5, -1.0, 3.3, 0.7, 4.0], "b": [1, 7, 2, 9, 0, 8]})
COLUMNS = {"a": FRAME["a"].tolist(), "b": FRAME["b"].tolist()}


def _cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "modelyard"), "models", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=120,
    )


@pytest.fixture()
def classifier() -> LogisticRegression:
    return LogisticRegression().fit(FRAME, (FRAME["a"] + FRAME["b"] > 5).astype(int))


@pytest.fixture()
def model_dir(tmp_path: Path, classifier: LogisticRegression) -> Path:
    modelyard.sklearn.save_model(classifier, tmp_path / "model", signature=infer_signature(FRAME))
    return tmp_path / "model"


def _predictions(result: subprocess.CompletedProcess[bytes]) -> list[int]:
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)["predictions"]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": FRAME.to_dict(orient="split", index=False)},
        {"dataframe_records": FRAME.to_dict(orient="records")},
        {"instances": FRAME.to_dict(orient="records")},
        {"inputs": COLUMNS},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs"],
)
def test_predict_json_formats(tmp_path, model_dir, classifier, body):
    (tmp_path / "in.json").write_text(json.dumps(body))
    result = _cli("predict", "-m", str(model_dir), "-i", str(tmp_path / "in.json"))
    assert _predictions(result) == classifier.predict(FRAME).tolist()


def test_predict_csv_to_output_file(tmp_path, model_dir, classifier):
    FRAME.to_csv(tmp_path / "in.csv", index=False)
    result = _cli(
        "predict", "-m", str(model_dir), "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.json")
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (
        json.loads((tmp_path / "out.json").read_text())["predictions"] == classifier.predict(FRAME).tolist()
    )


def test_predict_reads_stdin(model_dir, classifier):
    body = json.dumps({"dataframe_records": FRAME.to_dict(orient="records")}).encode()
    assert (
        _predictions(_cli("predict", "-m", str(model_dir), "-i", "-", stdin=body))
        == classifier.predict(FRAME).tolist()
    )


def test_predict_names_the_missing_column(tmp_path, model_dir):
    (tmp_path / "in.json").write_text(json.dumps({"dataframe_records": [{"a": 1.0}]}))
    result = _cli("predict", "-m", str(model_dir), "-i", str(tmp_path / "in.json"))
    assert result.returncode != 0
    assert b"INVALID_PARAMETER_VALUE" in result.stderr and b"'b'" in result.stderr


def test_predict_rejects_a_malformed_body(tmp_path, model_dir):
    (tmp_path / "in.json").write_text(json.dumps({"rows": [1, 2]}))
    result = _cli("predict", "-m", str(model_dir), "-i", str(tmp_path / "in.json"))
    assert result.returncode != 0 and b"BAD_REQUEST" in result.stderr


def test_list_and_describe_against_a_server(tracking_server, monkeypatch, classifier):
    import modelyard

    url = tracking_server(workers=1)
    env = {"MLFLOW_TRACKING_URI": url}
    name = f"cli-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    modelyard.set_experiment(name)
    with modelyard.start_run():
        modelyard.sklearn.log_model(classifier, name="model", registered_model_name=name)
        modelyard.sklearn.log_model(classifier, name="model2", registered_model_name=name)
    client = modelyard.Client(url)
    client.transition_model_version_stage(name, "2", "Production")
    client.set_registered_model_alias(name, "champion", "1")

    listed = _cli("list", env=env)
    assert listed.returncode == 0, listed.stderr.decode()
    assert name in [m["name"] for m in json.loads(listed.stdout)]

    described = _cli("describe", name, env=env)
    assert described.returncode == 0, described.stderr.decode()
    data = json.loads(described.stdout)
    assert data["aliases"] == {"champion": "1"}
    assert [(v["version"], v["stage"]) for v in data["versions"]] == [("1", "None"), ("2", "Production")]
    assert data["versions"][0]["aliases"] == ["champion"]

    scored = _cli(
        "predict",
        "-m",
        f"models:/{name}@champion",
        "-i",
        "-",
        env=env,
        stdin=json.dumps({"inputs": COLUMNS}).encode(),
    )
    assert _predictions(scored) == classifier.predict(FRAME).tolist()

    missing = _cli("describe", f"{name}-nope", env=env)
    assert missing.returncode != 0 and b"RESOURCE_DOES_NOT_EXIST" in missing.stderr

    client.set_registered_model_alias(name, "champion", "2")
    rolled = _cli("rollback", name, "--alias", "champion", "--yes", env=env)
    assert rolled.returncode == 0, rolled.stderr.decode()
    assert client.get_model_version_by_alias(name, "champion").version == "1"  # back where it was
    assert "alias_set champion v1 (was v2)" in _cli("history", name, env=env).stdout.decode().splitlines()[0]

    refused = _cli("delete", name, env=env, stdin=b"n\n")  # asks first; "n" keeps the model
    assert refused.returncode != 0 and _cli("describe", name, env=env).returncode == 0
    deleted = _cli("delete", name, "--yes", env=env)
    assert deleted.returncode == 0, deleted.stderr.decode()
    assert _cli("describe", name, env=env).returncode != 0
    kept = _cli("history", name, env=env).stdout.decode().splitlines()
    assert "deleted" in kept[0] and len(kept) > 1  # the history outlives the model
    client.create_registered_model(name)
    purged = _cli("delete", name, "--yes", "--purge-history", env=env)
    assert purged.returncode == 0, purged.stderr.decode()
    assert _cli("history", name, env=env).stdout.decode().strip() == ""
