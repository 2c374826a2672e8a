"""`modelyard gc` and `modelyard storage` on PostgreSQL + the S3 server, with runs logged by the real
`mlflow` client through a gunicorn tracking service that proxies artifacts to S3 (issue #19)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.compat]


def _s3() -> Any:
    return boto3.client("s3", endpoint_url=os.environ["MODELYARD_TEST_S3"], region_name="us-east-1")


def _keys(bucket: str) -> dict[str, int]:
    s3 = _s3()
    out: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "modelyard"), *args]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


@pytest.fixture
def stack(
    postgres_uri: str,
    s3_bucket: str,
    s3_endpoint: str,
    tracking_server: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    monkeypatch.setenv("MODELYARD_TEST_S3", s3_endpoint)
    env = {
        "MODELYARD_BACKEND_STORE_URI": postgres_uri,
        "MODELYARD_ARTIFACTS_DESTINATION": f"s3://{s3_bucket}/artifacts",
        "MODELYARD_S3_ENDPOINT_URL": s3_endpoint,
    }
    url = tracking_server(postgres_uri, env=env, workers=1)
    return {"url": url, "env": env, "bucket": s3_bucket, "uri": postgres_uri}


def _log_runs(url: str, tmp_path: Path, with_models: bool = True) -> dict[str, Any]:
    """Two experiments; runs with files and (by default) sklearn models; one run registered."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.linear_model import LinearRegression

    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    keep_exp = client.create_experiment(f"keep-{uuid.uuid4().hex[:6]}")
    drop_exp = client.create_experiment(f"drop-{uuid.uuid4().hex[:6]}")
    runs: dict[str, str] = {}
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    for label, experiment in (("kept", keep_exp), ("deleted", keep_exp), ("registered", keep_exp), ("in_dropped", drop_exp)):
        with mlflow.start_run(experiment_id=experiment) as run:
            (tmp_path / label).mkdir(exist_ok=True)
            (tmp_path / label / "notes.txt").write_text(f"{label} " * 200)
            (tmp_path / label / "data.bin").write_bytes(os.urandom(3000))
            mlflow.log_artifacts(str(tmp_path / label), "files")
            mlflow.log_metric("loss", 0.5)
            if with_models or label == "registered":
                mlflow.sklearn.log_model(
                    model, name="model", serialization_format="cloudpickle",
                    registered_model_name=f"gc-{uuid.uuid4().hex[:6]}" if label == "registered" else None,
                )  # fmt: skip
            runs[label] = run.info.run_id
    mlflow.set_tracking_uri(None)
    for label in ("deleted", "registered"):
        client.delete_run(runs[label])
    client.delete_experiment(drop_exp)
    return {"runs": runs, "drop_exp": drop_exp, "keep_exp": keep_exp, "client": client}


def _run_keys(keys: dict[str, int], run_id: str) -> dict[str, int]:
    return {k: v for k, v in keys.items() if f"/{run_id}/" in k}


