"""Shared by the export/import tests (tests/integration and tests/compat): log a small project with the
real mlflow client, snapshot what must survive a move, run the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

IMPORT_TAGS = ("modelyard.import.source_run", "modelyard.import.complete")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "modelyard"), *args]
    done = subprocess.run(command, env=os.environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def log_runs(
    url: str, tmp_path: Path, experiment: str = "moving", model_name: str = "promo", sklearn: bool = True
) -> dict[str, Any]:
    """`sklearn` False: the two versions are a folder with an MLmodel file, not logged sklearn models
    (logging those costs ~10 s of mlflow's requirement inference, which a test of the bundle's
    container does not need)."""
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment)
    x = np.arange(20.0).reshape(-1, 2)
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": "0.1", "layers": "3"})
        from mlflow.entities import Metric

        points = [Metric("loss", 1.0 / (step + 1), 1_700_000_000_000 + step, step) for step in range(300)]
        mlflow.MlflowClient(url).log_batch(parent.info.run_id, metrics=points)
        (tmp_path / "report").mkdir()
        (tmp_path / "report" / "summary.txt").write_text("fine\n" * 100)
        (tmp_path / "report" / "weights.bin").write_bytes(os.urandom(5000))
        mlflow.log_artifacts(str(tmp_path / "report"), "report")
        for i in range(2):
            with mlflow.start_run(run_name=f"child-{i}", nested=True):
                mlflow.log_metric("acc", 0.5 + i / 10)
        models = []
        for offset in (0.0, 3.0) if sklearn else ():
            from sklearn.linear_model import LinearRegression

            model = LinearRegression().fit(x, x[:, 0] * 2 + offset)
            mlflow.sklearn.log_model(
                model, name=f"model-{int(offset)}", serialization_format="cloudpickle", registered_model_name=model_name
            )
            models.append(model)
    client = mlflow.MlflowClient(url)
    if not sklearn:
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
        (tmp_path / "model" / "weights.bin").write_bytes(os.urandom(3000))
        client.log_artifacts(parent.info.run_id, str(tmp_path / "model"), "model")
        client.create_registered_model(model_name)
        for _ in range(2):
            client.create_model_version(model_name, f"{parent.info.artifact_uri}/model", run_id=parent.info.run_id)
    client.update_registered_model(model_name, description="moves between stacks")
    client.set_registered_model_tag(model_name, "team", "ml")
    client.transition_model_version_stage(model_name, "1", "Production")
    client.set_registered_model_alias(model_name, "champion", "2")
    mlflow.set_tracking_uri(None)
    return {"parent": parent.info.run_id, "models": models, "x": x}


def snapshot(url: str, experiment_name: str = "moving", model_name: str | None = "promo") -> dict[str, Any]:
    """Everything that must survive the move, keyed by run name (ids change); `model_name` None: the
    experiment alone."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    by_id = {r.info.run_id: r.info.run_name for r in runs}
    out: dict[str, Any] = {"__runs__": sorted(by_id.values())}  # a run imported twice shows here
    for run in runs:
        history = {k: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, k)] for k in run.data.metrics}
        files = {}
        local = client.download_artifacts(run.info.run_id, "", dst_path=str(Path(os.environ["EXPORT_TMP"]) / run.info.run_id))
        for dirpath, _dirs, names in os.walk(local):
            for n in names:
                p = Path(dirpath) / n
                files[str(p.relative_to(local))] = hashlib.sha256(p.read_bytes()).hexdigest()
        tags = {k: v for k, v in run.data.tags.items() if k not in IMPORT_TAGS and k != "mlflow.parentRunId"}
        out[run.info.run_name] = {
            "params": run.data.params, "tags": tags, "history": history, "status": run.info.status,
            "start": run.info.start_time, "end": run.info.end_time,
            "parent": by_id.get(run.data.tags.get("mlflow.parentRunId", "")),
            "files": {k: v for k, v in files.items() if k.startswith("report")},
        }  # fmt: skip
    if model_name is None:
        return out
    model = client.get_registered_model(model_name)
    versions = sorted(client.search_model_versions(f"name = '{model_name}'"), key=lambda v: int(v.version))
    out["__model__"] = {
        "description": model.description, "tags": model.tags, "aliases": model.aliases,
        "versions": [(v.version, v.current_stage, by_id.get(v.run_id)) for v in versions],
        "files": {v.version: _version_files(url, model_name, v.version) for v in versions},
    }  # fmt: skip
    return out


def _version_files(url: str, name: str, version: str) -> dict[str, str]:
    """sha256 of each file a registered version's download URI holds, by relative path."""
    import tempfile

    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    uri = MlflowClient(url, registry_uri=url).get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=url))
        return {str(p.relative_to(local)): hashlib.sha256(p.read_bytes()).hexdigest() for p in local.rglob("*") if p.is_file()}


def bundle_files(root: Path) -> dict[str, Any]:
    """A bundle folder's files by path, parsed where JSON (without the manifest's creation time),
    metrics.jsonl as its sorted lines (the order of points in the file carries nothing)."""
    import json

    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(root))
        if path.name == "metrics.jsonl":
            out[name] = sorted(path.read_text().splitlines())
        elif path.suffix == ".json":
            out[name] = json.loads(path.read_text())
            if path.name == "manifest.json":
                out[name].pop("created")
        else:
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
