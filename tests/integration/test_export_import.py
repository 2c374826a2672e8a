"""`modelyard export` / `import` / `models promote` between two gunicorn tracking services (PostgreSQL
and SQLite), with data logged by the real `mlflow` client, and from a real `mlflow server` (issue #19)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.support.mlflow_processes import run_mlflow

pytestmark = [pytest.mark.postgres, pytest.mark.compat, pytest.mark.slow]
IMPORT_TAGS = ("modelyard.import.source_run", "modelyard.import.complete")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "modelyard"), *args]
    done = subprocess.run(command, env=os.environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def _log(url: str, tmp_path: Path) -> dict[str, Any]:
    import mlflow
    from sklearn.linear_model import LinearRegression

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("moving")
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
        for offset in (0.0, 3.0):
            model = LinearRegression().fit(x, x[:, 0] * 2 + offset)
            mlflow.sklearn.log_model(
                model, name=f"model-{int(offset)}", serialization_format="cloudpickle", registered_model_name="promo"
            )
            models.append(model)
    client = mlflow.MlflowClient(url)
    client.update_registered_model("promo", description="moves between stacks")
    client.set_registered_model_tag("promo", "team", "ml")
    client.transition_model_version_stage("promo", "1", "Production")
    client.set_registered_model_alias("promo", "champion", "2")
    mlflow.set_tracking_uri(None)
    return {"parent": parent.info.run_id, "models": models, "x": x}


def _snapshot(url: str) -> dict[str, Any]:
    """Everything that must survive the move, keyed by run name (ids change)."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("moving")
    runs = client.search_runs([experiment.experiment_id])
    by_id = {r.info.run_id: r.info.run_name for r in runs}
    out: dict[str, Any] = {}
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
    model = client.get_registered_model("promo")
    versions = sorted(client.search_model_versions("name = 'promo'"), key=lambda v: int(v.version))
    out["__model__"] = {
        "description": model.description, "tags": model.tags, "aliases": model.aliases,
        "versions": [(v.version, v.current_stage, by_id.get(v.run_id)) for v in versions],
    }  # fmt: skip
    return out


def test_export_import_between_two_stacks_and_again(
    postgres_uri: str, tracking_server: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("EXPORT_TMP", str(tmp_path / "snap"))
    first = tracking_server(postgres_uri)
    second = tracking_server()  # SQLite, its own artifacts
    logged = _log(first, tmp_path)
    bundle = str(tmp_path / "bundle.tar")
    _cli("export", "--tracking-uri", first, "--experiments", "moving", "--models", "promo", "--output", bundle)
    _cli("import", bundle, "--tracking-uri", second)
    assert _snapshot(second) == _snapshot(first)

    mlflow.set_tracking_uri(second)
    try:
        loaded = mlflow.pyfunc.load_model("models:/promo@champion")
        assert np.allclose(loaded.predict(logged["x"]), logged["models"][1].predict(logged["x"]))
    finally:
        mlflow.set_tracking_uri(None)

    before = _snapshot(second)
    again = _cli("import", bundle, "--tracking-uri", second)  # idempotent
    assert "imported 3 runs and 1 models" in again.stdout
    assert _snapshot(second) == before

    third = tracking_server()
    promoted = _cli("models", "promote", "promo/1", "--from", first, "--to", third, "--alias", "prod")
    assert "promo version 1 on" in promoted.stdout and "(@prod)" in promoted.stdout
    from mlflow import MlflowClient

    copy = MlflowClient(third).get_model_version_by_alias("promo", "prod")
    source = MlflowClient(first).get_model_version("promo", "1")
    # The copy hangs off a copy of its source run (or, for a version without a run, a holder run).
    expected = MlflowClient(first).get_run(source.run_id).info.run_name if source.run_id else "imported-model-files"
    assert copy.current_stage == "Production" and MlflowClient(third).get_run(copy.run_id).info.run_name == expected


def test_export_from_a_real_mlflow_server_imports_into_modelyard(
    tracking_server: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_TMP", str(tmp_path / "snap"))
    args = ["server", "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--artifacts-destination", str(tmp_path / "mlflow-artifacts")]  # fmt: skip
    with run_mlflow(args, tmp_path / "mlflow", timeout=180) as mlflow_url:
        _log(mlflow_url, tmp_path)
        bundle = str(tmp_path / "from-mlflow")
        _cli("export", "--tracking-uri", mlflow_url, "--experiments", "moving", "--models", "promo", "--output", bundle)
        expected = _snapshot(mlflow_url)
    target = tracking_server()
    _cli("import", bundle, "--tracking-uri", target)
    assert _snapshot(target) == expected