def test_gc_dry_run_then_gc_removes_exactly_the_deleted_runs(stack: dict[str, Any], tmp_path: Path) -> None:
    logged = _log_runs(stack["url"], tmp_path)
    runs, bucket = logged["runs"], stack["bucket"]
    before = _keys(bucket)
    model_ids = {k.split("/models/")[1].split("/")[0] for k in before if "/models/" in k}
    assert len(model_ids) == 4  # one logged model per run, in the experiment's models/ folder
    doomed_runs = (runs["deleted"], runs["in_dropped"])

    active = _cli(stack["env"], "gc", "--dry-run", "--run-ids", runs["kept"])
    assert active.returncode == 1 and "is not deleted" in active.stderr
    dry = _cli(stack["env"], "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    named = {line.split()[3] for line in dry.stdout.splitlines() if line.startswith("would remove run ")}
    assert named == set(doomed_runs)
    assert f"refused run {runs['registered']}: registered as" in dry.stdout
    assert _keys(bucket) == before  # a dry run changes nothing

    # The bytes it announces are those of the runs' folders and of their logged models' folders.
    client = logged["client"]
    doomed_models = {
        m.model_id for m in client.search_logged_models(experiment_ids=[logged["keep_exp"], logged["drop_exp"]])
        if m.source_run_id in doomed_runs
    }  # fmt: skip
    doomed_keys = {
        k: v for k, v in before.items()
        if any(f"/{r}/" in k for r in doomed_runs) or any(f"/models/{m}/" in k for m in doomed_models)
    }  # fmt: skip
    summary = dry.stdout.strip().splitlines()[-1]
    assert f"{len(doomed_keys)} objects, {sum(doomed_keys.values())} bytes" in summary, (summary, len(doomed_keys))
    assert "2 runs, 1 experiments" in summary

    done = _cli(stack["env"], "gc", "--yes")
    assert done.returncode == 0, done.stderr
    after = _keys(bucket)
    assert set(after) == set(before) - set(doomed_keys)
    assert _run_keys(after, runs["kept"]) and _run_keys(after, runs["registered"])
    for run_id in doomed_runs:
        with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST|not found"):
            client.get_run(run_id)
    assert client.get_run(runs["kept"]).data.metrics == {"loss": 0.5}
    assert client.get_run(runs["registered"]).info.lifecycle_stage == "deleted"
    with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST|not found|No Experiment"):
        client.get_experiment(logged["drop_exp"])
    again = _cli(stack["env"], "gc", "--yes")  # nothing left to do
    assert again.stdout.strip().splitlines()[-1].startswith("removed: 0 runs, 0 experiments, 0 objects")

    storage = _cli(stack["env"], "storage")  # gc measured what is left
    assert storage.returncode == 0, storage.stderr
    kept_bytes = sum(after.values())
    assert storage.stdout.strip().splitlines()[-1].split()[1:] == [str(len(after)), str(kept_bytes)]


#: `modelyard gc --yes` that dies by SIGKILL (no clean-up, no `finally`) right after its first DeleteObjects
#: call, made to carry 3 keys: half-way through the batch's files, before any row.
_KILLED_HALF_WAY = """
import os, signal, sys
from modelyard.cli import main
from modelyard.artifact_repos import s3_folders
delete_chunk = s3_folders.delete_chunk
def then_die(*args):
    delete_chunk(*args)
    os.kill(os.getpid(), signal.SIGKILL)
s3_folders.DELETE_CHUNK = 3
s3_folders.delete_chunk = then_die
sys.argv = ["modelyard", "gc", "--yes"]
main()
"""


def test_gc_killed_half_way_finishes_on_the_next_run(stack: dict[str, Any], tmp_path: Path) -> None:
    logged = _log_runs(stack["url"], tmp_path, with_models=False)
    runs, client = logged["runs"], logged["client"]
    doomed = [runs["deleted"], runs["in_dropped"]]
    before = _keys(stack["bucket"])
    doomed_keys = {k for k in before if any(f"/{r}/" in k for r in doomed)}
    assert len(doomed_keys) == 4  # two files each

    killed = subprocess.run([sys.executable, "-c", _KILLED_HALF_WAY], env={**os.environ, **stack["env"]},
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    half = _keys(stack["bucket"])
    assert len(set(before) - set(half)) == 3 and set(before) - set(half) < doomed_keys  # 3 of the 4, nothing else
    assert all(client.get_run(run_id).info.lifecycle_stage == "deleted" for run_id in doomed)  # rows still there

    done = _cli(stack["env"], "gc", "--yes")
    assert done.returncode == 0, done.stderr
    assert "removed: 2 runs, 1 experiments" in done.stdout.strip().splitlines()[-1]
    after = _keys(stack["bucket"])
    assert set(after) == set(before) - doomed_keys
    for run_id in doomed:
        with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST|not found"):
            client.get_run(run_id)
    assert client.get_run(runs["kept"]).data.metrics == {"loss": 0.5}


def test_orphan_sweep_finds_planted_folders(stack: dict[str, Any], tmp_path: Path) -> None:
    logged = _log_runs(stack["url"], tmp_path, with_models=False)
    s3 = _s3()
    planted = [
        f"artifacts/{logged['keep_exp']}/{uuid.uuid4().hex}/artifacts/stray.txt",
        f"artifacts/{logged['keep_exp']}/models/m-{uuid.uuid4().hex}/artifacts/MLmodel",
        "artifacts/987654/leftover/file.txt",
    ]
    for key in planted:
        s3.put_object(Bucket=stack["bucket"], Key=key, Body=b"orphan")
    dry = _cli(stack["env"], "gc", "--orphans", "--dry-run", "--older-than", "3650d")  # no run is that old
    assert dry.returncode == 0, dry.stderr
    found = sorted(line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("would remove orphan "))
    run_folder, model_folder = ("/".join(planted[0].split("/")[1:3]), "/".join(planted[1].split("/")[1:4]))
    assert found == sorted([run_folder, model_folder, "987654"])
    swept = _cli(stack["env"], "gc", "--orphans", "--yes", "--older-than", "3650d")
    assert swept.returncode == 0, swept.stderr
    left = _keys(stack["bucket"])
    assert not any(k in left for k in planted)
    assert _run_keys(left, logged["runs"]["kept"])  # owned folders untouched


def test_ages_parse() -> None:
    from modelyard.cli_lifecycle import parse_age

    assert parse_age("30d") == 30 * 86_400_000 and parse_age("12h") == 12 * 3_600_000 and parse_age("90") == 90 * 86_400_000
    with pytest.raises(Exception, match="not a duration"):
        parse_age("soon")
